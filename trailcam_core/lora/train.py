"""The SDXL LoRA training loop: diffusers + peft + accelerate.

    result = train_lora("favourites/", "models/checkpoints/sd_xl_base_1.0.safetensors", "runs/night",
                        TrainOptions.preset("civitai-sdxl", trigger_word="trailflash"), progress=cb)
    result.lora_path   # runs/night/trailcam_lora.safetensors (kohya layout, loads in ComfyUI and diffusers)

Everything a user can get wrong (paths, captions, image sizes, optimizer packages, a resume
checkpoint from other settings) is checked in ``LoraTrainer.__init__``, before any model loads.
The same entry point runs single-process or under ``accelerate launch`` (batches are sharded
across processes; only the main process writes files and reports progress).
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from trailcam_core.base import atomic
from trailcam_core.base import BatchReport, Cancelled, ensure, ProgressCallback, TrailcamError
from trailcam_core.models import load_frozen_sdxl, model_kind
from trailcam_core.lora import checkpoint as ckpt
from trailcam_core.lora import dataset as ds
from trailcam_core.lora import kohya
from trailcam_core.lora.options import TrainOptions, as_dict, resume_settings
from trailcam_core.lora.sampling import encode_prompts, render_samples
from trailcam_core.lora.interrupt import checks_between_blocks
from trailcam_core.base import checkpoints

_OPTIONAL_OPTIMIZERS = {"adamw8bit": ("bitsandbytes", "pip install bitsandbytes"),
                        "prodigy": ("prodigyopt", "pip install prodigyopt")}
_SAVE_DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}


@dataclass
class TrainResult:
    """What a training run produced."""

    lora_path: Path
    steps: int
    epoch: int
    losses: list[float] = field(default_factory=list)      # one per optimizer step, resumed runs included
    samples: list[Path] = field(default_factory=list)
    checkpoint: Optional[Path] = None
    metadata: dict[str, str] = field(default_factory=dict)

    def to_report(self) -> BatchReport:
        out: dict[str, Any] = {"lora": self.lora_path, "steps": self.steps}
        if self.losses:
            out["final_loss"] = f"{self.losses[-1]:.4f}"
        if self.checkpoint:
            out["checkpoint"] = self.checkpoint
        return BatchReport(stage="train", processed=self.steps, outputs=out)


def train_lora(data: str | Path | Iterable, base_model: str | Path, output_dir: str | Path,
               options: Optional[TrainOptions] = None, progress: Optional[ProgressCallback] = None,
               on_step: Optional[Callable[[int, float], None]] = None) -> TrainResult:
    """Train an SDXL LoRA on ``data`` (a captioned image folder, or ImageRecords + options.caption_template).

    ``on_step(step, loss)`` is called after every optimizer step (live loss curves).  Raises
    TrailcamError for bad input before loading the model, and re-raises ``Cancelled`` from the
    progress callback after saving a resumable checkpoint."""
    return LoraTrainer(data, base_model, output_dir, options).run(progress, on_step)


def resolve_precision(requested: str) -> str:
    import torch

    if requested == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if requested == "fp16" and not torch.cuda.is_available():
        raise TrailcamError("mixed_precision fp16 needs a CUDA GPU; use bf16 or no on this machine")
    return requested


def make_optimizer(name: str, groups: list[dict], weight_decay: float):
    import torch

    if name == "adamw":
        return torch.optim.AdamW(groups, weight_decay=weight_decay)
    if name == "adamw8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(groups, weight_decay=weight_decay)
    if name == "prodigy":
        from prodigyopt import Prodigy

        return Prodigy(groups, weight_decay=weight_decay, use_bias_correction=True, safeguard_warmup=True)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(groups, weight_decay=weight_decay, scale_parameter=False, relative_step=False,
                         warmup_init=False)
    raise TrailcamError(f"unknown optimizer {name!r}")


def add_lora(model, targets: list[str], rank: int, alpha: float):
    """Inject a peft LoRA (adapter "default") into the named modules; only its weights are trainable."""
    from peft import LoraConfig, inject_adapter_in_model

    model.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, init_lora_weights=True)
    return inject_adapter_in_model(config, model, adapter_name="default")


def trainable_state(model) -> dict:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


class LoraTrainer:
    """One training run. ``__init__`` validates everything cheap; ``run`` loads, trains and saves."""

    def __init__(self, data, base_model, output_dir, options: Optional[TrainOptions] = None):
        self.options = (options or TrainOptions()).validate()
        o = self.options
        self.base_model = Path(base_model)
        model_kind(self.base_model)                                # missing / wrong base model
        self.output_dir = Path(output_dir)
        if isinstance(data, (str, Path)):
            self.items = ds.scan_folder(data, o.caption_extension, exclude=self.output_dir)
            self.data_root = Path(data)
        else:
            self.items = ds.items_from_records(data, o.caption_template, o.trigger_word)
            self.data_root = None
        self.repeats = o.repeats or ds.auto_repeats(sum(it.repeats for it in self.items))
        ds.assign_buckets(self.items, o.resolution, o.bucketing, o.bucket_step, o.min_bucket, o.max_bucket)
        if not o.allow_upscale:
            ds.check_sizes(self.items, o.resolution)
        if o.optimizer in _OPTIONAL_OPTIMIZERS:
            module, hint = _OPTIONAL_OPTIMIZERS[o.optimizer]
            if importlib.util.find_spec(module) is None:
                raise TrailcamError(f"optimizer {o.optimizer} needs the {module} package, which is not installed "
                                    f"({hint}); or choose optimizer adamw")
        self.precision = resolve_precision(o.mixed_precision)
        self.settings = {**resume_settings(o), "mixed_precision": self.precision, "repeats": self.repeats}
        self.fingerprint = ds.dataset_fingerprint(self.items)
        self.resume_dir = checkpoints.resolve_resume(o.resume, self.output_dir)
        self.resume_state = None
        if self.resume_dir is not None:
            self.resume_state = ckpt.read_state(self.resume_dir)
            checkpoints.check_compatible(self.resume_state, self.settings, self.fingerprint, self.resume_dir)
        self.lora_path = self.output_dir / f"{o.output_name}.safetensors"

    def training_key(self) -> str:
        """Changes when anything that shapes the LoRA changes: images + captions, base model, options.

        Faces use it to tell a re-queue of the same job (reuse the file) from a new one (train).
        """
        import dataclasses
        import hashlib
        import json

        opts = {k: v for k, v in dataclasses.asdict(self.options).items() if k != "resume"}
        marker = self.base_model / "model_index.json" if self.base_model.is_dir() else self.base_model
        st = marker.stat()
        text = json.dumps({"data": self.fingerprint, "base": str(self.base_model.resolve()),
                           "base_stat": [st.st_size, st.st_mtime_ns], "options": opts}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    # ------------------------------------------------------------------ setup
    def _setup(self, report) -> None:
        import torch
        from accelerate import Accelerator
        from diffusers import DDPMScheduler

        from accelerate.state import AcceleratorState

        o = self.options
        # One process may train several times (the Gradio app, ComfyUI) with other precisions:
        # drop the previous run's accelerator settings, keep the process group.
        AcceleratorState._reset_state(reset_partial_state=False)
        self.accelerator = acc = Accelerator(mixed_precision=self.precision)
        self.device = acc.device
        self.weight_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision, torch.float32)
        report(0, 0, "loading base model")
        # frozen parts straight in the training dtype (the VAE in fp32): no fp32 copy of the UNet first
        pipe = load_frozen_sdxl(self.base_model, self.weight_dtype, vae_dtype=torch.float32)
        self.vae, self.unet = pipe.vae, pipe.unet
        self.text_encoders = [pipe.text_encoder, pipe.text_encoder_2]
        self.tokenizers = [pipe.tokenizer, pipe.tokenizer_2]
        self.scheduler_config = dict(pipe.scheduler.config)
        sc = self.scheduler_config
        self.noise_scheduler = DDPMScheduler(num_train_timesteps=sc.get("num_train_timesteps", 1000),
                                             beta_start=sc.get("beta_start", 0.00085), beta_end=sc.get("beta_end", 0.012),
                                             beta_schedule=sc.get("beta_schedule", "scaled_linear"),
                                             prediction_type=sc.get("prediction_type", "epsilon"))
        del pipe
        self.vae.requires_grad_(False).to(self.device, torch.float32)   # fp32 VAE: fp16 gives NaN / black
        torch.manual_seed(o.seed)                                       # LoRA init
        tes = self.text_encoders if o.train_text_encoder else [None, None]
        targets = kohya.lora_names(self.unet, *tes, targets=o.unet_targets)
        by_part: dict[str, list[str]] = {"unet": [], "te1": [], "te2": []}
        for part, path in targets.values():
            by_part[part].append(path)
        self.unet.to(dtype=self.weight_dtype)         # on the GPU only after the caches are built
        add_lora(self.unet, by_part["unet"], o.rank, o.alpha)
        for te in self.text_encoders:
            te.requires_grad_(False).to(self.device, self.weight_dtype)
        if o.train_text_encoder:
            for te, part in zip(self.text_encoders, ("te1", "te2")):
                add_lora(te, by_part[part], o.rank, o.alpha)
        self.train_models = [self.unet] + (self.text_encoders if o.train_text_encoder else [])
        for m in self.train_models:
            for p in m.parameters():
                if p.requires_grad:
                    p.data = p.data.float()                              # LoRA weights train in fp32
        if o.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            if o.train_text_encoder:
                for te in self.text_encoders:
                    te.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.unet.train()
        self.model_id = f"{self.base_model.resolve()}:{self.base_model.stat().st_mtime_ns}"
        self._cache_latents(report)
        self._cache_text(report)
        self.unet.to(self.device)
        groups = [{"params": [p for p in self.unet.parameters() if p.requires_grad], "lr": o.unet_lr}]
        if o.train_text_encoder:
            groups.append({"params": [p for te in self.text_encoders for p in te.parameters() if p.requires_grad],
                           "lr": o.text_encoder_lr})
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = make_optimizer(o.optimizer, groups, o.weight_decay)
        self.batches_per_epoch = len(self._epoch_batches(0))
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / o.gradient_accumulation)
        self.total_steps = o.max_steps or o.epochs * self.steps_per_epoch
        from diffusers.optimization import get_scheduler

        self.lr_scheduler = get_scheduler(o.lr_scheduler, self.optimizer, num_warmup_steps=o.lr_warmup_steps,
                                          num_training_steps=self.total_steps, num_cycles=o.lr_cycles)
        prepared = acc.prepare(*self.train_models, self.optimizer)
        self.train_models, self.optimizer = list(prepared[:-1]), prepared[-1]
        self.unet_p = self.train_models[0]
        self.te_p = self.train_models[1:] if o.train_text_encoder else self.text_encoders
        self.noise_gen = torch.Generator("cpu").manual_seed(o.seed)

    def _cache_latents(self, report) -> None:
        import torch
        from safetensors.torch import load_file, save_file

        o = self.options
        self.latents: dict[tuple[int, bool], Any] = {}
        if not o.cache_latents or o.random_crop:
            return
        flips = (False, True) if o.flip else (False,)
        cache_dir = self.output_dir / "cache" / "latents"
        todo = [(i, f) for i in range(len(self.items)) for f in flips]
        for n, (i, flip) in enumerate(todo):
            item = self.items[i]
            aug = ds.plan_augment(item, False, False, 0, 0, 0)
            aug.flip = flip
            key = ds.latent_cache_key(item, aug, self.model_id)
            path = cache_dir / f"{key}.safetensors"
            message = f"caching latents ({Path(item.path).name})"
            if o.cache_to_disk and path.is_file():
                self.latents[(i, flip)] = load_file(str(path))["latent"]
            else:
                # progress (and so Cancel) is checked before every VAE block, not once per image:
                # one 1024 px encode takes minutes on a CPU
                with checks_between_blocks(self.vae, lambda n=n: report(n, len(todo), message)):
                    self.latents[(i, flip)] = lat = self._encode_image(item, aug, int(key[:8], 16))
                if o.cache_to_disk and self.accelerator.is_main_process:
                    with atomic.atomic_path(path) as tmp:
                        save_file({"latent": lat.contiguous()}, str(tmp))
            report(n + 1, len(todo), message)
        if self.device.type != "cpu" and not o.sample_every_n_steps:
            self.vae.to("cpu")
            torch.cuda.empty_cache() if torch.cuda.is_available() else None

    def _encode_image(self, item, aug, seed: int):
        import torch

        pixels = ds.load_pixels(item, aug)[None].to(self.device, torch.float32)
        with torch.no_grad():
            dist = self.vae.encode(pixels).latent_dist
            lat = dist.sample(generator=torch.Generator("cpu").manual_seed(seed))
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        return ((lat - shift) * self.vae.config.scaling_factor)[0].float().cpu()

    def _cache_text(self, report) -> None:
        import torch

        o = self.options
        self.text_cache: dict[str, tuple[Any, Any]] = {}
        self.sample_conditions = []
        if o.train_text_encoder:
            return
        if o.cache_text_embeddings and not o.shuffle_captions:
            captions = sorted({ds.process_caption(it.caption, o.trigger_word, False, 0, 0, 0, 0) for it in self.items})
            for j in range(0, len(captions), 8):
                chunk = captions[j:j + 8]
                with torch.no_grad():
                    e, p = encode_prompts(self.tokenizers, self.text_encoders, chunk, self.device)
                for c, ee, pp in zip(chunk, e, p):
                    self.text_cache[c] = (ee.cpu(), pp.cpu())
                report(min(j + 8, len(captions)), len(captions), "caching text embeddings")
        if o.sample_prompts:
            with torch.no_grad():
                e, p = encode_prompts(self.tokenizers, self.text_encoders, o.sample_prompts, self.device)
            self.sample_conditions = list(zip(e.cpu(), p.cpu()))
        if self.text_cache and self.device.type != "cpu":
            for te in self.text_encoders:
                te.to("cpu")                                           # frees VRAM for the UNet
            torch.cuda.empty_cache() if torch.cuda.is_available() else None

    # ------------------------------------------------------------------ data
    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        o = self.options
        batches = ds.epoch_batches(self.items, o.batch_size, self.repeats, o.seed, epoch)
        n = self.accelerator.num_processes
        if n > 1:
            batches = batches[:len(batches) // n * n][self.accelerator.process_index::n]
        return batches

    def _batch(self, idxs: list[int], epoch: int, bi: int):
        import torch

        o = self.options
        latents, captions, tids = [], [], []
        for slot, i in enumerate(idxs):
            item, key = self.items[i], f"{self.accelerator.process_index}.{bi}.{slot}"
            aug = ds.plan_augment(item, o.random_crop, o.flip, o.seed, epoch, key)
            if (i, aug.flip) in self.latents:
                latents.append(self.latents[(i, aug.flip)])
            else:
                latents.append(self._encode_image(item, aug, ds.seeded_rng('vae', o.seed, epoch, key).getrandbits(31)))
            captions.append(ds.process_caption(item.caption, o.trigger_word, o.shuffle_captions, o.keep_tokens,
                                               o.seed, epoch, key))
            tids.append(ds.time_ids(item, aug))
        return (torch.stack(latents).to(self.device), captions,
                torch.tensor(tids, dtype=torch.float32, device=self.device))

    def _conditions(self, captions: list[str]):
        import torch

        if all(c in self.text_cache for c in captions):
            e = torch.stack([self.text_cache[c][0] for c in captions]).to(self.device)
            p = torch.stack([self.text_cache[c][1] for c in captions]).to(self.device)
            return e, p
        grad = torch.enable_grad() if self.options.train_text_encoder else torch.no_grad()
        with grad:
            return encode_prompts(self.tokenizers, self.te_p, captions, self.device)

    # ------------------------------------------------------------------ one step
    def loss(self, latents, embeds, pooled, time_ids):
        """The denoising loss of one batch (noise, timesteps drawn from the trainer's generator)."""
        import torch
        import torch.nn.functional as F
        from diffusers.training_utils import compute_snr

        o, sched = self.options, self.noise_scheduler
        b = latents.shape[0]
        noise = torch.randn(latents.shape, generator=self.noise_gen).to(self.device)
        if o.noise_offset:
            noise = noise + o.noise_offset * torch.randn((b, latents.shape[1], 1, 1), generator=self.noise_gen).to(
                self.device)
        t = torch.randint(0, sched.config.num_train_timesteps, (b,), generator=self.noise_gen).to(self.device)
        noisy = sched.add_noise(latents, noise, t)
        target = noise if sched.config.prediction_type == "epsilon" else sched.get_velocity(latents, noise, t)
        with self.accelerator.autocast():
            pred = self.unet_p(noisy.to(self.weight_dtype), t, encoder_hidden_states=embeds.to(self.weight_dtype),
                               added_cond_kwargs={"text_embeds": pooled.to(self.weight_dtype), "time_ids": time_ids},
                               return_dict=False)[0]
        loss = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        if o.min_snr_gamma:
            snr = compute_snr(sched, t)
            weight = torch.clamp(snr, max=o.min_snr_gamma) / (snr if sched.config.prediction_type == "epsilon"
                                                                else snr + 1)
            loss = loss * weight
        return loss.mean()

    # ------------------------------------------------------------------ run
    def run(self, progress: Optional[ProgressCallback] = None,
            on_step: Optional[Callable[[int, float], None]] = None) -> TrainResult:
        """Train; ``progress`` gets the usual (done, total, message, preview) reports and
        ``on_step(step, loss)`` every optimizer step's loss (main process only)."""
        import torch

        from accelerate import PartialState

        o = self.options
        cb = ensure(progress)
        main = PartialState().is_main_process            # under `accelerate launch`, one process reports

        def report(done, total, message="", preview=None):
            if main:
                cb(done, total, message, preview)

        if main:
            checkpoints.remove_stale_temps(self.output_dir)     # left by a run killed while saving
        self._setup(report)
        acc = self.accelerator
        step, epoch, start_batch, losses = 0, 0, 0, []
        if self.resume_dir is not None:
            step, epoch, start_batch, losses = self._restore(self.resume_dir)
        self.samples: list[Path] = []
        self.last_checkpoint: Optional[Path] = None
        self.started = time.time()
        t0, step0 = time.perf_counter(), step
        position = (epoch, start_batch)
        try:
            while step < self.total_steps:
                batches = self._epoch_batches(epoch)
                bi = start_batch
                while bi < len(batches) and step < self.total_steps:
                    group = batches[bi:min(bi + o.gradient_accumulation, len(batches))]
                    step_loss = 0.0
                    for k, idxs in enumerate(group):
                        latents, captions, tids = self._batch(idxs, epoch, bi + k)
                        sync = k == len(group) - 1 or acc.num_processes == 1
                        ctx = contextlib.nullcontext() if sync else acc.no_sync(self.unet_p)
                        with ctx:
                            embeds, pooled = self._conditions(captions)
                            loss = self.loss(latents, embeds, pooled, tids) / len(group)
                            acc.backward(loss)
                        step_loss += loss.detach().item()
                    if o.max_grad_norm:
                        acc.clip_grad_norm_(self.params, o.max_grad_norm)
                    self.optimizer.step()
                    self.lr_scheduler.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    step, bi = step + 1, bi + len(group)
                    if acc.num_processes > 1:
                        step_loss = acc.reduce(torch.tensor(step_loss, device=self.device), "mean").item()
                    losses.append(step_loss)
                    if on_step is not None and main:
                        on_step(step, step_loss)
                    position = (epoch, bi) if bi < len(batches) else (epoch + 1, 0)
                    self._after_step(step, position, losses, t0, step0, report)
                epoch, start_batch = epoch + 1, 0
                if o.save_every_n_epochs and epoch % o.save_every_n_epochs == 0 and step < self.total_steps:
                    self._save_checkpoint(step, (epoch, 0), losses)
        except (Cancelled, KeyboardInterrupt):
            self._save_checkpoint(step, position, losses)
            raise
        acc.wait_for_everyone()
        final_epoch = position[0] if position[1] == 0 else position[0] + 1
        meta = self._metadata(step, final_epoch)
        if main:
            kohya.save_lora(self.lora_path, self._kohya_sd(), meta)
            atomic.write_json(self.output_dir / f"{o.output_name}.losses.json", {"losses": losses, "steps": step})
        report(step, self.total_steps, f"saved {self.lora_path.name}")
        return TrainResult(self.lora_path, step, final_epoch, losses, self.samples, self.last_checkpoint, meta)

    def _after_step(self, step, position, losses, t0, step0, report) -> None:
        o = self.options
        elapsed = time.perf_counter() - t0
        per_step = elapsed / max(1, step - step0)
        eta = per_step * (self.total_steps - step)
        recent = losses[-20:]
        msg = (f"epoch {position[0] + (1 if position[1] else 0)}/{math.ceil(self.total_steps / self.steps_per_epoch)} "
               f"loss {losses[-1]:.4f} (avg {sum(recent) / len(recent):.4f}) lr {self.lr_scheduler.get_last_lr()[0]:.2e} "
               f"{per_step:.2f} s/step ETA {int(eta // 60)}:{int(eta % 60):02d}")
        if o.save_every_n_steps and step % o.save_every_n_steps == 0 and step < self.total_steps:
            self._save_checkpoint(step, position, losses)
        preview = None
        if o.sample_every_n_steps and step % o.sample_every_n_steps == 0:
            images = self._sample(step, lambda: report(step, self.total_steps, "rendering samples"))
            preview = images[0] if images else None
        report(step, self.total_steps, msg, preview)

    def _sample(self, step: int, check: Optional[Callable[[], None]] = None) -> list:
        """Sample images at ``step``; ``check()`` (Cancel) runs before every UNet and VAE block."""
        import torch

        o, acc = self.options, self.accelerator
        if not acc.is_main_process:
            return []
        conditions = self.sample_conditions
        if not conditions:
            with torch.no_grad():
                e, p = encode_prompts(self.tokenizers, self.te_p, o.sample_prompts, self.device)
            conditions = list(zip(e, p))
        vae_device = next(self.vae.parameters()).device
        self.vae.to(self.device)
        w = h = o.resolution
        unet = acc.unwrap_model(self.unet_p)
        with contextlib.ExitStack() as stack:
            if check is not None:
                stack.enter_context(checks_between_blocks(unet, check))
                stack.enter_context(checks_between_blocks(self.vae, check))
            images = render_samples(unet, self.vae, self.scheduler_config, conditions, w, h,
                                    o.sample_seed, o.sample_steps, o.sample_guidance, acc.autocast)
        self.vae.to(vae_device)
        for k, img in enumerate(images):
            path = self.output_dir / "samples" / f"{o.output_name}-step{step:08d}-{k}.png"
            with atomic.atomic_path(path) as tmp:
                img.save(tmp, format="PNG")
            self.samples.append(path)
        return images

    # ------------------------------------------------------------------ saving
    def _unwrapped(self):
        acc = self.accelerator
        unet = acc.unwrap_model(self.unet_p)
        tes = [acc.unwrap_model(t) for t in self.te_p] if self.options.train_text_encoder else [None, None]
        return unet, tes

    def _kohya_sd(self) -> dict:
        import torch

        unet, (te1, te2) = self._unwrapped()
        dtype = getattr(torch, _SAVE_DTYPES[self.options.save_precision])
        return kohya.kohya_state_dict(unet=unet, text_encoder=te1, text_encoder_2=te2, dtype=dtype)

    def _metadata(self, step: int, epoch: int) -> dict[str, str]:
        o = self.options
        opts = {**as_dict(o), "repeats": self.repeats}
        n_repeated = sum(it.repeats for it in self.items) * self.repeats
        caps = ds.captions_by_folder(self.items)
        return kohya.training_metadata(
            opts, base_model=str(self.base_model), captions_by_dir=caps, num_images=len(self.items),
            num_repeated=n_repeated, steps=step, epoch=epoch, num_batches_per_epoch=self.batches_per_epoch,
            optimizer_desc=f"{type(self.optimizer.optimizer if hasattr(self.optimizer, 'optimizer') else self.optimizer).__module__}."
                           f"{type(getattr(self.optimizer, 'optimizer', self.optimizer)).__name__}",
            started=self.started, finished=time.time(), title=o.output_name, mixed_precision=self.precision,
            te1_excluded_layers=kohya.unused_te1_layers(self.text_encoders[0]))

    def _save_checkpoint(self, step: int, position: tuple[int, int], losses: list[float]) -> None:
        acc = self.accelerator
        if acc.is_main_process:
            unet, tes = self._unwrapped()
            adapter = {f"unet.{k}": v for k, v in trainable_state(unet).items()}
            for name, te in zip(("te1", "te2"), tes):
                if te is not None:
                    adapter.update({f"{name}.{k}": v for k, v in trainable_state(te).items()})
            state = {"step": step, "epoch": position[0], "batch": position[1], "losses": losses,
                     "settings": self.settings, "dataset": self.fingerprint, "base_model": self.base_model.name,
                     "total_steps": self.total_steps}
            training_state = {"optimizer": self.optimizer.state_dict(), "lr_scheduler": self.lr_scheduler.state_dict(),
                              "noise_generator": self.noise_gen.get_state()}
            folder = checkpoints.checkpoint_root(self.output_dir) / f"{self.options.output_name}-step{step:08d}"
            self.last_checkpoint = ckpt.save_checkpoint(folder, state, adapter, training_state, self._kohya_sd(),
                                                        self._metadata(step, position[0]), self.options.output_name)
            checkpoints.prune(self.output_dir, self.options.keep_checkpoints)
        acc.wait_for_everyone()

    def _restore(self, folder: Path) -> tuple[int, int, int, list[float]]:
        state, adapter, training_state = ckpt.load_checkpoint(folder)
        unet, tes = self._unwrapped()
        for name, model in (("unet", unet), ("te1", tes[0]), ("te2", tes[1])):
            if model is None:
                continue
            own = trainable_state(model)
            theirs = {k[len(name) + 1:]: v for k, v in adapter.items() if k.startswith(name + ".")}
            if set(own) != set(theirs):
                raise TrailcamError(f"checkpoint {folder} does not match this model's LoRA layers ({name})")
            for k, p in own.items():
                p.data.copy_(theirs[k].to(p.device, p.dtype))
        self.optimizer.load_state_dict(training_state["optimizer"])
        self.lr_scheduler.load_state_dict(training_state["lr_scheduler"])
        self.noise_gen.set_state(training_state["noise_generator"])
        return state["step"], state["epoch"], state["batch"], list(state["losses"])
