"""Put n feature vectors on a rows x cols grid so that similar images sit together.

Two families, as in the literature:

* ``embed_2d`` (UMAP, t-SNE or PCA) then ``assign_points``: the 2D point cloud is matched to the
  grid cells, exactly with a linear assignment (scipy ``linear_sum_assignment``, what
  ImageRearranger does) when n is small enough, else by a recursive split of points and cells
  followed by local block assignments (memory O(n), no n x n matrix).
* ``sort_features``: features sorted straight onto the grid (Fast Linear Assignment Sorting,
  Barthel et al. 2023): vc-flas when installed, else the built-in ``las_sort`` (same idea: a
  smoothed map of the grid pulls each block of images to the cells whose neighbourhood they match,
  each block solved as a small linear assignment, the smoothing radius shrinking as it goes).

Cells are numbered row-major; images always occupy cells 0..n-1 of the grid's order, so when n
does not fill the rectangle the holes are the last cells of the last row.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

from trailcam_core.base import TrailcamError

ProgressFn = Optional[Callable[[float, str], None]]   # fraction 0..1, message


def grid_shape(n: int, aspect: float = 1.0, columns: int = 0) -> tuple[int, int]:
    """(rows, cols) for n images: ``columns`` if given, else cols/rows close to ``aspect`` (width/height)."""
    if n < 1:
        raise TrailcamError("a grid needs at least one image")
    if columns and columns > 0:
        cols = min(int(columns), n)
    else:
        if not aspect or aspect <= 0:
            raise TrailcamError(f"aspect ratio must be positive, got {aspect}")
        cols = max(1, min(n, round(math.sqrt(n * aspect))))
    rows = math.ceil(n / cols)
    return rows, cols


def cell_coords(n: int, cols: int) -> np.ndarray:
    """(n, 2) float array of (row, col) for cells 0..n-1."""
    idx = np.arange(n)
    return np.stack([idx // cols, idx % cols], axis=1).astype(np.float64)


# ----------------------------------------------------------------------------- 2D embeddings

def embed_2d(x: np.ndarray, method: str = "umap", seed: int = 0) -> np.ndarray:
    """Reduce (n, d) features to (n, 2) with ``umap``, ``tsne`` or ``pca`` (seeded, deterministic)."""
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    if n < 2:
        raise TrailcamError("a 2D embedding needs at least 2 images")
    if method == "pca" or n < 5:
        return pca(x, 2)
    if method == "umap":
        import warnings

        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), min_dist=0.1, random_state=seed,
                                init="spectral" if n > 10 else "random")
            return reducer.fit_transform(x).astype(np.float64)
    if method == "tsne":
        from sklearn.manifold import TSNE

        from threadpoolctl import threadpool_limits

        perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        # small jobs: OpenMP threads cost more than they give (10x slower on a busy 2-core machine)
        with threadpool_limits(1 if n < 5000 else None):
            return tsne.fit_transform(x).astype(np.float64)
    raise TrailcamError(f"unknown 2D embedding {method!r}; use umap, tsne or pca")


def pca(x: np.ndarray, k: int) -> np.ndarray:
    """Project onto the top-k principal axes (covariance eigendecomposition; O(n d^2), no n x n)."""
    x = np.asarray(x)
    dtype = np.float32 if x.dtype == np.float32 else np.float64    # float32 halves memory at 50,000 x 512
    xc = x.astype(dtype) - x.mean(axis=0, dtype=np.float64).astype(dtype)
    k = min(k, x.shape[1])
    if x.shape[1] > 1024:   # wide features (image pyramids: 4,080-d): a d x d eigh would take minutes
        from sklearn.utils.extmath import randomized_svd

        k_eff = min(k, len(x))
        _, _, vt = randomized_svd(xc, k_eff, n_oversamples=10, n_iter=4, random_state=0)
        out = (xc @ vt.T.astype(dtype)).astype(np.float64)
        return np.pad(out, ((0, 0), (0, k - k_eff))) if k_eff < k else out
    cov = (xc.T @ xc).astype(np.float64)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:k]
    out = (xc @ vecs[:, order].astype(dtype)).astype(np.float64)
    if out.shape[1] < k:
        out = np.pad(out, ((0, 0), (0, k - out.shape[1])))
    return out


def _normalise_to_cells(points: np.ndarray, n: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale points (x, y) into the bounding box of cells 0..n-1 (as (row, col)); return (pts, cells)."""
    cells = cell_coords(n, cols)
    p = np.asarray(points, dtype=np.float64)[:, ::-1].copy()    # (x, y) -> (row-ish y, col-ish x)
    lo, hi = p.min(axis=0), p.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    p = (p - lo) / span
    clo, chi = cells.min(axis=0), cells.max(axis=0)
    return p * (chi - clo) + clo, cells


def assign_points(points: np.ndarray, rows: int, cols: int, exact_limit: int = 4096,
                  progress: ProgressFn = None) -> np.ndarray:
    """Match (n, 2) points to cells 0..n-1; returns ``cell_of[i]`` for point i.

    Exact linear assignment on squared distances when n <= ``exact_limit`` (an n x n matrix, as
    ImageRearranger), else recursive split + local block assignment (O(n) memory).
    """
    n = len(points)
    if n > rows * cols:
        raise TrailcamError(f"{n} images do not fit a {rows} x {cols} grid")
    p, cells = _normalise_to_cells(points, n, cols)
    if n <= exact_limit:
        cost = ((p[:, None, :] - cells[None, :, :]) ** 2).sum(-1)
        r, c = linear_sum_assignment(cost)
        out = np.empty(n, dtype=np.int64)
        out[r] = c
        return out
    cell_of = split_assign(p, n, cols)
    return refine_blocks(cell_of, p, rows, cols, target="points", progress=progress)


# ----------------------------------------------------------------------------- recursive split

def split_assign(keys: np.ndarray, n: int, cols: int, leaf: int = 6) -> np.ndarray:
    """Recursively halve the set of cells along its longer side and the points along the matching
    direction (a coordinate for 2D points, the top principal axis for features).

    ``keys`` is (n, 2) for 2D points already scaled to cell coordinates, or (n, d) features.
    Returns ``cell_of[i]``; cost O(n log n * d).
    """
    cells = cell_coords(n, cols)
    cell_of = np.empty(n, dtype=np.int64)
    is_2d = keys.shape[1] == 2
    keys = np.asarray(keys, dtype=np.float32 if not is_2d else np.float64)
    stack = [(np.arange(n), np.arange(n))]
    rng = np.random.default_rng(0)
    while stack:
        pts, cls = stack.pop()
        if len(pts) == 1:
            cell_of[pts[0]] = cls[0]
            continue
        cc = cells[cls]
        extent = cc.max(axis=0) - cc.min(axis=0)
        axis = 0 if extent[0] >= extent[1] else 1     # split along rows (0) or columns (1)
        corder = np.lexsort((cc[:, 1 - axis], cc[:, axis]))
        half = len(cls) // 2
        if is_2d:
            proj = keys[pts, axis]
        else:
            proj = _principal_projection(keys[pts], rng)
        porder = np.argsort(proj, kind="stable")
        if len(pts) <= leaf:   # small leaves: one ordering (later refinement fixes the details)
            cell_of[pts[porder]] = cls[corder]
            continue
        stack.append((pts[porder[:half]], cls[corder[:half]]))
        stack.append((pts[porder[half:]], cls[corder[half:]]))
    return cell_of


def _principal_projection(x: np.ndarray, rng: np.random.Generator, iters: int = 8) -> np.ndarray:
    """Projection on the top principal axis by power iteration (cheap for large n, d)."""
    xc = x - x.mean(axis=0)
    if len(x) <= 2:
        return xc[:, 0] if xc.shape[1] else np.zeros(len(x))
    v = rng.standard_normal(x.shape[1]).astype(np.float32)
    for _ in range(iters):
        v = xc.T @ (xc @ v)
        norm = np.linalg.norm(v)
        if norm == 0:
            break
        v /= norm
    return xc @ v


# ----------------------------------------------------------------------------- local block refinement

def _box_filter(grid: np.ndarray, r: int) -> np.ndarray:
    """Sum over a (2r+1)^2 window (clipped at borders) of an (R, C, ...) array, via cumulative sums."""
    if r <= 0:
        return grid.copy()
    out = grid
    for axis in (0, 1):
        c = np.cumsum(out, axis=axis, dtype=np.float64 if out.dtype == np.float64 else np.float32)
        n = out.shape[axis]
        pad_shape = list(c.shape)
        pad_shape[axis] = 1
        c = np.concatenate([np.zeros(pad_shape, c.dtype), c], axis=axis)
        hi = np.minimum(np.arange(n) + r + 1, n)
        lo = np.maximum(np.arange(n) - r, 0)
        out = np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)
    return out


def refine_blocks(cell_of: np.ndarray, keys: np.ndarray, rows: int, cols: int, target: str = "features",
                  radius: Optional[float] = None, decay: float = 0.75, block: int = 4, seed: int = 0,
                  progress: ProgressFn = None) -> np.ndarray:
    """Improve an assignment by solving many small linear assignments in local blocks of cells.

    ``target="points"``: keys are 2D points in cell units and each block minimises the squared
    distance of points to their cells (a local optimal transport). ``target="features"``: keys are
    features and each block minimises the distance to a box-filtered map of the grid whose radius
    shrinks by ``decay`` per pass (Linear Assignment Sorting). Blocks are ``block`` x ``block``
    cells taken with a stride that grows with the radius, at a random offset each pass.
    """
    n = len(cell_of)
    ncell = rows * cols
    rng = np.random.default_rng(seed)
    pos = np.full(ncell, -1, dtype=np.int64)         # image at each cell (-1 = hole)
    pos[cell_of] = np.arange(n)
    keys = np.asarray(keys, dtype=np.float32)
    if target == "points":
        cells_yx = np.stack(np.divmod(np.arange(ncell), cols), axis=1).astype(np.float32)
        radii = [2.0, 1.0, 1.0, 1.0]
    else:
        r = radius if radius is not None else max(rows, cols) / 6.0
        radii = []
        while r >= 1.0:
            radii.append(r)
            r *= decay
        radii += [1.0, 1.0]
    total = len(radii)
    for it, r in enumerate(radii):
        stride = max(1, int(round(r / 2))) if target == "features" else 1
        if target == "features":
            grid = np.zeros((ncell, keys.shape[1]), np.float32)
            weight = np.zeros(ncell, np.float32)
            valid = pos >= 0
            grid[valid] = keys[pos[valid]]
            weight[valid] = 1.0
            rr = int(round(r))
            fsum = _box_filter(grid.reshape(rows, cols, -1), rr).reshape(ncell, -1)
            wsum = _box_filter(weight.reshape(rows, cols), rr).reshape(ncell)
            tmap = (fsum / np.maximum(wsum, 1e-6)[:, None]).astype(np.float32)
        else:
            tmap = cells_yx
        span = block * stride
        oy, ox = rng.integers(0, span), rng.integers(0, span)
        # all block origins with a random offset; each block = block x block cells at ``stride``
        ys = np.arange(-oy, rows, span)
        xs = np.arange(-ox, cols, span)
        by, bx = np.meshgrid(ys, xs, indexing="ij")
        origins = np.stack([by.ravel(), bx.ravel()], axis=1)
        sub = np.arange(block) * stride
        for dy in range(stride):
            for dx in range(stride):
                cy = origins[:, 0:1, None] + dy + sub[None, :, None]          # (B, block, 1)
                cx = origins[:, 1:2, None] + dx + sub[None, None, :]          # (B, 1, block)
                cy, cx = np.broadcast_arrays(cy, cx)
                inside = (cy >= 0) & (cy < rows) & (cx >= 0) & (cx < cols)
                cid = np.where(inside, cy * cols + cx, -1).reshape(len(origins), -1)
                _solve_blocks(cid, pos, keys, tmap)
        if progress:
            progress((it + 1) / total, f"sorting pass {it + 1}/{total}")
    out = np.empty(n, dtype=np.int64)
    valid = pos >= 0
    out[pos[valid]] = np.nonzero(valid)[0]
    return out


def _solve_blocks(cid: np.ndarray, pos: np.ndarray, keys: np.ndarray, tmap: np.ndarray) -> None:
    """For each row of cell ids (-1 = outside), permute the images among that row's occupied cells."""
    k = cid.shape[1]
    safe = np.where(cid >= 0, cid, 0)
    img = np.where(cid >= 0, pos[safe], -1)
    occupied = img >= 0
    counts = occupied.sum(axis=1)
    full = counts == k
    if full.any():  # the common case, batched: (B, k, d) against (B, k, d)
        c_full = safe[full]
        i_full = img[full]
        a = keys[i_full]
        b = tmap[c_full]
        cost = (np.einsum("bkd,bkd->bk", a, a)[:, :, None] - 2 * np.einsum("bkd,bjd->bkj", a, b)
                + np.einsum("bjd,bjd->bj", b, b)[:, None, :])
        for cells_b, imgs_b, cost_b in zip(c_full, i_full, cost):
            r, c = linear_sum_assignment(cost_b)
            pos[cells_b[c]] = imgs_b[r]
    for row in np.nonzero(~full & (counts > 1))[0]:
        cells_b = cid[row][occupied[row]]
        imgs_b = img[row][occupied[row]]
        a, b = keys[imgs_b], tmap[cells_b]
        cost = (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]
        r, c = linear_sum_assignment(cost)
        pos[cells_b[c]] = imgs_b[r]


# ----------------------------------------------------------------------------- feature sorting

def las_sort(x: np.ndarray, rows: int, cols: int, seed: int = 0, dims: int = 64,
             progress: ProgressFn = None) -> np.ndarray:
    """Built-in sorter: PCA to ``dims``, recursive principal-axis split, then block LAS passes.

    Tuned on clustered 512-d features (N = 2,500): blocks of 5 x 5, radius from a quarter of the
    grid side shrinking by 0.85 per pass.
    """
    n = len(x)
    xr = pca(x, min(dims, x.shape[1])).astype(np.float32) if x.shape[1] > dims else np.asarray(x, np.float32)
    cell_of = split_assign(xr, n, cols)
    return refine_blocks(cell_of, xr, rows, cols, target="features", radius=max(rows, cols) / 4.0, decay=0.85,
                         block=5, seed=seed, progress=progress)


def flas_available() -> bool:
    try:
        import vc_flas  # noqa: F401
    except Exception:
        return False
    return True


def flas_sort(x: np.ndarray, rows: int, cols: int, seed: int = 0, dims: int = 128,
              progress: ProgressFn = None) -> np.ndarray:
    """vc-flas Fast Linear Assignment Sorting onto cells 0..n-1 (holes frozen at the end)."""
    import vc_flas

    n = len(x)
    x = np.asarray(x, dtype=np.float32)
    # FLAS cost grows with the dimension; the top 128 principal components keep its quality
    # (DPQ16 0.8766 -> 0.8765 on 2,500 clustered 512-d features) at a fraction of the time.
    if x.shape[1] > dims:
        x = pca(x, dims).astype(np.float32)
    # Start FLAS from the principal-axis split: from input order vc-flas 0.1.7 can leave small or
    # odd-sized grids almost unsorted (two clusters came out as a checkerboard, DPQ 0.06 -> 0.9).
    order = np.argsort(split_assign(x, n, cols))          # order[cell] = image
    grid = vc_flas.Grid.from_features(np.ascontiguousarray(x[order]), size=(rows, cols), freeze_holes=True)

    stop: list[BaseException] = []

    def callback(fraction: float) -> bool:
        # never let an exception (a Cancelled from the progress callback) cross the C++ boundary
        if progress and not stop:
            try:
                f = float(fraction)
                progress(min(1.0, max(0.0, f)) if math.isfinite(f) else 0.0, "FLAS sorting")
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                stop.append(exc)
        return bool(stop)

    arrangement = vc_flas.flas(grid, seed=int(seed), callback=callback)
    if stop:
        raise stop[0]
    sorting = np.asarray(arrangement.sorting).reshape(-1)
    cell_of = np.empty(n, dtype=np.int64)
    valid = sorting >= 0
    cell_of[order[sorting[valid]]] = np.nonzero(valid)[0]
    if set(np.nonzero(valid)[0].tolist()) != set(range(n)):  # holes must stay at the end
        order = np.argsort(cell_of, kind="stable")
        cell_of[order] = np.arange(n)
    return cell_of


def sort_features(x: np.ndarray, rows: int, cols: int, seed: int = 0, engine: str = "auto",
                  progress: ProgressFn = None) -> tuple[np.ndarray, str]:
    """Sort features onto the grid; returns (cell_of, engine used: "vc-flas" or "las")."""
    if engine in ("auto", "vc-flas") and flas_available() and min(rows, cols) >= 2:   # vc-flas needs 2 x 2
        return flas_sort(x, rows, cols, seed, progress=progress), "vc-flas"
    if engine == "vc-flas":
        raise TrailcamError("vc-flas is not installed (it needs Python < 3.13); use the built-in sorter")
    return las_sort(x, rows, cols, seed, progress=progress), "las"
