"""Write MegaDetector batch output (format 1.4) from Detections, a Dataset or a Subset."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Optional

import msgspec
import numpy as np
import pandas as pd

from trailcam_core.base import atomic_path, BatchReport, DataError, ensure, TrailcamError
from trailcam_core.detections.model import MD_CATEGORIES, EMPTY, Detections, coarse_class, normalise_name
from trailcam_core.detections.join import join
from trailcam_core.detections.read import read_detections
from trailcam_core.ingest import load_dataset


def write_megadetector(source, out_json, threshold: Optional[float] = None, files=None,
                       detector: Optional[str] = None, progress=None) -> Path:
    """Write MegaDetector batch output (format 1.4) that Timelapse and MegaDetector's tools open.

    ``source`` is a :class:`Detections` (re-exported, optionally only ``files`` and only
    detections at/above ``threshold``) or anything with ``.images`` and ``.annotations`` tables
    in the Dataset contract (a Dataset or a Subset): each annotation becomes a detection of its
    MegaDetector class (animal/person/vehicle) carrying the species as its classification,
    ``conf`` = its ``score`` (1.0 for a human label), the box normalised by the image size (the
    whole image when the label has no box or the size is unknown).  Empty images get
    ``"detections": []``; unlabelled images are left out.  Images the detector failed on are
    written as MegaDetector writes them, ``{"file": ..., "failure": reason}`` (with ``files``,
    those among ``files``, compared ignoring case).  Returns the path written.
    """
    cb = ensure(progress)
    if isinstance(source, Detections):
        doc = _doc_from_detections(source, threshold, files)
    elif hasattr(source, "images") and hasattr(source, "annotations"):
        doc = _doc_from_dataset(source, files)
    else:
        raise DataError(f"cannot export {type(source).__name__}: expected Detections, a Dataset or a Subset")
    if detector:
        doc["info"]["detector"] = detector
    cb(len(doc["images"]), len(doc["images"]), "writing")
    out = Path(out_json)
    with atomic_path(out) as tmp:
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(doc), indent=1))
    return out


def _info(detector: str) -> dict:
    return {"format_version": "1.4", "detector": detector,
            "detection_completion_time": _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "detector_metadata": {"typical_detection_threshold": 0.2, "conservative_detection_threshold": 0.05},
            "exported_by": "trailcam-curation"}


def _keys(names) -> dict:
    """MegaDetector keys: animal/person/vehicle keep 1/2/3; other names follow from 4."""
    out = {v: k for k, v in MD_CATEGORIES.items()}
    nxt = 4
    for n in sorted(set(names) - set(out)):
        out[n] = str(nxt)
        nxt += 1
    return out


def _r(v: float) -> float:
    return round(float(v), 4)


def _doc_from_detections(det: Detections, threshold: Optional[float], files) -> dict:
    keep_img = np.ones(len(det.images), dtype=bool)
    if files is not None:
        wanted = {str(f).replace("\\", "/") for f in files}
        keep_img = det.images["file"].isin(wanted).to_numpy()
    table = det.detections
    keep_det = det.passing(threshold) if threshold is not None else np.ones(len(table), dtype=bool)
    dkeys = _keys(table["category"].astype(object).unique())
    cls_names = [c for c in table["classification"].dropna().unique()]
    ckeys = {n: str(i) for i, n in enumerate(sorted(cls_names))}
    by_image: dict = {}
    img = table["image"].to_numpy()
    cats = table["category"].astype(object).to_numpy()
    conf = table["conf"].to_numpy(dtype=float)
    bins = det.images["conf_bin"].to_numpy() if "conf_bin" in det.images else None
    cols = [table[c].to_numpy() for c in ("x", "y", "w", "h", "classification", "classification_conf",
                                          "prev_category", "prev_conf")]
    for j in np.flatnonzero(keep_det):
        i = img[j]
        if not keep_img[i]:
            continue
        c = conf[j]
        if np.isnan(c):  # COCO exports carry no confidence: the upper edge of AddaxAI's bin, else 1.0
            c = _bin_high(bins[i]) if bins is not None else 1.0
        x, y, w, h, cn, cc, pn, pc = (col[j] for col in cols)
        d = {"category": dkeys[cats[j]], "conf": _r(c), "bbox": [_r(x), _r(y), _r(w), _r(h)]}
        if cn is not None and not pd.isna(cn):
            d["classifications"] = [[ckeys[cn], _r(cc)]]
        if pn is not None and not pd.isna(pn):
            d["prev_category"] = dkeys.get(pn) or next((k for k, v in MD_CATEGORIES.items() if v == pn), pn)
            if not np.isnan(pc):
                d["prev_conf"] = _r(pc)
        by_image.setdefault(i, []).append(d)
    images = [{"file": f, "detections": by_image.get(i, [])}
              for i, f in enumerate(det.images["file"].to_numpy()) if keep_img[i]]
    images += failure_entries(det, files)
    info = _info(str(det.info.get("detector", det.format)) if isinstance(det.info, dict) else det.format)
    doc = {"info": info, "detection_categories": {k: n for n, k in dkeys.items()}, "images": images}
    if ckeys:
        doc["classification_categories"] = {k: n for n, k in ckeys.items()}
    return doc


def failure_entries(det: Detections, files=None) -> list:
    """MegaDetector's ``{"file", "failure"}`` entries for the images ``det`` could not process."""
    fails = det.failures
    if fails is None or not len(fails):
        return []
    wanted = None if files is None else {str(f).replace("\\", "/").casefold() for f in files}
    return [{"file": str(f), "failure": str(r)} for f, r in zip(fails["file"], fails["failure"])
            if wanted is None or str(f).casefold() in wanted]


def _bin_high(conf_bin: Optional[str]) -> float:
    try:
        return float(str(conf_bin).split("-")[-1])
    except ValueError:
        return 1.0


def _doc_from_dataset(ds, files) -> dict:
    images = ds.images
    if files is not None:
        wanted = {str(f).replace("\\", "/") for f in files}
        images = images[images["file_name"].isin(wanted)]
    ann = ds.annotations
    ann = ann[ann["image_id"].isin(images["image_id"])]
    names = [normalise_name(c) for c in ann["category"].dropna().unique()]
    species = sorted({n for n in names if n != EMPTY and n not in MD_CATEGORIES.values()})
    ckeys = {n: str(i) for i, n in enumerate(species)}
    dkeys = {v: k for k, v in MD_CATEGORIES.items()}
    size = {r.image_id: (r.width, r.height) for r in images[["image_id", "width", "height"]].itertuples()}
    by_image: dict = {}
    cols = ann[["image_id", "category", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "score"]].itertuples(index=False)
    for image_id, category, bx, by, bw, bh, score in cols:
        if category is None or pd.isna(category):
            continue
        name = normalise_name(category)
        if name == EMPTY:
            by_image.setdefault(image_id, [])
            continue
        coarse = coarse_class(name)
        w, h = size.get(image_id, (None, None))
        if any(pd.isna(v) for v in (bx, by, bw, bh, w, h)) or not w or not h:
            box = [0.0, 0.0, 1.0, 1.0]
        else:
            box = [_r(max(bx, 0) / w), _r(max(by, 0) / h), _r(min(bw / w, 1.0)), _r(min(bh / h, 1.0))]
        conf = 1.0 if score is None or pd.isna(score) else float(score)
        d = {"category": dkeys[coarse], "conf": _r(conf), "bbox": box}
        if name in ckeys:
            d["classifications"] = [[ckeys[name], _r(conf)]]
        by_image.setdefault(image_id, []).append(d)
    out_images = []
    labels = images["label"] if "label" in images else pd.Series([None] * len(images), index=images.index)
    for image_id, file_name, label in zip(images["image_id"], images["file_name"], labels):
        dets = by_image.get(image_id)
        if dets is None:
            if label is None or pd.isna(label):
                continue  # unlabelled: neither empty nor an animal
            dets = []
        out_images.append({"file": str(file_name), "detections": dets})
    doc = {"info": _info("human labels (trailcam-curation)"),
           "detection_categories": dict(MD_CATEGORIES), "images": out_images}
    if ckeys:
        doc["classification_categories"] = {k: n for n, k in ckeys.items()}
    return doc


def export_detections(out_json, results=None, dataset=None, *, threshold: Optional[float] = None,
                      strip_prefix: str = "", progress=None):
    """Write MegaDetector-format JSON from a results file, a dataset (its labels), or both.

    * ``results`` only: the detections at or above ``threshold`` (all with ``threshold=None``);
    * ``dataset`` only (a CCT JSON, a subset JSON or a folder): each label as a detection;
    * both: the results file's detections of just the dataset's images; the dataset's images the
      results file lacks are reported as skipped.

    Returns a :class:`BatchReport` whose ``outputs["json"]`` is the file written.
    """

    report = BatchReport("detections export")
    if results is not None:
        det = read_detections(results, strip_prefix=strip_prefix, progress=progress)
        files = None
        if dataset is not None:
            res = join(load_dataset(dataset, progress=progress), det)
            files = det.images["file"].to_numpy()[res.matched["row"].to_numpy(dtype=int)].tolist()
            failed = set(res.failed)
            for f in res.only_in_dataset:
                if f not in failed:
                    report.skip(f, "in the subset but not in the detections file")
            files += res.failed  # written as failure entries
        path = write_megadetector(det, out_json, threshold=threshold, files=files, progress=progress)
        report.processed = len(det.images) if files is None else len(files)
    elif dataset is not None:
        ds = load_dataset(dataset, progress=progress)
        path = write_megadetector(ds, out_json, progress=progress)
        report.processed = len(ds.images)
    else:
        raise TrailcamError("export needs a results file, a dataset (--subset), or both")
    report.outputs["json"] = path
    return report
