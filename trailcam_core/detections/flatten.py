"""Flatten one chunk of decoded image records into validated detection columns.

Everything here works a column at a time (``map``/``itemgetter`` passes and numpy checks) rather
than record by record: a 250,000-image MegaDetector file holds about half a million detections.
Every rejected detection is reported with its image and field.
"""
from __future__ import annotations

from itertools import chain, repeat
from operator import attrgetter, is_, is_not, itemgetter

import numpy as np

from trailcam_core.detections.model import MD_CATEGORIES, normalise_name

#: boxes may overshoot 0..1 by rounding (MegaDetector writes 4 decimals); beyond this they are bad
BOX_TOLERANCE = 1e-3


class _NotObject:
    """Marks a detection entry that was not a JSON object (only seen on the slow path)."""

    def __repr__(self) -> str:
        return "<not an object>"


NOT_OBJECT = _NotObject()

_CATEGORY = attrgetter("category")
_CONF = attrgetter("conf")
_BBOX = attrgetter("bbox")
_CLASSIFICATIONS = attrgetter("classifications")
_PREV = attrgetter("prev_category")
_PREV_CONF = attrgetter("prev_conf")
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)


def _pick(values: list, index) -> list:
    """values[index] for an index array, in C (itemgetter) rather than a Python loop."""
    if len(index) == 0:
        return []
    if len(index) == 1:
        return [values[int(index[0])]]
    return list(itemgetter(*index.tolist())(values))


def _top_classes(lists: list) -> list:
    """The highest-scoring [class, score] pair of each classification list.

    The format says the lists are sorted by score; that is checked (vectorised) rather than trusted.
    """
    tops = list(map(_FIRST, lists))
    lens = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    multi = np.flatnonzero(lens > 1)
    if len(multi):
        first = np.fromiter(map(_SECOND, _pick(tops, multi)), dtype=float, count=len(multi))
        second = np.fromiter(map(_SECOND, map(_SECOND, _pick(lists, multi))), dtype=float, count=len(multi))
        for k in multi[second > first]:
            tops[k] = max(lists[k], key=_SECOND)
    return tops


def not_none(values: list) -> np.ndarray:
    """Positions of entries that are not None (C-level pass)."""
    return np.flatnonzero(np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=len(values)))


def none_at(values: list) -> np.ndarray:
    return np.flatnonzero(np.fromiter(map(is_, values, repeat(None)), dtype=bool, count=len(values)))


def _as_float_array(values: list, numbers: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """values -> float array, plus a mask of entries that were not numbers (bools, None, text).

    ``numbers``: the decoder already guaranteed float-or-None values (a strict chunk)."""
    if numbers:
        arr = np.array(values, dtype=float)  # None -> nan
        return arr, np.isnan(arr)
    if set(map(type, values)) <= {float, int}:  # np.array alone would accept "0.5" and True
        return np.array(values, dtype=float), np.zeros(len(values), dtype=bool)
    arr = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if type(v) in (int, float):
            arr[i] = v
        else:
            bad[i] = True
    return arr, bad


def _as_box_array(values: list) -> tuple[np.ndarray, np.ndarray]:
    """[x, y, w, h] lists -> (n, 4) float array, plus a mask of entries that are not four numbers."""
    n = len(values)
    try:
        if set(map(len, values)) <= {4} and set(map(type, chain.from_iterable(values))) <= {float, int}:
            return (np.fromiter(chain.from_iterable(values), dtype=float, count=4 * n).reshape(n, 4),
                    np.zeros(n, dtype=bool))
    except TypeError:  # an entry without a length (None, a number)
        pass
    arr = np.full((n, 4), np.nan)
    bad = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if type(v) is list and len(v) == 4 and all(type(c) in (int, float) for c in v):
            arr[i] = v
        else:
            bad[i] = True
    return arr, bad


def flatten(det_lists: list, files: list, code_of_key: dict, ccats: dict, dcats: dict, skipped: list,
             strict: bool = False) -> dict:
    """Flatten one chunk's detection lists into validated column arrays (vectorised checks).

    Returns a dict of equally long arrays holding only the valid detections; ``image`` is the
    row in ``files``.  Every rejected detection adds an (image, reason) pair to ``skipped``.
    ``strict`` chunks were decoded with the documented types, so only values are checked.
    """
    counts = np.fromiter(map(len, det_lists), dtype=np.int64, count=len(det_lists))
    flat = list(chain.from_iterable(det_lists))
    total = len(flat)
    img = np.repeat(np.arange(len(det_lists), dtype=np.int64), counts)
    cats = list(map(_CATEGORY, flat))
    confs = list(map(_CONF, flat))
    boxes = list(map(_BBOX, flat))
    try:
        codes = np.fromiter(map(code_of_key.get, cats, repeat(-1)), dtype=np.int64, count=total)
    except TypeError:  # an unhashable category (a list): look each up defensively
        codes = np.array([code_of_key.get(c, -1) if isinstance(c, str) else -1 for c in cats], dtype=np.int64)
    if strict:
        conf = np.fromiter(confs, dtype=float, count=total)
        conf_bad = np.zeros(total, dtype=bool)
        box = np.fromiter(chain.from_iterable(boxes), dtype=float, count=4 * total).reshape(total, 4)
        box_bad = conf_bad
    else:
        conf, conf_bad = _as_float_array(confs)
        box, box_bad = _as_box_array(boxes)

    bad_cat = codes < 0
    with np.errstate(invalid="ignore"):
        bad_conf = conf_bad | np.isnan(conf) | (conf < 0) | (conf > 1)
        x, y, w, h = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
        bad_size = ~box_bad & ((w <= 0) | (h <= 0))
        bad_range = ~box_bad & ~bad_size & ((x < -BOX_TOLERANCE) | (y < -BOX_TOLERANCE) |
                                            (x + w > 1 + BOX_TOLERANCE) | (y + h > 1 + BOX_TOLERANCE))
    bad = bad_cat | bad_conf | box_bad | bad_size | bad_range
    starts = np.r_[0, np.cumsum(counts)[:-1]] if len(counts) else np.zeros(0, dtype=np.int64)
    for j in np.flatnonzero(bad):
        i = img[j]
        where = f"image {files[i]!r}: detections[{j - starts[i]}]"
        if cats[j] is NOT_OBJECT:
            reason = f"{where} is not an object"
        elif box_bad[j]:
            reason = f"{where}.bbox {boxes[j]!r} is not four numbers [x_min, y_min, width, height]"
        elif bad_cat[j]:
            reason = f"{where}.category {cats[j]!r} is not a key of detection_categories"
        elif bad_conf[j]:
            reason = f"{where}.conf {confs[j]!r} is not a number in 0..1"
        elif bad_size[j]:
            reason = f"{where}.bbox {boxes[j]!r} has a negative or zero width/height"
        else:
            reason = f"{where}.bbox {boxes[j]!r} lies outside the image (normalised 0..1)"
        skipped.append((files[i], reason))
    del cats, confs, boxes
    good = ~bad
    # clip rounding overshoot into the image
    with np.errstate(invalid="ignore"):
        x0 = np.clip(x, 0.0, 1.0)
        y0 = np.clip(y, 0.0, 1.0)
        w0 = np.minimum(w, 1.0 - x0)
        h0 = np.minimum(h, 1.0 - y0)

    # classifications and AddaxAI's prev_category (a minority of detections)
    cls_name = np.full(total, None, dtype=object)
    cls_conf = np.full(total, np.nan)
    prev_name = np.full(total, None, dtype=object)
    prev_conf = np.full(total, np.nan)
    prev_all = list(map(_PREV, flat))
    with_prev = not_none(prev_all)
    if len(with_prev):
        md = {**dcats, **MD_CATEGORIES}
        pcs = _pick(prev_all, with_prev)
        try:
            lookup = {pc: md.get(pc) or normalise_name(pc) for pc in set(pcs)}
            prev_name[with_prev] = list(map(lookup.__getitem__, pcs))
        except TypeError:  # an unhashable value
            prev_name[with_prev] = [normalise_name(pc) for pc in pcs]
        pv, pv_bad = _as_float_array(list(map(_PREV_CONF, _pick(flat, with_prev))), strict)
        with np.errstate(invalid="ignore"):
            prev_conf[with_prev] = np.where(pv_bad | (pv < 0) | (pv > 1), np.nan, pv)
    all_cls = list(map(_CLASSIFICATIONS, flat))
    with_cls = np.flatnonzero(np.fromiter(map(bool, all_cls), dtype=bool, count=total) & good)
    if len(with_cls):
        lists = _pick(all_cls, with_cls)
        try:  # the well-formed case, column by column
            tops = _top_classes(lists)
            if not strict and set(map(len, tops)) != {2}:
                raise TypeError
            names_ = list(map(ccats.get, map(_FIRST, tops)))
            scores, s_bad = _as_float_array(list(map(_SECOND, tops)), strict)
        except (TypeError, IndexError, KeyError):
            tops = [None] * len(lists)
            names_ = [None] * len(lists)
            scores, s_bad = np.full(len(lists), np.nan), np.ones(len(lists), dtype=bool)
        with np.errstate(invalid="ignore"):
            s_bad = s_bad | (scores < 0) | (scores > 1)
        name_arr = np.array(names_, dtype=object)
        ok = ~s_bad & np.fromiter(map(is_not, names_, repeat(None)), dtype=bool, count=len(names_))
        cls_name[with_cls[ok]] = name_arr[ok]
        cls_conf[with_cls[ok]] = scores[ok]
        for k in np.flatnonzero(~ok):
            j = with_cls[k]
            i = img[j]
            top = tops[k]
            what = (f"class {top[0]!r} is not a key of classification_categories" if top is not None and not s_bad[k]
                    else f"{lists[k]!r} is not a list of [class key, score in 0..1] pairs")
            skipped.append((files[i], f"image {files[i]!r}: detections[{j - starts[i]}].classifications {what}; "
                                      f"the detector class is used"))
    return {"image": img[good], "code": codes[good], "conf": conf[good], "x": x0[good], "y": y0[good],
            "w": w0[good], "h": h0[good], "classification": cls_name[good], "classification_conf": cls_conf[good],
            "prev_category": prev_name[good], "prev_conf": prev_conf[good]}
