"""Sort images into folders by detector label, as AddaxAI does.

Layout (under the output folder the user names)::

    <label>/<path as in the results file>                         bins off
    <label>/conf_<lo>-<hi>/<path as in the results file>          bins on (0.1 wide, AddaxAI's names)
    <count>-<label>/...                                           counts on (the seed's "1474-vehicle")

The label is the core's label rule (the most confident detection at/above the threshold,
"empty" otherwise).  With ``multiple="join"`` an image above the threshold for several classes
goes to a folder naming them all, sorted and joined by "_" (AddaxAI's own rule, e.g.
``animal_person``).  The bin is AddaxAI's: confidence rounded up to the next tenth, so 0.93
-> ``conf_0.9-1.0``, 0.2 -> ``conf_0.1-0.2``; empty images get no bin.  Originals are never moved
(copy, hardlink or symlink); files already in place are left alone, so a rerun changes
nothing; every placement is listed in ``placements.csv``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from trailcam_core.base import (atomic_path, BatchReport, confine, ensure, is_placed, option, Options, place_file,
                                safe_relative, TrailcamError, UnsafePathError)
from trailcam_core.detections.model import DEFAULT_THRESHOLD, EMPTY, Detections
from trailcam_core.detections.read import read_detections
from trailcam_core.detections.model import DEFAULT_CLASSIFICATION_THRESHOLD

SORT_MODES = ("copy", "hardlink", "symlink")


@dataclass
class SortOptions(Options):
    """How ``trailcam detections sort`` lays out the images."""

    STAGE = "sort"

    threshold: float = option(DEFAULT_THRESHOLD, "Detection confidence an image's best detection must reach "
                              "(below it the image is 'empty')", min=0.0, max=1.0, step=0.01)
    classification_threshold: float = option(DEFAULT_CLASSIFICATION_THRESHOLD, "Classifier score needed to use "
                                              "the classifier's class (AddaxAI's default 0.5)",
                                              min=0.0, max=1.0, step=0.01)
    mode: str = option("copy", "How images reach the sorted folders (originals are never moved)",
                       choices=SORT_MODES)
    conf_bins: bool = option(False, "Add AddaxAI's confidence folders (conf_0.9-1.0 ...) under each label")
    counts: bool = option(False, "Prefix each label folder with its image count (1474-vehicle)")
    multiple: str = option("top", "Images with several classes: 'top' = the label rule's class, "
                           "'join' = all classes joined by '_' as AddaxAI does", choices=("top", "join"))


def conf_bin(conf: float) -> Optional[str]:
    """AddaxAI's confidence folder: ceil(conf * 10) / 10 -> ``conf_<hi-0.1>-<hi>``; ``conf_0.0`` at 0."""
    if conf is None or (isinstance(conf, float) and math.isnan(conf)):
        return None
    top = math.ceil(round(float(conf) * 10, 9)) / 10.0
    if top <= 0:
        return "conf_0.0"
    return f"conf_{top - 0.1:.1f}-{min(top, 1.0):.1f}"


def safe_folder(label) -> str:
    """A label as one folder name: no separators or reserved characters, no leading dots."""
    name = "".join("_" if c in '/\\:*?"<>|\0' else c for c in str(label).strip()).lstrip(".")
    return name or "unlabelled"






def sort_table(detections: Detections, options: SortOptions) -> pd.DataFrame:
    """The placement plan: one row per image with ``file``, ``stored_as``, ``label``, ``score``,
    ``folder`` (label folder, with count prefix), ``bin`` and ``dest`` (relative destination)."""
    table = detections.labels(options.threshold, options.classification_threshold)
    if options.multiple == "join" and len(detections.detections):
        passing = detections.passing(options.threshold)
        names = detections.detection_labels(options.classification_threshold)[passing]
        imgs = detections.detections["image"].to_numpy()[passing]
        joined = pd.Series(names.to_numpy(), index=imgs).groupby(level=0).agg(lambda s: "_".join(sorted(set(s))))
        label = table["label"].to_numpy(dtype=object).copy()
        label[joined.index.to_numpy()] = joined.to_numpy()
        table["label"] = label
        table.loc[table["n_above"] > 0, "score"] = table["max_conf"]
    folders = table["label"].map(safe_folder)
    if options.counts:
        counts = folders.value_counts()
        folders = folders.map(lambda f: f"{counts[f]}-{f}")
    bins = [None] * len(table)
    if options.conf_bins:
        from_file = table["conf_bin"].to_numpy() if "conf_bin" in table else [None] * len(table)
        bins = [None if lab == EMPTY else (conf_bin(s) if not np.isnan(s) else fb)
                for lab, s, fb in zip(table["label"], table["score"].to_numpy(dtype=float), from_file)]
    table["folder"] = folders.to_numpy()
    table["bin"] = bins
    table["dest"] = [f"{fo}/{b}/{f}" if b else f"{fo}/{f}" for fo, b, f in zip(table["folder"], bins, table["file"])]
    return table


def sort_detections(detections, image_root, out_dir, options: Optional[SortOptions] = None,
                    strip_prefix: str = "", progress=None) -> BatchReport:
    """Place every image of ``detections`` (a :class:`Detections` or results-file path) found under
    ``image_root`` into ``out_dir`` by label; write ``out_dir/placements.csv``.

    Images missing under ``image_root`` (or whose path would leave it) are skipped and reported;
    nothing is written outside ``out_dir``.
    """
    options = options or SortOptions()
    if options.mode not in SORT_MODES:
        raise TrailcamError(f"sort mode {options.mode!r}: use one of {', '.join(SORT_MODES)}")
    det = detections if isinstance(detections, Detections) else read_detections(detections, strip_prefix)
    root = Path(image_root)
    if not root.is_dir():
        raise TrailcamError(f"image folder {root} does not exist")
    out = Path(out_dir)
    if out.resolve() == root.resolve():
        raise TrailcamError("the output folder must not be the image folder itself")
    out.mkdir(parents=True, exist_ok=True)
    plan = sort_table(det, options)
    report = BatchReport("detections sort")
    cb = ensure(progress)
    status, placed = [], []
    total = len(plan)
    for k, (file, stored, dest_rel) in enumerate(zip(plan["file"], plan["stored_as"], plan["dest"])):
        src = None
        for name in dict.fromkeys((file, stored)):
            try:
                cand = confine(root, name, what="image")
            except UnsafePathError:
                continue
            if cand.is_file():
                src = cand
                break
        if src is None:
            report.skip(file, f"image {file!r} not found under {root}")
            status.append("missing")
            placed.append("")
            cb(k + 1, total, file)
            continue
        try:
            # confine the folder, not the file: a placed symlink legitimately points outside
            rel = safe_relative(dest_rel, what="placement")
            dest = confine(out, str(rel.parent), what="placement") / rel.name
        except UnsafePathError as exc:
            report.skip(file, str(exc))
            status.append("skipped")
            placed.append("")
            continue
        if is_placed(src, dest, options.mode):
            report.up_to_date += 1
            status.append("up to date")
        elif dest.exists() or dest.is_symlink():
            report.skip(file, f"{dest_rel} already exists and is a different file; left alone")
            status.append("exists")
        else:
            try:
                place_file(src, dest, options.mode)
                report.processed += 1
                status.append("placed")
            except OSError as exc:
                report.skip(file, f"{options.mode} to {dest_rel} failed: {exc.strerror or exc}")
                status.append("failed")
        placed.append(dest_rel)
        cb(k + 1, total, file)
    csv = plan[["file", "label", "score", "folder", "bin"]].copy()
    csv["placed_as"] = placed
    csv["mode"] = options.mode
    csv["status"] = status
    csv_path = out / "placements.csv"
    with atomic_path(csv_path) as tmp:
        csv.to_csv(tmp, index=False, float_format="%.4f")
    report.outputs["sorted"] = str(out)
    report.outputs["placements"] = str(csv_path)
    report.outputs["folders"] = int(csv.loc[csv["status"].isin(["placed", "up to date"]), "folder"].nunique())
    return report
