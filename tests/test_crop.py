"""Tests for trailcam_core.crop.geometry: info-bar detection, square geometry, in-memory and batch crops."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from trailcam_core.crop.geometry import InfoBar, detect_info_bar


# ---------------------------------------------------------------------------------------------
# generated frames
# ---------------------------------------------------------------------------------------------
def scene(w: int, h: int, kind: str = "texture", seed: int = 0, gray: bool = False) -> Image.Image:
    """A natural-looking scene: smooth gradients plus noise (no flat bands)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "texture":
        base = 90 + 50 * np.sin(xx / 37.0) * np.cos(yy / 23.0) + 30 * (yy / h)
        noise = 18
    elif kind == "night":            # dark infrared night, noisy, near black at the edges
        base = 4 + 10 * (yy / h) + 3 * np.sin(xx / 50.0)
        noise = 2.5
    elif kind == "sky":              # blown-out sky at the top, texture below
        base = np.where(yy < h * 0.3, 255, 90 + 50 * np.sin(xx / 37.0))
        noise = 0
    else:
        raise ValueError(kind)
    chans = 1 if gray else 3
    arr = base[..., None] + rng.normal(0, noise, (h, w, chans)) if noise else np.repeat(base[..., None], chans, 2)
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr[..., 0] if gray else arr, "L" if gray else "RGB")


def add_strip(img: Image.Image, where: str, rows: int, bg: int, fg: int, text: str = "2014-06-07 7:49:31 AM  M 2/3  59F") -> Image.Image:
    """Burn a trail-camera data strip (flat band with text) into ``img``."""
    img = img.copy()
    w, h = img.size
    y0 = 0 if where == "top" else h - rows
    d = ImageDraw.Draw(img)
    fill = bg if img.mode == "L" else (bg, bg, bg)
    ink = fg if img.mode == "L" else (fg, fg, fg)
    d.rectangle([0, y0, w, y0 + rows - 1], fill=fill)
    font = ImageFont.load_default(size=max(8, int(rows * 0.7)))
    d.text((w * 0.02, y0 + rows * 0.12), text, fill=ink, font=font)
    d.text((w * 0.6, y0 + rows * 0.12), "CAMERA 07  ###", fill=ink, font=font)
    return img


def jpeg_roundtrip(img: Image.Image, quality: int = 85) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


# ---------------------------------------------------------------------------------------------
# detect_info_bar: real photos
# ---------------------------------------------------------------------------------------------
def test_info_bar_on_every_real_sample(cct_sample_dir):
    """Every real Caltech frame: 2048x1494 has a black top strip (32 rows), Cuddeback 2048x1536
    a black bottom strip with a logo (48-49 rows); none has the other."""
    rows = list(csv.DictReader(open(cct_sample_dir / "labels.csv")))
    assert len(rows) == 44
    for row in rows:
        img = Image.open(cct_sample_dir / row["file_name"])
        bar = detect_info_bar(img)
        if img.size == (2048, 1494):
            assert 32 <= bar.top <= 40 and bar.bottom == 0, (row["file_name"], bar)
        else:
            assert img.size == (2048, 1536)
            assert 48 <= bar.bottom <= 56 and bar.top == 0, (row["file_name"], bar)
        assert bar.present


def test_info_bar_on_draft_reduced_real_frame(cct_sample_dir):
    """Detection on a DCT-reduced decode scales back to the full-size strip."""
    path = next(cct_sample_dir.glob("*.jpg"))
    full = detect_info_bar(Image.open(path))
    img = Image.open(path)
    img.draft("RGB", (img.width // 4, img.height // 4))
    small = detect_info_bar(img)
    assert small.present
    assert abs(small.scaled(4).top - full.top) <= 4 and abs(small.scaled(4).bottom - full.bottom) <= 4


def test_info_bar_leaves_bar_free_real_crop_alone(cct_sample_dir):
    """The same photo with its strip cut off has no strip (night skies included)."""
    for path in sorted(cct_sample_dir.glob("*.jpg"))[:12]:
        img = Image.open(path)
        bar = detect_info_bar(img)
        inner = img.crop((0, bar.top + 2, img.width, img.height - bar.bottom - 2))
        assert detect_info_bar(inner)[:2] == (0, 0), path.name      # the corner logo may stay: no strip


# ---------------------------------------------------------------------------------------------
# detect_info_bar: generated frames
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size,where,rows,bg,fg", [
    ((2048, 1494), "top", 32, 0, 255),        # black top strip
    ((2048, 1536), "bottom", 48, 0, 230),     # black bottom strip (Cuddeback)
    ((2560, 1920), "bottom", 70, 232, 20),    # light bottom strip
    ((640, 480), "top", 16, 250, 0),          # small frame, white strip
])
def test_info_bar_generated(size, where, rows, bg, fg):
    img = jpeg_roundtrip(add_strip(scene(*size, seed=rows), where, rows, bg, fg))
    bar = detect_info_bar(img)
    got = bar.top if where == "top" else bar.bottom
    other = bar.bottom if where == "top" else bar.top
    assert rows <= got <= rows + max(4, rows // 8), bar
    assert other == 0


def test_info_bar_on_dark_night_frame_with_strip():
    """An infrared night scene nearly as dark as the strip: the strip ends where the text ends."""
    img = jpeg_roundtrip(add_strip(scene(2048, 1494, "night", gray=False), "top", 32, 0, 255))
    bar = detect_info_bar(img)
    assert 32 <= bar.top <= 40 and bar.bottom == 0


def test_info_bar_grayscale_frame():
    img = add_strip(scene(1024, 768, gray=True), "bottom", 24, 0, 255)
    assert img.mode == "L"
    bar = detect_info_bar(img)
    assert 24 <= bar.bottom <= 28 and bar.top == 0


@pytest.mark.parametrize("kind", ["texture", "night", "sky"])
def test_no_info_bar_on_plain_scenes(kind):
    """Dark night skies and blown-out skies are flat but carry no text: no strip."""
    img = jpeg_roundtrip(scene(1600, 1200, kind))
    assert detect_info_bar(img) == InfoBar(0, 0)
    assert not detect_info_bar(img).present


def test_no_info_bar_on_tiny_images():
    assert detect_info_bar(Image.new("RGB", (4, 4))) == InfoBar(0, 0)
    assert detect_info_bar(Image.new("RGB", (64, 64), (0, 0, 0))) == InfoBar(0, 0)


# ---------------------------------------------------------------------------------------------
# geometry and in-memory crops
# ---------------------------------------------------------------------------------------------
from trailcam_core.crop.geometry import CropOptions, crop_box, crop_image  # noqa: E402
from trailcam_core.base.errors import Cancelled, TrailcamError  # noqa: E402
from trailcam_core.base.records import Box, ImageRecord  # noqa: E402


def test_crop_box_centre_excludes_strip():
    assert crop_box(2048, 1494, bar=InfoBar(35, 0)) == (294, 35, 1753, 1494)
    assert crop_box(2048, 1536, bar=InfoBar(0, 52)) == (282, 0, 1766, 1484)
    assert crop_box(800, 1200) == (0, 200, 800, 1000)          # portrait: centred vertically


def test_crop_box_bbox_contains_box_and_stays_inside():
    opts = CropOptions(mode="bbox", size=256, margin=0.1)
    # a 300x200 animal near the right edge: square of 360 around it, shifted left to fit
    x0, y0, x1, y1 = crop_box(2048, 1494, [Box(1800, 700, 240, 200)], opts, InfoBar(35, 0))
    assert x1 - x0 == y1 - y0 == round(240 * 1.2)
    assert x0 <= 1800 and x1 >= 2040 and y0 <= 700 and y1 >= 900
    assert x1 <= 2048 and y0 >= 35
    # a tiny box is not blown up: the square is at least `size` pixels
    x0, y0, x1, y1 = crop_box(2048, 1494, [Box(1000, 40, 20, 20)], opts, InfoBar(35, 0))
    assert x1 - x0 == 256 and y0 >= 35 and x0 <= 1000 <= 1020 <= x1
    # boxes bigger than the frame: the largest square, centred on them
    x0, y0, x1, y1 = crop_box(2048, 1494, [Box(0, 0, 2048, 1494)], opts, InfoBar(35, 0))
    assert (x1 - x0, y1 - y0) == (1459, 1459) and y0 == 35
    # two animals: one square holds both
    x0, y0, x1, y1 = crop_box(2048, 1494, [Box(300, 600, 100, 100), Box(900, 700, 100, 100)], opts)
    assert x0 <= 300 and x1 >= 1000 and y0 <= 600 and y1 >= 800


def test_crop_box_bbox_falls_back_to_centre():
    opts = CropOptions(mode="bbox", min_score=0.5)
    centre = crop_box(2048, 1494, [], CropOptions())
    assert crop_box(2048, 1494, [], opts) == centre
    assert crop_box(2048, 1494, [Box(10, 10, 50, 50, "person", 0.1)], opts) == centre   # below min_score
    assert crop_box(2048, 1494, [Box(10, 10, 0, 50)], opts) == centre                  # degenerate box
    assert crop_box(2048, 1494, [Box(10, 10, 50, 50, "deer", 0.9)], opts) != centre


def test_crop_box_strip_mode_keeps_whole_frame():
    assert crop_box(2048, 1494, [], CropOptions(mode="strip"), InfoBar(35, 0)) == (0, 35, 2048, 1494)


def test_crop_options_validate():
    with pytest.raises(TrailcamError, match="mode"):
        CropOptions(mode="zoom")
    with pytest.raises(TrailcamError, match="size"):
        CropOptions(size=4)
    with pytest.raises(TrailcamError, match="format"):
        CropOptions(format="gif")
    assert CropOptions(format="webp").extension == ".webp"


def test_crop_image_removes_strip_and_scales():
    img = add_strip(scene(1024, 768, seed=3), "top", 24, 0, 255)
    out = crop_image(img, options=CropOptions(size=128))
    assert out.size == (128, 128) and out.mode == "RGB"
    top = np.asarray(out)[:3].mean()
    assert top > 40, "the black strip must not reach the crop"
    kept = crop_image(img, options=CropOptions(size=128, strip_info_bar=False))
    assert np.asarray(kept)[:2].mean() < 40          # without stripping, the strip is in the square
    strip = crop_image(img, options=CropOptions(size=256, mode="strip"))
    assert strip.size == (256, round(256 * (768 - 24 - 2) / 1024)) or abs(strip.size[1] - 186) <= 2


def test_crop_image_keeps_grey_and_colour():
    grey = scene(640, 480, gray=True)
    assert crop_image(grey, options=CropOptions(size=64)).mode == "L"
    ir = Image.merge("RGB", [grey, grey, grey])      # infrared night frame: RGB with R = G = B
    out = crop_image(ir, options=CropOptions(size=64))
    a = np.asarray(out)
    assert out.mode == "RGB" and (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()
    rgba = scene(200, 100).convert("RGBA")
    assert crop_image(rgba, options=CropOptions(size=32)).mode == "RGBA"
    assert crop_image(scene(200, 100).convert("P"), options=CropOptions(size=32)).mode == "RGB"


def _oriented_jpeg(path: Path, orientation: int) -> None:
    """A 300x200 stored image with a red marker top-left, tagged with an EXIF orientation."""
    img = Image.new("RGB", (300, 200), (0, 90, 0))
    img.paste((255, 0, 0), (0, 0, 60, 60))
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, "JPEG", quality=95, exif=exif)


def test_crop_image_honours_exif_orientation(tmp_path):
    p = tmp_path / "rot.jpg"
    _oriented_jpeg(p, 6)                     # 6: rotate 90 CW to view; upright is 200x300, marker top-right
    out = crop_image(Image.open(p), options=CropOptions(size=100, strip_info_bar=False, mode="strip"))
    assert out.size == (67, 100)
    r, g, b = out.getpixel((out.width - 3, 2))
    assert r > 200 and g < 60, "the marker must be at the top right of the upright image"


# ---------------------------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------------------------
from trailcam_core.crop.batch import crop_batch
from trailcam_core.crop.batch import MANIFEST, read_manifest  # noqa: E402


def make_folder(root: Path, n: int = 6, size=(480, 360)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = add_strip(scene(*size, seed=i), "top" if i % 2 else "bottom", 14, 0, 255)
        sub = root / ("camA" if i < n // 2 else "camB")
        sub.mkdir(exist_ok=True)
        img.save(sub / f"IMG_{i:04d}.JPG", "JPEG", quality=85)
    return root


def manifest_by_id(out: Path) -> dict:
    return {r["image_id"]: r for r in read_manifest(out / MANIFEST)}


def test_batch_folder_names_manifest_and_rerun(tmp_path):
    src = make_folder(tmp_path / "src")
    out = tmp_path / "out"
    calls = []
    rep = crop_batch(src, out, CropOptions(size=64, workers=1), progress=lambda d, t, m="", p=None: calls.append((d, t)))
    assert rep.processed == 6 and not rep.skipped and rep.up_to_date == 0
    assert calls[-1] == (6, 6)
    rows = manifest_by_id(out)
    assert set(rows) == {f"cam{'A' if i < 3 else 'B'}/IMG_{i:04d}.JPG" for i in range(6)}
    r = rows["camA/IMG_0001.JPG"]
    assert r["crop_file"] == "camA/IMG_0001.jpg" and r["source_file"] == "camA/IMG_0001.JPG"
    assert r["mode"] == "center" and r["size"] == "64" and r["frame_time"] == "" and r["location"] == "camA"
    assert 14 <= int(r["info_bar_top"]) <= 18 and r["info_bar_bottom"] == "0"       # odd files: top strip
    assert int(rows["camA/IMG_0000.JPG"]["info_bar_bottom"]) >= 14
    assert (int(r["crop_y"]), int(r["crop_w"]), int(r["crop_h"])) == (int(r["info_bar_top"]), 346 - int(r["info_bar_top"]) + 14, 346 - int(r["info_bar_top"]) + 14)
    for row in rows.values():
        with Image.open(out / row["crop_file"]) as im:
            assert im.size == (64, 64) and im.format == "JPEG"
            assert int(row["output_bytes"]) == (out / row["crop_file"]).stat().st_size

    again = crop_batch(src, out, CropOptions(size=64, workers=1))
    assert (again.processed, again.up_to_date) == (0, 6)

    # a changed source (content, size and mtime) is redone; the others stay up to date
    changed = src / "camB" / "IMG_0004.JPG"
    scene(480, 360, seed=99).save(changed, "JPEG", quality=70)
    before = (out / "camB/IMG_0004.jpg").read_bytes()
    third = crop_batch(src, out, CropOptions(size=64, workers=1))
    assert (third.processed, third.up_to_date) == (1, 5)
    assert (out / "camB/IMG_0004.jpg").read_bytes() != before

    # a deleted or damaged crop is redone
    (out / "camA/IMG_0000.jpg").unlink()
    (out / "camA/IMG_0001.jpg").write_bytes(b"half")
    fourth = crop_batch(src, out, CropOptions(size=64, workers=1))
    assert (fourth.processed, fourth.up_to_date) == (2, 4)

    # an output-shaping option redoes all; a different format replaces the old files
    fifth = crop_batch(src, out, CropOptions(size=64, format="png", workers=1))
    assert fifth.processed == 6
    assert not list(out.rglob("*.jpg")) and len(list(out.rglob("*.png"))) == 6
    assert all(r["crop_file"].endswith(".png") for r in read_manifest(out / MANIFEST))
    # workers and force do not change outputs: not a reason to redo (force redoes on request)
    assert crop_batch(src, out, CropOptions(size=64, format="png", workers=2)).up_to_date == 6
    assert crop_batch(src, out, CropOptions(size=64, format="png", workers=1, force=True)).processed == 6


def test_batch_formats_and_quality(tmp_path):
    src = make_folder(tmp_path / "src", n=2)
    for fmt, pil in [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")]:
        out = tmp_path / fmt
        crop_batch(src, out, CropOptions(size=48, format=fmt, workers=1))
        files = sorted(p for p in out.rglob("*") if p.suffix in (".jpg", ".png", ".webp"))
        assert len(files) == 2
        with Image.open(files[0]) as im:
            assert im.format == pil and im.size == (48, 48)
    small = tmp_path / "q10"
    crop_batch(src, small, CropOptions(size=96, quality=10, workers=1))
    big = tmp_path / "q95"
    crop_batch(src, big, CropOptions(size=96, quality=95, workers=1))
    assert sum(p.stat().st_size for p in small.rglob("*.jpg")) < sum(p.stat().st_size for p in big.rglob("*.jpg"))


def test_batch_records_bbox_labels_and_grey(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    scene(800, 600, seed=1).save(src / "a1.jpg", "JPEG")
    scene(800, 600, seed=2, gray=True).save(src / "g1.jpg", "JPEG")
    grey = scene(800, 600, seed=4, gray=True)
    Image.merge("RGB", [grey] * 3).save(src / "ir1.jpg", "JPEG")
    recs = [ImageRecord("a1", src / "a1.jpg", "a1.jpg", location="7", labels=["deer"],
                        boxes=[Box(600, 100, 150, 120, "deer")]),
            ImageRecord("g1", src / "g1.jpg", "g1.jpg", labels=["empty"]),
            ImageRecord("ir1", src / "ir1.jpg", "ir1.jpg", labels=["coyote"])]
    out = tmp_path / "out"
    rep = crop_batch(recs, out, CropOptions(mode="bbox", size=128, margin=0.1, workers=1))
    assert rep.processed == 3, rep.skipped
    rows = manifest_by_id(out)
    a = rows["a1"]
    x, y, w, h = (int(a[k]) for k in ("crop_x", "crop_y", "crop_w", "crop_h"))
    assert w == h == 180 and x <= 600 and x + w >= 750 and y <= 100 and y + h >= 220
    assert (a["label"], a["location"], a["crop_file"]) == ("deer", "7", "a1.jpg")
    assert rows["g1"]["label"] == "empty" and rows["g1"]["crop_w"] == "600"      # no box: centre square
    with Image.open(out / "g1.jpg") as im:
        assert im.mode == "L"
    with Image.open(out / "ir1.jpg") as im:
        assert im.mode == "RGB"
        arr = np.asarray(im).astype(int)
        assert np.abs(arr[..., 0] - arr[..., 1]).max() <= 3
    # moving a box redoes that image only (boxes are part of the fingerprint in bbox mode)
    recs[0].boxes = [Box(50, 300, 150, 120, "deer")]
    rep = crop_batch(recs, out, CropOptions(mode="bbox", size=128, margin=0.1, workers=1))
    assert (rep.processed, rep.up_to_date) == (1, 2)
    assert int(manifest_by_id(out)["a1"]["crop_x"]) < 100


def test_batch_skips_bad_inputs_with_reasons(tmp_path):
    src = make_folder(tmp_path / "src", n=2)
    good = (src / "camA" / "IMG_0000.JPG").read_bytes()
    (src / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (src / "empty.jpg").write_bytes(b"")
    (src / "notes.jpg").write_text("this is not a picture")
    (src / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    _bomb_png(src / "bomb.png", 20000, 20000)
    (src / "readme.txt").write_text("ignored: not an image or video extension")
    out = tmp_path / "out"
    rep = crop_batch(src, out, CropOptions(size=32, workers=1))
    reasons = dict(rep.skipped)
    assert rep.processed == 2
    assert set(reasons) == {"truncated.jpg", "empty.jpg", "notes.jpg", "clip.mp4", "bomb.png"}
    assert "truncated" in reasons["truncated.jpg"]
    assert "empty file" in reasons["empty.jpg"]
    assert "not an image" in reasons["notes.jpg"]
    assert "unreadable video" in reasons["clip.mp4"]
    assert "decompression bomb" in reasons["bomb.png"] and "400 megapixels" in reasons["bomb.png"]
    assert sorted(p.name for p in out.rglob("*.jpg")) == ["IMG_0000.jpg", "IMG_0001.jpg"]
    # a limit the user sets is honoured the same way
    rep = crop_batch(src / "camA", tmp_path / "small", CropOptions(size=32, max_pixels=1000, workers=1))
    assert rep.processed == 0 and "above the limit" in rep.skipped[0][1]


def _bomb_png(path: Path, w: int, h: int) -> None:
    """A genuine PNG of w x h one-bit pixels, all zero: tiny on disk, huge once decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (w + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_batch_duplicate_and_unsafe_ids_and_missing_files(tmp_path):
    src = make_folder(tmp_path / "src", n=2)
    f = src / "camA" / "IMG_0000.JPG"
    recs = [ImageRecord("x", f), ImageRecord("x", f), ImageRecord("../escape", f),
            ImageRecord("gone", tmp_path / "nope.jpg", "nope.jpg")]
    rep = crop_batch(recs, tmp_path / "out", CropOptions(size=32, workers=1))
    reasons = [r for _, r in rep.skipped]
    assert rep.processed == 1 and len(reasons) == 3
    assert any("duplicate" in r for r in reasons) and any(".." in r for r in reasons)
    assert any("missing file" in r for r in reasons)
    assert not (tmp_path / "escape.jpg").exists()


def test_batch_cancel_keeps_what_was_done(tmp_path):
    src = make_folder(tmp_path / "src", n=6)
    out = tmp_path / "out"

    def stop_after_two(done, total, message="", preview=None):
        if done >= 2:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        crop_batch(src, out, CropOptions(size=32, workers=1), progress=stop_after_two)
    assert len(read_manifest(out / MANIFEST)) == 2
    rep = crop_batch(src, out, CropOptions(size=32, workers=1))
    assert (rep.processed, rep.up_to_date) == (4, 2)


def test_batch_process_pool_matches_single_process(tmp_path):
    src = make_folder(tmp_path / "src", n=8)
    one = crop_batch(src, tmp_path / "one", CropOptions(size=64, workers=1))
    two = crop_batch(src, tmp_path / "two", CropOptions(size=64, workers=2))
    assert one.processed == two.processed == 8
    for p in (tmp_path / "one").rglob("*.jpg"):
        assert p.read_bytes() == (tmp_path / "two" / p.relative_to(tmp_path / "one")).read_bytes()
    strip = lambda rows: {k: {c: v for c, v in r.items() if c != "fingerprint"} for k, r in rows.items()}  # noqa: E731
    assert strip(manifest_by_id(tmp_path / "one")) == strip(manifest_by_id(tmp_path / "two"))


_KILL_SCRIPT = """
import sys
from trailcam_core.crop import CropOptions, crop_batch
def progress(done, total, message="", preview=None):
    print(done, flush=True)
crop_batch(sys.argv[1], sys.argv[2], CropOptions(size=256, format="png", workers=1), progress=progress)
"""


@pytest.mark.slow
def test_kill_mid_batch_leaves_no_half_written_file(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    src = make_folder(tmp_path / "src", n=40, size=(1200, 900))
    out = tmp_path / "out"
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(src), str(out)], cwd=repo,
                            stdout=subprocess.PIPE, text=True)
    try:
        seen = 0
        # let it finish some crops and write a manifest checkpoint, then kill it hard mid-crop
        while seen < 4 or not (out / MANIFEST).exists():
            line = proc.stdout.readline()
            assert line, "the batch ended before it could be killed"
            seen = int(line.split()[0]) if line.split()[0].isdigit() else seen
        proc.stdout.readline()
        time.sleep(0.03)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    finals = [p for p in out.rglob("*.png")]
    assert 4 <= len(finals) < 40
    for p in finals:                             # every crop that exists is whole
        with Image.open(p) as im:
            im.load()
            assert im.size == (256, 256)
    rep = crop_batch(src, out, CropOptions(size=256, format="png", workers=1))
    assert rep.processed + rep.up_to_date == 40 and not rep.skipped
    assert rep.up_to_date >= 1                    # the manifest checkpoint kept earlier work
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")], "temp files are cleaned up"
    assert len(read_manifest(out / MANIFEST)) == 40


def test_batch_on_real_sample(cct_sample_dir, tmp_path):
    recs = []
    for name in ["cat__5976a3a9-23d2-11e8-a6a3-ec086b02610b.jpg", "car__598de88f-23d2-11e8-a6a3-ec086b02610b.jpg"]:
        label, iid = name[:-4].split("__")
        recs.append(ImageRecord(iid, cct_sample_dir / name, name, labels=[label]))
    out = tmp_path / "out"
    rep = crop_batch(recs, out, CropOptions(size=256, workers=1))
    assert rep.processed == 2
    rows = manifest_by_id(out)
    cat = rows["5976a3a9-23d2-11e8-a6a3-ec086b02610b"]
    car = rows["598de88f-23d2-11e8-a6a3-ec086b02610b"]
    assert 32 <= int(cat["info_bar_top"]) <= 40 and int(cat["crop_y"]) == int(cat["info_bar_top"])
    assert 48 <= int(car["info_bar_bottom"]) <= 56
    # the Cuddeback logo reaches about 38 rows above its strip: the square ends above it
    assert 1536 - 100 <= int(car["crop_y"]) + int(car["crop_h"]) <= 1536 - int(car["info_bar_bottom"]) - 30
    assert (cat["source_width"], cat["source_height"]) == ("2048", "1494")
    with Image.open(out / "5976a3a9-23d2-11e8-a6a3-ec086b02610b.jpg") as im:   # infrared night: RGB, grey
        arr = np.asarray(im).astype(int)
        assert im.mode == "RGB" and np.abs(arr[..., 0] - arr[..., 2]).mean() < 1.5
        assert arr[:4].mean() > 3                  # the black strip is gone from the top rows


def test_batch_over_dataset_and_subset(sample_cct, tmp_path):
    dataset = pytest.importorskip("trailcam_core.ingest.dataset")
    ds = dataset.load_dataset(sample_cct, cache_dir=tmp_path / "cache")
    records = ds.records()[:12]
    out = tmp_path / "out"
    rep = crop_batch(records, out, CropOptions(size=64, mode="bbox", workers=1))
    assert rep.processed + len(rep.skipped) == len(records)
    assert rep.processed >= 1
    rows = manifest_by_id(out)
    for rec in records:
        if rec.image_id in rows:
            assert rows[rec.image_id]["source_file"] == rec.file_name
            assert rows[rec.image_id]["label"] == (rec.label or "")
    # a Dataset itself is accepted (anything with .records())
    rep = crop_batch(ds, tmp_path / "all", CropOptions(size=32, workers=1))
    assert rep.processed + len(rep.skipped) == len(ds)


# ---------------------------------------------------------------------------------------------
# the `trailcam crop` command
# ---------------------------------------------------------------------------------------------
def test_cli_crop_folder(tmp_path, capsys):
    from trailcam_cli import main

    src = make_folder(tmp_path / "src", n=3)
    (src / "broken.jpg").write_bytes(b"")
    out = tmp_path / "out"
    assert main(["crop", str(src), "--out", str(out), "--size", "48", "--format", "png", "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "crop: 3 done, 1 skipped" in captured.out
    assert "broken.jpg: empty file" in captured.err
    assert len(list(out.rglob("*.png"))) == 3 and (out / MANIFEST).is_file()
    assert main(["crop", str(src), "--out", str(out), "--size", "48", "--format", "png", "--workers", "1"]) == 0
    assert "0 done, 3 up to date" in capsys.readouterr().out
    assert main(["crop", str(tmp_path / "nowhere"), "--out", str(out)]) == 1
    assert "neither a folder nor a CCT JSON" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_crop_cct_json_subprocess(sample_cct, tmp_path):
    """The real command over a CCT JSON, as a user runs it (a fresh process, the process pool)."""
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "crops"
    res = subprocess.run([sys.executable, "-m", "trailcam_cli", "crop", str(sample_cct), "--out", str(out),
                          "--size", "64", "--mode", "bbox", "--workers", "2", "--json"],
                         cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    n_images = len(json.loads(Path(sample_cct).read_text())["images"])
    assert report["stage"] == "crop" and report["processed"] + len(report["skipped"]) == n_images
    rows = read_manifest(out / MANIFEST)
    assert len({r["image_id"] for r in rows}) == report["processed"]
    assert all(r["mode"] == "bbox" for r in rows)


def test_batch_honours_exif_orientation_with_draft_decode(tmp_path):
    """The batch path decodes reduced (JPEG draft) and then turns the frame upright."""
    src = tmp_path / "src"
    src.mkdir()
    img = Image.new("RGB", (1800, 1200), (0, 90, 0))
    img.paste((255, 0, 0), (0, 0, 300, 300))              # marker top-left of the stored frame
    exif = Image.Exif()
    exif[0x0112] = 8                                      # 8: rotate 90 CCW to view -> marker bottom-left
    img.save(src / "side.jpg", "JPEG", quality=95, exif=exif)
    out = tmp_path / "out"
    rep = crop_batch(src, out, CropOptions(size=100, mode="strip", strip_info_bar=False, workers=1))
    assert rep.processed == 1
    row = read_manifest(out / MANIFEST)[0]
    assert (row["source_width"], row["source_height"]) == ("1200", "1800")
    with Image.open(out / "side.jpg") as im:
        assert im.size == (67, 100)
        r, g, _ = im.getpixel((3, im.height - 3))
        assert r > 200 and g < 60


# ---------------------------------------------------------------------------------------------
# fast scaler and crop writes
# ---------------------------------------------------------------------------------------------
def _psnr(a: Image.Image, b: Image.Image) -> float:
    x, y = np.asarray(a).astype(np.float64), np.asarray(b).astype(np.float64)
    return float(10 * np.log10(255.0 ** 2 / max(1e-9, np.mean((x - y) ** 2))))


@pytest.mark.parametrize("gray", [False, True])
def test_fast_shrink_is_close_to_lanczos_and_keeps_mode(gray):
    pytest.importorskip("cv2")
    from trailcam_core.crop import geometry as crop_mod

    img = scene(1024, 747, seed=3, gray=gray).copy()   # pixels Pillow owns, as a decoded JPEG's
    borrowed = Image.fromarray(np.asarray(img.convert("L")))   # maps numpy's memory: never viewed in place
    assert borrowed.readonly and crop_mod._pixels_in_place(borrowed) is None
    src = (147.0, 18.0, 877.0, 747.0)               # the 1.43x shrink of a 2048x1494 frame at draft 1/2
    out = crop_mod._linear_shrink(img, src, (512, 512))
    assert out is not None and out.size == (512, 512) and out.mode == img.mode
    ref = img.resize((512, 512), Image.Resampling.LANCZOS, box=src)
    # on this noisy texture (the hardest case): closer to Lanczos than Pillow's area average, far from nearest
    ours = _psnr(out, ref)
    assert ours > 31
    assert ours > _psnr(img.resize((512, 512), Image.Resampling.BOX, box=src), ref) + 1
    assert ours > _psnr(img.resize((512, 512), Image.Resampling.NEAREST, box=src), ref) + 5
    assert img.getpixel((500, 400)) == scene(1024, 747, seed=3, gray=gray).getpixel((500, 400))   # source untouched


def test_fast_shrink_only_where_it_is_good(monkeypatch):
    from trailcam_core.crop import geometry as crop_mod
    from trailcam_core.crop.geometry import CropOptions, crop_image

    img = add_strip(scene(2048, 1494, seed=5), "top", 32, 0, 255).copy()
    assert crop_mod._linear_shrink(img.convert("RGBA"), (0, 0, 700, 700), (512, 512)) is None   # alpha: Pillow
    assert crop_mod._linear_shrink(img, (0, 0, 400, 400), (512, 512)) is None                   # enlarging: Pillow
    fast = crop_image(img, options=CropOptions(size=512))
    monkeypatch.setattr(crop_mod, "_pixels_in_place", lambda im: None)        # no in-place view: Pillow path
    slow = crop_image(img, options=CropOptions(size=512))
    assert fast.size == slow.size == (512, 512) and fast.mode == slow.mode == "RGB"
    assert _psnr(fast, slow) > 30                                             # same region, same look
    calls = []
    monkeypatch.setattr(crop_mod, "_linear_shrink", lambda *a: calls.append(a) or None)
    crop_image(img, options=CropOptions(size=128))                            # 11x shrink: area average
    crop_image(img, options=CropOptions(size=512, resample="lanczos"))        # a fixed filter is honoured
    assert calls == []


def test_write_atomic_replaces_in_one_rename(tmp_path):
    import os

    from trailcam_core.crop.single import write_atomic

    dest = tmp_path / "cam1" / "IMG_0001.jpg"
    write_atomic(dest, b"first")                     # creates the sub-folder
    write_atomic(dest, b"second" * 1000)             # replaces
    assert dest.read_bytes() == b"second" * 1000
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(OSError):
        write_atomic(tmp_path / "dir.jpg", b"x")      # rename onto a folder fails: no temp file left
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["IMG_0001.jpg"]


def test_info_bar_is_the_same_whatever_the_pixel_mode(cct_sample_dir):
    """RGB, RGBA, L and LA copies of a real frame give the same strip."""
    for path in sorted(cct_sample_dir.glob("*.jpg"))[::4]:
        img = Image.open(path)
        img.draft("RGB", (img.width // 2, img.height // 2))
        img.load()
        bar = detect_info_bar(img)
        assert bar.present, path.name
        assert detect_info_bar(img.convert("RGBA")) == bar, path.name
        grey = img.convert("L")
        assert detect_info_bar(grey) == detect_info_bar(grey.convert("LA")), path.name


# ---------------------------------------------------------------------------------------------
# JPEG fast path (libjpeg-turbo via simplejpeg, numpy, OpenCV) against the Pillow path
# ---------------------------------------------------------------------------------------------
from trailcam_core.crop import single as crop_io  # noqa: E402
from trailcam_core.crop.geometry import cut  # noqa: E402


def test_info_bar_from_array_equals_pil(cct_sample_dir):
    for path in sorted(cct_sample_dir.glob("*.jpg"))[::5]:
        img = Image.open(path).convert("RGB")
        assert detect_info_bar(np.asarray(img)) == detect_info_bar(img), path.name
        assert detect_info_bar(np.asarray(img.convert("L"))) == detect_info_bar(img.convert("L")), path.name


def test_fast_jpeg_path_matches_pillow_path_on_real_photos(cct_sample_dir):
    """Same crop box, strip and size as the Pillow path, near-identical pixels."""
    assert crop_io._simplejpeg() is not None, "simplejpeg is a declared dependency"
    opts = CropOptions(size=256)
    for path in sorted(cct_sample_dir.glob("*.jpg"))[::3]:
        data, box, bar, full = crop_io.crop_jpeg_fast(path, [], opts)
        img, full2 = crop_io.load_upright(path, [], opts)
        ref, box2, bar2 = cut(img, [], opts, scale=full2[0] / img.width, full_size=full2)
        assert (box, bar, full) == (box2, bar2, full2), path.name
        assert bar.present, path.name
        fast = Image.open(io.BytesIO(data))
        assert fast.format == "JPEG" and fast.size == (256, 256) and fast.mode == ref.mode
        ref_file = Image.open(io.BytesIO(crop_io.encode(ref, opts)))      # both as saved JPEGs
        assert _psnr(fast.convert("RGB"), ref_file.convert("RGB")) > 38, path.name


@pytest.mark.parametrize("orientation", range(1, 9))
def test_fast_jpeg_path_reads_every_exif_orientation(tmp_path, orientation):
    p = tmp_path / f"o{orientation}.jpg"
    img = Image.new("RGB", (1800, 1200), (0, 90, 0))
    img.paste((255, 0, 0), (0, 0, 300, 300))
    img.paste((0, 0, 255), (1500, 900, 1800, 1200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TrailCam"                       # another tag before/after, as cameras write
    img.save(p, "JPEG", quality=95, exif=exif)
    assert crop_io.jpeg_orientation(p.read_bytes()) == orientation
    opts = CropOptions(size=100, mode="strip", strip_info_bar=False)
    data, box, _, full = crop_io.crop_jpeg_fast(p, [], opts)
    ref, full2 = crop_io.load_upright(p, [], opts)
    assert full == full2
    ref_out, box2, _ = cut(ref, [], opts, scale=full2[0] / ref.width, full_size=full2)
    assert box == box2
    ref_file = Image.open(io.BytesIO(crop_io.encode(ref_out, opts)))
    assert _psnr(Image.open(io.BytesIO(data)).convert("RGB"), ref_file.convert("RGB")) > 38


def test_jpeg_orientation_without_exif_and_on_garbage():
    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, "JPEG")
    assert crop_io.jpeg_orientation(buf.getvalue()) == 1
    assert crop_io.jpeg_orientation(b"\xff\xd8\x00\x00garbage") is None
    assert crop_io.jpeg_orientation(b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00XX") is None   # cut short


def test_fast_jpeg_path_grey_progressive_cmyk_and_broken(tmp_path):
    opts = CropOptions(size=64, strip_info_bar=False)
    grey = tmp_path / "grey.jpg"
    scene(400, 300, gray=True).save(grey, "JPEG", quality=90)
    data, *_ = crop_io.crop_jpeg_fast(grey, [], opts)
    assert Image.open(io.BytesIO(data)).mode == "L"                   # grey stays grey
    prog = tmp_path / "prog.jpg"
    scene(400, 300).save(prog, "JPEG", quality=90, progressive=True)
    data, *_ = crop_io.crop_jpeg_fast(prog, [], opts)
    assert Image.open(io.BytesIO(data)).size == (64, 64)
    cmyk = tmp_path / "cmyk.jpg"
    scene(400, 300).convert("CMYK").save(cmyk, "JPEG")
    assert crop_io.crop_jpeg_fast(cmyk, [], opts) is None             # Pillow's path takes it
    png_named_jpg = tmp_path / "png.jpg"
    scene(100, 80).save(png_named_jpg, "PNG")
    assert crop_io.crop_jpeg_fast(png_named_jpg, [], opts) is None
    cut_short = tmp_path / "cut.jpg"
    cut_short.write_bytes(grey.read_bytes()[:2000])
    with pytest.raises(crop_io.BadInput, match="truncated"):
        crop_io.crop_jpeg_fast(cut_short, [], opts)
    big = CropOptions(size=64, max_pixels=1000)
    with pytest.raises(crop_io.BadInput, match="decompression bomb"):
        crop_io.crop_jpeg_fast(grey, [], big)


def test_batch_without_simplejpeg_gives_the_same_crops(tmp_path, monkeypatch):
    src = make_folder(tmp_path / "src", n=3)
    fast = crop_batch(src, tmp_path / "fast", CropOptions(size=64, workers=1))
    monkeypatch.setattr(crop_io, "_SJ", [None])
    slow = crop_batch(src, tmp_path / "slow", CropOptions(size=64, workers=1))
    assert fast.processed == slow.processed == 3
    a, b = manifest_by_id(tmp_path / "fast"), manifest_by_id(tmp_path / "slow")
    keys = ("crop_x", "crop_y", "crop_w", "crop_h", "info_bar_top", "info_bar_bottom", "source_width")
    assert {k: {c: r[c] for c in keys} for k, r in a.items()} == {k: {c: r[c] for c in keys} for k, r in b.items()}
    for name in a:
        crop = a[name]["crop_file"]
        assert _psnr(Image.open(tmp_path / "fast" / crop).convert("RGB"),
                     Image.open(tmp_path / "slow" / crop).convert("RGB")) > 30
