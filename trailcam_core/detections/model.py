"""Detector results (MegaDetector, AddaxAI, SpeciesNet) as a label source of the core.

Most camera-trap users label their own photos by running MegaDetector, AddaxAI or SpeciesNet
and then sorting and charting the result.  This module turns such a results file into the
core's labels, next to CCT labels and zero-shot classification:

* :func:`read_detections` reads MegaDetector batch output (format 1.0 to 1.6, including the
  version-1.4 files AddaxAI writes), AddaxAI's ``results_coco.json`` export and SpeciesNet's
  ``predictions.json`` into a :class:`Detections` (columnar, pandas).
* :meth:`Detections.labels` applies THE label rule (below) at a confidence threshold.
* :func:`apply_detections` makes a detections file the labels (and pixel boxes) of a Dataset
  or a plain folder, so subset, sort, crop (bbox mode) and the charts use them.

The label rule
--------------
An image's label is the class of its most confident detection whose ``conf`` is at least the
threshold (default 0.2, MegaDetector's typical threshold).  The class is the classifier's top
class when the detection carries ``classifications`` (and its score reaches
``classification_threshold``, default 0.5 as in AddaxAI), the detector's category otherwise.  Names are normalised
(trimmed, lower case, runs of spaces collapsed: ``"Vehicle "`` -> ``"vehicle"``).  An image
with no detection at or above the threshold is ``"empty"``.  Ties go to the detection listed
first.  Detections without a confidence (AddaxAI's COCO export only holds detections that
already passed AddaxAI's threshold) always pass.

Example::

    det = read_detections("image_recognition_file.json")
    table = det.labels(threshold=0.2)          # one row per image: file, label, score, ...
    ds = apply_detections("photos/", det)      # a Dataset labelled by the detector
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Optional

import numpy as np
import pandas as pd

from trailcam_core.base import option, Options

#: MegaDetector's own detection classes.
MD_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
EMPTY = "empty"
DEFAULT_THRESHOLD = 0.2
#: AddaxAI's own default classification threshold (``var_cls_class_thresh_default`` of its models,
#: 0.50): below it AddaxAI keeps the detector's class ("unidentified animal").
DEFAULT_CLASSIFICATION_THRESHOLD = 0.5

_SPACES = re.compile(r"\s+")
_PERSON = {"person", "human", "people", "homo sapiens", "human being"}
_VEHICLE = {"vehicle", "car", "truck", "motorcycle", "bicycle", "motorbike", "bus"}
_EMPTY = {"empty", "blank", "nothing", "none"}


def normalise_name(name: Any) -> str:
    """Trim, lower-case and collapse whitespace: ``" Vehicle  "`` -> ``"vehicle"``."""
    return _SPACES.sub(" ", str(name)).strip().lower()


def same_class_key(name: Any) -> str:
    """Key under which CCT and detector names compare equal (``mountain_lion`` == ``mountain lion``)."""
    return normalise_name(str(name).replace("_", " "))


def coarse_class(name: Any) -> str:
    """The MegaDetector-level class of a label: ``empty``, ``person``, ``vehicle`` or ``animal``."""
    key = same_class_key(name)
    if key in _EMPTY:
        return EMPTY
    if key in _PERSON:
        return "person"
    if key in _VEHICLE:
        return "vehicle"
    return "animal"


@dataclass
class DetectionOptions(Options):
    """How a detections file becomes labels (shared by the CLI, the nodes and the app)."""

    STAGE = "detections"

    threshold: float = option(DEFAULT_THRESHOLD, "Detection confidence an image's best detection must reach; "
                              "below it the image is 'empty' (MegaDetector's typical value is 0.2, "
                              "conservative 0.05)", min=0.0, max=1.0, step=0.01)
    classification_threshold: float = option(DEFAULT_CLASSIFICATION_THRESHOLD,
                                              "Classifier score a detection's top classification must reach to "
                                              "replace the detector class (AddaxAI's default 0.5: below it "
                                              "AddaxAI files the image under 'unidentified animal'; 0 = always "
                                              "take the classifier's top class)", min=0.0, max=1.0, step=0.01)
    strip_prefix: str = option("", "Leading folder to remove from absolute paths in the results file "
                               "('auto' = the common folder of all absolute paths); empty = reject absolute "
                               "paths")


@dataclass
class Detections:
    """A detector results file, read and validated, as two tables.

    ``images``: one row per successfully processed image, columns ``file`` (POSIX path relative
    to the folder the detector ran on; the key used to join), ``stored_as`` (the path as the
    file wrote it, e.g. AddaxAI's sorted ``coyote/conf_0.9-1.0/x.jpg``), ``width``/``height``
    (Int64, <NA> unless the file says), ``datetime``, ``n_detections``, ``max_conf``.

    ``detections``: one row per valid detection: ``image`` (row number in ``images``),
    ``category`` (normalised detector class), ``conf`` (NaN when the file has none), box
    ``x``, ``y``, ``w``, ``h`` normalised to 0..1, ``classification`` / ``classification_conf``
    (classifier's top class, <NA>/NaN when absent), ``prev_category`` / ``prev_conf`` (what
    MegaDetector said before AddaxAI's classifier relabelled the detection).

    ``failures``: images the detector could not process (``file``, ``failure``).
    ``skipped``: (item, reason) for every record that was rejected, each naming the image and field.
    ``warnings``: sentences about the file as a whole (shown by every face).
    """

    images: pd.DataFrame
    detections: pd.DataFrame
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"file": [], "failure": []}))
    skipped: list = field(default_factory=list)
    #: things about the whole file a user should know (e.g. an AddaxAI COCO file without categories)
    warnings: list = field(default_factory=list)
    info: dict = field(default_factory=dict)
    detection_categories: dict = field(default_factory=dict)
    classification_categories: dict = field(default_factory=dict)
    format: str = "megadetector"
    format_version: str = ""
    source: Optional[Path] = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def typical_threshold(self) -> float:
        """The threshold the file recommends (``info.detector_metadata``), else 0.2."""
        meta = self.info.get("detector_metadata") if isinstance(self.info, dict) else None
        try:
            value = float(meta["typical_detection_threshold"])  # type: ignore[index]
            if 0.0 <= value <= 1.0:
                return value
        except (TypeError, KeyError, ValueError):
            pass
        return DEFAULT_THRESHOLD

    def detection_labels(self, classification_threshold: float = DEFAULT_CLASSIFICATION_THRESHOLD) -> pd.Series:
        """Per-detection class name: classifier top class when present and confident enough, else detector class."""
        det = self.detections
        cls = det["classification"]
        use = cls.notna() & ~(det["classification_conf"] < classification_threshold)
        return pd.Series(np.where(use, cls.astype(object), det["category"].astype(object)), index=det.index,
                         dtype=object)

    def passing(self, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
        """Boolean mask of detections at or above ``threshold`` (no confidence = passes)."""
        conf = self.detections["conf"].to_numpy(dtype=float)
        return np.isnan(conf) | (conf >= threshold)

    def labels(self, threshold: float = DEFAULT_THRESHOLD, classification_threshold: float = DEFAULT_CLASSIFICATION_THRESHOLD) -> pd.DataFrame:
        """Apply the label rule: one row per image with ``file``, ``stored_as``, ``label``, ``score``
        (confidence of the deciding detection, NaN for empty), ``detector_label`` (the deciding
        detection's detector class), ``n_above`` (detections at/above the threshold), ``max_conf``,
        ``location`` (first folder of the path, "(root)" for files at the top), ``width``, ``height``."""
        images, det = self.images, self.detections
        n = len(images)
        label = np.full(n, EMPTY, dtype=object)
        detector_label = np.full(n, EMPTY, dtype=object)
        score = np.full(n, np.nan)
        n_above = np.zeros(n, dtype=np.int64)
        if len(det):
            keep = self.passing(threshold)
            img = det["image"].to_numpy()[keep]
            if len(img):
                conf = det["conf"].to_numpy(dtype=float)[keep]
                order_conf = np.where(np.isnan(conf), 2.0, conf)  # no confidence = already accepted
                pos = np.arange(len(img))
                # stable: by image, then highest confidence, then file order
                order = np.lexsort((pos, -order_conf, img))
                first = order[np.r_[True, img[order][1:] != img[order][:-1]]]
                names = self.detection_labels(classification_threshold).to_numpy()[keep]
                cats = det["category"].astype(object).to_numpy()[keep]
                rows = img[first]
                label[rows] = names[first]
                detector_label[rows] = cats[first]
                score[rows] = conf[first]
                n_above = np.bincount(img, minlength=n)
        out = pd.DataFrame({
            "file": images["file"].astype(object),
            "stored_as": images["stored_as"].astype(object),
            "label": pd.Series(label, dtype=object),
            "score": score,
            "detector_label": pd.Series(detector_label, dtype=object),
            "n_above": n_above,
            "max_conf": images["max_conf"].to_numpy(),
            "location": pd.Series(location_from_paths(images["file"]), dtype=object),
            "width": images["width"],
            "height": images["height"],
        })
        if "conf_bin" in images:
            out["conf_bin"] = images["conf_bin"].to_numpy()
        return out

    def boxes(self, threshold: float = DEFAULT_THRESHOLD, classification_threshold: float = DEFAULT_CLASSIFICATION_THRESHOLD) -> pd.DataFrame:
        """Detections at or above ``threshold``: ``file``, ``category`` (the label-rule class of
        each detection), ``detector_category``, ``conf``, ``x``, ``y``, ``w``, ``h`` (normalised),
        ``location``."""
        det = self.detections
        keep = self.passing(threshold)
        sub = det[keep]
        files = self.images["file"].to_numpy()[sub["image"].to_numpy()]
        return pd.DataFrame({
            "file": pd.Series(files, dtype=object),
            "category": pd.Series(self.detection_labels(classification_threshold).to_numpy()[keep], dtype=object),
            "detector_category": pd.Series(sub["category"].astype(object).to_numpy(), dtype=object),
            "conf": sub["conf"].to_numpy(dtype=float),
            "x": sub["x"].to_numpy(), "y": sub["y"].to_numpy(), "w": sub["w"].to_numpy(), "h": sub["h"].to_numpy(),
            "location": pd.Series(location_from_paths(files), dtype=object),
        })

    def summary(self) -> str:
        """One line: counts of images, detections, failures and skipped records."""
        return (f"{len(self.images)} images, {len(self.detections)} detections, {len(self.failures)} failures, "
                f"{len(self.skipped)} records skipped ({self.format} {self.format_version})")


def location_from_paths(files) -> np.ndarray:
    """The first folder of each relative path (camera/site folders), "(root)" for top-level files."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(list(files) if not isinstance(files, (list, np.ndarray, pd.Series)) else files, type=pa.string())
    if len(arr) == 0:
        return np.array([], dtype=object)
    first = pc.list_element(pc.split_pattern(arr, "/", max_splits=1), 0)
    has_dir = pc.and_(pc.match_substring(arr, "/"), pc.not_equal(first, ""))
    return np.asarray(pc.if_else(has_dir, first, "(root)").to_numpy(zero_copy_only=False), dtype=object)


def posix_key(name: str) -> str:
    """A path as a join key: backslashes to slashes, ``./`` and doubled slashes removed."""
    text = str(name).replace("\\", "/")
    return str(PurePosixPath(*[p for p in text.split("/") if p not in ("", ".")])) if text else text
