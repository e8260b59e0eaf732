"""Per-step time of the LoRA trainer vs a bare diffusers + peft loop doing the same step (CPU, tiny SDXL).

The baseline is the loop of diffusers' train_text_to_image_lora_sdxl example reduced to its step:
cached latents and text embeddings, noise + timesteps, add_noise, UNet forward, min-SNR weighted
MSE, backward, gradient clipping, AdamW step, LR-scheduler step, zero_grad; peft LoRA on
to_q/to_k/to_v/to_out.0.  Our trainer runs the same configuration through ``train_lora`` (progress
callback, accelerate, batching, checkpoint bookkeeping included).  Both run in this process,
interleaved, on one thread; medians of per-step times after warm-up.

    python benchmarks/bench_train.py [--steps 40] [--rounds 2]

The machine is shared and noisy: compare the ratio, not the absolute figures.
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

from trailcam_core.lora import TrainOptions, train_lora  # noqa: E402
from trailcam_core.lora.sampling import encode_prompts  # noqa: E402
from trailcam_core.sdxl import load_sdxl  # noqa: E402
from trailcam_core.tiny import build_tiny_sdxl  # noqa: E402

WARMUP = 5


def make_data(folder: Path, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"night, flash, animal {i}")
    return folder


def options(steps: int) -> TrainOptions:
    return TrainOptions(resolution=64, bucket_step=16, batch_size=2, rank=8, alpha=8.0, unet_targets="attention",
                        unet_lr=1e-4, max_steps=steps, gradient_checkpointing=False, mixed_precision="no",
                        min_snr_gamma=5.0, max_grad_norm=1.0, cache_to_disk=False, save_precision="fp32")


def ours(base: Path, data: Path, out: Path, steps: int) -> list[float]:
    stamps: list[float] = []

    def cb(done, total, message="", preview=None):
        if "loss" in message:
            stamps.append(time.perf_counter())

    train_lora(data, base, out, options(steps), progress=cb)
    return list(np.diff(stamps))[WARMUP:]


def bare(base: Path, data: Path, steps: int) -> list[float]:
    """diffusers + peft, nothing else."""
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import compute_snr
    from peft import LoraConfig

    pipe = load_sdxl(base)
    unet, vae = pipe.unet, pipe.vae
    unet.requires_grad_(False)
    vae.requires_grad_(False)
    pipe.text_encoder.requires_grad_(False)
    pipe.text_encoder_2.requires_grad_(False)
    torch.manual_seed(0)
    unet.add_adapter(LoraConfig(r=8, lora_alpha=8, init_lora_weights="gaussian",
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    params = [p for p in unet.parameters() if p.requires_grad]
    sched = DDPMScheduler.from_config(pipe.scheduler.config)
    files = sorted(data.glob("*.png"))
    with torch.no_grad():   # cached latents and text embeddings, as the trainer does
        lat = [vae.encode(torch.from_numpy(np.asarray(Image.open(f), np.float32) / 127.5 - 1).permute(2, 0, 1)[None])
               .latent_dist.sample()[0] * vae.config.scaling_factor for f in files]
        caps = [f.with_suffix(".txt").read_text() for f in files]
        emb, pooled = encode_prompts([pipe.tokenizer, pipe.tokenizer_2], [pipe.text_encoder, pipe.text_encoder_2],
                                     caps, "cpu")
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-2)
    lr_scheduler = get_scheduler("constant", optimizer, num_training_steps=steps)
    time_ids = torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2)
    gen = torch.Generator().manual_seed(0)
    unet.train()
    stamps = []
    for step in range(steps):
        idx = torch.randperm(len(files), generator=gen)[:2].tolist()
        latents = torch.stack([lat[i] for i in idx])
        noise = torch.randn(latents.shape, generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (2,), generator=gen)
        noisy = sched.add_noise(latents, noise, t)
        pred = unet(noisy, t, encoder_hidden_states=emb[idx],
                    added_cond_kwargs={"text_embeds": pooled[idx], "time_ids": time_ids}, return_dict=False)[0]
        loss = F.mse_loss(pred.float(), noise.float(), reduction="none").mean(dim=(1, 2, 3))
        snr = compute_snr(sched, t)
        loss = (loss * torch.clamp(snr, max=5.0) / snr).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        stamps.append(time.perf_counter())
    return list(np.diff(stamps))[WARMUP:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = build_tiny_sdxl(tmp / "tiny")
        data = make_data(tmp / "data")
        ours_t, bare_t = [], []
        for r in range(args.rounds):
            ours_t += ours(base, data, tmp / f"out{r}", args.steps)
            bare_t += bare(base, data, args.steps)
    o, b = statistics.median(ours_t), statistics.median(bare_t)
    print(f"tiny SDXL, CPU 1 thread, batch 2, 64 px, rank 8, {args.rounds} x {args.steps} steps (first {WARMUP} "
          f"of each run dropped); shared noisy machine")
    print(f"  bare diffusers+peft loop: median {b * 1000:.1f} ms/step  (p25 {np.percentile(bare_t, 25) * 1000:.1f}, "
          f"p75 {np.percentile(bare_t, 75) * 1000:.1f})")
    print(f"  trailcam trainer:         median {o * 1000:.1f} ms/step  (p25 {np.percentile(ours_t, 25) * 1000:.1f}, "
          f"p75 {np.percentile(ours_t, 75) * 1000:.1f})")
    print(f"  ratio trainer / bare: {o / b:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
