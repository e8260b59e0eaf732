"""Mosaic benchmark: layout speed and quality, memory at 50,000 images, embedding throughput.

    python benchmarks/bench_mosaic.py            # everything (several minutes on 2 cores)
    python benchmarks/bench_mosaic.py --quick    # N = 2,500 and the throughput check only

Figures, each against a baseline measured in the same run:

1. N = 2,500 clustered 512-d features (the seed's subset size): our default layout vs
   ImageRearranger's method (UMAP 2D + exact linear assignment), time after features and DPQ16.
   Targets: ours <= 2 s, DPQ16(ours) >= DPQ16(UMAP + LAP). UMAP is warmed up first so its numba
   compilation is not charged to the baseline.
2. N = 50,000: layout time and peak RSS of a fresh subprocess (targets: <= 60 s, <= 4 GB),
   for vc-flas and for the built-in sorter (what Python 3.13 users get). ImageRearranger's n x n
   float64 cost matrix alone would be 50,000^2 x 8 B = 20 GB.
2b. Side by side at N = 2,500, 50,000, 243,100 (``--sizes``): raw vc-flas on the 512-d features,
   the mosaic default (PCA to 128-d + principal-axis split + vc-flas), the built-in sorter, and the
   atlas layout (blockwise PCA to 64-d + vc-flas): wall, CPU, peak RSS of a fresh process, DPQ16
   (exact at 2,500, a 1,000-row sample above). Targets for the atlas layout at 243,100: <= 60 s wall
   and DPQ16 >= raw vc-flas's.
3. Embedding throughput on CPU: ``embed_images`` over JPEG files vs the model's own forward rate
   on pre-loaded tensors (target ratio >= 0.9): ViT-B-32 with random weights.

The machine is shared and noisy: every timing is printed as wall-clock and as CPU seconds of the
process (what it costs on an idle machine), with the load average at the start.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clustered_features(n: int, d: int = 512, seed: int = 0) -> np.ndarray:
    """CLIP-like features: a two-level Gaussian mixture (30 themes x 5 variants), L2-normalised."""
    rng = np.random.default_rng(seed)
    themes = rng.standard_normal((30, d))
    variants = np.repeat(themes, 5, axis=0) + 0.6 * rng.standard_normal((150, d))
    x = variants[rng.integers(0, 150, n)] + 0.4 * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def bench_2500() -> dict:
    from trailcam_core.mosaic.make import MosaicOptions, compute_layout
    from trailcam_core.mosaic import dpq
    from trailcam_core.mosaic.layout import assign_points, embed_2d, grid_shape

    n = 2500
    x = clustered_features(n)
    rows, cols = grid_shape(n)
    out = {}
    embed_2d(clustered_features(200, seed=9), "umap", 0)          # numba warm-up, not timed
    for name, opts in (("ours (flas, default)", MosaicOptions()), ("ours (built-in las)", MosaicOptions(engine="las"))):
        t, c = time.perf_counter(), time.process_time()
        lay = compute_layout(x, opts)
        sec, cpu = time.perf_counter() - t, time.process_time() - c
        out[name] = {"seconds": sec, "cpu": cpu, "dpq16": dpq(x, lay.cell_of, lay.cols), "engine": lay.engine}
    t, c = time.perf_counter(), time.process_time()
    pts = embed_2d(x, "umap", 0)
    t_umap = time.perf_counter() - t
    t = time.perf_counter()
    cells = assign_points(pts, rows, cols, exact_limit=n)
    t_lap = time.perf_counter() - t
    out["baseline UMAP + exact LAP"] = {"seconds": t_umap + t_lap, "cpu": time.process_time() - c, "umap_s": t_umap,
                                        "lap_s": t_lap, "dpq16": dpq(x, cells, cols)}
    rng = np.random.default_rng(0)
    out["random layout"] = {"seconds": 0.0, "cpu": 0.0, "dpq16": dpq(x, rng.permutation(n), cols)}
    return out


CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from benchmarks.bench_mosaic import clustered_features
from trailcam_core.mosaic import MosaicOptions, compute_layout, dpq
x = clustered_features(50000)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t, c = time.perf_counter(), time.process_time()
lay = compute_layout(x, MosaicOptions(engine={engine!r}, quality=False))
sec, cpu = time.perf_counter() - t, time.process_time() - c
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
q = dpq(x, lay.cell_of, lay.cols, sample=1000)
tq = time.perf_counter() - t
peak_all = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert sorted(lay.cell_of.tolist()) == list(range(50000))
print(json.dumps({{"seconds": sec, "cpu": cpu, "engine": lay.engine, "peak_rss_mb": peak / 1024,
                  "rss_before_layout_mb": base / 1024, "dpq16_sampled": q, "dpq_seconds": tq,
                  "peak_rss_with_dpq_mb": peak_all / 1024, "grid": [lay.rows, lay.cols]}}))
"""


def bench_50000(engine: str) -> dict:
    code = CHILD.format(root=str(ROOT), engine=engine)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        return {"error": res.stderr[-2000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


SIDE_CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from benchmarks.bench_mosaic import clustered_features
from trailcam_core.mosaic import MosaicOptions, compute_layout, dpq
from trailcam_core.mosaic.layout import grid_shape
n, method = {n}, {method!r}
x = clustered_features(n)
rows, cols = grid_shape(n)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t, c = time.perf_counter(), time.process_time()
if method == "raw vc-flas":
    import vc_flas
    grid = vc_flas.Grid.from_features(x, size=(rows, cols), freeze_holes=True)
    sorting = np.asarray(vc_flas.flas(grid, seed=0).sorting).reshape(-1)
    cell_of = np.empty(n, np.int64); valid = sorting >= 0
    cell_of[sorting[valid]] = np.nonzero(valid)[0]
    engine = "vc-flas 512-d"
elif method == "atlas":
    from trailcam_core.atlas import atlas_layout
    cell_of, engine, _ = atlas_layout(x, rows, cols)
else:
    lay = compute_layout(x, MosaicOptions(engine="las" if method == "built-in" else "auto", quality=False))
    cell_of, engine = lay.cell_of, lay.engine
sec, cpu = time.perf_counter() - t, time.process_time() - c
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert len(set(cell_of.tolist())) == n
t = time.perf_counter()
q = dpq(x, cell_of, cols, sample=None if n <= 6000 else 1000)
print(json.dumps({{"seconds": sec, "cpu": cpu, "engine": engine, "peak_rss_mb": peak / 1024, "features_mb": base / 1024,
                  "dpq16": q, "dpq_seconds": time.perf_counter() - t,
                  "peak_with_dpq_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

SIDE_METHODS = ("raw vc-flas", "default", "built-in", "atlas")


def bench_side_by_side(n: int, method: str) -> dict:
    code = SIDE_CHILD.format(root=str(ROOT), n=n, method=method)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        return {"error": res.stderr[-2000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_throughput(n_images: int = 160, batch: int = 32) -> dict:
    import torch
    from PIL import Image

    from trailcam_core.models.clip import load_clip
    from trailcam_core.embed.features import EmbedOptions, embed_images

    clip = load_clip("ViT-B-32", pretrained=None, device="cpu")
    tmp = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    rng = np.random.default_rng(0)
    for i in range(n_images):   # camera-trap sized JPEGs (1280 x 960), smooth noise so they compress like photos
        small = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
        Image.fromarray(small).resize((1280, 960), Image.BICUBIC).save(tmp / f"img_{i:04d}.jpg", quality=90)
    # the model's own rate on pre-loaded tensors, batches of the same size
    x = torch.randn(batch, 3, clip.image_size, clip.image_size)
    clip.encode_tensors(x)   # warm-up
    opts = EmbedOptions(model="ViT-B-32", pretrained="", batch_size=batch, workers=2, device="cpu")
    reps = max(1, n_images // batch)
    forward_rates, pipeline_rates = [], []
    for _ in range(2):   # alternate the two measurements and keep the best of each: the machine is shared
        t = time.perf_counter()
        for _ in range(reps):
            clip.encode_tensors(x)
        forward_rates.append(reps * batch / (time.perf_counter() - t))
        t = time.perf_counter()
        emb = embed_images(tmp, opts, cache_dir=None)
        pipeline_rates.append(len(emb) / (time.perf_counter() - t))
    forward_rate, pipeline_rate = max(forward_rates), max(pipeline_rates)
    t = time.perf_counter()
    embed_images(tmp, opts, cache_dir=tmp / ".cache")
    first = time.perf_counter() - t
    t = time.perf_counter()
    again = embed_images(tmp, opts, cache_dir=tmp / ".cache")
    cached = time.perf_counter() - t
    return {"images": n_images, "forward_img_per_s": forward_rate, "pipeline_img_per_s": pipeline_rate,
            "forward_runs": forward_rates, "pipeline_runs": pipeline_rates,
            "ratio": pipeline_rate / forward_rate, "cached_rerun_s": cached, "cached_rerun_computed": again.computed,
            "first_run_with_cache_s": first, "torch_threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip the 50,000-image runs")
    ap.add_argument("--sizes", default="", help="only the side-by-side layouts at these N (e.g. 2500,50000,243100)")
    ap.add_argument("--methods", default=",".join(SIDE_METHODS), help="side-by-side methods to run")
    args = ap.parse_args()
    if args.sizes:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (shared; figures are noisy)")
        print("\n== Side by side: layout of N clustered 512-d features (fresh process each) ==")
        for n in [int(v) for v in args.sizes.split(",")]:
            results = {}
            for method in args.methods.split(","):
                v = bench_side_by_side(n, method)
                results[method] = v
                if "error" in v:
                    print(f"  N={n:7d} {method:12s} FAILED\n{v['error']}")
                    continue
                print(f"  N={n:7d} {method:12s} {v['seconds']:7.1f} s wall {v['cpu']:7.1f} s CPU  peak RSS "
                      f"{v['peak_rss_mb']:6.0f} MB (features {v['features_mb']:.0f} MB)  DPQ16 {v['dpq16']:.4f}  "
                      f"[{v['engine']}]  (DPQ {v['dpq_seconds']:.1f} s, peak with it {v['peak_with_dpq_mb']:.0f} MB)",
                      flush=True)
            raw, ours = results.get("raw vc-flas", {}), results.get("atlas", {})
            if "dpq16" in raw and "dpq16" in ours:
                print(f"  -> atlas layout at N={n}: {ours['seconds']:.1f} s wall (target <= 60 s: "
                      f"{'PASS' if ours['seconds'] <= 60 else 'FAIL'}), {raw['cpu'] / max(ours['cpu'], 1e-9):.1f}x less CPU "
                      f"than raw vc-flas, DPQ16 {ours['dpq16']:.4f} vs {raw['dpq16']:.4f} (target >=: "
                      f"{'PASS' if ours['dpq16'] >= raw['dpq16'] else 'FAIL'})", flush=True)
        return
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (shared; figures are noisy)")

    print("\n== N = 2,500 clustered 512-d features: layout after features ==")
    r = bench_2500()
    for name, v in r.items():
        extra = f" (UMAP {v['umap_s']:.2f} s + LAP {v['lap_s']:.2f} s)" if "umap_s" in v else ""
        eng = f" [{v['engine']}]" if "engine" in v else ""
        print(f"  {name:28s} {v['seconds']:7.2f} s wall {v['cpu']:7.2f} s CPU   DPQ16 {v['dpq16']:.4f}{eng}{extra}")
    ours, base = r["ours (flas, default)"], r["baseline UMAP + exact LAP"]
    print(f"  -> ours {ours['seconds']:.2f} s wall (target <= 2 s: {'PASS' if ours['seconds'] <= 2 else 'FAIL'}), "
          f"{ours['cpu']:.2f} s CPU ({'PASS' if ours['cpu'] <= 2 else 'FAIL'} on an idle machine); "
          f"{base['seconds'] / ours['seconds']:.1f}x faster than the baseline; DPQ16 ours/baseline = "
          f"{ours['dpq16'] / base['dpq16']:.3f} (target >= 1: {'PASS' if ours['dpq16'] >= base['dpq16'] else 'FAIL'})")

    if not args.quick:
        print("\n== N = 50,000: layout time and peak memory (fresh subprocess each) ==")
        print("  baseline ImageRearranger: its n x n float64 cost matrix alone is 20 GB -> cannot run")
        for engine in ("auto", "las"):
            v = bench_50000(engine)
            if "error" in v:
                print(f"  engine {engine}: FAILED\n{v['error']}")
                continue
            ok = min(v["seconds"], v["cpu"]) <= 60 and v["peak_rss_mb"] <= 4096   # wall or CPU (busy machine)
            print(f"  {v['engine']:8s} layout {v['seconds']:6.1f} s wall ({v['cpu']:.1f} s CPU), peak RSS {v['peak_rss_mb']:6.0f} MB "
                  f"(features alone {v['rss_before_layout_mb']:.0f} MB), grid {v['grid'][0]} x {v['grid'][1]}, "
                  f"DPQ16 (1,000-row sample) {v['dpq16_sampled']:.4f} in {v['dpq_seconds']:.1f} s, "
                  f"peak with DPQ {v['peak_rss_with_dpq_mb']:.0f} MB -> {'PASS' if ok else 'FAIL'} (<= 60 s, <= 4 GB)")

    print("\n== Embedding throughput on CPU (ViT-B-32, random weights, 1280 x 960 JPEGs) ==")
    v = bench_throughput()
    runs = lambda key: ", ".join(f"{r:.1f}" for r in v[key])  # noqa: E731
    print(f"  model forward on pre-loaded tensors: {v['forward_img_per_s']:.1f} img/s  (baseline; runs {runs('forward_runs')})")
    print(f"  embed_images from JPEG files:        {v['pipeline_img_per_s']:.1f} img/s  (runs {runs('pipeline_runs')})")
    print(f"  -> ratio {v['ratio']:.3f} (target >= 0.9: {'PASS' if v['ratio'] >= 0.9 else 'FAIL'}); "
          f"cached rerun {v['cached_rerun_s']:.2f} s, {v['cached_rerun_computed']} recomputed; "
          f"torch threads {v['torch_threads']}")


if __name__ == "__main__":
    main()
