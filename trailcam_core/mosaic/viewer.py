"""The interactive HTML viewer: one file, no network, pan/zoom, hover for name and tags, click to open.

Small mosaics are embedded in the page as one image; large ones are drawn from a tile pyramid
(``<name>_tiles/<level>/<x>_<y>.jpg`` beside the page) so that 50,000 images stay smooth: the
browser only ever loads the tiles on screen at the resolution the zoom needs.
"""
from __future__ import annotations

import base64
import io
import json
import os
from importlib import resources
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

import numpy as np
from PIL import Image

from trailcam_core.base import write_text
from trailcam_core.mosaic.render import TILE, write_tile_pyramid

INLINE_MAX_SIDE = 4096   # above this the viewer switches to tiles


def image_href(file: str, page_dir: Path) -> str:
    """A link from the page to the image: relative when possible (portable folder), else file://."""
    try:
        rel = os.path.relpath(os.path.abspath(file), os.path.abspath(page_dir))
        return quote(Path(rel).as_posix())
    except ValueError:   # another drive on Windows
        return Path(os.path.abspath(file)).as_uri()


def write_viewer(dest: Path, mosaic: Image.Image, cell_of: np.ndarray, rows: int, cols: int, tile: int,
                 ids: Sequence[str], names: Sequence[str], files: Sequence[str], tags: Sequence[Sequence[str]],
                 title: str = "Mosaic", inline_max_side: int = INLINE_MAX_SIDE) -> dict:
    """Write the viewer page (and its tiles when the mosaic is large); returns what was written."""
    dest = Path(dest)
    data = {"title": title, "rows": rows, "cols": cols, "tile": tile, "tile_px": TILE,
            "ids": list(ids), "names": list(names), "tags": [list(t) for t in tags],
            "cell": [int(c) for c in cell_of], "href": [image_href(f, dest.parent) for f in files],
            "inline": None, "levels": [], "tiles_dir": None}
    written = {"viewer": str(dest)}
    if max(mosaic.size) <= inline_max_side:
        buf = io.BytesIO()
        mosaic.save(buf, format="JPEG", quality=88)
        data["inline"] = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    else:
        tiles = dest.parent / (dest.stem + "_tiles")
        data["levels"] = write_tile_pyramid(mosaic, tiles)
        data["tiles_dir"] = quote(tiles.name)
        written["tiles"] = str(tiles)
    template = resources.files("trailcam_core.mosaic").joinpath("viewer.html").read_text(encoding="utf-8")
    # JSON inside <script type="application/json">: only "</" needs escaping
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    html = template.replace("__TITLE__", _html_escape(title)).replace("__DATA__", payload)
    write_text(dest, html)
    return written


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
