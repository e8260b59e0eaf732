"""Widget values name files *inside* ComfyUI's folders: resolve them safely, list them for combos.

``folder_paths`` does not confine anything; every name goes through ``trailcam_core.base.paths.confine``
(absolute paths, ``..`` and symlinks that lead outside are refused with a message naming the widget).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

import folder_paths

from trailcam_core.base import atomic_path, confine, flat_name, safe_relative, TrailcamError



def input_root() -> Path:
    return Path(folder_paths.get_input_directory())


def output_root() -> Path:
    return Path(folder_paths.get_output_directory())


def input_path(name: str, what: str = "source", must_exist: bool = True) -> Path:
    """``name`` relative to ComfyUI's input folder; refuses absolute paths, ``..`` and escaping links."""
    path = confine(input_root(), name, what)
    if must_exist and not path.exists():
        raise TrailcamError(f"{what} {name!r} not found in ComfyUI's input folder ({input_root()})")
    return path


def output_path(name: str, what: str = "output name") -> Path:
    """``name`` relative to ComfyUI's output folder (which is created when missing)."""
    root = output_root()
    root.mkdir(parents=True, exist_ok=True)
    return confine(root, name, what)


def model_path(kind: str, name: str, what: str = "model") -> Path:
    """An existing file or folder ``name`` in one of ComfyUI's ``models/<kind>`` folders."""
    safe_relative(name, what)
    roots = folder_paths.get_folder_paths(kind)
    for root in roots:
        path = confine(root, name, what)
        if path.exists():
            return path
    raise TrailcamError(f"{what} {name!r} not found in models/{kind} ({', '.join(roots)})")


def model_folder(kind: str) -> Path:
    """The first ``models/<kind>`` folder (where new models are saved), created when missing."""
    root = Path(folder_paths.get_folder_paths(kind)[0])
    root.mkdir(parents=True, exist_ok=True)
    return root


def path_error(check: Callable[[], Any]) -> bool | str:
    """For ``validate_inputs``: True when ``check()`` passes, else the error text ComfyUI shows."""
    try:
        check()
    except TrailcamError as exc:
        return str(exc)
    return True


def _holds_images(folder: str, depth: int = 2) -> bool:
    """True when ``folder`` or its sub-folders (to ``depth``) hold an image or video file."""
    from trailcam_core.base import IMAGE_EXTENSIONS

    media = IMAGE_EXTENSIONS + (".mp4", ".avi", ".mov", ".mkv")
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return False
    if any(e.is_file() and e.name.lower().endswith(media) for e in entries):
        return True
    return depth > 0 and any(e.is_dir() and not e.name.startswith(".") and _holds_images(e.path, depth - 1)
                             for e in entries)


def list_input_sources(max_depth: int = 2) -> list[str]:
    """Datasets in ComfyUI's input folder (relative names, POSIX), for a combo: COCO Camera Traps
    JSON files first, then folders that hold photos.  Detector results files and folders without
    images (ComfyUI's own ``3d/``) are left out."""
    from trailcam_core.detections import json_kind

    root = input_root()
    files: list[str] = []
    folders: list[str] = []
    if not root.is_dir():
        return []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        depth = len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not d.startswith("__"))
        if depth >= 1 and _holds_images(dirpath):
            folders.append(rel.as_posix() + "/")
        if depth >= max_depth:
            dirnames[:] = []
        files.extend((rel / f).as_posix() for f in sorted(filenames)
                     if f.lower().endswith(".json") and json_kind(os.path.join(dirpath, f)) == "dataset")
    return sorted(files) + sorted(folders)


def list_detection_files(max_depth: int = 3) -> list[str]:
    """Detector results files (MegaDetector, AddaxAI, SpeciesNet) in the input folder, for a combo."""
    from trailcam_core.detections import json_kind

    root = input_root()
    return [f for f in list_input_files((".json",), max_depth) if json_kind(root / f) == "detections"]


def list_input_files(suffixes: Sequence[str], max_depth: int = 3) -> list[str]:
    """Files with one of ``suffixes`` in the input folder (relative names), for an optional combo."""
    root = input_root()
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if len(rel.parts) >= max_depth:
            dirnames[:] = []
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend((rel / f).as_posix() for f in filenames if f.lower().endswith(tuple(suffixes)))
    return sorted(out)


def list_models(kind: str) -> list[str]:
    """Model files in ``models/<kind>`` (ComfyUI's own cached listing)."""
    return list(folder_paths.get_filename_list(kind))


def list_diffusers_folders() -> list[str]:
    """Diffusers model folders (holding ``model_index.json``) in ``models/diffusers``, with a trailing ``/``."""
    out = []
    for root in folder_paths.get_folder_paths("diffusers"):
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            if "model_index.json" in filenames:
                out.append(Path(dirpath).relative_to(root).as_posix() + "/")
                dirnames[:] = []
    return sorted(out)


def save_image(img: Image.Image, dest: Path) -> Path:
    """Write one image atomically; the format follows the extension (.png, .jpg, .webp)."""
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[dest.suffix.lower()]
    with atomic_path(dest, suffix=dest.suffix) as tmp:
        img.convert("RGB").save(tmp, format=fmt, **({"quality": 95} if fmt != "PNG" else {}))
    return dest


def save_batch(images: Sequence[Image.Image], purpose: str) -> list[Path]:
    """Write an IMAGE batch as PNGs into ComfyUI's temp folder (named by content) for stages that read files."""
    digest = hashlib.sha1()
    for im in images:
        digest.update(im.tobytes())
    folder = Path(folder_paths.get_temp_directory()) / f"trailcam_{purpose}" / digest.hexdigest()[:16]
    paths = [folder / f"{i:05d}.png" for i in range(len(images))]
    for im, path in zip(images, paths):
        if not path.is_file():
            save_image(im, path)
    return paths


def file_stem(image_id: str) -> str:
    """A file name stem for an image id (ids of folder datasets may hold ``/``)."""
    return flat_name(image_id)


def fingerprint_path(path: Path) -> str:
    """Changes when a file or a folder's direct entries change (size + mtime), for ``fingerprint_inputs``."""
    h = hashlib.sha1()
    try:
        entries = [path] if path.is_file() else [path] + sorted(path.iterdir())
        for p in entries:
            st = p.stat()
            h.update(f"{p.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    except OSError:
        return "missing"
    return h.hexdigest()
