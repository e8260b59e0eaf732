"""What every node of the pack shares: custom types, confined paths, image conversion, progress, widgets.

Nodes stay short declarations over the core; the glue between ComfyUI and ``trailcam_core`` lives here:

- ``SUBSET`` / ``EMBEDDINGS``: the pack's custom link types and the objects that travel on them;
- ``input_path`` / ``output_path`` / ``model_path``: a widget value is a name relative to one of
  ComfyUI's folders; absolute paths and ``..`` are refused (``trailcam_core.paths.confine``);
- ``to_tensor`` / ``to_pils``: PIL images <-> ComfyUI IMAGE tensors (B, H, W, 3, float 0..1);
- ``ComfyProgress``: the core's progress callback drawn on the node's progress bar, with the
  Cancel button turned into the core's ``Cancelled``; ``run_core`` turns it back into ComfyUI's interrupt;
- ``option_inputs`` / ``options_from``: widgets built from a stage's options dataclass, and back.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
from PIL import Image, ImageOps

import folder_paths
from comfy_api.latest import io

from trailcam_core.atomic import atomic_path
from trailcam_core.errors import Cancelled, TrailcamError
from trailcam_core.options import describe, from_mapping
from trailcam_core.paths import confine, safe_relative
from trailcam_core.records import ImageRecord

CATEGORY = "trailcam"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

# ----------------------------------------------------------------------------- custom types


@dataclass
class SubsetData:
    """What travels on a TRAILCAM_SUBSET link: records in order, and what later nodes added.

    ``images`` (when set) are the current pixels of each record (square crops, ...), aligned with
    ``records``; when None, nodes read ``record.path``.  ``tags`` ({key: Tag} per record),
    ``captions`` and the ``caption_options`` that rendered them are filled by AutoTagCaptions.
    """

    records: list[ImageRecord]
    source: str = ""
    images: Optional[list[Image.Image]] = None
    tags: Optional[list[dict]] = None
    captions: Optional[list[str]] = None
    caption_options: Any = None
    subset: Any = None                      # the core Subset, when the records came from one

    @property
    def ids(self) -> list[str]:
        return [r.image_id for r in self.records]

    @property
    def labels(self) -> list[list[str]]:
        return [list(r.labels) for r in self.records]

    def tag_words(self) -> list[list[str]]:
        """Per record: the tag values as words (empty lists before AutoTagCaptions)."""
        if self.tags is None:
            return [[] for _ in self.records]
        return [[str(t.value) for t in tags.values() if t is not None and t.value not in (None, "", False)]
                for tags in self.tags]

    def replace(self, **changes: Any) -> "SubsetData":
        return dataclasses.replace(self, **changes)

    def pil_images(self) -> list[Image.Image]:
        """The current pixels: in-memory images, else the files (RGB)."""
        if self.images is not None:
            return list(self.images)
        out = []
        for rec in self.records:
            try:
                with Image.open(rec.path) as im:
                    out.append(ImageOps.exif_transpose(im).convert("RGB"))
            except OSError as exc:
                raise TrailcamError(f"{rec.file_name or rec.path}: cannot read image ({exc})") from exc
        return out

    def __len__(self) -> int:
        return len(self.records)


SUBSET = io.Custom("TRAILCAM_SUBSET")
EMBEDDINGS = io.Custom("TRAILCAM_EMBEDDINGS")

# ----------------------------------------------------------------------------- confined paths


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


def list_input_sources(max_depth: int = 2) -> list[str]:
    """CCT JSON files and folders in ComfyUI's input folder (relative names, POSIX), for a combo."""
    root = input_root()
    found: list[str] = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        depth = len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not d.startswith("__"))
        if depth >= 1:
            found.append(rel.as_posix() + "/")
        if depth >= max_depth:
            dirnames[:] = []
        found.extend((rel / f).as_posix() for f in sorted(filenames) if f.lower().endswith(".json"))
    return sorted(found)


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
    return safe_relative(str(image_id), "image id").as_posix().replace("/", "__")


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

# ----------------------------------------------------------------------------- images


def to_tensor(images: Sequence[Image.Image]):
    """PIL images of one size -> IMAGE tensor (B, H, W, 3) float32 in 0..1."""
    import torch

    if not images:
        raise TrailcamError("no images to output (the selection is empty)")
    sizes = {im.size for im in images}
    if len(sizes) > 1:
        raise TrailcamError(f"an IMAGE batch needs one size; got {sorted(sizes)[:4]}")
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in images])
    return torch.from_numpy(arr)


def to_pils(tensor) -> list[Image.Image]:
    """IMAGE tensor (B, H, W, C) -> list of RGB PIL images."""
    arr = (tensor.detach().cpu().float().clamp(0, 1).numpy() * 255.0).round().astype(np.uint8)
    if arr.ndim == 3:
        arr = arr[None]
    return [Image.fromarray(a[..., :3] if a.shape[-1] >= 3 else a[..., 0]).convert("RGB") for a in arr]


def previews(data: "SubsetData", size: int) -> list[Image.Image]:
    """Letterbox each image into ``size`` x ``size`` so they form one batch; unreadable files show grey."""
    out = []
    images = data.images if data.images is not None else [None] * len(data)
    for rec, img in zip(data.records, images):
        try:
            if img is None:
                with Image.open(rec.path) as im:
                    img = ImageOps.exif_transpose(im).convert("RGB")
            out.append(ImageOps.pad(img.convert("RGB"), (size, size), color=(0, 0, 0)))
        except (OSError, ValueError) as exc:
            logging.warning("[trailcam] %s: no preview (%s)", rec.file_name or rec.path, exc)
            out.append(Image.new("RGB", (size, size), (128, 128, 128)))
    return out

# ----------------------------------------------------------------------------- progress


class ComfyProgress:
    """The core's progress callback on the running node's progress bar (with a preview image).

    ComfyUI's Cancel button raises its interrupt from the bar; the core only knows ``Cancelled``,
    so the interrupt is translated to let jobs save their state before stopping.
    """

    preview_size = 512

    def __init__(self, total: int = 1):
        import comfy.utils

        self.bar = comfy.utils.ProgressBar(max(1, int(total)))

    def __call__(self, done: int, total: int, message: str = "", preview: Any = None) -> None:
        import comfy.model_management as mm

        try:
            mm.throw_exception_if_processing_interrupted()
            shown = None
            if preview is not None and isinstance(preview, Image.Image):
                shown = ("JPEG", preview.convert("RGB"), self.preview_size)
            self.bar.update_absolute(int(done), int(total) if total else None, shown)
        except mm.InterruptProcessingException as exc:
            raise Cancelled("cancelled from ComfyUI") from exc


def run_core(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call one core function; a ``Cancelled`` job becomes ComfyUI's interrupt (shown as cancelled)."""
    import comfy.model_management as mm

    try:
        return fn(*args, **kwargs)
    except Cancelled as exc:
        raise mm.InterruptProcessingException() from exc

# ----------------------------------------------------------------------------- widgets from options


def _optional_names(cls: type) -> set[str]:
    hints = typing.get_type_hints(cls)
    return {n for n, tp in hints.items() if type(None) in typing.get_args(tp)}


def _float_step(info) -> float:
    if info.step:
        return float(info.step)
    ref = abs(info.default) if isinstance(info.default, (int, float)) and info.default else 1.0
    return float(10 ** math.floor(math.log10(ref)) / 100) if ref < 1 else 0.01


_INT_LIMIT = 2**31 - 1


def option_inputs(cls: type, skip: Iterable[str] = (), overrides: Optional[dict[str, dict]] = None) -> list:
    """One widget per UI option of the options dataclass ``cls`` (types, defaults, limits, help).

    Lists are comma-separated text; an optional number (default None) is 0 meaning "none";
    ``overrides`` replaces keyword arguments of a widget (e.g. a default that suits the graph).
    """
    skip, overrides = set(skip), overrides or {}
    widgets = []
    for info in describe(cls):
        if not info.ui or info.name in skip:
            continue
        tip = info.help
        kw: dict[str, Any] = {"tooltip": tip}
        if info.kind is bool:
            make, kw["default"] = io.Boolean.Input, bool(info.default)
        elif info.kind in (int, float):
            default = info.default
            if default is None:
                default, kw["tooltip"] = 0, tip + " (0: none)"
            # explicit limits: the frontend otherwise clamps numbers to 0..2048
            big = _INT_LIMIT if info.kind is int else 1e9
            low = info.min if info.min is not None else (0 if default >= 0 else -big)
            kw.update(default=default, min=low, max=info.max if info.max is not None else big)
            if info.kind is float:
                make, kw["step"] = io.Float.Input, _float_step(info)
            else:
                make = io.Int.Input
                if info.step:
                    kw["step"] = int(info.step)
                if info.name == "seed":   # a fixed seed: re-queueing must not silently change (and redo) the job
                    kw["control_after_generate"] = False
        elif info.kind is list:
            make = io.String.Input
            kw["default"] = ", ".join(str(v) for v in (info.default or []))
            if info.choices:
                kw["tooltip"] = f"{tip} (comma-separated; any of: {', '.join(map(str, info.choices))})"
            else:
                kw["tooltip"] = tip + " (comma-separated)"
        elif info.choices:
            make = io.Combo.Input
            kw.update(options=[str(c) for c in info.choices], default=str(info.default))
        else:
            make = io.String.Input
            kw["default"] = "" if info.default is None else str(info.default)
        kw = {k: v for k, v in kw.items() if v is not None}
        kw.update(overrides.get(info.name, {}))
        widgets.append(make(info.name, **kw))
    return widgets


def options_from(cls: type, values: dict, **fixed: Any):
    """Build the options dataclass from a node's inputs (the widgets ``option_inputs`` made)."""
    optional = _optional_names(cls)
    kinds = {info.name: info for info in describe(cls)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        info = kinds.get(name)
        if info is None or not info.ui:
            continue
        if info.kind is list:
            items = [v.strip() for v in str(value or "").split(",") if v.strip()]
            value = [info.item_kind(v) for v in items] if info.item_kind in (int, float) else items
            if info.choices:
                bad = [v for v in value if v not in info.choices]
                if bad:
                    raise TrailcamError(f"{name}: {', '.join(map(str, bad))} not among {', '.join(map(str, info.choices))}")
        elif name in optional and info.default is None and value in (0, 0.0, ""):
            value = None
        out[name] = value
    out.update(fixed)
    return from_mapping(cls, out)
