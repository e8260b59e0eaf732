"""AddaxAI's COCO export and SpeciesNet's predictions.json, read into :class:`Detections`.

Both are checked record by record (they are small next to MegaDetector batch files) and bad
records are skipped with a reason naming the image and the field.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from trailcam_core.detections.model import MD_CATEGORIES, EMPTY, Detections, coarse_class, normalise_name
from trailcam_core.detections.megadetector import (DetectionEntry, ImageEntry, PathCleaner, ResultsFile, image_chunks, image_frame, read_megadetector,
                            to_det)
from trailcam_core.base import DataError, UnsafePathError


# ---------------------------------------------------------------------------------- AddaxAI COCO
_CONF_BIN = re.compile(r"^conf_\d+(\.\d+)?-\d+(\.\d+)?$")


def read_coco(top: ResultsFile, path: Path, strip_prefix: str) -> Detections:
    skipped: list = []
    cats_raw = [] if top.categories is None else top.categories   # missing: warned about below
    if not isinstance(cats_raw, list):
        raise DataError(f"{path}: field 'categories' is not a list")
    cat_names: dict = {}
    for k, c in enumerate(cats_raw):
        if not isinstance(c, dict) or "id" not in c or not isinstance(c.get("name"), str) or not c["name"].strip():
            skipped.append((f"categories[{k}]", f"categories[{k}] needs an 'id' and a non-blank 'name'"))
            continue
        cat_names[c["id"]] = normalise_name(c["name"])
    label_dirs = set(cat_names.values()) | {EMPTY}
    warnings: list = []
    if not cat_names:
        warnings.append(f"{path}: field 'categories' is missing or empty, so the class of every annotation is unknown (its "
                        f"annotations are skipped); paths in AddaxAI's sorted layout (class/conf_0.9-1.0/file) "
                        f"are undone by their confidence folder, but a path sorted without confidence folders "
                        f"keeps its class folder, which then reads as the location")
    images, annotations = top.images, top.annotations
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise DataError(f"{path}: fields 'images' and 'annotations' must be lists")
    images = [im for _, chunk, _ in image_chunks(images) for im in chunk]
    clean = PathCleaner(strip_prefix, [im.file_name if im is not None else None for im in images])
    files, stored, width, height, when, conf_bins = [], [], [], [], [], []
    row_of_id: dict = {}
    seen: dict = {}
    for i, im in enumerate(images):
        if im is None or im.id is None:
            skipped.append((f"images[{i}]", f"images[{i}] is not an object with an 'id'"))
            continue
        name = im.file_name
        try:
            full = clean(name, f"images[{i}]")
        except UnsafePathError as exc:
            skipped.append((str(name) if isinstance(name, str) else f"images[{i}]",
                            str(exc).replace("field 'file'", "field 'file_name'")))
            continue
        key, conf_bin = _unsort(full, label_dirs)
        if key in seen:
            skipped.append((key, f"image {full!r}: duplicate 'file_name' (also images[{seen[key]}]); kept the first"))
            continue
        w, h = im.width, im.height
        size_ok = type(w) in (int, float) and type(h) in (int, float) and w > 0 and h > 0
        if not size_ok:
            skipped.append((key, f"image {full!r}: field 'width'/'height' ({w!r} x {h!r}) is not a positive size; "
                                 f"its boxes cannot be normalised and are skipped"))
        seen[key] = i
        try:
            row_of_id[im.id] = (len(files), float(w) if size_ok else None, float(h) if size_ok else None)
        except TypeError:
            skipped.append((key, f"image {full!r}: field 'id' {im.id!r} is not a number or text"))
            continue
        files.append(key)
        stored.append(full)
        width.append(int(w) if size_ok else pd.NA)
        height.append(int(h) if size_ok else pd.NA)
        dc = im.date_captured
        when.append(None if dc in (None, "", "NA") else str(dc))
        conf_bins.append(conf_bin)
    rows_img, rows_cat, rows_conf, rows_box = [], [], [], []
    for k, ann in enumerate(annotations):
        where = f"annotations[{k}]"
        if not isinstance(ann, dict):
            skipped.append((where, f"{where} is not an object"))
            continue
        try:
            ref = row_of_id.get(ann.get("image_id"))
        except TypeError:
            ref = None
        if ref is None:
            skipped.append((where, f"{where}.image_id {ann.get('image_id')!r} names no (valid) image"))
            continue
        row, w, h = ref
        fname = files[row]
        try:
            cat = cat_names.get(ann.get("category_id"))
        except TypeError:
            cat = None
        if cat is None:
            skipped.append((fname, f"image {fname!r}: {where}.category_id {ann.get('category_id')!r} is not in "
                                   f"'categories'"))
            continue
        if w is None:
            continue  # reported once for the image
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(type(v) in (int, float) for v in bbox)):
            skipped.append((fname, f"image {fname!r}: {where}.bbox {bbox!r} is not four numbers"))
            continue
        bx, by, bw, bh = bbox
        if bw <= 0 or bh <= 0:
            skipped.append((fname, f"image {fname!r}: {where}.bbox {bbox!r} has a negative or zero width/height"))
            continue
        if bx < -1 or by < -1 or bx + bw > w + 1 or by + bh > h + 1:
            skipped.append((fname, f"image {fname!r}: {where}.bbox {bbox!r} lies outside the {w:g}x{h:g} image"))
            continue
        score = ann.get("score")
        if score is not None and not (type(score) in (int, float) and 0 <= score <= 1):
            skipped.append((fname, f"image {fname!r}: {where}.score {score!r} is not a number in 0..1"))
            continue
        x0, y0 = max(bx, 0), max(by, 0)
        rows_img.append(row)
        rows_cat.append(cat)
        rows_conf.append(np.nan if score is None else float(score))
        rows_box.append((x0 / w, y0 / h, min(bw, w - x0) / w, min(bh, h - y0) / h))
    order = np.argsort(np.asarray(rows_img, dtype=np.int64), kind="stable")
    box = np.asarray(rows_box, dtype=float).reshape(-1, 4)[order]
    n_det = len(rows_img)
    table = pd.DataFrame({
        "image": np.asarray(rows_img, dtype=np.int64)[order],
        "category": pd.Categorical(np.asarray(rows_cat, dtype=object)[order] if n_det else [],
                                   categories=sorted(set(cat_names.values()))),
        "conf": np.asarray(rows_conf, dtype=float)[order],
        "x": box[:, 0], "y": box[:, 1], "w": box[:, 2], "h": box[:, 3],
        "classification": pd.Series([None] * n_det, dtype=object),
        "classification_conf": np.full(n_det, np.nan),
        "prev_category": pd.Series([None] * n_det, dtype=object),
        "prev_conf": np.full(n_det, np.nan),
    })
    image_df = image_frame(files, stored, len(files), table, width, height, when)
    image_df["conf_bin"] = pd.Series(conf_bins, dtype=object)
    info = top.info if isinstance(top.info, dict) else {}
    return Detections(images=image_df, detections=table, skipped=skipped, warnings=warnings, info=info,
                      detection_categories={str(k): v for k, v in cat_names.items()}, format="addaxai-coco",
                      format_version="coco")


def _unsort(full: str, label_dirs: set) -> tuple[str, Optional[str]]:
    """Undo AddaxAI's sorted layout: ``coyote/conf_0.9-1.0/a/b.jpg`` -> (``a/b.jpg``, ``conf_0.9-1.0``).

    The first folder is a class folder when it names a category, or when a confidence folder
    follows it (so the layout is recognised even in a file whose ``categories`` are missing)."""
    parts = full.split("/")
    if len(parts) < 2:
        return full, None
    first = normalise_name(parts[0])
    is_label = (first in label_dirs or all(p in label_dirs for p in first.split("_"))
                or (len(parts) >= 3 and _CONF_BIN.match(parts[1]) is not None))
    if not is_label:
        return full, None
    rest = parts[1:]
    conf_bin = None
    if len(rest) >= 2 and (rest[0].startswith("conf_") or rest[0] == "verified"):
        conf_bin = rest[0]
        rest = rest[1:]
    return "/".join(rest), conf_bin


# ------------------------------------------------------------------------------------ SpeciesNet
def _taxon_name(prediction: str) -> str:
    """``uuid;mammalia;carnivora;canidae;canis;latrans;coyote`` -> ``coyote`` (most specific name given)."""
    tokens = [t.strip() for t in str(prediction).split(";")]
    if len(tokens) >= 7:
        if tokens[-1]:
            return tokens[-1]
        for t in reversed(tokens[1:-1]):
            if t:
                return t
        return "unknown"
    return tokens[-1] or "unknown"


def read_speciesnet(top: ResultsFile, path: Path, strip_prefix: str) -> Detections:
    preds = top.predictions
    if not isinstance(preds, list):
        raise DataError(f"{path}: field 'predictions' is not a list")
    dcats: dict = {}
    ccats: dict = {}
    images: list = []
    for p in preds:
        if not isinstance(p, dict):
            images.append(None)
            continue
        out = ImageEntry(file=p.get("filepath"))
        if p.get("failures"):
            fails = p["failures"]
            out.failure = ", ".join(map(str, fails)) if isinstance(fails, list) else str(fails)
            images.append(out)
            continue
        dets = []
        raw_dets = p.get("detections")
        for d in raw_dets if isinstance(raw_dets, list) else []:
            det = to_det(d)
            if type(d) is dict:
                key, label = str(d.get("category")), d.get("label")
                if isinstance(label, str) and label.strip():
                    dcats.setdefault(key, "person" if normalise_name(label) == "human" else label)
                det.category = key
            dets.append(det)
        cls_string, cls_score = p.get("prediction"), p.get("prediction_score")
        if cls_string is None and isinstance(p.get("classifications"), dict):
            classes, scores = p["classifications"].get("classes"), p["classifications"].get("scores")
            if classes and scores:
                cls_string, cls_score = classes[0], scores[0]
        if isinstance(cls_string, str):
            name = _taxon_name(cls_string)
            if name.endswith("homo species"):
                name = "human"
            if normalise_name(name) != "blank":
                cid = next((k for k, v in ccats.items() if v == name), str(len(ccats)))
                ccats[cid] = name
                if not dets:  # a whole-image prediction with no detection: one whole-image box
                    coarse = coarse_class(name)
                    key = next((k for k, v in dcats.items() if normalise_name(v) == coarse), None)
                    if key is None:
                        key = {"animal": "1", "person": "2", "vehicle": "3"}[coarse]
                        dcats.setdefault(key, coarse)
                    dets = [DetectionEntry(category=key, conf=cls_score, bbox=[0.0, 0.0, 1.0, 1.0])]
                for det in dets:
                    det.classifications = [[cid, cls_score]]
        out.detections = dets
        images.append(out)
    for k, v in MD_CATEGORIES.items():
        dcats.setdefault(k, v)
    version = next((p.get("model_version") for p in preds if isinstance(p, dict) and p.get("model_version")), None)
    converted = ResultsFile(info={"format_version": "1.4", "detector": "speciesnet", "model_version": version},
                     detection_categories=dcats, classification_categories=ccats, images=images)
    return read_megadetector(converted, path, strip_prefix, fmt="speciesnet")
