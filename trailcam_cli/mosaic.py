"""`trailcam embed` and `trailcam mosaic`: image features and similarity mosaics."""
from __future__ import annotations

import argparse
from pathlib import Path

from trailcam_core.embed import embed_images, EmbedOptions
from trailcam_core.base import add_arguments, BatchReport, from_namespace, TrailcamError
from trailcam_core.mosaic import make_mosaic, MosaicOptions

from ._common import finish, progress

SOURCE_HELP = ("a folder of images (searched recursively), image files, or a COCO Camera Traps JSON "
               "(its images and labels)")
IMAGE_ROOT_HELP = ("folder a CCT JSON's file_name values are relative to (default: the folder recorded by "
                   "`trailcam subset`, else the JSON's own folder)")


def _source(items: list[str], image_root: str | None = None):
    """One folder/JSON/npz as is; several paths as a list of image files."""
    if image_root and not (len(items) == 1 and items[0].lower().endswith(".json")):
        raise TrailcamError("--image-root applies to a COCO Camera Traps JSON source only")
    if len(items) == 1:
        src = items[0]
        if src.lower().endswith(".json"):
            try:
                from trailcam_core.ingest import load_dataset
            except ImportError as exc:  # the data stage is not installed in this build
                raise TrailcamError(f"{src}: reading COCO Camera Traps JSON needs trailcam_core.ingest.dataset ({exc})")
            return load_dataset(src, image_root=image_root).records()
        return src
    return items


def _embed(args: argparse.Namespace) -> int:
    options = from_namespace(EmbedOptions, args)
    out = Path(args.out)
    cache = Path(args.cache_dir) if args.cache_dir else out.parent / "embed-cache"
    with progress("embed") as bar:
        emb = embed_images(_source(args.source, args.image_root), options, cache_dir=cache, progress=bar)
    if len(emb) == 0:
        missing = sum(1 for _, reason in emb.skipped if reason.startswith("cannot read file"))
        hint = (f"; {missing} files were not found: give the folder the JSON's file_name values are relative "
                "to with --image-root") if missing and args.source[0].lower().endswith(".json") else ""
        raise TrailcamError("no readable images found" + (f" ({len(emb.skipped)} skipped)" if emb.skipped else "")
                            + hint)
    emb.save(out)
    report = BatchReport("embed", processed=emb.computed, up_to_date=len(emb) - emb.computed,
                         skipped=list(emb.skipped), outputs={"embeddings": out, "dim": emb.vectors.shape[1]})
    return finish(report, json_out=args.json)


def _mosaic(args: argparse.Namespace) -> int:
    options = from_namespace(MosaicOptions, args)
    embed_options = from_namespace(EmbedOptions, args)
    with progress("mosaic", unit="‰") as bar:
        report = make_mosaic(_source(args.source, args.image_root), args.out, options, embed_options,
                             cache_dir=args.cache_dir or None, progress=bar)
    return finish(report, json_out=args.json)


def register(subparsers) -> None:
    p = subparsers.add_parser("embed", help="compute open_clip (or image pyramid) features, cached on disk",
                              description="Compute one feature vector per image and save them to an .npz that "
                              "`trailcam mosaic` reads. Vectors are cached by file content and model, so a rerun "
                              "recomputes nothing.")
    p.add_argument("source", nargs="+", help=SOURCE_HELP)
    p.add_argument("--out", "-o", required=True, help="embeddings file to write (.npz)")
    p.add_argument("--cache-dir", default="", help="feature cache folder (default: embed-cache beside --out)")
    p.add_argument("--image-root", default=None, help=IMAGE_ROOT_HELP)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_arguments(p, EmbedOptions)
    p.set_defaults(func=_embed)

    p = subparsers.add_parser("mosaic", help="lay images out on a similarity grid: mosaic, positions, scatter, viewer",
                              description="Arrange images on a grid by similarity and write mosaic.jpg, "
                              "positions.json, scatter.png and viewer.html (plus embeddings.npz) into --out. "
                              "SOURCE may also be an .npz written by `trailcam embed`.")
    p.add_argument("source", nargs="+", help=SOURCE_HELP + ", or an embeddings .npz")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--cache-dir", default="", help="feature cache folder (default: OUT/embed-cache)")
    p.add_argument("--image-root", default=None, help=IMAGE_ROOT_HELP)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_arguments(p, EmbedOptions)
    add_arguments(p, MosaicOptions)
    p.set_defaults(func=_mosaic)
