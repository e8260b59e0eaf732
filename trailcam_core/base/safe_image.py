"""Open one image safely and say in plain words why a file is not usable.

Every place that decodes a user's file (embed, the app's galleries and previews) goes through
:func:`open_image_safely`, so a bad file is a reason in a report or a placeholder on the page,
never a crash: empty, not an image, a decompression bomb, corrupt or truncated data.

    img = open_image_safely("photos/a.jpg", draft=(256, 256))     # DataError("a.jpg: empty file (0 bytes)")
    reason = image_problem(exc)                  # "cannot decode image: not an image (unknown or damaged format)"

Pillow's decompression bomb guard (``Image.MAX_IMAGE_PIXELS``) is never lifted here.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Optional, Union

from PIL import Image, UnidentifiedImageError

from trailcam_core.base.errors import DataError

Source = Union[str, os.PathLike, bytes, bytearray]

# Pillow's own hard limit at its default settings (2 x MAX_IMAGE_PIXELS). Checked here explicitly, so
# the guard holds even where some module has raised Image.MAX_IMAGE_PIXELS for the whole process.
DEFAULT_MAX_PIXELS = 2 * 89_478_485

# "<_io.BytesIO object at 0x7f...>" and "<PIL....>" reprs that Pillow puts in its messages
_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")


def image_problem(exc: BaseException) -> str:
    """The reason a decode failed, in the user's words (no Python object reprs)."""
    if isinstance(exc, DataError):
        return str(exc).split(": ", 1)[-1]
    if isinstance(exc, Image.DecompressionBombError):
        found = re.search(r"\((\d+) pixels\)", str(exc))
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        size = f"{int(found.group(1)) / 1e6:.0f} megapixels" if found else "its size"
        return (f"refused: {size} is above the limit of {limit / 1e6:.0f} megapixels "
                "(decompression bomb guard)")
    if isinstance(exc, UnidentifiedImageError):
        return "cannot decode image: not an image (unknown or damaged format)"
    text = _REPR.sub("", str(exc)).strip() or exc.__class__.__name__
    if isinstance(exc, OSError) and ("truncated" in text or "broken data stream" in text):
        return f"corrupt or truncated image ({text})"
    if isinstance(exc, (OSError, ValueError, SyntaxError)):
        return f"cannot decode image ({exc.__class__.__name__}: {text})"
    return f"cannot decode image ({exc.__class__.__name__}: {text})"


def open_image_safely(source: Source, name: Optional[str] = None, *, draft: Optional[tuple[int, int]] = None,
                      mode: Optional[str] = "RGB", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``source`` (a path or the file's bytes) fully; DataError "``name``: reason" when it cannot be.

    ``draft`` lets JPEGs decode at a reduced DCT scale (at least that size); ``mode`` converts the
    result (None keeps the file's mode). Images above ``max_pixels`` are refused before decoding.
    The file handle is closed before returning.
    """
    label = name or (Path(source).name if isinstance(source, (str, os.PathLike)) else "image")
    try:
        if isinstance(source, (bytes, bytearray)):
            data = bytes(source)
        else:
            data = Path(source).read_bytes()
    except OSError as exc:
        raise DataError(f"{label}: cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise DataError(f"{label}: empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise DataError(f"{label}: refused: {w}x{h} = {w * h / 1e6:.0f} megapixels is above the limit of "
                                f"{max_pixels / 1e6:.0f} megapixels (decompression bomb guard)")
            if draft and img.format == "JPEG":
                img.draft("RGB", draft)
            img.load()
            out = img.convert(mode) if mode and img.mode != mode else img.copy()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a reason, never a crash
        raise DataError(f"{label}: {image_problem(exc)}") from None
    if out.width < 1 or out.height < 1:
        raise DataError(f"{label}: empty image")
    return out


def placeholder(side: int, reason: str, title: str = "") -> Image.Image:
    """A grey square that says why a picture is missing (shown in place of a bad image)."""
    from PIL import ImageDraw

    img = Image.new("RGB", (side, side), (58, 58, 62))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, side - 1, side - 1], outline=(200, 80, 80), width=max(1, side // 64))
    words, lines, line = (f"{title}: {reason}" if title else reason).split(), [], ""
    per_line = max(8, side // 7)
    for w in words:
        if len(line) + len(w) + 1 > per_line and line:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    y = max(4, side // 2 - 7 * len(lines))
    for text in lines[: max(1, (side - 8) // 14)]:
        draw.text((6, y), text, fill=(235, 235, 235))
        y += 14
    return img
