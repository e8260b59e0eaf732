"""Camera logos burnt into the frame next to the info strip (Cuddeback's oval, RECONYX's wordmark).

A data strip is not the only overlay a trail camera burns in: Cuddeback's blue oval logo sits on
its bottom strip and reaches about 38 rows above it (2048x1536 frames), and RECONYX HyperFire
frames carry a green wordmark in the bottom-right corner with no strip at all (2048x1494).  A
crop that drops only the strip keeps the logo.  Logos are drawn in one pure, saturated colour
(measured on the Caltech frames: saturation above 0.8, hue spread within a few steps), unlike
the scene, and they touch the frame's edge or the strip.  :func:`find_logos` finds them in an
edge band; :func:`trailcam_core.crop.detect_info_bar` calls it, so the tagger and the crop see
the same strip and the same logos.

Example::

    boxes = find_logos(band_rgb, strip_rows=13, frame_height=384)   # [(407, 0, 465, 23)]
"""
from __future__ import annotations

import numpy as np

__all__ = ["find_logos", "LOGO_SEARCH_FRACTION"]

#: how far past the strip (as a share of the frame height) a logo may reach
LOGO_SEARCH_FRACTION = 0.06
_MIN_SATURATION = 0.8        # logo inks are pure colours; the scene's vivid pixels are few and scattered
_MIN_VALUE = 90
_MAX_HUE_SPREAD = 16         # inter-quartile hue range (Pillow's 0..255 scale) of one-ink logos: 2-13
_MIN_FILL = 0.1              # logo pixels in the logo's bounding box (measured 0.2-0.5)
_MIN_PIXELS = 0.0001         # share of the frame a logo's ink covers at least (RECONYX: 0.0002-0.0004)
_MIN_WIDTH, _MAX_WIDTH = 0.02, 0.4
_MAX_HEIGHT = 0.08
_WORK_ROWS = 384             # frame height the measurements above were made at


def _hue(rgb: np.ndarray) -> np.ndarray:
    """Hue on Pillow's 0..255 scale for an (n, 3) float array."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    mx, mn = rgb.max(axis=1), rgb.min(axis=1)
    d = np.maximum(mx - mn, 1e-6)
    h = np.where(mx == r, (g - b) / d % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4))
    return h * (256 / 6)


def find_logos(band: np.ndarray, strip_rows: int, frame_height: int, frame_width: int | None = None,
               column_step: int = 1) -> list[tuple[int, int, int, int]]:
    """Logo boxes in an edge band of a frame.

    ``band``: (rows, cols, 3) uint8 RGB, row 0 at the frame's edge (flip the bottom band), columns
    possibly subsampled by ``column_step``.  ``strip_rows``: rows of info strip at that edge (0 if
    none), in the band's rows.  Returns ``(x0, r0, x1, r1)`` per logo: frame columns and band rows
    from the edge (``r1`` exclusive, padded a little for the logo's outline and the JPEG blur).
    """
    if band.ndim != 3 or band.shape[2] < 3 or band.shape[0] < 3:
        return []
    from scipy import ndimage

    rows = min(band.shape[0], strip_rows + max(3, int(round(frame_height * LOGO_SEARCH_FRACTION))))
    # measure at about 384 rows per frame whatever the decode (the thresholds were set there):
    # average f x f blocks, then map the boxes back
    f = max(1, int(round(frame_height / _WORK_ROWS)))
    if f > 1:
        rows_f, cols_f = rows // f, band.shape[1] // f
        if rows_f < 3 or cols_f < 8:
            return []
        from PIL import Image

        small = np.asarray(Image.fromarray(np.ascontiguousarray(band[:rows_f * f, :cols_f * f, :3])).reduce(f))
        boxes = find_logos(small, strip_rows // f,
                           max(1, frame_height // f), (frame_width or band.shape[1] * column_step) // f,
                           column_step)
        width = frame_width or band.shape[1] * column_step
        return [(x0 * f, r0 * f, min(width, x1 * f), min(band.shape[0], r1 * f)) for x0, r0, x1, r1 in boxes]
    a = band[:rows, :, :3]
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    mx = np.maximum(np.maximum(r, g), b).astype(np.int16)
    mn = np.minimum(np.minimum(r, g), b).astype(np.int16)
    ink = (mx >= _MIN_VALUE) & ((mx - mn) * 5 >= mx * int(_MIN_SATURATION * 5))
    width = frame_width or band.shape[1] * column_step
    cols = band.shape[1]
    min_pixels = _MIN_PIXELS * frame_height * width / column_step
    if ink.sum() < max(6, min_pixels):
        return []
    # letters and the outline of one logo are separate blobs: join what lies within ~1 % of the frame
    merged = ndimage.maximum_filter1d(ink.view(np.uint8), max(3, round(0.012 * frame_height) | 1), axis=0)
    merged = ndimage.maximum_filter1d(merged, max(5, round(0.025 * cols) | 1), axis=1)
    labels, n = ndimage.label(merged)
    out = []
    for i, (ys, xs) in enumerate(ndimage.find_objects(labels), 1):
        part = (labels[ys, xs] == i) & ink[ys, xs]
        count = int(part.sum())
        if not count:
            continue
        r_any, c_any = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
        ys = slice(ys.start + int(r_any[0]), ys.start + int(r_any[-1]) + 1)      # the ink's own box
        xs = slice(xs.start + int(c_any[0]), xs.start + int(c_any[-1]) + 1)
        part = part[int(r_any[0]):int(r_any[-1]) + 1, int(c_any[0]):int(c_any[-1]) + 1]
        bh, bw = ys.stop - ys.start, xs.stop - xs.start
        if count < max(6, min_pixels):
            continue
        if ys.start > strip_rows + max(2, round(0.01 * frame_height)):
            continue                                   # floats in the scene: not an overlay
        if not (_MIN_WIDTH * cols <= bw <= _MAX_WIDTH * cols) or bh > _MAX_HEIGHT * frame_height or bh < 2:
            continue
        if count / (bh * bw) < _MIN_FILL:
            continue
        hue = _hue(a[ys, xs][part].astype(np.float32))
        q1, q3 = np.percentile(hue, [25, 75])
        if q3 - q1 > _MAX_HUE_SPREAD:
            continue
        pad_r = max(1, int(round(0.004 * frame_height)))
        pad_c = max(1, int(round(0.01 * cols)))
        x0 = max(0, xs.start - pad_c) * column_step
        x1 = min(width, (min(cols, xs.stop + pad_c)) * column_step)
        out.append((int(x0), 0, int(x1), int(min(band.shape[0], ys.stop + pad_r))))
    return out
