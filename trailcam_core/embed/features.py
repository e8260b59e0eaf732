"""Image features for similarity mosaics: open_clip embeddings or model-free image pyramids.

    emb = embed_images("photos/", EmbedOptions(model="ViT-B-32"), cache_dir="out/embed-cache")
    emb.ids, emb.vectors            # list[str], (n, d) float32 (one row per kept image)
    emb.skipped                     # [(file, reason)]: unreadable files, duplicates

Input is a folder (searched recursively), a list of image paths, or an iterable of
``ImageRecord`` (a Dataset or Subset's records). Images of any size and mode are accepted; files
that fail to decode are skipped and listed, never fatal. Byte-identical files are embedded once;
with ``dedupe`` (default) only the first is kept and the others are listed as duplicates, else
every copy is kept with the shared vector.

Work is overlapped: a thread pool reads, hashes, decodes (JPEG draft mode: decoded near the
model's size) and preprocesses images while the model runs on the previous batch.

The cache lives in ``cache_dir/<model key>/shard-*.npz``: each shard holds ``hashes`` (BLAKE2b of
the file bytes) and ``vectors``. A rerun over the same files recomputes nothing; an interrupted
run keeps every shard already written (one per ``flush_every`` images) and resumes from there.

``Embeddings.save(path)`` writes one ``.npz`` (ids, files, vectors, labels/tags as JSON, the
feature key) that ``trailcam mosaic --embeddings`` and ``Embeddings.load`` read back.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
from PIL import Image, ImageFilter

from trailcam_core.base import (atomic_path, composite_kind, DataError, DEFAULT_MAX_PIXELS, ensure,
                                IMAGE_EXTENSIONS, image_problem, ImageRecord, option, Options, ProgressCallback,
                                TrailcamError, write_text)
from trailcam_core.models import load_clip, weights_key

PYRAMID_VERSION = "pyramid-v1"

Source = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]], Iterable[ImageRecord]]


@dataclass
class EmbedOptions(Options):
    """How image features are computed (shared by ``trailcam embed`` and ``trailcam mosaic``)."""

    STAGE = "embed"

    features: str = option("clip", "Feature type: open_clip image embeddings, or the model-free image pyramid "
                           "(blurred copies at several scales)", choices=("clip", "pyramid"))
    model: str = option("ViT-B-32", "open_clip model: an architecture name, hf-hub:org/repo, local-dir:/path, "
                        "or trailcam-tiny (random weights, for tests)")
    pretrained: str = option("laion2b_s34b_b79k", "open_clip pretrained tag or checkpoint file; empty for "
                             "random weights")
    batch_size: int = option(32, "Images per model batch", min=1, max=1024)
    workers: int = option(2, "Threads decoding images while the model runs", min=1, max=64)
    device: str = option("", "Torch device (empty: cuda when available, else cpu)")
    pyramid_size: int = option(32, "Pyramid features: side of the largest level in pixels", min=4, max=256)
    dedupe: bool = option(True, "Keep only the first of byte-identical files (the others are listed as skipped)")


@dataclass
class Embeddings:
    """Feature vectors for a set of images, row i belonging to ``ids[i]``."""

    ids: list[str]
    files: list[str]                       # absolute paths, as read
    vectors: np.ndarray                    # (n, d) float32
    key: str                               # what made the vectors (model + weights or pyramid)
    records: list[ImageRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)   # id -> id of the first identical file
    computed: int = 0                      # rows computed in this run (the rest came from the cache)

    def __len__(self) -> int:
        return len(self.ids)

    def labels(self) -> list[list[str]]:
        """Per image: labels then tags (from ``record.extra['tags']``), for legends and the viewer."""
        out = []
        for rec in self.records or [None] * len(self.ids):
            if rec is None:
                out.append([])
                continue
            tags = list(rec.labels)
            for t in rec.extra.get("tags", []) or []:
                if t not in tags:
                    tags.append(str(t))
            out.append(tags)
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write ids, files, vectors and labels to one ``.npz`` atomically."""
        meta = {"key": self.key, "labels": self.labels(), "skipped": self.skipped, "duplicates": self.duplicates,
                "file_names": [r.file_name for r in self.records] if self.records else []}
        path = Path(path)
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, ids=np.array(self.ids, dtype=str), files=np.array(self.files, dtype=str),
                         vectors=self.vectors.astype(np.float32), meta=np.array(json.dumps(meta)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Embeddings":
        """Read a file written by :meth:`save`."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, files, vectors = [str(x) for x in z["ids"]], [str(x) for x in z["files"]], z["vectors"]
                meta = json.loads(str(z["meta"]))
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"{path}: not an embeddings file written by `trailcam embed` ({exc})") from exc
        labels = meta.get("labels") or [[] for _ in ids]
        names = meta.get("file_names") or [Path(f).name for f in files]
        records = [ImageRecord(image_id=i, path=Path(f), file_name=n, labels=list(lab))
                   for i, f, n, lab in zip(ids, files, names, labels)]
        return cls(ids, files, vectors.astype(np.float32, copy=False), meta.get("key", ""), records,
                   [tuple(s) for s in meta.get("skipped", [])], meta.get("duplicates", {}))


# ----------------------------------------------------------------------------- inputs

def collect_records(source: Source) -> list[ImageRecord]:
    """Turn a folder, a list of paths or an iterable of ImageRecord into a list of records.

    Folder images get ``image_id`` = ``file_name`` = their path relative to the folder (POSIX).
    """
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(root).parts))
            return [ImageRecord(image_id=p.relative_to(root).as_posix(), path=p.resolve(),
                                file_name=p.relative_to(root).as_posix()) for p in files]
        if root.is_file():
            return [ImageRecord(image_id=root.name, path=root.resolve(), file_name=root.name)]
        raise TrailcamError(f"{root}: no such folder or image file")
    items = list(source)
    if not items:
        return []
    if all(isinstance(x, ImageRecord) for x in items):
        return items
    if all(isinstance(x, (str, os.PathLike)) for x in items):
        paths = [Path(x).resolve() for x in items]
        try:
            common = Path(os.path.commonpath([str(p.parent) for p in paths]))
        except ValueError:  # different drives
            common = None
        out = []
        for p in paths:
            rel = p.relative_to(common).as_posix() if common else p.as_posix()
            out.append(ImageRecord(image_id=rel, path=p, file_name=rel))
        return out
    raise TrailcamError("images must be given as a folder, a list of paths, or ImageRecord objects")


# ----------------------------------------------------------------------------- decoding

def open_image(data: bytes, min_side: Optional[int] = None, name: str = "image") -> Image.Image:
    """Decode bytes to an RGB image; with ``min_side`` JPEGs decode at a reduced scale (draft mode).

    Transparent images are composited on grey so alpha does not turn into black.
    """
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > DEFAULT_MAX_PIXELS:    # the guard holds even where the global was raised
            raise DataError(f"{name}: refused: {img.width}x{img.height} = {img.width * img.height / 1e6:.0f} "
                            f"megapixels is above the limit of {DEFAULT_MAX_PIXELS / 1e6:.0f} megapixels "
                            "(decompression bomb guard)")
        if min_side and img.format == "JPEG":
            w, h = img.size
            s = min_side / max(1, min(w, h))
            if s < 1:
                img.draft("RGB", (max(1, int(w * s + 0.999)), max(1, int(h * s + 0.999))))
        img.load()
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{name}: {image_problem(exc)}") from exc
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (128, 128, 128, 255))
        img = Image.alpha_composite(bg, img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.width < 1 or img.height < 1:
        raise DataError(f"{name}: empty image")
    return img


def pyramid_features(img: Image.Image, size: int = 32, levels: int = 4) -> np.ndarray:
    """ImageRearranger-style features: blurred, downscaled copies at ``levels`` scales, flattened.

    The image is squashed to ``size`` x ``size`` (aspect is a feature too), then each level halves
    the side after a Gaussian blur; every level is weighted so it carries the same total energy.
    """
    base = img.convert("RGB").resize((size, size), Image.BILINEAR, reducing_gap=2.0)
    parts = []
    side = size
    for _ in range(levels):
        level = base.filter(ImageFilter.GaussianBlur(radius=max(0.5, size / side / 2))).resize(
            (side, side), Image.BILINEAR) if side != size else base.filter(ImageFilter.GaussianBlur(0.5))
        arr = np.asarray(level, dtype=np.float32).reshape(-1) / 255.0
        parts.append(arr / np.sqrt(arr.size))
        side = max(1, side // 2)
        if side < 2:
            break
    return np.concatenate(parts).astype(np.float32)


# ----------------------------------------------------------------------------- cache

class FeatureCache:
    """Vectors keyed by file-content hash, one folder per feature key, appended in shards."""

    def __init__(self, cache_dir: Optional[str | os.PathLike], key: str):
        self.key = key
        self.dir = Path(cache_dir) / _slug(key) if cache_dir else None
        self.index: dict[bytes, np.ndarray] = {}
        self.pending_h: list[bytes] = []
        self.pending_v: list[np.ndarray] = []
        if self.dir and self.dir.is_dir():
            for shard in sorted(self.dir.glob("shard-*.npz")):
                try:
                    with np.load(shard, allow_pickle=False) as z:
                        for h, v in zip(z["hashes"], z["vectors"]):   # (n, 32) uint8: "S32" would drop trailing NULs
                            self.index[h.tobytes()] = v
                except Exception:  # a damaged shard only costs a recompute
                    continue

    def get(self, h: bytes) -> Optional[np.ndarray]:
        return self.index.get(h)

    def put(self, h: bytes, v: np.ndarray) -> None:
        self.index[h] = v
        self.pending_h.append(h)
        self.pending_v.append(v)

    def flush(self) -> None:
        if not self.dir or not self.pending_h:
            self.pending_h, self.pending_v = [], []
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.dir / "key.txt").exists():  # says which model a cache folder belongs to

            write_text(self.dir / "key.txt", self.key + "\n")
        dest = self.dir / f"shard-{uuid.uuid4().hex[:12]}.npz"
        with atomic_path(dest, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, hashes=np.frombuffer(b"".join(self.pending_h), np.uint8).reshape(-1, 32),
                         vectors=np.stack(self.pending_v))
        self.pending_h, self.pending_v = [], []


def _slug(key: str) -> str:
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in key.replace("|", "_"))[:48]
    return f"{readable}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


# ----------------------------------------------------------------------------- main entry

def feature_key(options: EmbedOptions) -> str:
    """The cache key of the features ``options`` describe (model + weights, or pyramid settings)."""
    if options.features == "pyramid":
        return f"{PYRAMID_VERSION}|{options.pyramid_size}"

    return "clip|" + weights_key(options.model, options.pretrained or None)


def embed_images(source: Source, options: Optional[EmbedOptions] = None, cache_dir: Optional[str | os.PathLike] = None,
                 progress: Optional[ProgressCallback] = None, flush_every: int = 1024) -> Embeddings:
    """Compute (or read from the cache) one feature vector per image. See the module docstring."""
    options = options or EmbedOptions()
    if options.features not in ("clip", "pyramid"):
        raise TrailcamError(f"unknown features {options.features!r}; use 'clip' or 'pyramid'")
    for name in ("batch_size", "workers", "pyramid_size"):
        if int(getattr(options, name)) < 1:
            raise TrailcamError(f"embed option {name} must be at least 1, got {getattr(options, name)!r}")
    progress = ensure(progress)
    records = collect_records(source)

    # Duplicate ids: the first wins, the rest are listed.
    skipped: list[tuple[str, str]] = []
    seen_ids: set[str] = set()
    unique = []
    for rec in records:
        if rec.image_id in seen_ids:
            skipped.append((str(rec.file_name or rec.path), f"duplicate image id {rec.image_id!r}"))
            continue
        seen_ids.add(rec.image_id)
        unique.append(rec)
    records = unique

    clip = None
    if options.features == "clip":

        clip = load_clip(options.model, options.pretrained or None, device=options.device or None)
        key = "clip|" + clip.key
        min_side = clip.image_size
    else:
        key = feature_key(options)
        min_side = options.pyramid_size
    cache = FeatureCache(cache_dir, key)

    def prepare(rec: ImageRecord):
        """Worker: read + hash; on a cache miss also decode and preprocess. Never raises."""
        try:
            data = Path(rec.path).read_bytes()
        except OSError as exc:
            return rec, None, None, f"cannot read file ({exc.strerror or exc})"
        kind = composite_kind(data)
        if kind:                      # a strength grid among generations is not one of them
            return rec, None, None, f"a {kind} (a picture of other pictures), left out"
        h = _hash(data)
        if cache.get(h) is not None:
            return rec, h, None, None
        try:
            img = open_image(data, min_side=min_side, name=str(rec.file_name or rec.path))
            item = clip.preprocess(img) if clip is not None else pyramid_features(img, options.pyramid_size)
        except DataError as exc:
            return rec, h, None, str(exc).split(": ", 1)[-1]
        except Exception as exc:  # a transform failing on a strange image: skip it, name it
            return rec, h, None, f"cannot prepare image ({exc.__class__.__name__}: {exc})"
        return rec, h, item, None

    kept: list[ImageRecord] = []
    hashes: list[bytes] = []
    first_by_hash: dict[bytes, str] = {}
    duplicates: dict[str, str] = {}
    batch_h: list[bytes] = []
    batch_x: list[Any] = []
    computed = 0
    since_flush = 0
    total = len(records)
    done = 0

    def run_batch():
        nonlocal computed, since_flush
        if not batch_h:
            return
        if clip is not None:
            import torch

            vecs = clip.encode_tensors(torch.stack(batch_x))
        else:
            vecs = np.stack(batch_x)
        for h, v in zip(batch_h, vecs):
            cache.put(h, v)
        computed += len(batch_h)
        since_flush += len(batch_h)
        batch_h.clear()
        batch_x.clear()
        if since_flush >= flush_every:
            cache.flush()
            since_flush = 0

    progress(0, total, "reading images")
    prefetch = max(2 * options.batch_size, 4 * options.workers)
    try:
        with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="embed-load") as pool:
            it = iter(records)
            inflight: deque = deque()
            for rec in it:
                inflight.append(pool.submit(prepare, rec))
                if len(inflight) >= prefetch:
                    break
            while inflight:
                rec, h, item, error = inflight.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    inflight.append(pool.submit(prepare, nxt))
                done += 1
                name = str(rec.file_name or rec.path)
                if error:
                    skipped.append((name, error))
                elif h in first_by_hash:
                    duplicates[rec.image_id] = first_by_hash[h]
                    if options.dedupe:
                        skipped.append((name, f"same content as {first_by_hash[h]}"))
                    else:
                        kept.append(rec)
                        hashes.append(h)
                else:
                    first_by_hash[h] = rec.image_id
                    kept.append(rec)
                    hashes.append(h)
                    if item is not None and h not in batch_h:
                        batch_h.append(h)
                        batch_x.append(item)
                if len(batch_h) >= options.batch_size:
                    run_batch()
                    progress(done, total, f"{computed} embedded")
            run_batch()
    finally:
        cache.flush()  # keep what was computed, even when cancelled
    progress(total, total, f"{computed} embedded, {len(kept) - computed} from cache")

    dim = next(iter(cache.index.values())).shape[0] if cache.index else (clip.embed_dim if clip else 0)
    vectors = np.stack([cache.get(h) for h in hashes]).astype(np.float32) if hashes else np.zeros((0, dim), np.float32)
    return Embeddings(ids=[r.image_id for r in kept], files=[str(r.path) for r in kept], vectors=vectors, key=key,
                      records=kept, skipped=skipped, duplicates=duplicates, computed=computed)
