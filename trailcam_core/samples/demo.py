"""The demo job on the bundled synthetic sample: subset -> sort -> chart -> crop -> tags -> mosaic.

``run_demo(out_dir, progress)`` returns a dict of what it made (paths and counts), so faces can
print or show it and later stages can extend the pipeline by adding steps to ``DEMO_STEPS``::

    def my_step(ctx: dict, progress) -> None:   # ctx holds the outputs so far
        ctx["crops"] = crop_batch(ctx["subset"].records(), ctx["out_dir"] / "crops", ...).outputs
    DEMO_STEPS.append(("crop", my_step))
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from trailcam_core.base import ensure

# (name, function(ctx, progress)); each step reads and adds entries of ctx.
DEMO_STEPS: list[tuple[str, Callable]] = []
DEMO_LOCATIONS = ["26", "38", "43"]


def _step_subset(ctx: dict, progress) -> None:
    from trailcam_core.ingest import load_dataset
    from trailcam_core.samples.synthetic import ensure_sample
    from trailcam_core.subset import make_subset, SubsetOptions

    sample = ensure_sample(ctx.get("sample_dir"))
    ds = load_dataset(sample)
    sub = make_subset(ds, SubsetOptions(locations=DEMO_LOCATIONS))
    out = ctx["out_dir"]
    ctx.update(sample=sample, dataset=ds, subset=sub, n_images=len(sub),
               subset_json=sub.write_cct(out / "subset.json"))
    ctx["manifest_csv"], ctx["manifest_parquet"] = sub.write_manifest(out / "manifest")


def _step_sort(ctx: dict, progress) -> None:
    report = ctx["subset"].sort_images(ctx["out_dir"], mode="copy", progress=progress)
    ctx.update(sorted=Path(report.outputs["sorted"]), sort_report=report)


def _step_chart(ctx: dict, progress) -> None:
    from trailcam_core.ingest import charts

    sub, out = ctx["subset"], ctx["out_dir"]
    ctx["chart_categories"] = charts.category_bar_chart(charts.annotation_table(sub), out / "categories.png",
                                                        title="Annotations per category (synthetic sample)",
                                                        unit="annotations")
    ctx["chart_locations"] = charts.location_heatmap(charts.image_table(sub), out / "locations.png",
                                                     title="Images per location and label", unit="images")


def _step_crop(ctx: dict, progress) -> None:
    from trailcam_core.crop import CropOptions
    from trailcam_core.crop import crop_batch

    report = crop_batch(ctx["subset"], ctx["out_dir"] / "crops",
                        CropOptions(mode="bbox", strip_info_bar=True, size=256, workers=1), progress=progress)
    ctx.update(crops=ctx["out_dir"] / "crops", n_crops=report.processed + report.up_to_date)


def _step_tags(ctx: dict, progress) -> None:
    from trailcam_core.tags import CaptionOptions
    from trailcam_core.tags import caption_project
    from trailcam_core.tags import tag_collection, TagOptions

    # The crops folder is the curation project: tags, favourites and captions live beside the crops.
    tag_collection(ctx["crops"], options=TagOptions(workers=1), metadata=ctx["subset_json"], progress=progress)
    caption_project(ctx["crops"], CaptionOptions(trigger="trailcam"), progress=progress)
    ctx.update(captions=ctx["crops"], tag_frequency=ctx["crops"] / "tag_frequency.json")


def _step_mosaic(ctx: dict, progress) -> None:
    from trailcam_core.embed import EmbedOptions
    from trailcam_core.mosaic import make_mosaic, MosaicOptions

    # Model-free pyramid features: the demo must run offline, with no model weights.
    out = ctx["out_dir"] / "mosaic"
    report = make_mosaic(ctx["crops"], out, MosaicOptions(tile=64),
                         embed_options=EmbedOptions(features="pyramid", pyramid_size=16), progress=progress)
    ctx.update(mosaic=report.outputs.get("mosaic", out), mosaic_viewer=report.outputs.get("viewer", out))


DEMO_STEPS.extend([("subset", _step_subset), ("sort", _step_sort), ("chart", _step_chart),
                   ("crop", _step_crop), ("tags", _step_tags), ("mosaic", _step_mosaic)])


def run_demo(out_dir: str | os.PathLike = "trailcam-demo", progress=None,
             sample_dir: Optional[str | os.PathLike] = None) -> dict:
    """Run every step of DEMO_STEPS on the synthetic sample, writing under ``out_dir``.

    Returns the outputs: ``sample`` (JSON path), ``subset_json``, ``manifest_csv``,
    ``manifest_parquet``, ``sorted`` (folder), ``chart_categories``, ``chart_locations``,
    ``n_images``, plus the live ``dataset`` and ``subset`` objects.
    """
    cb = ensure(progress)
    ctx: dict = {"out_dir": Path(out_dir), "sample_dir": sample_dir}
    ctx["out_dir"].mkdir(parents=True, exist_ok=True)
    steps = list(DEMO_STEPS)
    for k, (name, fn) in enumerate(steps):
        cb(k, len(steps), name)
        fn(ctx, None)
    cb(len(steps), len(steps), "done")
    return ctx


def printable(outputs: dict) -> dict[str, str]:
    """The path/count entries of run_demo's result, as strings (for printing)."""
    return {k: str(v) for k, v in outputs.items()
            if isinstance(v, (str, int, float, Path)) and k not in ("sample_dir",)}
