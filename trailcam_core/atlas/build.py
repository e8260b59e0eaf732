"""Build, extend and report on an atlas: every photo of a collection and the generations among them.

    sources = [AtlasSource("cct/", "real", metadata="caltech.json"), AtlasSource("gen/", "lora", name="lora-v1")]
    report = build_atlas(sources, "atlas/", AtlasOptions(tile=32))
    report = add_to_atlas("atlas/", [AtlasSource("gen2/", "lora", name="lora-v2")])    # incremental
    print(atlas_report("atlas/")["text"])

The atlas folder::

    index.html              the viewer (open it in a browser; it reads the current version only)
    atlas.json              what the atlas is: sources, features, grid, current version
    embed-cache/            feature vectors by file content and model (shared by every version)
    v<k>/                   one complete version: tiles/, meta/, layers/, search/, manifest.js,
                            items.npz (per item: id, file, name, source, cell, tags), vectors.npy,
                            nearest.npz, real_nn.npy, report.json, report.png, overview.jpg, favourites.jpg

A version is written as ``.v<k>.partial`` and renamed when complete; ``atlas.json`` and
``index.html`` are replaced (atomically) only then, and the previous version is removed last: an
interrupted build or add leaves the existing atlas as it was (and the cache keeps every vector
computed, so the rerun continues).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from trailcam_core.base import (BatchReport, DataError, describe, ensure, ImageRecord, option, Options,
                                ProgressCallback, TrailcamError, write_json)
from trailcam_core.embed import embed_images, Embeddings, EmbedOptions, feature_key
from trailcam_core.mosaic import TILE
from trailcam_core.atlas.layout import atlas_layout, place_new
from trailcam_core.atlas.nearest import copy_report, knn, real_nn_distances
from trailcam_core.atlas.pyramid import highlight_picture, render_pyramid
from trailcam_core.atlas.viewer import write_atlas_data, write_atlas_page
from trailcam_core.atlas.report import report_figure
from trailcam_core.atlas.sources import AtlasSource, item_tags, item_values, parse_source, source_records

MANIFEST = "atlas.json"
FORMAT = "trailcam-atlas"


@dataclass
class AtlasOptions(Options):
    """How an atlas is laid out, drawn and compared."""

    STAGE = "atlas"

    tile: int = option(32, "Pixels per image at full zoom (any size works at any N: the pyramid is drawn in bands)",
                       min=8, max=512)
    dims: int = option(64, "Principal components the layout sorts (64 keeps raw vc-flas's quality at a "
                       "fraction of its time)", min=2, max=4096)
    engine: str = option("auto", "Sorter: vc-flas if installed, else the built-in one", choices=("auto", "vc-flas", "las"))
    aspect: float = option(1.0, "Grid aspect ratio, columns / rows", min=0.05, max=20.0)
    spare: float = option(0.02, "Free cells spread over the grid for images added later (fraction of N)",
                          min=0.0, max=1.0)
    nearest: int = option(4, "Nearest real photos listed for each generated image", min=1, max=50)
    copy_percentile: float = option(1.0, "Generations nearer to a real photo than this percentile of the real "
                                    "photos' own nearest-neighbour distances are flagged as likely copies",
                                    min=0.01, max=50.0)
    real_sample: int = option(2000, "Real photos sampled to measure real-to-real nearest distances",
                              min=10, max=1_000_000)
    quality: bool = option(True, "Measure the layout's DPQ16 (on a 1,000-row sample above 6,000 images)")
    relayout: bool = option(False, "add: lay every image out again instead of placing the new ones in free cells")
    seed: int = option(0, "Random seed (same seed, same layout)", min=0, max=2**31 - 1)
    draw_workers: int = option(2, "Threads loading thumbnails while drawing", min=1, max=64)
    background: str = option("#181818", "Colour of empty cells")
    title: str = option("", "Title of the viewer (default: the atlas folder name)")


# ----------------------------------------------------------------------------- the atlas on disk

@dataclass
class Atlas:
    """An atlas as read from disk (``open_atlas``): the manifest and the current version's arrays."""

    root: Path
    manifest: dict
    ids: list[str]
    files: list[str]
    names: list[str]
    source_of: np.ndarray
    cell_of: np.ndarray
    values: list[dict]
    tags: list[list[str]]
    vectors: np.ndarray
    sources: list[AtlasSource] = field(default_factory=list)

    @property
    def version_dir(self) -> Path:
        return self.root / self.manifest["version"]

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"])

    @property
    def cols(self) -> int:
        return int(self.manifest["cols"])

    def item_at_cell(self, cell: int) -> Optional[int]:
        hit = np.nonzero(self.cell_of == int(cell))[0]
        return int(hit[0]) if len(hit) else None


def open_atlas(root: str | os.PathLike, check_sources: bool = True) -> Atlas:
    """Read an atlas folder; with ``check_sources`` every source folder must still exist."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise TrailcamError(f"{root}: not an atlas (no {MANIFEST}; make one with `trailcam atlas build`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the atlas manifest ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise DataError(f"{path}: not a trailcam atlas manifest")
    sources = [AtlasSource(s["path"], s["kind"], s["name"], s.get("metadata"), s.get("project"))
               for s in manifest["sources"]]
    if check_sources:
        for s in sources:
            if not Path(s.path).exists():
                raise TrailcamError(f"source {s.name!r}: {s.path} has vanished since the atlas was built "
                                    "(put it back, or build the atlas again without it)")
    vdir = root / manifest["version"]
    try:
        with np.load(vdir / "items.npz", allow_pickle=False) as z:
            ids, files, names = [str(x) for x in z["ids"]], [str(x) for x in z["files"]], [str(x) for x in z["names"]]
            source_of, cell_of = z["source"].astype(np.int64), z["cell"].astype(np.int64)
            extra = json.loads(z["extra"].tobytes().decode("utf-8"))
        vectors = np.load(vdir / "vectors.npy", mmap_mode="r")
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{vdir}: the atlas version is damaged ({exc}); build it again") from exc
    return Atlas(root, manifest, ids, files, names, source_of, cell_of, extra["values"], extra["tags"], vectors, sources)


def _embed_key_of(options: EmbedOptions) -> dict:
    return {"features": options.features, "model": options.model, "pretrained": options.pretrained,
            "pyramid_size": options.pyramid_size}


def _load_source_embeddings(source: AtlasSource, records: list[ImageRecord], embed_options: EmbedOptions,
                            cache_dir: Path, progress) -> Embeddings:
    path = Path(source.path)
    if path.suffix.lower() == ".npz" and path.is_file():
        return Embeddings.load(path)
    return embed_images(records, embed_options, cache_dir=cache_dir, progress=progress)


def _check_same_model(keys: dict[str, str]) -> str:
    distinct = {}
    for name, key in keys.items():
        distinct.setdefault(key, name)
    if len(distinct) > 1:
        (k1, n1), (k2, n2) = list(distinct.items())[:2]
        raise TrailcamError(f"sources were embedded with different models: {n1!r} with {k1} and {n2!r} with {k2}; "
                            "an atlas compares images in one feature space (embed every source with the same model)")
    return next(iter(distinct))


# ----------------------------------------------------------------------------- build

def release_memory() -> None:
    """Collect garbage and hand freed heap back to the system (glibc keeps it otherwise: after the
    search and the drawing that is hundreds of MB of resident memory nobody uses)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):     # not glibc (macOS, Windows, musl): nothing to trim
        pass


def _stage(progress, lo: int, hi: int, name: str):
    def cb(done, total, message="", preview=None):
        frac = done / total if total else 1.0
        progress(lo + int(frac * (hi - lo)), 1000, f"{name}: {message}" if message else name, preview)
    return cb


def _gather(sources: Sequence[AtlasSource], embed_options: EmbedOptions, cache_dir: Path, report: BatchReport,
            exclude: Path, progress, lo: int, hi: int) -> list[tuple[AtlasSource, Embeddings]]:
    out = []
    keys: dict[str, str] = {}
    span = (hi - lo) / max(1, len(sources))
    for k, source in enumerate(sources):
        records, skipped = ([], []) if str(source.path).endswith(".npz") else source_records(source, exclude)
        for item, reason in skipped:
            report.skip(f"{source.name}: {item}", reason)
        if not records and not str(source.path).endswith(".npz"):
            raise TrailcamError(f"source {source.name!r}: no images in {source.path}")
        emb = _load_source_embeddings(source, records, embed_options, cache_dir,
                                      _stage(progress, int(lo + k * span), int(lo + (k + 1) * span),
                                             f"features of {source.name}"))
        for item, reason in emb.skipped:
            report.skip(f"{source.name}: {item}", reason)
        if len(emb) == 0:
            raise TrailcamError(f"source {source.name!r}: none of its {len(records)} images could be read"
                                + (f" ({emb.skipped[0][0]}: {emb.skipped[0][1]})" if emb.skipped else ""))
        keys[source.name] = emb.key
        report.processed += emb.computed
        report.up_to_date += len(emb) - emb.computed
        out.append((source, emb))
    _check_same_model(keys)
    names = [s.name for s, _ in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise TrailcamError(f"two sources are named {sorted(dup)[0]!r}: give each a name (name=kind:path)")
    return out


def _items_of(gathered: list[tuple[int, AtlasSource, Embeddings]]) -> tuple[list, list, list, list, list, list]:
    ids, files, names, source_of, values, tags = [], [], [], [], [], []
    for si, source, emb in gathered:
        recs = emb.records or [ImageRecord(image_id=i, path=Path(f), file_name=Path(f).name)
                               for i, f in zip(emb.ids, emb.files)]
        for rec in recs:
            v = item_values(rec, source)
            ids.append(rec.image_id)
            files.append(str(rec.path))
            names.append(rec.file_name or Path(rec.path).name)
            source_of.append(si)
            values.append(v)
            tags.append(item_tags(v, rec))
    return ids, files, names, source_of, values, tags


class _Items:
    """The viewer's per-item records, made on demand (a list of 243,100 dicts would cost ~0.2 GB)."""

    def __init__(self, names, files, source_of, tags, nearest):
        self.names, self.files, self.source_of, self.tags, self.nearest = names, files, source_of, tags, nearest

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict:
        return {"name": self.names[i], "file": self.files[i], "source": int(self.source_of[i]), "tags": self.tags[i],
                "nearest": self.nearest.get(i)}

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _write_version(root: Path, version: str, *, manifest: dict, ids, files, names, source_of: np.ndarray,
                   cell_of: np.ndarray, values, tags, vectors: np.ndarray, options: AtlasOptions,
                   sources: list[AtlasSource], report: BatchReport, progress, previous: Optional[Path] = None,
                   dirty: Optional[np.ndarray] = None) -> dict:
    """Write one complete version into ``root/.<version>.partial``; returns the manifest to publish."""
    part = root / f".{version}.partial"
    if part.exists():
        shutil.rmtree(part)
    part.mkdir(parents=True)
    rows, cols = manifest["rows"], manifest["cols"]
    n = len(ids)
    real_mask = np.array([not sources[s].generated for s in source_of], bool)
    timings = manifest.setdefault("timings", {})

    # nearest real photos of every generated image; the real photos' own nearest distances
    t = time.perf_counter()
    progress(620, 1000, "nearest real photos")
    nearest: dict[int, list] = {}
    stats = {}
    real_idx = np.nonzero(real_mask)[0]
    gen_idx = np.nonzero(~real_mask)[0]
    nn_i = np.zeros((0, options.nearest), np.int64)
    nn_d = np.zeros((0, options.nearest), np.float32)
    real_nn = np.zeros(0, np.float32)
    if len(real_idx) >= 2:
        contiguous = real_idx[-1] - real_idx[0] + 1 == len(real_idx)
        real_vec = vectors[real_idx[0]:real_idx[-1] + 1] if contiguous else vectors[real_idx]   # a view when it can
        real_nn = real_nn_distances(real_vec, options.real_sample, options.seed)
        if len(gen_idx):
            nn_i, nn_d = knn(vectors[gen_idx], real_vec, k=options.nearest)
            nn_i = real_idx[nn_i]
            for row, g in enumerate(gen_idx):
                nearest[int(g)] = [[int(j), float(d)] for j, d in zip(nn_i[row], nn_d[row])]
        for si, s in enumerate(sources):
            if s.generated:
                sel = source_of[gen_idx] == si
                st = copy_report(nn_d[sel, 0] if len(nn_d) else np.zeros(0), real_nn, options.copy_percentile)
                st["copies"] = [{"name": names[g], "nearest": names[int(nn_i[r, 0])], "distance": float(nn_d[r, 0])}
                                for r, g in zip(np.nonzero(sel)[0], gen_idx[sel]) if nn_d[r, 0] < st["threshold"]]
                stats[s.name] = st
    elif len(gen_idx):
        report.skip("nearest real photos", "fewer than 2 real photos in the atlas: no comparison")
    timings["nearest"] = round(time.perf_counter() - t, 3)
    with open(part / "nearest.npz", "wb") as fh:
        np.savez(fh, items=gen_idx, neighbours=nn_i, distances=nn_d)
    np.save(part / "real_nn.npy", real_nn)

    # the pyramid, the overview and the favourites picture
    release_memory()
    t = time.perf_counter()
    levels, failed, overview = render_pyramid(files, cell_of, rows, cols, options.tile, part / "tiles",
                                              options.background, options.draw_workers, previous=previous,
                                              dirty=dirty, progress=_stage(progress, 650, 930, "drawing"))
    timings["render"] = round(time.perf_counter() - t, 3)
    for i in failed:
        report.skip(f"{sources[source_of[i]].name}: {names[i]}", "could not be read when drawing (left blank)")
    overview.save(part / "overview.jpg", quality=88)
    favourite = np.array([v.get("favourite") == "favourite" for v in values], bool)
    cell_fav = np.zeros(rows * cols, bool)
    cell_fav[cell_of[favourite]] = True
    highlight_picture(overview, cell_fav, rows, cols).save(part / "favourites.jpg", quality=88)
    manifest["favourites"] = int(favourite.sum())

    # data files for the viewer
    release_memory()
    progress(940, 1000, "viewer")
    items = _Items(names, files, source_of, tags, nearest)
    layer_names = ("source", "label", "location", "time_of_day", "glitch", "favourite")
    layers = {k: [v.get(k) for v in values] for k in layer_names}
    src_list = [{"name": s.name, "kind": s.kind, "n": int((source_of == si).sum())} for si, s in enumerate(sources)]
    page = {"rows": rows, "cols": cols, "tile": options.tile, "tile_px": TILE,
            "levels": levels, "n": n, "sources": src_list}
    title = options.title or root.resolve().name
    write_atlas_data(root, part, version, page, cell_of, items, layers, title)

    # arrays for add / report, and the report
    with open(part / "items.npz", "wb") as fh:
        np.savez(fh, ids=np.array(ids, dtype=str), files=np.array(files, dtype=str), names=np.array(names, dtype=str),
                 source=np.asarray(source_of, np.int32), cell=np.asarray(cell_of, np.int64),
                 extra=np.frombuffer(json.dumps({"values": values, "tags": tags}, ensure_ascii=False).encode("utf-8"),
                                     np.uint8))      # UTF-8 bytes: a numpy str array would take 4 bytes a character
    np.save(part / "vectors.npy", np.asarray(vectors, np.float32))
    rep = {"sources": stats, "real_nn_sample": int(len(real_nn)), "copy_percentile": options.copy_percentile}
    write_json(part / "report.json", rep)
    if stats:
        report_figure(real_nn, {s: nn_d[source_of[gen_idx] == si, 0] for si, s in
                                ((si, s.name) for si, s in enumerate(sources) if s.generated)},
                      stats, part / "report.png")
    manifest.update(version=version, title=title, n=n, sources=[s.to_dict() | {"n": src_list[i]["n"]}
                                                                 for i, s in enumerate(sources)])
    return manifest


def _publish(root: Path, version: str, manifest: dict) -> None:
    part = root / f".{version}.partial"
    final = root / version
    if final.exists():
        shutil.rmtree(final)
    os.replace(part, final)
    old = None
    if (root / MANIFEST).is_file():
        try:
            old = json.loads((root / MANIFEST).read_text(encoding="utf-8")).get("version")
        except ValueError:
            old = None
    write_json(root / MANIFEST, manifest)
    write_atlas_page(root, version, manifest["title"])
    if old and old != version and (root / old).is_dir():
        shutil.rmtree(root / old, ignore_errors=True)


def _next_version(root: Path) -> str:
    taken = [int(p.name[1:]) for p in root.glob("v*") if p.is_dir() and p.name[1:].isdigit()]
    for p in root.glob(".v*.partial"):     # a killed run's leftovers
        shutil.rmtree(p, ignore_errors=True)
    return f"v{max(taken, default=0) + 1}"


def validate(options: AtlasOptions) -> None:
    for info in describe(AtlasOptions):
        value = getattr(options, info.name)
        if info.choices and value not in info.choices:
            raise TrailcamError(f"atlas option {info.name}={value!r}: choose one of {', '.join(info.choices)}")
        if (info.min is not None and value < info.min) or (info.max is not None and value > info.max):
            raise TrailcamError(f"atlas option {info.name}={value!r} is outside {info.min}..{info.max}")


def build_atlas(sources: Sequence[AtlasSource], out_dir: str | os.PathLike, options: Optional[AtlasOptions] = None,
                embed_options: Optional[EmbedOptions] = None, cache_dir: Optional[str | os.PathLike] = None,
                progress: Optional[ProgressCallback] = None) -> BatchReport:
    """Embed every source (cached), lay all of them out on one grid, draw and write the atlas."""
    options = options or AtlasOptions()
    validate(options)
    embed_options = embed_options or EmbedOptions()
    progress = ensure(progress)
    sources = [s if isinstance(s, AtlasSource) else parse_source(str(s)) for s in sources]
    if not sources:
        raise TrailcamError("an atlas needs at least one source")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else root / "embed-cache"
    report = BatchReport("atlas build")
    t0 = time.perf_counter()
    gathered = _gather(sources, embed_options, cache, report, root, progress, 0, 400)
    key = gathered[0][1].key
    ids, files, names, source_of, values, tags = _items_of([(i, s, e) for i, (s, e) in enumerate(gathered)])
    for _, e in gathered:      # the items hold what they need of the records (243,100 records: ~0.3 GB)
        e.records = []
    import gc

    gc.collect()               # before the joint matrix is made: the records must not add to that peak
    vectors = (gathered[0][1].vectors if len(gathered) == 1 else np.concatenate([e.vectors for _, e in gathered]))
    vectors = np.asarray(vectors, np.float32)      # one source: no copy of its matrix
    for _, e in gathered:                          # several: the parts go, only the joint matrix stays
        e.vectors = e.vectors[:0]
    n = len(ids)
    if n < 2:
        raise TrailcamError(f"an atlas needs at least 2 readable images, got {n}")
    from trailcam_core.mosaic import grid_shape

    rows, cols = grid_shape(int(math.ceil(n * (1 + options.spare))), options.aspect)
    progress(400, 1000, f"laying out {n} images")
    t = time.perf_counter()
    cell_of, engine, lt = atlas_layout(vectors, rows, cols, options.dims, options.seed, options.engine,
                                       free_cells_sorted=options.spare > 0,
                                       progress=lambda f, m="": progress(400 + int(f * 180), 1000, f"layout: {m}"))
    layout_s = time.perf_counter() - t
    quality = _quality(vectors, cell_of, cols, options)
    manifest = {"format": FORMAT, "version": "", "rows": rows, "cols": cols, "tile": options.tile, "feature_key": key,
                "embed": _embed_key_of(embed_options), "engine": engine, "dpq16": quality,
                "timings": {"layout": round(layout_s, 3), **{k: round(v, 3) for k, v in lt.items()}},
                "options": dataclasses.asdict(options)}
    version = _next_version(root)
    manifest = _write_version(root, version, manifest=manifest, ids=ids, files=files, names=names,
                              source_of=np.asarray(source_of, np.int64), cell_of=cell_of, values=values, tags=tags,
                              vectors=vectors, options=options, sources=[s for s, _ in gathered], report=report,
                              progress=progress)
    manifest["timings"]["total"] = round(time.perf_counter() - t0, 3)
    _publish(root, version, manifest)
    return _finish(report, root, manifest)


def _quality(vectors, cell_of, cols, options) -> Optional[float]:
    if not options.quality or len(vectors) < 3:
        return None
    from trailcam_core.mosaic import dpq

    return round(dpq(vectors, cell_of, cols, p=16), 4)


def _finish(report: BatchReport, root: Path, manifest: dict) -> BatchReport:
    vdir = root / manifest["version"]
    report.outputs.update(viewer=str(root / "index.html"), atlas=str(root / MANIFEST),
                          overview=str(vdir / "overview.jpg"), favourites=str(vdir / "favourites.jpg"),
                          n=manifest["n"], grid=f"{manifest['rows']} x {manifest['cols']}")
    if (vdir / "report.png").is_file():
        report.outputs["report"] = str(vdir / "report.png")
    if manifest.get("dpq16") is not None:
        report.outputs["dpq16"] = manifest["dpq16"]
    rep = json.loads((vdir / "report.json").read_text(encoding="utf-8"))
    flagged = sum(s["flagged"] for s in rep["sources"].values())
    if rep["sources"]:
        report.outputs["likely_copies"] = flagged
    return report


# ----------------------------------------------------------------------------- add

def add_to_atlas(atlas_dir: str | os.PathLike, sources: Sequence[AtlasSource], options: Optional[AtlasOptions] = None,
                 embed_options: Optional[EmbedOptions] = None, cache_dir: Optional[str | os.PathLike] = None,
                 progress: Optional[ProgressCallback] = None, changes: Optional[dict] = None) -> BatchReport:
    """Add sources to an existing atlas: cached vectors reused, placed items not moved (unless ``relayout``).

    ``options`` default to the atlas's own, with ``changes`` (e.g. ``{"relayout": True}``) applied;
    ``embed_options`` default to the model the atlas was embedded with.
    """
    atlas = open_atlas(atlas_dir)
    root = atlas.root
    old_opts = atlas.manifest.get("options", {})
    options = options or AtlasOptions(**{k: v for k, v in old_opts.items() if k in
                                         {f.name for f in dataclasses.fields(AtlasOptions)}})
    options = dataclasses.replace(options, **(changes or {}), tile=int(atlas.manifest["tile"]))
    validate(options)
    if embed_options is None:
        embed_options = EmbedOptions(**atlas.manifest.get("embed", {}))
    progress = ensure(progress)
    sources = [s if isinstance(s, AtlasSource) else parse_source(str(s), "generated") for s in sources]
    if not sources:
        raise TrailcamError("name at least one source to add")
    taken = {s.name for s in atlas.sources}
    for s in sources:
        if s.name in taken:
            raise TrailcamError(f"the atlas already has a source named {s.name!r}: give the new one another name "
                                "(name=kind:path)")
    expected = atlas.manifest["feature_key"]
    given = feature_key(embed_options) if not embed_options.features == "clip" else None
    if given is not None and given != expected:
        raise TrailcamError(f"the atlas was embedded with {expected} but the new images would be embedded with "
                            f"{given}: use the atlas's model (or build a new atlas)")
    report = BatchReport("atlas add")
    report.up_to_date = len(atlas.ids)
    cache = Path(cache_dir) if cache_dir else root / "embed-cache"
    gathered = _gather(sources, embed_options, cache, report, root, progress, 0, 400)
    for s, e in gathered:
        if e.key != expected:
            raise TrailcamError(f"sources were embedded with different models: the atlas with {expected} and "
                                f"{s.name!r} with {e.key}")
    base = len(atlas.sources)
    ids, files, names, source_of, values, tags = _items_of([(base + i, s, e) for i, (s, e) in enumerate(gathered)])
    new_vec = np.concatenate([e.vectors for _, e in gathered]).astype(np.float32)
    all_sources = atlas.sources + [s for s, _ in gathered]
    vectors = np.concatenate([np.asarray(atlas.vectors), new_vec])
    rows, cols = atlas.rows, atlas.cols
    t = time.perf_counter()
    previous, dirty = None, None
    if options.relayout:
        from trailcam_core.mosaic import grid_shape

        rows, cols = grid_shape(int(math.ceil(len(vectors) * (1 + options.spare))), options.aspect)
        cell_of, engine, _ = atlas_layout(vectors, rows, cols, options.dims, options.seed, options.engine,
                                          free_cells_sorted=options.spare > 0)
    else:
        new_cells, rows = place_new(new_vec, np.asarray(atlas.vectors), atlas.cell_of, rows, cols)
        cell_of = np.concatenate([atlas.cell_of, new_cells])
        engine = atlas.manifest.get("engine", "") + " + placed"
        previous, dirty = atlas.version_dir / "tiles", new_cells
        if rows != atlas.rows:                # new rows at the bottom: their bands are new anyway
            dirty = np.concatenate([new_cells, np.arange(atlas.rows * cols, rows * cols)])
    layout_s = time.perf_counter() - t
    report.processed = len(ids)
    manifest = dict(atlas.manifest, rows=rows, cols=cols, engine=engine,
                    dpq16=_quality(vectors, cell_of, cols, options),
                    timings={"layout": round(layout_s, 3)}, options=dataclasses.asdict(options))
    version = _next_version(root)
    manifest = _write_version(root, version, manifest=manifest, ids=atlas.ids + ids, files=atlas.files + files,
                              names=atlas.names + names,
                              source_of=np.concatenate([atlas.source_of, np.asarray(source_of, np.int64)]),
                              cell_of=cell_of, values=atlas.values + values, tags=atlas.tags + tags, vectors=vectors,
                              options=options, sources=all_sources, report=report, progress=progress,
                              previous=previous, dirty=dirty)
    del atlas                                  # release the memory-mapped vectors before the old version goes
    _publish(root, version, manifest)
    return _finish(report, root, manifest)


def atlas_report(atlas_dir: str | os.PathLike, copy_percentile: Optional[float] = None) -> dict:
    """Per generated source: nearest-real distances against real-real ones, likely copies; with text."""
    atlas = open_atlas(atlas_dir, check_sources=False)
    vdir = atlas.version_dir
    rep = json.loads((vdir / "report.json").read_text(encoding="utf-8"))
    if copy_percentile is not None and copy_percentile != rep.get("copy_percentile"):
        if not 0 < copy_percentile < 100:
            raise TrailcamError(f"copy percentile {copy_percentile} must be between 0 and 100")
        with np.load(vdir / "nearest.npz") as z:
            items, neigh, dist = z["items"], z["neighbours"], z["distances"]
        real_nn = np.load(vdir / "real_nn.npy")
        for si, s in enumerate(atlas.sources):
            if not s.generated or not len(real_nn):
                continue
            sel = atlas.source_of[items] == si
            st = copy_report(dist[sel, 0], real_nn, copy_percentile)
            st["copies"] = [{"name": atlas.names[g], "nearest": atlas.names[int(neigh[r, 0])],
                             "distance": float(dist[r, 0])}
                            for r, g in zip(np.nonzero(sel)[0], items[sel]) if dist[r, 0] < st["threshold"]]
            rep["sources"][s.name] = st
        rep["copy_percentile"] = copy_percentile
    lines = [f"Atlas {atlas.root}: {atlas.manifest['n']} images on {atlas.rows} x {atlas.cols}"
             + (f", DPQ16 {atlas.manifest['dpq16']}" if atlas.manifest.get("dpq16") is not None else "")]
    for s in atlas.sources:
        lines.append(f"  {s.name} ({s.kind}): {sum(1 for x in atlas.source_of if x == atlas.sources.index(s))} images")
    if not rep["sources"]:
        lines.append("No generated sources: nothing to compare with the real photos.")
    for name, st in rep["sources"].items():
        p = st.get("nearest_real_percentiles") or {}
        lines.append(f"{name}: {st['n']} generations; nearest-real distance median {p.get('50', float('nan')):.4f} "
                     f"vs real-real median {st['real_nn_percentiles']['50']:.4f} "
                     f"(ratio {st.get('median_ratio', float('nan')):.2f}); "
                     f"{st['flagged']} closer than percentile {rep['copy_percentile']:g} of real-real distances "
                     f"({st['threshold']:.4f}): likely copies")
        for c in st["copies"][:20]:
            lines.append(f"    {c['name']} ~ {c['nearest']} ({c['distance']:.4f})")
    rep["text"] = "\n".join(lines)
    rep["figure"] = str(vdir / "report.png") if (vdir / "report.png").is_file() else None
    return rep
