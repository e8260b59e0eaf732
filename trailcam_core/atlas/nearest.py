"""Nearest real photographs of generated images, and whether a generation looks like a copy.

    idx, dist = knn(gen_vectors, real_vectors, k=5)       # exact, Euclidean, blockwise
    stats = copy_report(gen_dist[:, 0], real_nn)          # percentiles, flagged copies

Search is exact (every real photo is compared): float32 products in blocks of queries x base
rows, so memory is O(block^2) whatever the collection size, and a running top-k per query
(``torch.topk`` when torch is installed: about 9x faster than numpy's argpartition here).
The real photos' own nearest-neighbour distances (``real_nn_distances``) are measured on a seeded
sample of real photos against all of them (self excluded), which is what a generation's nearest-real
distance is compared with: a generation closer to its nearest real photo than the 1st percentile
of real-to-real nearest distances is closer than 99 % of real photos are to any other real photo,
so it is flagged as a likely copy.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from trailcam_core.base import TrailcamError


def knn(queries: np.ndarray, base: np.ndarray, k: int = 5, exclude_self: bool = False,
        query_index: Optional[np.ndarray] = None, q_block: int = 512, b_block: int = 32768
        ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``base`` for each row of ``queries``: (indices, distances), nearest first.

    ``exclude_self`` with ``query_index`` (the base row each query is) leaves a query's own row out.
    """
    q = np.asarray(queries, dtype=np.float32)
    b = np.asarray(base, dtype=np.float32)
    if q.ndim != 2 or b.ndim != 2:
        raise TrailcamError(f"nearest-neighbour search needs 2D arrays, got {q.shape} and {b.shape}")
    if q.shape[1] != b.shape[1]:
        raise TrailcamError(f"queries have {q.shape[1]} dimensions and the photos {b.shape[1]}: "
                            "they were embedded with different models")
    n = len(b)
    if n == 0:
        raise TrailcamError("no real photos to search")
    k = int(max(1, min(k, n - (1 if exclude_self else 0))))
    # torch.topk ranks about 9x faster than numpy's argpartition, but importing torch costs ~0.3 GB
    # of memory: use it when it is loaded anyway (CLIP embedding) or for searches big enough to matter
    import sys

    torch = sys.modules.get("torch")
    if torch is None and len(q) * n > 5e8:
        try:
            import torch
        except ImportError:
            torch = None
    bsq = np.einsum("ij,ij->i", b, b)
    out_i = np.empty((len(q), k), np.int64)
    out_d = np.empty((len(q), k), np.float32)
    for qs in range(0, len(q), q_block):
        qb = q[qs:qs + q_block]
        qsq = np.einsum("ij,ij->i", qb, qb)
        best_d = np.full((len(qb), k), np.inf, np.float32)
        best_i = np.full((len(qb), k), -1, np.int64)
        for bs in range(0, n, b_block):
            bb = b[bs:bs + b_block]
            if torch is not None:
                d = torch.from_numpy(bsq[None, bs:bs + b_block]) - 2.0 * (torch.from_numpy(qb) @ torch.from_numpy(bb).T)
            else:
                d = bsq[None, bs:bs + b_block] - 2.0 * (qb @ bb.T)
            if exclude_self and query_index is not None:
                own = np.asarray(query_index[qs:qs + q_block]) - bs
                rows = np.nonzero((own >= 0) & (own < d.shape[1]))[0]
                d[rows, own[rows]] = np.inf
            kk = min(k, d.shape[1])
            if torch is not None:
                vals, part = torch.topk(d, kk, dim=1, largest=False, sorted=False)
                vals, part = vals.numpy(), part.numpy()
            else:
                part = np.argpartition(d, kk - 1, axis=1)[:, :kk] if d.shape[1] > kk else \
                    np.broadcast_to(np.arange(d.shape[1]), (len(qb), d.shape[1]))
                vals = np.take_along_axis(d, part, axis=1)
            cand_d = np.concatenate([best_d, vals + qsq[:, None]], axis=1)
            cand_i = np.concatenate([best_i, part + bs], axis=1)
            sel = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
            best_d = np.take_along_axis(cand_d, sel, axis=1)
            best_i = np.take_along_axis(cand_i, sel, axis=1)
        out_i[qs:qs + q_block] = best_i
        out_d[qs:qs + q_block] = np.sqrt(np.maximum(best_d, 0.0))
    return out_i, out_d


def real_nn_distances(real: np.ndarray, sample: int = 2000, seed: int = 0) -> np.ndarray:
    """Distance from each of a seeded sample of real photos to its nearest other real photo."""
    n = len(real)
    if n < 2:
        raise TrailcamError("comparing with real photos needs at least 2 of them")
    rows = np.arange(n) if n <= sample else np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))
    _, d = knn(real[rows], real, k=1, exclude_self=True, query_index=rows)
    return d[:, 0]


def copy_report(nearest_real: np.ndarray, real_nn: np.ndarray, percentile: float = 1.0) -> dict:
    """Summary of one source's nearest-real distances against the real photos' own NN distances."""
    nearest_real = np.asarray(nearest_real, dtype=np.float64)
    real_nn = np.asarray(real_nn, dtype=np.float64)
    threshold = float(np.percentile(real_nn, percentile))
    q = (5, 25, 50, 75, 95)
    out = {"n": int(len(nearest_real)), "threshold": threshold, "threshold_percentile": percentile,
           "flagged": int((nearest_real < threshold).sum()),
           "real_nn_percentiles": {str(p): float(np.percentile(real_nn, p)) for p in q}}
    if len(nearest_real):
        out["nearest_real_percentiles"] = {str(p): float(np.percentile(nearest_real, p)) for p in q}
        out["median_ratio"] = float(np.median(nearest_real) / max(np.median(real_nn), 1e-12))
    return out
