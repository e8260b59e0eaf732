"""How well did the detector do on my cameras?  Compare detector labels with CCT labels; chart them.

For every image that has both a CCT label and a detector result:

* ``agreement.csv``: per CCT class, the number of images, the detector's most frequent label
  for them, and the share where the detector agrees exactly (same name, ``_`` and spaces and
  case ignored) and at MegaDetector's level (animal / person / vehicle / empty: a detector
  "animal" agrees with a CCT "coyote", "vehicle" with "car").
* ``confusion.csv``: CCT label x detector label counts (long form).
* ``precision_recall.csv`` and ``precision_recall.png``: "animal vs empty" at several
  thresholds: an image is positive when its CCT label is not "empty", predicted positive when
  a detection reaches the threshold.  precision = tp / (tp + fp), recall = tp / (tp + fn).

Charts: :func:`detection_chart_table` gives one row per detection (or per image) with
``category`` and ``location`` columns, which ``charts.category_bar_chart`` and
``charts.location_heatmap`` draw, the same code as for CCT labels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from trailcam_core.base import atomic_path, BatchReport, TrailcamError
from trailcam_core.detections.model import DEFAULT_THRESHOLD, EMPTY, coarse_class, same_class_key
from trailcam_core.detections.join import JoinResult, as_dataset, as_detections, join
from trailcam_core.ingest import charts
from trailcam_core.detections.model import DEFAULT_CLASSIFICATION_THRESHOLD

DEFAULT_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Comparison:
    """Result of :func:`compare` (tables as DataFrames; write them with :func:`write_comparison`)."""

    images: pd.DataFrame            # per image: image_id, file_name, cct_label, detector_label, max_conf
    agreement: pd.DataFrame         # per CCT class
    confusion: pd.DataFrame         # cct_label, detector_label, images
    precision_recall: pd.DataFrame  # threshold, tp, fp, fn, tn, precision, recall
    join: JoinResult
    threshold: float = DEFAULT_THRESHOLD
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        exact = self.images["agree"].mean() if len(self.images) else float("nan")
        coarse = self.images["agree_coarse"].mean() if len(self.images) else float("nan")
        at = self.precision_recall.set_index("threshold")
        pr = ""
        if self.threshold in at.index:
            row = at.loc[self.threshold]
            pr = f"; animal vs empty at {self.threshold:g}: precision {row['precision']:.3f}, recall {row['recall']:.3f}"
        return (f"{len(self.images)} images compared: {exact:.1%} same class, {coarse:.1%} same "
                f"animal/person/vehicle/empty{pr}")


def compare(dataset, detections, threshold: float = DEFAULT_THRESHOLD,
            thresholds: Sequence[float] = DEFAULT_THRESHOLDS, classification_threshold: float = DEFAULT_CLASSIFICATION_THRESHOLD,
            strip_prefix: str = "") -> Comparison:
    """Compare ``detections`` with the CCT labels of ``dataset`` (see the module doc)."""
    ds = as_dataset(dataset)
    det = as_detections(detections, strip_prefix)
    res = join(ds, det)
    labels = det.labels(threshold, classification_threshold)
    m = res.matched
    cct = ds.images.set_index(ds.images["image_id"].astype(str))["label"]
    cct_label = cct.reindex(m["image_id"].astype(str)).to_numpy(dtype=object)
    rows = m["row"].to_numpy(dtype=np.int64)
    table = pd.DataFrame({
        "image_id": m["image_id"].to_numpy(), "file_name": m["file_name"].to_numpy(),
        "cct_label": cct_label,
        "detector_label": labels["label"].to_numpy(dtype=object)[rows],
        "max_conf": labels["max_conf"].to_numpy(dtype=float)[rows],
    })
    notes = []
    unlabelled = table["cct_label"].isna()
    if unlabelled.any():
        notes.append(f"{int(unlabelled.sum())} matched images have no CCT label and are left out")
    table = table[~unlabelled].reset_index(drop=True)
    if table.empty:
        raise TrailcamError(f"no image has both a CCT label and a detector result ({res.summary()})")
    table["cct_label"] = table["cct_label"].astype(str)
    table["agree"] = [same_class_key(a) == same_class_key(b) for a, b in zip(table["cct_label"],
                                                                           table["detector_label"])]
    table["agree_coarse"] = [coarse_class(a) == coarse_class(b) for a, b in zip(table["cct_label"],
                                                                              table["detector_label"])]
    confusion = (table.groupby(["cct_label", "detector_label"]).size().rename("images").reset_index()
                 .sort_values(["cct_label", "images"], ascending=[True, False], ignore_index=True))
    grouped = table.groupby("cct_label")
    agreement = pd.DataFrame({
        "images": grouped.size(),
        "detector_top_label": grouped["detector_label"].agg(lambda s: s.value_counts().index[0]),
        "same_class": grouped["agree"].sum(),
        "same_class_rate": grouped["agree"].mean().round(4),
        "same_coarse_class": grouped["agree_coarse"].sum(),
        "same_coarse_class_rate": grouped["agree_coarse"].mean().round(4),
    }).sort_values("images", ascending=False).reset_index()
    pr = precision_recall(table["cct_label"].to_numpy(), table["max_conf"].to_numpy(), thresholds)
    return Comparison(images=table, agreement=agreement, confusion=confusion, precision_recall=pr, join=res,
                      threshold=threshold, notes=notes)


def precision_recall(cct_labels, max_conf, thresholds: Sequence[float]) -> pd.DataFrame:
    """Animal-vs-empty counts and rates: positive = CCT label not "empty"; predicted = max_conf >= t."""
    truth = np.array([same_class_key(x) != EMPTY for x in cct_labels], dtype=bool)
    conf = np.nan_to_num(np.asarray(max_conf, dtype=float), nan=-1.0)
    out = []
    for t in sorted(set(float(x) for x in thresholds)):
        pred = conf >= t
        tp = int((pred & truth).sum())
        fp = int((pred & ~truth).sum())
        fn = int((~pred & truth).sum())
        tn = int((~pred & ~truth).sum())
        out.append({"threshold": t, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
                    "precision": round(tp / (tp + fp), 4) if tp + fp else float("nan"),
                    "recall": round(tp / (tp + fn), 4) if tp + fn else float("nan")})
    return pd.DataFrame(out)


def precision_recall_plot(pr: pd.DataFrame, out_png, title: Optional[str] = None) -> Path:
    """Precision and recall against the threshold (left), and the precision-recall curve (right)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(pr["threshold"], pr["precision"], "o-", label="precision")
    ax1.plot(pr["threshold"], pr["recall"], "s-", label="recall")
    ax1.set_xlabel("detection confidence threshold")
    ax1.set_ylim(0, 1.02)
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax1.set_title("animal vs empty")
    ax2.plot(pr["recall"], pr["precision"], "o-")
    for t, r, p in zip(pr["threshold"], pr["recall"], pr["precision"]):
        if not (np.isnan(r) or np.isnan(p)):
            ax2.annotate(f"{t:g}", (r, p), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax2.set_xlabel("recall")
    ax2.set_ylabel("precision")
    ax2.set_xlim(0, 1.02)
    ax2.set_ylim(0, 1.02)
    ax2.grid(alpha=0.3)
    ax2.set_title(title or "precision-recall by threshold")
    fig.tight_layout()
    out = Path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def write_comparison(comparison: Comparison, out_dir) -> BatchReport:
    """Write agreement.csv, confusion.csv, precision_recall.csv and precision_recall.png to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = BatchReport("detections compare", processed=len(comparison.images))
    report.outputs["agreement"] = _write_csv(comparison.agreement, out / "agreement.csv")
    report.outputs["confusion"] = _write_csv(comparison.confusion, out / "confusion.csv")
    report.outputs["precision_recall"] = _write_csv(comparison.precision_recall, out / "precision_recall.csv")
    report.outputs["plot"] = precision_recall_plot(comparison.precision_recall, out / "precision_recall.png")
    for f in comparison.join.only_in_dataset[:1000]:
        report.skip(f, "in the dataset but not in the detections file")
    for f in comparison.join.only_in_detections[:1000]:
        report.skip(f, "in the detections file but not in the dataset")
    return report


# ------------------------------------------------------------------------------------- charts
def detection_chart_table(detections, dataset=None, threshold: float = DEFAULT_THRESHOLD, per: str = "detection",
                          classification_threshold: float = DEFAULT_CLASSIFICATION_THRESHOLD, strip_prefix: str = "") -> pd.DataFrame:
    """Rows for the shared charts: ``category`` and ``location`` (one row per detection at/above the
    threshold, or per image with ``per="image"``, empty images included).  The location is the
    Dataset's when ``dataset`` is given, else the first folder of the path (camera folders)."""
    det = as_detections(detections, strip_prefix)
    if per not in ("detection", "image"):
        raise TrailcamError(f"per={per!r}: use 'detection' or 'image'")
    if per == "image":
        t = det.labels(threshold, classification_threshold)
        table = pd.DataFrame({"category": t["label"], "location": t["location"], "file": t["file"]})
    else:
        b = det.boxes(threshold, classification_threshold)
        table = pd.DataFrame({"category": b["category"], "location": b["location"], "file": b["file"]})
    if dataset is not None:
        ds = as_dataset(dataset)
        res = join(ds, det)
        loc_of_file = dict(zip(det.images["file"].to_numpy()[res.matched["row"].to_numpy(dtype=np.int64)],
                               ds.images.set_index(ds.images["image_id"].astype(str))["location"]
                               .reindex(res.matched["image_id"].astype(str)).to_numpy()))
        mapped = table["file"].map(loc_of_file)
        table["location"] = mapped.where(mapped.notna(), table["location"]).astype(str)
    return table


def write_detection_charts(detections, out_dir, dataset=None, threshold: float = DEFAULT_THRESHOLD,
                           per: str = "detection", classification_threshold: float = DEFAULT_CLASSIFICATION_THRESHOLD, top: int = 0,
                           strip_prefix: str = "") -> BatchReport:
    """``categories.png`` (the distribution of detections) and ``locations.png`` (location x class)."""

    table = detection_chart_table(detections, dataset, threshold, per, classification_threshold, strip_prefix)
    if table.empty:
        raise TrailcamError(f"no detection reaches the threshold {threshold:g}; lower it or chart per image")
    unit = "detections" if per == "detection" else "images"
    out = Path(out_dir)
    report = BatchReport("detections chart", processed=len(table))
    report.outputs["categories"] = charts.category_bar_chart(table, out / "categories.png", top=top, unit=unit,
                                                      title=f"distribution of {unit} (confidence >= {threshold:g})")
    report.outputs["locations"] = charts.location_heatmap(table, out / "locations.png", unit=unit)
    return report


__all__ = ["Comparison", "compare", "precision_recall", "precision_recall_plot", "write_comparison",
           "detection_chart_table", "write_detection_charts"]
