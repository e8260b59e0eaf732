"""One source file in, one encoded crop out: safe decoding, the JPEG fast path, encoding and
atomic writes.  :mod:`trailcam_core.crop.batch` runs these over whole folders and subsets.

- :func:`load_upright`: open any image safely (empty, unidentifiable, oversized, corrupt and
  truncated files raise :class:`BadInput` with the reason), decoded at the smallest JPEG DCT
  scale the crop allows and turned upright;
- :func:`crop_jpeg_fast`: baseline/progressive YCbCr or grey JPEGs straight through
  libjpeg-turbo (simplejpeg) and OpenCV, no PIL image, the same geometry as the Pillow path;
- :func:`encode` and :func:`write_atomic`: file bytes in the asked format, written with one
  open, one write and one rename.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import struct
import warnings
from pathlib import Path
from typing import Optional

from PIL import Image, ImageOps, UnidentifiedImageError

from trailcam_core.crop.geometry import CropOptions, fast_modules, crop_box, cut_pixels, orientation_of
from trailcam_core.base import Box
from trailcam_core.crop.geometry import MIN_STRIP_ROWS

_MIN_BAR_ROWS = MIN_STRIP_ROWS   # decoded height below which info strips become hard to see


class BadInput(Exception):
    """One source cannot be cropped; the message is the reason shown in the report."""


def _draft_scale(width: int, height: int, boxes: list[Box], options: CropOptions) -> int:
    """The largest JPEG DCT reduction (8, 4, 2, 1) that still leaves >= size pixels for the crop."""
    if options.mode == "strip":
        need = max(width, height * (0.85 if options.strip_info_bar else 1.0))
    else:
        x0, y0, x1, y1 = crop_box(width, height, boxes, options)
        need = (x1 - x0) * (0.85 if options.strip_info_bar else 1.0)
    for s in (8, 4, 2):
        # the strip's text must stay legible to be found: keep >= 360 rows when looking for it
        if need / s >= options.size and (not options.strip_info_bar or height / s >= _MIN_BAR_ROWS):
            return s
    return 1


def _bomb_message(width: int, height: int, limit: int) -> str:
    return (f"refused: {width}x{height} = {width * height / 1e6:.0f} megapixels is above the limit of "
            f"{limit / 1e6:.0f} megapixels (decompression bomb guard; raise max_pixels if the file is genuine)")


def load_upright(path: Path, boxes: list[Box], options: CropOptions) -> tuple[Image.Image, tuple[int, int]]:
    """Open ``path`` safely and decode it at the smallest JPEG draft scale the crop allows.

    Returns the upright (EXIF-rotated) decoded image and the upright full size.  Raises
    BadInput with the reason for empty, unidentifiable, oversized, corrupt or truncated files.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise BadInput("missing file") from None
    if size == 0:
        raise BadInput("empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except Image.DecompressionBombError as exc:   # Pillow's own hard limit (2x MAX_IMAGE_PIXELS)
            found = re.search(r"\((\d+) pixels\)", str(exc))
            pixels = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "its size"
            raise BadInput(f"refused: {pixels} is above the limit of {options.max_pixels / 1e6:.0f} megapixels "
                           "(decompression bomb guard)") from None
        except UnidentifiedImageError:
            raise BadInput("not an image (unknown or damaged format)") from None
        except OSError as exc:
            raise BadInput(f"unreadable: {exc}") from None
    try:
        w, h = img.size
        if w * h > options.max_pixels:
            raise BadInput(_bomb_message(w, h, options.max_pixels))
        orient = orientation_of(img)
        uw, uh = (h, w) if orient in (5, 6, 7, 8) else (w, h)
        if img.format == "JPEG":
            s = _draft_scale(uw, uh, boxes, options)
            if s > 1:
                img.draft(img.mode, (w // s, h // s))
        try:
            img.load()
        except Exception as exc:      # truncated data, broken Huffman tables, ...
            raise BadInput(f"corrupt or truncated image: {exc}") from None
        if orient != 1:
            img = ImageOps.exif_transpose(img)
        return img, (uw, uh)
    except BaseException:
        img.close()
        raise


# --------------------------------------------------------------------------------------------
# The JPEG fast path: libjpeg-turbo through simplejpeg, straight into numpy
# --------------------------------------------------------------------------------------------
_SJ: list = []              # [simplejpeg] once imported, [None] when unavailable


def _simplejpeg():
    """simplejpeg (a declared dependency) when it and OpenCV import; None sends JPEGs through Pillow."""
    if not _SJ:
        try:
            import simplejpeg
            _SJ.append(simplejpeg if fast_modules() is not None else None)
        except Exception:
            _SJ.append(None)
    return _SJ[0]


def jpeg_orientation(data: bytes) -> Optional[int]:
    """The EXIF orientation (1-8) of JPEG bytes, read from the APP1 segment before the scan data;
    1 when there is no EXIF or no orientation tag; None when the markers cannot be followed (the
    caller then lets Pillow read the file)."""
    pos, n = 2, len(data)
    try:
        while pos + 4 <= n:
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF:                       # fill byte
                pos += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                pos += 2
                continue
            if marker in (0xDA, 0xD9):               # start of scan / end: no EXIF before the pixels
                return 1
            length = struct.unpack_from(">H", data, pos + 2)[0]
            seg = pos + 4
            if marker == 0xE1 and data[seg:seg + 6] == b"Exif\0\0":
                tiff = seg + 6
                end = "<" if data[tiff:tiff + 2] == b"II" else ">" if data[tiff:tiff + 2] == b"MM" else None
                if end is None:
                    return None
                ifd = tiff + struct.unpack_from(end + "I", data, tiff + 4)[0]
                count = struct.unpack_from(end + "H", data, ifd)[0]
                for i in range(count):
                    tag, typ, _, value = struct.unpack_from(end + "HHI4s", data, ifd + 2 + 12 * i)
                    if tag == 0x0112:
                        if typ != 3:                 # SHORT
                            return None
                        o = struct.unpack_from(end + "H", value)[0]
                        return o if 1 <= o <= 8 else 1
                return 1
            pos = seg + length - 2
    except struct.error:
        return None
    return None


def _upright(arr, orientation: int):
    """Apply an EXIF orientation to a decoded (h, w[, c]) array, as ImageOps.exif_transpose does."""
    import numpy as np

    t = {2: lambda a: a[:, ::-1],                        # mirror
         3: lambda a: a[::-1, ::-1],                     # rotate 180
         4: lambda a: a[::-1],                           # flip top-bottom
         5: lambda a: a.swapaxes(0, 1),                  # transpose
         6: lambda a: np.rot90(a, -1),                   # rotate 90 clockwise
         7: lambda a: a[::-1, ::-1].swapaxes(0, 1),      # transverse
         8: lambda a: np.rot90(a, 1)}[orientation]      # rotate 90 counter-clockwise
    return np.ascontiguousarray(t(arr))


_SJ_SPACES = {"YCbCr": "RGB", "RGB": "RGB", "Gray": "GRAY"}


def crop_jpeg_fast(path: Path, boxes: list[Box], options: CropOptions):
    """Crop a JPEG through libjpeg-turbo (simplejpeg) and OpenCV without building PIL images:
    read, DCT-scaled decode into numpy, strip detection, shrink, encode.  Returns
    ``(file bytes, box, bar, full size)``, or None when this path does not apply (not a
    baseline/progressive YCbCr or grey JPEG, CMYK, unreadable markers, simplejpeg or OpenCV
    missing); the caller then takes the Pillow path.  Raises BadInput as :func:`load_upright`.
    """
    sj = _simplejpeg()
    if sj is None or path.suffix.lower() not in (".jpg", ".jpeg"):
        return None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput("missing file") from None
    if not data:
        raise BadInput("empty file (0 bytes)")
    if data[:3] != b"\xff\xd8\xff":
        return None
    try:
        h, w, space, _ = sj.decode_jpeg_header(data)
    except ValueError:
        return None                                  # let Pillow name what is wrong
    colorspace = _SJ_SPACES.get(space)
    orient = jpeg_orientation(data)
    if colorspace is None or orient is None:
        return None
    if w * h > options.max_pixels:
        raise BadInput(_bomb_message(w, h, options.max_pixels))
    uw, uh = (h, w) if orient in (5, 6, 7, 8) else (w, h)
    s = _draft_scale(uw, uh, boxes, options)
    try:
        arr = sj.decode_jpeg(data, colorspace, min_height=-(-h // s), min_width=-(-w // s), strict=True)
    except ValueError as exc:                        # truncated data, broken Huffman tables, ...
        raise BadInput(f"corrupt or truncated image: {exc}") from None
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if orient != 1:
        arr = _upright(arr, orient)
    out, box, bar = cut_pixels(arr, boxes, options, full_size=(uw, uh))
    if isinstance(out, Image.Image):
        return encode(out, options), box, bar, (uw, uh)
    if options.format == "jpeg":
        grey = out.ndim == 2
        data = sj.encode_jpeg(out if not grey else out[:, :, None], options.quality,
                              "GRAY" if grey else "RGB", "Gray" if grey else "420")
        return data, box, bar, (uw, uh)
    return encode(Image.fromarray(out, "L" if out.ndim == 2 else "RGB"), options), box, bar, (uw, uh)


def encode(img: Image.Image, options: CropOptions) -> bytes:
    """The crop as file bytes in ``options.format``."""
    if options.format == "jpeg" and img.mode in ("RGBA", "LA"):
        img = img.convert("RGB" if img.mode == "RGBA" else "L")
    buf = io.BytesIO()
    if options.format == "jpeg":
        img.save(buf, "JPEG", quality=options.quality)
    elif options.format == "webp":
        img.save(buf, "WEBP", quality=options.quality)
    else:
        img.save(buf, "PNG")
    return buf.getvalue()


_TEMP_SEQ = itertools.count()


def write_atomic(dest: Path, data: bytes) -> None:
    """Write ``data`` to ``dest`` through a temp file beside it and one rename.

    The same scheme as :func:`trailcam_core.base.atomic.atomic_path` (``.<name>.<tag>.part``, then
    ``os.replace``), cut to one open and one write per crop: the temp name is unique by process
    id and counter, so no random name has to be drawn and the file reopened.  No fsync: a killed
    process can never leave a partial file under the final name (the rename is atomic); after a
    power cut a crop that did not reach the disk is caught on the rerun by the size recorded in
    the manifest and redone.  An fsync per crop would cost more than the crop itself.
    """
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{next(_TEMP_SEQ)}.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileNotFoundError:           # first crop in a sub-folder (folder ids: cam1/IMG_0001)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save(img: Image.Image, dest: Path, options: CropOptions) -> int:
    """Encode the crop and write it atomically (see :func:`write_atomic`); returns its size."""
    data = encode(img, options)
    write_atomic(dest, data)
    return len(data)


upright = _upright          # public name: the cull view's thumbnails turn frames upright the same way
