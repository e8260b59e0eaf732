"""Benchmark the pixel tags: artifact score precision/recall and time-of-day accuracy.

Part 1 (artifacts): a labelled fixture set is generated in a temporary folder from the real
photos of cct-sample (downscaled), half left clean and half given one synthetic camera glitch
(horizontal tear, banding, colour-channel misalignment, blown rows, smeared rows).  The artifact
score of ``trailcam_core.tags.auto`` is thresholded and compared with a named baseline measured in the
same run: "row-jump", the largest jump between consecutive row means (a one-line detector).
Part 2 (time of day): accuracy on the real photos (infrared frames known from labels.csv
gray_fraction, colour-flash and day frames hand-labelled from their info strips) against the
baseline "grey-or-day" (grey -> night-infrared, everything else -> day).
Part 3 (speed): tagging throughput, one process against the process pool, same images.

Run: ``python benchmarks/bench_artifacts.py [--sample ../shared/cct-sample] [--copies 3]``.
The machine is shared and noisy: timings vary by tens of percent between runs.
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

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GLITCH_KINDS = ("tear", "banding", "channel", "blown", "smear")


def make_glitch(img: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """Return a copy of ``img`` with one synthetic camera glitch of ``kind`` (see GLITCH_KINDS)."""
    a = np.asarray(img.convert("RGB")).astype(np.int16).copy()
    h, w, _ = a.shape
    lo, hi = int(h * 0.15), int(h * 0.85)     # keep glitches off the info strips
    if kind == "tear":
        # rows below a line slip sideways (a torn frame), sometimes only a band of them
        y0 = int(rng.integers(lo, hi - 8))
        y1 = h if rng.random() < 0.5 else int(rng.integers(y0 + 8, min(h, y0 + h // 3) + 1))
        shift = int(rng.integers(w // 12, w // 3)) * (1 if rng.random() < 0.5 else -1)
        a[y0:y1] = np.roll(a[y0:y1], shift, axis=1)
    elif kind == "banding":
        # periodic horizontal bands with a brightness / colour offset
        period = int(rng.integers(8, 40))
        width = max(2, int(period * rng.uniform(0.2, 0.5)))
        offset = rng.uniform(-1, 1, size=3) * rng.uniform(25, 60)
        y0, y1 = int(rng.integers(0, h // 3)), int(rng.integers(2 * h // 3, h))
        for y in range(y0, y1, period):
            a[y:y + width] = a[y:y + width] + offset.astype(np.int16)
    elif kind == "channel":
        # one colour channel displaced sideways, over the frame or a band of it
        c = int(rng.choice([0, 2]))
        shift = int(rng.integers(max(3, w // 150), max(5, w // 40))) * (1 if rng.random() < 0.5 else -1)
        if rng.random() < 0.5:
            a[..., c] = np.roll(a[..., c], shift, axis=1)
        else:
            y0 = int(rng.integers(lo, hi - h // 6))
            y1 = y0 + int(rng.integers(h // 8, h // 3))
            a[y0:y1, :, c] = np.roll(a[y0:y1, :, c], shift, axis=1)
    elif kind == "blown":
        # a run of rows saturated or one flat colour
        y0 = int(rng.integers(lo, hi))
        n = int(rng.integers(max(2, h // 100), max(4, h // 15)))
        colour = [255, 255, 255] if rng.random() < 0.5 else list(rng.integers(0, 256, size=3))
        a[y0:y0 + n] = np.array(colour, dtype=np.int16)
    elif kind == "smear":
        # one row copied down (a stalled read-out) or rows smeared sideways
        y0 = int(rng.integers(lo, hi))
        if rng.random() < 0.5:
            y1 = h if rng.random() < 0.5 else min(h, y0 + int(rng.integers(h // 20, h // 4)))
            a[y0:y1] = a[y0]
        else:
            y1 = min(h, y0 + int(rng.integers(h // 12, h // 4)))
            k = int(rng.integers(w // 10, w // 4))
            band = a[y0:y1].astype(np.float32)
            cs = np.cumsum(np.pad(band, ((0, 0), (k, 0), (0, 0)), mode="edge"), axis=1)
            a[y0:y1] = ((cs[:, k:] - cs[:, :-k]) / k).astype(np.int16)
    else:
        raise ValueError(f"unknown glitch kind {kind!r}")
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


# ------------------------------------------------------------------------------ fixture set

def build_fixture_set(sample_dir: Path, out_dir: Path, copies: int = 2, width: int = 1024,
                      seed: int = 0) -> list[dict]:
    """Write clean and glitched JPEGs (about half each) to ``out_dir``; return their ground truth."""
    rng = np.random.default_rng(seed)
    truth = []
    files = sorted(sample_dir.glob("*.jpg"))
    for copy in range(copies):
        for f in files:
            with Image.open(f) as im:
                im.draft("RGB", (width, width))
                im = im.convert("RGB")
            if im.width > width:
                im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.BILINEAR)
            glitched = rng.random() < 0.5
            kind = str(rng.choice(GLITCH_KINDS)) if glitched else "clean"
            img = make_glitch(im, kind, rng) if glitched else im
            name = f"{copy}_{kind}_{f.stem[:40]}.jpg"
            img.save(out_dir / name, quality=int(rng.integers(80, 96)))
            truth.append({"file": name, "glitch": glitched, "kind": kind, "source": f.name})
    return truth


def row_jump_score(path: Path, size: int = 512) -> float:
    """Baseline: the largest jump between consecutive row means (grey levels), info strips ignored."""
    from trailcam_core.tags.auto import _info_bar, load_for_analysis

    img, _ = load_for_analysis(path, size)
    top, bottom = _info_bar(img)
    a = np.asarray(img.convert("L"), np.float32)
    a = a[top:a.shape[0] - bottom]
    return float(np.abs(np.diff(a.mean(axis=1))).max())


def precision_recall(pred: list[bool], truth: list[bool]) -> tuple[float, float, float]:
    tp = sum(p and t for p, t in zip(pred, truth))
    fp = sum(p and not t for p, t in zip(pred, truth))
    fn = sum(t and not p for p, t in zip(pred, truth))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


# Hand labels for the real photos that are not infrared (infrared = gray_fraction 1.0 in
# labels.csv): read from each frame's info strip (date and time) and its look.
REAL_NIGHT_FLASH = {"coyote__59673655", "skunk__5973880a", "car__598dea48"}   # 3:17 AM, 1:41 AM, 6:04 PM in December
REAL_TWILIGHT = {"car__5a063197"}                                              # 4:47 PM in January


def real_time_of_day_truth(sample_dir: Path) -> dict[str, str]:
    out = {}
    with open(sample_dir / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            key = row["file_name"].split("-")[0]
            if float(row["gray_fraction"]) >= 0.99:
                out[row["file_name"]] = "night-infrared"
            elif key in REAL_NIGHT_FLASH:
                out[row["file_name"]] = "night-flash"
            elif key in REAL_TWILIGHT:
                out[row["file_name"]] = "twilight"
            else:
                out[row["file_name"]] = "day"
    return out


def main(argv: list[str] | None = None) -> int:
    from trailcam_core.base.records import ImageRecord
    from trailcam_core.tags.auto import TagOptions, tag_records

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", default=str(REPO.parent / "shared" / "cct-sample"))
    ap.add_argument("--copies", type=int, default=2, help="glitched/clean copies of each real photo")
    ap.add_argument("--threshold", type=float, default=TagOptions().artifact_threshold)
    ap.add_argument("--synthetic", action="store_true", help="also score the synthetic sample (trailcam_core.samples.synthetic)")
    args = ap.parse_args(argv)
    sample = Path(args.sample)
    if not (sample / "labels.csv").is_file():
        print(f"no cct-sample at {sample}", file=sys.stderr)
        return 2
    print("note: shared, noisy machine; timings vary by tens of percent between runs")
    with tempfile.TemporaryDirectory(prefix="bench_artifacts_") as tmp:
        tmp = Path(tmp)
        truth = build_fixture_set(sample, tmp, copies=args.copies)
        records = [ImageRecord(image_id=t["file"], path=tmp / t["file"], file_name=t["file"]) for t in truth]
        n = len(records)

        # speed: one process against the pool, same images
        t0 = time.perf_counter()
        serial = tag_records(records, TagOptions(workers=1, artifact_threshold=args.threshold))
        t_serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        pooled = tag_records(records, TagOptions(workers=0, artifact_threshold=args.threshold))
        t_pool = time.perf_counter() - t0
        assert all(serial[r.image_id]["artifact"].score == pooled[r.image_id]["artifact"].score for r in records)
        t0 = time.perf_counter()
        base_scores = [row_jump_score(r.path) for r in records]
        t_base = time.perf_counter() - t0

        gt = [t["glitch"] for t in truth]
        ours = [pooled[r.image_id]["artifact"].score for r in records]
        p, r_, f1 = precision_recall([s >= args.threshold for s in ours], gt)
        best = max(((precision_recall([s >= th for s in base_scores], gt), th)
                    for th in sorted(set(base_scores))), key=lambda x: x[0][2])
        (bp, br, bf1), bth = best
        print(f"\n== artifact score on {n} generated frames ({sum(gt)} glitched, {n - sum(gt)} clean; "
              f"from {len(list(sample.glob('*.jpg')))} real photos) ==")
        print(f"trailcam artifact score >= {args.threshold:.2f}: precision {p:.3f}  recall {r_:.3f}  F1 {f1:.3f}")
        print(f"baseline row-jump (threshold {bth:.1f} picked with hindsight for its best F1): "
              f"precision {bp:.3f}  recall {br:.3f}  F1 {bf1:.3f}")
        print(f"F1 ratio trailcam / baseline: {f1 / bf1 if bf1 else float('inf'):.2f}x")
        for kind in GLITCH_KINDS:
            sel = [s for s, t in zip(ours, truth) if t["kind"] == kind]
            if sel:
                print(f"  recall on {kind:8s}: {sum(s >= args.threshold for s in sel)}/{len(sel)}")
        clean_fp = [t["file"] for s, t in zip(ours, truth) if not t["glitch"] and s >= args.threshold]
        print(f"  clean frames flagged: {len(clean_fp)} {clean_fp[:5]}")

        print(f"\n== speed: tagging {n} frames of 1024 px (time of day + artifact + info bar) ==")
        print(f"one process: {t_serial:.2f} s ({1000 * t_serial / n:.0f} ms/image); process pool: {t_pool:.2f} s "
              f"({1000 * t_pool / n:.0f} ms/image); speed-up {t_serial / t_pool:.2f}x")
        print(f"baseline row-jump alone: {t_base:.2f} s ({1000 * t_base / n:.0f} ms/image)")

    # time of day on the real photos
    tod_truth = real_time_of_day_truth(sample)
    recs = [ImageRecord(image_id=f, path=sample / f, file_name=f) for f in sorted(tod_truth)]
    tagged = tag_records(recs, TagOptions())
    ours_ok = sum(tagged[f]["time_of_day"].value == v for f, v in tod_truth.items())
    base_ok = 0
    for f, v in tod_truth.items():
        base = "night-infrared" if tagged[f]["time_of_day"].value == "night-infrared" else "day"
        base_ok += base == v
    print(f"\n== time of day on {len(tod_truth)} real photos (pixels only: they carry no capture time) ==")
    print(f"trailcam: {ours_ok}/{len(tod_truth)} = {ours_ok / len(tod_truth):.3f}; "
          f"baseline grey-or-day: {base_ok}/{len(tod_truth)} = {base_ok / len(tod_truth):.3f}")
    for kind in ("day", "night-infrared", "night-flash", "twilight"):
        sel = [f for f, v in tod_truth.items() if v == kind]
        ok = sum(tagged[f]["time_of_day"].value == kind for f in sel)
        wrong = sorted({tagged[f]["time_of_day"].value for f in sel if tagged[f]["time_of_day"].value != kind})
        print(f"  {kind:15s} {ok}/{len(sel)}" + (f"  (mistaken for {', '.join(wrong)})" if wrong else ""))

    if args.synthetic:
        synthetic_report(args.threshold)
    return 0


def synthetic_report(threshold: float) -> None:
    """Artifact and time-of-day scores on the synthetic sample, which records its ground truth."""
    from trailcam_core.ingest.dataset import load_dataset
    from trailcam_core.samples.synthetic import ensure_sample
    from trailcam_core.tags.auto import TagOptions, tag_records

    with tempfile.TemporaryDirectory(prefix="bench_sample_") as tmp:
        ds = load_dataset(ensure_sample(Path(tmp) / "sample"), use_cache=False)
        recs = ds.records()
        for with_time in (False, True):
            use = [r for r in recs]
            if not with_time:
                use = [type(r)(**{**r.__dict__, "datetime": None}) for r in recs]
            tagged = tag_records(use, TagOptions(artifact_threshold=threshold))
            names = {"day": "day", "ir_night": "night-infrared", "flash_night": "night-flash"}
            ok = sum(tagged[r.image_id]["time_of_day"].value == names.get(r.extra["synthetic"]["time_of_day"])
                     for r in recs)
            gt = [bool(r.extra["synthetic"]["glitch"]) for r in recs]
            pred = [tagged[r.image_id]["artifact"].value == "glitch" for r in recs]
            p, r_, f1 = precision_recall(pred, gt)
            print(f"\n== synthetic sample, {len(recs)} frames, capture time {'used' if with_time else 'hidden'} ==")
            print(f"time of day accuracy {ok}/{len(recs)} = {ok / len(recs):.3f}; "
                  f"artifacts precision {p:.3f} recall {r_:.3f} F1 {f1:.3f} ({sum(gt)} glitched)")


if __name__ == "__main__":
    sys.exit(main())
