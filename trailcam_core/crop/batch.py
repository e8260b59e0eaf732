"""Batch square crops over a Dataset/Subset or a folder, in parallel, idempotent and atomic.

Writes ``<out_dir>/<image_id>.<ext>`` (video frames: ``<image_id>_<seconds>s.<ext>``) and
``<out_dir>/crops_manifest.csv``, one row per crop:

=================  ==========================================================================
crop_file          the crop, relative to out_dir (POSIX)
image_id           the source record's id (tags and labels follow the crop through it)
source_file        the source's file_name (relative to the dataset root) or its path
frame_time         seconds into the clip for video frames, empty for photos
crop_x/y/w/h       the region cut, in the upright source's full-size pixels
info_bar_top/...   rows dropped as the camera's data strip (0 if none or not asked)
mode, size         the crop mode and output side
label, location    the record's primary label and camera location, when known
source_width/...   the upright source's size in pixels
output_bytes       size of the crop file (checked on reruns)
fingerprint        hash of source path, size, mtime, the options that shape the output and the boxes
=================  ==========================================================================

A rerun skips every source whose fingerprint matches and whose crops are all present, so an
interrupted batch finishes the rest; a changed source or option redoes it.  The manifest is
rewritten atomically after the first crop, then every second or so and at the end; each crop
is written to a temp file and renamed (no per-file fsync, see :func:`write_atomic`), so a killed
batch leaves no half-written crop (stray temp files are removed next run).
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import re
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Optional

from PIL import Image

from trailcam_core.base import (BatchReport, Box, DataError, ensure, IMAGE_EXTENSIONS, ImageRecord, is_within,
                                safe_relative, TrailcamError, VIDEO_EXTENSIONS, write_text)
from trailcam_core.crop.geometry import CropOptions, fast_modules, cut
from trailcam_core.crop.single import BadInput, save, crop_jpeg_fast, load_upright, write_atomic
from trailcam_core.ingest import iter_frames

MANIFEST = "crops_manifest.csv"
COLUMNS = ["crop_file", "image_id", "source_file", "frame_time", "crop_x", "crop_y", "crop_w", "crop_h",
           "info_bar_top", "info_bar_bottom", "mode", "size", "label", "location", "source_width",
           "source_height", "output_bytes", "fingerprint"]
_CHECKPOINT_S = 1.0         # seconds between manifest checkpoints (what a killed run keeps)
_TEMP_RE = re.compile(r"^\..+\.part$")      # temp files: .<name>.<random or pid-n>[<suffix>].part


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def records_from_folder(folder: str | os.PathLike, exclude: Optional[Path] = None) -> list[ImageRecord]:
    """One record per image or video file under ``folder`` (recursively, hidden entries skipped).

    The id is the path relative to the folder (``cam1/IMG_0001.JPG``), as the dataset module's
    folder loader names it; the location is the first sub-folder.  The crop drops the source's
    extension (``cam1/IMG_0001.jpg``).
    """
    root = Path(folder)
    if not root.is_dir():
        raise TrailcamError(f"folder {root} does not exist")
    exts = set(IMAGE_EXTENSIONS) | set(VIDEO_EXTENSIONS)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and not (exclude is not None and (here / d).resolve() == exclude.resolve()))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in exts:
                continue
            rel = (here / name).relative_to(root).as_posix()
            parts = rel.split("/")
            out.append(ImageRecord(image_id=rel, path=here / name, file_name=rel,
                                   location=parts[0] if len(parts) > 1 else None))
    return out


def crop_stem(rec: ImageRecord, taken: set = frozenset()) -> str:
    """The crop's file name without extension: the image id, minus the source's own extension
    when the id carries it (folder ids do: ``cam1/IMG_0001.JPG`` -> ``cam1/IMG_0001``), unless
    another source already took that name (``a.jpg`` and ``a.png`` -> ``a`` and ``a.png``)."""
    stem = str(rec.image_id)
    suffix = Path(rec.file_name or str(rec.path)).suffix
    if suffix and stem.lower().endswith(suffix.lower()) and len(stem) > len(suffix):
        short = stem[: -len(suffix)]
        if short.lower() not in taken:
            return short
    return stem


def _as_records(source: Any, out_dir: Path) -> list[ImageRecord]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return records_from_folder(path, exclude=out_dir)
        if path.is_file() and path.suffix.lower() == ".json":
            try:
                from trailcam_core.ingest import load_dataset
            except ImportError as exc:
                raise TrailcamError(f"cannot read {path}: the dataset module is not available ({exc})") from None
            return list(load_dataset(path).records())
        raise TrailcamError(f"crop source {path} is neither a folder nor a CCT JSON file")
    if hasattr(source, "records") and callable(source.records):
        return list(source.records())
    records = list(source)
    for r in records:
        if not isinstance(r, ImageRecord):
            raise TrailcamError(f"crop_batch expects ImageRecord items, got {type(r).__name__}")
    return records


_OPTIONS_CACHE: dict[tuple, CropOptions] = {}


def _row(crop_file: str, task: dict, box, bar, size, nbytes: int, frame_time: Optional[float]) -> dict:
    opts = task["options"]
    return {"crop_file": crop_file, "image_id": task["image_id"], "source_file": task["source_file"],
            "frame_time": "" if frame_time is None else f"{frame_time:.3f}",
            "crop_x": box[0], "crop_y": box[1], "crop_w": box[2] - box[0], "crop_h": box[3] - box[1],
            "info_bar_top": bar.top, "info_bar_bottom": bar.bottom, "mode": opts["mode"], "size": opts["size"],
            "label": task["label"] or "", "location": task["location"] or "", "source_width": size[0],
            "source_height": size[1], "output_bytes": nbytes, "fingerprint": task["fingerprint"]}


def run_task(task: dict) -> dict:
    """Crop one source (photo or clip). Returns ``{"image_id", "rows"}`` or ``{"image_id", "error"}``."""
    key = tuple(sorted(task["options"].items()))
    options = _OPTIONS_CACHE.get(key) or _OPTIONS_CACHE.setdefault(key, CropOptions(**task["options"]))
    boxes = [Box(*b) for b in task["boxes"]]
    out_dir, path = Path(task["out_dir"]), Path(task["path"])
    try:
        if task["video"]:
            rows = []
            for t, frame in iter_frames(path, options.video_interval, options.video_frames == "keyframes",
                                        options.max_frames, options.max_pixels):
                out, box, bar = cut(frame, boxes, options)
                name = f"{task['stem']}_{t:09.3f}s{options.extension}"
                nbytes = save(out, out_dir / name, options)
                rows.append(_row(name, task, box, bar, frame.size, nbytes, t))
            return {"image_id": task["image_id"], "rows": rows}
        name = task["stem"] + options.extension
        fast = crop_jpeg_fast(path, boxes, options)
        if fast is not None:
            data, box, bar, full = fast
            write_atomic(out_dir / name, data)
            nbytes = len(data)
        else:
            img, full = load_upright(path, boxes, options)
            with img:
                out, box, bar = cut(img, boxes, options, scale=full[0] / img.width, full_size=full)
            nbytes = save(out, out_dir / name, options)
        return {"image_id": task["image_id"], "rows": [_row(name, task, box, bar, full, nbytes, None)]}
    except BadInput as exc:
        return {"image_id": task["image_id"], "error": str(exc)}
    except DataError as exc:
        return {"image_id": task["image_id"], "error": str(exc)}
    except (OSError, ValueError, MemoryError) as exc:
        return {"image_id": task["image_id"], "error": f"{type(exc).__name__}: {exc}"}


def _one_cv2_thread() -> Optional[int]:
    """Keep OpenCV's resize on one thread (the pool already uses every core); returns the old count."""
    mods = fast_modules()
    if mods is None:
        return None
    old = mods[0].getNumThreads()
    mods[0].setNumThreads(1)
    return old


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------
def read_manifest(path: str | os.PathLike) -> list[dict]:
    """The rows of a crops manifest (all values as strings); [] when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write_manifest(path: Path, rows_by_id: dict[str, list[dict]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for image_id in sorted(rows_by_id):
        for row in sorted(rows_by_id[image_id], key=lambda r: float(r.get("frame_time") or 0)):
            writer.writerow(row)
    write_text(path, buf.getvalue())


def _fingerprint(path: Path, st: os.stat_result, options: CropOptions, boxes: list[Box]) -> str:
    key = options.output_key()
    if path.suffix.lower() not in VIDEO_EXTENSIONS:          # video settings do not shape a photo's crop
        key = {k: v for k, v in key.items() if not k.startswith("video_") and k != "max_frames"}
    payload = [str(path.resolve()), st.st_size, st.st_mtime_ns, key]
    if options.mode == "bbox":
        payload.append([[b.x, b.y, b.w, b.h, b.score] for b in boxes])
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _rows_intact(out_dir: Path, rows: list[dict]) -> bool:
    for row in rows:
        try:
            if (out_dir / row["crop_file"]).stat().st_size != int(row["output_bytes"]):
                return False
        except (OSError, ValueError, KeyError):
            return False
    return bool(rows)


def _clean_temp(out_dir: Path) -> None:
    """Remove temp files a killed run left behind (never finished crops)."""
    for dirpath, _, filenames in os.walk(out_dir):
        for name in filenames:
            if _TEMP_RE.match(name):
                try:
                    os.unlink(os.path.join(dirpath, name))
                except OSError:
                    pass


# --------------------------------------------------------------------------------------------
# The batch
# --------------------------------------------------------------------------------------------
def _worker_count(options: CropOptions, n_tasks: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(options.workers or cores, n_tasks))


def _results(tasks: list[dict], workers: int):
    """Yield run_task results: in-process for one worker, else from a pool of threads.

    Threads, not processes: JPEG decode and encode (Pillow) and the resize (OpenCV) release the
    GIL, so threads use every core without the ~0.3 s per worker a spawned process spends
    importing numpy, Pillow and OpenCV, and nothing is copied between processes.
    """
    old = _one_cv2_thread()
    try:
        if workers <= 1:
            for task in tasks:
                yield run_task(task)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="trailcam-crop") as pool:
            pending = set()
            it = iter(tasks)
            for task in itertools.islice(it, workers * 4):      # bounded queue: results stream, memory stays flat
                pending.add(pool.submit(run_task, task))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.add(pool.submit(run_task, nxt))
                    yield fut.result()
    finally:
        if old is not None:
            fast_modules()[0].setNumThreads(old)


def crop_batch(records_or_folder: Any, out_dir: str | os.PathLike, options: Optional[CropOptions] = None,
               progress=None) -> BatchReport:
    """Crop every record (an iterable of ImageRecord, a Dataset/Subset, a folder or a CCT JSON path).

    Writes ``<out_dir>/<image_id>.<ext>`` per photo, ``<image_id>_<t>s.<ext>`` per video frame and
    ``crops_manifest.csv`` (see the module docstring).  Bad inputs are skipped with the reason;
    up-to-date crops are counted in ``up_to_date``.  ``progress(done, total, message, preview)``
    is called as sources finish; raising Cancelled from it stops the batch (the manifest keeps
    what was done).  Example::

        report = crop_batch(subset, "crops", CropOptions(size=512, mode="bbox"))
    """
    options = options or CropOptions()
    out_dir = Path(out_dir)
    records = _as_records(records_or_folder, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = BatchReport("crop")
    manifest_path = out_dir / MANIFEST
    report.outputs = {"crops": out_dir, "manifest": manifest_path}
    cb = ensure(progress)
    _clean_temp(out_dir)

    rows_by_id: dict[str, list[dict]] = {}
    for row in read_manifest(manifest_path):
        rows_by_id.setdefault(row.get("image_id", ""), []).append(row)

    tasks, seen, names = [], set(), set()
    opts = {k: v for k, v in vars(options).items()}
    total = len(records)
    for rec in records:
        item = rec.file_name or rec.image_id
        if rec.image_id in seen:
            report.skip(item, f"duplicate image id {rec.image_id!r} (another source has the same id)")
            continue
        seen.add(rec.image_id)
        stem = crop_stem(rec, names)
        try:
            safe_relative(stem + options.extension, "image id")
        except TrailcamError as exc:
            report.skip(item, str(exc))
            continue
        names.add(stem.lower())
        path = Path(rec.path)
        try:
            st = path.stat()
        except OSError:
            report.skip(item, f"missing file {path}")
            continue
        if is_within(path, out_dir):
            report.skip(item, "source lies inside the output folder")
            continue
        fp = _fingerprint(path, st, options, rec.boxes)
        old = rows_by_id.get(rec.image_id, [])
        if not options.force and old and all(r.get("fingerprint") == fp for r in old) and _rows_intact(out_dir, old):
            report.up_to_date += 1
            continue
        tasks.append({"image_id": rec.image_id, "stem": stem, "path": str(path), "source_file": rec.file_name or str(path),
                      "boxes": [(b.x, b.y, b.w, b.h, b.category, b.score) for b in rec.boxes],
                      "video": path.suffix.lower() in VIDEO_EXTENSIONS, "options": opts, "out_dir": str(out_dir),
                      "label": rec.label, "location": rec.location, "fingerprint": fp})
    if options.mode == "bbox":            # bbox mode on images without boxes falls back to centre: say so
        boxless = sum(1 for t in tasks if not t["boxes"])
        if boxless:
            report.outputs["no_boxes"] = (f"{boxless} of {len(tasks)} images have no boxes: centre crop used "
                                          "(load a bbox file or detections for them)")
    done = total - len(tasks)
    cb(done, total, f"{report.up_to_date} up to date" if report.up_to_date else "")

    # the first crop is checkpointed at once (a one-row manifest costs nothing), then every second
    # or so: a killed batch keeps what it did however early it is stopped
    last_save, save_every = time.monotonic(), 0.0
    source_of = {t["image_id"]: t["source_file"] for t in tasks}
    results = _results(tasks, _worker_count(options, len(tasks)))
    finished = False
    try:
        for result in results:
            done += 1
            image_id = result["image_id"]
            if "error" in result:
                report.skip(source_of[image_id], result["error"])
                cb(done, total, f"skipped {image_id}")
                continue
            new_rows = result["rows"]
            new_files = {r["crop_file"] for r in new_rows}
            for old in rows_by_id.get(image_id, []):          # outputs of an older run that changed
                stale = old.get("crop_file", "")
                if stale and stale not in new_files:
                    try:
                        target = out_dir / safe_relative(stale, "crop file")
                        target.unlink(missing_ok=True)
                    except (TrailcamError, OSError):
                        pass
            rows_by_id[image_id] = new_rows
            report.processed += 1
            preview = None
            if time.monotonic() - last_save >= save_every:
                t0 = time.monotonic()
                _write_manifest(manifest_path, rows_by_id)
                last_save = time.monotonic()
                save_every = max(_CHECKPOINT_S, 20 * (last_save - t0))   # keep checkpoints under ~5 % of the time
                preview = _lazy_preview(out_dir, new_rows)
            cb(done, total, image_id, preview)
        finished = True
    finally:
        results.close()                 # stops the pool now (waits for the crops in flight)
        _write_manifest(manifest_path, rows_by_id)
        if not finished:
            _clean_temp(out_dir)
    return report


def _lazy_preview(out_dir: Path, rows: list[dict]):
    try:
        return Image.open(out_dir / rows[0]["crop_file"]) if rows else None
    except Exception:
        return None
