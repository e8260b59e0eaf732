"""What every node of the pack shares: custom types, confined paths, image conversion, progress, widgets.

Nodes stay short declarations over the core; the glue between ComfyUI and ``trailcam_core`` lives here:

- ``SUBSET`` / ``EMBEDDINGS``: the pack's custom link types and the objects that travel on them;
- ``input_path`` / ``output_path`` / ``model_path`` (in ``_paths``): a widget value is a name relative
  to one of ComfyUI's folders; absolute paths and ``..`` are refused (``trailcam_core.base.paths.confine``);
- ``to_tensor`` / ``to_pils``: PIL images <-> ComfyUI IMAGE tensors (B, H, W, 3, float 0..1);
- ``ComfyProgress``: the core's progress callback drawn on the node's progress bar, with the
  Cancel button turned into the core's ``Cancelled``; ``run_core`` turns it back into ComfyUI's interrupt;
- ``option_inputs`` / ``options_from`` (in ``_widgets``): widgets built from a stage's options dataclass,
  and back.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
from PIL import Image, ImageOps

from comfy_api.latest import io

from trailcam_core.base import Cancelled, ImageRecord, TrailcamError

from ._paths import (fingerprint_path, file_stem, input_path, input_root, list_detection_files,  # noqa: F401
                     list_diffusers_folders, list_input_files, list_input_sources, list_models, model_folder,
                     model_path, output_path, output_root, path_error, save_batch, save_image)
from ._widgets import option_inputs, options_from  # noqa: F401

CATEGORY = "trailcam"

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

    def read_images(self):
        """Yield (record, RGB image or None, why not) for each record: in-memory pixels, else the file."""
        for i, rec in enumerate(self.records):
            if self.images is not None:
                yield rec, self.images[i], ""
                continue
            try:
                with Image.open(rec.path) as im:
                    yield rec, ImageOps.exif_transpose(im).convert("RGB"), ""
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                yield rec, None, f"cannot read image ({exc.__class__.__name__}: {exc})"

    def select(self, keep: Sequence[int]) -> "SubsetData":
        """The records at ``keep`` (and their images, tags and captions)."""
        pick = lambda xs: None if xs is None else [xs[i] for i in keep]  # noqa: E731
        return self.replace(records=pick(self.records), images=pick(self.images), tags=pick(self.tags),
                            captions=pick(self.captions))

    def __len__(self) -> int:
        return len(self.records)


SUBSET = io.Custom("TRAILCAM_SUBSET")
EMBEDDINGS = io.Custom("TRAILCAM_EMBEDDINGS")

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
    for rec, img, why in data.read_images():
        if img is None:
            logging.warning("[trailcam] %s: no preview (%s)", rec.file_name or rec.path, why)
            out.append(Image.new("RGB", (size, size), (128, 128, 128)))
        else:
            out.append(ImageOps.pad(img, (size, size), color=(0, 0, 0)))
    return out


def skipped_text(done: str, skipped: Sequence[tuple[str, str]]) -> str:
    """A one-line node summary: what was done, and how many items were skipped (the first reason)."""
    if not skipped:
        return done
    return f"{done}; {len(skipped)} skipped ({skipped[0][0]}: {skipped[0][1]})"

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
