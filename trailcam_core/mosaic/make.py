"""Similarity mosaics: features -> grid layout -> mosaic image, positions, scatter plot, viewer.

    from trailcam_core.mosaic import MosaicOptions, make_mosaic, compute_layout
    report = make_mosaic("coyotes/", "out/coyote-mosaic", MosaicOptions(tile=96))
    report.outputs   # mosaic, positions, scatter, viewer, embeddings, dpq16

    layout = compute_layout(vectors, MosaicOptions(layout="lap", embedding="umap"))
    layout.cell_of[i], layout.rows, layout.cols, layout.points[i]

Layouts (``MosaicOptions.layout``):
  * ``flas`` (default): features sorted straight onto the grid (vc-flas when installed, else the
    built-in block linear-assignment sorter). Scales to 50,000+ images in O(n) memory.
  * ``lap``: ImageRearranger's method, a 2D embedding (UMAP / t-SNE / PCA) matched to the grid by
    an exact linear assignment up to ``exact_limit`` images, by split + local blocks above.

Positions JSON (``positions.json``)::

    {"rows": R, "cols": C, "tile": 64, "layout": "flas", "engine": "vc-flas", "embedding": "umap",
     "dpq16": 0.87, "features": "clip|ViT-B-32|laion2b_s34b_b79k", "holes": R*C-n,
     "items": [{"id": "...", "file": "/abs/path.jpg", "file_name": "rel/path.jpg", "cell": 17,
                "row": 0, "col": 17, "point": [x, y], "labels": ["coyote"], "tags": [...]}]}

Cells are row-major; images fill cells 0..n-1, so holes are the end of the last row.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from trailcam_core.base import (BatchReport, check_options, ensure, is_within, option, Options, ProgressCallback,
                                TrailcamError, write_json)
from trailcam_core.embed import collect_records, embed_images, Embeddings, EmbedOptions, Source
from trailcam_core.mosaic import layout as _layout
from trailcam_core.mosaic.dpq import dpq
from trailcam_core.mosaic.layout import embed_2d, grid_shape, sort_features
from trailcam_core.mosaic.render import render_mosaic, save_image, scatter_plot, spread_sample
from trailcam_core.mosaic.viewer import write_viewer

SCATTER_SAMPLE = 3000   # flas layouts above this many images plot a sample's 2D embedding

__all__ = ["MosaicOptions", "GridLayout", "compute_layout", "make_mosaic", "validate", "dpq", "grid_shape", "embed_2d"]


@dataclass
class MosaicOptions(Options):
    """How the grid is laid out and what is drawn."""

    STAGE = "mosaic"

    layout: str = option("flas", "Grid layout: flas sorts features straight onto the grid (fast, scales to "
                         "50,000+); lap = 2D embedding + linear assignment (ImageRearranger)", choices=("flas", "lap"))
    embedding: str = option("auto", "2D embedding for the lap layout and the scatter plot (auto: umap up to "
                            "20,000 images, pca above)", choices=("auto", "umap", "tsne", "pca"))
    engine: str = option("auto", "Sorter for the flas layout: vc-flas if installed, else the built-in one",
                         choices=("auto", "vc-flas", "las"))
    aspect: float = option(1.0, "Grid aspect ratio, columns / rows (16:9 = 1.78)", min=0.05, max=20.0)
    columns: int = option(0, "Grid columns (0: from the aspect ratio)", min=0, max=100000)
    tile: int = option(64, "Tile size in pixels of each image in the mosaic", min=8, max=1024)
    seed: int = option(0, "Random seed (same seed, same layout)", min=0, max=2**31 - 1)
    exact_limit: int = option(4096, "lap layout: largest N solved by one exact assignment", min=2, max=20000)
    scatter: bool = option(True, "Draw the 2D embedding with thumbnails (scatter.png)")
    viewer: bool = option(True, "Write the interactive HTML viewer (viewer.html)")
    quality: bool = option(True, "Measure the layout's distance preservation quality DPQ16 (sampled above 6,000)")
    format: str = option("jpg", "Mosaic image format", choices=("jpg", "png"))
    max_image_side: int = option(16384, "Largest side of the saved mosaic image (scaled down to fit; the "
                                 "viewer keeps full resolution)", min=256, max=65000)
    background: str = option("#181818", "Colour of empty cells")
    scatter_thumbnails: int = option(300, "Thumbnails drawn on the scatter plot", min=0, max=5000)
    title: str = option("", "Title of the viewer and scatter plot (default: the output folder name)")


@dataclass
class GridLayout:
    """Where each image goes: ``cell_of[i]`` (row-major) on a ``rows`` x ``cols`` grid."""

    cell_of: np.ndarray
    rows: int
    cols: int
    points: Optional[np.ndarray] = None     # (n, 2) 2D embedding, when computed
    layout: str = "flas"
    engine: str = ""
    embedding: str = ""
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.cell_of)

    def row_col(self, i: int) -> tuple[int, int]:
        return divmod(int(self.cell_of[i]), self.cols)


def validate(options: MosaicOptions) -> None:
    """Check option values (declared choices and ranges, and the background colour); building the
    options already checks the declared ones, this repeats it for an object changed since."""
    from PIL import ImageColor

    check_options(options)
    try:
        ImageColor.getrgb(options.background)
    except ValueError:
        raise TrailcamError(f"mosaic option background={options.background!r} is not a colour (try '#181818')")


def _embedding_method(options: MosaicOptions, n: int) -> str:
    if options.embedding != "auto":
        return options.embedding
    return "umap" if n <= 20000 else "pca"


def compute_layout(vectors: np.ndarray, options: Optional[MosaicOptions] = None, with_points: bool = False,
                   progress: Optional[ProgressCallback] = None) -> GridLayout:
    """Lay n feature vectors out on a grid. ``with_points`` also computes the 2D embedding for flas."""
    options = options or MosaicOptions()
    validate(options)
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise TrailcamError(f"features must be a 2D array (n, d), got shape {x.shape}")
    n = len(x)
    if n < 2:
        raise TrailcamError(f"a mosaic needs at least 2 images, got {n}")
    if not np.isfinite(x).all():
        raise TrailcamError("features contain NaN or infinite values")
    progress = ensure(progress)
    rows, cols = grid_shape(n, options.aspect, options.columns)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    points = None
    method = _embedding_method(options, n)

    def sub(label: str):
        return lambda frac, msg="": progress(int(frac * 1000), 1000, f"{label}: {msg}" if msg else label)

    if options.layout == "lap" or with_points:
        t = time.perf_counter()
        progress(0, 1000, f"{method} 2D embedding")
        points = embed_2d(x, method, options.seed)
        timings["embedding"] = time.perf_counter() - t
    if options.layout == "lap":
        t = time.perf_counter()
        cell_of = _layout.assign_points(points, rows, cols, exact_limit=options.exact_limit, progress=sub("assigning"))
        engine = "exact-lap" if n <= options.exact_limit else "split+block-lap"
        timings["assignment"] = time.perf_counter() - t
    elif options.layout == "flas":
        t = time.perf_counter()
        cell_of, engine = sort_features(x, rows, cols, options.seed, options.engine, progress=sub("sorting"))
        timings["sorting"] = time.perf_counter() - t
    else:
        raise TrailcamError(f"unknown layout {options.layout!r}; use flas or lap")
    progress(1000, 1000, "layout done")
    return GridLayout(np.asarray(cell_of, np.int64), rows, cols, points, options.layout, engine,
                      method if points is not None else "", time.perf_counter() - t0, timings)


def _load_embeddings(source: Union[Source, Embeddings], embed_options: EmbedOptions, out_dir: Path,
                     cache_dir: Optional[Path], progress) -> Embeddings:
    if isinstance(source, Embeddings):
        return source
    if isinstance(source, (str, os.PathLike)) and str(source).endswith(".npz") and Path(source).is_file():
        return Embeddings.load(source)
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        # an output folder inside the source folder must not feed its own mosaics back in
        source = [r for r in collect_records(source) if not is_within(r.path, out_dir)]
    return embed_images(source, embed_options, cache_dir=cache_dir if cache_dir else out_dir / "embed-cache",
                        progress=progress)


def make_mosaic(source: Union[Source, Embeddings], out_dir: str | os.PathLike, options: Optional[MosaicOptions] = None,
                embed_options: Optional[EmbedOptions] = None, cache_dir: Optional[str | os.PathLike] = None,
                progress: Optional[ProgressCallback] = None) -> BatchReport:
    """Features (cached) -> layout -> mosaic image, positions.json, scatter.png, viewer.html in ``out_dir``.

    ``source``: a folder, a list of image paths, ImageRecords, an ``Embeddings`` or an ``.npz``
    written by ``trailcam embed``. Example: ``make_mosaic("gen/", "out/gen-mosaic")``.
    """

    options = options or MosaicOptions()
    validate(options)
    embed_options = embed_options or EmbedOptions()
    progress = ensure(progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = BatchReport("mosaic")

    def stage(name: str, lo: int, hi: int):
        def cb(done, total, message="", preview=None):
            frac = done / total if total else 1.0
            progress(lo + int(frac * (hi - lo)), 1000, f"{name}: {message}" if message else name, preview)
        return cb

    emb = _load_embeddings(source, embed_options, out, Path(cache_dir) if cache_dir else None,
                           stage("features", 0, 400))
    for item, reason in emb.skipped:
        report.skip(item, reason)
    n = len(emb)
    if n < 2:
        raise TrailcamError(f"a mosaic needs at least 2 readable images, got {n}"
                            + (f" ({len(emb.skipped)} skipped: {emb.skipped[0][0]}: {emb.skipped[0][1]})"
                               if emb.skipped else ""))
    if not isinstance(source, Embeddings) and not str(source).endswith(".npz"):
        report.outputs["embeddings"] = str(emb.save(out / "embeddings.npz"))
    report.processed = emb.computed
    report.up_to_date = n - emb.computed

    # the flas layout does not need a 2D embedding: above SCATTER_SAMPLE images the scatter plot gets
    # one of a seeded sample (UMAP of 20,000 images took longer than the layout itself)
    sample_scatter = options.scatter and options.layout == "flas" and n > SCATTER_SAMPLE
    layout = compute_layout(emb.vectors, options, with_points=options.scatter and not sample_scatter,
                            progress=stage("layout", 400, 600))
    if sample_scatter:
        progress(590, 1000, f"2D embedding of {SCATTER_SAMPLE} sampled images for the scatter plot")
        chosen = np.sort(np.random.default_rng(options.seed).choice(n, SCATTER_SAMPLE, replace=False))
        points = np.full((n, 2), np.nan)
        points[chosen] = embed_2d(emb.vectors[chosen], _embedding_method(options, SCATTER_SAMPLE), options.seed)
        layout.points, layout.embedding = points, _embedding_method(options, SCATTER_SAMPLE) + " (sample)"
    quality = None
    if options.quality and n >= 3:
        progress(600, 1000, "measuring DPQ16")
        quality = dpq(emb.vectors, layout.cell_of, layout.cols, p=16)
        report.outputs["dpq16"] = round(quality, 4)

    labels = emb.labels()
    records = emb.records or []
    names = [r.file_name or Path(r.path).name for r in records] if records else [Path(f).name for f in emb.files]
    keep = set()
    if options.scatter and layout.points is not None and options.scatter_thumbnails:
        drawn = np.nonzero(np.isfinite(layout.points[:, 0]))[0]
        keep = set(drawn[spread_sample(layout.points[drawn], options.scatter_thumbnails, options.seed)].tolist())
    mosaic, thumbs, failed = render_mosaic(emb.files, layout.cell_of, layout.rows, layout.cols, options.tile,
                                           options.background, workers=max(2, embed_options.workers), keep=keep,
                                           progress=stage("drawing", 620, 900))
    for i in failed:
        report.skip(names[i], "could not be read again when drawing (left blank)")
    dest, scale = save_image(mosaic, out / f"mosaic.{options.format}", options.max_image_side)
    report.outputs["mosaic"] = str(dest)
    if scale < 1:
        report.outputs["mosaic_scale"] = round(scale, 4)

    copies: dict[str, list[str]] = {}
    for dup, first in emb.duplicates.items():
        copies.setdefault(first, []).append(dup)
    items = []
    for i in range(n):
        r, c = layout.row_col(i)
        rec = records[i] if records else None
        items.append({"id": emb.ids[i], "file": emb.files[i], "file_name": names[i], "cell": int(layout.cell_of[i]),
                      "row": r, "col": c,
                      "point": [round(float(v), 5) for v in layout.points[i]]
                      if layout.points is not None and np.isfinite(layout.points[i, 0]) else None,
                      "labels": list(rec.labels) if rec else [], "tags": labels[i],
                      "duplicates": copies.get(emb.ids[i])})
    positions = {"rows": layout.rows, "cols": layout.cols, "tile": options.tile, "n": n,
                 "holes": layout.rows * layout.cols - n, "layout": layout.layout, "engine": layout.engine,
                 "embedding": layout.embedding or None, "seed": options.seed, "dpq16": quality,
                 "features": emb.key, "layout_seconds": round(layout.seconds, 3), "items": items}
    report.outputs["positions"] = str(write_json(out / "positions.json", positions))
    title = options.title or out.resolve().name
    if options.scatter and layout.points is not None:
        progress(910, 1000, "scatter plot")
        primary = [rec.label if rec else None for rec in (records or [None] * n)]
        report.outputs["scatter"] = str(scatter_plot(layout.points, primary, thumbs, out / "scatter.png",
                                                     title=f"{title} ({layout.embedding})"))
    if options.viewer:
        progress(950, 1000, "viewer")
        written = write_viewer(out / "viewer.html", mosaic, layout.cell_of, layout.rows, layout.cols, options.tile,
                               emb.ids, names, emb.files, labels, title=title)
        report.outputs.update(written)
    progress(1000, 1000, "done", mosaic if max(mosaic.size) <= 2048 else None)
    return report


def item_at(positions: dict, x: float, y: float, scale: float = 1.0) -> Optional[dict]:
    """The positions.json item drawn at pixel (x, y) of the mosaic image (None for a hole or outside).

    ``scale`` is the saved image's size relative to full resolution (``outputs["mosaic_scale"]``).
    """
    side = positions["tile"] * scale
    row, col = int(y // side), int(x // side)
    if not (0 <= row < positions["rows"] and 0 <= col < positions["cols"]):
        return None
    cell = row * positions["cols"] + col
    return next((it for it in positions["items"] if it["cell"] == cell), None)
