"""Filters, sorting and counts of the culling view, on the collection's columns (no Python loop per row).

A :class:`Query` combines any of: values of each facet (species, time of day, artifact, info bar,
location, camera), a glitch-score range, a date range, hours of the day, the flag (favourites,
rejects, unflagged, not rejected), a minimum of stars; and one sort (capture time, glitch score,
stars, file, or similarity to an image).  :func:`run_query` returns the matching rows in order and,
for every facet value, how many images would match with that facet's own filter left out (the
counts a sidebar shows next to each checkbox, as FiftyOne and Lightroom do).

    result = run_query(col, Query(species=["coyote"], flag="unflagged", sort="time"))
    result.rows[:10], result.total, result.counts["location"]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd

from trailcam_core.base import TrailcamError
from trailcam_core.cull.collection import FACETS, Collection

FLAGS = ("any", "favorite", "reject", "unflagged", "not-rejected", "picked")
SORTS = ("time", "-time", "glitch", "-glitch", "stars", "file", "similar", "burst")


@dataclass
class Query:
    """One view of the collection: filters (all combined with AND) and a sort."""

    species: list[str] = field(default_factory=list)
    time_of_day: list[str] = field(default_factory=list)
    artifact: list[str] = field(default_factory=list)
    info_bar: list[str] = field(default_factory=list)
    location: list[str] = field(default_factory=list)
    camera: list[str] = field(default_factory=list)
    glitch_min: Optional[float] = None
    glitch_max: Optional[float] = None
    date_from: Optional[str] = None          # "2012-03-17" (inclusive)
    date_to: Optional[str] = None            # inclusive: the whole day counts
    hours: list[int] = field(default_factory=list)
    flag: str = "any"
    min_stars: int = 0
    sort: str = "time"
    similar_to: Optional[str] = None
    stack_bursts: bool = False               # one tile per burst (its first frame)
    expanded: list[int] = field(default_factory=list)   # bursts shown in full while stacked

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Query":
        """A query from JSON (the web face); unknown keys and bad values are clear errors."""
        known = set(cls.__dataclass_fields__)
        bad = set(d) - known
        if bad:
            raise TrailcamError(f"unknown filter {sorted(bad)[0]!r}; known: {', '.join(sorted(known))}")
        q = cls(**{k: v for k, v in d.items() if v is not None or k in ("glitch_min", "glitch_max")})
        q.check()
        return q

    def check(self) -> None:
        if self.flag not in FLAGS:
            raise TrailcamError(f"unknown flag filter {self.flag!r}; use one of {', '.join(FLAGS)}")
        if self.sort not in SORTS:
            raise TrailcamError(f"unknown sort {self.sort!r}; use one of {', '.join(SORTS)}")
        if not 0 <= int(self.min_stars) <= 5:
            raise TrailcamError(f"min_stars must be 0 to 5, got {self.min_stars!r}")
        for name in FACETS:
            if not isinstance(getattr(self, name), (list, tuple)):
                raise TrailcamError(f"filter {name} must be a list of values")
        for name in ("date_from", "date_to"):
            v = getattr(self, name)
            if v:
                try:
                    pd.Timestamp(v)
                except ValueError:
                    raise TrailcamError(f"{name} {v!r} is not a date (write 2012-03-17)") from None
        if self.sort == "similar" and not self.similar_to:
            raise TrailcamError("sort by similarity needs an image (similar_to)")


@dataclass
class QueryResult:
    rows: np.ndarray                         # row numbers of the collection, in view order
    total: int                               # images in the collection
    matched: int                             # images matching the filters (before stacking)
    counts: dict[str, dict[str, int]]        # facet -> value -> count (others' filters applied)
    flag_counts: dict[str, int]
    burst_size: np.ndarray                   # per row of ``rows``: frames in its burst (in the filter)


def _facet_mask(df: pd.DataFrame, name: str, values: list[str]) -> Optional[np.ndarray]:
    if not values:
        return None
    cat = df[name].cat
    codes = cat.codes.to_numpy()
    wanted = np.flatnonzero(np.isin(np.asarray(cat.categories, dtype=object), np.asarray(values, dtype=object)))
    if not len(wanted):
        return np.zeros(len(df), dtype=bool)
    lut = np.zeros(len(cat.categories) + 1, dtype=bool)
    lut[wanted] = True
    return lut[codes]                                   # code -1 (missing) maps to the extra False slot


def flag_mask(df: pd.DataFrame, flag: str) -> Optional[np.ndarray]:
    fav, rej = df["favorite"].to_numpy(), df["reject"].to_numpy()
    return {"any": None, "favorite": fav, "reject": rej, "unflagged": ~fav & ~rej, "not-rejected": ~rej,
            "picked": fav | (df["stars"].to_numpy() > 0)}[flag]


def _other_masks(df: pd.DataFrame, q: Query) -> Optional[np.ndarray]:
    """Everything but the facets and the flag: scores, dates, hours, stars."""
    m = np.ones(len(df), dtype=bool)
    if q.glitch_min is not None:
        m &= df["glitch"].to_numpy() >= float(q.glitch_min)
    if q.glitch_max is not None:
        m &= df["glitch"].to_numpy() <= float(q.glitch_max)
    t = df["datetime"].to_numpy()
    if q.date_from:
        m &= t >= np.datetime64(pd.Timestamp(q.date_from))
    if q.date_to:
        m &= t < np.datetime64(pd.Timestamp(q.date_to) + pd.Timedelta(days=1))
    if q.hours:
        m &= np.isin(df["datetime"].dt.hour.to_numpy(), np.asarray(q.hours, dtype=np.int64))
    if q.min_stars:
        m &= df["stars"].to_numpy() >= int(q.min_stars)
    return m


def _counts(df: pd.DataFrame, name: str, mask: np.ndarray) -> dict[str, int]:
    cat = df[name].cat
    codes = cat.codes.to_numpy()[mask]
    n = np.bincount(codes[codes >= 0], minlength=len(cat.categories))
    return {str(c): int(k) for c, k in zip(cat.categories, n) if k}


def run_query(col: Collection, q: Query, similarity: Optional[np.ndarray] = None) -> QueryResult:
    """Filter, count and sort (see the module doc). ``similarity``: one score per row for sort=similar."""
    q.check()
    df = col.df
    masks = {name: _facet_mask(df, name, getattr(q, name)) for name in FACETS}
    base = _other_masks(df, q)
    fm = flag_mask(df, q.flag)
    facet_all = base.copy()
    for m in masks.values():
        if m is not None:
            facet_all &= m
    counts = {}
    for name in FACETS:
        others = base.copy()
        for other, m in masks.items():
            if other != name and m is not None:
                others &= m
        if fm is not None:
            others &= fm
        counts[name] = _counts(df, name, others)
    flag_counts = {f: int(facet_all.sum()) if (m := flag_mask(df, f)) is None else int((facet_all & m).sum())
                   for f in FLAGS}
    mask = facet_all if fm is None else facet_all & fm
    rows = np.flatnonzero(mask)
    if q.sort in ("time", "-time"):
        order = col.time_order()                      # sorted once; a filter only picks from it
        rows = order[mask[order]]
        rows = rows if q.sort == "time" else rows[::-1]
    elif q.sort in ("glitch", "-glitch"):
        g = np.nan_to_num(df["glitch"].to_numpy()[rows], nan=-1.0)
        order = np.argsort(-g if q.sort == "glitch" else g, kind="stable")
        rows = rows[order]
    elif q.sort == "stars":
        rows = rows[np.argsort(-df["stars"].to_numpy()[rows].astype(np.int16), kind="stable")]
    elif q.sort == "file":
        rows = rows[np.argsort(df["path"].to_numpy()[rows], kind="stable")]
    elif q.sort == "burst":
        rows = rows[np.lexsort((df["frame"].to_numpy()[rows], df["burst"].to_numpy()[rows]))]
    elif q.sort == "similar":
        if similarity is None:
            raise TrailcamError("no similarity scores to sort by")
        rows = rows[np.argsort(-similarity[rows], kind="stable")]
    burst = df["burst"].to_numpy()
    sizes = np.bincount(burst[mask], minlength=int(burst.max()) + 1 if len(burst) else 0)
    matched = len(rows)
    if q.stack_bursts and len(rows):
        b = burst[rows]
        _, first = np.unique(b, return_index=True)
        keep = np.zeros(len(rows), dtype=bool)
        keep[first] = True
        if q.expanded:
            keep |= np.isin(b, np.asarray(q.expanded, dtype=np.int64))
        rows = rows[keep]
    return QueryResult(rows, len(df), matched, counts, flag_counts, sizes[burst[rows]] if len(rows) else
                       np.zeros(0, np.int64))
