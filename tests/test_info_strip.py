"""One info-strip and logo detector for the tagger and the crop: the same strip at every analysis
size (a light 2560x1920 strip included), camera logos found and cropped away on real frames."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from trailcam_core.crop.geometry import CropOptions, crop_box, crop_image, detect_info_bar
from trailcam_core.crop.info_logo import find_logos
from trailcam_core.base.records import Box
from trailcam_core.tags.auto import TagOptions, pixel_tags

ANALYSIS_SIZES = (256, 512)          # all sizes and every frame: benchmarks/bench_info_strip.py


def ink_pixels(img: Image.Image, hue_lo: int, hue_hi: int) -> int:
    """Pixels of a pure logo ink (saturation >= 0.8, bright) whose hue lies in [hue_lo, hue_hi]."""
    hsv = np.asarray(img.convert("RGB").convert("HSV")).astype(int)
    return int(((hsv[..., 1] >= 204) & (hsv[..., 2] >= 90) & (hsv[..., 0] >= hue_lo) & (hsv[..., 0] <= hue_hi)).sum())


def light_strip_frame(path: Path) -> Path:
    """A 2560x1920 infrared night frame with an 84-row light bottom strip in the Ltl Acorn style
    (light grey band, dark text, a coloured moon-phase mark), saved as JPEG."""
    rng = np.random.default_rng(3)
    w, h = 2560, 1920
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grey = 30 + 18 * np.sin(xx / 90.0) * np.cos(yy / 70.0) + rng.normal(0, 6, (h, w))
    arr = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    # a faint colour cast on a share of the scene, as infrared frames of some cameras have
    cast = rng.random((h, w)) < 0.12
    arr[cast, 2] = np.clip(arr[cast, 2].astype(int) + 9, 0, 255)
    img = Image.fromarray(arr)
    d = ImageDraw.Draw(img)
    d.rectangle([0, h - 84, w, h], fill=(214, 206, 188))
    font = ImageFont.load_default(size=40)
    d.text((24, h - 70), "LTL ACORN    72F 22C    06/14/2013  10:21:33 PM", font=font, fill=(28, 28, 28))
    d.ellipse([w - 160, h - 76, w - 90, h - 8], fill=(240, 190, 40))
    img.save(path, "JPEG", quality=90)
    return path


def test_tagger_sees_the_light_strip_crop_sees_at_every_analysis_size(tmp_path):
    path = light_strip_frame(tmp_path / "ltl.jpg")
    full = detect_info_bar(Image.open(path))
    assert full.top == 0 and 84 <= full.bottom <= 92
    for size in ANALYSIS_SIZES:
        tags = pixel_tags(path, options=TagOptions(analysis_size=size))
        assert tags["info_bar"].value == "bottom", size
        # with the strip left out of the statistics the frame reads as the infrared night it is
        assert tags["time_of_day"].value == "night-infrared", (size, tags["time_of_day"])
        if size >= 512:     # (at 256 px this smooth generated scene has flat rows of its own)
            assert tags["artifact"].value == "clean", (size, tags["artifact"])  # the strip's edge is no glitch


def test_tagger_and_crop_agree_on_every_real_frame(cct_sample_dir):
    for path in sorted(cct_sample_dir.glob("*.jpg"))[::4]:
        bar = detect_info_bar(Image.open(path))
        side = "both" if bar.top and bar.bottom else "top" if bar.top else "bottom" if bar.bottom else "none"
        for size in ANALYSIS_SIZES:
            assert pixel_tags(path, options=TagOptions(analysis_size=size))["info_bar"].value == side, (path.name, size)


def test_logos_are_found_on_every_real_frame_at_every_decode_scale(cct_sample_dir):
    """Cuddeback (2048x1536): the oval on the bottom strip, reaching about 38 rows above it.
    RECONYX (2048x1494): the wordmark in the bottom-right corner, under no strip."""
    for path in sorted(cct_sample_dir.glob("*.jpg")):
        for scale in (1, 2, 4):
            img = Image.open(path)
            if scale > 1:
                img.draft("RGB", (img.width // scale, img.height // scale))
            bar = detect_info_bar(img.convert("RGB"))
            full = bar.scaled(2048 / img.width)
            assert len(full.logos) == 1, (path.name, scale, bar)
            x0, y0, x1, y1 = full.logos[0]
            h = 1536 if full.bottom else 1494
            if full.bottom:                                    # Cuddeback
                assert 1540 <= x0 <= 1640 and 1840 <= x1 <= 2048 and y1 >= h - 4, (path.name, scale, full)
                assert 30 <= (h - full.bottom) - y0 <= 60, (path.name, scale, full)
            else:                                              # RECONYX
                assert 1760 <= x0 <= 1840 and x1 >= 2020 and h - 45 <= y0 <= h - 20, (path.name, scale, full)


def test_crops_hold_no_logo_ink(cct_sample_dir):
    """Centre, strip and bbox crops (a box in the corner where the logo is) leave the logo out."""
    cuddeback_blue, reconyx_green = (140, 175), (70, 100)
    checked = 0
    for path in sorted(cct_sample_dir.glob("*.jpg"))[::3]:
        img = Image.open(path).convert("RGB")
        bar = detect_info_bar(img)
        hue = cuddeback_blue if bar.bottom else reconyx_green
        corner = [Box(1700, img.height - 300, 300, 240)]
        for options, boxes in ((CropOptions(mode="center", size=256), []), (CropOptions(mode="strip", size=512), []),
                               (CropOptions(mode="bbox", size=256), corner)):
            out = crop_image(img, boxes, options)
            assert ink_pixels(out, *hue) <= 2, (path.name, options.mode)
            x0, y0, x1, y1 = crop_box(img.width, img.height, boxes, options, bar)
            for lx0, ly0, lx1, ly1 in bar.logos:
                assert not (x0 < lx1 and lx0 < x1 and y0 < ly1 and ly0 < y1), (path.name, options.mode)
        checked += 1
    assert checked >= 10


def test_a_centre_crop_that_misses_the_corner_logo_keeps_its_size(cct_sample_dir):
    """The RECONYX wordmark lies right of the centred square: no row is lost for it."""
    path = next(p for p in sorted(cct_sample_dir.glob("*.jpg")) if Image.open(p).size == (2048, 1494))
    bar = detect_info_bar(Image.open(path))
    assert bar.logos and crop_box(2048, 1494, [], CropOptions(mode="center"), bar) == (294, 35, 1753, 1494)


def test_no_logo_in_plain_or_colourful_scenes():
    rng = np.random.default_rng(0)
    for kind in range(3):
        arr = rng.integers(0, 255, (600, 800, 3), dtype=np.uint8) if kind == 0 else \
            np.full((600, 800, 3), (30, 160, 40), np.uint8) if kind == 1 else \
            np.clip(rng.normal(110, 40, (600, 800, 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=85)
        assert detect_info_bar(Image.open(buf).convert("RGB")).logos == (), kind
    assert find_logos(np.zeros((2, 10, 3), np.uint8), 0, 100) == []
    assert detect_info_bar(Image.new("L", (400, 300), 40)).logos == ()
