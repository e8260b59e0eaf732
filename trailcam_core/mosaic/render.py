"""Draw a grid layout: the mosaic image, a tile pyramid for the viewer, and the 2D scatter plot."""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image, ImageOps

from trailcam_core.base import atomic_path, TrailcamError

# Pillow's decompression-bomb guard stays on for every input: our own large pictures are made
# with Image.new (never checked) and saved under the guard's limit (save_image), so nothing here
# needs it lifted.

ProgressFn = Optional[Callable[[int, int, str], None]]
TILE = 512   # viewer tile side in pixels


def load_thumbnail(path: str | os.PathLike, size: int) -> Optional[Image.Image]:
    """Square, centre-cropped RGB thumbnail of ``size`` px; None when the file cannot be read."""
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("RGB", (size * 2, size * 2))
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                bg = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
                img = Image.alpha_composite(bg, rgba)
            return ImageOps.fit(img.convert("RGB"), (size, size), Image.BILINEAR)
    except Exception:
        return None


def render_mosaic(files: Sequence[str], cell_of: np.ndarray, rows: int, cols: int, tile: int,
                  background: str = "#181818", workers: int = 4, keep: Optional[set[int]] = None,
                  progress: ProgressFn = None) -> tuple[Image.Image, dict[int, Image.Image], list[int]]:
    """Paste a ``tile``-px thumbnail of ``files[i]`` at cell ``cell_of[i]``.

    Returns (mosaic, {i: thumbnail} for i in ``keep``, indices that failed to load).
    """
    if rows * cols * tile * tile > 1.2e9:
        raise TrailcamError(f"a {cols} x {rows} mosaic of {tile}-px tiles is too large to draw; use a smaller --tile")
    canvas = Image.new("RGB", (cols * tile, rows * tile), background)
    kept: dict[int, Image.Image] = {}
    failed: list[int] = []
    n = len(files)
    def bounded(pool, chunk: int = 1024):
        # never queue all N jobs at once: one chunk of thumbnails in flight at a time
        for s in range(0, n, chunk):
            yield from pool.map(lambda f: load_thumbnail(f, tile), files[s:s + chunk])

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, thumb in enumerate(bounded(pool)):
            if thumb is None:
                failed.append(i)
            else:
                r, c = divmod(int(cell_of[i]), cols)
                canvas.paste(thumb, (c * tile, r * tile))
                if keep is not None and i in keep:
                    kept[i] = thumb
            if progress and (i % 256 == 0 or i == n - 1):
                progress(i + 1, n, "drawing mosaic")
    return canvas, kept, failed


def save_image(img: Image.Image, dest: Path, max_side: int = 16384, quality: int = 90) -> tuple[Path, float]:
    """Save atomically, scaled down to fit ``max_side`` if needed; returns (path, scale applied).

    The saved picture also stays within Pillow's decompression-bomb limit, so that it opens again
    (in ComfyUI, the app, any Pillow tool) without lifting the guard for everyone.
    """
    limit = Image.MAX_IMAGE_PIXELS or float("inf")
    scale = min(1.0, max_side / max(img.size), math.sqrt(limit / (img.width * img.height)) * 0.999)
    if scale < 1.0:
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.BILINEAR,
                         reducing_gap=2.0)
    with atomic_path(dest) as tmp:
        if dest.suffix.lower() in (".jpg", ".jpeg"):
            img.save(tmp, format="JPEG", quality=quality, optimize=False)
        else:
            img.save(tmp, format="PNG")
    return dest, scale


def write_tile_pyramid(img: Image.Image, folder: Path, tile: int = TILE, quality: int = 85) -> list[dict]:
    """Cut ``img`` into ``tile``-px JPEG tiles at every zoom level (halving until one tile fits).

    Files: ``folder/<level>/<x>_<y>.jpg``; level 0 is full resolution. Returns the level list
    ``[{"level", "scale", "width", "height", "nx", "ny"}]`` the viewer reads.
    """
    levels = []
    level = 0
    current = img
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        nx, ny = math.ceil(current.width / tile), math.ceil(current.height / tile)
        d = folder / str(level)
        d.mkdir(parents=True, exist_ok=True)
        for ty in range(ny):
            for tx in range(nx):
                box = (tx * tile, ty * tile, min(current.width, (tx + 1) * tile), min(current.height, (ty + 1) * tile))
                with atomic_path(d / f"{tx}_{ty}.jpg") as tmp:
                    current.crop(box).save(tmp, format="JPEG", quality=quality)
        levels.append({"level": level, "scale": 1.0 / (2 ** level), "width": current.width, "height": current.height,
                       "nx": nx, "ny": ny})
        if nx <= 1 and ny <= 1:
            break
        current = current.resize((max(1, current.width // 2), max(1, current.height // 2)), Image.BILINEAR,
                                 reducing_gap=2.0)
        level += 1
    return levels


def spread_sample(points: np.ndarray, k: int, seed: int = 0) -> list[int]:
    """Up to k indices spread over the 2D point cloud (one per occupied cell of a coarse grid)."""
    n = len(points)
    if n <= k:
        return list(range(n))
    side = max(1, int(math.sqrt(k)))
    lo, hi = points.min(0), points.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1)
    b = np.minimum(((points - lo) / span * side).astype(int), side - 1)
    key = b[:, 0] * side + b[:, 1]
    order = np.random.default_rng(seed).permutation(n)
    _, first = np.unique(key[order], return_index=True)
    return sorted(order[first].tolist())[:k]


def scatter_plot(points: np.ndarray, labels: Sequence[Optional[str]], thumbs: dict[int, Image.Image], dest: Path,
                 title: str = "", thumb_px: int = 40, dpi: int = 100) -> Path:
    """The 2D embedding as dots coloured by label, with thumbnails of a spread-out sample on top."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    pts = np.asarray(points, dtype=float)
    fig, ax = plt.subplots(figsize=(12, 12), dpi=dpi)
    names = [lab if lab else "unlabelled" for lab in labels]
    uniq = sorted(set(names))
    cmap = plt.get_cmap("tab20")
    size = max(2.0, min(30.0, 20000.0 / max(1, len(pts))))
    for j, name in enumerate(uniq[:20]):
        m = np.array([nm == name for nm in names])
        ax.scatter(pts[m, 0], pts[m, 1], s=size, color=cmap(j % 20), label=name, alpha=0.7, linewidths=0)
    if len(uniq) > 20:
        m = np.array([nm not in uniq[:20] for nm in names])
        ax.scatter(pts[m, 0], pts[m, 1], s=size, color="grey", label="other", alpha=0.5, linewidths=0)
    for i, thumb in thumbs.items():
        t = thumb.resize((thumb_px, thumb_px), Image.BILINEAR)
        box = AnnotationBbox(OffsetImage(np.asarray(t), zoom=1.0), (pts[i, 0], pts[i, 1]), frameon=False, pad=0)
        ax.add_artist(box)
    if 1 < len(uniq) <= 21 or (len(uniq) == 1 and uniq[0] != "unlabelled"):
        ax.legend(loc="upper right", markerscale=max(1.0, 6 / math.sqrt(size)), fontsize=9, framealpha=0.8)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return dest
