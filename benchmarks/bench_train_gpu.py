"""SDXL LoRA training speed and memory on a CUDA GPU with a real SDXL base model.

Runs ``train_lora`` at 1024x1024, rank 16, batch 1, gradient checkpointing, cached latents and
text embeddings (text encoders frozen and moved off the GPU), bf16 mixed precision, fp32 VAE,
and prints it/s (median after warm-up) and peak VRAM: for the whole run and for the training
loop alone.  Target: at most 12 GB.  For reference (not measured here): users report about
1.2 s/step for kohya sd-scripts on an RTX 3090 Ti / 4090 at these settings.

    python benchmarks/bench_train_gpu.py /models/sd_xl_base_1.0.safetensors [--steps 40] [--data folder]

Without --data, 8 synthetic 1024x1024 images with captions are generated in a temporary folder.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from trailcam_core.lora.options import TrainOptions
from trailcam_core.lora.train import train_lora

WARMUP = 5


def make_data(folder: Path, n: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1024, 0:1024]
    for i in range(n):
        base = (np.sin(xx / (40 + 9 * i)) + np.cos(yy / (30 + 7 * i))) * 60 + 110
        arr = np.clip(base[..., None] + rng.normal(0, 12, (1024, 1024, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"camera trap photo, night, infrared flash, animal {i}")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", help="SDXL base model: diffusers folder or single-file checkpoint")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--data", default=None, help="captioned image folder (default: synthetic)")
    ap.add_argument("--targets", default="attention", choices=("attention", "transformer", "transformer+conv"))
    ap.add_argument("--optimizer", default="adamw", choices=("adamw", "adamw8bit", "prodigy", "adafactor"))
    ap.add_argument("--precision", default="bf16", choices=("bf16", "fp16"))
    ap.add_argument("--resolution", type=int, default=1024)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_train_gpu: needs a CUDA GPU")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else make_data(Path(tmp) / "data")
        opts = TrainOptions(resolution=args.resolution, rank=16, alpha=16.0, batch_size=1, gradient_checkpointing=True,
                            cache_latents=True, cache_text_embeddings=True, cache_to_disk=False,
                            mixed_precision=args.precision, unet_targets=args.targets, optimizer=args.optimizer,
                            unet_lr=1.0 if args.optimizer == "prodigy" else 1e-4, max_steps=args.steps,
                            allow_upscale=True)
        stamps: list[float] = []
        peaks = {"setup": 0, "loop": 0}

        def cb(done, total, message="", preview=None):
            if "loss" in message:
                torch.cuda.synchronize()
                stamps.append(time.perf_counter())
                if len(stamps) == 1:     # loading, caching and the first step; then the loop alone
                    peaks["setup"] = torch.cuda.max_memory_allocated()
                    torch.cuda.reset_peak_memory_stats()
                else:
                    peaks["loop"] = max(peaks["loop"], torch.cuda.max_memory_allocated())

        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        result = train_lora(data, args.base, Path(tmp) / "out", opts, progress=cb)
        total_s = time.perf_counter() - t0
    steps = np.diff(stamps)[WARMUP:]
    per_step = statistics.median(steps)
    gpu = torch.cuda.get_device_name(0)
    print(f"{gpu}: SDXL LoRA, {args.resolution}x{args.resolution}, rank 16 ({args.targets}), batch 1, {args.precision}, gradient checkpointing, "
          f"cached latents + text embeddings, {args.optimizer}, {args.steps} steps")
    print(f"  {1 / per_step:.2f} it/s  ({per_step:.3f} s/step median after {WARMUP} warm-up steps)")
    print(f"  peak VRAM, training loop: {peaks['loop'] / 2**30:.2f} GiB allocated (target <= 12 GB)")
    print(f"  peak VRAM, loading + caching + first step: {peaks['setup'] / 2**30:.2f} GiB allocated; "
          f"reserved at the end: {torch.cuda.memory_reserved() / 2**30:.2f} GiB")
    print(f"  whole run incl. loading and caching: {total_s:.1f} s; final loss {result.losses[-1]:.4f}")


if __name__ == "__main__":
    main()
