"""Distance Preservation Quality DPQ_p of a grid layout (Barthel, Hezel, Jung, Schall 2023).

For each image i the other images are ranked twice: by feature distance (the ideal order) and
by grid distance (ties broken by feature distance). ``D_k`` is the mean feature distance to the
first k of a ranking, averaged over all i; the gain ``dDP_k = max(0, (mean_d - D_k) / mean_d)``
(mean_d = mean of all pairwise distances). Then

    DPQ_p = || dDP_k(grid) ||_p / || dDP_k(ideal) ||_p,     k = 1 .. n-1

1.0 means every image's grid neighbours are its nearest neighbours in feature space; a random
layout scores about 0.1-0.2. p = 16 (the paper's choice) weighs the nearest neighbours most.

Rows (the images i) are processed in blocks, so memory is O(block * n), never n x n; above
``exact_limit`` images a seeded random sample of rows estimates the means (all n columns are
still used, so each row's ranking is exact).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from trailcam_core.base import TrailcamError


def dpq(features: np.ndarray, cell_of: np.ndarray, cols: int, p: float = 16, sample: Optional[int] = None,
        exact_limit: int = 6000, block: int = 256, seed: int = 0) -> float:
    """DPQ_p of placing ``features[i]`` at row-major cell ``cell_of[i]`` of a grid ``cols`` wide.

    ``sample``: number of rows to use (default: all when n <= exact_limit, else 1,000).
    Example: ``dpq(vectors, layout.cell_of, layout.cols)`` -> 0.87.
    """
    x = np.asarray(features)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    n = len(x)
    if n < 3:
        raise TrailcamError("DPQ needs at least 3 images")
    cell_of = np.asarray(cell_of, dtype=np.int64)
    gy, gx = np.divmod(cell_of, cols)
    g = np.stack([gy, gx], axis=1).astype(np.float64)
    if sample is None:
        sample = n if n <= exact_limit else 1000
    block = max(8, min(block, int(5e6 // n)))     # block x n float64 arrays stay around 40 MB
    rows_idx = np.arange(n) if sample >= n else np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
    exact = len(rows_idx) >= n
    # Never a copy of the whole matrix: rows are taken per block; exact runs (small n) in float64,
    # sampled runs (large n) in the features' own dtype (float32 products: half the cost)
    xe = x.astype(np.float64) if exact else x       # exact: n x n work anyway, a float64 copy is small
    sq = np.einsum("ij,ij->i", xe, xe, dtype=np.float64)

    acc_hd = np.zeros(n - 1)       # sum over rows of the sorted distances, ideal ranking
    acc_2d = np.zeros(n - 1)       # same, grid ranking (cumulative means are linear: cumsum at the end)
    total_d = 0.0
    for start in range(0, len(rows_idx), block):
        idx = rows_idx[start:start + block]
        dot = (xe[idx] @ xe.T).astype(np.float64, copy=False)
        d = np.sqrt(np.maximum(sq[idx, None] - 2 * dot + sq[None, :], 0.0))
        del dot
        d[np.arange(len(idx)), idx] = 0.0
        total_d += d.sum()
        # ideal: drop self (distance 0 sorts first; duplicates at 0 are equivalent)
        acc_hd += np.sort(d, axis=1)[:, 1:].sum(0)
        # grid: order by grid distance, ties by feature distance; exclude self explicitly
        gd = ((g[idx, None, :] - g[None, :, :]) ** 2).sum(-1)
        dmax = d.max() * 1.0001 + 1e-12
        key = gd + d / dmax
        del gd
        key[np.arange(len(idx)), idx] = -1.0
        order = np.argsort(key, axis=1)[:, 1:]
        del key
        acc_2d += np.take_along_axis(d, order, axis=1).sum(0)
    ks = np.arange(1, n, dtype=np.float64)
    sum_hd, sum_2d = np.cumsum(acc_hd) / ks, np.cumsum(acc_2d) / ks
    m = len(rows_idx)
    mean_d = total_d / (m * (n - 1))
    if mean_d <= 0:
        return 1.0   # all images identical: every layout is perfect
    dk_hd, dk_2d = sum_hd / m, sum_2d / m
    gain_hd = np.clip((mean_d - dk_hd) / mean_d, 0, None)
    gain_2d = np.clip((mean_d - dk_2d) / mean_d, 0, None)
    denom = _pnorm(gain_hd, p)
    return float(_pnorm(gain_2d, p) / denom) if denom > 0 else 1.0


def _pnorm(v: np.ndarray, p: float) -> float:
    scale = v.max()
    if scale <= 0:
        return 0.0
    return float(scale * np.power(np.power(v / scale, p).sum(), 1.0 / p))
