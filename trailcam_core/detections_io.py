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

This module holds the entry point, the decoding and the MegaDetector reader; the column work
is in ``detections_flatten``, the COCO and SpeciesNet readers in ``detections_formats``, and
the writer (MegaDetector format 1.4, from a :class:`Detections`, a Dataset or a Subset, for
Timelapse and MegaDetector's postprocessing) in ``detections_export``.
"""
from __future__ import annotations

import gc
import os
import re
from contextlib import contextmanager
from operator import attrgetter
from pathlib import Path, PureWindowsPath
from typing import Any, Optional

import msgspec
import numpy as np
import pandas as pd

from .detections import Detections, normalise_name
from .detections_flatten import NOT_OBJECT, flatten, none_at, not_none
from .errors import DataError, UnsafePathError
from .paths import safe_relative
from .progress import ensure

#: format versions of MegaDetector's batch output this reader understands
KNOWN_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6")
# ------------------------------------------------------------------------------------ decoding
# The file is decoded once by msgspec straight into small structs (no dict per record, not
# tracked by the garbage collector); unknown fields are skipped without being materialised.
# Values stay loosely typed (Any) so that one bad record does not fail the whole decode: the
# checks happen afterwards, vectorised, and name the image and the field.
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
            from .detections_formats import read_speciesnet
            result = read_speciesnet(top, path, strip_prefix)
        elif top.annotations is not None and (top.categories is not None or top.detection_categories is None):
            from .detections_formats import read_coco
            result = read_coco(top, path, strip_prefix)
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
        for k in not_none(failures):
            if k in drop:
                continue
            fail_files.append(keys[k])
            fail_reasons.append(str(failures[k]))
            skipped.append((keys[k], f"image {keys[k]!r}: field 'failure' says the detector could not process it: "
                                     f"{failures[k]}"))
            drop.add(k)
        det_lists = list(map(_DETECTIONS, chunk)) if strict else [im.detections if im is not None else None
                                                                   for im in chunk]
        nonlist = none_at(det_lists) if strict else [k for k, d in enumerate(det_lists) if type(d) is not list]
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
        part = flatten(det_lists, chunk_files, code_of_key, ccats, dcats, skipped, strict)
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
    if not (joined[:1] in ("/", "\\", "", "\n") or joined[-1:] in ("/", "\n") or "\\" in joined or ".." in joined
            or ":" in joined or "//" in joined or "./" in joined or "\n/" in joined or "/\n" in joined
            or "\n\n" in joined):
        return []  # substring tests run at memchr speed; the regex only runs when one trips
    starts = np.cumsum([0] + [len(f) + 1 for f in fs[:-1]])
    hits = {int(np.searchsorted(starts, m.start(), side="right") - 1) for m in _ODD_PATH.finditer(joined)}
    return sorted(hits)


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


from .detections_export import write_megadetector  # noqa: E402,F401  (re-exported)
