"""``trailcam crop``: square crops (and video frames) of a dataset, subset or folder."""
from __future__ import annotations

from pathlib import Path

from trailcam_core.base import add_arguments, from_namespace

from . import _common


def register(sub) -> None:
    from trailcam_core.crop import CropOptions

    p = sub.add_parser(
        "crop", help="square-crop a dataset, subset or folder (photos and video frames), in parallel",
        description="Writes OUT/<image_id>.<ext> (video frames: <image_id>_<seconds>s.<ext>) and "
                    "OUT/crops_manifest.csv mapping every crop to its source id, file, crop box, mode and "
                    "frame time. Reruns skip up-to-date crops; a changed source or option redoes them.")
    p.add_argument("source", help="COCO Camera Traps JSON (a dataset or a subset.json) or a folder of "
                                  "images/videos")
    p.add_argument("--out", default="crops", help="output folder (default: ./crops)")
    p.add_argument("--bboxes", default=None, help="separate bbox JSON merged by image id (for --mode bbox)")
    p.add_argument("--image-root", default=None, help="folder the JSON's file_name values are relative to")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary")
    add_arguments(p, CropOptions)
    p.set_defaults(func=cmd_crop)


def cmd_crop(args) -> int:
    from trailcam_core.crop import CropOptions
    from trailcam_core.crop import crop_batch

    options = from_namespace(CropOptions, args)
    source = Path(args.source)
    if source.is_file():
        from trailcam_core.ingest import load_dataset

        source = load_dataset(source, bboxes=args.bboxes, image_root=args.image_root)
    elif args.bboxes:
        print("  warning: --bboxes only applies to a CCT JSON source; ignored for a folder")
    with _common.progress("crop") as cb:
        report = crop_batch(source, args.out, options, progress=cb)
    return _common.finish(report, json_out=args.json)
