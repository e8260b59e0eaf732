"""Read and write detector results files.

Formats read (detected from the content, not the file name):

* MegaDetector batch output, ``info.format_version`` "1.0" to "1.6"
  (https://lila.science/megadetector-output-format): ``images[*].file``, ``detections[*]``
  with ``category`` (a key of ``detection_categories``), ``conf``, ``bbox`` =
  [x_min, y_min, width, height] normalised to 0..1, optional ``classifications`` = [[class key,
  score], ...] (keys of ``classification_categories``), AddaxAI's ``prev_category`` /
  ``prev_conf``, and ``failure`` for images that could not be processed.  AddaxAI writes this
  format (version 1.4) as ``image_recognition_file.json`` with a remapped category map.
* AddaxAI's ``results_coco.json`` export (COCO: ``images`` with ``file_name`` in AddaxAI's
  sorted layout ``<class>\\conf_<lo>-<hi>\\<file>``, ``date_captured`` often "NA",
  ``annotations`` with pixel boxes, no confidences).
* SpeciesNet's ``predictions.json`` (``predictions[*]`` with ``filepath``, ``detections``,
  ``prediction`` / ``prediction_score``, ``classifications`` {classes, scores}, ``failures``),
  converted the way MegaDetector's ``generate_md_results_from_predictions_json`` does: the
  ensemble prediction becomes the classification of every detection; a non-blank prediction
  without detections becomes one whole-image detection.

Bad records are skipped and listed with a reason naming the image and the field; the file
as a whole is rejected only when it is not a results file or its version is unknown.

Written: MegaDetector format 1.4 (:func:`write_megadetector`), from a :class:`Detections`,
a Dataset or a Subset, so a curated subset opens in Timelapse or MegaDetector's postprocessing.
"""
from __future__ import annotations

import datetime as _dt
import gc
import os
import re
from contextlib import contextmanager
from itertools import chain, repeat
from operator import attrgetter, is_, is_not, itemgetter
from pathlib import Path, PureWindowsPath
from typing import Any, Optional

import msgspec
import numpy as np
import pandas as pd

from .atomic import atomic_path
from .detections import MD_CATEGORIES, Detections, coarse_class, normalise_name, EMPTY
from .errors import DataError, UnsafePathError
from .paths import safe_relative
from .progress import ensure

#: format versions of MegaDetector's batch output this reader understands
KNOWN_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6")
#: boxes may overshoot 0..1 by rounding (MegaDetector writes 4 decimals); beyond this they are bad
BOX_TOLERANCE = 1e-3


# ------------------------------------------------------------------------------------ decoding
# The file is decoded once by msgspec straight into small structs (no dict per record, not
# tracked by the garbage collector); unknown fields are skipped without being materialised.
# Values stay loosely typed (Any) so that one bad record does not fail the whole decode: the
# checks happen afterwards, vectorised, and name the image and the field.
class _NotObject:
    """Marks a detection entry that was not a JSON object (only seen on the slow path)."""

    def __repr__(self) -> str:
        return "<not an object>"


NOT_OBJECT = _NotObject()


class _Det(msgspec.Struct, gc=False):
    category: Any = None
    conf: Any = None
    bbox: Any = None
    classifications: Any = None
    prev_category: Any = None
    prev_conf: Any = None


class _Image(msgspec.Struct, gc=False):
    file: Any = None
    detections: Optional[list[_Det]] = None
    failure: Any = None
    # AddaxAI COCO export fields
    id: Any = None
    file_name: Any = None
    width: Any = None
    height: Any = None
    date_captured: Any = None


class _StrictDet(msgspec.Struct, gc=False):
    """A detection exactly as the format says (the fast path; any deviation uses _Det)."""
    category: str
    conf: float
    bbox: tuple[float, float, float, float]
    classifications: Optional[list[tuple[str, float]]] = None
    prev_category: Optional[str] = None
    prev_conf: Optional[float] = None


class _StrictImage(msgspec.Struct, gc=False):
    file: str
    detections: Optional[list[_StrictDet]] = None
    failure: Optional[str] = None


class _Top(msgspec.Struct):
    info: Any = None
    detection_categories: Any = None
    classification_categories: Any = None
    images: Optional[list[msgspec.Raw]] = None   # decoded a chunk at a time (see _image_chunks)
    annotations: Any = None
    categories: Any = None
    predictions: Any = None


class _FileOnly(msgspec.Struct, gc=False):
    file: Any = None
    file_name: Any = None


_TOP = msgspec.json.Decoder(_Top)
_IMAGE = msgspec.json.Decoder(_Image)
_IMAGES = msgspec.json.Decoder(list[_Image])
_STRICT_IMAGES = msgspec.json.Decoder(list[_StrictImage])
_FILE_ONLY = msgspec.json.Decoder(_FileOnly)
#: images decoded and checked per chunk, so only one chunk of Python objects is alive at a time
CHUNK = 20_000
_DET_FIELDS = _Det.__struct_fields__
_IMAGE_FIELDS = _Image.__struct_fields__


@contextmanager
def _no_gc():
    """Millions of small containers trigger repeated full collections; none can form cycles here."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _to_det(d: Any) -> _Det:
    if type(d) is not dict:
        return _Det(category=NOT_OBJECT)
    return _Det(**{k: d[k] for k in _DET_FIELDS if k in d})


def _to_image(im: Any) -> Optional[_Image]:
    if type(im) is not dict:
        return None
    out = _Image(**{k: im[k] for k in _IMAGE_FIELDS if k in im and k != "detections"})
    dets = im.get("detections")
    out.detections = [_to_det(d) for d in dets] if type(dets) is list else dets
    return out


def load_results(path: Path) -> _Top:
    """Decode the top level of a results file; ``images`` stay raw JSON until read chunk by chunk."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read detections file {path}: {exc.strerror or exc}") from exc
    with _no_gc():
        try:
            return _TOP.decode(raw)
        except msgspec.ValidationError as exc:
            data = msgspec.json.decode(raw)
            if not isinstance(data, dict):
                raise DataError(f"{path}: a results file is a JSON object, found a {type(data).__name__}") from exc
            raise DataError(f"{path}: field 'images' is not a list") from exc
        except msgspec.DecodeError as exc:
            raise DataError(f"{path} is not valid JSON: {exc}") from exc


def _decode_one(raw: msgspec.Raw) -> Optional[_Image]:
    try:
        return _IMAGE.decode(raw)
    except msgspec.ValidationError:  # not an object, or 'detections' holds a non-object
        return _to_image(msgspec.json.decode(raw))


def _image_chunks(images: list, size: Optional[int] = None):
    """Yield (offset, list of image records or None, strict) chunks, decoding raw entries one chunk per call.

    ``strict`` is True when every record of the chunk has exactly the documented types, so the
    checks that follow need only look at values (ranges, keys), not at types.
    """
    size = size or CHUNK
    for start in range(0, len(images), size):
        part = images[start:start + size]
        strict = False
        if part and isinstance(part[0], msgspec.Raw):
            buf = b"[" + b",".join(part) + b"]"
            try:
                part, strict = _STRICT_IMAGES.decode(buf), True
            except msgspec.ValidationError:
                try:
                    part = _IMAGES.decode(buf)
                except msgspec.ValidationError:
                    part = [_decode_one(r) for r in part]
            del buf
        yield start, part, strict


def _all_files(images: list) -> list:
    out = []
    for r in images:
        if isinstance(r, msgspec.Raw):
            try:
                fo = _FILE_ONLY.decode(r)
                out.append(fo.file if fo.file is not None else fo.file_name)
            except msgspec.ValidationError:
                out.append(None)
        else:
            out.append(getattr(r, "file", None) if r is not None else None)
    return out


def read_detections(path, strip_prefix: str = "", progress=None) -> Detections:
    """Read a MegaDetector, AddaxAI COCO or SpeciesNet results file into :class:`Detections`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"detections file {path} does not exist")
    cb = ensure(progress)
    cb(0, 3, "parsing JSON")
    top = load_results(path)
    cb(1, 3, "checking records")
    with _no_gc():
        if top.predictions is not None and top.images is None:
            result = _read_speciesnet(top, path, strip_prefix)
        elif top.annotations is not None and top.categories is not None:
            result = _read_coco(top, path, strip_prefix)
        elif top.images is not None and (top.detection_categories is not None or top.info is not None):
            result = _read_megadetector(top, path, strip_prefix, progress=cb)
        else:
            raise DataError(f"{path} is not a detector results file: expected MegaDetector output ('images' and "
                            f"'detection_categories'), an AddaxAI COCO export ('images', 'annotations', "
                            f"'categories') or SpeciesNet output ('predictions')")
        del top
    result.source = path
    cb(3, 3, result.summary())
    return result


# ------------------------------------------------------------------------------------ path rules
def _auto_prefix(files) -> str:
    """The common folder of all absolute paths (for strip_prefix='auto')."""
    absolute = [f.replace("\\", "/") for f in files if isinstance(f, str) and _is_absolute(f)]
    if not absolute:
        return ""
    common = os.path.commonprefix(absolute)
    return common[: common.rfind("/") + 1]


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or bool(PureWindowsPath(name).drive)


class _PathCleaner:
    """Turn a results-file path into the POSIX relative join key, or raise UnsafePathError."""

    def __init__(self, strip_prefix: str, all_files) -> None:
        prefix = strip_prefix or ""
        if prefix == "auto":
            prefix = _auto_prefix(all_files() if callable(all_files) else all_files)
        prefix = prefix.replace("\\", "/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.prefix = prefix

    def __call__(self, name: Any, where: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise UnsafePathError(f"{where}: field 'file' is missing or empty")
        text = name.replace("\\", "/")
        if self.prefix and (text.startswith(self.prefix) or text.lower().startswith(self.prefix.lower())):
            text = text[len(self.prefix):]
        if _is_absolute(text):
            folder = text[: text.rfind("/") + 1] or "/"
            raise UnsafePathError(f"image {name!r}: field 'file' is an absolute path; give strip_prefix "
                                  f"(e.g. {folder!r}, or 'auto' for the folder common to all paths) to make it "
                                  f"relative to the image folder")
        return str(safe_relative(text, what=f"image {name!r}: field 'file'"))


def _check_version(info: Any, path: Path) -> str:
    if not isinstance(info, dict):
        raise DataError(f"{path}: field 'info' is missing or not an object (MegaDetector files carry "
                        f"info.format_version)")
    raw = info.get("format_version")
    if raw is None:
        raise DataError(f"{path}: field 'info.format_version' is missing")
    text = str(raw).strip()
    try:
        text = f"{float(text):.1f}"
    except ValueError:
        pass
    if text not in KNOWN_VERSIONS:
        raise DataError(f"{path}: unknown MegaDetector format version {raw!r} in field 'info.format_version' "
                        f"(this reader understands {', '.join(KNOWN_VERSIONS)})")
    return text


def _category_map(raw: Any, field: str, path: Path, skipped: list, required: bool) -> dict:
    if raw is None and not required:
        return {}
    if not isinstance(raw, dict):
        raise DataError(f"{path}: field '{field}' is missing or not an object mapping keys to names")
    out = {}
    for key, name in raw.items():
        if not isinstance(name, str) or not name.strip():
            skipped.append((f"{field}[{key!r}]", f"field '{field}' has a blank or non-text name {name!r}; "
                                                 f"detections with this key are skipped"))
            continue
        out[str(key)] = normalise_name(name)
    return out


# ------------------------------------------------------------------------------ MegaDetector
def _read_megadetector(top: _Top, path: Path, strip_prefix: str, fmt: str = "megadetector",
                       progress=None) -> Detections:
    info = top.info
    version = _check_version(info, path)
    skipped: list = []
    dcats = _category_map(top.detection_categories, "detection_categories", path, skipped, True)
    ccats = _category_map(top.classification_categories, "classification_categories", path, skipped, False)
    images = top.images
    if not isinstance(images, list):
        raise DataError(f"{path}: field 'images' is missing or not a list")
    names = sorted(set(dcats.values()))
    code_of_name = {n: c for c, n in enumerate(names)}
    code_of_key = {k: code_of_name[v] for k, v in dcats.items()}

    clean = None
    files: list = []
    stored: list = []
    order: list = []          # position of each kept image in the file (for messages)
    fail_files: list = []
    fail_reasons: list = []
    parts: list = []
    cb = ensure(progress)
    for start, chunk, strict in _image_chunks(images):
        if strict:
            fs = list(map(_FILE, chunk))
        else:
            fs = [im.file if im is not None else None for im in chunk]
        keys = list(fs)
        drop: set = set()
        for k in _odd_paths(fs):
            if chunk[k] is None:
                skipped.append((f"images[{start + k}]", f"images[{start + k}] is not an object"))
                drop.add(k)
                continue
            if clean is None:
                clean = _PathCleaner(strip_prefix, lambda: _all_files(images))
            try:
                keys[k] = clean(fs[k], f"images[{start + k}]")
            except UnsafePathError as exc:
                f = fs[k]
                skipped.append((f if isinstance(f, str) else f"images[{start + k}]", str(exc)))
                drop.add(k)
        failures = list(map(_FAILURE, chunk)) if strict else [im.failure if im is not None else None
                                                                 for im in chunk]
        for k in _not_none(failures):
            if k in drop:
                continue
            fail_files.append(keys[k])
            fail_reasons.append(str(failures[k]))
            skipped.append((keys[k], f"image {keys[k]!r}: field 'failure' says the detector could not process it: "
                                     f"{failures[k]}"))
            drop.add(k)
        det_lists = list(map(_DETECTIONS, chunk)) if strict else [im.detections if im is not None else None
                                                                   for im in chunk]
        nonlist = _none_at(det_lists) if strict else [k for k, d in enumerate(det_lists) if type(d) is not list]
        for k in nonlist:
            if k in drop:
                continue
            dets = det_lists[k]
            what = "is missing" if dets is None else f"is a {type(dets).__name__}, not a list"
            skipped.append((keys[k], f"image {keys[k]!r}: field 'detections' {what} (and no 'failure')"))
            drop.add(k)
        del chunk
        if drop:
            kept = [k for k in range(len(keys)) if k not in drop]
            det_lists = [det_lists[k] for k in kept]
            chunk_files = [keys[k] for k in kept]
            chunk_stored = [fs[k] if type(fs[k]) is str else keys[k] for k in kept]
            order.append(np.asarray(kept, dtype=np.int64) + start)
        else:
            chunk_files, chunk_stored = keys, fs
            order.append(np.arange(start, start + len(keys), dtype=np.int64))
        part = _flatten(det_lists, chunk_files, code_of_key, ccats, dcats, skipped, strict)
        part["image"] += len(files)
        parts.append(part)
        files.extend(chunk_files)
        stored.extend(chunk_stored)
        cb(min(start + len(keys), len(images)), len(images), "checking records")
        del det_lists, fs, keys
    table = _detection_frame(parts, names)
    del parts
    order = np.concatenate(order) if order else np.zeros(0, dtype=np.int64)
    files, stored, table = _drop_duplicates(files, stored, order, table, skipped)
    image_df = _image_frame(files, stored, len(files), table)
    failures = pd.DataFrame({"file": pd.Series(fail_files, dtype=object),
                             "failure": pd.Series(fail_reasons, dtype=object)})
    return Detections(images=image_df, detections=table, failures=failures, skipped=skipped,
                      info=info if isinstance(info, dict) else {}, detection_categories=dict(dcats),
                      classification_categories=dict(ccats), format=fmt, format_version=version)


_FILE = attrgetter("file")
_FAILURE = attrgetter("failure")
_DETECTIONS = attrgetter("detections")
_CATEGORY = attrgetter("category")
_CONF = attrgetter("conf")
_BBOX = attrgetter("bbox")
_CLASSIFICATIONS = attrgetter("classifications")
_PREV = attrgetter("prev_category")
#: paths that need the careful check (absolute, backslashes, '..', drive letters, './', '//', trailing '/')
_ODD_PATH = re.compile(r"^[/\\]|\\|\.\.|:|//|\./|/$|^$", re.M)


def _odd_paths(fs: list) -> list:
    """Positions of paths that are not plainly relative POSIX paths (one regex over all of them)."""
    try:
        joined = "\n".join(fs)
    except TypeError:  # a missing or non-text path
        joined = None
    if joined is None or joined.count("\n") != len(fs) - 1:
        return [k for k, f in enumerate(fs) if not (type(f) is str and f and not _ODD_PATH.search(f))
                or "\n" in f]
    if not (joined[:1] in ("/", "\\", "") or joined[-1:] == "/" or "\\" in joined or ".." in joined
            or ":" in joined or "//" in joined or "./" in joined or "\n/" in joined or "/\n" in joined
            or "\n\n" in joined):
        return []  # substring tests run at memchr speed; the regex only runs when one trips
    starts = np.cumsum([0] + [len(f) + 1 for f in fs[:-1]])
    hits = {int(np.searchsorted(starts, m.start(), side="right") - 1) for m in _ODD_PATH.finditer(joined)}
    return sorted(hits)


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


def _not_none(values: list) -> np.ndarray:
    """Positions of entries that are not None (C-level pass)."""
    return np.flatnonzero(np.fromiter(map(is_not, values, repeat(None)), dtype=bool, count=len(values)))


def _none_at(values: list) -> np.ndarray:
    return np.flatnonzero(np.fromiter(map(is_, values, repeat(None)), dtype=bool, count=len(values)))


def _drop_duplicates(files: list, stored: list, order: list, table: pd.DataFrame, skipped: list):
    """Keep the first record of a file listed twice; its later records and their detections go."""
    dup = pd.Series(files, dtype=object).duplicated(keep="first").to_numpy()
    if not dup.any():
        return files, stored, table
    first_at: dict = {}
    for i, f in enumerate(files):
        if dup[i]:
            skipped.append((f, f"image {f!r}: duplicate 'file' (images[{order[i]}] repeats images[{first_at[f]}]); "
                               f"kept the first"))
        else:
            first_at.setdefault(f, order[i])
    keep = ~dup
    new_index = np.cumsum(keep) - 1
    img = table["image"].to_numpy()
    table = table[keep[img]].reset_index(drop=True)
    table["image"] = new_index[table["image"].to_numpy()]
    files = [f for f, k in zip(files, keep) if k]
    stored = [f for f, k in zip(stored, keep) if k]
    return files, stored, table


def _detection_frame(parts: list, names: list) -> pd.DataFrame:
    def cat(key, dtype=None):
        arrays = [p[key] for p in parts]
        return np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype or float)

    codes = cat("code", np.int64).astype(np.int64)
    return pd.DataFrame({
        "image": cat("image", np.int64).astype(np.int64),
        "category": pd.Categorical.from_codes(codes, categories=names) if names else pd.Categorical([]),
        "conf": cat("conf"),
        "x": cat("x"), "y": cat("y"), "w": cat("w"), "h": cat("h"),
        "classification": pd.Series(cat("classification", object), dtype=object),
        "classification_conf": cat("classification_conf"),
        "prev_category": pd.Series(cat("prev_category", object), dtype=object),
        "prev_conf": cat("prev_conf"),
    })


def _image_frame(files, stored, n, table, width=None, height=None, when=None) -> pd.DataFrame:
    img = table["image"].to_numpy()
    conf = table["conf"].to_numpy(dtype=float)
    n_det = np.bincount(img, minlength=n) if n else np.zeros(0, dtype=np.int64)
    max_conf = np.full(n, np.nan)
    if len(img):
        starts = np.flatnonzero(np.r_[True, img[1:] != img[:-1]])
        max_conf[img[starts]] = np.fmax.reduceat(conf, starts)
    unknown = pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
    return pd.DataFrame({
        "file": pd.Series(files, dtype=object),
        "stored_as": pd.Series(stored, dtype=object),
        "width": pd.array(width, dtype="Int64") if width is not None else unknown,
        "height": pd.array(height, dtype="Int64") if height is not None else unknown.copy(),
        "datetime": (pd.to_datetime(pd.Series(when, dtype=object), errors="coerce") if when is not None
                     else pd.Series(np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"))),
        "n_detections": n_det,
        "max_conf": max_conf,
    })


def _as_float_array(values: list) -> tuple[np.ndarray, np.ndarray]:
    """values -> float array, plus a mask of entries that were not numbers (bools, None, text)."""
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


def _flatten(det_lists: list, files: list, code_of_key: dict, ccats: dict, dcats: dict, skipped: list,
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
    with_prev = _not_none(prev_all)
    if len(with_prev):
        md = {**dcats, **MD_CATEGORIES}
        pcs = _pick(prev_all, with_prev)
        try:
            lookup = {pc: md.get(pc) or normalise_name(pc) for pc in set(pcs)}
            prev_name[with_prev] = list(map(lookup.__getitem__, pcs))
        except TypeError:  # an unhashable value
            prev_name[with_prev] = [normalise_name(pc) for pc in pcs]
        pv, pv_bad = _as_float_array(_pick(list(map(_PREV_CONF, flat)), with_prev))
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
            scores, s_bad = _as_float_array(list(map(_SECOND, tops)))
        except (TypeError, IndexError, KeyError):
            tops = [None] * len(lists)
            names_ = [None] * len(lists)
            scores, s_bad = np.full(len(lists), np.nan), np.ones(len(lists), dtype=bool)
        with np.errstate(invalid="ignore"):
            s_bad = s_bad | (scores < 0) | (scores > 1)
        for k, j in enumerate(with_cls):
            if names_[k] is not None and not s_bad[k]:
                cls_name[j] = names_[k]
                cls_conf[j] = scores[k]
                continue
            i = img[j]
            top = tops[k]
            what = (f"class {top[0]!r} is not a key of classification_categories" if top is not None and not s_bad[k]
                    else f"{lists[k]!r} is not a list of [class key, score in 0..1] pairs")
            skipped.append((files[i], f"image {files[i]!r}: detections[{j - starts[i]}].classifications {what}; "
                                      f"the detector class is used"))
    return {"image": img[good], "code": codes[good], "conf": conf[good], "x": x0[good], "y": y0[good],
            "w": w0[good], "h": h0[good], "classification": cls_name[good], "classification_conf": cls_conf[good],
            "prev_category": prev_name[good], "prev_conf": prev_conf[good]}


# ---------------------------------------------------------------------------------- AddaxAI COCO
def _read_coco(top: _Top, path: Path, strip_prefix: str) -> Detections:
    skipped: list = []
    cats_raw = top.categories
    if not isinstance(cats_raw, list):
        raise DataError(f"{path}: field 'categories' is not a list")
    cat_names: dict = {}
    for k, c in enumerate(cats_raw):
        if not isinstance(c, dict) or "id" not in c or not isinstance(c.get("name"), str) or not c["name"].strip():
            skipped.append((f"categories[{k}]", f"categories[{k}] needs an 'id' and a non-blank 'name'"))
            continue
        cat_names[c["id"]] = normalise_name(c["name"])
    label_dirs = set(cat_names.values()) | {EMPTY}
    images, annotations = top.images, top.annotations
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise DataError(f"{path}: fields 'images' and 'annotations' must be lists")
    images = [im for _, chunk, _ in _image_chunks(images) for im in chunk]
    clean = _PathCleaner(strip_prefix, [im.file_name if im is not None else None for im in images])
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
    image_df = _image_frame(files, stored, len(files), table, width, height, when)
    image_df["conf_bin"] = pd.Series(conf_bins, dtype=object)
    info = top.info if isinstance(top.info, dict) else {}
    return Detections(images=image_df, detections=table, skipped=skipped, info=info,
                      detection_categories={str(k): v for k, v in cat_names.items()}, format="addaxai-coco",
                      format_version="coco")


def _unsort(full: str, label_dirs: set) -> tuple[str, Optional[str]]:
    """Undo AddaxAI's sorted layout: ``coyote/conf_0.9-1.0/a/b.jpg`` -> (``a/b.jpg``, ``conf_0.9-1.0``)."""
    parts = full.split("/")
    if len(parts) < 2:
        return full, None
    first = normalise_name(parts[0])
    is_label = first in label_dirs or all(p in label_dirs for p in first.split("_"))
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


def _read_speciesnet(top: _Top, path: Path, strip_prefix: str) -> Detections:
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
        out = _Image(file=p.get("filepath"))
        if p.get("failures"):
            fails = p["failures"]
            out.failure = ", ".join(map(str, fails)) if isinstance(fails, list) else str(fails)
            images.append(out)
            continue
        dets = []
        raw_dets = p.get("detections")
        for d in raw_dets if isinstance(raw_dets, list) else []:
            det = _to_det(d)
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
                    dets = [_Det(category=key, conf=cls_score, bbox=[0.0, 0.0, 1.0, 1.0])]
                for det in dets:
                    det.classifications = [[cid, cls_score]]
        out.detections = dets
        images.append(out)
    for k, v in MD_CATEGORIES.items():
        dcats.setdefault(k, v)
    version = next((p.get("model_version") for p in preds if isinstance(p, dict) and p.get("model_version")), None)
    converted = _Top(info={"format_version": "1.4", "detector": "speciesnet", "model_version": version},
                     detection_categories=dcats, classification_categories=ccats, images=images)
    return _read_megadetector(converted, path, strip_prefix, fmt="speciesnet")


# ---------------------------------------------------------------------------------------- export
def write_megadetector(source, out_json, threshold: Optional[float] = None, files=None,
                       detector: Optional[str] = None, progress=None) -> Path:
    """Write MegaDetector batch output (format 1.4) that Timelapse and MegaDetector's tools open.

    ``source`` is a :class:`Detections` (re-exported, optionally only ``files`` and only
    detections at/above ``threshold``) or anything with ``.images`` and ``.annotations`` tables
    in the Dataset contract (a Dataset or a Subset): each annotation becomes a detection of its
    MegaDetector class (animal/person/vehicle) carrying the species as its classification,
    ``conf`` = its ``score`` (1.0 for a human label), the box normalised by the image size (the
    whole image when the label has no box or the size is unknown).  Empty images get
    ``"detections": []``; unlabelled images are left out.  Returns the path written.
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
    info = _info(str(det.info.get("detector", det.format)) if isinstance(det.info, dict) else det.format)
    doc = {"info": info, "detection_categories": {k: n for n, k in dkeys.items()}, "images": images}
    if ckeys:
        doc["classification_categories"] = {k: n for n, k in ckeys.items()}
    return doc


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
