"""Load a plain folder of camera-trap images and videos (no JSON) into a Dataset.

- one row per file with an image or video extension (hidden files and folders are ignored);
- ``location`` is the first sub-folder under the root (files directly in the root take the
  root folder's own name): ``cams/ridge/IMG_0001.JPG`` -> location ``ridge``;
- ``datetime`` from EXIF DateTimeOriginal, else the video's creation_time, else the file's
  modification time;
- images in the same location taken less than ``burst_gap`` seconds apart form a sequence
  (``seq_id``, ``frame_num``, ``seq_num_frames``), the way trail cameras shoot bursts;
- ``label`` is unknown (<NA>); files that cannot be read go to ``Dataset.skipped``.
"""
from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from trailcam_core.base import ensure, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS

BURST_GAP_S = 3.0


def list_media(root: Path) -> list[Path]:
    """Image and video files under ``root`` (sorted, hidden entries skipped, symlinks not followed)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in MEDIA_EXTENSIONS:
                out.append(Path(dirpath) / name)
    return out


def exif_datetime(img) -> Optional[datetime]:
    """DateTimeOriginal (tag 36867 in the Exif IFD) of an open PIL image, or None."""
    try:
        exif = img.getexif()
        value = exif.get_ifd(0x8769).get(36867) or exif.get(36867)
    except Exception:
        return None
    if not value:
        return None
    try:
        return datetime.strptime(str(value).strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def _probe_image(path: Path) -> tuple[int, int, Optional[datetime]]:
    from PIL import Image

    with Image.open(path) as img:
        return img.width, img.height, exif_datetime(img)


def _probe_video(path: Path) -> tuple[int, int, Optional[datetime]]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        when = None
        created = container.metadata.get("creation_time") or stream.metadata.get("creation_time")
        if created:
            try:
                t = pd.Timestamp(created).floor("s")
                when = (t.tz_convert(None) if t.tzinfo is not None else t).to_pydatetime()
            except (ValueError, TypeError):
                when = None
        return stream.codec_context.width, stream.codec_context.height, when


def listing_key(root: Path, files: list[Path]) -> str:
    h = hashlib.sha256(b"trailcam-folder-v2\0")
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def scan_folder(source: Path, files: list[Path], progress=None, burst_gap: float = BURST_GAP_S):
    """Probe ``files`` (from :func:`list_media`) of the folder ``source``.

    Returns (images table, empty annotations table, skipped ``(file, reason)`` pairs): one row per
    readable image or video, with its size, capture time (EXIF, else the file's time), location
    (the first folder level) and a sequence id for bursts ``burst_gap`` seconds apart.
    """
    import pyarrow as pa

    report = ensure(progress)
    rows, skipped = [], []
    for k, path in enumerate(files):
        rel = path.relative_to(source).as_posix()
        video = path.suffix.lower() in VIDEO_EXTENSIONS
        try:
            w, h, when = (_probe_video if video else _probe_image)(path)
            if when is None:
                when = datetime.fromtimestamp(int(path.stat().st_mtime))  # whole seconds, as cameras write
        except Exception as exc:  # unreadable or not really an image: skip and report
            skipped.append((rel, f"cannot read {'video' if video else 'image'}: {exc}"))
            report(k + 1, len(files), rel)
            continue
        parts = rel.split("/")
        location = parts[0] if len(parts) > 1 else source.resolve().name
        rows.append((rel, rel, w, h, location, when, "video" if video else "image"))
        report(k + 1, len(files), rel)
    images = pd.DataFrame(rows, columns=["image_id", "file_name", "width", "height", "location", "datetime",
                                         "media"])
    images = images.astype({"image_id": "str", "file_name": "str", "location": "str", "media": "str",
                            "width": "Int64", "height": "Int64"})
    images["datetime"] = pd.to_datetime(images["datetime"]).astype("datetime64[us]")
    _assign_sequences(images, burst_gap)
    annotations = pa.table({"annotation_id": pa.array([], pa.string()), "image_id": pa.array([], pa.string()),
                            "category_id": pa.array([], pa.int64()), "category": pa.array([], pa.string()),
                            **{c: pa.array([], pa.float64()) for c in ("bbox_x", "bbox_y", "bbox_w", "bbox_h", "score")},
                            "image_row": pa.array([], pa.int32())})
    return pa.Table.from_pandas(images, preserve_index=False), annotations, skipped


def _assign_sequences(images: pd.DataFrame, gap: float) -> None:
    """Group images of one location shot within ``gap`` seconds into a sequence; videos stand alone."""
    if images.empty:
        for col in ("seq_id", "frame_num", "seq_num_frames"):
            images[col] = pd.Series([], dtype="str" if col == "seq_id" else "Int64")
        return
    order = images.sort_values(["location", "datetime", "file_name"]).index.to_numpy()
    seq = np.empty(len(images), dtype=object)
    frame = np.zeros(len(images), dtype=np.int64)
    prev_loc, prev_t, current, n = None, None, None, 0
    for i in order:
        loc, t, media = images.at[i, "location"], images.at[i, "datetime"], images.at[i, "media"]
        new = (media == "video" or loc != prev_loc or prev_t is None or pd.isna(t) or
               (t - prev_t).total_seconds() > gap or current is None or current.startswith("video:"))
        if new:
            current = ("video:" if media == "video" else "") + images.at[i, "image_id"]
            n = 0
        n += 1
        seq[i], frame[i] = current, n
        prev_loc, prev_t = loc, t
    images["seq_id"] = pd.Series(seq, index=images.index).str.removeprefix("video:").astype("str")
    images["frame_num"] = pd.array(frame, dtype="Int64")
    images["seq_num_frames"] = pd.array(images.groupby("seq_id")["seq_id"].transform("size").to_numpy(),
                                        dtype="Int64")

