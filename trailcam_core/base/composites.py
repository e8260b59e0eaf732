"""Pictures made of other pictures (strength grids) carry a marker, so collections leave them out.

A strength grid saved into a generations folder is not a generation: a mosaic or an embedding of
that folder must not pull it in. Writers put ``COMPOSITE_KEY`` in the PNG parameters they store
under the ``trailcam`` text chunk; :func:`composite_kind` reads it back from the file's bytes
without decoding the pixels.

    composite_kind(Path("generations/grids/grid.png").read_bytes())   # "strength-grid"
"""
from __future__ import annotations

import io
import json
from typing import Optional

COMPOSITE_KEY = "composite"


def composite_kind(data: bytes) -> Optional[str]:
    """The composite kind recorded in a PNG written by trailcam ("strength-grid"), or None."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or b"trailcam" not in data[:1 << 20]:
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:      # text chunks before the pixels: no decode
            text = im.info.get("trailcam")
        kind = json.loads(text).get(COMPOSITE_KEY) if text else None
    except Exception:  # noqa: BLE001 - a damaged file is judged by the decoder later
        return None
    return str(kind) if kind else None
