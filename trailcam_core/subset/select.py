"""Choose a subset of a Dataset: locations, categories, dates, hours, sequences, caps.

Filters apply in this order, and an empty result names the filter that emptied it:
locations -> categories (include) -> categories (exclude) -> empty frames -> date range ->
hours / day-night -> sequence policy -> cap per category -> cap total.

Example::

    ds = load_dataset("caltech_images_20210113.json")
    sub = make_subset(ds, SubsetOptions(locations=["38", "46"], empty="exclude", sequence="first",
                                        max_per_category=200, seed=1))
    sub.write_cct("out/subset.json"); sub.write_manifest("out/manifest")
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from trailcam_core.base import (atomic_path, BatchReport, ensure, flat_name, ImageRecord, is_placed, option,
                                Options, place_file, TrailcamError, UnsafePathError, write_bytes)
from trailcam_core.ingest import build_records, Dataset, EMPTY, isin, sort_locations, to_pandas

SEQUENCE_POLICIES = ("all", "first", "middle", "one")
SORT_MODES = ("copy", "hardlink", "symlink")
UNLABELLED = "unlabelled"


SUBSET_JSON = "subset.json"      # the file names a saved subset has, in every face
MANIFEST_STEM = "manifest"


class EmptySubsetError(TrailcamError):
    """The filters left no image: a result a face can show (0 images), not a broken input."""


@dataclass
class SubsetOptions(Options):
    """What to keep. Empty lists and zero caps mean "no filter"."""

    STAGE = "subset"

    locations: list[str] = option([], "Locations to keep (all when empty)")
    categories: list[str] = option([], "Keep images carrying any of these categories (all when empty)")
    exclude_categories: list[str] = option([], "Drop images carrying any of these categories")
    empty: str = option("include", "Empty frames: keep them, drop them, or keep only them",
                        choices=("include", "exclude", "only"))
    unlabelled: str = option("include", "Images with no annotation at all", choices=("include", "exclude"))
    date_from: str = option("", "First day kept, YYYY-MM-DD (no limit when empty)")
    date_to: str = option("", "Last day kept, YYYY-MM-DD inclusive (no limit when empty)")
    hours: str = option("", "Hour range kept, e.g. 6-18 or 20-6 (wraps midnight); end hour excluded")
    time_of_day: str = option("any", "Keep day or night frames by capture hour", choices=("any", "day", "night"))
    day_start: int = option(6, "Hour the day starts (for time_of_day)", min=0, max=23)
    day_end: int = option(18, "Hour the night starts (for time_of_day)", min=0, max=24)
    sequence: str = option("all", "Frames per sequence: all, the first, the middle one, or one at random",
                           choices=SEQUENCE_POLICIES)
    max_per_category: int = option(0, "Keep at most this many images per primary label (0: no cap)", min=0)
    max_total: int = option(0, "Keep at most this many images in all (0: no cap)", min=0)
    seed: int = option(0, "Random seed for sequence 'one' and the caps", min=0)


@dataclass
class Subset:
    """The chosen rows of a Dataset. ``steps`` records how many images each filter left."""

    dataset: Dataset
    images: pd.DataFrame
    annotations: pd.DataFrame
    options: SubsetOptions = field(default_factory=SubsetOptions)
    steps: list[tuple[str, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def root(self) -> Path:
        return self.dataset.root

    def records(self) -> list[ImageRecord]:
        """ImageRecords of the subset's images (labels, boxes, extra fields), in dataset order."""
        return build_records(self.dataset, self.images, self.annotations)

    def to_cct(self) -> dict:
        """The subset as a COCO Camera Traps dict (see write_cct)."""
        return to_cct(self.dataset, self.images, self.annotations,
                      subset={"options": asdict(self.options), "steps": self.steps})

    def write_cct(self, path: str | os.PathLike) -> Path:
        """Write a valid CCT JSON of just these images; loading it gives back the same tables.

        Image records keep every field of the source (extra fields included); ``info.image_root``
        records where the images are, so ``load_dataset(path)`` finds them.
        """
        import msgspec

        return write_bytes(path, msgspec.json.format(msgspec.json.encode(self.to_cct()), indent=1))

    def write_manifest(self, stem: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``<stem>.csv`` and ``<stem>.parquet``: one row per image with its labels and path."""
        return write_manifest(self.dataset, self.images, self.annotations, stem)

    def save(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write the subset the way every face does: ``OUT/subset.json`` (COCO Camera Traps) and
        ``OUT/manifest.csv`` + ``OUT/manifest.parquet``.  Returns {"json", "manifest", "parquet"}."""
        out = Path(out_dir)
        json_path = self.write_cct(out / SUBSET_JSON)
        csv_path, parquet_path = self.write_manifest(out / MANIFEST_STEM)
        return {"json": json_path, "manifest": csv_path, "parquet": parquet_path}

    def sort_images(self, out_dir: str | os.PathLike, mode: str = "copy", progress=None) -> BatchReport:
        """Place images into ``out_dir/Sorted/<label>/`` by copy, hardlink or symlink (see sort_images)."""
        return sort_images(self.dataset, self.images, out_dir, mode=mode, progress=progress)


# ------------------------------------------------------------------------------------- filters
def _parse_day(text: str, what: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text.strip())
    except (ValueError, TypeError):
        raise TrailcamError(f"{what} {text!r} is not a date; use YYYY-MM-DD") from None


def parse_hours(text: str) -> tuple[int, int]:
    """'6-18' -> (6, 18); '20-6' wraps midnight. End hour excluded; '0-24' is the whole day."""
    try:
        a, b = (int(x) for x in text.replace(" ", "").split("-"))
    except ValueError:
        raise TrailcamError(f"hour range {text!r} should look like 6-18 or 20-6") from None
    if not (0 <= a <= 23 and 0 <= b <= 24) or a == b:
        raise TrailcamError(f"hour range {text!r}: hours go from 0 to 24 and the ends must differ")
    return a, b


def _in_hours(hour: pd.Series, start: int, end: int) -> pd.Series:
    return (hour >= start) & (hour < end) if start < end else (hour >= start) | (hour < end)


def _check_names(asked: list[str], valid: list[str], what: str, plural: str) -> list[str]:
    valid_set = {v.lower(): v for v in valid}
    out, unknown = [], []
    for name in asked:
        v = valid_set.get(str(name).strip().lower())
        (out.append(v) if v is not None else unknown.append(str(name)))
    if unknown:
        shown = ", ".join(valid[:200]) + (f" ... ({len(valid)} in all)" if len(valid) > 200 else "")
        raise TrailcamError(f"unknown {what} {', '.join(map(repr, unknown))}; valid {plural}: {shown}")
    return out


def make_subset(dataset: Dataset, options: Optional[SubsetOptions] = None) -> Subset:
    """Apply ``options`` to ``dataset`` (see the module doc for the order); raise TrailcamError if
    a filter leaves nothing, naming it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    o = options or SubsetOptions()
    images, ann = dataset.tables()          # filters run on Arrow columns; only the result becomes pandas
    keep = np.ones(images.num_rows, dtype=bool)
    steps: list[tuple[str, int]] = [("all images", images.num_rows)]

    def step(name: str, mask) -> None:
        nonlocal keep
        before = int(keep.sum())
        keep &= np.asarray(mask, dtype=bool)
        after = int(keep.sum())
        steps.append((name, after))
        if after == 0:
            raise EmptySubsetError(f"the subset is empty: the filter {name} left 0 of {before} images "
                                f"(steps: {'; '.join(f'{n}: {c}' for n, c in steps)})")

    def np_bool(arr) -> np.ndarray:
        return pc.fill_null(arr, False).to_numpy(zero_copy_only=False).astype(bool)

    if o.locations:
        locs = _check_names([str(x) for x in o.locations], dataset.locations, "location", "locations")
        step(f"locations={','.join(locs)}", isin(images["location"], locs))
    cat_names = list(dict.fromkeys(dataset.categories.values()))
    if o.categories:
        cats = _check_names(o.categories, cat_names, "category", "categories")
        ids = ann["image_id"].filter(pa.array(isin(ann["category"], cats)))
        step(f"categories={','.join(cats)}", isin(images["image_id"], ids))
    if o.exclude_categories:
        cats = _check_names(o.exclude_categories, cat_names, "category", "categories")
        ids = ann["image_id"].filter(pa.array(isin(ann["category"], cats)))
        step(f"exclude_categories={','.join(cats)}", ~isin(images["image_id"], ids))
    if o.empty == "exclude":
        step("empty=exclude", ~isin(images["label"], [EMPTY]))
    elif o.empty == "only":
        step("empty=only", isin(images["label"], [EMPTY]))
    elif o.empty != "include":
        raise TrailcamError(f"empty={o.empty!r}: use include, exclude or only")
    if o.unlabelled == "exclude":
        step("unlabelled=exclude", np_bool(pc.is_valid(images["label"])))
    when = images["datetime"]
    if o.date_from or o.date_to:
        mask = np_bool(pc.is_valid(when)).copy()
        if o.date_from:
            start = pa.scalar(_parse_day(o.date_from, "date_from").to_datetime64(), when.type)
            mask &= np_bool(pc.greater_equal(when, start))
        if o.date_to:
            end = _parse_day(o.date_to, "date_to") + pd.Timedelta(days=1)
            mask &= np_bool(pc.less(when, pa.scalar(end.to_datetime64(), when.type)))
        step(f"date range {o.date_from or '...'} to {o.date_to or '...'}", mask)
    if o.hours or o.time_of_day != "any":
        hour = pd.Series(pc.hour(when).to_numpy(zero_copy_only=False))   # float with NaN where unknown
        if o.hours:
            a, b = parse_hours(o.hours)
            step(f"hours={o.hours}", _in_hours(hour, a, b).to_numpy(dtype=bool) & hour.notna().to_numpy())
        if o.time_of_day != "any":
            if o.time_of_day not in ("day", "night"):
                raise TrailcamError(f"time_of_day={o.time_of_day!r}: use any, day or night")
            day = _in_hours(hour, o.day_start, o.day_end).to_numpy(dtype=bool)
            mask = day if o.time_of_day == "day" else ~day
            step(f"time_of_day={o.time_of_day}", mask & hour.notna().to_numpy())
    rows = np.flatnonzero(keep)
    chosen = dataset.images if keep.all() else to_pandas(images.take(pa.array(rows))).set_axis(rows)
    rng = np.random.default_rng(o.seed)
    if o.sequence != "all":
        if o.sequence not in SEQUENCE_POLICIES:
            raise TrailcamError(f"sequence={o.sequence!r}: use one of {', '.join(SEQUENCE_POLICIES)}")
        chosen = _one_per_sequence(chosen, o.sequence, rng)
        steps.append((f"sequence={o.sequence}", len(chosen)))
    if o.max_per_category:
        label = chosen["label"].fillna(UNLABELLED)
        picked = []
        for _, idx in label.groupby(label, sort=True).groups.items():
            idx = np.asarray(idx)
            picked.append(idx if len(idx) <= o.max_per_category else
                          rng.choice(idx, o.max_per_category, replace=False))
        chosen = chosen.loc[np.sort(np.concatenate(picked))] if picked else chosen
        steps.append((f"max_per_category={o.max_per_category}", len(chosen)))
    if o.max_total and len(chosen) > o.max_total:
        chosen = chosen.loc[np.sort(rng.choice(chosen.index.to_numpy(), o.max_total, replace=False))]
        steps.append((f"max_total={o.max_total}", len(chosen)))
    if len(chosen) == images.num_rows:
        sub_ann = dataset.annotations
    elif "image_row" in ann.column_names:       # annotations know their image's row: no string matching
        selected = np.zeros(images.num_rows + 1, dtype=bool)
        selected[chosen.index.to_numpy()] = True
        rows_of = pc.fill_null(ann["image_row"], -1).to_numpy()
        sub_ann = to_pandas(ann.filter(pa.array(selected[rows_of])))
    else:
        sub_ann = to_pandas(ann.filter(pa.array(isin(ann["image_id"], pa.array(chosen["image_id"], pa.string())))))
    chosen = chosen.reset_index(drop=True)
    sub_ann = sub_ann.reset_index(drop=True)
    return Subset(dataset=dataset, images=chosen, annotations=sub_ann, options=o, steps=steps)


def _one_per_sequence(images: pd.DataFrame, policy: str, rng: np.random.Generator) -> pd.DataFrame:
    """Keep one frame per sequence: the first, the middle one, or a random one (by seed)."""
    order = images.assign(_fn=images["frame_num"].fillna(0), _pos=np.arange(len(images)))
    order = order.sort_values(["seq_id", "_fn", "datetime", "_pos"], kind="stable")
    rank = order.groupby("seq_id", sort=False).cumcount().to_numpy()
    size = order.groupby("seq_id", sort=False)["seq_id"].transform("size").to_numpy()
    if policy == "first":
        pick = rank == 0
    elif policy == "middle":
        pick = rank == (size - 1) // 2
    else:
        target = np.floor(rng.random(len(order)) * size).astype(int)
        # one draw per sequence: use the draw made at its first row
        first_rows = np.flatnonzero(rank == 0)
        seq_target = np.repeat(target[first_rows], np.diff(np.append(first_rows, len(order))))
        pick = rank == seq_target
    return images.loc[np.sort(order.index.to_numpy()[pick])]


# ---------------------------------------------------------------------------------- outputs
def _image_record(row, raw: dict) -> dict:
    if raw:
        return raw
    rec = {"id": row.image_id, "file_name": row.file_name}
    if not pd.isna(row.width):
        rec["width"], rec["height"] = int(row.width), int(row.height)
    rec["location"] = row.location
    if not pd.isna(row.datetime):
        rec["datetime"] = row.datetime.strftime("%Y-%m-%d %H:%M:%S")
    rec["seq_id"] = row.seq_id
    for col in ("seq_num_frames", "frame_num"):
        v = getattr(row, col)
        if not pd.isna(v):
            rec[col] = int(v)
    return rec


def to_cct(dataset: Dataset, images: pd.DataFrame, annotations: pd.DataFrame, subset: Optional[dict] = None) -> dict:
    """COCO Camera Traps dict of the given rows (source image records kept as they were)."""
    raw = dataset.raw_images(images["image_id"]) if dataset.kind == "cct" else {}
    out_images = [_image_record(row, raw.get(row.image_id)) for row in images.itertuples(index=False)]
    out_ann = []
    for k, row in enumerate(annotations.itertuples(index=False)):
        rec = {"id": row.annotation_id if isinstance(row.annotation_id, str) else f"{row.image_id}#{k}",
               "image_id": row.image_id, "category_id": int(row.category_id)}
        if not np.isnan(row.bbox_x):
            rec["bbox"] = [float(row.bbox_x), float(row.bbox_y), float(row.bbox_w), float(row.bbox_h)]
        if not np.isnan(row.score):
            rec["score"] = float(row.score)
        out_ann.append(rec)
    info = dict(dataset.info or {})
    info["image_root"] = str(Path(dataset.root).resolve())
    if dataset.source is not None:
        info["subset_of"] = str(Path(dataset.source).resolve())
    if subset is not None:
        info["subset"] = subset
    return {"info": info, "images": out_images, "annotations": out_ann,
            "categories": [{"id": int(k), "name": v} for k, v in sorted(dataset.categories.items())]}


def manifest_table(dataset: Dataset, images: pd.DataFrame, annotations: pd.DataFrame) -> pd.DataFrame:
    """One row per image: ids, place, time, primary label, all labels, box count, absolute path."""
    grouped = annotations.groupby("image_id", sort=False)
    labels = grouped["category"].agg(lambda s: ";".join(dict.fromkeys(s.dropna())))
    boxes = grouped["bbox_x"].agg(lambda s: int(s.notna().sum()))
    table = images[["image_id", "file_name", "location", "datetime", "seq_id", "frame_num", "seq_num_frames",
                    "label", "width", "height", "media"]].copy()
    table["labels"] = table["image_id"].map(labels).fillna("").astype("str")
    table["n_boxes"] = table["image_id"].map(boxes).fillna(0).astype("int64")
    root = Path(dataset.root).resolve()
    table["path"] = [str(root / f) for f in table["file_name"]]
    return table


def write_manifest(dataset: Dataset, images: pd.DataFrame, annotations: pd.DataFrame,
                   stem: str | os.PathLike) -> tuple[Path, Path]:
    stem = Path(stem)
    if stem.suffix in (".csv", ".parquet"):
        stem = stem.with_suffix("")
    table = manifest_table(dataset, images, annotations)
    csv_path, pq_path = stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".parquet")
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, date_format="%Y-%m-%d %H:%M:%S")
    with atomic_path(pq_path) as tmp:
        table.to_parquet(tmp, index=False)
    return csv_path, pq_path


def folder_name(label) -> str:
    """A safe folder name for a category: no separators, no leading dots, never empty."""
    if label is None or (not isinstance(label, str) and pd.isna(label)):
        return UNLABELLED
    name = "".join("_" if c in '/\\:*?"<>|\0' else c for c in str(label).strip()).lstrip(".")
    return name or UNLABELLED




def sort_images(dataset: Dataset, images: pd.DataFrame, out_dir: str | os.PathLike, mode: str = "copy",
                progress=None) -> BatchReport:
    """Place each image into ``out_dir/Sorted/<primary label>/`` (``unlabelled`` when it has none).

    ``mode``: ``copy`` (atomic), ``hardlink`` (same disk only) or ``symlink`` (absolute target).
    Files already in place are counted as up to date; images missing on disk are skipped and
    reported.  Names are the file_name with folders joined by ``__`` so they never collide.
    """
    if mode not in SORT_MODES:
        raise TrailcamError(f"sort mode {mode!r}: use one of {', '.join(SORT_MODES)}")
    report = BatchReport("sort")
    cb = ensure(progress)
    sorted_root = Path(out_dir) / "Sorted"
    total = len(images)
    counts: dict[str, int] = {}
    for k, row in enumerate(images[["image_id", "file_name", "label"]].itertuples(index=False)):
        try:
            src = dataset.image_path(row.file_name)
        except UnsafePathError as exc:
            report.skip(row.file_name, str(exc))
            continue
        if not src.is_file():
            report.skip(row.file_name, f"missing on disk ({src})")
            cb(k + 1, total, row.file_name)
            continue
        folder = folder_name(row.label)
        dest = sorted_root / folder / flat_name(row.file_name)
        counts[folder] = counts.get(folder, 0) + 1
        if is_placed(src, dest, mode):
            report.up_to_date += 1
            cb(k + 1, total, row.file_name)
            continue
        try:
            place_file(src, dest, mode)
            report.processed += 1
        except OSError as exc:
            report.skip(row.file_name, f"{mode} failed: {exc.strerror or exc}")
        cb(k + 1, total, row.file_name)
    report.outputs["sorted"] = str(sorted_root)
    report.outputs["folders"] = len(counts)
    return report




def location_summary(dataset: Dataset) -> pd.DataFrame:
    """Images per location and label (for choosing a subset): rows locations, columns labels."""
    table = dataset.images.assign(label=dataset.images["label"].fillna(UNLABELLED))
    pivot = table.pivot_table(index="location", columns="label", values="image_id", aggfunc="count", fill_value=0)
    return pivot.loc[sort_locations(pivot.index)]
