"""A deep-zoom tile pyramid drawn straight from thumbnails, one band at a time: no full-size canvas.

    levels = render_pyramid(files, cell_of, rows, cols, tile=64, folder=out / "tiles")

Level 0 is full resolution (``tile`` px per image); each level above halves it, until one tile
holds everything. Tiles are ``TILE`` (512) px JPEGs at ``folder/<level>/<x>_<y>.jpg``, the layout
``trailcam_core.mosaic.viewer`` and the atlas viewer read.

Work goes band by band: the thumbnails of the grid rows under one 512-px band of level 0 are
loaded (a bounded thread pool; never all N jobs at once), pasted into the band, the band is cut into
tiles and halved into the band of the next level, which is cut when it is full, and so on. Memory is
a few bands (a 243,100-image atlas at 64 px: about 50 MB per band), whatever the number of images or
the tile size, and Pillow's decompression-bomb guard stays on: the pyramid never opens anything
large, and inputs that trip the guard are skipped and listed like any unreadable file.

With ``previous`` (the tiles folder of an earlier version) and ``dirty`` (the cells that changed),
level-0 tiles of unchanged bands are hard-linked (copied when links are not possible) instead of
redrawn, so adding images to an atlas redraws only the bands they land in.
"""
from __future__ import annotations

import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image, ImageColor, ImageFilter

from trailcam_core.base import TrailcamError
from trailcam_core.mosaic import load_thumbnail, TILE

ProgressFn = Optional[Callable[[int, int, str], None]]


def level_sizes(width: int, height: int, tile_px: int = TILE) -> list[dict]:
    """The pyramid's levels for a ``width`` x ``height`` level 0 (halving, rounded up)."""
    levels, w, h, level = [], width, height, 0
    while True:
        nx, ny = math.ceil(w / tile_px), math.ceil(h / tile_px)
        levels.append({"level": level, "scale": 1.0 / (2 ** level), "width": w, "height": h, "nx": nx, "ny": ny})
        if nx <= 1 and ny <= 1:
            return levels
        w, h, level = max(1, math.ceil(w / 2)), max(1, math.ceil(h / 2)), level + 1


class _Level:
    """One level's pending band: halves arriving from below are stacked until the band is full."""

    def __init__(self, info: dict, folder: Path, tile_px: int, background, quality: int):
        self.info, self.tile_px, self.background, self.quality = info, tile_px, background, quality
        self.dir = folder / str(info["level"])
        self.dir.mkdir(parents=True, exist_ok=True)
        self.band: Optional[Image.Image] = None
        self.filled = 0
        self.row = 0                    # next tile row to write

    def add(self, part: Image.Image) -> list[Image.Image]:
        """Stack ``part`` (full width) under the pending rows; returns the bands completed."""
        done = []
        y = 0
        while y < part.height:
            if self.band is None:
                h = min(self.tile_px, self.info["height"] - self.row * self.tile_px)
                if h <= 0:          # rounding left a row or two past the level's height
                    break
                self.band, self.filled = Image.new("RGB", (self.info["width"], h), self.background), 0
            take = min(part.height - y, self.band.height - self.filled)
            self.band.paste(part.crop((0, y, part.width, y + take)), (0, self.filled))
            self.filled += take
            y += take
            if self.filled >= self.band.height:
                done.append(self.band)
                self.write(self.band)
                self.band = None
        return done

    def flush(self) -> list[Image.Image]:
        if self.band is None or self.row >= self.info["ny"]:
            return []
        band, self.band = self.band, None
        self.write(band)
        return [band]

    def write(self, band: Image.Image, skip: Sequence[int] = ()) -> None:
        for tx in range(self.info["nx"]):
            if tx in skip:
                continue
            box = (tx * self.tile_px, 0, min(band.width, (tx + 1) * self.tile_px), band.height)
            band.crop(box).save(self.dir / f"{tx}_{self.row}.jpg", format="JPEG", quality=self.quality)
        self.row += 1


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def render_pyramid(files: Sequence[str], cell_of: np.ndarray, rows: int, cols: int, tile: int, folder: Path,
                   background: str = "#181818", workers: int = 2, tile_px: int = TILE, quality: int = 85,
                   previous: Optional[Path] = None, dirty: Optional[np.ndarray] = None,
                   overview_side: int = 4096, progress: ProgressFn = None) -> tuple[list[dict], list[int], Image.Image]:
    """Draw the pyramid into ``folder``; returns (levels, indices that failed to load, overview image).

    ``overview`` is the first level no larger than ``overview_side`` (the whole atlas as one picture).
    """
    if tile < 1:
        raise TrailcamError(f"tile size must be at least 1 px, got {tile}")
    try:
        bg = ImageColor.getrgb(background)
    except ValueError:
        raise TrailcamError(f"background {background!r} is not a colour (try '#181818')") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = cols * tile, rows * tile
    levels = level_sizes(width, height, tile_px)
    stack = [_Level(info, folder, tile_px, bg, quality) for info in levels]
    over_level = next(i for i, L in enumerate(levels) if max(L["width"], L["height"]) <= overview_side)
    overview = Image.new("RGB", (levels[over_level]["width"], levels[over_level]["height"]), bg)
    over_y = [0]

    # items by grid row: item index at each cell
    at = np.full(rows * cols, -1, np.int64)
    at[np.asarray(cell_of, np.int64)] = np.arange(len(cell_of))
    at = at.reshape(rows, cols)
    dirty_rows = None
    if previous is not None and dirty is not None:
        dirty_rows = np.zeros(rows, bool)
        dirty_rows[np.unique(np.asarray(dirty, np.int64) // cols)] = True
    failed: list[int] = []
    thumbs: dict[int, Image.Image] = {}     # grid row -> its strip of thumbnails (rows straddling bands)
    ny0 = levels[0]["ny"]

    def row_strip(r: int, pool) -> Image.Image:
        if r in thumbs:
            return thumbs[r]
        strip = Image.new("RGB", (width, tile), bg)
        idx = at[r][at[r] >= 0]
        cells = np.nonzero(at[r] >= 0)[0]
        for i, c, th in zip(idx, cells, pool.map(lambda j: load_thumbnail(files[j], tile), idx.tolist())):
            if th is None:
                failed.append(int(i))
            else:
                strip.paste(th, (int(c) * tile, 0))
        thumbs[r] = strip
        return strip

    def push(level: int, band: Image.Image) -> None:
        if level == over_level:
            overview.paste(band, (0, over_y[0]))
            over_y[0] += band.height
        if level + 1 < len(stack):
            half = band.resize((max(1, math.ceil(band.width / 2)), max(1, math.ceil(band.height / 2))),
                               Image.BILINEAR, reducing_gap=2.0)
            for b in stack[level + 1].add(half):
                push(level + 1, b)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="atlas-thumbs") as pool:
        for ty in range(ny0):
            y0, y1 = ty * tile_px, min(height, (ty + 1) * tile_px)
            r0, r1 = y0 // tile, (y1 - 1) // tile
            reuse = (dirty_rows is not None and not dirty_rows[r0:r1 + 1].any()
                     and all((previous / "0" / f"{tx}_{ty}.jpg").is_file() for tx in range(levels[0]["nx"])))
            if reuse:
                band = Image.new("RGB", (width, y1 - y0), bg)
                for tx in range(levels[0]["nx"]):
                    src = previous / "0" / f"{tx}_{ty}.jpg"
                    with Image.open(src) as im:
                        band.paste(im.convert("RGB"), (tx * tile_px, 0))
                    _link_or_copy(src, stack[0].dir / f"{tx}_{ty}.jpg")
                stack[0].row += 1
                thumbs.clear()
            else:
                band = Image.new("RGB", (width, y1 - y0), bg)
                for r in range(r0, r1 + 1):
                    band.paste(row_strip(r, pool), (0, r * tile - y0))
                for k in [k for k in thumbs if k < r1]:
                    del thumbs[k]
                stack[0].write(band)
            push(0, band)
            if progress:
                progress(ty + 1, ny0, f"drawing band {ty + 1}/{ny0}")
    for level in range(1, len(stack)):      # bands left half-full at the bottom of each level
        for b in stack[level].flush():
            push(level, b)
    return levels, sorted(set(failed)), overview


def highlight_picture(overview: Image.Image, mask: np.ndarray, rows: int, cols: int, dim: float = 0.22,
                      colour: str = "#ffd400") -> Image.Image:
    """The atlas dimmed, with the cells where ``mask`` (per cell, row-major) is true lit and outlined."""
    cell_mask = np.zeros(rows * cols, np.uint8)
    cell_mask[: len(mask)] = np.asarray(mask, bool).astype(np.uint8) * 255
    small = Image.fromarray(cell_mask.reshape(rows, cols), "L")
    m = small.resize(overview.size, Image.NEAREST)
    dimmed = Image.blend(Image.new("RGB", overview.size, (0, 0, 0)), overview, dim)
    out = Image.composite(overview, dimmed, m)
    # a glow around each lit cell so single favourites show at overview scale
    px = max(2, overview.width // cols // 3 + 2)
    ring = m.filter(ImageFilter.MaxFilter(2 * (px // 2) + 1))
    edge = Image.fromarray(np.where((np.asarray(ring) > 0) & (np.asarray(m) == 0), 255, 0).astype(np.uint8), "L")
    return Image.composite(Image.new("RGB", overview.size, ImageColor.getrgb(colour)), out, edge)
