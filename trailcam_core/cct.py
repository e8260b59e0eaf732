"""Parse COCO Camera Traps JSON into columnar tables, validating at the boundary.

Speed and memory matter here: the real Caltech Camera Traps file lists 243,100 images.  The
first msgspec pass decodes ``images`` into small typed structs (unknown fields are skipped without
being materialised) and keeps ``annotations`` as raw bytes, decoded only after the image structs
have become Arrow columns and been freed, so the Python objects of the two sections never coexist.
Checks (duplicate ids, annotations pointing at unknown images or categories, unsafe file names)
are vectorised, and so is reading "YYYY-MM-DD HH:MM:SS" capture times (numpy, straight from the
Arrow string buffer; other forms go to the general parser).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Union

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataError, UnsafePathError

EMPTY = "empty"
IMAGE_COLUMNS = ["image_id", "file_name", "width", "height", "location", "datetime", "seq_id", "frame_num",
                 "seq_num_frames", "label", "media"]
ANNOTATION_COLUMNS = ["annotation_id", "image_id", "category_id", "category", "bbox_x", "bbox_y", "bbox_w",
                      "bbox_h", "score"]
ANNOTATION_TABLE_COLUMNS = ANNOTATION_COLUMNS + ["image_row"]   # Arrow form: + row of the image
STANDARD_IMAGE_FIELDS = {"id", "file_name", "width", "height", "location", "datetime", "date_captured", "seq_id",
                         "seq_num_frames", "frame_num"}
Id = Union[int, str]


class _Image(msgspec.Struct, gc=False):
    id: Id
    file_name: str
    width: Union[int, float, None] = None
    height: Union[int, float, None] = None
    location: Union[int, str, None] = None
    dt: Optional[str] = msgspec.field(default=None, name="datetime")
    date_captured: Optional[str] = None
    seq_id: Union[int, str, None] = None
    seq_num_frames: Optional[int] = None
    frame_num: Optional[int] = None


class _Annotation(msgspec.Struct, gc=False):
    image_id: Id
    category_id: Id
    id: Union[int, str, None] = None
    bbox: Optional[list[float]] = None
    score: Optional[float] = None


class _Category(msgspec.Struct, gc=False):
    id: Id
    name: str


class _Sections(msgspec.Struct):          # fast path: images typed in the first (only) pass,
    images: list[_Image]                  # annotations kept raw and decoded after the images
    annotations: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"[]"))
    categories: list[_Category] = msgspec.field(default_factory=list)
    info: Optional[dict] = None


_ANNOTATIONS = msgspec.json.Decoder(list[_Annotation])
_INT_TO_INT64 = {pa.int64(): pd.Int64Dtype()}.get
_UNSAFE = r"^(?:[/\\]|[A-Za-z]:)|(?:^|[/\\])\.\.(?:[/\\]|$)"


# ------------------------------------------------------------------------------------- errors
def position(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {col} (byte {offset})"


def decode(data: bytes, path: Path, schema):
    """Decode with msgspec; turn its errors into DataErrors naming the file, position and record."""
    if not data.strip():
        raise DataError(f"{path}: file is empty, expected a COCO Camera Traps JSON object")
    try:
        return msgspec.json.decode(data, type=schema)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        m = re.search(r"at `\$(.*)`", msg)
        where = m.group(1).lstrip(".") if m else ""
        detail = msg.split(" - at ")[0].replace("Object missing required field", "missing required field")
        if not where:
            raise DataError(f"{path}: not a COCO Camera Traps file ({detail})") from None
        raise DataError(f"{path}: {_describe_record(data, where)}: {detail}") from None
    except msgspec.DecodeError as exc:
        msg = str(exc)
        m = re.search(r"byte (\d+)", msg)
        if m:
            pos = position(data, int(m.group(1)))
        elif "truncated" in msg:
            pos = position(data, len(data.rstrip())) + " (the file ends too early)"
        else:
            pos = "unknown position"
        raise DataError(f"{path}: malformed JSON at {pos}: {msg.split(' (byte')[0]}") from None


def _describe_record(data: bytes, where: str) -> str:
    """'images[12] (id 'abc')' for a msgspec path such as 'images[12].file_name'."""
    m = re.match(r"(\w+)\[(\d+)\]", where)
    if not m:
        return where or "top level"
    section, index = m.group(1), int(m.group(2))
    label = f"{section}[{index}]"
    try:
        rec = msgspec.json.decode(data)[section][index]
        if isinstance(rec, dict) and "id" in rec:
            label += f" (id {rec['id']!r})"
    except Exception:  # the record itself may be what is broken
        pass
    rest = where[m.end():].lstrip(".")
    return f"{label} field {rest!r}" if rest and not rest.startswith("[") else label


def _first_duplicate(arr: pa.Array, what: str, path: Path) -> None:
    if len(pc.unique(arr)) == len(arr):
        return
    counts = pc.value_counts(arr)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    more = f" (and {len(dup) - 1} more)" if len(dup) > 1 else ""
    raise DataError(f"{path}: duplicate {what} {dup[0]['values'].as_py()!r}{more}")


def int_id(value, what: str, path: Path) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise DataError(f"{path}: {what} {value!r} is not an integer id")


def categories_map(cats: list[_Category], path: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    for i, c in enumerate(cats):
        cid = int_id(c.id, f"categories[{i}] id", path)
        if cid in out:
            raise DataError(f"{path}: duplicate category id {cid} ({out[cid]!r} and {c.name!r})")
        out[cid] = c.name.strip()
    return out


# ------------------------------------------------------------------------------------ columns
def _strings(values: list) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):     # ints mixed in (ids, locations)
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _ints(values: list) -> pa.Array:
    try:
        return pa.array(values, pa.int64())
    except (pa.ArrowTypeError, pa.ArrowInvalid):     # 1920.0 written as a float
        return pa.array([None if v is None else int(round(v)) for v in values], pa.int64())


_DIGIT_AT = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])    # in 'YYYY-MM-DD HH:MM:SS'
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _fixed_width_times(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(datetime64[us] values, rows done) for the values that are exactly 'YYYY-MM-DD HH:MM:SS'
    and a real date and time, read with numpy straight from the string buffer; every other row
    (other forms, impossible dates, nulls) is left undone for the general parser."""
    n = len(arr)
    out = np.full(n, np.datetime64("NaT"), "datetime64[us]")
    done = np.zeros(n, dtype=bool)
    if n == 0 or arr.type != pa.string() or arr.buffers()[2] is None:
        return out, done
    offsets = np.frombuffer(arr.buffers()[1], np.int32, n + 1, arr.offset * 4)
    data = np.frombuffer(arr.buffers()[2], np.uint8)
    lengths = np.diff(offsets)
    rows = np.flatnonzero(lengths == 19)
    if arr.null_count:
        rows = rows[pc.is_valid(arr).to_numpy(zero_copy_only=False)[rows]]
    if len(rows) == n and offsets[-1] - offsets[0] == 19 * n:       # the usual case: no copy
        m = data[offsets[0]:offsets[-1]].reshape(n, 19)
    else:
        m = data[offsets[rows][:, None] + np.arange(19, dtype=np.int32)]
    d = m[:, _DIGIT_AT]
    d -= 48                                       # uint8: anything below '0' wraps past 9
    ok = ((m[:, 4] == 45) & (m[:, 7] == 45) & (m[:, 10] == 32) & (m[:, 13] == 58) & (m[:, 16] == 58)
          & (d <= 9).all(axis=1))
    del m

    def num(a: int, b: int) -> np.ndarray:        # the decimal number in digits a..b-1
        out = np.zeros(len(d), np.int64)
        for k in range(a, b):
            out *= 10
            out += d[:, k]
        return out
    year, month, day, hour, minute, second = num(0, 4), num(4, 6), num(6, 8), num(8, 10), num(10, 12), num(12, 14)
    del d
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last_day = _MONTH_DAYS[np.clip(month - 1, 0, 11)] + (leap & (month == 2))
    ok &= ((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= last_day)
           & (hour < 24) & (minute < 60) & (second < 60))
    days = ((year - 1970) * 12 + month - 1).astype("datetime64[M]").astype("datetime64[D]") \
        + (day - 1).astype("timedelta64[D]")
    value = days.astype("datetime64[us]") + ((hour * 3600 + minute * 60 + second) * 1_000_000).astype("timedelta64[us]")
    out[rows[ok]] = value[ok]
    done[rows[ok]] = True
    return out, done


def parse_datetimes(arr: pa.Array, path: Path, warnings: list[str]) -> pa.Array:
    """'YYYY-MM-DD HH:MM:SS' (vectorised) or any ISO form; values that do not parse become null
    (and are counted in ``warnings``)."""
    fast, done = _fixed_width_times(arr)
    if done.all():
        return pa.array(fast, pa.timestamp("us"))
    rest = np.flatnonzero(~done)
    if len(rest) == len(arr):
        return _parse_datetimes(arr, path, warnings)
    slow = _parse_datetimes(arr.take(pa.array(rest)), path, warnings)
    fast[rest] = slow.to_numpy(zero_copy_only=False).astype("datetime64[us]")
    return pa.array(fast, pa.timestamp("us"), mask=np.isnat(fast))


def _parse_datetimes(arr: pa.Array, path: Path, warnings: list[str]) -> pa.Array:
    """The general parser: strptime in Arrow, then pandas for other ISO forms."""
    out = pc.strptime(arr, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
    retry = pc.and_(pc.is_null(out), pc.is_valid(arr))
    n_retry = pc.sum(retry).as_py() or 0
    if not n_retry:
        return out
    fixed = out.to_numpy(zero_copy_only=False).astype("datetime64[us]")
    valid = ~np.isnat(fixed)
    bad, first = 0, None
    for i in np.flatnonzero(retry.to_numpy(zero_copy_only=False)):
        text = arr[int(i)].as_py()
        try:
            t = pd.Timestamp(text)
            if t is pd.NaT:                      # "" or "NaT": unknown on purpose, not a parse error
                continue
            fixed[i] = np.datetime64((t.tz_convert(None) if t.tzinfo is not None else t).to_datetime64(), "us")
            valid[i] = True
        except (ValueError, TypeError, OverflowError):
            bad += 1
            first = first if first is not None else text
    if bad:
        warnings.append(f"{path}: {bad} capture time(s) do not parse (e.g. {first!r}); left unknown")
    return pa.array(fixed, pa.timestamp("us"), mask=~valid)


def image_table(ims: list[_Image], path: Path) -> pa.Table:
    """The image columns, checked; ``datetime`` is left as text (see parse_datetimes)."""
    ids = _strings([o.id for o in ims])        # uniqueness is checked with the annotations (image_rows)
    names = _strings([o.file_name for o in ims])
    text = names.buffers()[2].to_pybytes() if len(names) else b""
    if b"\\" in text:
        names = pc.replace_substring(names, "\\", "/")
    unsafe = None
    offsets = np.frombuffer(names.buffers()[1], dtype=np.int32, count=len(names) + 1, offset=names.offset * 4) \
        if len(names) else np.zeros(1, np.int32)
    first = np.frombuffer(text, dtype=np.uint8)[offsets[:-1][np.diff(offsets) > 0]] if len(text) else np.array([])
    # cheap screen on the raw bytes; the exact test runs only when something looks suspicious
    if b".." in text or b":" in text or (np.diff(offsets) == 0).any() or (first == ord("/")).any():
        unsafe = pc.or_(pc.match_substring_regex(names, _UNSAFE), pc.equal(pc.utf8_trim_whitespace(names), ""))
    if unsafe is not None and pc.any(unsafe).as_py():
        k = int(np.flatnonzero(unsafe.to_numpy(zero_copy_only=False))[0])
        raise UnsafePathError(f"{path}: images[{k}] (id {ids[k].as_py()!r}) has file_name {ims[k].file_name!r}, "
                              "which is empty, absolute or contains '..'; refusing to read outside the image root")
    location = _strings([o.location for o in ims])
    if location.null_count:
        location = pc.fill_null(location, "unknown")
    location = location.dictionary_encode()          # few distinct values: filters work on the codes
    times = [o.dt for o in ims]                      # "datetime", else "date_captured" (published files)
    missing = times.count(None)
    if missing == len(ims):
        times = [o.date_captured for o in ims]
    elif missing:
        times = [o.date_captured if t is None else t for t, o in zip(times, ims)]
    times = _strings(times)
    seq = _strings([o.seq_id for o in ims])
    if seq.null_count:
        seq = pc.coalesce(seq, ids)
    return pa.table({
        "image_id": ids, "file_name": names,
        "width": _ints([o.width for o in ims]), "height": _ints([o.height for o in ims]),
        "location": location, "datetime": times, "seq_id": seq,
        "frame_num": _ints([o.frame_num for o in ims]), "seq_num_frames": _ints([o.seq_num_frames for o in ims]),
    })


def image_rows(image_ids: pa.Array, ann_image_ids: pa.Array, path: Path) -> np.ndarray:
    """Row of each annotation's image in ``image_ids`` (-1 when unknown), checking that image ids
    are unique, in one hash pass over both columns."""
    n = len(image_ids)
    both = pa.concat_arrays([image_ids.cast(pa.string()), ann_image_ids.cast(pa.string())])
    codes = both.dictionary_encode().indices.to_numpy(zero_copy_only=False)
    mine = codes[:n]
    if n and not np.array_equal(mine, np.arange(n)):   # codes follow first appearance: a repeat breaks the run
        k = int(np.flatnonzero(mine != np.arange(n))[0])
        _first_duplicate(image_ids, "image id", path)
        raise DataError(f"{path}: duplicate image id {image_ids[k].as_py()!r}")
    pos = codes[n:].astype(np.int64)
    pos[pos >= n] = -1
    return pos


def annotation_table(anns: list[_Annotation], categories: dict[int, str], image_ids: pa.Array, path: Path,
                     drop_unknown_images: bool = False) -> tuple[pa.Table, int]:
    """Annotations as columns plus the number dropped (unknown images, only when allowed)."""
    id_list = [o.id for o in anns]
    present = [x for x in id_list if x is not None] if None in id_list else id_list
    if len(set(present)) != len(present):
        _first_duplicate(_strings(present), "annotation id", path)
    ann_ids = _strings(id_list)
    img = _strings([o.image_id for o in anns])
    try:
        cat = pa.array([o.category_id for o in anns], pa.int64())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        cat = pa.array([int_id(a.category_id, f"annotations[{k}] category_id", path) for k, a in enumerate(anns)],
                       pa.int64())
    img_pos = image_rows(image_ids, img, path)   # row of each annotation's image (-1: unknown)
    known = img_pos >= 0
    keep = None
    n_unknown = int((~known).sum())
    if n_unknown:
        k = int(np.flatnonzero(~known)[0])
        if not drop_unknown_images:
            raise DataError(f"{path}: annotations[{k}] (id {ann_ids[k].as_py()!r}) points at image "
                            f"{img[k].as_py()!r}, which is not in images ({n_unknown} such annotation(s))")
        keep = pa.array(known)
    cat_ids = np.array(sorted(categories), dtype=np.int64)
    pos = pc.index_in(cat, value_set=pa.array(cat_ids))
    if pc.any(pc.is_null(pos)).as_py():
        bad = np.flatnonzero(pc.is_null(pos).to_numpy(zero_copy_only=False))
        k = int(bad[0])
        raise DataError(f"{path}: annotations[{k}] (id {ann_ids[k].as_py()!r}) has category_id {cat[k].as_py()}, "
                        f"which is not in categories ({len(bad)} such annotation(s))")
    names = pa.array([categories[int(c)] for c in cat_ids], pa.string())
    bbox = np.full((len(anns), 4), np.nan)
    score = np.full(len(anns), np.nan)
    boxes = [o.bbox for o in anns]
    if boxes.count(None) != len(boxes):              # image-level files have none: skip the loop
        for k, box in enumerate(boxes):
            if box:
                if len(box) != 4:
                    raise DataError(f"{path}: annotations[{k}] (id {ann_ids[k].as_py()!r}) has bbox {box!r}; "
                                    "expected [x, y, width, height]")
                bbox[k] = box
    scores = [o.score for o in anns]
    if scores.count(None) != len(scores):
        score = np.array([np.nan if x is None else x for x in scores], dtype=float)
    table = pa.table({"annotation_id": ann_ids, "image_id": img, "category_id": cat,
                      "category": pa.DictionaryArray.from_arrays(pos.cast(pa.int32()), names), "bbox_x": bbox[:, 0], "bbox_y": bbox[:, 1],
                      "bbox_w": bbox[:, 2], "bbox_h": bbox[:, 3], "score": score, "image_row": img_pos.astype(np.int32)})
    if keep is not None:
        table = table.filter(keep)
    return table, n_unknown if keep is not None else 0


def primary_labels(image_ids: pa.Array, ann: pa.Table) -> pa.Array:
    """Each image's label: its first non-empty category, else "empty" if it has an empty
    annotation, else null (unlabelled)."""
    n = len(image_ids)
    if ann.num_rows == 0:
        return pa.nulls(n, pa.string())
    pos = ann["image_row"].to_numpy() if "image_row" in ann.column_names else \
        pc.fill_null(pc.index_in(ann["image_id"], value_set=image_ids), -1).to_numpy()
    pos = np.asarray(pos, dtype=np.int64)
    # work on category ids, not strings: names are looked up once at the end
    cat = ann["category_id"].to_numpy()
    ids, first = np.unique(cat, return_index=True)
    names = pc.take(ann["category"], pa.array(first)).cast(pa.string()).to_pylist()
    code = np.searchsorted(ids, cat)
    empty_codes = [k for k, nm in enumerate(names) if nm is not None and nm.strip().lower() == EMPTY]
    is_empty = np.isin(code, empty_codes)
    label = np.full(n, -1, dtype=np.int64)
    valid = pos >= 0
    label[pos[is_empty & valid]] = empty_codes[0] if empty_codes else -1
    animal = np.flatnonzero(~is_empty & valid)
    if len(animal):
        first_pos, first_idx = np.unique(pos[animal], return_index=True)
        label[first_pos] = code[animal[first_idx]]
    dictionary = pa.array([EMPTY if k in empty_codes else nm for k, nm in enumerate(names)], pa.string())
    indices = pa.array(label, mask=label < 0).cast(pa.int32())
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas with the project's dtypes: str, nullable Int64, datetime64, float.

    Dictionary-encoded columns (location, label, category, media) become plain strings and the
    internal ``image_row`` column is dropped.
    """
    if "image_row" in table.column_names:
        table = table.drop_columns(["image_row"])
    for k, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(k, f.name, table.column(k).cast(pa.string()))
    return table.to_pandas(types_mapper=_INT_TO_INT64)


def isin(column, values) -> np.ndarray:
    """Boolean numpy mask: which rows of a string or dictionary column are in ``values``.
    Dictionary columns are tested on their few distinct values, then mapped through the codes."""
    if isinstance(column, pd.Series):
        column = pa.array(column)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pd.Series):
        values = pa.array(values)
    if not isinstance(values, pa.Array):
        values = pa.array([str(v) for v in values], pa.string())
    if pa.types.is_dictionary(values.type):
        values = values.cast(pa.string())
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out = []
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            ok = pc.fill_null(pc.is_in(chunk.dictionary, value_set=values), False).to_numpy(zero_copy_only=False)
            codes = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
            out.append(np.append(ok, False)[codes])          # code -1 (null) -> the appended False
        else:
            out.append(pc.fill_null(pc.is_in(chunk, value_set=values), False).to_numpy(zero_copy_only=False))
    return np.concatenate(out).astype(bool) if out else np.zeros(0, dtype=bool)


def distinct(column) -> list:
    """Distinct non-null values of a string or dictionary column."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    seen: dict = {}
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            used = np.unique(pc.drop_null(chunk.indices).to_numpy(zero_copy_only=False))
            for v in chunk.dictionary.take(pa.array(used, pa.int64())).to_pylist():
                seen.setdefault(v, None)
        else:
            for v in pc.unique(pc.drop_null(chunk)).to_pylist():
                seen.setdefault(v, None)
    return list(seen)


def parse(holder: list, path: Path):
    """Parse CCT bytes (``holder = [data]``; emptied so the buffer can be freed early).

    Returns (images table, annotations table, categories, info, warnings).  The cyclic garbage
    collector is paused meanwhile: the decoded structs hold no cycles, and scanning millions of
    new objects again and again would cost more than the parse.
    """
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse(holder, path)
    finally:
        if enabled:
            gc.enable()


def _parse(holder: list, path: Path):
    data = holder.pop()
    warnings: list[str] = []
    top = decode(data, path, _Sections)          # one pass: images typed, annotations skipped
    categories = categories_map(top.categories, path)
    ann_raw = bytes(top.annotations)             # a copy, so the whole file can be freed now
    ims, info = top.images, top.info or {}
    del top, data
    images = image_table(ims, path)              # capture times still text: parsed after the free
    del ims
    k = images.schema.get_field_index("datetime")
    images = images.set_column(k, "datetime", parse_datetimes(images.column(k).combine_chunks(), path, warnings))
    try:
        anns = _ANNOTATIONS.decode(ann_raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        m = re.search(r"at `\$\[(\d+)\]", str(exc))
        where = f"annotations[{m.group(1)}]" if m else "annotations"
        raise DataError(f"{path}: {where}: {str(exc).split(' - at ')[0]}".replace(
            "Object missing required field", "missing required field")) from None
    del ann_raw
    ann, _ = annotation_table(anns, categories, images["image_id"].combine_chunks(), path)
    del anns
    return images, ann, categories, info, warnings


def parse_bboxes(data: bytes, path: Path, categories: dict[int, str], image_ids: pa.Array):
    """Parse a separate bbox file; returns (boxed annotations, categories merged, n dropped)."""
    top = decode(data, path, _BBoxSections)
    extra = categories_map(top.categories, path)
    merged = dict(categories)
    for cid, name in extra.items():
        if cid in merged and merged[cid].lower() != name.lower():
            raise DataError(f"{path}: category id {cid} is {name!r} here but {merged[cid]!r} in the image file")
        merged.setdefault(cid, name)
    try:
        anns = _ANNOTATIONS.decode(top.annotations)
    except (msgspec.ValidationError, msgspec.DecodeError):
        decode(data, path, _BBoxFull)
        raise
    table, dropped = annotation_table(anns, merged, image_ids, path, drop_unknown_images=True)
    return table.filter(pc.invert(pc.is_nan(table["bbox_x"]))), merged, dropped


class _BBoxSections(msgspec.Struct):
    annotations: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"[]"))
    categories: list[_Category] = msgspec.field(default_factory=list)


class _BBoxFull(msgspec.Struct):
    annotations: list[_Annotation] = msgspec.field(default_factory=list)
    categories: list[_Category] = msgspec.field(default_factory=list)
