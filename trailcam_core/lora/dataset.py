"""Training images and captions: folder scan, aspect buckets, augmentation, per-epoch batches.

Input is either a folder of images with kohya caption sidecars (``photo.jpg`` + ``photo.txt``,
as the tags stage exports favourites; a Hugging Face ``metadata.jsonl`` with ``file_name`` and
``text`` also works; subfolders named ``<N>_<name>`` repeat their images N times, as in kohya)
or ImageRecords from a Dataset/Subset plus a caption template.

Everything random here derives from (seed, epoch, item), so a resumed run replays the very
same batches, crops, flips and caption orders as an uninterrupted one.

    items = scan_folder("favourites/")
    buckets = make_buckets(1024)
"""
from __future__ import annotations

import json
import math
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from trailcam_core.base import TrailcamError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
_REPEAT_DIR = re.compile(r"^(\d+)_(.+)$")


@dataclass
class TrainItem:
    """One training image: where it is, its caption, its size (after EXIF rotation), its repeats."""

    path: Path
    caption: str
    width: int
    height: int
    folder: str = "."        # dataset folder name, for ss_tag_frequency / ss_dataset_dirs
    repeats: int = 1
    bucket: tuple[int, int] = (0, 0)   # (width, height), set by assign_buckets


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            w, h = img.size
            orientation = img.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise TrailcamError(f"cannot read image {path}: {exc}") from exc
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _read_metadata_jsonl(folder: Path) -> dict[str, str]:
    meta = folder / "metadata.jsonl"
    out: dict[str, str] = {}
    if not meta.is_file():
        return out
    for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TrailcamError(f"{meta} line {n}: not JSON ({exc})") from exc
        name = row.get("file_name")
        text = next((row[k] for k in ("text", "caption", "tags") if isinstance(row.get(k), str)), None)
        if name and text is not None:
            out[Path(name).as_posix()] = text
    return out


def scan_folder(folder: str | os.PathLike, caption_extension: str = ".txt",
                exclude: Optional[str | os.PathLike] = None) -> list[TrainItem]:
    """Images under ``folder`` (recursively, hidden folders and ``exclude`` skipped) with their captions.

    Raises TrailcamError when the folder is missing, holds no images, or some images have no
    caption (naming them)."""
    root = Path(folder)
    if not root.is_dir():
        raise TrailcamError(f"training folder not found: {root}")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts)
                   and not (exclude and _within(p, Path(exclude))))
    if not paths:
        raise TrailcamError(f"no images in {root} (looked for {', '.join(IMAGE_EXTS)})")
    jsonl: dict[Path, dict[str, str]] = {}
    items, missing = [], []
    for p in paths:
        rel = p.relative_to(root)
        sidecar = p.with_suffix(caption_extension)
        if sidecar.is_file():
            caption = sidecar.read_text(encoding="utf-8", errors="replace").strip()
        else:
            if p.parent not in jsonl:
                jsonl[p.parent] = _read_metadata_jsonl(p.parent)
            caption = jsonl[p.parent].get(p.name)
            if caption is None:
                missing.append(rel.as_posix())
                continue
        top = rel.parts[0] if len(rel.parts) > 1 else "."
        m = _REPEAT_DIR.match(top)
        w, h = _image_size(p)
        items.append(TrainItem(p, caption, w, h, folder=top, repeats=int(m.group(1)) if m else 1))
    if missing:
        if not items:
            raise TrailcamError(f"no captions in {root}: none of its {len(paths)} images has a {caption_extension} "
                                f"sidecar or a metadata.jsonl entry (e.g. {missing[0]} needs "
                                f"{Path(missing[0]).with_suffix(caption_extension).as_posix()})")
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise TrailcamError(f"{len(missing)} of {len(paths)} images in {root} have no caption "
                            f"({caption_extension} sidecar or metadata.jsonl entry): {shown}")
    return items


def items_from_records(records: Iterable, template: str = "{caption}", trigger: str = "") -> list[TrainItem]:
    """Training items from ImageRecords (a Subset's records), captions built from ``template``.

    ``{caption}`` is the record's caption (``extra["caption"]`` or its same-stem .txt), other
    fields are the record's: label, labels, location, datetime, image_id, trigger."""
    items, missing = [], []
    for rec in records:
        path = Path(rec.path)
        if not path.is_file():
            missing.append(str(path))
            continue
        caption = rec.extra.get("caption") if isinstance(rec.extra, dict) else None
        if caption is None and path.with_suffix(".txt").is_file():
            caption = path.with_suffix(".txt").read_text(encoding="utf-8", errors="replace").strip()
        fields = {"caption": caption or "", "label": rec.label or "", "labels": ", ".join(rec.labels),
                  "location": rec.location or "", "datetime": rec.datetime or "", "image_id": rec.image_id,
                  "trigger": trigger}
        try:
            text = template.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise TrailcamError(f"caption template {template!r}: unknown or bad field {exc}") from exc
        text = ", ".join(t.strip() for t in text.split(",") if t.strip())
        if not text:
            raise TrailcamError(f"record {rec.image_id}: caption template {template!r} gives an empty caption")
        w, h = _image_size(path)
        items.append(TrainItem(path, text, w, h, folder=str(rec.location or ".")))
    if missing:
        raise TrailcamError(f"{len(missing)} record image(s) not found on disk, e.g. {missing[0]}")
    if not items:
        raise TrailcamError("no records to train on")
    return items


def make_buckets(resolution: int, step: int = 64, min_size: int = 0, max_size: int = 0) -> list[tuple[int, int]]:
    """kohya-style buckets: (width, height) multiples of ``step`` with about resolution^2 pixels."""
    max_area = resolution * resolution
    min_size = min_size or max(step, resolution // 4 // step * step)
    max_size = max_size or resolution * 2
    buckets = {(resolution // step * step,) * 2}
    for w in range(min_size, max_size + 1, step):
        h = min(max_size, (max_area // w) // step * step)
        if h >= min_size:
            buckets.add((w, h))
            buckets.add((h, w))
    return sorted(buckets)


def assign_buckets(items: Sequence[TrainItem], resolution: int, bucketing: bool, step: int = 64,
                   min_size: int = 0, max_size: int = 0) -> None:
    """Set each item's bucket: the one nearest its aspect ratio (or the square when bucketing is off)."""
    buckets = make_buckets(resolution, step, min_size, max_size) if bucketing else [(resolution, resolution)]
    logs = [math.log(w / h) for w, h in buckets]
    for it in items:
        ar = math.log(it.width / it.height)
        it.bucket = buckets[min(range(len(buckets)), key=lambda i: abs(logs[i] - ar))]


def check_sizes(items: Sequence[TrainItem], resolution: int) -> None:
    """Raise naming the images that would have to be upscaled to fill their bucket."""
    small = [it for it in items if max(it.bucket[0] / it.width, it.bucket[1] / it.height) > 1.0 + 1e-6]
    if small:
        shown = ", ".join(f"{it.path.name} {it.width}x{it.height} < {it.bucket[0]}x{it.bucket[1]}" for it in small[:8])
        more = f" and {len(small) - 8} more" if len(small) > 8 else ""
        raise TrailcamError(f"{len(small)} of {len(items)} images are smaller than their training size at resolution "
                            f"{resolution}: {shown}{more}. Lower the resolution or allow upscaling.")


def auto_repeats(n_images: int, target: int = 200) -> int:
    """Civitai's rule: enough repeats that one epoch sees about ``target`` images."""
    return max(1, math.ceil(target / max(1, n_images)))


def seeded_rng(*key) -> random.Random:
    return random.Random("/".join(str(k) for k in key))


def epoch_batches(items: Sequence[TrainItem], batch_size: int, repeats: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch as lists of item indices: every item ``repeats`` x its folder repeats,
    shuffled, grouped by bucket (a batch never mixes sizes), batch order shuffled.  Deterministic."""
    rng = seeded_rng("batches", seed, epoch)
    by_bucket: dict[tuple[int, int], list[int]] = {}
    for i, it in enumerate(items):
        by_bucket.setdefault(it.bucket, []).extend([i] * (repeats * it.repeats))
    batches = []
    for bucket in sorted(by_bucket):
        idx = by_bucket[bucket]
        rng.shuffle(idx)
        batches.extend(idx[j:j + batch_size] for j in range(0, len(idx), batch_size))
    rng.shuffle(batches)
    return batches


def process_caption(caption: str, trigger: str, shuffle: bool, keep_tokens: int, seed: int, epoch: int,
                    slot: int) -> str:
    """Trigger word first, then (optionally) shuffle the comma-separated tags after ``keep_tokens``."""
    tags = [t.strip() for t in caption.split(",") if t.strip()]
    if trigger and trigger not in tags:
        tags.insert(0, trigger)
    if shuffle and len(tags) > keep_tokens + 1:
        head, tail = tags[:keep_tokens], tags[keep_tokens:]
        seeded_rng("caption", seed, epoch, slot).shuffle(tail)
        tags = head + tail
    return ", ".join(tags)


@dataclass
class Augment:
    """Where one image is cropped and whether it is flipped (for SDXL's size/crop conditioning)."""

    crop_left: int = 0
    crop_top: int = 0
    flip: bool = False


def plan_augment(item: TrainItem, random_crop: bool, flip: bool, seed: int, epoch: int, slot: int) -> Augment:
    """The crop and flip of ``item`` for one use (slot) in one epoch; centred crop when not random."""
    bw, bh = item.bucket
    scale = max(bw / item.width, bh / item.height)
    rw, rh = max(bw, round(item.width * scale)), max(bh, round(item.height * scale))
    rng = seeded_rng("augment", seed, epoch, slot)
    if random_crop:
        left, top = rng.randint(0, rw - bw), rng.randint(0, rh - bh)
    else:
        left, top = (rw - bw) // 2, (rh - bh) // 2
    return Augment(left, top, bool(flip and rng.random() < 0.5))


def load_pixels(item: TrainItem, aug: Augment):
    """The image resized to cover its bucket, cropped and maybe flipped: a (3, H, W) tensor in [-1, 1]."""
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    bw, bh = item.bucket
    scale = max(bw / item.width, bh / item.height)
    rw, rh = max(bw, round(item.width * scale)), max(bh, round(item.height * scale))
    try:
        with Image.open(item.path) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
    except OSError as exc:
        raise TrailcamError(f"cannot read image {item.path}: {exc}") from exc
    if (rw, rh) != img.size:
        img = img.resize((rw, rh), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)
    img = img.crop((aug.crop_left, aug.crop_top, aug.crop_left + bw, aug.crop_top + bh))
    if aug.flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    arr = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()).permute(2, 0, 1)
    return arr / 127.5 - 1.0


def time_ids(item: TrainItem, aug: Augment) -> list[int]:
    """SDXL's added time ids: original size (h, w), crop top-left, target size (h, w)."""
    return [item.height, item.width, aug.crop_top, aug.crop_left, item.bucket[1], item.bucket[0]]


def dataset_fingerprint(items: Sequence[TrainItem]) -> str:
    """A short hash of file names and captions: a checkpoint resumes only on the same data."""
    import hashlib

    h = hashlib.sha1()
    for it in items:
        h.update(f"{it.path.name}\0{it.caption}\0{it.repeats}\n".encode())
    return h.hexdigest()[:16]


@dataclass
class CacheKey:
    parts: list = field(default_factory=list)

    def digest(self) -> str:
        import hashlib

        return hashlib.sha1(json.dumps(self.parts, default=str).encode()).hexdigest()


def latent_cache_key(item: TrainItem, aug: Augment, model_id: str) -> str:
    """Stable key of one cached latent: file identity + size, crop, flip and the VAE it came from."""
    st = item.path.stat()
    return CacheKey([str(item.path.resolve()), st.st_size, st.st_mtime_ns, item.bucket, aug.crop_left, aug.crop_top,
                     aug.flip, model_id]).digest()


def folders_of(items: Sequence[TrainItem]) -> list[str]:
    seen: list[str] = []
    for it in items:
        if it.folder not in seen:
            seen.append(it.folder)
    return seen


def captions_by_folder(items: Sequence[TrainItem]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for it in items:
        out.setdefault(it.folder, []).append(it.caption)
    return out


def describe_items(items: Sequence[TrainItem], limit: Optional[int] = None) -> str:
    return ", ".join(it.path.name for it in items[:limit])
