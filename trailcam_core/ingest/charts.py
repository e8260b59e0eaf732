"""Distribution charts as PNG (matplotlib, Agg backend: no display needed).

Both charts take a DataFrame with ``category`` and ``location`` columns, one row per detection,
annotation or image, so the same code charts CCT labels and a detector's labels alike::

    category_bar_chart(subset.annotations.assign(location=...), "out/categories.png")
    category_bar_chart(image_table(subset), "out/images_per_label.png")  # one row per image

``image_table(dataset_or_subset)`` and ``annotation_table(...)`` build such tables from a
Dataset or Subset.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from trailcam_core.base import atomic_path, BatchReport, option, Options, TrailcamError
from trailcam_core.ingest.dataset import sort_locations

UNLABELLED = "unlabelled"


def _figure(width: float, height: float):
    """A pyplot-free Figure (Agg canvas): no global state, safe from worker threads and servers."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.subplots()


def _check(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TrailcamError("charts take a pandas DataFrame")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise TrailcamError(f"chart table lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, table.columns))}")
    if table.empty:
        raise TrailcamError("nothing to chart: the table has no rows")
    out = table[list(columns)].copy()
    for c in columns:
        out[c] = out[c].astype("object").where(out[c].notna(), UNLABELLED).astype(str).str.strip()
    return out


def category_counts(table: pd.DataFrame) -> pd.Series:
    """Rows per category, largest first."""
    return _check(table, ("category",))["category"].value_counts()


def category_bar_chart(table: pd.DataFrame, out_png: str | os.PathLike, title: Optional[str] = None,
                       top: int = 0, log: bool = False, unit: str = "detections") -> Path:
    """Horizontal bar chart of rows per category (largest at the top), each bar labelled with its
    count, as the classic "detections per category" graph.  ``top`` keeps the N largest."""
    counts = category_counts(table)
    if top:
        counts = counts.head(top)
    fig, ax = _figure(8, max(2.5, 0.35 * len(counts) + 1.2))
    y = np.arange(len(counts))[::-1]
    bars = ax.barh(y, counts.to_numpy(), color="#4C72B0", log=log)
    ax.set_yticks(y, labels=list(counts.index))
    ax.set_xlabel(f"number of {unit}")
    ax.set_title(title or f"{int(counts.sum())} {unit} in {len(counts)} categories")
    for bar, value in zip(bars, counts.to_numpy()):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value}", va="center", fontsize=8)
    ax.margins(x=0.12)
    fig.tight_layout()
    return _save(fig, out_png)


def location_category_counts(table: pd.DataFrame, max_locations: int = 60, max_categories: int = 40) -> pd.DataFrame:
    """Counts with locations as rows and categories as columns (largest first, capped)."""

    t = _check(table, ("location", "category"))
    pivot = pd.crosstab(t["location"], t["category"])
    cats = pivot.sum(axis=0).sort_values(ascending=False).index[:max_categories]
    locs = pivot.sum(axis=1).sort_values(ascending=False).index[:max_locations]
    return pivot.loc[sort_locations(locs), list(cats)]


def location_heatmap(table: pd.DataFrame, out_png: str | os.PathLike, title: Optional[str] = None,
                     max_locations: int = 60, max_categories: int = 40, unit: str = "detections") -> Path:
    """Heat map of rows per location (rows) x category (columns), counts written in the cells."""
    pivot = location_category_counts(table, max_locations, max_categories)
    n_loc, n_cat = pivot.shape
    fig, ax = _figure(max(5, 0.5 * n_cat + 2.5), max(3, 0.35 * n_loc + 1.8))
    values = pivot.to_numpy()
    im = ax.imshow(np.log1p(values), cmap="viridis", aspect="auto")
    ax.set_xticks(range(n_cat), labels=list(pivot.columns), rotation=60, ha="right")
    ax.set_yticks(range(n_loc), labels=[str(x) for x in pivot.index])
    ax.set_xlabel("category")
    ax.set_ylabel("location")
    if n_loc * n_cat <= 900:
        top = values.max() or 1
        for i in range(n_loc):
            for j in range(n_cat):
                if values[i, j]:
                    ax.text(j, i, str(values[i, j]), ha="center", va="center", fontsize=7,
                            color="black" if np.log1p(values[i, j]) > 0.6 * np.log1p(top) else "white")
    ax.set_title(title or f"{unit} per location and category")
    cbar = fig.colorbar(im, ax=ax, fraction=0.04)
    cbar.set_label(f"log(1 + {unit})")
    fig.tight_layout()
    return _save(fig, out_png)


def _save(fig, out_png: str | os.PathLike) -> Path:
    out = Path(out_png)
    if out.suffix.lower() != ".png":
        raise TrailcamError(f"{out}: charts are written as .png")
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out


def image_table(source) -> pd.DataFrame:
    """One row per image of a Dataset or Subset: ``category`` = primary label, ``location``."""
    images = source.images
    return pd.DataFrame({"category": images["label"].astype("object").where(images["label"].notna(), UNLABELLED),
                         "location": images["location"], "image_id": images["image_id"]})


def annotation_table(source) -> pd.DataFrame:
    """One row per annotation of a Dataset or Subset with its image's location."""
    ann = source.annotations
    loc = source.images.set_index("image_id")["location"]
    return pd.DataFrame({"category": ann["category"], "location": ann["image_id"].map(loc).to_numpy(),
                         "image_id": ann["image_id"]})


@dataclass
class ChartOptions(Options):
    STAGE = "chart"

    per: str = option("annotation", "Count one row per annotation (detection) or one per image",
                      choices=("annotation", "image"))
    top: int = option(0, "Show only the N largest categories in the bar chart (0: all)", min=0)
    log: bool = option(False, "Logarithmic count axis in the bar chart")


def write_charts(source, out_dir: str | os.PathLike, options: Optional[ChartOptions] = None) -> BatchReport:
    """Write ``categories.png`` and ``locations.png`` under ``out_dir`` for a Dataset, a Subset or a
    DataFrame with ``category`` (and ``location``) columns; the heat map needs ``location``."""
    o = options or ChartOptions()
    if isinstance(source, pd.DataFrame):
        table, unit = source, "detections"
    elif o.per == "image":
        table, unit = image_table(source), "images"
    else:
        table, unit = annotation_table(source), "annotations"
    out = Path(out_dir)
    report = BatchReport("chart", processed=len(table))
    report.outputs["categories"] = category_bar_chart(table, out / "categories.png", top=o.top, log=o.log, unit=unit)
    if "location" in table.columns:
        report.outputs["locations"] = location_heatmap(table, out / "locations.png", unit=unit)
    return report


def loss_curve(losses, title: str = "Training loss", out_png: Optional[str | os.PathLike] = None):
    """The loss per step and its moving average, as a PIL image (written to ``out_png`` when given)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from PIL import Image

    losses = [float(x) for x in losses]
    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.add_subplot()
    if losses:
        steps = np.arange(1, len(losses) + 1)
        ax.plot(steps, losses, color="#9bb7d4", linewidth=1, label="loss")
        k = max(1, len(losses) // 20)
        if k > 1:
            csum = np.cumsum(np.insert(np.asarray(losses), 0, 0.0))
            lo = np.maximum(0, np.arange(len(losses)) - k + 1)
            avg = (csum[np.arange(1, len(losses) + 1)] - csum[lo]) / (np.arange(1, len(losses) + 1) - lo)
            ax.plot(steps, avg, color="#1f4e79", linewidth=2, label=f"mean of {k}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if out_png is not None:
        with atomic_path(out_png) as tmp:
            img.save(tmp, format="PNG")
    return img
