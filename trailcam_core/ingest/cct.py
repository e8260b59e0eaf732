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

from trailcam_core.ingest.cct_times import parse_datetimes
from trailcam_core.base import DataError, UnsafePathError

EMPTY = "empty"
IMAGE_COLUMNS = ["image_id", "file_name", "width", "height", "location", "datetime", "seq_id", "frame_num",
                 "seq_num_frames", "label", "media"]
ANNOTATION_COLUMNS = ["annotation_id", "image_id", "category_id", "category", "bbox_x", "bbox_y", "bbox_w",
                      "bbox_h", "score"]
ANNOTATION_TABLE_COLUMNS = ANNOTATION_COLUMNS + ["image_row"]   # Arrow form: + row of the image
STANDARD_IMAGE_FIELDS = {"id", "file_name", "width", "height", "location", "datetime", "date_captured", "seq_id",
                         "seq_num_frames", "frame_num"}
Id = Union[int, str]


class CctImage(msgspec.Struct, gc=False):
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


class CctAnnotation(msgspec.Struct, gc=False):
    image_id: Id
    category_id: Id
    id: Union[int, str, None] = None
    bbox: Optional[list[float]] = None
    score: Optional[float] = None


class CctCategory(msgspec.Struct, gc=False):
    id: Id
    name: str


class _Sections(msgspec.Struct):          # fast path: images typed in the first (only) pass,
    images: list[CctImage]                  # annotations kept raw and decoded after the images
    annotations: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"[]"))
    categories: list[CctCategory] = msgspec.field(default_factory=list)
    info: Optional[dict] = None


_ANNOTATIONS = msgspec.json.Decoder(list[CctAnnotation])
_INT_TO_INT64 = {pa.int64(): pd.Int64Dtype()}.get
_UNSAFE = r"^(?:[/\\]|[A-Za-z]:)|(?:^|[/\\])\.\.(?:[/\\]|$)"


# ------------------------------------------------------------------------------------- errors
def position(data: bytes, offset: int) -> str:
    if not isinstance(data, (bytes, bytearray)):      # a memory map
        data = bytes(data)
    line = data.count(b"\n", 0, offset) + 1
    col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {col} (byte {offset})"


def decode(data: bytes, path: Path, schema):
    """Decode with msgspec; turn its errors into DataErrors naming the file, position and record."""
    if not len(data) or (bytes(data[:4096]).isspace() and bytes(data).isspace()):
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
        data = data if isinstance(data, (bytes, bytearray)) else bytes(data)
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


def categories_map(cats: list[CctCategory], path: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    for i, c in enumerate(cats):
        cid = int_id(c.id, f"categories[{i}] id", path)
        if cid in out:
            raise DataError(f"{path}: duplicate category id {cid} ({out[cid]!r} and {c.name!r})")
        out[cid] = c.name.strip()
    return out


# ------------------------------------------------------------------------------------ columns
def _string_values(values: list) -> tuple[pa.Array, list]:
    """The values as an Arrow string column, and the Python values it was built from (ints mixed
    in, as ids and locations may be, are turned into their strings first)."""
    try:
        return pa.array(values, pa.string()), values
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        values = [None if v is None else str(v) for v in values]
        return pa.array(values, pa.string()), values


def _strings(values: list) -> pa.Array:
    return _string_values(values)[0]


def _strings_hashed(values: list) -> tuple[pa.Array, pa.Array]:
    """:func:`_strings` plus each value's 64-bit hash (Python's string hash, of the string form;
    the same in this process and in workers forked from it), for the id checks."""
    arr, values = _string_values(values)
    return arr, pa.array(np.fromiter(map(hash, values), np.int64, len(values)))


def _ints(values: list) -> pa.Array:
    try:
        return pa.array(values, pa.int64())
    except (pa.ArrowTypeError, pa.ArrowInvalid):     # 1920.0 written as a float
        return pa.array([None if v is None else int(round(v)) for v in values], pa.int64())


def image_columns(ims: list[CctImage]) -> pa.Table:
    """The decoded image structs as plain columns, unchecked (``datetime`` still text, ``location``
    and ``seq_id`` with their nulls, ``id_hash`` for :func:`image_rows`).  Slices of one file may be turned into columns separately
    (in parallel) and concatenated before :func:`finish_images`."""
    times = [o.dt for o in ims]                      # "datetime", else "date_captured" (published files)
    missing = times.count(None)
    if missing == len(ims):
        times = [o.date_captured for o in ims]
    elif missing:
        times = [o.date_captured if t is None else t for t, o in zip(times, ims)]
    ids, id_hash = _strings_hashed([o.id for o in ims])
    return pa.table({
        "image_id": ids, "id_hash": id_hash, "file_name": _strings([o.file_name for o in ims]),
        "width": _ints([o.width for o in ims]), "height": _ints([o.height for o in ims]),
        "location": _strings([o.location for o in ims]), "datetime": _strings(times),
        "seq_id": _strings([o.seq_id for o in ims]),
        "frame_num": _ints([o.frame_num for o in ims]), "seq_num_frames": _ints([o.seq_num_frames for o in ims]),
    })


def finish_images(cols: pa.Table, path: Path) -> pa.Table:
    """Check and complete :func:`image_columns`' output: refuse unsafe file names, Windows
    separators to '/', unknown locations as "unknown" (dictionary-encoded), missing sequence ids
    as the image id.  Image id uniqueness is checked with the annotations (:func:`image_rows`)."""
    ids = cols["image_id"].combine_chunks()
    names = cols["file_name"].combine_chunks()
    text = names.buffers()[2].to_pybytes() if len(names) and names.buffers()[2] is not None else b""
    raw_names = names
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
        raise UnsafePathError(f"{path}: images[{k}] (id {ids[k].as_py()!r}) has file_name {raw_names[k].as_py()!r}, "
                              "which is empty, absolute or contains '..'; refusing to read outside the image root")
    location = cols["location"].combine_chunks()
    if location.null_count:
        location = pc.fill_null(location, "unknown")
    location = location.dictionary_encode()          # few distinct values: filters work on the codes
    seq = cols["seq_id"].combine_chunks()
    if seq.null_count:
        seq = pc.coalesce(seq, ids)
    return pa.table({
        "image_id": ids, "file_name": names, "width": cols["width"], "height": cols["height"],
        "location": location, "datetime": cols["datetime"], "seq_id": seq,
        "frame_num": cols["frame_num"], "seq_num_frames": cols["seq_num_frames"],
    })


def image_rows(image_ids: pa.Array, ann_image_ids: pa.Array, path: Path,
               hashes: Optional[tuple[np.ndarray, np.ndarray]] = None) -> np.ndarray:
    """Row of each annotation's image in ``image_ids`` (-1 when unknown), checking that image ids
    are unique.  With ``hashes`` (the ids' 64-bit hashes, from the column builders) the work is
    done on integers and every match is then confirmed on the strings; a hash collision (or a
    duplicate) sends it to the exact pass: one hash pass over both string columns."""
    if hashes is not None:
        pos = _image_rows_hashed(image_ids, ann_image_ids, *hashes)
        if pos is not None:
            return pos
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


def _image_rows_hashed(image_ids: pa.Array, ann_image_ids: pa.Array, image_hash: np.ndarray,
                       ann_hash: np.ndarray) -> Optional[np.ndarray]:
    index = pd.Index(image_hash)
    if not index.is_unique:                 # a duplicate id (or a collision): the exact pass says which
        return None
    pos = index.get_indexer(ann_hash).astype(np.int64)     # equal strings have equal hashes: -1 is exact
    if len(pos) and pos.min() >= 0:         # the usual case: every annotation's image is there
        same = pc.equal(image_ids.take(pa.array(pos)), ann_image_ids)
    else:
        found = np.flatnonzero(pos >= 0)
        same = pc.equal(image_ids.take(pa.array(pos[found])), ann_image_ids.take(pa.array(found)))
    if len(same) and not pc.all(same).as_py():      # a collision matched two different ids
        return None
    return pos


def _unique_ids(ids: pa.Array, hashes: Optional[np.ndarray]) -> bool:
    """True when the non-null ``ids`` are distinct (integer hashes first, strings if they clash)."""
    if hashes is not None:
        valid = hashes if not ids.null_count else hashes[ids.is_valid().to_numpy(zero_copy_only=False)]
        if pd.Index(valid).is_unique:
            return True
    present = ids.drop_null() if ids.null_count else ids
    return len(pc.unique(present)) == len(present)


def annotation_columns(anns: list[CctAnnotation], path: Path, base: int = 0) -> pa.Table:
    """The decoded annotation structs as plain columns (``base``: index of the first one in the
    file, for messages).  Raises DataError for a bbox that is not [x, y, w, h] or a category id
    that is not an integer."""
    ann_ids, ann_hash = _strings_hashed([o.id for o in anns])
    img, img_hash = _strings_hashed([o.image_id for o in anns])
    try:
        cat = pa.array([o.category_id for o in anns], pa.int64())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        cat = pa.array([int_id(a.category_id, f"annotations[{base + k}] category_id", path)
                        for k, a in enumerate(anns)], pa.int64())
    bbox = np.full((len(anns), 4), np.nan)
    score = np.full(len(anns), np.nan)
    boxes = [o.bbox for o in anns]
    if boxes.count(None) != len(boxes):              # image-level files have none: skip the loop
        for k, box in enumerate(boxes):
            if box:
                if len(box) != 4:
                    raise DataError(f"{path}: annotations[{base + k}] (id {ann_ids[k].as_py()!r}) has bbox "
                                    f"{box!r}; expected [x, y, width, height]")
                bbox[k] = box
    scores = [o.score for o in anns]
    if scores.count(None) != len(scores):
        score = np.array([np.nan if x is None else x for x in scores], dtype=float)
    return pa.table({"annotation_id": ann_ids, "annotation_id_hash": ann_hash, "image_id": img,
                     "image_id_hash": img_hash, "category_id": cat, "bbox_x": bbox[:, 0],
                     "bbox_y": bbox[:, 1], "bbox_w": bbox[:, 2], "bbox_h": bbox[:, 3], "score": score})


def finish_annotations(cols: pa.Table, categories: dict[int, str], image_ids: pa.Array, path: Path,
                       drop_unknown_images: bool = False,
                       image_hash: Optional[np.ndarray] = None) -> tuple[pa.Table, int]:
    """Check :func:`annotation_columns`' output against the images (``image_hash``: their
    ``id_hash`` column, when built in this process or a fork of it) and categories; returns the
    annotation table and the number dropped (unknown images, only when allowed)."""
    ann_ids = cols["annotation_id"].combine_chunks()
    img = cols["image_id"].combine_chunks()
    cat = cols["category_id"].combine_chunks()
    hashed = image_hash is not None and "image_id_hash" in cols.column_names
    if not _unique_ids(ann_ids, cols["annotation_id_hash"].to_numpy() if hashed else None):
        _first_duplicate(ann_ids.drop_null(), "annotation id", path)
    hashes = (image_hash, cols["image_id_hash"].to_numpy()) if hashed else None
    img_pos = image_rows(image_ids, img, path, hashes)   # row of each annotation's image (-1: unknown)
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
    table = pa.table({"annotation_id": ann_ids, "image_id": img, "category_id": cat,
                      "category": pa.DictionaryArray.from_arrays(pos.cast(pa.int32()), names),
                      "bbox_x": cols["bbox_x"], "bbox_y": cols["bbox_y"], "bbox_w": cols["bbox_w"],
                      "bbox_h": cols["bbox_h"], "score": cols["score"], "image_row": img_pos.astype(np.int32)})
    if keep is not None:
        table = table.filter(keep)
    return table, n_unknown if keep is not None else 0


def annotation_table(anns: list[CctAnnotation], categories: dict[int, str], image_ids: pa.Array, path: Path,
                     drop_unknown_images: bool = False) -> tuple[pa.Table, int]:
    """Annotations as columns plus the number dropped (unknown images, only when allowed)."""
    return finish_annotations(annotation_columns(anns, path), categories, image_ids, path, drop_unknown_images)


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


def parse_serial(holder: list, path: Path):
    """Parse CCT bytes in this process (``holder = [data]``; emptied so the buffer can be freed early).

    Returns (images table, annotations table, categories, info, warnings); a bad record raises a
    :class:`DataError` that names it.  :func:`trailcam_core.ingest.cct_parallel.parse` is the entry
    point that uses several processes for large files and falls back to this one.
    """
    data = holder.pop()
    warnings: list[str] = []
    top = decode(data, path, _Sections)          # one pass: images typed, annotations skipped
    categories = categories_map(top.categories, path)
    ann_raw = bytes(top.annotations)             # a copy, so the whole file can be freed now
    ims, info = top.images, top.info or {}
    del top, data
    image_cols = image_columns(ims)
    del ims
    image_hash = image_cols["id_hash"].to_numpy()
    images = finish_images(image_cols, path)     # capture times still text: parsed after the free
    del image_cols
    k = images.schema.get_field_index("datetime")
    images = images.set_column(k, "datetime", parse_datetimes(images.column(k).combine_chunks(), path, warnings))
    try:
        anns = _ANNOTATIONS.decode(ann_raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        m = re.search(r"at `\$(\[\d+\][^`]*)`", str(exc))
        # name the record and its field (annotations[9] (id 'n9') field 'bbox[0]'), as decode() does
        where = _describe_record(b'{"annotations":' + ann_raw + b"}", "annotations" + m.group(1)) if m else "annotations"
        raise DataError(f"{path}: {where}: {str(exc).split(' - at ')[0]}".replace(
            "Object missing required field", "missing required field")) from None
    del ann_raw
    ann_cols = annotation_columns(anns, path)
    del anns
    ann, _ = finish_annotations(ann_cols, categories, images["image_id"].combine_chunks(), path,
                                image_hash=image_hash)
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
    categories: list[CctCategory] = msgspec.field(default_factory=list)


class _BBoxFull(msgspec.Struct):
    annotations: list[CctAnnotation] = msgspec.field(default_factory=list)
    categories: list[CctCategory] = msgspec.field(default_factory=list)
