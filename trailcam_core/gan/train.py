"""GAN training on one image folder: FastGAN networks, DiffAugment, hinge loss, EMA generator, accelerate.

    result = train_gan("Favorites/", "runs/night", GanTrainOptions(size=256, steps=20000), progress=cb)
    result.generator_path     # runs/night/trailcam_gan.safetensors (EMA weights + config + metadata)

Each step: one discriminator update (hinge loss on augmented real and generated images, plus the
self-supervised reconstruction of the real ones) and one generator update; the EMA of G follows.
Every random draw (batches, flips, latents, augmentations) comes from generators that the
checkpoint stores, so a resumed run continues the very same loss curve.  Cancel (the progress
callback raising ``Cancelled``) and Ctrl-C save a checkpoint first; a non-finite loss stops the
run before it touches the weights and names the last good checkpoint.  Runs under ``accelerate
launch`` on several GPUs (each process draws its own batches; only the main one writes).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from trailcam_core.base import atomic
from trailcam_core.base import BatchReport, Cancelled, ensure, ProgressCallback, TrailcamError
from trailcam_core.gan import checkpoint as ckpt
from trailcam_core.gan.config import GanTrainOptions, as_dict, resume_settings
from trailcam_core.gan.data import TrainingImages, load_images, to_pil, to_unit
from trailcam_core.gan.export import load_matching, save_generator
from trailcam_core.gan.pictures import curve, grid, save_png
from trailcam_core.base import checkpoints

PREVIEW_SEED = 1234          # the fixed latents of the preview grid


class NonFiniteLoss(TrailcamError):
    """A loss became NaN or infinite; training stopped before the weights were changed."""


@dataclass
class GanTrainResult:
    generator_path: Path
    steps: int
    d_losses: list[float] = field(default_factory=list)
    g_losses: list[float] = field(default_factory=list)
    checkpoint: Optional[Path] = None
    previews: list[Path] = field(default_factory=list)
    loss_curve: Optional[Path] = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_report(self) -> BatchReport:
        rep = BatchReport(stage="gan train", processed=self.steps,
                          outputs={"generator": self.generator_path, "loss_curve": self.loss_curve})
        if self.d_losses:
            rep.outputs["final_d_loss"] = f"{self.d_losses[-1]:.4f}"
            rep.outputs["final_g_loss"] = f"{self.g_losses[-1]:.4f}"
        for item, why in self.skipped:
            rep.skip(item, why)
        return rep


def resolve_precision(requested: str) -> str:
    import torch

    if requested == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if requested in ("fp16", "bf16") and not torch.cuda.is_available():
        if requested == "fp16":
            raise TrailcamError("mixed_precision fp16 needs a CUDA GPU; use bf16 or no on this machine")
    return requested


def hinge_d(real_logits, fake_logits):
    import torch.nn.functional as F

    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g(fake_logits):
    return -fake_logits.mean()


def train_gan(data, output_dir, options: Optional[GanTrainOptions] = None,
              progress: Optional[ProgressCallback] = None,
              on_step: Optional[Callable[[int, float, float], None]] = None) -> GanTrainResult:
    """Train on ``data`` (an image folder or TrainingImages); see the module docstring."""
    return GanTrainer(data, output_dir, options).run(progress, on_step)


class GanTrainer:
    """One run. ``__init__`` checks the input (images, sizes, a resume checkpoint); ``run`` trains."""

    def __init__(self, data, output_dir, options: Optional[GanTrainOptions] = None, progress=None):
        self.options = o = (options or GanTrainOptions()).validate()
        self.config = o.config()
        self.output_dir = Path(output_dir)
        if isinstance(data, TrainingImages):
            self.images = data
        else:
            self.images = load_images(data, o.size, exclude=self.output_dir, progress=progress)
        if self.images.tensor.shape[-1] != o.size:
            raise TrailcamError(f"images are {self.images.tensor.shape[-1]} px but size is {o.size}")
        self.precision = resolve_precision(o.mixed_precision)
        self.settings = resume_settings(o, self.precision)
        self.resume_dir = checkpoints.resolve_resume(o.resume, self.output_dir)
        if self.resume_dir is not None:
            state = ckpt.read_state(self.resume_dir)
            checkpoints.check_compatible(state, self.settings, self.images.fingerprint, self.resume_dir)
        self.generator_path = self.output_dir / f"{o.output_name}.safetensors"

    def training_key(self) -> str:
        """Changes when the images or anything that shapes the generator changes (for reuse)."""
        import hashlib
        import json

        opts = {k: v for k, v in as_dict(self.options).items() if k != "resume"}
        text = json.dumps({"data": self.images.fingerprint, "options": opts}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        import torch
        from accelerate import Accelerator, DistributedDataParallelKwargs
        from accelerate.state import AcceleratorState
        from ema_pytorch import EMA

        from trailcam_core.gan.model import build_models

        o = self.options
        AcceleratorState._reset_state(reset_partial_state=False)
        # D's decoders take no part in the generator's update: DDP must allow unused parameters
        self.accelerator = acc = Accelerator(mixed_precision=self.precision, kwargs_handlers=[
            DistributedDataParallelKwargs(find_unused_parameters=True)])
        self.device = acc.device
        g, d = build_models(self.config, o.seed)
        g, d = g.to(self.device), d.to(self.device)
        self.ema = EMA(g, beta=o.ema_beta, update_after_step=o.ema_start, update_every=1,
                       include_online_model=False, allow_different_devices=True)
        opt_g = torch.optim.Adam(g.parameters(), lr=o.lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), lr=o.lr, betas=(0.5, 0.999))
        self.G, self.D, self.opt_g, self.opt_d = acc.prepare(g, d, opt_g, opt_d)
        rank = acc.process_index
        self.gens = {name: torch.Generator("cpu").manual_seed(o.seed * 7919 + 1000 * rank + k)
                     for k, name in enumerate(("data", "noise", "augment"))}
        self.preview_z = torch.randn(o.preview_count, self.config.z_dim,
                                     generator=torch.Generator("cpu").manual_seed(PREVIEW_SEED))

    def _state_tensors(self) -> dict:
        acc = self.accelerator
        out = {f"G.{k}": v for k, v in acc.unwrap_model(self.G).state_dict().items()}
        out.update({f"D.{k}": v for k, v in acc.unwrap_model(self.D).state_dict().items()})
        out.update({f"EMA.{k}": v for k, v in self.ema.state_dict().items()})
        return out

    def save_checkpoint(self, step: int, d_losses: list, g_losses: list) -> Optional[Path]:
        acc = self.accelerator
        folder = None
        if acc.is_main_process:
            state = {"step": step, "d_losses": d_losses, "g_losses": g_losses, "settings": self.settings,
                     "dataset": self.images.fingerprint, "config": self.config.to_dict(),
                     "images": len(self.images)}
            training = {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                        "generators": {k: g.get_state() for k, g in self.gens.items()}}
            folder = ckpt.save_checkpoint(checkpoints.checkpoint_root(self.output_dir) / f"step-{step:08d}", state,
                                          self._state_tensors(), training)
            checkpoints.prune(self.output_dir, self.options.keep_checkpoints)
            self.last_checkpoint = folder
        acc.wait_for_everyone()
        return folder

    def restore(self, folder: Path) -> tuple[int, list, list]:
        state, tensors, training = ckpt.load_checkpoint(folder)
        acc = self.accelerator
        for prefix, module in (("G.", acc.unwrap_model(self.G)), ("D.", acc.unwrap_model(self.D)), ("EMA.", self.ema)):
            load_matching(module, {k[len(prefix):]: v.to(self.device) for k, v in tensors.items()
                                   if k.startswith(prefix)}, f"checkpoint {folder}")
        self.opt_g.load_state_dict(training["opt_g"])
        self.opt_d.load_state_dict(training["opt_d"])
        for k, s in training["generators"].items():
            self.gens[k].set_state(s)
        self.last_checkpoint = folder
        return int(state["step"]), list(state["d_losses"]), list(state["g_losses"])

    # ------------------------------------------------------------------ one step
    def batch(self):
        import torch

        o, g = self.options, self.gens["data"]
        idx = torch.randint(len(self.images), (o.batch_size,), generator=g)
        x = to_unit(self.images.tensor[idx])
        if o.flip:
            flip = torch.rand(o.batch_size, generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x.to(self.device)

    def augment(self, x):
        from trailcam_core.gan.augment import diff_augment

        return diff_augment(x, self.options.augment, self.gens["augment"])

    def d_loss(self, real, fake, quarter):
        import torch.nn.functional as F

        from trailcam_core.gan.model import recon_targets

        real_aug = self.augment(real)
        logits_r, rec_big, rec_part = self.D(real_aug, quarter)
        logits_f = self.D(self.augment(fake.detach()))
        loss = hinge_d(logits_r, logits_f)
        if self.options.recon_weight:
            t_big, t_part = recon_targets(real_aug, quarter)
            loss = loss + self.options.recon_weight * (F.l1_loss(rec_big.float(), t_big.float()) +
                                                       F.l1_loss(rec_part.float(), t_part.float()))
        return loss

    def g_loss(self, fake):
        return hinge_g(self.D(self.augment(fake)))

    def step(self):
        """One D and one G update -> (d_loss, g_loss) as floats; raises NonFiniteLoss before a bad update."""
        import torch

        acc, o = self.accelerator, self.options
        real = self.batch()
        z = torch.randn(o.batch_size, self.config.z_dim, generator=self.gens["noise"]).to(self.device)
        quarter = torch.randint(4, (o.batch_size,), generator=self.gens["noise"])
        with acc.autocast():
            fake = self.G(z)
            d_loss = self.d_loss(real, fake, quarter)
        self._check("discriminator", d_loss)
        self.opt_d.zero_grad(set_to_none=True)
        acc.backward(d_loss)
        self.opt_d.step()
        with acc.autocast():
            g_loss = self.g_loss(fake)
        self._check("generator", g_loss)
        self.opt_g.zero_grad(set_to_none=True)
        acc.backward(g_loss)
        self.opt_g.step()
        self.ema.update()
        d, g = d_loss.detach(), g_loss.detach()
        if acc.num_processes > 1:
            d, g = acc.reduce(d, "mean"), acc.reduce(g, "mean")
        return float(d), float(g)

    def _check(self, which: str, loss) -> None:
        import torch

        if not torch.isfinite(loss.detach()).all():
            raise NonFiniteLoss(f"the {which} loss is {float(loss.detach())}")

    def preview(self):
        import torch

        ema = self.ema.ema_model
        with torch.no_grad(), self.accelerator.autocast():
            imgs = ema(self.preview_z.to(self.device))
        return grid(to_pil(imgs.float()), columns=int(math.ceil(math.sqrt(len(imgs)))))

    # ------------------------------------------------------------------ run
    def run(self, progress: Optional[ProgressCallback] = None,
            on_step: Optional[Callable[[int, float, float], None]] = None) -> GanTrainResult:
        import torch

        o = self.options
        cb = ensure(progress)
        self.setup()
        acc = self.accelerator
        main = acc.is_main_process

        def report(done, total, message="", preview=None):
            if main:
                cb(done, total, message, preview)

        step, d_losses, g_losses = 0, [], []
        self.last_checkpoint = None
        if self.resume_dir is not None:
            step, d_losses, g_losses = self.restore(self.resume_dir)
        previews: list[Path] = []
        t0, step0 = time.perf_counter(), step
        report(step, o.steps, f"training on {len(self.images)} images at {o.size} px on {self.device}")
        try:
            limit = o.time_limit_minutes * 60.0
            while step < o.steps:
                if limit and time.perf_counter() - t0 >= limit:
                    report(step, o.steps, f"time limit of {o.time_limit_minutes:g} minutes reached")
                    break
                d, g = self.step()
                step += 1
                d_losses.append(d)
                g_losses.append(g)
                if on_step is not None and main:
                    on_step(step, d, g)
                if o.checkpoint_every and step % o.checkpoint_every == 0 and step < o.steps:
                    self.save_checkpoint(step, d_losses, g_losses)
                shown = None
                if main and o.preview_every and step % o.preview_every == 0:
                    shown = self.preview()
                    path = self.output_dir / "previews" / f"{o.output_name}-step{step:08d}.png"
                    save_png(shown, path)
                    previews.append(path)
                per = (time.perf_counter() - t0) / max(1, step - step0)
                eta = per * (o.steps - step)
                report(step, o.steps, f"D {d:.3f} G {g:.3f} {per:.2f} s/step ETA {int(eta // 60)}:{int(eta % 60):02d}",
                       shown)
        except NonFiniteLoss as exc:
            where = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint
                     else "no checkpoint was written yet (set checkpoint_every)")
            raise NonFiniteLoss(f"training stopped at step {step + 1}: {exc}; weights were not updated; {where}. "
                                "Try a lower lr, or resume from that checkpoint.") from None
        except (Cancelled, KeyboardInterrupt):
            self.save_checkpoint(step, d_losses, g_losses)
            raise
        except torch.cuda.OutOfMemoryError as exc:
            raise TrailcamError(f"GPU out of memory at size {o.size} with batch_size {o.batch_size}: try "
                                f"batch_size {max(1, o.batch_size // 2)} or a smaller size ({exc})") from None
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc).lower():
                raise TrailcamError(f"out of memory at size {o.size} with batch_size {o.batch_size}: try batch_size "
                                    f"{max(1, o.batch_size // 2)} or a smaller size ({exc})") from None
            raise
        final_ckpt = self.save_checkpoint(step, d_losses, g_losses)
        seconds = time.perf_counter() - t0
        curve_path = self.output_dir / f"{o.output_name}.loss.png"
        if main:
            training = {"steps": step, "images": len(self.images), "dataset": self.images.fingerprint,
                        "options": {k: v for k, v in as_dict(o).items() if k != "resume"},
                        "precision": self.precision, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "seconds_this_run": round(seconds, 1), "devices": acc.num_processes,
                        "final_d_loss": d_losses[-1] if d_losses else None,
                        "final_g_loss": g_losses[-1] if g_losses else None}
            save_generator(self.generator_path, self.ema.ema_model, training)
            previews.append(save_png(self.preview(), self.output_dir / f"{o.output_name}.preview.png"))
            atomic.write_json(self.output_dir / f"{o.output_name}.losses.json",
                              {"d_losses": d_losses, "g_losses": g_losses, "steps": step})
            curve({"discriminator": d_losses, "generator": g_losses}, f"{o.output_name}: hinge losses",
                  out_png=curve_path)
        acc.wait_for_everyone()
        report(step, o.steps, f"saved {self.generator_path.name}")
        return GanTrainResult(self.generator_path, step, d_losses, g_losses, final_ckpt, previews,
                              curve_path, list(self.images.skipped), seconds)
