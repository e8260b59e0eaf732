"""Square crops of camera-trap frames: info-bar strip, centre or box-aware square, fast decode.

Trail cameras burn a data strip (date, time, temperature, logo) into the top or bottom rows of
every frame; :func:`detect_info_bar` finds it, :func:`crop_box` picks the square (centre, or the
one that best holds the image's boxes), :func:`crop_image` cuts and scales a PIL image in memory,
and :func:`crop_batch` (in :mod:`trailcam_core.crop.batch`) does whole folders and subsets.

Example::

    from trailcam_core.crop.geometry import CropOptions, crop_image, detect_info_bar
    bar = detect_info_bar(img)                 # InfoBar(top=35, bottom=0)
    square = crop_image(img, boxes=[], options=CropOptions(size=512))
"""
from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from typing import Iterable, NamedTuple, Optional, Sequence

import numpy as np
from PIL import Image, ImageOps

from trailcam_core.base import Box, option, Options
from trailcam_core.crop.info_logo import LOGO_SEARCH_FRACTION, find_logos

__all__ = ["InfoBar", "detect_info_bar", "MIN_STRIP_ROWS", "CropOptions", "crop_box", "crop_image"]



# --------------------------------------------------------------------------------------------
# Info bar
# --------------------------------------------------------------------------------------------
class InfoBar(NamedTuple):
    """Rows of info strip at the top and at the bottom of a frame (0 when there is no strip), and
    the camera logos burnt in at its edges: ``logos`` = ``(x0, y0, x1, y1)`` boxes in the frame's
    pixels (Cuddeback's oval reaching above its strip, RECONYX's corner wordmark)."""

    top: int = 0
    bottom: int = 0
    logos: tuple = ()

    @property
    def present(self) -> bool:
        return bool(self.top or self.bottom)

    @property
    def cut_top(self) -> int:
        """Rows to drop at the top so that neither the strip nor a logo stays."""
        return max([self.top] + [int(y1) for _, y0, _, y1 in self.logos if y0 <= self.top])

    def cut_bottom(self, height: int) -> int:
        """Rows to drop at the bottom of a ``height``-row frame so that neither strip nor logo stays."""
        return max([self.bottom] + [height - int(y0) for _, y0, _, y1 in self.logos
                                    if y1 >= height - self.bottom and y0 > self.cut_top])

    def scaled(self, factor: float) -> "InfoBar":
        """The same strip in an image ``factor`` times as tall (rounded outwards)."""
        logos = tuple((int(math.floor(x0 * factor)), int(math.floor(y0 * factor)), int(math.ceil(x1 * factor)),
                       int(math.ceil(y1 * factor))) for x0, y0, x1, y1 in self.logos)
        return InfoBar(int(math.ceil(self.top * factor)), int(math.ceil(self.bottom * factor)), logos)


#: decoded height below which info strips become hard to see: every caller that looks for a strip
#: (crop, tags) decodes at least this many rows and looks before any resampling blurs the text
MIN_STRIP_ROWS = 360

# Real strips measured on Caltech frames: 32 rows of 1494 (2.1 %), 48-49 rows of 1536 (3.2 %).
_BAR_MAX_FRACTION = 0.08    # search band; a "strip" that runs past it is sky or night, not a strip
_BAR_MIN_FRACTION = 0.01    # thinner runs are a dark edge row or vignetting
_FLAT_TOL = 6               # strip background is flat to within JPEG noise
_TEXT_DIFF = 100            # text / logo pixels stand far from the strip background
_MIN_TEXT = 0.02            # share of strip pixels that are text (real strips: 7-14 %)
_MIN_TEXT_ROWS = 0.3        # share of strip rows that carry text (real strips: 80 %)
_MAX_AFTER_FLAT = 0.35      # the scene just past the strip must not look like the strip


def _strip_run(a: np.ndarray, height: int) -> int:
    """Length of the strip starting at row 0 of ``a`` (rows ordered from the image edge), or 0."""
    band = a.shape[0]
    if band < 4:
        return 0
    bg = int(np.bincount(a[: max(2, band // 30)].ravel(), minlength=256).argmax())
    if 60 < bg < 180:                  # strips are black/dark grey or white/light grey
        return 0
    diff = np.abs(a.astype(np.int16) - bg)
    flat = (diff <= _FLAT_TOL).mean(axis=1)
    n, gap = 0, 0
    for r in range(band):
        if flat[r] >= 0.5:
            n, gap = r + 1, 0
        else:
            gap += 1
            if gap > 2:                # allow a thick logo row or two inside the strip
                break
    min_rows = max(2, round(_BAR_MIN_FRACTION * height))
    texty = (diff >= _TEXT_DIFF).mean(axis=1) >= 0.01
    if n >= band - 2:
        # The scene is as flat as the strip (an infrared night frame against a black strip):
        # the strip is then the first block of text rows, plus the blank rows it started with.
        rows = np.flatnonzero(texty)
        if rows.size == 0 or rows[0] > band // 4:
            return 0
        end = rows[0]
        for r in rows[1:]:
            if r - end > 4:
                break
            end = r
        if end >= band - 6 or texty[end + 1: end + 7].any():
            return 0
        n = int(end + 1 + max(1, rows[0]))
        if n < min_rows or texty[:n].mean() < _MIN_TEXT_ROWS:
            return 0
        return n
    if n < min_rows:
        return 0                       # too thin: a dark edge row or vignetting
    text = diff[:n] >= _TEXT_DIFF
    if text.mean() < _MIN_TEXT or texty[:n].mean() < _MIN_TEXT_ROWS:
        return 0                       # flat but blank: dark night sky or blown-out sky
    after = flat[n + 2: n + 2 + max(3, n // 2)]
    if after.size and after.mean() > _MAX_AFTER_FLAT:
        return 0
    return n


def _luma(a: np.ndarray) -> np.ndarray:
    """Grey levels of an (h, w) grey or (h, w, 3+) RGB(X) uint8 array, bit-identical to Pillow's
    ``convert("L")`` (ITU-R 601-2 weights in 16-bit fixed point, rounded)."""
    if a.ndim == 2:
        return a
    r, g, b = (a[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def detect_info_bar(img: "Image.Image | np.ndarray") -> InfoBar:
    """Find the data strip a trail camera burns into the top or bottom rows of ``img``.

    Returns the number of rows to drop at the top and bottom, in ``img``'s own pixels, padded
    by a few rows for the JPEG blur at the strip's edge; ``InfoBar(0, 0)`` when there is none.
    A strip is a flat dark or light band at the edge of the frame, thinner than 8 % of the
    height, carrying text (or a logo), with the scene starting sharply below it.  Dark night
    skies and blown-out day skies are flat too but carry no text, so they are left alone.

    ``img`` is a PIL image or an (h, w) grey / (h, w, 3) RGB uint8 array (same answer).

    Example: a 2048x1494 Caltech frame gives ``InfoBar(top=35, bottom=0)``.
    """
    if isinstance(img, np.ndarray):
        h, w = img.shape[:2]
    else:
        w, h = img.size
    if w < 8 or h < 16:
        return InfoBar(0, 0)
    band = max(4, int(h * _BAR_MAX_FRACTION))
    step = max(1, w // 512)            # a few hundred columns are plenty to see a strip

    def grey(box: tuple[int, int, int, int]) -> np.ndarray:
        if isinstance(img, np.ndarray):
            return _luma(img[box[1]:box[3], ::step])
        part = img.crop(box)
        if part.mode != "L":
            part = part.convert("RGB").convert("L") if part.mode not in ("RGB", "L") else part.convert("L")
        return np.asarray(part)[:, ::step]

    def colour(box: tuple[int, int, int, int]) -> Optional[np.ndarray]:
        if isinstance(img, np.ndarray):
            return img[box[1]:box[3]] if img.ndim == 3 and img.shape[2] >= 3 else None
        if img.mode in ("L", "LA", "1", "I", "I;16", "F"):
            return None                # grey frames carry no colour logo
        return np.asarray(img.crop(box).convert("RGB"))

    pad = max(1, round(h * 0.002))
    top = _strip_run(grey((0, 0, w, band)), h)
    bottom = _strip_run(grey((0, h - band, w, h))[::-1], h)
    top, bottom = (min(h, top + pad) if top else 0), (min(h, bottom + pad) if bottom else 0)
    logos = []
    reach = max(3, int(round(h * LOGO_SEARCH_FRACTION)))
    if h >= 64:
        top_band = colour((0, 0, w, min(h, top + reach)))
        if top_band is not None:
            logos += [(x0, r0, x1, r1) for x0, r0, x1, r1 in find_logos(top_band, top, h, w)]
        lo = max(0, h - bottom - reach)
        bottom_band = colour((0, lo, w, h))
        if bottom_band is not None:
            logos += [(x0, h - r1, x1, h - r0) for x0, r0, x1, r1 in find_logos(bottom_band[::-1], bottom, h, w)]
    return InfoBar(top, bottom, tuple(logos))


# --------------------------------------------------------------------------------------------
# Options and geometry
# --------------------------------------------------------------------------------------------
@dataclass
class CropOptions(Options):
    """Parameters of the crop stage (the CLI flags, ComfyUI inputs and Gradio controls read these)."""

    STAGE = "crop"

    mode: str = option("center", "How the square is chosen: centre of the frame, around the image's boxes "
                       "(falls back to centre without boxes), or strip = the whole frame minus the info "
                       "strip, longer side scaled to size (not square)", choices=("center", "bbox", "strip"))
    size: int = option(512, "Output side in pixels", min=16, max=8192)
    strip_info_bar: bool = option(True, "Detect and drop the camera's data strip (top or bottom rows) first")
    margin: float = option(0.15, "bbox mode: space kept around the boxes, as a fraction of their extent",
                           min=0.0, max=2.0, step=0.05)
    min_score: float = option(0.0, "bbox mode: ignore boxes whose detector score is below this", min=0.0,
                              max=1.0, step=0.05)
    format: str = option("jpeg", "Output file format", choices=("jpeg", "png", "webp"))
    quality: int = option(90, "JPEG/WebP quality", min=1, max=100)
    resample: str = option("auto", "Scaling filter: auto = bilinear when shrinking up to 2x, area averaging beyond "
                           "(fast, no aliasing), "
                           "bicubic when enlarging", choices=("auto", "area", "lanczos", "bicubic", "bilinear"))
    video_frames: str = option("interval", "Video: take one frame every video_interval seconds, or every "
                               "keyframe", choices=("interval", "keyframes"))
    video_interval: float = option(1.0, "Video: seconds between extracted frames", min=0.05, max=3600.0,
                                   step=0.05)
    max_frames: int = option(0, "Video: at most this many frames per clip (0 = no limit)", min=0, max=100000)
    max_pixels: int = option(120_000_000, "Refuse images larger than this many pixels (decompression bomb "
                             "guard)", min=1)
    workers: int = option(0, "Parallel worker threads (0 = one per CPU core)", min=0, max=256)
    force: bool = option(False, "Redo every crop even when it is up to date")

    @property
    def extension(self) -> str:
        return {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}[self.format]

    def output_key(self) -> dict:
        """The options that change the output file (workers and force do not)."""
        d = asdict(self)
        for name in ("workers", "force", "max_pixels"):
            d.pop(name)
        return d


_RESAMPLE = {"area": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC,
             "bilinear": Image.Resampling.BILINEAR}


def usable_boxes(boxes: Iterable[Box], options: CropOptions, width: int, height: int) -> list[Box]:
    """Boxes that count for bbox mode: positive size, inside the frame, score >= min_score."""
    out = []
    for b in boxes or ():
        if b is None or not (b.w > 0 and b.h > 0):
            continue
        if b.score is not None and b.score < options.min_score:
            continue
        if b.x >= width or b.y >= height or b.x + b.w <= 0 or b.y + b.h <= 0:
            continue
        out.append(b)
    return out


def crop_box(width: int, height: int, boxes: Sequence[Box] = (), options: Optional[CropOptions] = None,
             bar: InfoBar = InfoBar()) -> tuple[int, int, int, int]:
    """The region (left, top, right, bottom) to cut from a ``width`` x ``height`` frame.

    ``bar`` rows are excluded first.  centre: the largest centred square.  bbox: the smallest
    square holding every usable box plus ``margin`` (at least ``size`` pixels when the frame
    allows, so small animals are not blown up), centred on the boxes and shifted to stay inside
    the frame; centre when no box counts.  strip: the whole frame minus the strip.

    Example: ``crop_box(2048, 1494, bar=InfoBar(35, 0))`` -> ``(294, 35, 1753, 1494)``.
    """
    options = options or CropOptions()
    if bar.logos:
        # a logo is cropped away only where the square would hold it: drop the rows it reaches
        plain = crop_box(width, height, boxes, options, InfoBar(bar.top, bar.bottom))
        if not any(plain[0] < x1 and x0 < plain[2] and plain[1] < y1 and y0 < plain[3] for x0, y0, x1, y1 in bar.logos):
            return plain
        bar = InfoBar(bar.cut_top, bar.cut_bottom(height))
    top = min(max(0, bar.top), height - 1)
    bottom = max(top + 1, height - max(0, bar.bottom))
    region_h = bottom - top
    if options.mode == "strip":
        return (0, top, width, bottom)
    max_side = min(width, region_h)
    good = usable_boxes(boxes, options, width, height) if options.mode == "bbox" else []
    if not good:
        x0 = (width - max_side) // 2
        y0 = top + (region_h - max_side) // 2
        return (x0, y0, x0 + max_side, y0 + max_side)
    ux0 = max(0.0, min(b.x for b in good))
    uy0 = max(0.0, min(b.y for b in good))
    ux1 = min(float(width), max(b.x + b.w for b in good))
    uy1 = min(float(height), max(b.y + b.h for b in good))
    extent = max(ux1 - ux0, uy1 - uy0)
    side = extent * (1.0 + 2.0 * options.margin)
    side = int(round(min(max(side, min(options.size, max_side)), max_side)))
    cx, cy = (ux0 + ux1) / 2.0, (uy0 + uy1) / 2.0
    x0 = int(round(min(max(cx - side / 2.0, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2.0, top), bottom - side)))
    return (x0, y0, x0 + side, y0 + side)


def output_size(box: tuple[float, float, float, float], options: CropOptions) -> tuple[int, int]:
    """Square ``size`` x ``size``; in strip mode the longer side is ``size`` and the aspect is kept."""
    if options.mode != "strip":
        return (options.size, options.size)
    w, h = box[2] - box[0], box[3] - box[1]
    if w >= h:
        return (options.size, max(1, int(round(options.size * h / w))))
    return (max(1, int(round(options.size * w / h))), options.size)


# --------------------------------------------------------------------------------------------
# Cutting
# --------------------------------------------------------------------------------------------
_KEEP_MODES = ("L", "RGB", "RGBA", "LA")


def _normalise_mode(img: Image.Image) -> Image.Image:
    """Keep grey as grey and colour as colour; fold the rarer modes (P, CMYK, I;16 ...) into those."""
    if img.mode in _KEEP_MODES:
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8), "L")
    if img.mode == "1":
        return img.convert("L")
    if img.mode == "P" and "transparency" in img.info:
        return img.convert("RGBA")
    return img.convert("RGB")


def orientation_of(img: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright) of an opened image, 1 when absent or unreadable."""
    try:
        value = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def plan_cut(width: int, height: int, bar: InfoBar, boxes: Sequence[Box], options: CropOptions,
             full_size: Optional[tuple[int, int]] = None):
    """Where to cut in a ``width`` x ``height`` decode of a ``full_size`` frame.

    ``bar`` is in the decode's pixels.  Returns ``(box, bar, src, size, factor)``: the crop box
    and info bar in full-size pixels, the source region in the decode's pixels, the output size
    and the shrink factor (> 1 shrinks).
    """
    fw, fh = full_size or (width, height)
    scale = fw / width
    if scale != 1:
        bar = bar.scaled(scale)
    box = crop_box(fw, fh, boxes, options, bar)
    sx, sy = width / fw, height / fh
    src = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    size = output_size(box, options)
    return box, bar, src, size, (src[2] - src[0]) / size[0]


def _fast_linear(options: CropOptions, factor: float) -> bool:
    return options.resample == "auto" and 1.0 <= factor <= 2.0


def cut(img: Image.Image, boxes: Sequence[Box], options: CropOptions, scale: float = 1.0,
        full_size: Optional[tuple[int, int]] = None) -> tuple[Image.Image, tuple[int, int, int, int], InfoBar]:
    """Cut the square from an upright ``img`` that may be a ``scale``-times reduced decode.

    ``boxes`` and the returned crop box and info bar are in full-size pixels (``full_size``);
    the image is scaled straight from the reduced decode into the output size in one pass.
    """
    img = _normalise_mode(img)
    full = full_size or (int(round(img.width * scale)), int(round(img.height * scale)))
    bar = detect_info_bar(img) if options.strip_info_bar else InfoBar(0, 0)
    box, bar, src, size, factor = plan_cut(img.width, img.height, bar, boxes, options, full)
    out = _linear_shrink(img, src, size) if _fast_linear(options, factor) else None
    if out is None:
        out = _pillow_resize(img, src, size, factor, options)
    return out, box, bar


def cut_pixels(arr: np.ndarray, boxes: Sequence[Box], options: CropOptions,
               full_size: Optional[tuple[int, int]] = None):
    """:func:`cut` for an upright (h, w) grey or (h, w, 3) RGB uint8 array (a reduced decode of a
    ``full_size`` frame).  Returns ``(crop, box, bar)``; the crop is an array of the same kind
    when OpenCV's shrink applies, else a PIL image scaled by Pillow (the same filters as :func:`cut`).
    """
    h, w = arr.shape[:2]
    bar = detect_info_bar(arr) if options.strip_info_bar else InfoBar(0, 0)
    box, bar, src, size, factor = plan_cut(w, h, bar, boxes, options, full_size)
    mods = fast_modules()
    if mods is not None and _fast_linear(options, factor):
        x0, y0 = int(round(src[0])), int(round(src[1]))
        x1, y1 = min(w, int(round(src[2]))), min(h, int(round(src[3])))
        if x1 - x0 >= size[0] and y1 - y0 >= size[1]:
            return mods[0].resize(arr[y0:y1, x0:x1], size, interpolation=mods[0].INTER_LINEAR), box, bar
    img = Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB")
    return _pillow_resize(img, src, size, factor, options), box, bar


def _pillow_resize(img: Image.Image, src, size, factor: float, options: CropOptions) -> Image.Image:
    if options.resample == "auto":
        resample = Image.Resampling.BOX if factor >= 1.0 else Image.Resampling.BICUBIC
    else:
        resample = _RESAMPLE[options.resample]
    return img.resize(size, resample, box=src, reducing_gap=3.0)


_FAST: list = []            # [cv2] once imported, [None] when unavailable


def fast_modules():
    """OpenCV, when installed (it is a declared dependency; a broken binary falls back to Pillow)."""
    if not _FAST:
        try:
            import cv2
            _FAST.append((cv2,))
        except Exception:
            _FAST.append(None)
    return _FAST[0]


def _pixels_in_place(img: Image.Image):
    """``(array, keep)``: a read-only numpy view of an RGB (h, w, 4 = RGBX) or L (h, w) image's
    own pixel memory, through Pillow's Arrow export read by pyarrow (no copy, unlike
    ``np.asarray``, which copies twice); ``keep`` must stay referenced while the view is used.
    None when Pillow cannot export the image in one block."""
    if img.readonly or getattr(img, "map", None) is not None:
        return None                 # memory Pillow borrowed (fromarray, frombuffer, mmap): no export
    try:
        import pyarrow as pa

        exported = pa.array(img)                  # Arrow C data interface: zero copy
    except Exception:               # an older Pillow without Arrow, or an image in several blocks
        return None
    bands = 4 if img.mode == "RGB" else 1
    values = exported.values if pa.types.is_fixed_size_list(exported.type) else exported
    if not pa.types.is_uint8(values.type) or len(values) != img.width * img.height * bands:
        return None
    buf = values.buffers()[1]
    if buf is None:
        return None
    flat = np.frombuffer(buf, np.uint8, count=len(values), offset=values.offset)
    shape = (img.height, img.width, 4) if bands == 4 else (img.height, img.width)
    return flat.reshape(shape), (exported, img)


def _linear_shrink(img: Image.Image, src: tuple[float, float, float, float],
                   size: tuple[int, int]) -> Optional[Image.Image]:
    """Shrink the ``src`` region of an RGB or L ``img`` by a factor of 1 to 2 with OpenCV's
    SIMD bilinear filter, reading Pillow's pixels in place (no copy).

    At these factors the bilinear footprint (2 source pixels) already spans the area each output
    pixel covers, so it low-passes as well as area averaging does (closer to Lanczos, in fact:
    see the benchmark's PSNR figures) at a quarter of Pillow's cost.  The region is rounded to
    whole pixels of the reduced decode.  None when OpenCV is missing or the image cannot be
    viewed in place; the caller then uses Pillow.
    """
    mods = fast_modules()
    if mods is None or img.mode not in ("RGB", "L"):
        return None
    cv2 = mods[0]
    x0, y0 = int(round(src[0])), int(round(src[1]))
    x1, y1 = min(img.width, int(round(src[2]))), min(img.height, int(round(src[3])))
    if x1 - x0 < size[0] or y1 - y0 < size[1]:
        return None
    got = _pixels_in_place(img)
    if got is None:
        return None
    view, keep = got
    # a scratch output reused per thread: a fresh 1 MB array per crop costs more in page faults
    # than the resize itself; frombytes copies the result out before the next crop reuses it
    shape = (size[1], size[0]) + view.shape[2:]
    dst = getattr(_SCRATCH, "dst", None)
    if dst is None or dst.shape != shape:
        dst = _SCRATCH.dst = np.empty(shape, np.uint8)
    cv2.resize(view[y0:y1, x0:x1], size, dst=dst, interpolation=cv2.INTER_LINEAR)
    del view, keep                  # the view must not outlive the export
    return Image.frombytes(img.mode, size, dst, "raw", "RGBX" if img.mode == "RGB" else "L")


_SCRATCH = threading.local()


def crop_image(img: Image.Image, boxes: Sequence[Box] = (), options: Optional[CropOptions] = None) -> Image.Image:
    """Crop one in-memory PIL image as ``options`` say and return the result (the input is untouched).

    EXIF orientation is applied first; boxes are in the upright image's pixels.  Grey images stay
    grey (mode L), colour stays colour (an RGB frame with R = G = B stays RGB).

    Example: ``crop_image(Image.open("cat.jpg"), options=CropOptions(size=256)).size`` -> (256, 256)
    """
    options = options or CropOptions()
    if orientation_of(img) != 1:
        img = ImageOps.exif_transpose(img)
    out, _, _ = cut(img, list(boxes or ()), options)
    return out


