"""TrainOptions: every parameter of LoRA training, described once for the CLI, ComfyUI and Gradio.

    opts = TrainOptions(rank=16, epochs=4)
    opts = TrainOptions.preset("civitai-sdxl", trigger_word="trailflash")
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from trailcam_core.base import option, Options, TrailcamError
from trailcam_core.lora.kohya import TARGET_CHOICES

OPTIMIZERS = ("adamw", "adamw8bit", "prodigy", "adafactor")
SCHEDULERS = ("constant", "constant_with_warmup", "cosine", "cosine_with_restarts", "linear", "polynomial")
PRECISIONS = ("auto", "no", "bf16", "fp16")
SAVE_PRECISIONS = ("fp16", "bf16", "fp32")


@dataclass
class TrainOptions(Options):
    STAGE = "train"

    # what is learned
    rank: int = option(16, "LoRA rank (network dim)", min=1, max=256)
    alpha: float = option(8.0, "LoRA alpha: the update is scaled by alpha / rank", min=0.01, max=1024)
    unet_targets: str = option("transformer", "UNet layers that get a LoRA: attention projections only, every "
                               "transformer Linear (kohya's default), or also the resnet convolutions",
                               choices=TARGET_CHOICES)
    train_text_encoder: bool = option(True, "Also train LoRAs on both text encoders (without them the LoRA "
                                      "has no text-encoder weights and CLIP strength has no effect on it)")
    unet_lr: float = option(1e-4, "UNet learning rate", min=0.0, max=10.0)
    text_encoder_lr: float = option(5e-5, "Text-encoder learning rate", min=0.0, max=10.0)
    # how long
    epochs: int = option(10, "Passes over the (repeated) images; ignored when max_steps is set", min=1, max=100000)
    max_steps: int = option(0, "Stop after this many optimizer steps (0: use epochs)", min=0, max=10_000_000)
    repeats: int = option(1, "Times each image is seen per epoch (0: auto, ceil(200 / number of images))", min=0,
                          max=10000)
    batch_size: int = option(1, "Images per step", min=1, max=256)
    gradient_accumulation: int = option(1, "Batches accumulated into one optimizer step", min=1, max=1024)
    # optimiser and schedule
    optimizer: str = option("adamw", "Optimizer (adamw8bit needs bitsandbytes, prodigy needs prodigyopt)",
                            choices=OPTIMIZERS)
    weight_decay: float = option(1e-2, "Weight decay", min=0.0, max=1.0)
    lr_scheduler: str = option("constant", "Learning-rate schedule", choices=SCHEDULERS)
    lr_warmup_steps: int = option(0, "Warm-up steps of the schedule", min=0, max=1_000_000)
    lr_cycles: int = option(1, "Restarts of cosine_with_restarts", min=1, max=1000)
    max_grad_norm: float = option(1.0, "Gradient clipping norm (0: off)", min=0.0, max=1000.0)
    min_snr_gamma: float = option(5.0, "Min-SNR loss weighting gamma (0: off)", min=0.0, max=100.0)
    noise_offset: float = option(0.0, "Noise offset (helps very dark / bright images, e.g. night flash)", min=0.0,
                                 max=1.0)
    seed: int = option(0, "Random seed (data order, augmentation, noise)", min=0, max=2**31 - 1)
    # images
    resolution: int = option(1024, "Training resolution; buckets keep about resolution^2 pixels", min=64, max=4096,
                             step=64)
    bucketing: bool = option(True, "Aspect-ratio bucketing (off: square crops)")
    bucket_step: int = option(64, "Bucket side step in pixels", min=16, max=256)
    min_bucket: int = option(0, "Smallest bucket side (0: resolution / 4)", min=0, max=4096)
    max_bucket: int = option(0, "Largest bucket side (0: resolution * 2)", min=0, max=8192)
    random_crop: bool = option(False, "Random instead of centred crops (disables the latent cache)")
    flip: bool = option(False, "Random horizontal flips")
    allow_upscale: bool = option(False, "Accept images smaller than their training bucket (they are upscaled)")
    # captions
    trigger_word: str = option("", "Word put first in every caption (and recorded in the file)")
    caption_template: str = option("{caption}", "Caption for images given as records: fields {caption}, {label}, "
                                   "{labels}, {location}, {datetime}, {image_id}, {trigger}")
    shuffle_captions: bool = option(False, "Shuffle the comma-separated tags of each caption")
    keep_tokens: int = option(0, "Leading tags kept in place when shuffling", min=0, max=100)
    caption_extension: str = option(".txt", "Caption sidecar extension")
    # memory and speed
    mixed_precision: str = option("auto", "Mixed precision (auto: bf16 on a GPU that has it, else none); the VAE "
                                  "always runs in fp32", choices=PRECISIONS)
    gradient_checkpointing: bool = option(True, "Gradient checkpointing (less memory, about 20% slower)")
    cache_latents: bool = option(True, "Encode every image with the VAE once, before training")
    cache_text_embeddings: bool = option(True, "Encode captions once when the text encoders are frozen and "
                                         "captions are not shuffled")
    cache_to_disk: bool = option(True, "Keep caches in <output>/cache for the next run")
    # outputs
    output_name: str = option("trailcam_lora", "File name of the LoRA (without .safetensors)")
    save_precision: str = option("fp16", "dtype of the saved LoRA tensors", choices=SAVE_PRECISIONS)
    save_every_n_steps: int = option(0, "Write a resumable checkpoint (+ LoRA snapshot) every N steps (0: off)",
                                     min=0, max=10_000_000)
    save_every_n_epochs: int = option(0, "Write a checkpoint at the end of every N epochs (0: off)", min=0,
                                      max=100000)
    keep_checkpoints: int = option(2, "Checkpoints kept (older ones are deleted; 0: keep all)", min=0, max=10000)
    sample_every_n_steps: int = option(0, "Render sample images every N steps (0: off)", min=0, max=10_000_000)
    sample_prompts: list[str] = option([], "Prompts of the sample images")
    sample_seed: int = option(42, "Seed of the sample images", min=0, max=2**31 - 1)
    sample_steps: int = option(20, "Denoising steps of the sample images", min=1, max=200)
    sample_guidance: float = option(5.0, "Guidance scale of the sample images", min=1.0, max=30.0)
    resume: str = option("", "Checkpoint folder to resume from ('latest': newest under <output>/checkpoints)")

    PRESETS = {}  # filled below (class attribute, not a field)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "TrainOptions":
        """Options of a named preset, with overrides: ``TrainOptions.preset("civitai-sdxl", epochs=5)``."""
        if name not in PRESETS:
            raise TrailcamError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def validate(self) -> "TrainOptions":
        """Check combinations the field ranges cannot express; raise TrailcamError naming the option."""
        if self.resolution % 8:
            raise TrailcamError(f"resolution must be a multiple of 8, got {self.resolution}")
        if self.bucket_step % 8:
            raise TrailcamError(f"bucket_step must be a multiple of 8, got {self.bucket_step}")
        if self.sample_every_n_steps and not self.sample_prompts:
            raise TrailcamError("sample_every_n_steps is set but sample_prompts is empty")
        if self.lr_scheduler == "constant_with_warmup" and not self.lr_warmup_steps:
            raise TrailcamError("lr_scheduler constant_with_warmup needs lr_warmup_steps > 0")
        if self.optimizer == "prodigy" and self.unet_lr < 0.1:
            # Prodigy estimates the step size itself; its lr is a multiplier around 1.0.
            raise TrailcamError(f"with optimizer prodigy set unet_lr near 1.0 (got {self.unet_lr})")
        check_output_name(self.output_name)
        return self


def check_output_name(name: str) -> str:
    """``name`` when it is a plain file name for the LoRA (no folder, no ``..``, not absolute, no
    character Windows refuses); else TrailcamError naming the option and what is wrong."""
    bad = "".join(sorted({c for c in str(name) if c in '/\\:<>"|?*' or ord(c) < 32}))
    if not name or not str(name).strip():
        raise TrailcamError("output_name is empty: give a file name for the LoRA, e.g. trailcam_lora")
    if name.startswith("."):
        raise TrailcamError(f"output_name {name!r} starts with '.': give a plain file name (no '..', not hidden)")
    if bad:
        kind = "an absolute path" if name.startswith(("/", "\\")) or name[1:2] == ":" else "a path"
        raise TrailcamError(f"output_name {name!r} is {kind}: give a plain file name without {bad!r}")
    return name


# The seed trained its LoRA on Civitai with that site's SDXL defaults (see docs/train.md).
PRESETS: dict[str, dict[str, Any]] = {
    "civitai-sdxl": dict(
        epochs=10, batch_size=4, resolution=1024, bucketing=True, repeats=0, unet_lr=5e-4, text_encoder_lr=5e-5,
        train_text_encoder=True, lr_scheduler="cosine_with_restarts", lr_cycles=3, min_snr_gamma=5.0, rank=32,
        alpha=16.0, noise_offset=0.1, optimizer="adafactor"),
    "quick": dict(epochs=4, rank=8, alpha=4.0, unet_lr=2e-4, resolution=1024),
}
TrainOptions.PRESETS = PRESETS

# Options that change what a step computes: a checkpoint only resumes under the same values.
RESUME_KEYS = ("rank", "alpha", "unet_targets", "train_text_encoder", "unet_lr", "text_encoder_lr", "repeats",
               "batch_size", "gradient_accumulation", "optimizer", "weight_decay", "lr_scheduler", "lr_warmup_steps",
               "lr_cycles", "max_grad_norm", "min_snr_gamma", "noise_offset", "seed", "resolution", "bucketing",
               "bucket_step", "min_bucket", "max_bucket", "random_crop", "flip", "trigger_word", "caption_template",
               "shuffle_captions", "keep_tokens", "mixed_precision")


def resume_settings(options: TrainOptions) -> dict[str, Any]:
    return {k: getattr(options, k) for k in RESUME_KEYS}


def as_dict(options: TrainOptions) -> dict[str, Any]:
    return dataclasses.asdict(options)
