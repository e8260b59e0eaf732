"""Automatic tags per image: species, time of day, camera-glitch artifacts, location, info bar.

Each tag is a :class:`Tag` (value, source, score) under a key; sources say where it came from:
``label`` (the CCT metadata: categories, location, date), ``pixels`` (measured on the image),
``model`` (a zero-shot or detector score) and ``hand`` (a person's edit, see curation.py).

    tags = auto_tags(record, TagOptions())
    tags["time_of_day"]   -> Tag(value="night-infrared", source="pixels", score=0.97)
    tags["artifact"]      -> Tag(value="clean", source="pixels", score=0.08)

Time of day comes from pixel statistics (infrared night frames are stored as RGB with R = G = B;
colour-flash night frames have a lit centre in dark surroundings; twilight is dim and washed out),
read with the info strip left out, and combined with the capture hour when the record has one.
The artifact score (0..1) is the largest of five detectors: horizontal tearing, banding,
colour-channel misalignment, blown / flat rows and smeared rows; ``artifact_threshold`` turns it
into the ``glitch`` / ``clean`` tag (precision and recall: benchmarks/bench_artifacts.py).

Tagging a whole collection into a project's curation state: :func:`tag_collection`.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
from PIL import Image

from trailcam_core.tags.artifacts import artifact_score
from trailcam_core.tags.model import Tag
from trailcam_core.base import (BatchReport, DEFAULT_MAX_PIXELS, ensure, IMAGE_EXTENSIONS, ImageRecord, option,
                                Options, ProgressCallback, TrailcamError)
from trailcam_core.ingest import load_dataset
from trailcam_core.tags.curation import Project

STATE_WARNING = "curation state"
TAGGER_VERSION = 2        # bump when a pixel measurement changes: earlier results are then redone


@dataclass
class TagOptions(Options):
    """Parameters of the auto-tagging stage (CLI flags, node inputs and Gradio controls read these)."""

    STAGE = "tag"

    artifact_threshold: float = option(0.5, "Artifact score (0..1) at or above which a frame is tagged 'glitch'",
                                       min=0.0, max=1.0, step=0.01)
    latitude: float = option(34.0, "Latitude of the cameras in degrees, for sunrise/sunset from the capture time",
                             min=-66.0, max=66.0)
    twilight_minutes: int = option(45, "Minutes either side of sunrise/sunset counted as twilight", min=0, max=180)
    min_label_score: float = option(0.2, "Ignore model-scored labels (zero-shot, detector) below this score",
                                    min=0.0, max=1.0, step=0.01)
    analysis_size: int = option(512, "Images are analysed at about this width (JPEG draft decoding)",
                                min=128, max=4096)
    overwrite_hand: bool = option(False, "Replace tags a person edited by hand (normally kept)")
    workers: int = option(0, "Worker processes for pixel analysis (0 = automatic, 1 = none)", min=0, max=64)


# ----------------------------------------------------------------------------------------- decode

class UnreadableImage(TrailcamError):
    """An image file that cannot be decoded (missing, truncated, not an image)."""


def load_for_analysis(path: str | os.PathLike, size: int = 512) -> tuple[Image.Image, Optional[datetime]]:
    """Decode ``path`` at roughly ``size`` wide (JPEG draft mode) -> (RGB image, EXIF capture time)."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > DEFAULT_MAX_PIXELS:     # never decode a bomb, whatever the global says
                raise UnreadableImage(f"{path}: refused: {im.width}x{im.height} is above the limit of "
                                      f"{DEFAULT_MAX_PIXELS / 1e6:.0f} megapixels (decompression bomb guard)")
            when = _exif_datetime(im)
            im.draft("RGB", (size, size))
            im = im.convert("RGB")
            im.load()
    except FileNotFoundError as exc:
        raise UnreadableImage(f"{path}: file not found") from exc
    except UnreadableImage:
        raise
    except Exception as exc:  # PIL raises many kinds for truncated / corrupt files
        raise UnreadableImage(f"{path}: cannot decode image ({exc})") from exc
    if im.width > size * 1.25:        # measurements are tuned at about ``size`` pixels wide
        im = im.resize((size, max(1, round(im.height * size / im.width))), Image.Resampling.BILINEAR)
    return im, when


def load_with_strip(path: str | os.PathLike, size: int = 512):
    """:func:`load_for_analysis` plus the frame's info strip and logos, found by the crop stage's
    detector on the decode itself (at least ``MIN_STRIP_ROWS`` rows, before the analysis resize
    blurs the strip's text), so the tagger and ``crop`` see the same strip.

    Returns ``(RGB image at about size wide, EXIF time, InfoBar in that image's pixels)``.
    """
    from trailcam_core.crop import detect_info_bar, InfoBar, MIN_STRIP_ROWS

    try:
        with Image.open(path) as im:
            when = _exif_datetime(im)
            im.draft("RGB", (size, MIN_STRIP_ROWS))
            im = im.convert("RGB")
            im.load()
    except FileNotFoundError as exc:
        raise UnreadableImage(f"{path}: file not found") from exc
    except Exception as exc:  # PIL raises many kinds for truncated / corrupt files
        raise UnreadableImage(f"{path}: cannot decode image ({exc})") from exc
    bar = detect_info_bar(im) if im.height >= 16 else InfoBar(0, 0)
    if im.width > size * 1.25:        # measurements are tuned at about ``size`` pixels wide
        small = im.resize((size, max(1, round(im.height * size / im.width))), Image.Resampling.BILINEAR)
        bar = bar.scaled(small.height / im.height)
        if bar.present:                # the resize smears the strip's edge into one more row
            bar = bar._replace(top=bar.top + 1 if bar.top else 0, bottom=bar.bottom + 1 if bar.bottom else 0)
        im = small
    return im, when, bar


def _exif_datetime(img: Image.Image) -> Optional[datetime]:
    try:
        from trailcam_core.ingest import exif_datetime
    except ImportError:
        return None
    return exif_datetime(img)


def _info_bar(img: Image.Image) -> tuple[int, int]:
    """Rows of info strip (top, bottom) via crop.detect_info_bar; (0, 0) when crop is unavailable."""
    try:
        from trailcam_core.crop import detect_info_bar
    except ImportError:
        return 0, 0
    bar = detect_info_bar(img)
    return int(getattr(bar, "top", 0) or 0), int(getattr(bar, "bottom", 0) or 0)


# ----------------------------------------------------------------------------------- time of day

def image_statistics(rgb: np.ndarray) -> dict:
    """Colour and brightness statistics of an RGB array (info strip already removed)."""
    a = rgb.astype(np.float32)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    spread = a.max(axis=-1) - a.min(axis=-1)
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = math.hypot(float(rg.std()), float(yb.std())) + 0.3 * math.hypot(float(rg.mean()), float(yb.mean()))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    h, w = y.shape
    centre = y[h // 4: 3 * h // 4, w // 4: 3 * w // 4]
    return {
        "gray_fraction": float((spread <= 3).mean()),     # R = G = B (JPEG leaves +-1..2)
        "colourfulness": colourfulness,                   # Hasler & Suesstrunk
        "brightness": float(y.mean()),
        "centre_brightness": float(centre.mean()),
        "dark_fraction": float((y < 30).mean()),
        "p10": float(np.percentile(y, 10)),
        "p90": float(np.percentile(y, 90)),
    }


def sun_phase(when: Optional[datetime], latitude: float = 34.0, twilight_minutes: int = 45) -> Optional[str]:
    """"day", "twilight" or "night" for a local capture time (None when unknown).

    Uses the solar declination for the day of year at ``latitude``; camera clocks are local
    standard time, so solar noon is taken as 12:00 (good to about half an hour in most places).
    """
    if when is None or (isinstance(when, float) and math.isnan(when)):
        return None
    try:
        doy = when.timetuple().tm_yday
        hour = when.hour + when.minute / 60 + when.second / 3600
    except (AttributeError, ValueError):
        return None
    decl = math.radians(-23.44) * math.cos(2 * math.pi / 365 * (doy + 10))
    x = -math.tan(math.radians(latitude)) * math.tan(decl)
    half_day = math.degrees(math.acos(max(-1.0, min(1.0, x)))) / 15.0   # hours from noon to sunset
    margin = twilight_minutes / 60.0
    from_noon = abs(hour - 12.0)
    if from_noon <= half_day - margin:
        return "day"
    if from_noon <= half_day + margin:
        return "twilight"
    return "night"


def time_of_day(stats: dict, when: Optional[datetime] = None, latitude: float = 34.0,
                twilight_minutes: int = 45) -> tuple[str, float]:
    """Decide day / night-infrared / night-flash / twilight -> (value, confidence 0..1)."""
    gray = stats["gray_fraction"] >= 0.9 or stats["colourfulness"] < 2.0
    # flash: a lit subject in black surroundings, and not the deep colours of a sunset sky
    flash = stats["dark_fraction"] >= 0.45 and stats["p10"] < 8 and stats["colourfulness"] < 30
    dim = stats["brightness"] < 60 and stats["colourfulness"] < 20
    phase = sun_phase(when, latitude, twilight_minutes)
    if gray:
        return "night-infrared", min(1.0, 0.5 + stats["gray_fraction"] / 2)
    if phase == "night":
        return "night-flash", 0.9 if flash or dim else 0.6
    if phase == "twilight":
        if flash and stats["dark_fraction"] >= 0.5:
            return "night-flash", 0.7
        return "twilight", 0.8 if dim else 0.6
    if phase == "day":
        if flash and stats["dark_fraction"] >= 0.6:
            return "night-flash", 0.5     # the clock disagrees with the pixels; the pixels win weakly
        return "day", 0.9 if not dim else 0.6
    if flash:
        return "night-flash", 0.7
    if dim:
        return "twilight", 0.5
    return "day", 0.8


# ----------------------------------------------------------------------------------- one image

def pixel_tags(path: str | os.PathLike, when: Optional[datetime] = None,
               options: Optional[TagOptions] = None) -> dict[str, Tag]:
    """Tags measured on the pixels of one image; an undecodable file gives ``unreadable`` only."""
    options = options or TagOptions()
    try:
        img, exif_when, info = load_with_strip(path, options.analysis_size)
    except UnreadableImage as exc:
        return {"unreadable": Tag(str(exc).split(": ", 1)[-1], "pixels")}
    when = when or exif_when
    top, bottom = info.top, info.bottom
    rgb = np.asarray(img)
    cut_top, cut_bottom = info.cut_top, info.cut_bottom(rgb.shape[0])     # the logos left out too
    body = rgb[cut_top: rgb.shape[0] - cut_bottom] if cut_top + cut_bottom < rgb.shape[0] - 16 else rgb
    stats = image_statistics(body)
    tod, conf = time_of_day(stats, when, options.latitude, options.twilight_minutes)
    score, _ = artifact_score(body)
    bar = "both" if top and bottom else "top" if top else "bottom" if bottom else "none"
    return {
        "time_of_day": Tag(tod, "pixels", conf),
        "artifact": Tag("glitch" if score >= options.artifact_threshold else "clean", "pixels", score),
        "info_bar": Tag(bar, "pixels"),
    }


def label_tags(record: ImageRecord, min_label_score: float = 0.2,
               label_scores: Optional[dict[str, float]] = None) -> dict[str, Tag]:
    """Tags from the metadata: species (source ``label``, or ``model`` when scored) and location."""
    out: dict[str, Tag] = {}
    scores = label_scores or {}
    names = [n for n in record.labels if n]
    if scores:
        # labels a person made win; of the model's top-k guesses only the best one is a tag
        labelled = [n for n in names if n not in scores]
        guesses = [(scores[n], n) for n in names if n in scores and scores[n] >= min_label_score]
        if labelled:
            animals = [n for n in labelled if n != "empty"] or labelled
            out["species"] = Tag(animals if len(animals) > 1 else animals[0], "label")
        elif guesses:
            score, name = max(guesses)
            out["species"] = Tag(name, "model", score)
    elif names:
        animals = [n for n in names if n != "empty"] or names
        out["species"] = Tag(animals if len(animals) > 1 else animals[0], "label")
    if record.location not in (None, "", "nan"):
        out["location"] = Tag(str(record.location), "label")
    return out


def auto_tags(record: ImageRecord, options: Optional[TagOptions] = None,
              label_scores: Optional[dict[str, float]] = None) -> dict[str, Tag]:
    """Every automatic tag of one record: labels first, then pixels. Example: ``auto_tags(rec)``."""
    options = options or TagOptions()
    tags = label_tags(record, options.min_label_score, label_scores)
    tags.update(pixel_tags(record.path, _as_datetime(record.datetime), options))
    return tags


def _as_datetime(value: Any) -> Optional[datetime]:
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
    except (ImportError, TypeError, ValueError):
        pass
    return value if isinstance(value, datetime) else None


def _pixel_job(args: tuple) -> dict:
    path, when, options = args
    return {k: t.to_dict() for k, t in pixel_tags(path, when, options).items()}


def tag_records(records: Iterable[ImageRecord], options: Optional[TagOptions] = None,
                progress: Optional[ProgressCallback] = None,
                label_scores: Optional[dict[str, dict[str, float]]] = None) -> dict[str, dict[str, Tag]]:
    """Auto tags for many records -> {image_id: {key: Tag}}; pixel work in a process pool.

    ``label_scores`` maps image_id -> {label: score} for labels a model wrote (zero-shot).
    Undecodable images come back tagged ``unreadable``; nothing raises for one bad file.
    """
    options = options or TagOptions()
    progress = ensure(progress)
    records = list(records)
    label_scores = label_scores or {}
    total = len(records)
    out: dict[str, dict[str, Tag]] = {r.image_id: label_tags(r, options.min_label_score, label_scores.get(r.image_id))
                                      for r in records}
    jobs = [(str(r.path), _as_datetime(r.datetime), options) for r in records]
    workers = options.workers or min(os.cpu_count() or 1, 8)
    workers = 1 if total < 16 else min(workers, max(1, total // 8))
    progress(0, total, "tagging")
    if workers <= 1:
        results = map(_pixel_job, jobs)
        executor = None
    else:
        # forkserver: workers start from a clean process, not a fork of a threaded server (Gradio, ComfyUI)
        import multiprocessing

        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
        results = executor.map(_pixel_job, jobs, chunksize=max(1, min(16, total // (workers * 4))))
    try:
        for i, (rec, res) in enumerate(zip(records, results), 1):
            out[rec.image_id].update({k: Tag.from_dict(v) for k, v in res.items()})
            progress(i, total, rec.file_name or rec.image_id)
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    return out


def folder_records(folder: str | os.PathLike) -> list[ImageRecord]:
    """Records for every image under ``folder`` (recursive, sorted, hidden folders left out).

    ``image_id`` = ``file_name`` = the path relative to the folder (POSIX), as the dataset's
    folder loader and embed.py name them.
    """
    root = Path(folder)
    if not root.is_dir():
        raise TrailcamError(f"{root}: not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    return [ImageRecord(image_id=p.relative_to(root).as_posix(), path=p.resolve(),
                        file_name=p.relative_to(root).as_posix()) for p in files]


# ------------------------------------------------------------------------- a whole collection

def _label_scores(ds) -> dict[str, dict[str, float]]:
    """image_id -> {category: score} for annotations a model scored (zero-shot, detector)."""
    ann = ds.annotations
    if "score" not in ann.columns:
        return {}
    scored = ann[ann["score"].notna()]
    out: dict[str, dict[str, float]] = {}
    for iid, cat, score in zip(scored["image_id"], scored["category"], scored["score"]):
        d = out.setdefault(str(iid), {})
        d[str(cat)] = max(float(score), d.get(str(cat), 0.0))
    return out


def collection_records(source: str | os.PathLike, metadata: Optional[str | os.PathLike] = None,
                       image_root: Optional[str | os.PathLike] = None
                       ) -> tuple[list[ImageRecord], Path, dict[str, dict[str, float]]]:
    """Records of a collection -> (records, default project folder, model label scores).

    ``source`` is a folder of images (e.g. square crops) or a CCT JSON. With a folder,
    ``metadata`` (a CCT JSON) lends each image its labels, location and capture time, matched by
    image id = the file's stem (crops are written as ``<image_id>.jpg``) or by file name.
    """

    source = Path(source).expanduser()
    if source.is_dir():
        records = folder_records(source)
        root = source
        scores: dict[str, dict[str, float]] = {}
        if metadata is not None:
            ds = load_dataset(metadata, image_root=image_root)
            meta = {r.image_id: r for r in ds.records()}
            by_name = {Path(r.file_name).stem: r for r in meta.values()}
            all_scores = _label_scores(ds)
            for rec in records:
                stem = Path(rec.file_name).stem
                m = meta.get(stem) or by_name.get(stem) or meta.get(rec.image_id)
                if m is None:
                    continue
                rec.labels, rec.location, rec.datetime = list(m.labels), m.location, m.datetime
                rec.seq_id, rec.frame_num = m.seq_id, m.frame_num
                if m.image_id in all_scores:
                    scores[rec.image_id] = all_scores[m.image_id]
        return records, root, scores
    if metadata is not None:
        raise TrailcamError("--metadata goes with a folder of images; a CCT JSON source carries its own")
    if not source.is_file():
        raise TrailcamError(f"{source}: no such file or folder")
    ds = load_dataset(source, image_root=image_root)
    return ds.records(), Path(ds.root), _label_scores(ds)


def _stamp(rec: ImageRecord, options: TagOptions, scores: Optional[dict]) -> str:
    """What an auto-tagging result depends on: the file, the metadata and the options."""
    try:
        st = os.stat(rec.path)
        f = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        f = "missing"
    meta = f"{sorted(rec.labels)}|{rec.location}|{rec.datetime}|{sorted((scores or {}).items())}"
    opts = (f"{options.artifact_threshold}|{options.latitude}|{options.twilight_minutes}|"
            f"{options.min_label_score}|{options.analysis_size}|v{TAGGER_VERSION}")
    import hashlib

    return hashlib.sha1(f"{f}|{meta}|{opts}".encode()).hexdigest()[:16]


def tag_collection(source: str | os.PathLike, project_dir: Optional[str | os.PathLike] = None,
                   options: Optional[TagOptions] = None, metadata: Optional[str | os.PathLike] = None,
                   image_root: Optional[str | os.PathLike] = None, force: bool = False,
                   progress: Optional[ProgressCallback] = None, save_every: int = 256):
    """Auto-tag a collection into its project's curation state -> BatchReport.

    The project folder defaults to the images' folder (a CCT JSON's image root). Images already
    tagged with the same file, metadata and options are up to date and not analysed again
    (``force`` redoes them); the state is saved every ``save_every`` images, so an interrupted
    run resumes. Hand edits survive unless ``options.overwrite_hand``.
    Example: ``tag_collection("crops/", metadata="subset.json")``.
    """

    options = options or TagOptions()
    progress = ensure(progress)
    records, root, scores = collection_records(source, metadata, image_root)
    project = Project.open(project_dir if project_dir is not None else root)
    report = BatchReport("tag")
    for warning in project.warnings:
        report.skip(STATE_WARNING, warning)
    todo = []
    for rec in records:
        entry = project.add_record(rec)
        stamp = _stamp(rec, options, scores.get(rec.image_id))
        if not force and entry.get("auto_stamp") == stamp and not options.overwrite_hand:
            report.up_to_date += 1
        else:
            todo.append((rec, stamp))
    total, done = len(todo), 0
    progress(0, total, "tagging")
    for start in range(0, total, save_every):
        chunk = todo[start:start + save_every]

        def chunk_progress(d, t, message="", preview=None, _base=done):
            progress(_base + d, total, message, preview)

        tagged = tag_records([r for r, _ in chunk], options, chunk_progress, scores)
        for rec, stamp in chunk:
            tags = tagged[rec.image_id]
            project.set_auto_tags(rec.image_id, tags, options.overwrite_hand)
            project.images[rec.image_id]["auto_stamp"] = stamp
            if "unreadable" in tags:
                report.skip(rec.file_name or rec.image_id, f"tagged unreadable: {tags['unreadable'].value}")
            else:
                report.processed += 1
        done += len(chunk)
        project.save()
    if not todo:
        project.save()
    report.outputs["state"] = project.state_path
    report.outputs["images"] = len(records)
    return report
