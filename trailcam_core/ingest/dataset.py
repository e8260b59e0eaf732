"""Load camera-trap metadata into columnar tables: COCO Camera Traps JSON or a plain folder.

COCO Camera Traps ("CCT", as LILA publishes Caltech Camera Traps) is one JSON object::

    {"info": {...},
     "images": [{"id": "5968c0f9-...", "file_name": "5968c0f9-....jpg", "width": 2048, "height": 1494,
                 "location": "38", "date_captured": "2012-03-17 03:48:44", "seq_id": "6f0b...",
                 "seq_num_frames": 3, "frame_num": 1, "rights_holder": "..."}, ...],
     "annotations": [{"id": "...", "image_id": "5968c0f9-...", "category_id": 30,
                      "bbox": [x, y, width, height]  # absolute pixels, optional}, ...],
     "categories": [{"id": 30, "name": "empty"}, ...]}

Boxes may come in a second file (``caltech_bboxes_*.json``) merged by image id.  Location may be
an int or a string; the capture time is read from ``datetime`` or ``date_captured``; the empty
class is found by name.  Tables are cached on disk keyed by the source files' content, so a second
load of the same file takes a few tens of milliseconds.

Example::

    ds = load_dataset("caltech_images_20210113.json", bboxes="caltech_bboxes_20200316.json",
                      image_root="cct_images")
    ds.images.groupby("location").size()
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Optional

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from trailcam_core.ingest import cct
from trailcam_core.ingest import cct_parallel
from trailcam_core.base import (atomic_path, Box, confine, default_home, ensure, ImageRecord, MEDIA_EXTENSIONS,
                                TrailcamError, write_json)
from trailcam_core.ingest.cct import ANNOTATION_TABLE_COLUMNS, IMAGE_COLUMNS, STANDARD_IMAGE_FIELDS
from trailcam_core.ingest.folder import list_media, listing_key, scan_folder

LOADER_VERSION = 6


class _RawImages(msgspec.Struct):
    images: list[msgspec.Raw]


class _IdOnly(msgspec.Struct):
    id: cct.Id


_ID_ONLY = msgspec.json.Decoder(_IdOnly)


# ---------------------------------------------------------------------------------- the Dataset
class Dataset:
    """Images and annotations of one source, as pandas tables (see the module doc for columns).

    ``images``: one row per image (image_id, file_name relative to ``root``, width, height, location,
    datetime, seq_id, frame_num, seq_num_frames, label, media).  ``annotations``: one row per
    annotation (annotation_id, image_id, category_id, category, bbox_x/y/w/h in absolute pixels or
    NaN, score).  ``categories``: id -> name.  ``skipped``: (item, reason) for files a folder scan
    could not read.  ``warnings``: things that loaded but look wrong (unparseable dates ...).

    The tables live in Arrow and become pandas DataFrames on first access, so loading and
    subsetting a large file never pays for a conversion it does not need (``tables()`` gives the
    Arrow form).  Assigning ``images`` or ``annotations`` replaces them.
    """

    def __init__(self, images, annotations, categories: dict[int, str], root: Path, source: Optional[Path] = None,
                 bboxes_source: Optional[Path] = None, kind: str = "cct", info: Optional[dict] = None,
                 skipped: Optional[list] = None, warnings: Optional[list] = None, from_cache: bool = False):
        self._img_tbl = images if isinstance(images, pa.Table) else None
        self._ann_tbl = annotations if isinstance(annotations, pa.Table) else None
        self._img_df = None if isinstance(images, pa.Table) else images
        self._ann_df = None if isinstance(annotations, pa.Table) else annotations
        self.categories, self.root, self.source, self.bboxes_source = categories, Path(root), source, bboxes_source
        self.kind, self.info, self.from_cache = kind, info if info is not None else {}, from_cache
        self.skipped = skipped if skipped is not None else []
        self.warnings = warnings if warnings is not None else []
        self._raw: Optional[dict] = None
        self._raw_all = False

    def __repr__(self) -> str:
        return (f"Dataset({self.kind}, {len(self)} images, {len(self.categories)} categories, "
                f"source={self.source}, root={self.root})")

    @property
    def images(self) -> pd.DataFrame:
        if self._img_df is None:
            self._img_df = cct.to_pandas(self._img_tbl)
        return self._img_df

    @images.setter
    def images(self, df: pd.DataFrame) -> None:
        self._img_df, self._img_tbl = df, None

    @property
    def annotations(self) -> pd.DataFrame:
        if self._ann_df is None:
            self._ann_df = cct.to_pandas(self._ann_tbl)
        return self._ann_df

    @annotations.setter
    def annotations(self, df: pd.DataFrame) -> None:
        self._ann_df, self._ann_tbl = df, None

    def tables(self) -> tuple[pa.Table, pa.Table]:
        """(images, annotations) as Arrow tables, the same rows as the DataFrames."""
        if self._img_tbl is None:
            self._img_tbl = pa.Table.from_pandas(self._img_df, preserve_index=False)
        if self._ann_tbl is None:
            self._ann_tbl = pa.Table.from_pandas(self._ann_df, preserve_index=False)
        return self._img_tbl, self._ann_tbl

    def __len__(self) -> int:
        return self._img_tbl.num_rows if self._img_tbl is not None else len(self._img_df)

    @property
    def locations(self) -> list[str]:
        """Sorted location names (numeric names in numeric order)."""
        return sort_locations(cct.distinct(self.tables()[0]["location"]))

    @property
    def category_names(self) -> list[str]:
        return list(dict.fromkeys(self.categories.values()))

    def image_path(self, file_name: str) -> Path:
        """Absolute path of ``file_name`` under ``root``; raises UnsafePathError if it would leave root."""
        return confine(self.root, file_name, what="file_name")

    def raw_images(self, ids: Optional[Iterable[str]] = None) -> dict[str, dict]:
        """image_id -> the image record exactly as the source JSON has it (extra fields included),
        for ``ids`` (all when None).  Read from the source on demand (the tables never need it):
        records are located raw and only the wanted ones are decoded.  Empty for folders."""
        if self.kind != "cct" or self.source is None or not self.source.is_file():
            return {}
        wanted = None if ids is None else {str(i) for i in ids}
        if self._raw is not None and (wanted is None and self._raw_all or
                                      wanted is not None and wanted <= self._raw.keys()):
            return self._raw if wanted is None else {k: self._raw[k] for k in wanted}
        doc = msgspec.json.decode(self.source.read_bytes(), type=_RawImages)
        out = {}
        for raw in doc.images:
            iid = _ID_ONLY.decode(raw).id
            iid = iid if isinstance(iid, str) else str(iid)
            if wanted is None or iid in wanted:
                out[iid] = msgspec.json.decode(raw)
        self._raw = {**(self._raw or {}), **out}
        self._raw_all = self._raw_all or wanted is None
        return out

    def records(self, ids: Optional[Iterable[str]] = None) -> list[ImageRecord]:
        """ImageRecords for ``ids`` (all images when None), in table order, with labels and boxes.

        ``extra`` holds the source's non-standard image fields (e.g. ``synthetic``, ``rights_holder``),
        plus ``media`` and ``seq_num_frames``.
        """
        return build_records(self, self.images if ids is None else
                             self.images[self.images["image_id"].isin(list(ids))], self.annotations)


def build_records(ds: Dataset, images: pd.DataFrame, annotations: pd.DataFrame) -> list[ImageRecord]:
    """ImageRecords for the rows of ``images`` (used by Dataset and Subset)."""
    ids = set(images["image_id"])
    ann = annotations[annotations["image_id"].isin(ids)]
    labels: dict[str, list[str]] = {}
    boxes: dict[str, list[Box]] = {}
    for iid, cat, x, y, w, h, score in zip(ann["image_id"], ann["category"], ann["bbox_x"], ann["bbox_y"],
                                           ann["bbox_w"], ann["bbox_h"], ann["score"]):
        lst = labels.setdefault(iid, [])
        if cat not in lst:
            lst.append(cat)
        if not np.isnan(x):
            boxes.setdefault(iid, []).append(Box(float(x), float(y), float(w), float(h), cat,
                                                 None if np.isnan(score) else float(score)))
    raw = ds.raw_images(images["image_id"]) if ds.kind == "cct" else {}
    out = []
    for row in images.itertuples(index=False):
        extra = {k: v for k, v in raw.get(row.image_id, {}).items() if k not in STANDARD_IMAGE_FIELDS}
        extra["media"] = row.media
        if not pd.isna(row.seq_num_frames):
            extra["seq_num_frames"] = int(row.seq_num_frames)
        out.append(ImageRecord(
            image_id=row.image_id, path=ds.root / row.file_name, file_name=row.file_name,
            location=row.location, datetime=None if pd.isna(row.datetime) else row.datetime.to_pydatetime(),
            labels=labels.get(row.image_id, []), boxes=boxes.get(row.image_id, []),
            width=None if pd.isna(row.width) else int(row.width),
            height=None if pd.isna(row.height) else int(row.height),
            seq_id=row.seq_id, frame_num=None if pd.isna(row.frame_num) else int(row.frame_num), extra=extra))
    return out


def sort_locations(values: Iterable) -> list[str]:
    """Sort location names naturally: "2" before "10", names after numbers."""
    def key(v: str):
        return (0, int(v), "") if str(v).isdigit() else (1, 0, str(v))
    return sorted((str(v) for v in values), key=key)


# ----------------------------------------------------------------------------------- loading
def load_dataset(source: str | os.PathLike, bboxes: Optional[str | os.PathLike] = None,
                 image_root: Optional[str | os.PathLike] = None,
                 cache_dir: Optional[str | os.PathLike] = None, use_cache: bool = True,
                 progress=None) -> Dataset:
    """Load a CCT JSON file (optionally with a separate bbox file) or a plain folder of images/videos.

    ``image_root``: the folder ``file_name`` is relative to (default: the JSON's folder, or the
    folder itself).  ``cache_dir``: where the columnar cache lives (default
    ``$TRAILCAM_HOME/cache/datasets``); ``use_cache=False`` skips it.
    Raises DataError with the file, position or record for malformed input.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise TrailcamError(f"{source}: no such file or folder")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if source.is_dir():
        if bboxes is not None:
            raise TrailcamError("a bbox file can only be merged into a CCT JSON, not into a folder")
        return _load_folder(source, image_root, cache if use_cache else None, progress)
    root = Path(image_root).expanduser() if image_root is not None else source.resolve().parent
    bpath = Path(bboxes).expanduser() if bboxes is not None else None
    if bpath is not None and not bpath.is_file():
        raise TrailcamError(f"{bpath}: bbox file not found")

    def placed(ds: Dataset) -> Dataset:
        ds.source, ds.bboxes_source = source, bpath
        ds.root = _image_root(ds, image_root)
        return ds
    if use_cache:
        key = _cached_key(cache, source, bpath)
        ds = _read_cache(cache, key, root) if key is not None else None
        if ds is not None:
            return placed(ds)

    report = ensure(progress)
    report(0, 3, f"reading {source.name}")
    holder = [_read_bytes(source, writable=True)]
    try:
        key = content_key(holder[0], bpath)
    except OSError:
        key = ""
    if use_cache and key:                     # the same bytes under another name, or touched: no parse
        ds = _read_cache(cache, key, root)
        if ds is not None:
            _write_stat(cache, key, source, bpath)
            report(3, 3, f"{len(ds)} images (cached)")
            return placed(ds)
    report(1, 3, f"parsing {source.name}")
    ds = placed(_parse_cct(holder, source, root, bpath))      # frees the file's buffer as soon as it can
    report(2, 3, "writing the cache")
    if use_cache and key:
        _write_cache(cache, key, ds, source, bpath)
    report(3, 3, f"{len(ds)} images")
    return ds


def _load_folder(source: Path, image_root, cache_dir: Optional[Path], progress) -> Dataset:
    """A Dataset of kind "folder" (see :mod:`trailcam_core.ingest.folder`), cached by its listing."""
    root = Path(image_root).expanduser() if image_root is not None else source
    files = list_media(source)
    if not files:
        raise TrailcamError(f"{source}: no images or videos found (looked for "
                            f"{', '.join(sorted(MEDIA_EXTENSIONS))})")
    key = listing_key(source, files) if cache_dir is not None else None
    if key is not None:
        ds = _read_cache(cache_dir, key, root)
        if ds is not None:
            ds.source = source
            return ds
    table, annotations, skipped = scan_folder(source, files, progress)
    ds = make_dataset(table, annotations, {}, root, source=source, kind="folder", skipped=skipped)
    if key is not None:
        _write_cache(cache_dir, key, ds)
    return ds


def _image_root(ds: Dataset, image_root) -> Path:
    """The folder file_names are relative to: the one given, else the one a subset JSON recorded
    in ``info.image_root`` (if it exists), else the JSON's own folder."""
    if image_root is not None:
        return Path(image_root).expanduser()
    recorded = (ds.info or {}).get("image_root") if isinstance(ds.info, dict) else None
    if isinstance(recorded, str) and Path(recorded).is_dir():
        return Path(recorded)
    return ds.source.resolve().parent


def default_cache_dir() -> Path:

    return default_home() / "cache" / "datasets"


def _read_bytes(path: Path, writable: bool = False) -> bytes | bytearray | mmap.mmap:
    """The file's bytes.  ``writable``: a buffer the parallel parser may cut in place in its
    workers' private copies: a copy-on-write memory map for large files (no read, no copy: the
    page cache is mapped), a bytearray for small ones."""
    try:
        if not writable:
            return path.read_bytes()
        with open(path, "rb", buffering=0) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size >= cct_parallel.MIN_BYTES:          # the size the parallel parser starts at
                try:
                    return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
                except (OSError, ValueError):
                    pass
            return bytearray(fh.read())
    except IsADirectoryError:
        raise TrailcamError(f"{path}: is a folder, expected a JSON file") from None
    except OSError as exc:
        raise TrailcamError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _parse_cct(holder: list, path: Path, root: Path, bboxes: Optional[Path]) -> Dataset:
    images, ann, categories, info, warnings = cct_parallel.parse(holder, path)
    if bboxes is not None:
        boxes, categories, dropped = cct.parse_bboxes(_read_bytes(bboxes), bboxes, categories,
                                                      images["image_id"].combine_chunks())
        if dropped:
            warnings.append(f"{bboxes}: {dropped} box annotation(s) point at images not in {path}; ignored")
        ann = merge_boxes(ann, boxes)
    return make_dataset(images, ann, categories, root, kind="cct", info=info, warnings=warnings)


def merge_boxes(ann: pa.Table, boxes: pa.Table) -> pa.Table:
    """Boxed annotations replace the box-less ones of the same image and category; others stay."""
    if boxes.num_rows == 0:
        return ann
    key = pc.binary_join_element_wise(ann["image_id"], pc.cast(ann["category_id"], pa.string()), "\x00")
    bkey = pc.binary_join_element_wise(boxes["image_id"], pc.cast(boxes["category_id"], pa.string()), "\x00")
    covered = pc.and_(pc.is_in(key, value_set=pc.unique(bkey)), pc.is_nan(ann["bbox_x"]))
    return pa.concat_tables([ann.filter(pc.invert(covered)), boxes.cast(ann.schema)])


def make_dataset(images: pa.Table, ann: pa.Table, categories: dict[int, str], root: Path, **kw) -> Dataset:
    """Add the ``label`` and ``media`` columns and convert the Arrow tables to pandas."""
    ids = images["image_id"].combine_chunks()
    images = images.append_column("label", cct.primary_labels(ids, ann))
    if "media" not in images.column_names:
        images = images.append_column("media", pa.DictionaryArray.from_arrays(
            pa.repeat(pa.scalar(0, pa.int32()), images.num_rows), pa.array(["image"])))
    return Dataset(images.select(IMAGE_COLUMNS), ann.select(ANNOTATION_TABLE_COLUMNS), categories, root, **kw)


# ------------------------------------------------------------------------------------ the cache
def content_key(data, bboxes: Optional[Path]) -> str:
    """The cache key of a CCT file's bytes (and its bbox file's): XXH3-128 over them, the size
    and the loader version (about 20 GB/s, so the key costs a few ms even for the full Caltech
    file)."""
    h = xxhash.xxh3_128(f"trailcam-dataset-v{LOADER_VERSION}\0{len(data)}\0".encode())
    h.update(data)
    if bboxes is not None:
        h.update(b"\0bboxes\0" + bboxes.read_bytes())
    return h.hexdigest()


def _stat_sig(*paths: Optional[Path]) -> list:
    out = []
    for p in paths:
        if p is None:
            out.append(None)
            continue
        st = p.stat()
        out.append([os.path.realpath(p), st.st_size, st.st_mtime_ns, st.st_ino])
    return out


def _stat_file(cache: Path, source: Path, bboxes: Optional[Path]) -> Path:
    name = hashlib.sha1(f"{os.path.realpath(source)}|{bboxes and os.path.realpath(bboxes)}".encode()).hexdigest()
    return cache / "stat" / f"{name[:24]}.json"


def _cached_key(cache: Path, source: Path, bboxes: Optional[Path]) -> Optional[str]:
    """The content key recorded for these files, if they have not changed since (size, mtime, inode)."""
    try:
        rec = json.loads(_stat_file(cache, source, bboxes).read_text())
        if rec.get("sig") == _stat_sig(source, bboxes) and rec.get("v") == LOADER_VERSION:
            return rec["key"]
    except (OSError, ValueError, KeyError):
        pass
    return None


def _read_table(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def _read_cache(cache: Path, key: str, root: Path) -> Optional[Dataset]:
    """The cached Dataset (Arrow IPC files, memory-mapped), or None if absent or unreadable."""
    folder = cache / key
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("v") != LOADER_VERSION:
            return None
        images = _read_table(folder / "images.arrow")
        annotations = _read_table(folder / "annotations.arrow")
        if images.column_names != IMAGE_COLUMNS or annotations.column_names != ANNOTATION_TABLE_COLUMNS:
            return None
    except Exception:  # a missing or corrupt cache is rebuilt, never trusted
        return None
    return Dataset(images=images, annotations=annotations,
                   categories={int(k): v for k, v in meta["categories"].items()}, root=root,
                   kind=meta["kind"], info=meta.get("info") or {}, warnings=meta.get("warnings", []),
                   skipped=[tuple(s) for s in meta.get("skipped", [])], from_cache=True)


def _write_cache(cache: Path, key: str, ds: Dataset, *sources: Optional[Path]) -> None:
    """Write tables, then meta.json (the commit marker), then the stat record; failures are ignored."""
    folder = cache / key

    def write(name: str, table: pa.Table) -> None:
        with atomic_path(folder / f"{name}.arrow") as tmp:
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
    images, annotations = ds.tables()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(1) as pool:      # both files at once: Arrow writes without the GIL
            other = pool.submit(write, "annotations", annotations)
            write("images", images)
            other.result()
        write_json(folder / "meta.json", {"v": LOADER_VERSION, "kind": ds.kind, "info": ds.info,
                                          "categories": {str(k): v for k, v in ds.categories.items()},
                                          "warnings": ds.warnings, "skipped": ds.skipped}, indent=None)
        if ds.kind == "cct" and sources:
            _write_stat(cache, key, sources[0], sources[1] if len(sources) > 1 else None)
    except (OSError, pa.ArrowException):
        pass


def _write_stat(cache: Path, key: str, source: Path, bboxes: Optional[Path]) -> None:
    """Remember which content key these files (by path, size, mtime, inode) have."""
    try:
        write_json(_stat_file(cache, source, bboxes), {"v": LOADER_VERSION, "key": key,
                                                       "sig": _stat_sig(source, bboxes)}, indent=None)
    except OSError:
        pass
