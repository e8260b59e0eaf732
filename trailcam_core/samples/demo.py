"""The demo job on the bundled synthetic sample: subset -> sort -> chart -> crop -> tags -> mosaic.

``run_demo(out_dir, progress)`` returns a dict of what it made (paths and counts), so faces can
print or show it.  Progress is reported per step: ``done`` counts finished steps and the message
carries the running step's own progress (``"crop 12/48 IMG_0012"``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from trailcam_core.base import ensure, ProgressCallback
from trailcam_core.samples.synthetic import ensure_sample
from trailcam_core.subset import load_subset, SubsetOptions
from trailcam_core.ingest import charts
from trailcam_core.crop import crop_batch, CropOptions
from trailcam_core.tags import caption_project, CaptionOptions, tag_collection, TagOptions
from trailcam_core.embed import EmbedOptions
from trailcam_core.mosaic import make_mosaic, MosaicOptions

DEMO_LOCATIONS = ["26", "38", "43"]


def _step_subset(ctx: dict, progress) -> None:

    sample = ensure_sample(ctx.get("sample_dir"))
    sub = load_subset(sample, SubsetOptions(locations=DEMO_LOCATIONS), progress=progress)
    ds = sub.dataset
    out = ctx["out_dir"]
    saved = sub.save(out)
    ctx.update(sample=sample, dataset=ds, subset=sub, n_images=len(sub), subset_json=saved["json"],
               manifest_csv=saved["manifest"], manifest_parquet=saved["parquet"])


def _step_sort(ctx: dict, progress) -> None:
    report = ctx["subset"].sort_images(ctx["out_dir"], mode="copy", progress=progress)
    ctx.update(sorted=Path(report.outputs["sorted"]), sort_report=report)


def _step_chart(ctx: dict, progress) -> None:

    sub, out = ctx["subset"], ctx["out_dir"]
    report = ensure(progress)
    report(0, 2, "categories.png")
    ctx["chart_categories"] = charts.category_bar_chart(charts.annotation_table(sub), out / "categories.png",
                                                        title="Annotations per category (synthetic sample)",
                                                        unit="annotations")
    report(1, 2, "locations.png")
    ctx["chart_locations"] = charts.location_heatmap(charts.image_table(sub), out / "locations.png",
                                                     title="Images per location and label", unit="images")
    report(2, 2, "locations.png")


def _step_crop(ctx: dict, progress) -> None:

    report = crop_batch(ctx["subset"], ctx["out_dir"] / "crops",
                        CropOptions(mode="bbox", strip_info_bar=True, size=256, workers=1), progress=progress)
    ctx.update(crops=ctx["out_dir"] / "crops", n_crops=report.processed + report.up_to_date)


def _step_tags(ctx: dict, progress) -> None:

    # The crops folder is the curation project: tags, favourites and captions live beside the crops.
    tag_collection(ctx["crops"], options=TagOptions(workers=1), metadata=ctx["subset_json"], progress=progress)
    caption_project(ctx["crops"], CaptionOptions(trigger="trailcam"), progress=progress)
    ctx.update(captions=ctx["crops"], tag_frequency=ctx["crops"] / "tag_frequency.json")


def _step_mosaic(ctx: dict, progress) -> None:

    # Model-free pyramid features: the demo must run offline, with no model weights.
    out = ctx["out_dir"] / "mosaic"
    report = make_mosaic(ctx["crops"], out, MosaicOptions(tile=64),
                         embed_options=EmbedOptions(features="pyramid", pyramid_size=16), progress=progress)
    ctx.update(mosaic=report.outputs.get("mosaic", out), mosaic_viewer=report.outputs.get("viewer", out))


# (name, function(ctx, progress)), in order; each step reads and adds entries of ctx.
STEPS: tuple[tuple[str, Callable], ...] = (("subset", _step_subset), ("sort", _step_sort), ("chart", _step_chart),
                                           ("crop", _step_crop), ("tags", _step_tags), ("mosaic", _step_mosaic))


def step_progress(progress: ProgressCallback, step: int, steps: int, name: str) -> ProgressCallback:
    """The callback a step reports through: ``progress`` sees ``step`` of ``steps`` done and the
    step's own ``done/total`` in the message."""
    def report(done: int, total: int, message: str = "", preview=None) -> None:
        own = f" {done}/{total}" if total else ""
        progress(step, steps, f"{name}{own}" + (f" {message}" if message else ""), preview)
    return report


def run_demo(out_dir: str | os.PathLike = "trailcam-demo", progress=None,
             sample_dir: Optional[str | os.PathLike] = None) -> dict:
    """Run every step of :data:`STEPS` on the synthetic sample, writing under ``out_dir``.

    Returns the outputs: ``sample`` (JSON path), ``subset_json``, ``manifest_csv``,
    ``manifest_parquet``, ``sorted`` (folder), ``chart_categories``, ``chart_locations``,
    ``n_images``, plus the live ``dataset`` and ``subset`` objects.
    """
    cb = ensure(progress)
    ctx: dict = {"out_dir": Path(out_dir), "sample_dir": sample_dir}
    ctx["out_dir"].mkdir(parents=True, exist_ok=True)
    for k, (name, fn) in enumerate(STEPS):
        cb(k, len(STEPS), name)
        fn(ctx, step_progress(cb, k, len(STEPS), name))
    cb(len(STEPS), len(STEPS), "done")
    return ctx


def printable(outputs: dict) -> dict[str, str]:
    """The path/count entries of run_demo's result, as strings (for printing)."""
    return {k: str(v) for k, v in outputs.items()
            if isinstance(v, (str, int, float, Path)) and k not in ("sample_dir",)}
