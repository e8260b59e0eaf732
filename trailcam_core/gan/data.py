"""Training images: any folder the project writes (crops, a favourites export, sample folders).

Images are centre-cropped to a square, resized to the training side and kept in memory as uint8
(N, 3, S, S).  Grey, palette and RGBA images are converted (RGBA onto black); files that do not
decode are skipped and listed; fewer than MIN_IMAGES usable images is an error.

    images = load_images("Favorites/", 256)
    images.tensor.shape, images.skipped      # (128, 3, 256, 256), [("bad.jpg", "cannot decode ...")]
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageOps

from trailcam_core.base import ensure, IMAGE_EXTENSIONS, ProgressCallback, TrailcamError

MIN_IMAGES = 8


@dataclass
class TrainingImages:
    tensor: "object"                     # torch.uint8 (N, 3, S, S)
    paths: list[Path]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.paths)


def list_images(folder: str | os.PathLike, exclude: Optional[Path] = None) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted; hidden entries and ``exclude`` left out)."""
    root = Path(folder)
    if not root.is_dir():
        raise TrailcamError(f"image folder not found: {root}")
    ex = Path(exclude).resolve() if exclude else None
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".")
                             and not (ex and (d / n).resolve() == ex))
        out.extend(d / n for n in sorted(filenames)
                   if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTENSIONS)
    return out


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; transparency is laid on black (what a trail camera shows outside the frame)."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        back = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(back, rgba).convert("RGB")
    return img.convert("RGB")


def square(img: Image.Image, size: int) -> Image.Image:
    """Centre square crop resized to ``size`` (Lanczos)."""
    w, h = img.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return img.crop(box).resize((size, size), Image.Resampling.LANCZOS)


def load_images(folder: str | os.PathLike, size: int, exclude: Optional[Path] = None,
                progress: Optional[ProgressCallback] = None, min_images: int = MIN_IMAGES) -> TrainingImages:
    """Decode every image under ``folder`` to (N, 3, size, size) uint8; bad files are skipped and listed."""
    import torch

    cb = ensure(progress)
    paths = list_images(folder, exclude)
    arrays, kept, skipped = [], [], []
    digest = hashlib.sha256(f"size={size}".encode())
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                if im.format == "JPEG":          # decode at the smallest scale still >= size
                    w, h = im.size
                    im.draft("RGB", (w * size // max(1, min(w, h)), h * size // max(1, min(w, h))))
                img = square(to_rgb(im), size)
        except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
            skipped.append((str(p), f"cannot decode image ({exc.__class__.__name__}: {exc})"))
            continue
        a = np.asarray(img, dtype=np.uint8)
        arrays.append(a.transpose(2, 0, 1))
        kept.append(p)
        digest.update(str(p.relative_to(folder)).encode())
        digest.update(hashlib.sha1(a.tobytes()).digest())
        if i % 16 == 0 or i == len(paths) - 1:
            cb(i + 1, len(paths), "loading images")
    if len(kept) < min_images:
        extra = f" ({len(skipped)} unreadable skipped)" if skipped else ""
        raise TrailcamError(f"{folder}: {len(kept)} usable images{extra}; a GAN needs at least {min_images}")
    tensor = torch.from_numpy(np.stack(arrays))
    return TrainingImages(tensor, kept, skipped, digest.hexdigest())


def to_unit(batch_uint8):
    """uint8 (B, 3, S, S) -> float in -1..1."""
    return batch_uint8.float().div(127.5).sub(1.0)


def to_pil(x) -> list[Image.Image]:
    """Float images in -1..1 (B, 3, S, S) -> PIL RGB images."""
    arr = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to("cpu").numpy().astype(np.uint8)
    return [Image.fromarray(a.transpose(1, 2, 0)) for a in arr]
