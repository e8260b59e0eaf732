"""One call per user action of the data stage, shared by the CLI, the ComfyUI node and the app.

    ds = load_source("caltech_images_20210113.json", detections="md.json")   # Dataset
    sub = load_subset("photos/", SubsetOptions(locations=["cam1"]), detections="md.json")
    report = import_detections("md.json", "labelled/", dataset="photos/")     # labels.csv, labelled.json

A source is a COCO Camera Traps JSON or a folder; ``detections`` (a MegaDetector / AddaxAI /
SpeciesNet results file) replaces its labels, with :class:`DetectionOptions` (threshold,
classification threshold, prefix to strip) applied the same way by every face.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pandas as pd

from trailcam_core.base import atomic_path, BatchReport, ensure, ProgressCallback, TrailcamError
from trailcam_core.detections import apply_detections, DetectionOptions, labels_with_sizes, read_detections
from trailcam_core.ingest import Dataset, load_dataset
from trailcam_core.subset.select import Subset, SubsetOptions, make_subset

PathLike = str | os.PathLike


def load_source(source: PathLike, *, bboxes: Optional[PathLike] = None, image_root: Optional[PathLike] = None,
                detections: Optional[PathLike] = None, detection_options: Optional[DetectionOptions] = None,
                cache_dir: Optional[PathLike] = None, use_cache: bool = True,
                progress: Optional[ProgressCallback] = None) -> Dataset:
    """Load a dataset (CCT JSON + optional bbox file, or a folder) and, given a results file, make
    the detector's labels its labels (see :func:`trailcam_core.detections.apply_detections`)."""
    ds = load_dataset(source, bboxes=bboxes, image_root=image_root, cache_dir=cache_dir, use_cache=use_cache,
                      progress=progress)
    if detections is not None and str(detections).strip():
        o = detection_options or DetectionOptions()
        det = read_detections(detections, strip_prefix=o.strip_prefix, progress=progress)
        ds = apply_detections(ds, det, threshold=o.threshold, classification_threshold=o.classification_threshold,
                              progress=progress)
    return ds


def load_subset(source: PathLike | Dataset, options: Optional[SubsetOptions] = None, *,
                detections: Optional[PathLike] = None, detection_options: Optional[DetectionOptions] = None,
                bboxes: Optional[PathLike] = None, image_root: Optional[PathLike] = None,
                cache_dir: Optional[PathLike] = None, use_cache: bool = True,
                progress: Optional[ProgressCallback] = None) -> Subset:
    """:func:`load_source` then :func:`make_subset` with ``options`` (a loaded Dataset is used as is)."""
    ds = source if isinstance(source, Dataset) else load_source(
        source, bboxes=bboxes, image_root=image_root, detections=detections, detection_options=detection_options,
        cache_dir=cache_dir, use_cache=use_cache, progress=progress)
    return make_subset(ds, options or SubsetOptions())


def write_table(df: pd.DataFrame, path: PathLike) -> Path:
    """Write a table as CSV atomically (floats to 4 decimals); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    return path


def import_detections(results: PathLike, out_dir: PathLike, *, dataset: Optional[PathLike] = None,
                      options: Optional[DetectionOptions] = None,
                      progress: Optional[ProgressCallback] = None) -> BatchReport:
    """A results file as labels: ``labels.csv`` (one row per image: label, score, counts),
    ``skipped.csv`` (records that could not be read) and, with ``dataset``, ``labelled.json``: the
    dataset with the detector's labels, as COCO Camera Traps JSON.

    ``report.outputs``: labels, skipped, labelled (with a dataset); ``report.details``:
    ``label_counts`` (label -> images), ``join`` (one line on how the files matched) and
    ``warnings`` (sentences about the results file as a whole)."""
    o = options or DetectionOptions()
    det = read_detections(results, strip_prefix=o.strip_prefix, progress=progress)
    out = Path(out_dir)
    report = BatchReport("detections import")
    for item, reason in det.skipped:
        report.skip(item, reason)
    report.details["warnings"] = list(det.warnings)
    table = det.labels(o.threshold, o.classification_threshold)
    report.processed = len(table)
    report.outputs["skipped"] = write_table(pd.DataFrame(det.skipped, columns=["item", "reason"]),
                                            out / "skipped.csv")
    if dataset is not None:
        ds = apply_detections(load_dataset(dataset, progress=progress), det, threshold=o.threshold,
                              classification_threshold=o.classification_threshold, progress=ensure(progress))
        report.details["join"] = ds.detections_join.summary()
        table = labels_with_sizes(table, ds)            # width and height from the dataset's images
        report.outputs["labelled"] = Subset(dataset=ds, images=ds.images, annotations=ds.annotations).write_cct(
            out / "labelled.json")
    report.outputs["labels"] = write_table(table, out / "labels.csv")
    report.details["label_counts"] = table["label"].value_counts().to_dict() if len(table) else {}
    return report


def require_source(source: PathLike, what: str = "dataset") -> Path:
    """``source`` as a path that exists, else a clear error naming it."""
    path = Path(source).expanduser()
    if not str(source).strip():
        raise TrailcamError(f"no {what} given")
    if not path.exists():
        raise TrailcamError(f"{what} {path}: no such file or folder")
    return path
