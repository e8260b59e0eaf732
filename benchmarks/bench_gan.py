"""GAN benchmark: quality in a fixed CPU budget, trainer overhead, and (when a GPU is lent) 256 px.

1. quality (CPU): 64 px on the 44 real photos of ../shared/cct-sample, a fixed wall-clock budget
   (--minutes, 15 by default): KID of the EMA generator against the floor (the real photos split in
   two halves) and the ceiling (the untrained generator), measured in the same run on pyramid
   features (and open_clip features when --clip-weights names real weights); target: at least 50%
   of the gap closed.  Prints the KID curve over checkpoints; saves the sample grid and the
   nearest-real pairs under docs/gan/.
2. overhead: the trainer's step (accelerate, batch sampling, EMA, progress) against a bare PyTorch
   loop doing the same maths on the same networks, interleaved step by step (target <= 1.1x).
3. GPU (only when CUDA is available, else "no GPU"): 256 px on the real photos for --gpu-minutes
   (at most 120): it/s, peak memory, KID gap (target >= 70%).

    python benchmarks/bench_gan.py [--minutes 15] [--overhead-steps 30] [--skip-quality] [--gpu-minutes 120]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from trailcam_core.gan.config import GanEvalOptions, GanTrainOptions
from trailcam_core.gan.evaluate import evaluate_generator
from trailcam_core.gan.data import load_images
from trailcam_core.gan.train import train_gan
from trailcam_core.gan.metrics import PyramidFeatures, make_extractor  # noqa: E402

SAMPLE = REPO.parent / "shared" / "cct-sample"
DOCS = REPO / "docs" / "gan"
CPU_NET = dict(size=64, z_dim=64, ngf=16, ndf=16, batch_size=8, lr=2e-4, ema_beta=0.99, ema_start=50)


def quality(minutes: float, work: Path, clip_weights: str, label: str, net: dict, pictures: str) -> dict:
    imgs = load_images(SAMPLE, net["size"])
    every = 100 if net["size"] <= 64 else 500
    opts = GanTrainOptions(**net, steps=10_000_000, time_limit_minutes=minutes, checkpoint_every=every,
                           keep_checkpoints=0, preview_every=0, output_name="bench_gan")
    t0 = time.perf_counter()
    last = [0.0]

    def progress(done, total, message="", preview=None):
        if time.perf_counter() - last[0] > 60:
            last[0] = time.perf_counter()
            print(f"  [{(time.perf_counter() - t0) / 60:5.1f} min] step {done} {message}", flush=True)

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = train_gan(imgs, work, opts, progress=progress)
    seconds = time.perf_counter() - t0
    out = {"label": label, "steps": result.steps, "minutes": round(seconds / 60, 2),
           "it_per_s": round(result.steps / seconds, 3), "images": len(imgs)}
    if torch.cuda.is_available():
        out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    extractors = [("pyramid", PyramidFeatures())]
    if clip_weights:
        extractors.append(("open_clip", make_extractor("clip", clip_weights=clip_weights)))
    else:
        print("  open_clip: no real weights here (--clip-weights); pyramid features only")
    for name, ex in extractors:
        rep = evaluate_generator(result.generator_path, SAMPLE, work / f"eval-{name}",
                                 GanEvalOptions(samples=200, kid_subsets=100), extractor=ex)
        out[name] = {"extractor": rep.extractor, "kid": rep.kid, "floor": rep.kid_floor, "ceiling": rep.kid_ceiling,
                     "gap_closed": rep.gap_closed, "fid": rep.fid, "fid_floor": rep.fid_floor,
                     "fid_ceiling": rep.fid_ceiling, "prdc": rep.prdc, "memorisation": rep.memorisation,
                     "curve": rep.curve}
        if name == "pyramid":
            DOCS.mkdir(parents=True, exist_ok=True)
            for key, dest in (("samples", f"{pictures}_samples.png"), ("nearest", f"{pictures}_nearest_real.png"),
                              ("curve", f"{pictures}_kid_curve.png"), ("real", f"{pictures}_real.png")):
                if key in rep.pictures:
                    shutil.copyfile(rep.pictures[key], DOCS / dest)
            shutil.copyfile(result.loss_curve, DOCS / f"{pictures}_loss.png")
    return out


def overhead(steps: int, work: Path) -> dict:
    """Trainer step vs a bare loop over the same networks and batch, interleaved (one bare step per trainer step)."""
    import torch.nn.functional as F

    from trailcam_core.gan.augment import diff_augment
    from trailcam_core.gan.data import to_unit
    from trailcam_core.gan.model import build_models, recon_targets
    from trailcam_core.gan.train import hinge_d, hinge_g

    torch.set_num_threads(1)
    imgs = load_images(SAMPLE, 64)
    opts = GanTrainOptions(**CPU_NET, steps=steps, checkpoint_every=0, preview_every=0, output_name="overhead")
    cfg = opts.config()
    g, d = build_models(cfg, 0)
    opt_g = torch.optim.Adam(g.parameters(), lr=opts.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=opts.lr, betas=(0.5, 0.999))
    ema = [p.detach().clone() for p in g.parameters()]
    gen = torch.Generator().manual_seed(0)
    real = to_unit(imgs.tensor[:opts.batch_size])

    def bare_step():
        z = torch.randn(opts.batch_size, cfg.z_dim, generator=gen)
        q = torch.randint(4, (opts.batch_size,), generator=gen)
        fake = g(z)
        ra = diff_augment(real, opts.augment, gen)
        lr_, rb, rp = d(ra, q)
        tb, tp = recon_targets(ra, q)
        loss_d = hinge_d(lr_, d(diff_augment(fake.detach(), opts.augment, gen))) + \
            F.l1_loss(rb, tb) + F.l1_loss(rp, tp)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = hinge_g(d(diff_augment(fake, opts.augment, gen)))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in g.parameters()], 1 - opts.ema_beta)
        return float(loss_d.detach()), float(loss_g.detach())

    trainer_t, bare_t = [], []
    mark = [None]

    def on_step(step, dl, gl):
        now = time.perf_counter()
        if mark[0] is not None:
            trainer_t.append(now - mark[0])
        t = time.perf_counter()
        bare_step()
        bare_t.append(time.perf_counter() - t)
        mark[0] = time.perf_counter()

    train_gan(imgs, work, opts, on_step=on_step)
    warm = 5
    tm, bm = statistics.median(trainer_t[warm:]), statistics.median(bare_t[warm:])
    return {"steps": steps, "trainer_s": round(tm, 4), "bare_s": round(bm, 4), "ratio": round(tm / bm, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=15.0, help="CPU training budget (wall clock)")
    ap.add_argument("--overhead-steps", type=int, default=30)
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--clip-weights", default="", help="real open_clip ViT-B-32 weights file, when present")
    ap.add_argument("--gpu-minutes", type=float, default=120.0)
    ap.add_argument("--json", default="", help="also write the figures here")
    args = ap.parse_args()
    # One thread: on this shared 2-core machine two threads fight the other jobs and run 5x slower.
    torch.set_num_threads(1)
    figures: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"== trainer overhead ({args.overhead_steps} interleaved steps, 1 thread, 64 px, batch "
              f"{CPU_NET['batch_size']})")
        figures["overhead"] = ov = overhead(args.overhead_steps, Path(tmp) / "overhead")
        print(f"  trainer {ov['trainer_s'] * 1000:.1f} ms/step, bare PyTorch loop {ov['bare_s'] * 1000:.1f} ms/step: "
              f"{ov['ratio']:.3f}x (target <= 1.1x)")
        if not args.skip_quality:
            print(f"== quality, CPU, {args.minutes:g} min, 64 px, {len(list(SAMPLE.glob('*.jpg')))} real photos")
            figures["cpu"] = q = quality(args.minutes, Path(tmp) / "cpu", args.clip_weights, "cpu 64 px", CPU_NET,
                                         "cpu64")
            report(q, 0.5)
        if torch.cuda.is_available():
            net = dict(size=256, z_dim=256, ngf=64, ndf=64, batch_size=16, lr=2e-4, ema_beta=0.999, ema_start=500)
            print(f"== quality, GPU ({torch.cuda.get_device_name(0)}), {args.gpu_minutes:g} min, 256 px")
            figures["gpu"] = q = quality(min(120.0, args.gpu_minutes), Path(tmp) / "gpu", args.clip_weights,
                                         "gpu 256 px", net, "gpu256")
            report(q, 0.7)
        else:
            print("== GPU: no GPU (the 256 px run needs CUDA; run this script on a machine with one)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=float))
    return 0


def report(q: dict, target: float) -> None:
    print(f"  {q['steps']} steps in {q['minutes']} min ({q['it_per_s']} it/s)"
          + (f", peak GPU memory {q['peak_gpu_memory_gib']} GiB" if "peak_gpu_memory_gib" in q else ""))
    for name in ("pyramid", "open_clip"):
        if name not in q:
            continue
        r = q[name]
        ok = "PASS" if r["gap_closed"] >= target else "FAIL"
        print(f"  {r['extractor']}: KID {r['kid'][0]:.5f} ± {r['kid'][1]:.5f}; floor (real half vs half) "
              f"{r['floor'][0]:.5f}; ceiling (untrained G) {r['ceiling'][0]:.5f} -> gap closed "
              f"{r['gap_closed']:.1%} ({ok}, target {target:.0%})")
        print(f"    FID {r['fid']:.3f} (floor {r['fid_floor']:.3f}, ceiling {r['fid_ceiling']:.3f}); "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["prdc"].items()))
        print(f"    memorisation: {r['memorisation']['flagged']} of {r['memorisation']['samples']} samples flagged")
        print("    KID curve: " + ", ".join(f"{s}: {v:.5f}" for s, v in r["curve"]))


if __name__ == "__main__":
    raise SystemExit(main())
