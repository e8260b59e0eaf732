"""Mosaic layouts, DPQ, rendering, positions, scatter, viewer (and a real browser on the viewer)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trailcam_core.embed.features import EmbedOptions, embed_images
from trailcam_core.base.errors import TrailcamError
from trailcam_core.mosaic.make import MosaicOptions, compute_layout, make_mosaic
from trailcam_core.mosaic import dpq
from trailcam_core.mosaic.layout import grid_shape
from trailcam_core.mosaic import layout as L
from trailcam_core.mosaic.viewer import write_viewer
from trailcam_core.base.records import ImageRecord

PYRAMID = EmbedOptions(features="pyramid", pyramid_size=16)


def clustered(n: int, d: int = 64, k: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 3
    return (centres[rng.integers(0, k, n)] + rng.standard_normal((n, d))).astype(np.float32)


def dpq_reference(x: np.ndarray, cell_of: np.ndarray, cols: int, p: float = 16) -> float:
    """Straight from the paper's definition, n x n, for checking the blockwise version."""
    n = len(x)
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    g = np.stack(np.divmod(cell_of, cols), 1)
    gd = ((g[:, None] - g[None]) ** 2).sum(-1)
    mean_d = d[~np.eye(n, dtype=bool)].mean()
    hd, grid = [], []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        hd.append(np.sort(d[i, others]))
        grid.append(d[i, sorted(others, key=lambda j: (gd[i, j], d[i, j]))])
    k = np.arange(1, n)
    dk_hd = (np.cumsum(hd, axis=1) / k).mean(0)
    dk_2d = (np.cumsum(grid, axis=1) / k).mean(0)
    gain = lambda dk: np.clip((mean_d - dk) / mean_d, 0, None)  # noqa: E731
    return float(np.linalg.norm(gain(dk_2d), p) / np.linalg.norm(gain(dk_hd), p))


def is_layout(cell_of: np.ndarray, n: int) -> bool:
    """Every image in its own cell, cells 0..n-1 used: holes only at the end."""
    return sorted(cell_of.tolist()) == list(range(n))


def test_grid_shape_aspect_and_holes():
    assert grid_shape(100) == (10, 10)
    assert grid_shape(101) == (11, 10)            # holes go to an extra last row
    rows, cols = grid_shape(2500, aspect=16 / 9)
    assert cols / rows == pytest.approx(16 / 9, rel=0.05) and rows * cols >= 2500
    assert grid_shape(10, columns=4) == (3, 4)
    assert grid_shape(3, columns=100) == (1, 3)
    with pytest.raises(TrailcamError):
        grid_shape(10, aspect=0)


def test_dpq_matches_the_definition_and_sampling():
    x = clustered(60, 8)
    rows, cols = grid_shape(60, columns=7)          # 9 x 7 with 3 holes
    rng = np.random.default_rng(0)
    for cell_of in (rng.permutation(60), L.las_sort(x, rows, cols)):
        assert dpq(x, cell_of, cols) == pytest.approx(dpq_reference(x, cell_of, cols), abs=1e-6)
    big = clustered(1500, 32)
    r, c = grid_shape(1500)
    sorted_cells, _ = L.sort_features(big, r, c)
    exact = dpq(big, sorted_cells, c)
    assert dpq(big, sorted_cells, c, sample=400) == pytest.approx(exact, abs=0.03)
    assert dpq(big, rng.permutation(1500), c) < 0.3 < 0.75 < exact


@pytest.mark.parametrize("engine", ["auto", "las"])
def test_feature_sorting_any_aspect_with_holes(engine):
    x = clustered(437, 32)
    for aspect in (1.0, 3.0, 0.4):
        lay = compute_layout(x, MosaicOptions(engine=engine, aspect=aspect, quality=False))
        assert lay.rows * lay.cols >= 437 and lay.rows * lay.cols - 437 < lay.cols
        assert is_layout(lay.cell_of, 437)
        assert dpq(x, lay.cell_of, lay.cols) > 0.7
    if engine == "las":
        assert lay.engine == "las"


def test_lap_layout_exact_and_blockwise_agree_in_quality():
    x = clustered(900, 32)
    exact = compute_layout(x, MosaicOptions(layout="lap", embedding="pca"))
    block = compute_layout(x, MosaicOptions(layout="lap", embedding="pca", exact_limit=100))
    assert exact.engine == "exact-lap" and block.engine == "split+block-lap"
    assert is_layout(exact.cell_of, 900) and is_layout(block.cell_of, 900)
    assert exact.points.shape == (900, 2)
    qe, qb = dpq(x, exact.cell_of, exact.cols), dpq(x, block.cell_of, block.cols)
    assert qb > qe - 0.05


@pytest.mark.parametrize("layout,embedding,engine", [("lap", "tsne", "auto"), ("flas", "auto", "auto"),
                                                     ("flas", "auto", "las")])
def test_layout_is_seeded(layout, embedding, engine):
    x = clustered(60, 16)
    opts = MosaicOptions(layout=layout, embedding=embedding, engine=engine, seed=3)
    a, b = compute_layout(x, opts), compute_layout(x, opts)
    np.testing.assert_array_equal(a.cell_of, b.cell_of)
    assert is_layout(a.cell_of, 60)


@pytest.mark.parametrize("side", [3, 5, 7, 8])
def test_small_and_odd_grids_are_sorted(side):
    """Two tight clusters given in alternating order must not come out as a checkerboard."""
    n = side * side
    x = np.zeros((n, 8), np.float32)
    x[np.arange(n) % 2 == 1, 0] = 5.0
    x += np.random.default_rng(side).normal(0, 0.1, x.shape).astype(np.float32)
    for engine in ("auto", "las"):
        lay = compute_layout(x, MosaicOptions(engine=engine, quality=False))
        assert dpq(x, lay.cell_of, lay.cols) > 0.8, engine


def test_bad_inputs():
    with pytest.raises(TrailcamError, match="at least 2"):
        compute_layout(np.zeros((1, 8)))
    with pytest.raises(TrailcamError, match="NaN"):
        compute_layout(np.full((4, 3), np.nan))
    with pytest.raises(TrailcamError, match="tile=2"):
        compute_layout(np.eye(3), MosaicOptions(tile=2))
    with pytest.raises(TrailcamError, match="layout='grid'"):
        compute_layout(np.eye(3), MosaicOptions(layout="grid"))
    with pytest.raises(TrailcamError, match="background"):
        compute_layout(np.eye(3), MosaicOptions(background="sky-ish"))
    two = compute_layout(np.eye(2, dtype=np.float32), MosaicOptions(layout="lap", embedding="umap"))
    assert is_layout(two.cell_of, 2)


def _photo_folder(root: Path, n: int = 23) -> Path:
    """Generated 'images' in two colour families, mixed sizes; plus one broken file."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        base = np.array([200, 60, 40]) if i % 2 else np.array([40, 90, 210])
        arr = np.clip(base + rng.normal(0, 25, (30 + i, 50, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"gen_{i:03d}.png")
    (root / "broken.png").write_bytes(b"\x89PNG nope")
    return root


def test_make_mosaic_writes_everything(tmp_path):
    src = _photo_folder(tmp_path / "generated")
    messages = []
    report = make_mosaic(src, tmp_path / "out", MosaicOptions(tile=16, embedding="pca", scatter_thumbnails=10),
                         PYRAMID, progress=lambda d, t, m="", p=None: messages.append((d, t, m)))
    out = tmp_path / "out"
    assert report.skipped == [("broken.png", report.skipped[0][1])] and "decode" in report.skipped[0][1]
    pos = json.loads((out / "positions.json").read_text())
    assert pos["n"] == 23 and (pos["rows"], pos["cols"]) == (5, 5) and pos["holes"] == 2
    cells = [it["cell"] for it in pos["items"]]
    assert sorted(cells) == list(range(23))
    assert all(it["row"] * pos["cols"] + it["col"] == it["cell"] and len(it["point"]) == 2 for it in pos["items"])
    assert 0.5 < pos["dpq16"] <= 1.0 and report.outputs["dpq16"] == pytest.approx(pos["dpq16"], abs=1e-4)
    mosaic = Image.open(out / "mosaic.jpg")
    assert mosaic.size == (5 * 16, 5 * 16)
    # the two holes are the end of the last row, painted the background colour
    hole = np.asarray(mosaic.crop((3 * 16 + 2, 4 * 16 + 2, 5 * 16 - 2, 5 * 16 - 2))).reshape(-1, 3).mean(0)
    assert np.all(np.abs(hole - 0x18) < 12)
    # similar colours sit together: neighbours mostly share the colour family
    by_cell = {it["cell"]: int(it["id"][4:7]) % 2 for it in pos["items"]}
    same = [by_cell[c] == by_cell[c + 1] for c in by_cell if c + 1 in by_cell and (c + 1) % 5]
    assert np.mean(same) > 0.7
    assert Image.open(out / "scatter.png").size[0] >= 800
    html = (out / "viewer.html").read_text()
    data = json.loads(re.search(r'<script id="mosaic-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert data["names"][0] == pos["items"][0]["file_name"] and data["inline"].startswith("data:image/jpeg;base64,")
    assert (out / data["href"][0]).resolve() == Path(pos["items"][0]["file"]).resolve()
    assert messages[-1][0] == messages[-1][1] and any("layout" in m for _, _, m in messages)
    # rerun: features come from the cache
    again = make_mosaic(src, tmp_path / "out", MosaicOptions(tile=16, embedding="pca", scatter=False), PYRAMID)
    assert again.processed == 0 and again.up_to_date == 23


def test_mosaic_from_records_keeps_labels_and_tags(tmp_path):
    src = _photo_folder(tmp_path / "imgs", n=6)
    recs = [ImageRecord(f"id{i}", src / f"gen_{i:03d}.png", f"gen_{i:03d}.png",
                        labels=["coyote" if i % 2 else "bobcat"], extra={"tags": ["night"] if i < 3 else []})
            for i in range(6)]
    emb = embed_images(recs, PYRAMID)
    make_mosaic(emb, tmp_path / "m", MosaicOptions(tile=8, embedding="pca", quality=False, scatter=False))
    items = {it["id"]: it for it in json.loads((tmp_path / "m" / "positions.json").read_text())["items"]}
    assert items["id1"]["labels"] == ["coyote"] and items["id1"]["tags"] == ["coyote", "night"]
    assert not (tmp_path / "m" / "embeddings.npz").exists()     # given embeddings are not rewritten


def test_too_few_images(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    Image.new("RGB", (10, 10)).save(one / "a.png")
    (one / "b.png").write_bytes(b"broken")
    with pytest.raises(TrailcamError, match="at least 2 readable images, got 1"):
        make_mosaic(one, tmp_path / "out", MosaicOptions(), PYRAMID)


def test_large_mosaics_use_a_tile_pyramid(tmp_path):
    n, tile = 300, 40
    rows, cols = grid_shape(n)
    mosaic = Image.new("RGB", (cols * tile, rows * tile), "grey")
    files = [str(tmp_path / f"{i}.jpg") for i in range(n)]
    out = write_viewer(tmp_path / "v" / "viewer.html", mosaic, np.arange(n), rows, cols, tile, [str(i) for i in range(n)],
                       [f"{i}.jpg" for i in range(n)], files, [[] for _ in range(n)], inline_max_side=256)
    tiles = Path(out["tiles"])
    assert sorted(p.name for p in tiles.iterdir()) == ["0", "1"]      # 680 x 720 px in 2 x 2 tiles, then one
    assert len(list((tiles / "0").glob("*.jpg"))) == 4 and len(list((tiles / "1").glob("*.jpg"))) == 1
    assert (rows, cols) == (18, 17) and Image.open(tiles / "0" / "1_1.jpg").size == (680 - 512, 720 - 512)


@pytest.mark.e2e
def test_viewer_in_a_real_browser(tmp_path):
    """Hover shows the file name and tags; a click opens the image. Tiled mode, as for 50,000 images."""
    pw = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium") and not Path("/usr/bin/chromium").exists():
        pytest.skip("chromium is not installed")
    src = _photo_folder(tmp_path / "imgs", n=12)
    recs = [ImageRecord(f"id{i}", src / f"gen_{i:03d}.png", f"gen_{i:03d}.png", labels=["deer"],
                        extra={"tags": [f"tag{i}"]}) for i in range(12)]
    emb = embed_images(recs, PYRAMID)
    lay = compute_layout(emb.vectors, MosaicOptions())
    mosaic = Image.new("RGB", (lay.cols * 64, lay.rows * 64), "grey")
    write_viewer(tmp_path / "out" / "viewer.html", mosaic, lay.cell_of, lay.rows, lay.cols, 64, emb.ids,
                 [r.file_name for r in emb.records], emb.files, emb.labels(), inline_max_side=100)
    target = int(np.where(lay.cell_of == 0)[0][0])         # the image in the top-left cell
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--allow-file-access-from-files"])
        page = browser.new_page(viewport={"width": 800, "height": 600})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "out" / "viewer.html").as_uri())
        page.wait_for_timeout(500)
        box = page.evaluate("() => ({ox, oy, scale})")
        x, y = box["ox"] + 32 * box["scale"], box["oy"] + 56 * box["scale"]   # below the toolbar
        page.mouse.move(x, y)
        assert page.inner_text("#tipname") == f"gen_{target:03d}.png"
        assert page.inner_text("#tiptags") == f"deer, tag{target}"
        with page.context.expect_page() as opened:
            page.mouse.click(x, y)
        assert opened.value.url.endswith(f"imgs/gen_{target:03d}.png")
        loaded = page.evaluate("() => [...cache.values()].filter(i => i.complete && i.naturalWidth).length")
        assert loaded >= 1 and not errors
        browser.close()


def test_tiny_and_single_row_grids():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5):
        lay = compute_layout(rng.random((n, 8)).astype(np.float32))
        assert is_layout(lay.cell_of, n)
    row = compute_layout(clustered(50, 8), MosaicOptions(columns=50))
    assert (row.rows, row.cols) == (1, 50) and is_layout(row.cell_of, 50)


@pytest.mark.parametrize("engine", ["auto", "las"])
def test_layout_can_be_cancelled(engine):
    from trailcam_core.base.errors import Cancelled

    def cancel(done, total, message="", preview=None):
        if done > 100:
            raise Cancelled("stopped by the user")

    with pytest.raises(Cancelled):
        compute_layout(clustered(500, 8), MosaicOptions(engine=engine), progress=cancel)


def test_cli_embed_then_mosaic(tmp_path, capsys):
    """`trailcam embed` then `trailcam mosaic` on its .npz, through the real argument parser."""
    import argparse

    from trailcam_cli import mosaic as cli

    parser = argparse.ArgumentParser(prog="trailcam")
    cli.register(parser.add_subparsers(dest="command"))
    src = _photo_folder(tmp_path / "gen", n=9)
    args = parser.parse_args(["embed", str(src), "--out", str(tmp_path / "e.npz"), "--model", "trailcam-tiny",
                              "--pretrained", "", "--batch-size", "4"])
    assert args.func(args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("embed: 9 done, 1 skipped") and "dim: 64" in line
    assert (tmp_path / "embed-cache").is_dir()
    args = parser.parse_args(["mosaic", str(tmp_path / "e.npz"), "--out", str(tmp_path / "m"), "--tile", "12",
                              "--embedding", "pca", "--no-scatter", "--aspect", "3", "--json"])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["up_to_date"] == 9 and set(report["outputs"]) >= {"mosaic", "positions", "viewer", "dpq16"}
    pos = json.loads((tmp_path / "m" / "positions.json").read_text())
    assert (pos["rows"], pos["cols"]) == (2, 5) and not (tmp_path / "m" / "scatter.png").exists()


def test_output_folder_inside_the_source_is_not_fed_back(tmp_path):
    src = _photo_folder(tmp_path / "photos", n=5)
    opts = MosaicOptions(tile=8, embedding="pca", quality=False, scatter=False)
    make_mosaic(src, src / "mosaic", opts, PYRAMID)
    again = make_mosaic(src, src / "mosaic", opts, PYRAMID)
    assert json.loads((src / "mosaic" / "positions.json").read_text())["n"] == 5
    assert again.up_to_date == 5 and again.processed == 0


def test_cli_reads_a_cct_json_with_labels(sample_cct, tmp_path):
    from trailcam_cli.mosaic import _source

    records = _source([str(sample_cct)])
    emb = embed_images(records, PYRAMID)
    report = make_mosaic(emb, tmp_path / "m", MosaicOptions(tile=8, embedding="pca", viewer=False,
                                                             scatter_thumbnails=5))
    items = json.loads(Path(report.outputs["positions"]).read_text())["items"]
    assert len(items) == len(emb) >= 2 and any(it["labels"] for it in items)
    assert Path(report.outputs["scatter"]).is_file()


@pytest.mark.parametrize("d", [40, 3000])
def test_pca_matches_the_principal_axes(d):
    """Both paths (covariance eigh; randomized SVD for wide pyramid features) find the same axes."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((200, 3)) * [10, 5, 1]) @ rng.standard_normal((3, d)) + 0.01 * rng.standard_normal((200, d))
    got = L.pca(x.astype(np.float32), 2)
    u, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    want = (x - x.mean(0)) @ vt[:2].T
    for j in range(2):
        assert abs(np.corrcoef(got[:, j], want[:, j])[0, 1]) > 0.999


def test_item_at_finds_the_tile_under_a_pixel():
    from trailcam_core.mosaic.make import item_at

    positions = {"tile": 10, "rows": 2, "cols": 3,
                 "items": [{"cell": c, "id": f"img{c}"} for c in range(5)]}   # cell 5 is a hole
    assert item_at(positions, 0, 0)["id"] == "img0"
    assert item_at(positions, 15, 15)["id"] == "img4"
    assert item_at(positions, 12.5, 2.5, scale=0.5)["id"] == "img2"        # saved image at half size
    assert item_at(positions, 29, 19) is None                               # the hole at the end
    assert item_at(positions, 31, 5) is None and item_at(positions, -1, 5) is None
