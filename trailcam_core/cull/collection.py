"""The collection table of the culling view: one row per image, one column per thing to filter on.

Built from a folder of images (its capture times and bursts from the folder loader) or a COCO Camera
Traps JSON (up to the whole 243,100-image Caltech set), plus the curation state (tags, favourites,
rejects, stars).  Columns (pandas, categoricals for the facets, so filters are array operations)::

    id, path, species, time_of_day, artifact, glitch, info_bar, location, camera, datetime,
    burst, frame, favorite, reject, stars, problem

``burst`` is an integer per sequence: CCT ``seq_id``, or for folders frames of one location shot a
few seconds apart (``burst_gap``).  ``problem`` is the reason an image cannot be shown ("" when fine).

    col = open_collection("crops/", workdir="work", metadata="subset.json")
    len(col), col.df["species"].value_counts()
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trailcam_core.tags import Project, state_folder
from trailcam_core.base import option, Options, TrailcamError

FACETS = ("species", "time_of_day", "artifact", "info_bar", "location", "camera")
UNKNOWN = "(none)"


@dataclass
class CullOptions(Options):
    """How the culling view opens a collection and finds similar images."""

    STAGE = "cull"

    metadata: str = option("", "CCT JSON lending a folder of crops its labels, capture times and bursts (optional)")
    burst_gap: float = option(5.0, "Folders: frames of one location shot at most this many seconds apart form a burst",
                              min=0.0, max=3600.0)
    thumb_size: int = option(256, "Thumbnail side in pixels", min=64, max=1024)
    features: str = option("clip", "Features for 'more like this' and the map: open_clip embeddings or the "
                           "model-free image pyramid", choices=("clip", "pyramid"))
    model: str = option("ViT-B-32", "open_clip model for 'more like this'")
    pretrained: str = option("laion2b_s34b_b79k", "open_clip weights for 'more like this'")
    embeddings: str = option("", "A saved embeddings file (`trailcam embed --out x.npz`) to use instead of "
                             "computing features")
    map_limit: int = option(4096, "Largest number of images laid out on the map at once", min=16, max=50000)


class Collection:
    """The table (``df``) of one open collection and its curation :class:`Project`."""

    def __init__(self, df: pd.DataFrame, project: Project, source: Path, kind: str, warnings: list[str]):
        self.df = df.reset_index(drop=True)
        self.project = project
        self.source = source
        self.kind = kind
        self.warnings = warnings
        self.row_of = pd.Index(self.df["id"])

    def __len__(self) -> int:
        return len(self.df)

    def time_order(self) -> np.ndarray:
        """Rows by capture time, then frame (computed once: capture times never change)."""
        if getattr(self, "_time_order", None) is None:
            t = self.df["datetime"].to_numpy().astype("int64")
            self._time_order = np.lexsort((self.df["frame"].to_numpy(), t))
        return self._time_order

    def rows(self, ids) -> np.ndarray:
        """Row numbers of image ids (TrailcamError naming an unknown one)."""
        idx = self.row_of.get_indexer(list(ids))
        if (idx < 0).any():
            bad = [i for i, n in zip(ids, idx) if n < 0]
            raise TrailcamError(f"image {bad[0]!r} is not in the collection {self.source}")
        return idx

    def refresh_flags(self, ids=None) -> None:
        """Copy favourites, rejects, stars and tags of ``ids`` (all in the state when None) into the table."""
        images = self.project.images
        ids = list(images) if ids is None else [i for i in ids if i in images]
        if not ids:
            return
        idx = self.row_of.get_indexer(ids)
        keep = idx >= 0
        ids, idx = [i for i, k in zip(ids, keep) if k], idx[keep]
        if not len(idx):
            return
        entries = [images[i] for i in ids]
        df = self.df
        df.loc[idx, "favorite"] = np.array([bool(e.get("favorite")) for e in entries])
        df.loc[idx, "reject"] = np.array([bool(e.get("reject")) for e in entries])
        df.loc[idx, "stars"] = np.array([int(e.get("stars", 0) or 0) for e in entries], dtype=np.int8)
        _apply_tags(df, idx, [e.get("tags", {}) for e in entries])


def _tag_value(t) -> Optional[str]:
    if not isinstance(t, dict):
        return None
    v = t.get("value")
    if v is None:
        return UNKNOWN if t.get("source") == "hand" else None       # removed by hand
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v)) if v else UNKNOWN
    if v is True:
        return "yes"
    if v is False:
        return "none"
    return str(v)


def _set_cat(df: pd.DataFrame, col: str, idx: np.ndarray, values: list) -> None:
    s = df[col]
    new = [v for v in set(values) if v not in s.cat.categories]
    if new:
        df[col] = s.cat.add_categories(sorted(new))
    df.loc[idx, col] = values


def _apply_tags(df: pd.DataFrame, idx: np.ndarray, tags: list[dict]) -> None:
    for key in ("species", "time_of_day", "artifact", "info_bar", "location", "camera"):
        pairs = [(n, _tag_value(t.get(key))) for n, t in zip(idx, tags)]
        pairs = [(n, v) for n, v in pairs if v is not None]
        if pairs:
            _set_cat(df, key, np.array([p[0] for p in pairs]), [p[1] for p in pairs])
    scores = [(n, t["artifact"].get("score")) for n, t in zip(idx, tags)
              if isinstance(t.get("artifact"), dict) and t["artifact"].get("score") is not None]
    if scores:
        df.loc[np.array([s[0] for s in scores]), "glitch"] = np.array([s[1] for s in scores], dtype=np.float32)
    bad = [(n, str(t["unreadable"].get("value"))) for n, t in zip(idx, tags)
           if isinstance(t.get("unreadable"), dict) and t["unreadable"].get("value")]
    if bad:
        df.loc[np.array([b[0] for b in bad]), "problem"] = [b[1] for b in bad]


def _arrow(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(pd.Series(values, dtype="object").where(lambda x: x.notna(), None).map(
        lambda v: None if v is None else str(v)), pa.string())


def _categorical(values, fill: str = UNKNOWN) -> pd.Categorical:
    """A categorical straight from Arrow's dictionary encoding (no Python string per row); missing
    and empty values become ``fill``."""
    arr = _arrow(values)
    if not pa.types.is_dictionary(arr.type):
        if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
            arr = pc.cast(arr, pa.string())
        arr = pc.dictionary_encode(arr)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    names = [fill if v in (None, "") else str(v) for v in arr.dictionary.to_pylist()]
    cats = list(dict.fromkeys(names))
    if not cats or fill not in cats:
        cats.append(fill)
    remap = np.array([cats.index(v) for v in names] + [cats.index(fill)], dtype=np.int32)
    idx = pc.fill_null(arr.indices, len(names)).to_numpy(zero_copy_only=False).astype(np.int32)
    return pd.Categorical.from_codes(remap[idx], categories=cats)


def _bursts(seq, image_ids: int, times: np.ndarray, loc: np.ndarray, gap: float) -> np.ndarray:
    """An integer burst number per row (see the module doc): the sequence's, or from capture times."""
    n = len(times)
    if seq is not None:
        arr = pc.dictionary_encode(_arrow(seq))
        codes = pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        alone = codes < 0                                   # no sequence: a burst of its own
        codes[alone] = len(arr.dictionary) + np.arange(int(alone.sum()))
        return codes
    # folders: by location (the sub-folder), then capture time; a gap above ``gap`` seconds starts a new burst
    t = times.astype("datetime64[s]")
    t = np.where(~np.isnat(t), t.astype(np.int64), np.iinfo(np.int64).min // 2)     # unknown times stand alone
    order = np.lexsort((t, loc))
    ts, ls = t[order], loc[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (ls[1:] != ls[:-1]) | (ts[1:] - ts[:-1] > gap) | (ts[1:] < -1e15)
    burst = np.empty(n, dtype=np.int64)
    burst[order] = np.cumsum(new) - 1
    return burst


def open_collection(source: str | os.PathLike, workdir: Optional[str | os.PathLike] = None,
                    options: Optional[CullOptions] = None, image_root: Optional[str | os.PathLike] = None
                    ) -> Collection:
    """Open a folder of images or a CCT JSON as a culling :class:`Collection`.

    The curation state lives where :func:`trailcam_core.tags.curation.state_folder` says (below
    ``workdir`` for a collection outside it). A damaged state file falls back to its last good copy
    and says so in ``warnings``. The table is built from the dataset's Arrow columns, so opening the
    whole 243,100-image Caltech set costs no Python loop per image.
    Example: ``open_collection("/photos/cam1", workdir="work")``.
    """
    from trailcam_core.ingest import load_dataset

    options = options or CullOptions()
    src = Path(source).expanduser()
    if not src.exists():
        raise TrailcamError(f"collection not found: {src} (a folder of images or a CCT JSON)")
    if src.is_dir() and not os.access(src, os.R_OK | os.X_OK):
        raise TrailcamError(f"{src}: this folder cannot be read")
    ds = load_dataset(src, image_root=image_root)
    folder = ds.kind != "cct"
    warnings = list(ds.warnings) + [f"{item}: {why}" for item, why in ds.skipped[:20]]
    tbl = ds.tables()[0]
    if not tbl.num_rows:
        raise TrailcamError(f"{src}: no images found")
    if folder and options.metadata:
        tbl = pa.Table.from_pandas(_lend_metadata(ds.images, options.metadata), preserve_index=False)
        folder = tbl.column("seq_id").null_count == tbl.num_rows
    n = tbl.num_rows
    col = lambda name: tbl.column(name) if name in tbl.column_names else pa.nulls(n, pa.string())  # noqa: E731
    root = str(Path(ds.root)) + os.sep
    file_name = pc.cast(col("file_name"), pa.string())
    if os.sep != "/":
        file_name = pc.replace_substring(file_name, "/", os.sep)
    paths = pc.binary_join_element_wise(pa.scalar(root), file_name, "")
    if "width" in tbl.column_names and tbl.column("width").null_count < n:
        camera = pc.binary_join_element_wise(pc.cast(tbl.column("width"), pa.string()),
                                             pc.cast(tbl.column("height"), pa.string()), "x")
    else:
        camera = pa.nulls(n, pa.string())
    when = tbl.column("datetime").to_pandas().to_numpy().astype("datetime64[us]")
    location = _categorical(col("location"))
    frame = pc.fill_null(pc.cast(col("frame_num"), pa.int32()), 0).to_numpy(zero_copy_only=False) \
        if "frame_num" in tbl.column_names else np.zeros(n, np.int32)
    has_seq = not folder and "seq_id" in tbl.column_names and tbl.column("seq_id").null_count < n
    burst = _bursts(col("seq_id") if has_seq else None, n, when, np.asarray(location.codes), options.burst_gap)
    none = pd.Categorical.from_codes(np.zeros(n, np.int8), categories=[UNKNOWN])
    df = pd.DataFrame({
        "id": pc.cast(col("image_id"), pa.string()).to_pandas(),
        "path": paths.to_pandas(),
        "species": _categorical(col("label")),
        "time_of_day": none.copy(),
        "artifact": none.copy(),
        "glitch": np.full(n, np.nan, dtype=np.float32),
        "info_bar": none.copy(),
        "location": location,
        "camera": _categorical(camera),
        "datetime": when,
        "burst": burst,
        "frame": np.asarray(frame, dtype=np.int32),
        "favorite": np.zeros(n, dtype=bool),
        "reject": np.zeros(n, dtype=bool),
        "stars": np.zeros(n, dtype=np.int8),
        "problem": pd.Series(np.full(n, "", dtype=object), dtype=object),
    })
    if folder:       # frame number within the burst, in time order
        order = np.lexsort((when.astype("int64"), burst))
        b = burst[order]
        first = np.r_[0, np.flatnonzero(b[1:] != b[:-1]) + 1]
        pos = np.arange(n) - np.repeat(first, np.diff(np.r_[first, n])) + 1
        df.loc[order, "frame"] = pos.astype(np.int32)
    project = Project.open(state_folder(src, workdir))
    warnings += project.warnings
    out = Collection(df, project, src, "folder" if ds.kind != "cct" else "cct", warnings)
    out.refresh_flags()
    return out


def _lend_metadata(images: pd.DataFrame, metadata: str | os.PathLike) -> pd.DataFrame:
    """A folder of crops takes labels, locations, capture times and sequences from a CCT JSON,
    matched by image id = the file's stem, or by the metadata's file stem."""
    from trailcam_core.ingest import load_dataset

    meta = load_dataset(metadata).images
    stems = images["file_name"].map(lambda f: Path(f).stem)
    by_id = meta.drop_duplicates("image_id").set_index("image_id")
    by_stem = meta.assign(_s=meta["file_name"].map(lambda f: Path(f).stem)).drop_duplicates("_s").set_index("_s")
    hit, hit2 = by_id.reindex(stems), by_stem.reindex(stems)
    miss = hit["label"].isna().to_numpy()
    out = images.copy()
    for c in ("label", "location", "datetime", "seq_id", "frame_num"):
        picked = pd.Series(np.where(miss, hit2[c].to_numpy(dtype=object), hit[c].to_numpy(dtype=object)),
                           index=images.index)
        keep = picked.notna()
        if c == "datetime":
            out[c] = pd.to_datetime(picked.where(keep, images[c]))
        elif c == "frame_num":
            out[c] = pd.to_numeric(picked.where(keep, images[c]), errors="coerce").astype("Int64")
        elif c == "seq_id":
            out[c] = picked.where(keep, None).astype("object")
        else:
            out[c] = picked.where(keep, images[c]).astype("object")
    return out
