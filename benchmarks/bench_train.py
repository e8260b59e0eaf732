"""Per-step time of the LoRA trainer vs a bare diffusers + peft loop doing the same step (CPU, tiny SDXL).

The baseline is the loop of diffusers' train_text_to_image_lora_sdxl example reduced to its
step: cached latents and text embeddings, noise + timesteps, add_noise, UNet forward, min-SNR
weighted MSE, backward, gradient clipping, AdamW step, LR-scheduler step, zero_grad; peft LoRA on
to_q/to_k/to_v/to_out.0.  Our trainer runs the same configuration through ``train_lora``
(accelerate, batching, augmentation planning, progress message and bookkeeping included).
Steps are interleaved: one bare step runs inside the trainer's progress callback after each
trainer step, so both see the same machine load.  One thread; medians after warm-up.

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

from trailcam_core.lora.options import TrainOptions
from trailcam_core.lora.train import train_lora
from trailcam_core.lora.sampling import encode_prompts  # noqa: E402
from trailcam_core.models.sdxl import load_sdxl  # noqa: E402
from trailcam_core.models.tiny import build_tiny_sdxl  # noqa: E402

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


class BareLoop:
    """diffusers + peft, nothing else: the step of diffusers' train_text_to_image_lora_sdxl example."""

    def __init__(self, base: Path, data: Path, steps: int):
        from diffusers import DDPMScheduler
        from diffusers.optimization import get_scheduler
        from peft import LoraConfig

        pipe = load_sdxl(base)
        self.unet, vae = pipe.unet, pipe.vae
        for m in (self.unet, vae, pipe.text_encoder, pipe.text_encoder_2):
            m.requires_grad_(False)
        torch.manual_seed(0)
        self.unet.add_adapter(LoraConfig(r=8, lora_alpha=8, init_lora_weights="gaussian",
                                         target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
        self.params = [p for p in self.unet.parameters() if p.requires_grad]
        self.sched = DDPMScheduler.from_config(pipe.scheduler.config)
        files = sorted(data.glob("*.png"))
        with torch.no_grad():   # cached latents and text embeddings, as the trainer does
            self.lat = [vae.encode(torch.from_numpy(np.asarray(Image.open(f), np.float32) / 127.5 - 1)
                                   .permute(2, 0, 1)[None]).latent_dist.sample()[0] * vae.config.scaling_factor
                        for f in files]
            caps = [f.with_suffix(".txt").read_text() for f in files]
            self.emb, self.pooled = encode_prompts([pipe.tokenizer, pipe.tokenizer_2],
                                                   [pipe.text_encoder, pipe.text_encoder_2], caps, "cpu")
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-4, weight_decay=1e-2)
        self.lr_scheduler = get_scheduler("constant", self.optimizer, num_training_steps=steps)
        self.time_ids = torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2)
        self.gen = torch.Generator().manual_seed(0)
        self.unet.train()

    def step(self) -> float:
        import torch.nn.functional as F
        from diffusers.training_utils import compute_snr

        idx = torch.randperm(len(self.lat), generator=self.gen)[:2].tolist()
        latents = torch.stack([self.lat[i] for i in idx])
        noise = torch.randn(latents.shape, generator=self.gen)
        t = torch.randint(0, self.sched.config.num_train_timesteps, (2,), generator=self.gen)
        noisy = self.sched.add_noise(latents, noise, t)
        pred = self.unet(noisy, t, encoder_hidden_states=self.emb[idx],
                         added_cond_kwargs={"text_embeds": self.pooled[idx], "time_ids": self.time_ids},
                         return_dict=False)[0]
        loss = F.mse_loss(pred.float(), noise.float(), reduction="none").mean(dim=(1, 2, 3))
        snr = compute_snr(self.sched, t)
        loss = (loss * torch.clamp(snr, max=5.0) / snr).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


def paired_run(base: Path, data: Path, out: Path, steps: int) -> tuple[list[float], list[float]]:
    """Run the trainer; between two of its steps (inside its progress callback) run one bare step.

    Each trainer step is timed from the callback's return to its next call (the whole loop: batch
    assembly, step, bookkeeping); each bare step right after it, so both see the same machine load."""
    bare = BareLoop(base, data, steps)
    ours_t, bare_t = [], []
    state = {"resume": None}

    def cb(done, total, message="", preview=None):
        now = time.perf_counter()
        if "loss" not in message:
            return
        if state["resume"] is not None:
            ours_t.append(now - state["resume"])
        t0 = time.perf_counter()
        bare.step()
        bare_t.append(time.perf_counter() - t0)
        state["resume"] = time.perf_counter()

    train_lora(data, base, out, options(steps), progress=cb)
    return ours_t[WARMUP:], bare_t[WARMUP:]


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
            o_r, b_r = paired_run(base, data, tmp / f"out{r}", args.steps)
            ours_t += o_r
            bare_t += b_r
    o, b = statistics.median(ours_t), statistics.median(bare_t)
    print(f"tiny SDXL, CPU 1 thread, batch 2, 64 px, rank 8, {args.rounds} x {args.steps} steps (first {WARMUP} "
          f"of each run dropped); shared noisy machine")
    print(f"  bare diffusers+peft loop: median {b * 1000:.1f} ms/step  (p25 {np.percentile(bare_t, 25) * 1000:.1f}, "
          f"p75 {np.percentile(bare_t, 75) * 1000:.1f})")
    print(f"  trailcam trainer:         median {o * 1000:.1f} ms/step  (p25 {np.percentile(ours_t, 25) * 1000:.1f}, "
          f"p75 {np.percentile(ours_t, 75) * 1000:.1f})")
    pairs = [x / y for x, y in zip(ours_t, bare_t)]
    print(f"  ratio trainer / bare: {o / b:.3f} (medians); median of paired step ratios {statistics.median(pairs):.3f}"
          "  (target <= 1.10)")


if __name__ == "__main__":
    main()
