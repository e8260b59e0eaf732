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

from ..curation import Project, state_folder
from ..errors import TrailcamError
from ..options import option

FACETS = ("species", "time_of_day", "artifact", "info_bar", "location", "camera")
UNKNOWN = "(none)"


@dataclass
class CullOptions:
    """How the culling view opens a collection and finds similar images."""

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


def _categorical(values, fill: str = UNKNOWN) -> pd.Categorical:
    s = pd.Series(values, dtype="object")
    s = s.where(s.notna() & (s.astype(str) != ""), fill).astype(str)
    return pd.Categorical(s)


def _bursts(images: pd.DataFrame, gap: float, folder: bool) -> np.ndarray:
    """An integer burst number per row (see the module doc)."""
    if not folder and "seq_id" in images and images["seq_id"].notna().any():
        seq = images["seq_id"].astype("object").where(images["seq_id"].notna(), images["image_id"])
        return pd.factorize(seq)[0].astype(np.int64)
    # folders: by location (the sub-folder), then capture time; a gap above ``gap`` seconds starts a new burst
    times = pd.to_datetime(images["datetime"]).to_numpy().astype("datetime64[s]")
    known = ~np.isnat(times)
    t = np.where(known, times.astype(np.int64), np.iinfo(np.int64).min // 2)     # unknown times stand alone
    loc = pd.factorize(images["location"].astype("object").fillna(""))[0]
    order = np.lexsort((t, loc))
    ts, ls = t[order], loc[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (ls[1:] != ls[:-1]) | (ts[1:] - ts[:-1] > gap) | (ts[1:] < -1e15)
    burst = np.empty(len(order), dtype=np.int64)
    burst[order] = np.cumsum(new) - 1
    return burst


def open_collection(source: str | os.PathLike, workdir: Optional[str | os.PathLike] = None,
                    options: Optional[CullOptions] = None, image_root: Optional[str | os.PathLike] = None
                    ) -> Collection:
    """Open a folder of images or a CCT JSON as a culling :class:`Collection`.

    The curation state lives where :func:`trailcam_core.curation.state_folder` says (below
    ``workdir`` for a collection outside it). A damaged state file falls back to its last good copy
    and says so in ``warnings``. Example: ``open_collection("/photos/cam1", workdir="work")``.
    """
    from ..dataset import load_dataset

    options = options or CullOptions()
    src = Path(source).expanduser()
    if not src.exists():
        raise TrailcamError(f"collection not found: {src} (a folder of images or a CCT JSON)")
    if src.is_dir() and not os.access(src, os.R_OK | os.X_OK):
        raise TrailcamError(f"{src}: this folder cannot be read")
    ds = load_dataset(src, image_root=image_root)
    folder = ds.kind != "cct"
    images = ds.images
    warnings = list(ds.warnings) + [f"{item}: {why}" for item, why in ds.skipped[:20]]
    if not len(images):
        raise TrailcamError(f"{src}: no images found")
    species = images["label"]
    location = images["location"]
    when = images["datetime"]
    seq_frame = images.get("frame_num")
    if folder and options.metadata:
        meta = load_dataset(options.metadata).images
        stems = images["file_name"].map(lambda f: Path(f).stem)
        by_id = meta.set_index("image_id")
        by_stem = meta.assign(_s=meta["file_name"].map(lambda f: Path(f).stem)).drop_duplicates("_s").set_index("_s")
        hit = by_id.reindex(stems)
        miss = hit["label"].isna().to_numpy()
        hit2 = by_stem.reindex(stems)
        pick = lambda c: pd.Series(np.where(miss, hit2[c].to_numpy(), hit[c].to_numpy()), index=images.index)  # noqa: E731
        species = pick("label").where(lambda s: s.notna(), species)
        location = pick("location").where(lambda s: s.notna(), location)
        when = pd.to_datetime(pick("datetime")).where(lambda s: s.notna(), when)
        images = images.assign(seq_id=pick("seq_id"), datetime=when, location=location)
        seq_frame = pick("frame_num")
        folder = images["seq_id"].isna().all()
    root = Path(ds.root)
    paths = (str(root) + os.sep) + images["file_name"].astype(str).str.replace("/", os.sep, regex=False)
    if "width" in images and images["width"].notna().any():
        camera = images["width"].astype("string") + "x" + images["height"].astype("string")
    else:
        camera = pd.Series([None] * len(images))
    df = pd.DataFrame({
        "id": images["image_id"].astype(str).to_numpy(),
        "path": paths.to_numpy(),
        "species": _categorical(species.to_numpy()),
        "time_of_day": _categorical([None] * len(images)),
        "artifact": _categorical([None] * len(images)),
        "glitch": np.full(len(images), np.nan, dtype=np.float32),
        "info_bar": _categorical([None] * len(images)),
        "location": _categorical(location.to_numpy()),
        "camera": _categorical(camera.to_numpy()),
        "datetime": pd.to_datetime(when).to_numpy(),
        "burst": _bursts(images, options.burst_gap, folder),
        "frame": pd.to_numeric(seq_frame, errors="coerce").fillna(0).astype(np.int32).to_numpy()
        if seq_frame is not None else np.zeros(len(images), np.int32),
        "favorite": np.zeros(len(images), dtype=bool),
        "reject": np.zeros(len(images), dtype=bool),
        "stars": np.zeros(len(images), dtype=np.int8),
        "problem": np.full(len(images), "", dtype=object),
    })
    if folder:       # frame number within the burst, in time order
        order = np.lexsort((df["datetime"].to_numpy().astype("int64"), df["burst"].to_numpy()))
        b = df["burst"].to_numpy()[order]
        start = np.r_[0, np.flatnonzero(b[1:] != b[:-1]) + 1]
        frame = np.arange(len(b)) - np.repeat(start, np.diff(np.r_[start, len(b)])) + 1
        df.loc[order, "frame"] = frame.astype(np.int32)
    project = Project.open(state_folder(src, workdir))
    warnings += project.warnings
    col = Collection(df, project, src, "folder" if ds.kind != "cct" else "cct", warnings)
    col.refresh_flags()
    return col
