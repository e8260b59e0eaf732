"""Join a detections file to a Dataset (CCT or plain folder) and make it the Dataset's labels.

The join key is the image's path relative to the folder the detector ran on (``file`` in
MegaDetector output), compared with the Dataset's ``file_name``; Windows separators are
accepted.  Paths that do not match exactly are matched case-insensitively, then by their base
name when that name is unique on both sides (MegaDetector run on ``cct_images/`` while the CCT
file names are ``<id>.jpg``).  Files present on one side only are reported.

:func:`apply_detections` is what the faces call (the ComfyUI ``LoadTrailcamSubset`` node and
the Gradio data tab accept a detections file through it)::

    ds = apply_detections("photos/", "image_recognition_file.json", threshold=0.2)
    ds.images["label"]        # detector labels by the documented rule ("empty" when nothing passes)
    ds.annotations            # one row per detection at/above the threshold, bbox in pixels, score set
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trailcam_core.detections.model import DEFAULT_THRESHOLD, EMPTY, Detections
from trailcam_core.detections.read import read_detections
from trailcam_core.base import ensure, TrailcamError
from trailcam_core.ingest import Dataset, load_dataset
from trailcam_core.detections.model import DEFAULT_CLASSIFICATION_THRESHOLD


@dataclass
class JoinResult:
    """How a detections file and a Dataset matched.

    ``matched``: one row per matched image: ``image_id``, ``file_name`` (Dataset side), ``row``
    (row of ``Detections.images``), ``how`` ("path", "case" or "name").
    ``only_in_detections``: result paths with no image in the Dataset.
    ``only_in_dataset``: Dataset file names with no detector result.
    ``failed``: Dataset file names the detector reported a ``failure`` for.
    """

    matched: pd.DataFrame
    only_in_detections: list = field(default_factory=list)
    only_in_dataset: list = field(default_factory=list)
    failed: list = field(default_factory=list)

    def summary(self) -> str:
        by = self.matched["how"].value_counts().to_dict() if len(self.matched) else {}
        extra = "".join(f", {n} by {k}" for k, n in sorted(by.items()) if k != "path")
        return (f"{len(self.matched)} images matched{extra}; {len(self.only_in_dataset)} images have no detector "
                f"result ({len(self.failed)} of them failed in the detector); {len(self.only_in_detections)} "
                f"results have no image")


def as_dataset(dataset, progress=None):
    if hasattr(dataset, "images") and hasattr(dataset, "annotations"):
        parent = getattr(dataset, "dataset", None)
        if parent is not None and not hasattr(dataset, "info"):  # a Subset: its rows, its dataset's root

            return Dataset(dataset.images, dataset.annotations, parent.categories, parent.root,
                           source=parent.source, kind=parent.kind, info=parent.info,
                           skipped=list(parent.skipped), warnings=list(parent.warnings))
        return dataset

    return load_dataset(dataset, progress=progress)


def as_detections(detections, strip_prefix: str = "", progress=None) -> Detections:
    if isinstance(detections, Detections):
        return detections
    return read_detections(detections, strip_prefix=strip_prefix, progress=progress)


def join(dataset, detections) -> JoinResult:
    """Match ``detections`` (a :class:`Detections`) to ``dataset`` (anything with ``.images``)."""
    ds_files = dataset.images["file_name"].astype(str).str.replace("\\", "/", regex=False).to_numpy()
    ds_ids = dataset.images["image_id"].astype(str).to_numpy()
    det_files = detections.images["file"].astype(str).to_numpy()
    rows: list = []
    ds_left = dict(zip(ds_files, range(len(ds_files))))
    det_left = dict(zip(det_files, range(len(det_files))))

    def take(pairs, how):
        for d, k in pairs:
            rows.append((ds_ids[k], ds_files[k], d, how))

    exact = [(det_left[f], ds_left[f]) for f in list(det_left) if f in ds_left]
    take(exact, "path")
    for d, k in exact:
        del det_left[det_files[d]], ds_left[ds_files[k]]
    for how, keyf in (("case", str.casefold), ("name", lambda p: p.rsplit("/", 1)[-1].casefold())):
        if not det_left or not ds_left:
            break
        det_names, ds_names = list(det_left), list(ds_left)
        det_k, ds_k = [keyf(f) for f in det_names], [keyf(f) for f in ds_names]
        det_count, ds_count = Counter(det_k), Counter(ds_k)
        ds_by = {k: f for k, f in zip(ds_k, ds_names) if ds_count[k] == 1}
        pairs = [(f, ds_by[k]) for k, f in zip(det_k, det_names) if det_count[k] == 1 and k in ds_by]
        take([(det_left[f], ds_left[g]) for f, g in pairs], how)
        for f, g in pairs:
            del det_left[f], ds_left[g]
    matched = pd.DataFrame(rows, columns=["image_id", "file_name", "row", "how"])
    failed_keys = set(detections.failures["file"].astype(str)) if len(detections.failures) else set()
    failed_lower = {f.casefold() for f in failed_keys}
    only_ds = sorted(ds_left)
    failed = [f for f in only_ds if f in failed_keys or f.casefold() in failed_lower]
    return JoinResult(matched=matched, only_in_detections=sorted(det_left), only_in_dataset=only_ds, failed=failed)


def _probe_sizes(dataset, file_names) -> dict:
    """(width, height) read from image headers (no pixel decoding) for files that exist."""
    from PIL import Image

    out = {}
    for name in file_names:
        try:
            path = dataset.image_path(name)
            with Image.open(path) as img:
                out[name] = img.size
        except Exception:  # missing or unreadable: the box stays without pixels
            continue
    return out


def apply_detections(dataset, detections, threshold: float = DEFAULT_THRESHOLD, classification_threshold: float = DEFAULT_CLASSIFICATION_THRESHOLD,
                     strip_prefix: str = "", read_sizes: bool = True, progress=None):
    """Return a copy of ``dataset`` whose labels and boxes come from ``detections``.

    ``dataset``: a Dataset/Subset, or a path (CCT JSON or plain folder, loaded with
    ``load_dataset``).  ``detections``: a :class:`Detections` or a results-file path.

    Images the detector processed get the label rule's label (``"empty"`` when no detection
    reaches ``threshold``) and one annotation per detection at/above the threshold: category =
    that detection's class, ``score`` = its confidence, bbox in absolute pixels when the image
    size is known (from the Dataset, the results file or, with ``read_sizes``, the image
    header), NaN otherwise.  Images without a detector result stay in the Dataset with no label
    (``<NA>``).  The join (``JoinResult``) is kept as ``dataset.detections_join`` (the
    :class:`Detections` as ``dataset.detections``), summarised in ``dataset.warnings``, and the
    settings in ``dataset.info["detections"]``.  The Dataset keeps its ``kind`` and ``root``, so
    subset, sort, crop (bbox mode) and ``write_cct`` work on it unchanged.
    """

    cb = ensure(progress)
    ds = as_dataset(dataset, progress)
    det = as_detections(detections, strip_prefix, progress)
    cb(0, 3, "joining")
    res = join(ds, det)
    if len(res.matched) == 0 and len(ds.images) and len(det.images):
        raise TrailcamError(f"no image of the dataset ({len(ds.images)} images under {ds.root}) matches a result "
                            f"in the detections file ({len(det.images)} results, e.g. "
                            f"{det.images['file'].iloc[0]!r} vs {ds.images['file_name'].iloc[0]!r}); run the "
                            f"detector on the dataset's image folder or give strip_prefix")
    labels = det.labels(threshold, classification_threshold)
    boxes = det.detections[det.passing(threshold)]
    names = det.detection_labels(classification_threshold)[det.passing(threshold)]

    images = ds.images.copy()
    row_of_image = dict(zip(res.matched["image_id"], res.matched["row"]))
    det_row = images["image_id"].astype(str).map(row_of_image)
    has = det_row.notna().to_numpy()
    rows = det_row[has].astype(np.int64).to_numpy()
    new_label = pd.Series(pd.NA, index=images.index, dtype=object)
    new_label[has] = labels["label"].to_numpy()[rows]
    images["label"] = new_label
    # sizes: dataset first, then the results file (COCO exports carry them), then image headers
    width = images["width"].astype("Int64").copy()
    height = images["height"].astype("Int64").copy()
    det_w = det.images["width"].to_numpy()[rows]
    det_h = det.images["height"].to_numpy()[rows]
    idx = images.index[has]
    width.loc[idx] = width.loc[idx].fillna(pd.Series(det_w, index=idx, dtype="Int64"))
    height.loc[idx] = height.loc[idx].fillna(pd.Series(det_h, index=idx, dtype="Int64"))
    images["width"], images["height"] = width, height
    cb(1, 3, "boxes")

    # annotations: one per passing detection of a matched image, "empty" for matched images without any
    image_of_row = pd.Series(images["image_id"].to_numpy()[has], index=rows)
    box_rows = boxes["image"].to_numpy()
    keep = np.isin(box_rows, rows)
    b_img = image_of_row.reindex(box_rows[keep]).to_numpy()
    size = images.set_index(images["image_id"].astype(str))[["width", "height", "file_name"]]
    b_size = size.reindex(pd.Index(b_img).astype(str))
    need = b_size["width"].isna().to_numpy() | b_size["height"].isna().to_numpy()
    if read_sizes and need.any():
        probed = _probe_sizes(ds, sorted(set(b_size["file_name"].to_numpy()[need])))
        if probed:
            fill_w = b_size["file_name"].map(lambda f: probed.get(f, (None, None))[0])
            fill_h = b_size["file_name"].map(lambda f: probed.get(f, (None, None))[1])
            b_size["width"] = b_size["width"].astype("Float64").fillna(fill_w.astype("Float64"))
            b_size["height"] = b_size["height"].astype("Float64").fillna(fill_h.astype("Float64"))
            by_file = {f: wh for f, wh in probed.items()}
            fw = images["file_name"].map(lambda f: by_file.get(f, (None, None))[0]).astype("Float64")
            fh = images["file_name"].map(lambda f: by_file.get(f, (None, None))[1]).astype("Float64")
            images["width"] = images["width"].astype("Float64").fillna(fw).round().astype("Int64")
            images["height"] = images["height"].astype("Float64").fillna(fh).round().astype("Int64")
    w = b_size["width"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    h = b_size["height"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    sub = boxes[keep]
    cat_names = names.to_numpy()[keep]
    empty_ids = images["image_id"][has & (images["label"] == EMPTY).fillna(False).to_numpy()].to_numpy()
    all_names = sorted(set(cat_names) | ({EMPTY} if len(empty_ids) else set()))
    cat_id = {n: i for i, n in enumerate(all_names)}
    ann = pd.DataFrame({
        "annotation_id": [f"det{i}" for i in range(len(sub))],
        "image_id": b_img.astype(object),
        "category_id": pd.array([cat_id[n] for n in cat_names], dtype="Int64"),
        "category": pd.Series(cat_names, dtype=object),
        "bbox_x": sub["x"].to_numpy() * w, "bbox_y": sub["y"].to_numpy() * h,
        "bbox_w": sub["w"].to_numpy() * w, "bbox_h": sub["h"].to_numpy() * h,
        "score": sub["conf"].to_numpy(),
    })
    if len(empty_ids):
        ann = pd.concat([ann, pd.DataFrame({
            "annotation_id": [f"det-empty{i}" for i in range(len(empty_ids))],
            "image_id": pd.Series(empty_ids, dtype=object),
            "category_id": pd.array([cat_id[EMPTY]] * len(empty_ids), dtype="Int64"),
            "category": EMPTY, "bbox_x": np.nan, "bbox_y": np.nan, "bbox_w": np.nan, "bbox_h": np.nan,
            "score": np.nan})], ignore_index=True)
    template = ds.annotations
    for col in template.columns:  # keep the Dataset's dtypes where they exist
        if col in ann and str(template[col].dtype) != str(ann[col].dtype):
            try:
                ann[col] = ann[col].astype(template[col].dtype)
            except (TypeError, ValueError):
                pass
    ann = ann[[c for c in template.columns if c in ann] + [c for c in ann.columns if c not in template.columns]]
    cb(2, 3, "dataset")
    info = dict(ds.info) if isinstance(ds.info, dict) else {}
    info["detections"] = {"source": str(det.source) if det.source else None, "format": det.format,
                          "format_version": det.format_version, "threshold": threshold,
                          "classification_threshold": classification_threshold}
    warnings = list(getattr(ds, "warnings", []) or [])
    warnings.append(f"detections: {res.summary()}")
    warnings.extend(f"detections: {w}" for w in getattr(det, "warnings", []))
    if len(det.skipped):
        warnings.append(f"detections: {len(det.skipped)} records of the results file were skipped")
    out = Dataset(images, ann, {i: n for n, i in cat_id.items()}, ds.root, source=getattr(ds, "source", None),
                  kind=getattr(ds, "kind", "cct"), info=info,
                  skipped=list(getattr(ds, "skipped", []) or []) + list(det.skipped), warnings=warnings)
    out.detections_join = res
    out.detections = det
    cb(3, 3, res.summary())
    return out
