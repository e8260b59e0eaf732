"""What a face shows of an atlas: its pictures, a layer drawn over the overview, the item under a pixel.

    view = atlas_view("atlas/")            # text, overview, favourites, figure, viewer, layer names
    picture, legend = layer_picture("atlas/", "source")
    item = atlas_item_at("atlas/", x, y, width=overview_width)   # name, file, tags, nearest real photos
"""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageColor

from trailcam_core.base import TrailcamError
from trailcam_core.atlas.build import MANIFEST, Atlas, atlas_report, open_atlas

_OPENED: dict[str, tuple[float, Atlas, np.ndarray]] = {}


def _opened(atlas_dir: str | os.PathLike) -> tuple[Atlas, np.ndarray]:
    """The atlas and its cell -> item table, read once per version (clicks do not re-read 243,100 items)."""
    key = str(Path(atlas_dir).resolve())
    try:
        stamp = (Path(key) / MANIFEST).stat().st_mtime
    except OSError:
        stamp = -1.0
    hit = _OPENED.get(key)
    if hit is None or hit[0] != stamp:
        atlas = open_atlas(atlas_dir, check_sources=False)
        table = np.full(atlas.rows * atlas.cols, -1, np.int64)
        table[atlas.cell_of] = np.arange(len(atlas.cell_of))
        _OPENED.clear()                  # one atlas at a time is plenty for a face
        _OPENED[key] = (stamp, atlas, table)
        hit = _OPENED[key]
    return hit[1], hit[2]


def _page_manifest(vdir: Path) -> dict:
    text = (vdir / "manifest.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("(") + 1:text.rindex(")")])


def atlas_view(atlas_dir: str | os.PathLike) -> dict:
    """The pictures and summary of an atlas (for the app's Mosaic tab)."""
    atlas = open_atlas(atlas_dir, check_sources=False)
    vdir = atlas.version_dir
    rep = atlas_report(atlas_dir)
    layers = [name for name, legend in _page_manifest(vdir)["layers"].items() if legend]
    return {"text": rep["text"], "overview": str(vdir / "overview.jpg"), "favourites": str(vdir / "favourites.jpg"),
            "figure": rep.get("figure"), "viewer": str(atlas.root / "index.html"), "layers": layers,
            "rows": atlas.rows, "cols": atlas.cols, "n": atlas.manifest["n"]}


def layer_picture(atlas_dir: str | os.PathLike, layer: str, alpha: float = 0.55) -> tuple[Image.Image, list[dict]]:
    """The overview with each cell tinted by its value of ``layer`` (the favourite layer dims the rest)."""
    atlas = open_atlas(atlas_dir, check_sources=False)
    vdir = atlas.version_dir
    legends = _page_manifest(vdir)["layers"]
    if layer not in legends:
        raise TrailcamError(f"no layer {layer!r} in this atlas; layers: {', '.join(legends)}")
    text = (vdir / "layers" / f"{layer}.js").read_text(encoding="utf-8")
    codes = np.frombuffer(base64.b64decode(json.loads("[" + text[text.index("(") + 1:text.rindex(")")] + "]")[1]),
                          np.uint8)
    with Image.open(vdir / "overview.jpg") as im:
        overview = im.convert("RGB")
    if layer == "favourite":
        from trailcam_core.atlas.pyramid import highlight_picture

        fav = {e["code"] for e in legends[layer] if e["value"] == "favourite"}
        return highlight_picture(overview, np.isin(codes, list(fav)), atlas.rows, atlas.cols), legends[layer]
    lut = np.zeros((256, 4), np.uint8)
    for e in legends[layer]:
        lut[e["code"]] = (*ImageColor.getrgb(e["colour"]), int(255 * alpha))
    tint = Image.fromarray(lut[codes].reshape(atlas.rows, atlas.cols, 4), "RGBA").resize(overview.size, Image.NEAREST)
    return Image.alpha_composite(overview.convert("RGBA"), tint).convert("RGB"), legends[layer]


def atlas_item_at(atlas_dir: str | os.PathLike, x: float, y: float, width: Optional[float] = None) -> Optional[dict]:
    """The item drawn at pixel (x, y) of a picture of the atlas ``width`` px wide (default: the overview)."""
    atlas, table = _opened(atlas_dir)
    if width is None:
        with Image.open(atlas.version_dir / "overview.jpg") as im:
            width = im.width
    side = width / atlas.cols
    row, col = int(y // side), int(x // side)
    if not (0 <= row < atlas.rows and 0 <= col < atlas.cols):
        return None
    i = int(table[row * atlas.cols + col])
    if i < 0:
        return None
    out = {"name": atlas.names[i], "file": atlas.files[i], "source": atlas.sources[int(atlas.source_of[i])].name,
           "kind": atlas.sources[int(atlas.source_of[i])].kind, "tags": atlas.tags[i], "row": row, "col": col,
           "nearest": []}
    with np.load(atlas.version_dir / "nearest.npz") as z:
        hit = np.nonzero(z["items"] == i)[0]
        if len(hit):
            r = int(hit[0])
            out["nearest"] = [{"name": atlas.names[int(j)], "file": atlas.files[int(j)], "distance": float(d)}
                              for j, d in zip(z["neighbours"][r], z["distances"][r])]
    return out
