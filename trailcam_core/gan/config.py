"""The GAN's architecture (GanConfig, saved as JSON) and the options of each user action.

    config = GanConfig(size=256)                       # channel widths follow FastGAN's table
    config.save("runs/night/gan_config.json"); GanConfig.load(...) == config

Options dataclasses (``GanTrainOptions``, ``GanSampleOptions``, ``GanInterpolateOptions``,
``GanSteerOptions``, ``GanEvalOptions``) are what the CLI flags, ComfyUI widgets and Gradio
controls are built from.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from trailcam_core.base import option, Options, TrailcamError

SIZES = (64, 128, 256, 512, 1024)
AUGMENTS = ("color", "translation", "cutout")
PRECISIONS = ("auto", "no", "bf16", "fp16")
FEATURES = ("auto", "pyramid", "clip", "inception")
CONFIG_VERSION = 1

# FastGAN's width multipliers per resolution (times ngf / ndf).
_WIDTH = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}


def check_size(size: int) -> int:
    """``size`` when it is a supported side; else an error naming the allowed sizes."""
    if int(size) not in SIZES:
        raise TrailcamError(f"size {size} is not supported: the GAN trains at {', '.join(map(str, SIZES))} pixels")
    return int(size)


@dataclass
class GanConfig:
    """What shapes the networks. Two generator files load into each other only with equal configs."""

    size: int = 256
    z_dim: int = 256
    ngf: int = 64
    ndf: int = 64
    g_channels: dict = field(default_factory=dict)      # resolution -> channels (filled from ngf)
    d_channels: dict = field(default_factory=dict)
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        check_size(self.size)
        if self.z_dim < 8 or self.ngf < 4 or self.ndf < 4:
            raise TrailcamError(f"z_dim must be >= 8 and ngf, ndf >= 4 (got {self.z_dim}, {self.ngf}, {self.ndf})")
        res = [4 * 2 ** k for k in range(self.size.bit_length()) if 4 * 2 ** k <= self.size]
        self.g_channels = {int(r): int(c) for r, c in self.g_channels.items()} or \
            {r: max(8, int(self.ngf * _WIDTH[r])) for r in res}
        self.d_channels = {int(r): int(c) for r, c in self.d_channels.items()} or \
            {r: max(8, int(self.ndf * _WIDTH[r])) for r in res}
        for name, ch in (("g_channels", self.g_channels), ("d_channels", self.d_channels)):
            missing = [r for r in res if r not in ch]
            if missing:
                raise TrailcamError(f"{name} lacks widths for resolutions {missing}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["g_channels"] = {str(k): v for k, v in self.g_channels.items()}
        d["d_channels"] = {str(k): v for k, v in self.d_channels.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "GanConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TrailcamError(f"GAN config has unknown fields {sorted(unknown)}")
        if d.get("version", CONFIG_VERSION) != CONFIG_VERSION:
            raise TrailcamError(f"GAN config version {d.get('version')} is not {CONFIG_VERSION}")
        return cls(**d)

    def save(self, path: str | os.PathLike) -> Path:
        from trailcam_core.base import write_text

        return write_text(path, json.dumps(self.to_dict(), indent=1, sort_keys=True))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GanConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise TrailcamError(f"cannot read GAN config {path}: {exc}") from exc

    def differences(self, other: "GanConfig") -> list[str]:
        """Fields in which ``other`` differs ("size 64 vs 128", ...)."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k} {a[k]} vs {b.get(k)}" for k in a if a[k] != b.get(k)]


@dataclass
class GanTrainOptions(Options):
    """Training a GAN on an image folder (only these images: nothing pre-trained)."""

    STAGE = "gan train"

    size: int = option(256, "Side of the generated images in pixels", choices=SIZES)
    steps: int = option(10000, "Training steps (one discriminator + one generator update each)", min=1,
                        max=10_000_000)
    batch_size: int = option(8, "Images per step", min=1, max=512)
    lr: float = option(2e-4, "Adam learning rate of both networks", min=1e-7, max=1.0)
    z_dim: int = option(256, "Length of the latent vector", min=8, max=2048)
    ngf: int = option(64, "Generator width (channels scale with it)", min=4, max=512)
    ndf: int = option(64, "Discriminator width", min=4, max=512)
    flip: bool = option(True, "Random horizontal flips of the training images")
    augment: list[str] = option(list(AUGMENTS), "DiffAugment policies applied to real and generated images alike",
                                choices=AUGMENTS)
    recon_weight: float = option(1.0, "Weight of the discriminator's self-supervised reconstruction loss",
                                 min=0.0, max=100.0)
    ema_beta: float = option(0.999, "Decay of the generator's exponential moving average", min=0.0, max=0.99999,
                             step=0.0001)
    ema_start: int = option(100, "Steps before the moving average starts (until then it copies)", min=0,
                            max=10_000_000)
    checkpoint_every: int = option(1000, "Write a resumable checkpoint every N steps (0: only at the end and on "
                                   "Cancel)", min=0, max=10_000_000)
    keep_checkpoints: int = option(3, "Checkpoints kept (older ones deleted; 0: keep all)", min=0, max=10000)
    preview_every: int = option(200, "Render the preview grid from fixed latents every N steps (0: off)", min=0,
                                max=10_000_000)
    preview_count: int = option(16, "Images in the preview grid", min=1, max=64)
    seed: int = option(0, "Random seed (initial weights, data order, augmentation)", min=0, max=2**31 - 1)
    time_limit_minutes: float = option(0.0, "Stop after this many minutes and save as at the end (0: no limit)",
                                       min=0.0, max=1e6)
    mixed_precision: str = option("auto", "Mixed precision (auto: bf16 on a GPU that has it, else none)",
                                  choices=PRECISIONS)
    output_name: str = option("trailcam_gan", "File name of the generator (without .safetensors)")
    resume: str = option("", "Checkpoint folder to resume from ('latest': newest under <output>/checkpoints)")

    def __post_init__(self) -> None:
        if isinstance(self.size, str) and self.size.strip().isdigit():
            self.size = int(self.size)       # a ComfyUI combo hands the size over as text
        super().__post_init__()

    def validate(self) -> "GanTrainOptions":
        check_size(self.size)
        bad = [a for a in self.augment if a not in AUGMENTS]
        if bad:
            raise TrailcamError(f"augment: unknown policies {bad}; choose from {', '.join(AUGMENTS)}")
        if not self.output_name or any(c in self.output_name for c in "/\\") or self.output_name.startswith("."):
            raise TrailcamError(f"output_name must be a plain file name, got {self.output_name!r}")
        return self

    def config(self) -> GanConfig:
        return GanConfig(size=self.size, z_dim=self.z_dim, ngf=self.ngf, ndf=self.ndf)


# Options that change what a step computes: a checkpoint resumes only under the same values.
RESUME_KEYS = ("size", "batch_size", "lr", "z_dim", "ngf", "ndf", "flip", "augment", "recon_weight", "ema_beta",
               "ema_start", "seed", "mixed_precision")


@dataclass
class GanSampleOptions(Options):
    """Sampling images from a generator file."""

    STAGE = "gan sample"

    seed: int = option(0, "Seed of the first image (image i uses seed + i, so it does not depend on count)",
                       min=0, max=2**31 - 1)
    count: int = option(16, "Number of images", min=1, max=10000)
    truncation: float = option(1.0, "Truncation: latents are scaled by this (1: full variety, lower: safer, "
                               "more typical images)", min=0.0, max=2.0, step=0.05)
    columns: int = option(0, "Columns of the grid (0: square-ish)", min=0, max=64)
    grid: bool = option(True, "Also write grid.png into the folder (off: only the samples, e.g. for a mosaic)")


@dataclass
class GanInterpolateOptions(Options):
    """A latent walk between seeds, as an mp4 video."""

    STAGE = "gan interpolate"

    seeds: list[int] = option([0, 1, 2, 3], "Seeds visited in order (the video loops back to the first)")
    frames: int = option(48, "Frames between two seeds", min=2, max=1000)
    fps: int = option(24, "Frames per second", min=1, max=120)
    truncation: float = option(1.0, "Truncation (see sampling)", min=0.0, max=2.0, step=0.05)
    loop: bool = option(True, "Return to the first seed at the end")


@dataclass
class GanSteerOptions(Options):
    """Fitting latent directions for the project's own tags."""

    STAGE = "gan steer"

    samples: int = option(2000, "Images sampled and tagged to fit the directions", min=40, max=200000)
    batch_size: int = option(64, "Images generated at once", min=1, max=1024)
    test_fraction: float = option(0.25, "Held-out share of the samples on which accuracy is reported", min=0.05,
                                  max=0.9, step=0.05)
    artifact_threshold: float = option(0.5, "Artifact score at or above which a sample counts as a glitch",
                                       min=0.0, max=1.0, step=0.01)
    min_class: int = option(10, "Fewest samples per side needed to fit a direction", min=2, max=100000)
    seed: int = option(0, "Seed of the tagged samples", min=0, max=2**31 - 1)
    strip_seeds: list[int] = option([0, 1, 2], "Seeds of the picture strips along each direction")


@dataclass
class GanEvalOptions(Options):
    """Evaluating a generator against the real images."""

    STAGE = "gan eval"

    features: str = option("auto", "Feature extractor: inception (needs a local weights file), clip (needs real "
                           "open_clip weights), pyramid (model-free) or auto (the best available)", choices=FEATURES)
    inception_weights: str = option("", "Path of a local Inception weights file (torch-fidelity's "
                                    "pt_inception-2015-12-05 .pth)")
    clip_model: str = option("ViT-B-32", "open_clip architecture for clip features")
    clip_weights: str = option("", "open_clip weights: a local checkpoint file (or a tag already in the cache)")
    samples: int = option(0, "Generated images compared (0: as many as the real images, at least 100)", min=0,
                          max=100000)
    kid_subset_size: int = option(1000, "KID subset size (capped at the smaller set)", min=2, max=100000)
    kid_subsets: int = option(100, "KID subsets averaged", min=1, max=10000)
    nearest_k: int = option(5, "k of precision/recall/density/coverage", min=1, max=100)
    seed: int = option(0, "Seed of the generated images and of the real halves", min=0, max=2**31 - 1)
    checkpoints: bool = option(True, "Also score every checkpoint of the run (the metric curve)")


def as_dict(options: Any) -> dict[str, Any]:
    return dataclasses.asdict(options)


def resume_settings(options: GanTrainOptions, precision: Optional[str] = None) -> dict:
    out = {k: getattr(options, k) for k in RESUME_KEYS}
    if precision is not None:
        out["mixed_precision"] = precision
    return out
