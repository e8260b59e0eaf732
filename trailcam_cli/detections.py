"""``trailcam detections import | compare | sort | chart | export``: detector results as labels.

Reads MegaDetector batch output (AddaxAI's ``image_recognition_file.json`` included), AddaxAI's
``results_coco.json`` and SpeciesNet's ``predictions.json``; see docs/detections.md.
"""
from __future__ import annotations

import argparse

from trailcam_core.base import add_arguments, from_namespace

from . import _common


def _results_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("results", nargs=None if required else "?",
                   help="detector results: MegaDetector/AddaxAI JSON, AddaxAI results_coco.json or SpeciesNet "
                        "predictions.json")


def _label_args(p: argparse.ArgumentParser) -> None:
    from trailcam_core.detections import DetectionOptions

    add_arguments(p, DetectionOptions)


def _options(args):
    from trailcam_core.detections import DetectionOptions

    return from_namespace(DetectionOptions, args)


def _read(args):
    from trailcam_core.detections import read_detections

    o = _options(args)
    with _common.progress("read", unit="step") as cb:
        det = read_detections(args.results, strip_prefix=o.strip_prefix, progress=cb)
    print(f"  {det.summary()}")
    for warning in det.warnings:
        print(f"  warning: {warning}")
    return det, o


def _dataset(source):
    from trailcam_core.subset import load_source

    with _common.progress("scan", unit="file") as cb:
        return load_source(source, progress=cb)


def register(sub) -> None:
    from trailcam_core.detections import SortOptions

    p = sub.add_parser("detections", help="import MegaDetector / AddaxAI / SpeciesNet results as labels; compare "
                                          "with CCT labels; sort, chart and export them",
                       description="Detector results as a label source. Actions: import, compare, sort, chart, "
                                   "export (see 'trailcam detections ACTION -h').")
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    a = acts.add_parser("import", help="read a results file; write per-image labels (and a labelled CCT JSON)",
                        description="Read and check a results file. Writes OUT/labels.csv (one row per image: "
                                    "label by the rule, score, location), OUT/skipped.csv (every rejected record "
                                    "and why) and, with --dataset, OUT/labelled.json: the dataset (CCT JSON or "
                                    "folder) with the detector's labels and pixel boxes, ready for subset/crop.")
    _results_arg(a)
    a.add_argument("--dataset", default=None, help="CCT JSON or image folder the detector ran on (joined by "
                                                   "relative path)")
    a.add_argument("--out", default="detections", help="output folder (default: ./detections)")
    _label_args(a)
    a.set_defaults(func=cmd_import)

    c = acts.add_parser("compare", help="agreement with CCT labels and animal-vs-empty precision/recall",
                        description="Compare detector labels with a CCT file's labels. Writes OUT/agreement.csv, "
                                    "OUT/confusion.csv, OUT/precision_recall.csv and OUT/precision_recall.png.")
    _results_arg(c)
    c.add_argument("--dataset", required=True, help="CCT JSON whose labels are the reference")
    c.add_argument("--out", default="compare", help="output folder (default: ./compare)")
    c.add_argument("--thresholds", type=float, nargs="+", default=None,
                   help="thresholds for precision/recall (default: 0.05 0.1 0.2 ... 0.9)")
    _label_args(c)
    c.set_defaults(func=cmd_compare)

    s = acts.add_parser("sort", help="copy/link images into <label>/[conf_lo-hi/] folders as AddaxAI does",
                        description="Sort the images the detector ran on into OUT/<label>/ (optionally "
                                    "OUT/<label>/conf_0.9-1.0/, optionally count-prefixed like 1474-vehicle). "
                                    "Originals are never moved; a rerun changes nothing; OUT/placements.csv "
                                    "lists every placement.")
    _results_arg(s)
    s.add_argument("--images", required=True, help="the folder the detector ran on")
    s.add_argument("--out", required=True, help="output folder that receives the label folders")
    s.add_argument("--strip-prefix", dest="strip_prefix", default="",
                   help="leading folder to remove from absolute paths ('auto' = their common folder)")
    add_arguments(s, SortOptions)
    s.set_defaults(func=cmd_sort)

    h = acts.add_parser("chart", help="distribution of detections and location x class heat map",
                        description="Writes OUT/categories.png and OUT/locations.png with the same chart code "
                                    "as CCT labels. Locations come from --dataset, else from the first folder "
                                    "of each path.")
    _results_arg(h)
    h.add_argument("--dataset", default=None, help="CCT JSON or folder giving each image's location")
    h.add_argument("--out", default="charts", help="output folder (default: ./charts)")
    h.add_argument("--per", choices=("detection", "image"), default="detection",
                   help="count detections (default) or images (empty frames included)")
    h.add_argument("--top", type=int, default=0, help="show only the N largest classes")
    _label_args(h)
    h.set_defaults(func=cmd_chart)

    e = acts.add_parser("export", help="write MegaDetector-format JSON (for Timelapse, MegaDetector tools)",
                        description="Export as MegaDetector batch output (format 1.4). Either a results file "
                                    "(optionally restricted to the images of --subset and to detections at or "
                                    "above --threshold) or, without RESULTS, the labels of --subset itself "
                                    "(a CCT JSON, e.g. a subset.json).")
    _results_arg(e, required=False)
    e.add_argument("--subset", default=None, help="CCT JSON (subset) whose images (and, without RESULTS, labels) "
                                                  "are exported")
    e.add_argument("--out", required=True, help="the JSON file to write")
    e.add_argument("--all-detections", action="store_true",
                   help="keep detections below the threshold too (as MegaDetector writes them)")
    _label_args(e)
    e.set_defaults(func=cmd_export)


def cmd_import(args) -> int:
    from trailcam_core.subset import import_detections

    with _common.progress("import", unit="step") as cb:
        report = import_detections(args.results, args.out, dataset=args.dataset, options=_options(args), progress=cb)
    for warning in report.details["warnings"]:
        print(f"  warning: {warning}")
    if "join" in report.details:
        print(f"  {report.details['join']}")
    counts = list(report.details["label_counts"].items())
    print("  labels: " + ", ".join(f"{k} {v}" for k, v in counts[:12]) + (" ..." if len(counts) > 12 else ""))
    return _common.finish(report)


def cmd_compare(args) -> int:
    from trailcam_core.detections import compare
    from trailcam_core.detections import DEFAULT_THRESHOLDS, write_comparison

    det, o = _read(args)
    comparison = compare(_dataset(args.dataset), det, threshold=o.threshold,
                         thresholds=args.thresholds or DEFAULT_THRESHOLDS,
                         classification_threshold=o.classification_threshold)
    print(f"  {comparison.join.summary()}")
    for note in comparison.notes:
        print(f"  note: {note}")
    print(f"  {comparison.summary()}")
    return _common.finish(write_comparison(comparison, args.out), max_skipped=10)


def cmd_sort(args) -> int:
    from trailcam_core.detections import read_detections
    from trailcam_core.detections import sort_detections, SortOptions

    with _common.progress("read", unit="step") as cb:
        det = read_detections(args.results, strip_prefix=args.strip_prefix, progress=cb)
    print(f"  {det.summary()}")
    options = from_namespace(SortOptions, args)
    with _common.progress("sort") as cb:
        report = sort_detections(det, args.images, args.out, options, progress=cb)
    return _common.finish(report)


def cmd_chart(args) -> int:
    from trailcam_core.detections import write_detection_charts

    det, o = _read(args)
    ds = _dataset(args.dataset) if args.dataset else None
    report = write_detection_charts(det, args.out, dataset=ds, threshold=o.threshold, per=args.per,
                                    classification_threshold=o.classification_threshold, top=args.top)
    return _common.finish(report)


def cmd_export(args) -> int:
    from trailcam_core.detections import export_detections

    o = _options(args)
    with _common.progress("export", unit="step") as cb:
        report = export_detections(args.out, results=args.results, dataset=args.subset,
                                   threshold=None if args.all_detections else o.threshold,
                                   strip_prefix=o.strip_prefix, progress=cb)
    return _common.finish(report)
