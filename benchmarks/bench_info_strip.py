"""Info strips and camera logos on the real photos of ../shared/cct-sample (44 Caltech frames).

Prints, all measured in this one run:

  (a) strip agreement: the tagger's ``info_bar`` at analysis sizes 256, 512, 768 and 1024 against
      the crop stage's detector on the full-size frame; baseline: the tagger's old path (detect
      on the image already resized for analysis), same frames, same sizes;
  (b) logos found per camera model at decode scales 1, 1/2, 1/4;
  (c) crops that still hold logo ink (>= 3 pure-colour logo pixels in the frame's bottom-right
      corner, where both cameras put theirs) for centre, strip and bbox
      crops (a box in the logo's corner), with the logo-aware geometry vs the strip-only
      baseline (the same strip, no logos);
  (d) time of day vs the ``gray_fraction`` column of labels.csv (>= 0.9: infrared night);
  (e) cost of one detection on a 1/4 decode, with and without the logo search.

    python benchmarks/bench_info_strip.py [--sample ../shared/cct-sample]
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trailcam_core.crop import geometry as crop_mod # noqa: E402
from trailcam_core.crop.geometry import CropOptions, InfoBar, crop_box, crop_image, detect_info_bar
from trailcam_core.base.records import Box  # noqa: E402
from trailcam_core.tags.auto import TagOptions, load_for_analysis, pixel_tags


def side(bar) -> str:
    return "both" if bar.top and bar.bottom else "top" if bar.top else "bottom" if bar.bottom else "none"


def ink_pixels(img: Image.Image, lo: int, hi: int) -> int:
    hsv = np.asarray(img.convert("RGB").convert("HSV")).astype(int)
    return int(((hsv[..., 1] >= 204) & (hsv[..., 2] >= 90) & (hsv[..., 0] >= lo) & (hsv[..., 0] <= hi)).sum())


def light_strip_frame(path: Path) -> Path:
    """A 2560x1920 infrared night frame with an 84-row light bottom strip (the 2560x1920 Caltech
    frames' kind: light grey band, dark text); the same frame as tests/test_info_strip.py."""
    from PIL import ImageDraw, ImageFont

    rng = np.random.default_rng(3)
    w, h = 2560, 1920
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grey = 30 + 18 * np.sin(xx / 90.0) * np.cos(yy / 70.0) + rng.normal(0, 6, (h, w))
    img = Image.fromarray(np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    d = ImageDraw.Draw(img)
    d.rectangle([0, h - 84, w, h], fill=(214, 206, 188))
    d.text((24, h - 70), "LTL ACORN    72F 22C    06/14/2013  10:21:33 PM", font=ImageFont.load_default(size=40),
           fill=(28, 28, 28))
    img.save(path, "JPEG", quality=90)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", default=str(ROOT.parent / "shared" / "cct-sample"))
    args = ap.parse_args()
    sample = Path(args.sample)
    files = sorted(sample.glob("*.jpg"))
    if not files:
        print(f"no photos under {sample}")
        return 1
    gray = {r["file_name"]: float(r["gray_fraction"]) for r in csv.DictReader(open(sample / "labels.csv"))}
    full = {f: detect_info_bar(Image.open(f)) for f in files}
    models = {f: "cuddeback" if Image.open(f).size == (2048, 1536) else "reconyx" for f in files}
    print(f"{len(files)} real frames: {sum(m == 'reconyx' for m in models.values())} RECONYX 2048x1494, "
          f"{sum(m == 'cuddeback' for m in models.values())} Cuddeback 2048x1536")

    print("\n(a) info strip, tagger vs crop's detector on the full frame")
    for size in (256, 512, 768, 1024):
        new = sum(pixel_tags(f, options=TagOptions(analysis_size=size))["info_bar"].value == side(full[f])
                  for f in files)
        old = sum(side(detect_info_bar(load_for_analysis(f, size)[0])) == side(full[f]) for f in files)
        print(f"  analysis size {size:4d}: {new}/{len(files)} agree (baseline, detect after the resize: "
              f"{old}/{len(files)})")

    with tempfile.TemporaryDirectory() as tmp:
        frame = light_strip_frame(Path(tmp) / "light.jpg")
        bar = detect_info_bar(Image.open(frame))
        for size in (256, 512, 768, 1024):
            new = pixel_tags(frame, options=TagOptions(analysis_size=size))["info_bar"].value
            old = side(detect_info_bar(load_for_analysis(frame, size)[0]))
            print(f"  generated 2560x1920 light strip ({bar.bottom} rows), size {size:4d}: tagger says {new!r} "
                  f"(baseline: {old!r})")

    print("\n(b) logos found")
    for scale in (1, 2, 4):
        found = {"reconyx": 0, "cuddeback": 0}
        for f in files:
            img = Image.open(f)
            if scale > 1:
                img.draft("RGB", (img.width // scale, img.height // scale))
            found[models[f]] += len(detect_info_bar(img.convert("RGB")).logos) == 1
        print(f"  decode 1/{scale}: RECONYX {found['reconyx']}/{sum(m == 'reconyx' for m in models.values())}, "
              f"Cuddeback {found['cuddeback']}/{sum(m == 'cuddeback' for m in models.values())}")
    f = next(f for f in files if models[f] == "cuddeback")
    b = full[f]
    print(f"  Cuddeback logo box {b.logos[0]}: reaches {1536 - b.bottom - b.logos[0][1]} rows above the "
          f"{b.bottom}-row strip")

    print("\n(c) crops still holding logo ink (>= 3 pixels)")
    hues = {"cuddeback": (140, 175), "reconyx": (70, 100)}
    for mode, boxes in (("center", []), ("strip", []), ("bbox", "corner")):
        opts = CropOptions(mode=mode, size=256)
        with_logo = without = 0
        for f in files:
            img = Image.open(f).convert("RGB")
            bx = [Box(1700, img.height - 300, 300, 240)] if boxes == "corner" else []
            bar = full[f]
            new_box = crop_box(img.width, img.height, bx, opts, bar)
            old_box = crop_box(img.width, img.height, bx, opts, InfoBar(bar.top, bar.bottom))
            lo, hi = hues[models[f]]
            corner = (1500, img.height - 150, img.width, img.height)      # where both logos sit

            def in_corner(box):
                x0, y0 = max(box[0], corner[0]), max(box[1], corner[1])
                x1, y1 = min(box[2], corner[2]), min(box[3], corner[3])
                return ink_pixels(img.crop((x0, y0, x1, y1)), lo, hi) if x1 > x0 and y1 > y0 else 0

            with_logo += in_corner(new_box) >= 3
            without += in_corner(old_box) >= 3
        print(f"  {mode:6s}: {with_logo}/{len(files)} with logos found (baseline strip only: {without}/{len(files)})")
    out = crop_image(Image.open(f).convert("RGB"), [], CropOptions(mode="center", size=512))
    print(f"  a Cuddeback centre crop at 512: {ink_pixels(out, *hues['cuddeback'])} logo pixels")

    print("\n(d) time of day vs labels.csv gray_fraction (>= 0.9 = infrared night)")
    agree = 0
    for f in files:
        tod = pixel_tags(f)["time_of_day"].value
        agree += (tod == "night-infrared") == (gray[f.name] >= 0.9)
    print(f"  {agree}/{len(files)} agree")

    print("\n(e) one detection on a 1/4 decode (512 wide)")
    ims = []
    for f in files:
        img = Image.open(f)
        img.draft("RGB", (img.width // 4, img.height // 4))
        ims.append(img.convert("RGB"))

    def timed() -> float:
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for img in ims:
                detect_info_bar(img)
            best = min(best, (time.perf_counter() - t) / len(ims))
        return best * 1000

    with_logos = timed()
    real = crop_mod.find_logos
    crop_mod.find_logos = lambda *a, **k: []
    try:
        strip_only = timed()
    finally:
        crop_mod.find_logos = real
    print(f"  strip and logos {with_logos:.2f} ms, strip only (baseline) {strip_only:.2f} ms: "
          f"x{with_logos / strip_only:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
