"""Tests for trailcam_core.crop: info-bar detection, square geometry, in-memory and batch crops."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from trailcam_core.crop import InfoBar, detect_info_bar


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
        assert detect_info_bar(inner) == InfoBar(0, 0), path.name


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
