"""Whole-collection layout: a quarter of a million images on one grid in under a minute.

``atlas_layout`` sorts the features with vc-flas (the built-in block sorter when vc-flas is not
installed); above ``REDUCE_ABOVE`` images it first reduces them to ``dims`` principal components
blockwise (no centred copy of the whole matrix) and lets FLAS make more, cheaper passes. Measured on 243,100 clustered 512-d features (benchmarks/bench_mosaic.py): 64
components keep raw vc-flas's DPQ16 at about a seventh of its CPU time, because FLAS's cost grows
with the dimension while the neighbourhoods that DPQ16 rewards live in the top components.

``spare`` leaves free cells spread over the grid (holes that FLAS sorts along with the images), so
that images added later (``place_new``) land next to the photos they resemble instead of at the
end of the last row.

``place_new`` puts new items into free cells nearest the cells of their nearest placed
neighbours, by one linear assignment (squared grid distance), without moving any placed item;
the grid grows by whole rows at the bottom when free cells run out (placed cells keep their
row and column).
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

import numpy as np

from trailcam_core.base import TrailcamError
from trailcam_core.mosaic import flas_available, grid_shape, las_sort, split_assign

ProgressFn = Optional[Callable[[float, str], None]]

#: Above this many images the principal-axis split that seeds vc-flas on small grids is skipped:
#: at whole-collection size FLAS's own coarse passes order the grid and the split costs more than it gives.
SPLIT_INIT_LIMIT = 20000
#: Above this many images the features are reduced to ``dims`` principal components: below it raw
#: vc-flas costs under half a minute (50,000 x 512-d: 21 s CPU) and PCA-64 would cost DPQ16 (0.844 -> 0.837).
REDUCE_ABOVE = 100_000
#: FLAS's filter-radius decay per pass above REDUCE_ABOVE: slower than vc-flas's 0.93, more passes on
#: the cheap 64-d features (243,100 clustered features: DPQ16 0.838 -> 0.846 for about 1.6x the time).
LARGE_RADIUS_DECAY = 0.95


def principal_axes(x: np.ndarray, k: int, block: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """(mean (d,), axes (d, k)) of the top-``k`` principal components, reading ``x`` in row blocks.

    Memory beyond the inputs is O(block * d + d * d): the covariance is accumulated in float64 and
    no centred copy of the whole matrix is made (what ``mosaic.layout.pca`` does).
    """
    n, d = x.shape
    k = min(k, d)
    mean = np.zeros(d, np.float64)
    for s in range(0, n, block):
        mean += x[s:s + block].sum(axis=0, dtype=np.float64)
    mean /= n
    cov = np.zeros((d, d), np.float64)
    for s in range(0, n, block):
        b = x[s:s + block].astype(np.float64) - mean
        cov += b.T @ b
    vals, vecs = np.linalg.eigh(cov)
    return mean.astype(np.float32), vecs[:, np.argsort(vals)[::-1][:k]].astype(np.float32)


def project(x: np.ndarray, mean: np.ndarray, axes: np.ndarray, block: int = 16384) -> np.ndarray:
    """``(x - mean) @ axes`` in row blocks, float32."""
    out = np.empty((len(x), axes.shape[1]), np.float32)
    for s in range(0, len(x), block):
        out[s:s + block] = (np.asarray(x[s:s + block], np.float32) - mean) @ axes
    return out


def pca_blockwise(x: np.ndarray, k: int, block: int = 16384) -> np.ndarray:
    """Top-``k`` principal components of (n, d) ``x`` as float32 (see ``principal_axes``)."""
    mean, axes = principal_axes(x, k, block)
    return project(x, mean, axes, block)


def atlas_layout(x: np.ndarray, rows: int, cols: int, dims: int = 64, seed: int = 0, engine: str = "auto",
                 free_cells_sorted: bool = False, progress: ProgressFn = None) -> tuple[np.ndarray, str, dict]:
    """Sort n feature rows onto a ``rows`` x ``cols`` grid; returns (cell_of, engine, timings).

    ``free_cells_sorted``: let the grid's free cells move with the sorting (spread among the
    images) instead of staying at the end of the last row.
    """
    n = len(x)
    if n < 2:
        raise TrailcamError(f"an atlas needs at least 2 images, got {n}")
    if rows * cols < n:
        raise TrailcamError(f"{n} images do not fit a {rows} x {cols} grid")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    # small sets sort their full features (cheap there); whole collections their top components
    reduce = x.shape[1] > dims and n > REDUCE_ABOVE
    xr = pca_blockwise(x, dims) if reduce else np.ascontiguousarray(x, dtype=np.float32)
    timings["pca"] = time.perf_counter() - t
    t = time.perf_counter()
    use_flas = engine in ("auto", "vc-flas") and flas_available() and min(rows, cols) >= 2
    if engine == "vc-flas" and not use_flas:
        raise TrailcamError("vc-flas is not installed (it needs Python < 3.13); use the built-in sorter (las)")
    if use_flas:
        cell_of = _flas(xr, rows, cols, seed, free_cells_sorted, progress)
        name = f"vc-flas on {xr.shape[1]} principal components" if reduce else "vc-flas"
    else:
        if free_cells_sorted:     # the built-in sorter keeps holes at the end; spread them afterwards
            cell_of = _spread_holes(las_sort(xr, *grid_shape(n, columns=cols), seed=seed, progress=progress),
                                    n, rows, cols)
        else:
            cell_of = las_sort(xr, rows, cols, seed=seed, progress=progress)
        name = f"las on {xr.shape[1]} principal components" if reduce else "las"
    timings["sorting"] = time.perf_counter() - t
    return np.asarray(cell_of, np.int64), name, timings


def _flas(xr: np.ndarray, rows: int, cols: int, seed: int, move_holes: bool, progress: ProgressFn) -> np.ndarray:
    import vc_flas

    n = len(xr)
    order = np.argsort(split_assign(xr, n, cols)) if n <= SPLIT_INIT_LIMIT else np.arange(n)
    grid = vc_flas.Grid.from_features(np.ascontiguousarray(xr[order]), size=(rows, cols),
                                      freeze_holes=not move_holes)
    stop: list[BaseException] = []

    def callback(fraction: float) -> bool:
        if progress and not stop:   # never let an exception cross the C++ boundary
            try:
                f = float(fraction)
                progress(min(1.0, max(0.0, f)) if math.isfinite(f) else 0.0, "FLAS sorting")
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                stop.append(exc)
        return bool(stop)

    decay = LARGE_RADIUS_DECAY if n > REDUCE_ABOVE else 0.93
    arrangement = vc_flas.flas(grid, seed=int(seed), callback=callback, radius_decay=decay)
    if stop:
        raise stop[0]
    sorting = np.asarray(arrangement.sorting).reshape(-1)
    cell_of = np.full(n, -1, dtype=np.int64)
    valid = sorting >= 0
    cell_of[order[sorting[valid]]] = np.nonzero(valid)[0]
    if (cell_of < 0).any():
        raise TrailcamError("vc-flas lost images while sorting (a bug in the sorter); retry with engine las")
    return cell_of


def _spread_holes(cell_of: np.ndarray, n: int, rows: int, cols: int) -> np.ndarray:
    """Map a compact layout (cells 0..n-1 of a grid ``cols`` wide) onto ``rows`` rows, spreading the
    extra rows' free cells evenly: row r of the compact grid goes to row round(r * rows / rows_c)."""
    rows_c = math.ceil(n / cols)
    r, c = np.divmod(cell_of, cols)
    target = np.floor(r * rows / rows_c).astype(np.int64)
    return target * cols + c


def place_new(new_vectors: np.ndarray, placed_vectors: np.ndarray, placed_cells: np.ndarray, rows: int, cols: int,
              k: int = 3, grow: bool = True) -> tuple[np.ndarray, int]:
    """Cells for new items near their nearest placed neighbours; returns (cells, rows after growing).

    Each new item aims at the inverse-distance weighted mean cell of its ``k`` nearest placed items
    (features, exact search);
    the free cells are then assigned by one linear assignment on squared grid distance to the aim.
    """
    from scipy.optimize import linear_sum_assignment

    from trailcam_core.atlas.nearest import knn

    m = len(new_vectors)
    if m == 0:
        return np.zeros(0, np.int64), rows
    idx, dist = knn(new_vectors, placed_vectors, k=min(k, len(placed_vectors)))
    cy, cx = np.divmod(placed_cells[idx], cols)
    w = 1.0 / (dist.astype(np.float64) + 1e-3 * (dist.mean() + 1e-12))     # the nearest pulls hardest
    w /= w.sum(1, keepdims=True)
    aim = np.stack([(cy * w).sum(1), (cx * w).sum(1)], axis=1)
    occupied = np.zeros(rows * cols, bool)
    occupied[placed_cells] = True
    free = np.nonzero(~occupied)[0]
    if len(free) < m:
        if not grow:
            raise TrailcamError(f"{m} new images but only {len(free)} free cells (let the grid grow, or re-lay out)")
        extra = math.ceil((m - len(free)) / cols)
        free = np.concatenate([free, np.arange(rows * cols, (rows + extra) * cols)])
        rows += extra
    fy, fx = np.divmod(free, cols)
    # candidates: for large sets keep, per item, only the free cells of a local window (sparse cost)
    if m * len(free) <= 4_000_000:
        cost = (aim[:, 0:1] - fy[None]) ** 2 + (aim[:, 1:2] - fx[None]) ** 2
        r, c = linear_sum_assignment(cost)
        cells = np.empty(m, np.int64)
        cells[r] = free[c]
        return cells, rows
    # greedy fallback for very large additions: items in order of how crowded their aim is
    taken = np.zeros(len(free), bool)
    cells = np.empty(m, np.int64)
    for i in range(m):
        dist = (aim[i, 0] - fy) ** 2 + (aim[i, 1] - fx) ** 2
        dist[taken] = np.inf
        j = int(np.argmin(dist))
        taken[j] = True
        cells[i] = free[j]
    return cells, rows
