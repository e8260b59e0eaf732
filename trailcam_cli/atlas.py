"""`trailcam atlas build | add | report | embed`: the whole collection and its generations in one deep-zoom atlas."""
from __future__ import annotations

import argparse
import json

from trailcam_core.atlas import (add_to_atlas, atlas_report, AtlasOptions, AtlasSource, build_atlas,
                                 distributed_rank, embed_shard, parse_source, shard_device, source_records)
from trailcam_core.embed import EmbedOptions
from trailcam_core.base import add_arguments, BatchReport, describe, from_namespace, TrailcamError

from ._common import finish, progress

SOURCE_HELP = ("[name=][kind:]PATH: a folder of images, a CCT JSON or an embeddings .npz; kind is real (photos), "
               "lora, gan or generated, e.g. photos/ or lora-v1=lora:generations/")


def _sources(args: argparse.Namespace, default_kind: str) -> list[AtlasSource]:
    sources = [parse_source(s, default_kind) for s in args.source]
    if getattr(args, "metadata", None):
        real = [s for s in sources if s.kind == "real"]
        if len(real) != 1:
            raise TrailcamError("--metadata goes with exactly one real source")
        real[0].metadata = args.metadata
    if getattr(args, "project", None):
        real = [s for s in sources if s.kind == "real"]
        if len(real) != 1:
            raise TrailcamError("--project goes with exactly one real source")
        real[0].project = args.project
    return sources


def _build(args: argparse.Namespace) -> int:
    with progress("atlas", unit="‰") as bar:
        report = build_atlas(_sources(args, "real"), args.out, from_namespace(AtlasOptions, args),
                             from_namespace(EmbedOptions, args), cache_dir=args.cache_dir or None, progress=bar)
    return finish(report, json_out=args.json)


def _given(cls: type, args: argparse.Namespace) -> dict:
    return {i.name: getattr(args, i.name) for i in describe(cls) if getattr(args, i.name, None) is not None}


def _add(args: argparse.Namespace) -> int:
    embed_given = _given(EmbedOptions, args)
    with progress("atlas add", unit="‰") as bar:
        report = add_to_atlas(args.atlas, _sources(args, "generated"), None,
                              from_namespace(EmbedOptions, args) if embed_given else None,
                              cache_dir=args.cache_dir or None, progress=bar, changes=_given(AtlasOptions, args))
    return finish(report, json_out=args.json)


def _report(args: argparse.Namespace) -> int:
    rep = atlas_report(args.atlas, args.copy_percentile)
    if args.json:
        print(json.dumps({k: v for k, v in rep.items() if k != "text"}, indent=1))
    else:
        print(rep["text"])
        if rep.get("figure"):
            print(f"figure: {rep['figure']}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    rank, world, local = distributed_rank()
    options = shard_device(from_namespace(EmbedOptions, args), local, world)
    records = []
    skipped: list[tuple[str, str]] = []
    for s in _sources(args, "real"):
        recs, sk = source_records(s)
        records += recs
        skipped += sk
    with progress(f"embed shard {rank + 1}/{world}") as bar:
        emb = embed_shard(records, options, args.cache_dir, rank, world, progress=bar)
    report = BatchReport(f"atlas embed (shard {rank + 1} of {world})", processed=emb.computed,
                         up_to_date=len(emb) - emb.computed, skipped=skipped + list(emb.skipped),
                         outputs={"cache": args.cache_dir, "device": options.device or "auto"})
    return finish(report, json_out=args.json)


def register(subparsers) -> None:
    p = subparsers.add_parser("atlas", help="one deep-zoom atlas of a whole collection and its generations",
                              description="Lay every photo of a collection and your generated images out on one "
                              "similarity grid, drawn as a deep-zoom pyramid with a viewer (layers, search, nearest "
                              "real photos of each generation) and a report of likely copies.")
    sub = p.add_subparsers(dest="atlas_command", metavar="ACTION")

    b = sub.add_parser("build", help="embed the sources, lay them out, draw the atlas",
                       description="Build an atlas into --out (index.html, atlas.json, the current version folder).")
    b.add_argument("source", nargs="+", help=SOURCE_HELP)
    b.add_argument("--out", "-o", required=True, help="atlas folder")
    b.add_argument("--metadata", default="", help="CCT JSON lending the real photos labels, location and time")
    b.add_argument("--project", default="", help="curation project of the real photos (favourites, rejects, tags)")
    b.add_argument("--cache-dir", default="", help="feature cache (default: OUT/embed-cache)")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    add_arguments(b, EmbedOptions)
    add_arguments(b, AtlasOptions, skip=("relayout",))
    b.set_defaults(func=_build)

    a = sub.add_parser("add", help="add sources to an atlas without laying the others out again",
                       description="Embed the new sources (cached vectors reused) and place them in free cells "
                       "next to the images they resemble; --relayout lays everything out again.")
    a.add_argument("atlas", help="atlas folder made by `trailcam atlas build`")
    a.add_argument("source", nargs="+", help=SOURCE_HELP + " (default kind: generated)")
    a.add_argument("--cache-dir", default="", help="feature cache (default: ATLAS/embed-cache)")
    a.add_argument("--json", action="store_true", help="print the report as JSON")
    add_arguments(a, EmbedOptions)
    add_arguments(a, AtlasOptions, skip=("tile",))
    a.set_defaults(func=_add)

    r = sub.add_parser("report", help="nearest-real distances per source and likely copies",
                       description="Print each generated source's distances to the nearest real photos against the "
                       "real photos' own nearest-neighbour distances, and the likely copies.")
    r.add_argument("atlas", help="atlas folder")
    r.add_argument("--copy-percentile", type=float, default=None,
                   help="flag generations nearer than this percentile of real-real distances (default: the atlas's)")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.set_defaults(func=_report)

    e = sub.add_parser("embed", help="embed sources into a feature cache, sharded (run under accelerate launch)",
                       description="Embed this process's share of the images into --cache-dir; under "
                       "`accelerate launch --num_processes N -m trailcam_cli atlas embed ...` each process takes "
                       "every N-th image on its own GPU. A killed run continues where it stopped. Then run "
                       "`trailcam atlas build ... --cache-dir` with the same cache: nothing is computed again.")
    e.add_argument("source", nargs="+", help=SOURCE_HELP)
    e.add_argument("--cache-dir", required=True, help="feature cache shared by all processes")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    add_arguments(e, EmbedOptions)
    e.set_defaults(func=_embed)

    def usage(args):
        p.print_help()
        return 2

    p.set_defaults(func=usage)
