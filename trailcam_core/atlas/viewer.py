"""The atlas viewer: one small page that streams its pictures and its metadata in pieces.

Everything the page needs beside itself sits in the atlas version folder and is loaded with
``<script>`` tags (they work from ``file://``, where ``fetch`` is refused):

* ``manifest.js``  grid, levels, sources, layer legends (a few KB: first paint needs only this and
  the one top tile);
* ``tiles/<level>/<x>_<y>.jpg``  the deep-zoom pyramid (``pyramid.render_pyramid``);
* ``layers/<name>.js``  one byte per cell (base64): the legend entry of each cell, loaded when
  the layer is chosen;
* ``meta/<bx>_<by>.js``  names, links, tags, source and nearest real photos of the cells of one
  ``META_BLOCK`` x ``META_BLOCK`` block, loaded on hover or click;
* ``search/<k>.js``  "name | tags" text of ``SEARCH_CHUNK`` items with their cells, loaded only
  when someone searches, chunk after chunk.

Every callback the page defines is named ``atlas*`` (``atlasManifest(...)``, ``atlasMeta(key, ...)``).
"""
from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from trailcam_core.base import write_text
from trailcam_core.mosaic import image_href

META_BLOCK = 32         # cells per side of one metadata chunk
SEARCH_CHUNK = 20000    # items per search chunk

PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c", "#fabebe",
           "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3", "#808000", "#ffd8b1", "#000075",
           "#ffe119", "#a9a9a9"]
FIXED_COLOURS = {"favourite": "#ffd400", "reject": "#ff3030", "day": "#ffe38a", "twilight": "#ff8c42",
                 "night": "#3a4bd8", "night-infrared": "#7f7f9f", "night-flash": "#4b2bd8", "real": "#9aa0a6",
                 "glitch": "#ff00aa"}


def _js(name: str, *args) -> str:
    return f"{name}(" + ",".join(json.dumps(a, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
                                 for a in args) + ");\n"


def encode_layer(values: Sequence[str | None], cell_of: np.ndarray, ncell: int, max_values: int = 254
                 ) -> tuple[str, list[dict]]:
    """Per-item values -> (base64 of one byte per cell, legend). 0 = hole or no value; the most
    frequent ``max_values`` values get codes 1.., the rest share the code "other"."""
    counts: dict[str, int] = {}
    for v in values:
        if v is not None and v != "":
            counts[str(v)] = counts.get(str(v), 0) + 1
    ordered = sorted(counts, key=lambda v: (-counts[v], v))
    keep = ordered[:max_values]
    code_of = {v: i + 1 for i, v in enumerate(keep)}
    other = len(keep) + 1 if len(ordered) > max_values else None
    codes = np.zeros(ncell, np.uint8)
    item_codes = np.array([code_of.get(str(v), other or 0) if v not in (None, "") else 0 for v in values], np.uint8)
    codes[np.asarray(cell_of, np.int64)] = item_codes
    legend = [{"code": code_of[v], "value": v, "count": counts[v],
               "colour": FIXED_COLOURS.get(v, PALETTE[(code_of[v] - 1) % len(PALETTE)])} for v in keep]
    if other:
        legend.append({"code": other, "value": "other", "count": sum(counts[v] for v in ordered[max_values:]),
                       "colour": "#777777"})
    return base64.b64encode(codes.tobytes()).decode("ascii"), legend


def write_atlas_data(root: Path, version_dir: Path, data_dir: str, manifest: dict, cell_of: np.ndarray,
                     items: Sequence[dict], layers: dict[str, Sequence[str | None]], title: str) -> None:
    """Write manifest.js, layers/, meta/, search/ into ``version_dir`` (links relative to ``root``).

    ``items[i]``: {"name", "file", "source", "tags": [...], "nearest": [[j, distance], ...] (optional)}.
    ``data_dir``: the name the version folder will have beside the page.
    """
    version_dir = Path(version_dir)
    rows, cols = manifest["rows"], manifest["cols"]
    ncell = rows * cols
    hrefs = [image_href(it["file"], root) for it in items]
    legends = {}
    (version_dir / "layers").mkdir(parents=True, exist_ok=True)
    for name, values in layers.items():
        data, legend = encode_layer(values, cell_of, ncell)
        legends[name] = legend
        write_text(version_dir / "layers" / f"{name}.js", _js("atlasLayer", name, data))

    # metadata blocks: per cell of the block, the item's record (or null for a hole)
    cell_item = np.full(ncell, -1, np.int64)
    cell_item[np.asarray(cell_of, np.int64)] = np.arange(len(items))
    (version_dir / "meta").mkdir(parents=True, exist_ok=True)
    nbx, nby = -(-cols // META_BLOCK), -(-rows // META_BLOCK)
    grid = cell_item.reshape(rows, cols)
    for by in range(nby):
        for bx in range(nbx):
            block = grid[by * META_BLOCK:(by + 1) * META_BLOCK, bx * META_BLOCK:(bx + 1) * META_BLOCK]
            out = {}
            for (r, c), i in np.ndenumerate(block):
                if i < 0:
                    continue
                it = items[int(i)]
                rec = {"n": it["name"], "h": hrefs[int(i)], "s": it["source"], "t": it.get("tags") or []}
                if it.get("nearest"):
                    rec["k"] = [[items[j]["name"], hrefs[j], round(float(d), 4), int(cell_of[j])]
                                for j, d in it["nearest"]]
                out[int((by * META_BLOCK + r) * cols + bx * META_BLOCK + c)] = rec
            write_text(version_dir / "meta" / f"{bx}_{by}.js", _js("atlasMeta", f"{bx}_{by}", out))

    (version_dir / "search").mkdir(parents=True, exist_ok=True)
    chunks = 0
    for k, s in enumerate(range(0, len(items), SEARCH_CHUNK)):
        part = [[int(cell_of[i]), (items[i]["name"] + " | " + " ".join(items[i].get("tags") or [])).lower()]
                for i in range(s, min(len(items), s + SEARCH_CHUNK))]
        write_text(version_dir / "search" / f"{k}.js", _js("atlasSearch", k, part))
        chunks += 1

    page_manifest = dict(manifest, title=title, layers=legends, meta_block=META_BLOCK, search_chunks=chunks,
                         data_dir=data_dir)
    write_text(version_dir / "manifest.js", _js("atlasManifest", page_manifest))


def write_atlas_page(root: Path, data_dir: str, title: str) -> Path:
    """The page itself (about 15 KB), pointing at the version folder ``data_dir``; written atomically."""
    template = resources.files("trailcam_core.atlas").joinpath("atlas.html").read_text(encoding="utf-8")
    html = template.replace("__TITLE__", _html_escape(title)).replace("__DATA_DIR__", data_dir)
    return write_text(Path(root) / "index.html", html)


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
