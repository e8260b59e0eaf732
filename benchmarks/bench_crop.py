"""Benchmark the crop stage against the seed's ffmpeg loop and the Pillow decode-only bound.

Generates N (default 500) JPEGs of 2048x1494, the Caltech frame size, into a temp folder (built
from the real photos of ../shared/cct-sample when present: flipped, shifted and re-toned copies
re-encoded at quality 75 like the originals, so decode cost and entropy are realistic; synthetic
frames otherwise; nothing is written into the repository), then times 512x512 centre crops
with the info strip removed, all in this one run:

  (a) ffmpeg, one subprocess per file (the seed's approach), same crop box and size;
  (b) the decode-only bound: Pillow open + draft (the same DCT scale ours picks) + load;
  (c) ours, ``crop_batch`` end to end (manifest, atomic writes), one worker and W threads.
      JPEGs take the fast path: libjpeg-turbo through simplejpeg, decoded at the same DCT scale
      straight into numpy (about 10 % faster than Pillow's decode of the same file, printed in
      the per-stage line), OpenCV shrink, simplejpeg encode.

Ratios compare like with like: one process with one process, and the pool of W workers with a
pool of W workers decoding the same files (both timed including pool start-up).  Each timing is
repeated and the best run is reported (the machine is shared; medians are printed too), with
the CPU time of every process involved.  The bound's pool workers import only Pillow.  A quality
check prints the PSNR of our crops against Lanczos from the same reduced decode and region.

Run as root so ffmpeg can be apt-get installed when missing::

    python benchmarks/bench_crop.py [--n 500] [--size 512] [--workers 0] [--repeat 5]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The bound's pool workers re-import this file (spawn): only the stdlib and Pillow are imported
# at the top, so they pay no start-up for numpy or our package, which the bound does not need.
if __name__ == "__main__":
    import numpy as np
    from trailcam_core.crop.geometry import CropOptions, fast_modules, cut, detect_info_bar
    from trailcam_core.crop.geometry import cut_pixels
    from trailcam_core.crop.batch import crop_batch, read_manifest
    from trailcam_core.crop.single import _draft_scale, _simplejpeg, encode, jpeg_orientation, load_upright, write_atomic

SAMPLE = REPO.parent / "shared" / "cct-sample"
W, H = 2048, 1494


def ensure_ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    if os.geteuid() != 0:
        sys.exit("ffmpeg is missing; run this benchmark as root (it apt-get installs ffmpeg) or install it")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "ffmpeg"], check=True)
    return shutil.which("ffmpeg") or sys.exit("ffmpeg could not be installed")


def _synthetic(i: int) -> Image.Image:
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = 100 + 60 * np.sin(xx / (20 + i % 30)) * np.cos(yy / (15 + i % 20))
    arr = np.clip(base[..., None] + rng.normal(0, 25, (H, W, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    img.paste((0, 0, 0), (0, 0, W, 32))
    return img


def make_images(folder: Path, n: int) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    bases = []
    if SAMPLE.is_dir():
        for p in sorted(SAMPLE.glob("*.jpg")):
            img = Image.open(p).convert("RGB")
            if img.size != (W, H):          # Cuddeback 2048x1536: keep the bottom strip, trim the top
                img = img.crop((0, img.height - H, W, img.height))
            bases.append(img)
    source = f"{len(bases)} real cct-sample photos, varied" if bases else "synthetic textures"
    for i in range(n):
        if bases:
            img = bases[i % len(bases)]
            v = i // len(bases)
            if v % 2:
                img = ImageOps.mirror(img)
            if v:
                body = img.crop((0, 40, W, H - 60))                # shift the scene, keep the strips
                img = img.copy()
                img.paste(body.transform(body.size, Image.AFFINE, (1, 0, (v * 37) % 200, 0, 1, 0)), (0, 40))
                img = ImageEnhance.Brightness(img).enhance(0.9 + 0.04 * (v % 6))
        else:
            img = _synthetic(i)
        img.save(folder / f"img{i:05d}.jpg", "JPEG", quality=75)
    return source


def _bound_one(args) -> int:
    path, scale = args
    with Image.open(path) as img:
        if scale > 1:
            img.draft(img.mode, (img.width // scale, img.height // scale))
        img.load()
        return img.width


def _bound_chunk(chunk) -> int:
    return sum(_bound_one(a) for a in chunk)


def bound_single(jobs) -> None:
    for job in jobs:
        _bound_one(job)


def bound_pool(jobs, workers: int) -> None:
    chunk = max(1, min(8, len(jobs) // (workers * 8)))      # the same chunking crop_batch uses
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_bound_chunk, [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]))


def ffmpeg_cmd(exe: str, src: Path, dst: Path, row: dict, size: int) -> list[str]:
    x, y, w, h = (int(row[k]) for k in ("crop_x", "crop_y", "crop_w", "crop_h"))
    return [exe, "-v", "error", "-y", "-i", str(src), "-vf", f"crop={w}:{h}:{x}:{y},scale={size}:{size}:flags=area",
            "-q:v", "2", str(dst)]


def breakdown(files, options: "CropOptions", out: Path, rounds: int = 5) -> dict:
    """Per-stage cost of ours, one process: the JPEG fast path's stages (read, header + EXIF
    orientation, DCT-scaled decode, strip detection, crop+scale, encode, atomic write), or the
    Pillow path's when simplejpeg is missing."""
    best: dict[str, list[float]] = {}
    out.mkdir(parents=True, exist_ok=True)
    sj = _simplejpeg()
    for _ in range(rounds):
        for i, f in enumerate(files):
            marks = [("", time.perf_counter())]
            if sj is not None:
                data = f.read_bytes()
                marks.append(("read", time.perf_counter()))
                h, w, _, _ = sj.decode_jpeg_header(data)
                jpeg_orientation(data)
                marks.append(("header", time.perf_counter()))
                s = _draft_scale(w, h, [], options)
                arr = sj.decode_jpeg(data, "RGB", min_height=-(-h // s), min_width=-(-w // s))
                marks.append(("decode", time.perf_counter()))
                detect_info_bar(arr)
                marks.append(("strip", time.perf_counter()))
                crop, _, _ = cut_pixels(arr, [], options, full_size=(w, h))
                marks.append(("strip+crop+scale", time.perf_counter()))
                data = sj.encode_jpeg(crop, options.quality, "RGB", "420")
            else:
                img, full = load_upright(f, [], options)
                marks.append(("read+decode", time.perf_counter()))
                detect_info_bar(img)
                marks.append(("strip", time.perf_counter()))
                crop, _, _ = cut(img, [], options, scale=full[0] / img.width, full_size=full)
                marks.append(("strip+crop+scale", time.perf_counter()))
                data = encode(crop, options)
            marks.append(("encode", time.perf_counter()))
            write_atomic(out / f.name, data)
            marks.append(("write", time.perf_counter()))
            for (_, t0), (k, t1) in zip(marks, marks[1:]):
                row = best.setdefault(k, [1e9] * len(files))
                row[i] = min(row[i], t1 - t0)
    return {k: sum(v) / len(v) for k, v in best.items()}


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the pool's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed_rounds(fns, repeat: int) -> list[tuple[float, float, float]]:
    """Run every fn once per round, interleaved (fresh output folder per round: a first run, not
    a rerun); return (best wall, median wall, best CPU) seconds per fn."""
    times = [[] for _ in fns]
    cpus = [[] for _ in fns]
    for r in range(repeat):
        for k, fn in enumerate(fns):
            c, t = _cpu(), time.perf_counter()
            fn(r)
            times[k].append(time.perf_counter() - t)
            cpus[k].append(_cpu() - c)
    return [(min(ts), statistics.median(ts), min(cs)) for ts, cs in zip(times, cpus)]


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def quality(files, options: "CropOptions") -> dict:
    """PSNR (dB) of 512x512 crops against Lanczos from the same reduced decode and region:
    ours (the scaler crop_batch uses), Pillow's area average (BOX) and Pillow's bilinear."""
    out: dict[str, list[float]] = {"ours": [], "Pillow BOX": [], "Pillow BILINEAR": []}
    for f in files:
        img, full = load_upright(f, [], options)
        if _simplejpeg() is not None:           # the pixels ours decodes (libjpeg-turbo, same DCT scale)
            h, w = full[1], full[0]
            s = _draft_scale(w, h, [], options)
            img = Image.fromarray(_simplejpeg().decode_jpeg(f.read_bytes(), "RGB", min_height=-(-h // s),
                                                            min_width=-(-w // s)))
        crop, box, _ = cut(img, [], options, scale=full[0] / img.width, full_size=full)
        k = img.width / full[0]
        src = tuple(v * k for v in box)
        size = crop.size
        ref = np.asarray(img.resize(size, Image.LANCZOS, box=src))
        out["ours"].append(psnr(np.asarray(crop), ref))
        out["Pillow BOX"].append(psnr(np.asarray(img.resize(size, Image.BOX, box=src)), ref))
        out["Pillow BILINEAR"].append(psnr(np.asarray(img.resize(size, Image.BILINEAR, box=src)), ref))
    return {k: (float(np.mean(v)), float(np.min(v))) for k, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="number of 2048x1494 JPEGs (default 500)")
    ap.add_argument("--size", type=int, default=512, help="output side (default 512)")
    ap.add_argument("--workers", type=int, default=0, help="pool workers (0 = all cores)")
    ap.add_argument("--repeat", type=int, default=5, help="timed repeats per method; best is reported")
    ap.add_argument("--ffmpeg-n", type=int, default=0, help="time ffmpeg on the first N files only (0 = all)")
    args = ap.parse_args()
    exe = ensure_ffmpeg()
    workers = args.workers or len(os.sched_getaffinity(0))
    tmp = Path(tempfile.mkdtemp(prefix="bench_crop_"))
    try:
        src = tmp / "frames"
        t = time.perf_counter()
        origin = make_images(src, args.n)
        files = sorted(src.glob("*.jpg"))
        print(f"{len(files)} JPEGs {W}x{H} from {origin} ({time.perf_counter() - t:.0f} s to make), "
              f"output {args.size}x{args.size}, {workers} workers on {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f} (shared machine: expect noise)", flush=True)
        for f in files:                                             # warm the page cache for everyone
            f.read_bytes()
        single = CropOptions(size=args.size, workers=1)
        pooled = CropOptions(size=args.size, workers=workers)
        scale = _draft_scale(W, H, [], single)
        jobs = [(str(f), scale) for f in files]
        n = len(files)

        # interleaved repeats: each round times all four, so a change in the machine's load hits all
        ours1, bound1, oursp, boundp = timed_rounds([
            lambda r: crop_batch(src, tmp / f"ours1_{r}", single),
            lambda r: bound_single(jobs),
            lambda r: crop_batch(src, tmp / f"oursp_{r}", pooled),
            lambda r: bound_pool(jobs, workers)], args.repeat)
        print(f"timed ours and the bound ({args.repeat} interleaved rounds); now ffmpeg", flush=True)
        parts = breakdown(files[:40], single, tmp / "parts")
        shutil.copytree(tmp / "ours1_0", tmp / "ours")

        rows = {r["image_id"]: r for r in read_manifest(tmp / "ours" / "crops_manifest.csv")}
        assert len(rows) == n, f"ours made {len(rows)} crops of {n}"
        fn = files[: args.ffmpeg_n] if args.ffmpeg_n else files
        (tmp / "ff").mkdir()
        cmds = [ffmpeg_cmd(exe, f, tmp / "ff" / f.name, rows[f.name], args.size) for f in fn]
        c, t = _cpu(), time.perf_counter()
        for cmd in cmds:
            subprocess.run(cmd, check=True)
        ff1, ff1_cpu = (time.perf_counter() - t) / len(cmds), (_cpu() - c) / len(cmds)
        t = time.perf_counter()
        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(lambda cmd: subprocess.run(cmd, check=True), cmds))
        ffp = (time.perf_counter() - t) / len(cmds)
        q = quality(files[:40], single)
        ffq = [psnr(np.asarray(Image.open(tmp / "ff" / f.name).convert("RGB")),
                    np.asarray(Image.open(tmp / "ours" / f.name).convert("RGB"))) for f in fn[:40]]

        ms = lambda v: f"{v * 1000:7.2f} ms"  # noqa: E731
        path = ("JPEGs: simplejpeg (libjpeg-turbo) DCT-scaled decode into numpy, OpenCV bilinear shrink, "
                "simplejpeg encode" if _simplejpeg() else
                "Pillow decode, " + ("OpenCV bilinear on an in-place Arrow view" if fast_modules() else "Pillow only"))
        print(f"\npath: {path}; "
              f"load average now {os.getloadavg()[0]:.1f}")
        print("where ours spends its time, one process (best of 5 per file, first 40 files):")
        print("  " + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in parts.items()))
        print("quality, 512x512 vs Lanczos from the same reduced decode and region (mean / worst of 40):")
        print("  " + ", ".join(f"{k} {m:.1f} / {w:.1f} dB" for k, (m, w) in q.items()))
        print(f"  (ffmpeg's crops vs ours, both saved as JPEG: {np.mean(ffq):.1f} dB)")
        print(f"\nper image: wall best of {args.repeat} [median], CPU best of {args.repeat} (all processes)")
        print(f"  (a) ffmpeg per-file loop, 1 at a time       {ms(ff1)}              cpu {ms(ff1_cpu)}"
              f"   ({len(cmds)} files, 1 run)")
        print(f"  (a) ffmpeg per-file loop, {workers} at a time       {ms(ffp)}")
        print(f"  (b) decode-only bound, 1 process            {ms(bound1[0] / n)}  [{ms(bound1[1] / n)}]  "
              f"cpu {ms(bound1[2] / n)}   (draft 1/{scale})")
        print(f"  (b) decode-only bound, pool of {workers}            {ms(boundp[0] / n)}  [{ms(boundp[1] / n)}]  "
              f"cpu {ms(boundp[2] / n)}")
        print(f"  (c) ours crop_batch, 1 process              {ms(ours1[0] / n)}  [{ms(ours1[1] / n)}]  "
              f"cpu {ms(ours1[2] / n)}")
        print(f"  (c) ours crop_batch, pool of {workers}              {ms(oursp[0] / n)}  [{ms(oursp[1] / n)}]  "
              f"cpu {ms(oursp[2] / n)}")
        r_ff1 = ff1 / (ours1[0] / n)
        r_ffp = ffp / (oursp[0] / n)
        r_b1 = bound1[0] / ours1[0]
        r_bp = boundp[0] / oursp[0]
        print("\nratios (like with like; wall time, CPU time in brackets)")
        print(f"  ffmpeg loop / ours, 1 process:       {r_ff1:5.1f}x faster   [{ff1_cpu / (ours1[2] / n):5.1f}x]"
              f"   (target >= 10x) {'PASS' if r_ff1 >= 10 else 'FAIL'}")
        print(f"  ffmpeg loop / ours, {workers} workers:       {r_ffp:5.1f}x faster")
        print(f"  ffmpeg serial loop / ours pool:      {ff1 / (oursp[0] / n):5.1f}x faster (the seed ran one loop)")
        print(f"  bound / ours, 1 process:             {r_b1:5.2f} of the bound [{bound1[2] / ours1[2]:4.2f}]"
              f"   (target >= 0.7) {'PASS' if r_b1 >= 0.7 else 'FAIL'}")
        print(f"  bound / ours, pool of {workers}:             {r_bp:5.2f} of the bound [{boundp[2] / oursp[2]:4.2f}]"
              f"   (target >= 0.7) {'PASS' if r_bp >= 0.7 else 'FAIL'}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
