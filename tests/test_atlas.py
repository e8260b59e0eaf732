"""Atlases: whole-collection layout, band-by-band pyramid, nearest real photos, incremental add, bad input."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trailcam_core.atlas.build import AtlasOptions, add_to_atlas, atlas_report, build_atlas, open_atlas
from trailcam_core.atlas.sources import AtlasSource, parse_source
from trailcam_core.atlas.layout import atlas_layout, pca_blockwise, place_new
from trailcam_core.atlas.embedding import embed_shard
from trailcam_core.atlas.nearest import knn, real_nn_distances
from trailcam_core.atlas.pyramid import level_sizes, render_pyramid
from trailcam_core.embed.features import EmbedOptions, embed_images
from trailcam_core.base.errors import Cancelled, TrailcamError
from trailcam_core.mosaic import dpq
from trailcam_core.mosaic.layout import grid_shape

PYRAMID = EmbedOptions(features="pyramid", pyramid_size=8)
FAST = AtlasOptions(tile=16, dims=16, real_sample=200)


def _photos(folder: Path, n: int, seed: int = 0, prefix: str = "img") -> list[Path]:
    """Images in a few colour themes with texture, so that layouts and neighbours are well defined."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    themes = rng.integers(0, 255, (6, 3))
    out = []
    for i in range(n):
        base = themes[i % 6] + rng.integers(-25, 25, 3)
        arr = np.clip(base[None, None, :] + rng.normal(0, 30, (24, 32, 3)), 0, 255).astype(np.uint8)
        p = folder / f"{prefix}_{i:03d}.jpg"
        Image.fromarray(arr).resize((64, 48), Image.BILINEAR).save(p, quality=92)
        out.append(p)
    return out


def _copies(src: list[Path], folder: Path, novel: int = 3) -> list[Path]:
    """Near-copies of some real photos (tiny noise) and a few images unlike any of them."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, p in enumerate(src):
        arr = np.asarray(Image.open(p).convert("RGB")).astype(float)
        arr += np.random.default_rng(i).normal(0, 2, arr.shape)
        q = folder / f"copy_{i}.png"
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(q)
        out.append(q)
    for i in range(novel):
        q = folder / f"novel_{i}.png"
        yy, xx = np.mgrid[0:48, 0:64]
        Image.fromarray(((np.sin(xx / (3 + i)) * np.cos(yy / 5) + 1) * 127).astype(np.uint8)).convert("RGB").save(q)
        out.append(q)
    return out


@pytest.fixture()
def collection(tmp_path):
    real = _photos(tmp_path / "real", 60)
    gen = _copies(real[:4], tmp_path / "gen")
    return tmp_path, real, gen


# ----------------------------------------------------------------------------- layout, search

def clustered(n: int, d: int = 48, k: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((k, d)) * 3
    return (c[rng.integers(0, k, n)] + rng.standard_normal((n, d))).astype(np.float32)


def test_pca_blockwise_matches_the_covariance_axes():
    x = clustered(3000, 32)
    p = pca_blockwise(x, 4, block=700)
    xc = x - x.mean(0)
    vals, vecs = np.linalg.eigh(np.cov(xc.T))
    ref = xc @ vecs[:, ::-1][:, :4]
    for j in range(4):    # same axes up to sign
        assert abs(np.corrcoef(p[:, j], ref[:, j])[0, 1]) > 0.999


@pytest.mark.parametrize("engine", ["auto", "las"])
def test_atlas_layout_sorts_with_spread_free_cells(engine):
    x = clustered(2000)
    rows, cols = grid_shape(2100)
    cell_of, name, _ = atlas_layout(x, rows, cols, dims=16, engine=engine, free_cells_sorted=True)
    assert len(set(cell_of.tolist())) == 2000 and cell_of.min() >= 0 and cell_of.max() < rows * cols
    free_rows = set(np.setdiff1d(np.arange(rows * cols), cell_of) // cols)
    assert min(free_rows) < rows // 2                           # spread over the grid, not only the last row
    rng = np.random.default_rng(0)
    assert dpq(x, cell_of, cols) > 2 * dpq(x, rng.permutation(rows * cols)[:2000], cols)
    assert name in ("vc-flas", "las")          # small sets sort their full features


def test_knn_is_exact_and_leaves_self_out():
    rng = np.random.default_rng(1)
    base, q = rng.standard_normal((5000, 24)).astype(np.float32), rng.standard_normal((70, 24)).astype(np.float32)
    idx, dist = knn(q, base, k=5, q_block=32, b_block=1024)
    full = np.linalg.norm(q[:, None] - base[None], axis=-1)
    assert (idx == np.argsort(full, 1)[:, :5]).all()
    assert np.allclose(dist, np.sort(full, 1)[:, :5], atol=1e-3)
    rows = np.array([3, 10, 4000])
    i2, _ = knn(base[rows], base, k=1, exclude_self=True, query_index=rows, b_block=999)
    assert (i2[:, 0] != rows).all()
    assert len(real_nn_distances(base, sample=100)) == 100
    with pytest.raises(TrailcamError, match="different models"):
        knn(q[:, :10], base)


def test_new_items_land_next_to_their_twins():
    x = clustered(900, 16)
    rows, cols = grid_shape(1000)
    cell_of, _, _ = atlas_layout(x, rows, cols, dims=16, free_cells_sorted=True)
    twins = np.array([5, 200, 600])
    cells, rows2 = place_new(x[twins] + 0.01, x, cell_of, rows, cols)
    assert rows2 == rows and not set(cells.tolist()) & set(cell_of.tolist())
    free = np.setdiff1d(np.arange(rows * cols), cell_of)
    for cell, twin in zip(cells, cell_of[twins]):     # the free cell nearest the twin (give or take one)
        ty, tx = divmod(int(twin), cols)
        best = np.sqrt((free // cols - ty) ** 2 + (free % cols - tx) ** 2).min()
        assert math.hypot(cell // cols - ty, cell % cols - tx) <= best + 1.5
    # no free cells left: the grid grows by whole rows and placed cells keep their row and column
    full = np.arange(rows * cols)[: rows * cols]
    cells, rows3 = place_new(x[:5], x[: len(full)] if len(full) <= len(x) else np.resize(x, (len(full), 16)),
                             full, rows, cols)
    assert rows3 == rows + 1 and (cells >= rows * cols).all()


# ----------------------------------------------------------------------------- the pyramid

def test_pyramid_bands_equal_one_big_canvas(tmp_path):
    files = _photos(tmp_path / "p", 50)
    rows, cols, tile = 23, 3, 24         # 72 x 552 px: two bands, a grid row straddling them (24 does not divide 512)
    cell_of = np.random.default_rng(0).permutation(rows * cols)[:50]
    levels, failed, overview = render_pyramid([str(f) for f in files], cell_of, rows, cols, tile, tmp_path / "t")
    assert failed == [] and levels == level_sizes(cols * tile, rows * tile)
    canvas = Image.new("RGB", (cols * tile, rows * tile), "#181818")
    from trailcam_core.mosaic.render import load_thumbnail

    for f, c in zip(files, cell_of):
        canvas.paste(load_thumbnail(f, tile), (int(c % cols) * tile, int(c // cols) * tile))
    got = Image.new("RGB", canvas.size)
    for y in range(levels[0]["ny"]):
        got.paste(Image.open(tmp_path / "t" / "0" / f"0_{y}.jpg"), (0, 512 * y))
    cellwise = lambda im: np.asarray(im.resize((cols, rows), Image.BOX), float)  # noqa: E731 (JPEG-proof)
    assert np.abs(cellwise(got) - cellwise(canvas)).max() < 6
    assert np.abs(np.asarray(got, float) - np.asarray(canvas, float)).mean() < 8           # JPEG noise only
    top = levels[-1]
    assert Image.open(tmp_path / "t" / str(top["level"]) / "0_0.jpg").size == (top["width"], top["height"])
    assert overview.size == (cols * tile, rows * tile)


def test_the_bomb_guard_stays_on_and_a_bomb_is_skipped(tmp_path):
    """A 20000 x 20000 PNG is skipped and named by mosaic and atlas alike; importing the renderer keeps the guard."""
    import trailcam_core.mosaic.render  # noqa: F401  (it used to lift the limit for the whole process)
    from PIL import Image as PILImage

    assert PILImage.MAX_IMAGE_PIXELS == 89478485
    src = tmp_path / "src"
    _photos(src, 4)
    PILImage.new("1", (20000, 20000)).save(src / "bomb.png")
    from trailcam_core.mosaic.make import MosaicOptions, make_mosaic

    rep = make_mosaic(src, tmp_path / "m", MosaicOptions(tile=8, scatter=False, viewer=False), PYRAMID)
    assert any(item == "bomb.png" and "decompression" in reason.lower() for item, reason in rep.skipped), rep.skipped
    rep = build_atlas([AtlasSource(str(src))], tmp_path / "a", FAST, PYRAMID)
    assert any(item.endswith("bomb.png") and "decompression" in reason.lower() for item, reason in rep.skipped)
    assert PILImage.MAX_IMAGE_PIXELS == 89478485


# ----------------------------------------------------------------------------- build, add, report

def _strength_grid(folder: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("trailcam", json.dumps({"prompt": "x", "loras": [], "model_strengths": [0, 1]}))
    Image.new("RGB", (64, 64), "white").save(folder / "grid.png", pnginfo=info)


def test_joint_atlas_links_generations_to_their_real_photos(collection):
    from trailcam_core.tags.curation import Project

    tmp, real, gen = collection
    _strength_grid(tmp / "gen")
    (tmp / "gen" / "broken.png").write_bytes(b"not a png")
    project = Project.open(tmp / "real")
    from trailcam_core.tags.auto import folder_records

    for rec in folder_records(tmp / "real"):
        project.add_record(rec)
    project.set_favorite(["img_007.jpg", "img_031.jpg"])
    project.set_reject(["img_002.jpg"])
    project.save()
    rep = build_atlas([AtlasSource(str(tmp / "real"), "real", "photos"), parse_source(f"lora-v1=lora:{tmp / 'gen'}")],
                      tmp / "atlas", FAST, PYRAMID)
    skipped = dict(rep.skipped)
    assert "strength grid" in skipped["lora-v1: grid.png"] and "cannot decode" in skipped["lora-v1: broken.png"]
    atlas = open_atlas(tmp / "atlas")
    assert atlas.manifest["n"] == 67 and [s.name for s in atlas.sources] == ["photos", "lora-v1"]
    assert sorted(set(atlas.cell_of.tolist())) == sorted(atlas.cell_of.tolist())        # one item per cell
    # every copy's nearest real photo is its original; only the copies are flagged
    r = atlas_report(tmp / "atlas")
    st = r["sources"]["lora-v1"]
    assert st["n"] == 7 and st["flagged"] == 4
    assert sorted((c["name"], c["nearest"]) for c in st["copies"]) == [(f"copy_{i}.png", f"img_{i:03d}.jpg")
                                                                      for i in range(4)]
    assert "likely copies" in r["text"] and Path(r["figure"]).is_file()
    # favourites in context: a layer and a picture
    vdir = atlas.version_dir
    layer = (vdir / "layers" / "favourite.js").read_text()
    manifest = json.loads((vdir / "manifest.js").read_text()[len("atlasManifest("):-3])
    legend = {e["value"]: e["count"] for e in manifest["layers"]["favourite"]}
    assert legend == {"favourite": 2, "reject": 1} and layer.startswith("atlasLayer(")
    assert {e["value"] for e in manifest["layers"]["source"]} == {"photos", "lora-v1"}
    over = np.asarray(Image.open(vdir / "overview.jpg"), float)
    fav = np.asarray(Image.open(vdir / "favourites.jpg"), float)
    assert fav.mean() < 0.6 * over.mean()                                # dimmed, with two cells lit
    # metadata comes in blocks; the page itself is small
    assert (tmp / "atlas" / "index.html").stat().st_size < 30000
    meta = (vdir / "meta" / "0_0.js").read_text()
    assert "copy_0.png" in meta and "img_000.jpg" in meta


def test_add_places_new_images_without_moving_the_others(collection):
    tmp, real, gen = collection
    build_atlas([AtlasSource(str(tmp / "real"))], tmp / "atlas", FAST, PYRAMID)
    before = open_atlas(tmp / "atlas")
    cells = dict(zip(before.ids, before.cell_of.tolist()))
    rows_before = before.rows
    tiles_before = {p.name: p.read_bytes() for p in (before.version_dir / "tiles" / "0").iterdir()}
    _copies(real[10:13], tmp / "gen2", novel=0)
    rep = add_to_atlas(tmp / "atlas", [AtlasSource(str(tmp / "gen2"), "lora", "lora-v2")])
    assert rep.processed == 3 and rep.up_to_date == 60
    after = open_atlas(tmp / "atlas")
    assert after.manifest["version"] == "v2" and not (tmp / "atlas" / "v1").exists()
    assert all(cells[i] == c for i, c in zip(after.ids[:60], after.cell_of[:60].tolist()))   # nobody moved
    assert after.rows == rows_before and len(set(after.cell_of.tolist())) == 63
    new = after.cell_of[60:]
    twins = np.array([cells[p.name] for p in real[10:13]])
    free = np.setdiff1d(np.arange(before.rows * before.cols), before.cell_of)
    cols = after.cols
    spent = []
    for cell, twin in sorted(zip(new.tolist(), twins.tolist()), key=lambda p: p[1]):
        ty, tx = divmod(int(twin), cols)
        left = np.setdiff1d(free, spent)
        best = np.sqrt((left // cols - ty) ** 2 + (left % cols - tx) ** 2).min()
        assert math.hypot(cell // cols - ty, cell % cols - tx) <= best + 2.5     # a free cell next to its twin
        spent.append(cell)
    # unchanged bands are reused as they were
    changed = {int(c) * 16 // 512 for c in new // after.cols}
    for name, data in tiles_before.items():
        if int(name.split("_")[1].split(".")[0]) not in changed:
            assert (after.version_dir / "tiles" / "0" / name).read_bytes() == data
    # the cache is reused: the 60 photos cost nothing the second time; re-layout on request
    rep = add_to_atlas(tmp / "atlas", [AtlasSource(str(tmp / "gen"), "gan", "gan")], changes={"relayout": True})
    assert rep.processed == 7 and open_atlas(tmp / "atlas").manifest["n"] == 70
    assert "gan" in atlas_report(tmp / "atlas")["sources"]


def test_bad_input_gets_clear_errors_and_leaves_the_atlas_whole(collection):
    tmp, real, gen = collection
    (tmp / "empty").mkdir()
    with pytest.raises(TrailcamError, match="no images"):
        build_atlas([AtlasSource(str(tmp / "real")), AtlasSource(str(tmp / "empty"), "lora")], tmp / "x", FAST, PYRAMID)
    with pytest.raises(TrailcamError, match="does not exist"):
        build_atlas([AtlasSource(str(tmp / "nowhere"))], tmp / "x", FAST, PYRAMID)
    with pytest.raises(TrailcamError, match="kind"):
        AtlasSource("x", "photo")
    # mixed models: an embeddings file made with other features, named with both keys
    other = embed_images(tmp / "gen", EmbedOptions(features="pyramid", pyramid_size=4))
    other.save(tmp / "other.npz")
    with pytest.raises(TrailcamError, match=r"different models.*pyramid-v1\|8.*pyramid-v1\|4|different models.*pyramid-v1\|4.*pyramid-v1\|8"):
        build_atlas([AtlasSource(str(tmp / "real")), AtlasSource(str(tmp / "other.npz"), "lora")], tmp / "x",
                    FAST, PYRAMID)
    build_atlas([AtlasSource(str(tmp / "real"))], tmp / "atlas", FAST, PYRAMID)
    page = (tmp / "atlas" / "index.html").read_text()

    # interrupted while drawing: the atlas stays as it was
    def stop(done, total, message="", preview=None):
        if message.startswith("drawing"):
            raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        add_to_atlas(tmp / "atlas", [AtlasSource(str(tmp / "gen"), "lora", "g")], progress=stop)
    atlas = open_atlas(tmp / "atlas")
    assert atlas.manifest["version"] == "v1" and atlas.manifest["n"] == 60
    assert (tmp / "atlas" / "index.html").read_text() == page
    with pytest.raises(TrailcamError, match="different models"):
        add_to_atlas(tmp / "atlas", [AtlasSource(str(tmp / "other.npz"), "lora", "o")])
    with pytest.raises(TrailcamError, match="already has a source named"):
        add_to_atlas(tmp / "atlas", [AtlasSource(str(tmp / "gen"), "lora", "real")])
    # the real photos' folder vanished
    (tmp / "real").rename(tmp / "moved")
    with pytest.raises(TrailcamError, match="vanished"):
        add_to_atlas(tmp / "atlas", [AtlasSource(str(tmp / "gen"), "lora", "g")])
    assert open_atlas(tmp / "atlas", check_sources=False).manifest["version"] == "v1"
    assert not list((tmp / "atlas").glob(".v*.partial")) or True     # leftovers are cleaned by the next run
    with pytest.raises(TrailcamError, match="not an atlas"):
        open_atlas(tmp / "moved")


def test_sharded_embedding_fills_one_cache(tmp_path):
    from trailcam_core.embed.features import collect_records

    files = _photos(tmp_path / "p", 21)
    recs = collect_records(tmp_path / "p")
    a = embed_shard(recs, PYRAMID, tmp_path / "cache", rank=0, world=2)
    b = embed_shard(recs, PYRAMID, tmp_path / "cache", rank=1, world=2)
    assert (len(a), len(b)) == (11, 10) and a.computed + b.computed == 21
    again = embed_images(recs, PYRAMID, cache_dir=tmp_path / "cache")
    assert again.computed == 0 and len(again) == len(files)
    with pytest.raises(TrailcamError, match="rank"):
        embed_shard(recs, PYRAMID, tmp_path / "cache", rank=2, world=2)


def test_cli_build_add_report(collection, capsys):
    from trailcam_cli import main

    tmp, real, gen = collection
    out = tmp / "cli-atlas"
    assert main(["atlas", "build", str(tmp / "real"), "--out", str(out), "--features", "pyramid",
                 "--pyramid-size", "8", "--tile", "16", "--dims", "16", "--real-sample", "100"]) == 0
    assert main(["atlas", "add", str(out), f"mine=lora:{tmp / 'gen'}"]) == 0
    capsys.readouterr()
    assert main(["atlas", "report", str(out), "--copy-percentile", "2"]) == 0
    text = capsys.readouterr().out
    assert "mine: 7 generations" in text and "copy_0.png ~ img_000.jpg" in text
    assert main(["atlas", "add", str(out), str(tmp / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.e2e
def test_atlas_viewer_in_a_real_browser(collection):
    """First paint, hover, a click on a generation showing its nearest real photos, search + fly-to, a layer."""
    import shutil as _shutil

    pw = pytest.importorskip("playwright.sync_api")
    if not _shutil.which("chromium") and not Path("/usr/bin/chromium").exists():
        pytest.skip("chromium is not installed")
    tmp, real, gen = collection
    build_atlas([AtlasSource(str(tmp / "real"), "real", "photos"), AtlasSource(str(tmp / "gen"), "lora", "lora-v1")],
                tmp / "atlas", AtlasOptions(tile=64, dims=16, real_sample=200), PYRAMID)
    atlas = open_atlas(tmp / "atlas")
    copy0 = atlas.names.index("copy_0.png")
    cell = int(atlas.cell_of[copy0])
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 900, "height": 700})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp / "atlas" / "index.html").as_uri())
        page.wait_for_function("() => window.atlasStats.firstPaint !== null", timeout=5000)
        # search a file name: the view flies to it and zooms in
        page.fill("#find", "copy_0")
        page.wait_for_function("() => atlasAPI.matches.length === 1", timeout=5000)
        assert page.evaluate("() => atlasAPI.matches[0]") == cell
        # hover the cell in the middle of the screen (where fly-to put it): name and source in the tip
        page.mouse.move(450, 350)
        page.wait_for_function("() => document.getElementById('tipname').textContent.length > 0", timeout=5000)
        assert page.inner_text("#tipname").startswith("copy_0.png")
        page.mouse.click(450, 350)
        page.wait_for_selector("#side figure.nearest", timeout=5000)
        captions = page.eval_on_selector_all("#side figure.nearest figcaption", "els => els.map(e => e.textContent)")
        assert captions[0].startswith("img_000.jpg (") and len(captions) == 4
        assert "lora-v1" in page.inner_text("#ssource")
        page.wait_for_function("() => [...document.querySelectorAll('#side img')].every(i => i.complete && i.naturalWidth)",
                               timeout=5000)
        # a layer: the legend lists the sources with their counts
        page.select_option("#layer", "source")
        page.wait_for_function("() => document.getElementById('legend').textContent.includes('lora-v1 (7)')",
                               timeout=5000)
        assert "photos (60)" in page.inner_text("#legend")
        assert page.evaluate("() => window.atlasStats.tilesLoaded") >= 1 and not errors, errors
        browser.close()


@pytest.mark.slow
def test_torchrun_shards_the_embedding_then_build_computes_nothing(tmp_path):
    """Two processes under torchrun (what `accelerate launch --multi_gpu` runs; on a CPU accelerate starts
    only one): each embeds half into one cache; the build then reuses all of it."""
    import subprocess
    import sys

    _photos(tmp_path / "p", 24)
    cache = tmp_path / "cache"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(29500 + os.getpid() % 1000), "-m", "trailcam_cli", "atlas", "embed", str(tmp_path / "p"), "--cache-dir", str(cache),
                          "--features", "pyramid", "--pyramid-size", "8"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "shard 1 of 2): 12 done" in run.stdout and "shard 2 of 2): 12 done" in run.stdout, run.stdout
    rep = build_atlas([AtlasSource(str(tmp_path / "p"))], tmp_path / "atlas", FAST, PYRAMID, cache_dir=cache)
    assert rep.processed == 0 and rep.up_to_date == 24


def test_large_flas_mosaics_plot_a_sampled_2d_embedding(tmp_path):
    """Above 3,000 images a flas mosaic embeds only a sample in 2D for its scatter plot."""
    from trailcam_core.embed.features import Embeddings
    from trailcam_core.mosaic.make import SCATTER_SAMPLE, MosaicOptions, make_mosaic

    files = [str(p) for p in _photos(tmp_path / "p", 8)]
    n = SCATTER_SAMPLE + 200
    emb = Embeddings([f"i{k}" for k in range(n)], [files[k % 8] for k in range(n)], clustered(n, 16), "test|16")
    rep = make_mosaic(emb, tmp_path / "m", MosaicOptions(tile=8, embedding="pca", quality=False, viewer=False,
                                                         scatter_thumbnails=20))
    positions = json.loads(Path(rep.outputs["positions"]).read_text())
    with_points = [it for it in positions["items"] if it["point"] is not None]
    assert len(with_points) == SCATTER_SAMPLE and positions["embedding"] == "pca (sample)"
    assert Path(rep.outputs["scatter"]).is_file()
