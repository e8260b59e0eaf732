"""``trailcam subset | fetch | sort | chart | demo``: the data stages on the command line."""
from __future__ import annotations

import argparse
from pathlib import Path

from trailcam_core.base import add_arguments, BatchReport, from_namespace

from . import _common


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="COCO Camera Traps JSON (e.g. caltech_images_20210113.json or a subset.json) "
                                  "or a folder of images/videos")
    p.add_argument("--bboxes", default=None, help="separate bbox JSON merged by image id (caltech_bboxes_*.json)")
    p.add_argument("--image-root", default=None, help="folder the file_name values are relative to "
                                                     "(default: the JSON's folder, or the folder a subset recorded)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the table cache")


def _load(args):
    from trailcam_core.subset import load_source

    with _common.progress("scan", unit="file") as cb:
        ds = load_source(args.source, bboxes=args.bboxes, image_root=args.image_root,
                         use_cache=not args.no_cache, progress=cb)
    for w in ds.warnings:
        print(f"  warning: {w}")
    return ds


def register(sub) -> None:
    from trailcam_core.ingest import ChartOptions
    from trailcam_core.subset import FetchOptions
    from trailcam_core.subset import SORT_MODES, SubsetOptions

    p = sub.add_parser("subset", help="choose images by location, category, date, hour, sequence; write a CCT "
                                      "JSON, a manifest and optionally Sorted/<category>/ folders",
                       description="Filter a camera-trap dataset. Writes OUT/subset.json (valid COCO Camera Traps), "
                                   "OUT/manifest.csv and OUT/manifest.parquet.")
    _source_args(p)
    p.add_argument("--out", default="subset", help="output folder (default: ./subset)")
    p.add_argument("--sort", choices=SORT_MODES, default=None, help="also sort images into OUT/Sorted/<category>/")
    add_arguments(p, SubsetOptions)
    p.set_defaults(func=cmd_subset)

    p = sub.add_parser("fetch", help="download a dataset's or subset's images from LILA (resumable)",
                       description="Download only the listed images: parallel, resumable (HTTP Range), size-checked; "
                                   "complete files are never downloaded again.")
    _source_args(p)
    p.add_argument("--dest", default=None, help="folder to download into (default: the dataset's image root)")
    add_arguments(p, FetchOptions)
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("sort", help="place images into OUT/Sorted/<category>/ by copy, hardlink or symlink")
    _source_args(p)
    p.add_argument("--out", default=".", help="folder that receives Sorted/ (default: current folder)")
    p.add_argument("--mode", choices=SORT_MODES, default="copy", help="copy (default), hardlink or symlink")
    p.set_defaults(func=cmd_sort)

    p = sub.add_parser("chart", help="PNG charts: count per category, and location x category heat map",
                       description="SOURCE may also be a CSV or parquet table with 'category' and 'location' "
                                   "columns (e.g. detections), charted the same way.")
    _source_args(p)
    p.add_argument("--out", default="charts", help="output folder (default: ./charts)")
    add_arguments(p, ChartOptions)
    p.set_defaults(func=cmd_chart)

    p = sub.add_parser("demo", help="run subset -> sort -> chart -> crop -> tags -> mosaic on the bundled synthetic sample")
    p.add_argument("--out", default="trailcam-demo", help="output folder (default: ./trailcam-demo)")
    p.set_defaults(func=cmd_demo)


def cmd_subset(args) -> int:
    from trailcam_core.subset import make_subset, SubsetOptions

    ds = _load(args)
    sub = make_subset(ds, from_namespace(SubsetOptions, args))
    out = Path(args.out)
    report = BatchReport("subset", processed=len(sub), skipped=list(ds.skipped))
    saved = sub.save(out)
    report.outputs["json"], report.outputs["manifest"] = saved["json"], saved["manifest"]
    print("  " + "; ".join(f"{name}: {count}" for name, count in sub.steps))
    if args.sort:
        with _common.progress("sort") as cb:
            sorted_report = sub.sort_images(out, mode=args.sort, progress=cb)
        report.skipped.extend(sorted_report.skipped)
        report.outputs["sorted"] = sorted_report.outputs["sorted"]
    return _common.finish(report)


def cmd_fetch(args) -> int:
    from trailcam_core.subset import fetch_images, FetchOptions

    ds = _load(args)
    dest = Path(args.dest) if args.dest else ds.root
    with _common.progress("fetch") as cb:
        report = fetch_images(ds, dest, from_namespace(FetchOptions, args), progress=cb)
    return _common.finish(report)


def cmd_sort(args) -> int:
    from trailcam_core.subset import sort_images

    ds = _load(args)
    with _common.progress("sort") as cb:
        report = sort_images(ds, ds.images, args.out, mode=args.mode, progress=cb)
    report.skipped[:0] = list(ds.skipped)
    return _common.finish(report)


def cmd_chart(args) -> int:
    from trailcam_core.ingest import ChartOptions, write_charts

    src = Path(args.source)
    if src.suffix.lower() in (".csv", ".parquet"):
        table = _read_table(src)
    else:
        table = _load(args)
    report = write_charts(table, args.out, from_namespace(ChartOptions, args))
    return _common.finish(report)


def _read_table(path: Path):
    import pandas as pd

    from trailcam_core.base import TrailcamError

    try:
        return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise TrailcamError(f"{path}: cannot read table ({exc})") from None


def cmd_demo(args) -> int:
    from trailcam_core.samples import printable, run_demo

    with _common.progress("demo", unit="step") as cb:
        outputs = run_demo(args.out, progress=cb)
    print("Synthetic sample (generated drawings, not real photos):", outputs["sample"])
    for key, value in printable(outputs).items():
        if key != "sample":
            print(f"  {key}: {value}")
    report = BatchReport("demo", processed=int(outputs.get("n_images", 0)))
    report.outputs["out"] = Path(args.out).resolve()
    return _common.finish(report)
