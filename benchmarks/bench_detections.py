"""Benchmark: importing a 250,000-image MegaDetector file.

Compares ``trailcam_core.detections.model.read_detections(...).labels()`` (orjson + columnar numpy
validation and label rule) against the named baseline: ``json.load`` plus plain Python loops
building the same per-image table (file, label, score, n_above, max_conf) with pandas.
Each variant runs in its own subprocess so its peak RSS (``ru_maxrss``) is its own; the
figures of both come from the same run.  The machine is shared and noisy: repeat a few times;
CPU seconds (process time) are printed too, as they suffer less from other processes.  For
information, the baseline is also run with the garbage collector disabled (json.load of a big
file triggers many full collections; the reader avoids them).

Usage: ``python benchmarks/bench_detections.py [--images 250000] [--repeats 3] [--keep FILE]``
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

THRESHOLD = 0.2


def generate(path: Path, n: int) -> None:
    from trailcam_core.samples.detections import caltech_like_files, make_megadetector

    doc = make_megadetector(caltech_like_files(n, seed=7), seed=11, version="1.4", addaxai=True)
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=1)  # AddaxAI/MegaDetector write indented JSON


def baseline(path: str) -> dict:
    """json.load + Python loops building the per-image table (the label rule, no validation)."""
    import pandas as pd

    t0, c0 = time.perf_counter(), time.process_time()
    with open(path) as fh:
        data = json.load(fh)
    dcats = {k: " ".join(v.split()).lower() for k, v in data["detection_categories"].items()}
    ccats = {k: " ".join(v.split()).lower() for k, v in data.get("classification_categories", {}).items()}
    files, labels, scores, n_above, max_conf = [], [], [], [], []
    for im in data["images"]:
        dets = im.get("detections")
        if im.get("failure") is not None or dets is None:
            continue
        best, best_conf, above, top = "empty", float("nan"), 0, float("nan")
        for d in dets:
            conf = d["conf"]
            if not conf <= top:
                top = conf
            if conf >= THRESHOLD:
                above += 1
                if not conf <= best_conf:
                    cls = d.get("classifications")
                    best = ccats[cls[0][0]] if cls else dcats[d["category"]]
                    best_conf = conf
        files.append(im["file"].replace("\\", "/"))
        labels.append(best)
        scores.append(best_conf)
        n_above.append(above)
        max_conf.append(top)
    table = pd.DataFrame({"file": files, "label": labels, "score": scores, "n_above": n_above,
                          "max_conf": max_conf})
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "rows": len(table),
            "labels": table["label"].value_counts().to_dict()}


def ours(path: str) -> dict:
    # imports outside the timing, as pandas is for the baseline
    import pyarrow.compute  # noqa: F401  (used for the location column)
    import trailcam_core.detections.megadetector  # noqa: F401
    from trailcam_core.detections.read import read_detections

    t0, c0 = time.perf_counter(), time.process_time()
    det = read_detections(path)
    table = det.labels(threshold=THRESHOLD)
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "rows": len(table),
            "labels": table["label"].value_counts().to_dict(), "skipped": len(det.skipped)}


def baseline_nogc(path: str) -> dict:
    """For information only: the same baseline with the garbage collector switched off."""
    import gc

    gc.disable()
    return baseline(path)


def child(variant: str, path: str) -> None:
    result = {"baseline": baseline, "baseline_nogc": baseline_nogc, "ours": ours}[variant](path)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run(variant: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", variant, str(path)], capture_output=True, text=True,
                         check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=250_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="generate into (or reuse) this file")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    tmpdir = None
    path = args.keep
    if path is None:
        tmpdir = tempfile.TemporaryDirectory()
        path = Path(tmpdir.name) / "md_results.json"
    if not path.exists():
        t = time.perf_counter()
        generate(path, args.images)
        print(f"generated {path.name}: {args.images:,} images, {path.stat().st_size / 1e6:.0f} MB "
              f"in {time.perf_counter() - t:.1f}s")
    print("note: shared, noisy machine; each variant runs in its own subprocess, interleaved")
    best = {"baseline": None, "ours": None, "baseline_nogc": None}
    cpu_best: dict = {}
    for r in range(args.repeats):
        for variant in ("baseline", "ours", "baseline_nogc"):
            res = run(variant, path)
            print(f"  run {r + 1} {variant:8s}: {res['seconds']:.2f}s wall, {res['cpu']:.2f}s CPU, "
                  f"peak RSS {res['peak_rss_mb']:.0f} MB, {res['rows']:,} rows")
            if best[variant] is None or res["seconds"] < best[variant]["seconds"]:
                best[variant] = res
            cpu_best[variant] = min(cpu_best.get(variant, res["cpu"]), res["cpu"])
    b, o = best["baseline"], best["ours"]
    same = b["labels"] == o["labels"] and b["rows"] == o["rows"]
    print(f"baseline json.load + loops: {b['seconds']:.2f}s (best of {args.repeats}), "
          f"peak RSS {b['peak_rss_mb']:.0f} MB")
    print(f"read_detections + labels : {o['seconds']:.2f}s (best of {args.repeats}), "
          f"peak RSS {o['peak_rss_mb']:.0f} MB")
    g = best["baseline_nogc"]
    print(f"(information) baseline with gc.disable(): {g['seconds']:.2f}s wall, {cpu_best['baseline_nogc']:.2f}s "
          f"CPU, peak RSS {g['peak_rss_mb']:.0f} MB")
    print(f"CPU time: baseline {cpu_best['baseline']:.2f}s, ours {cpu_best['ours']:.2f}s, "
          f"ratio {cpu_best['ours'] / cpu_best['baseline']:.2f}x")
    print(f"wall time ratio {o['seconds'] / b['seconds']:.2f}x (target <= 0.5x), "
          f"memory ratio {o['peak_rss_mb'] / b['peak_rss_mb']:.2f}x (target <= 1.0x), "
          f"same per-image labels: {same}")
    if tmpdir is not None:
        tmpdir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
