"""`trailcam classify`, `tag`, `caption`, `export-favorites` and `curate`: tags, captions, curation."""
from __future__ import annotations

import argparse
import json

from trailcam_cli import _common
from trailcam_core.base import add_arguments, from_namespace


def register(sub) -> None:
    from trailcam_core.tags import CaptionOptions
    from trailcam_core.tags import ClassifyOptions
    from trailcam_core.tags import ExportOptions
    from trailcam_core.tags import TagOptions

    p = sub.add_parser("classify", help="Zero-shot classify images with open_clip; write a new CCT JSON with scores")
    p.add_argument("source", help="CCT JSON file or folder of images")
    p.add_argument("--out", help="new CCT JSON (default: <source>_zeroshot.json, or <folder>/zeroshot_cct.json)")
    p.add_argument("--image-root", help="folder the CCT file_names are relative to (default: the JSON's folder)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_arguments(p, ClassifyOptions)
    p.set_defaults(func=_classify)

    p = sub.add_parser("tag", help="Auto-tag images (species, time of day, glitches, location, info bar) "
                       "into the project's curation state")
    p.add_argument("source", help="folder of images (e.g. crops) or a CCT JSON")
    p.add_argument("--project", help="project folder holding trailcam_state.json (default: the images' folder)")
    p.add_argument("--metadata", help="CCT JSON lending labels, location and time to a folder's images "
                   "(matched by file stem = image id)")
    p.add_argument("--image-root", help="folder the CCT file_names are relative to")
    p.add_argument("--force", action="store_true", help="re-analyse images already tagged")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_arguments(p, TagOptions)
    p.set_defaults(func=_tag)

    p = sub.add_parser("caption", help="Write kohya .txt captions, metadata.jsonl and tag_frequency.json "
                       "for a tagged project")
    p.add_argument("project", help="project folder (where `trailcam tag` wrote trailcam_state.json)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_arguments(p, CaptionOptions)
    p.set_defaults(func=_caption)

    p = sub.add_parser("export-favorites", help="Copy the favourites and their captions into a training folder")
    p.add_argument("project", help="project folder")
    p.add_argument("out", help="training folder to fill (outside the project)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_arguments(p, ExportOptions)
    add_arguments(p, CaptionOptions, skip=("include",))
    p.set_defaults(func=_export)

    p = sub.add_parser("curate", help="Mark favourites / rejects, edit tags by hand, find more like a selection")
    p.add_argument("project", help="project folder")
    p.add_argument("--favorite", nargs="+", default=[], metavar="ID", help="mark images as favourites")
    p.add_argument("--unfavorite", nargs="+", default=[], metavar="ID")
    p.add_argument("--reject", nargs="+", default=[], metavar="ID", help="mark images as rejects")
    p.add_argument("--unreject", nargs="+", default=[], metavar="ID")
    p.add_argument("--stars", nargs="+", action="append", default=[], metavar=("N", "ID"),
                   help="rate images 0-5 stars: --stars 4 ID [ID ...]; repeatable")
    p.add_argument("--set", nargs=2, action="append", default=[], metavar=("ID", "KEY=VALUE"),
                   help="hand-edit a tag (kept by later auto-tagging); repeatable")
    p.add_argument("--remove", nargs=2, action="append", default=[], metavar=("ID", "KEY"),
                   help="remove a tag by hand; repeatable")
    p.add_argument("--revert", nargs=2, action="append", default=[], metavar=("ID", "KEY"),
                   help="forget a hand edit; repeatable")
    p.add_argument("--list", choices=("favorites", "rejects", "all"), help="print image ids and tags")
    p.add_argument("--more-like-this", nargs="+", metavar="ID", help="rank the rest by embedding similarity")
    p.add_argument("--embeddings", help="embeddings .npz from `trailcam embed` (default: compute, cached)")
    p.add_argument("--model", default=None, help="open_clip model when computing embeddings")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag when computing embeddings")
    p.add_argument("--top", type=int, default=20, help="how many similar images to print")
    p.set_defaults(func=_curate)


def _classify(args: argparse.Namespace) -> int:
    from trailcam_core.tags import classify_to_cct, ClassifyOptions

    options = from_namespace(ClassifyOptions, args)
    with _common.progress("classify") as bar:
        report = classify_to_cct(args.source, args.out, options, image_root=args.image_root, progress=bar)
    return _common.finish(report, args.json)


def _tag(args: argparse.Namespace) -> int:
    from trailcam_core.tags import tag_collection, TagOptions

    options = from_namespace(TagOptions, args)
    with _common.progress("tag") as bar:
        report = tag_collection(args.source, args.project, options, metadata=args.metadata,
                                image_root=args.image_root, force=args.force, progress=bar)
    return _common.finish(report, args.json)


def _caption(args: argparse.Namespace) -> int:
    from trailcam_core.tags import CaptionOptions
    from trailcam_core.tags import caption_project

    options = from_namespace(CaptionOptions, args)
    with _common.progress("caption") as bar:
        report = caption_project(args.project, options, progress=bar)
    return _common.finish(report, args.json)


def _export(args: argparse.Namespace) -> int:
    from trailcam_core.tags import CaptionOptions
    from trailcam_core.tags import export_favorites, ExportOptions, Project

    project = Project.open(args.project, create=False)
    export = from_namespace(ExportOptions, args)
    caption = from_namespace(CaptionOptions, argparse.Namespace(**{k: v for k, v in vars(args).items()
                                                                   if k != "include"}))
    with _common.progress("export-favorites") as bar:
        report = export_favorites(project, args.out, caption, export, progress=bar)
    for warning in project.warnings:
        report.skip("curation state", warning)
    return _common.finish(report, args.json)


def _parse_value(text: str):
    """Tag values from the command line: JSON when it parses (true, 3, ["a","b"]), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _curate(args: argparse.Namespace) -> int:
    from trailcam_core.tags import Project
    from trailcam_core.embed import more_like_this, project_embeddings
    from trailcam_core.base import TrailcamError

    project = Project.open(args.project, create=False)
    for warning in project.warnings:
        print(f"warning: {warning}")
    project.set_favorite(args.favorite, True)
    project.set_favorite(args.unfavorite, False)
    project.set_reject(args.reject, True)
    project.set_reject(args.unreject, False)
    for n, *ids in args.stars:
        if not ids:
            raise TrailcamError(f"--stars {n}: give the stars, then one or more image ids")
        try:
            project.set_stars(ids, int(n))
        except ValueError:
            raise TrailcamError(f"--stars {n!r}: stars must be a whole number from 0 to 5") from None
    for image_id, assignment in args.set:
        if "=" not in assignment:
            raise TrailcamError(f"--set {image_id} {assignment!r}: expected KEY=VALUE")
        key, value = assignment.split("=", 1)
        project.set_tag(image_id, key.strip(), _parse_value(value))
    for image_id, key in args.remove:
        project.remove_tag(image_id, key)
    for image_id, key in args.revert:
        project.revert_tag(image_id, key)
    changed = any([args.favorite, args.unfavorite, args.reject, args.unreject, args.stars, args.set, args.remove,
                   args.revert])
    if changed:
        project.save()
        print(f"curate: {len(project.favorites())} favourites, {len(project.rejects())} rejects -> "
              f"{project.state_path}")
    if args.list:
        ids = {"favorites": project.favorites(), "rejects": project.rejects(), "all": project.ids()}[args.list]
        for image_id in ids:
            tags = {k: t.value for k, t in project.visible_tags(image_id).items()}
            print(f"{image_id}\t{json.dumps(tags, ensure_ascii=False)}")
    if args.more_like_this:
        from trailcam_core.embed import EmbedOptions

        embed_options = EmbedOptions()
        if args.model:
            embed_options.model = args.model
        if args.pretrained is not None:
            embed_options.pretrained = args.pretrained
        with _common.progress("embed") as bar:
            ids, vectors = project_embeddings(project, args.embeddings, embed_options, progress=bar)
        for image_id, sim in more_like_this(args.more_like_this, ids, vectors, exclude=project.rejects(),
                                            top=args.top):
            print(f"{sim:.4f}\t{image_id}")
    return 0
