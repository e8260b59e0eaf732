"""The generator file: EMA weights as ``.safetensors`` with the config and training metadata inside
(and a readable ``<name>.json`` beside it). Sampling needs this one file and nothing else.

    save_generator("gan.safetensors", ema_generator, {"steps": 10000, ...})
    G = load_generator("gan.safetensors")            # eval mode, on the CPU unless told otherwise
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from trailcam_core.base import atomic_path, TrailcamError, write_json
from trailcam_core.gan.config import GanConfig

CONFIG_KEY = "trailcam_gan_config"
TRAINING_KEY = "trailcam_gan_training"
FORMAT = "trailcam-gan-generator-v1"


def save_generator(path: str | os.PathLike, generator, training: Optional[dict] = None) -> Path:
    """Write ``generator``'s weights (fp32) with its config and ``training`` metadata, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    sd = {k: v.detach().float().cpu().contiguous() for k, v in generator.state_dict().items()}
    meta = {"format": FORMAT, CONFIG_KEY: generator.config.to_json(),
            TRAINING_KEY: json.dumps(training or {}, sort_keys=True, default=str)}
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp), metadata=meta)
    write_json(path.with_suffix(".json"), {"config": generator.config.to_dict(), "training": training or {}})
    return path


def read_generator_metadata(path: str | os.PathLike) -> tuple[GanConfig, dict]:
    """(config, training metadata) of a generator file, without loading its weights."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise TrailcamError(f"generator file not found: {p}")
    try:
        with safe_open(str(p), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as exc:
        raise TrailcamError(f"{p} is not a safetensors file: {exc}") from exc
    if CONFIG_KEY not in meta:
        raise TrailcamError(f"{p} is not a trailcam GAN generator (no {CONFIG_KEY} in its metadata)")
    config = GanConfig.from_dict(json.loads(meta[CONFIG_KEY]))
    return config, json.loads(meta.get(TRAINING_KEY) or "{}")


def load_generator(path: str | os.PathLike, device: str = "cpu", expect: Optional[GanConfig] = None):
    """The generator stored in ``path`` (eval mode). ``expect``: refuse a file of another config."""
    from safetensors.torch import load_file

    from trailcam_core.gan.model import Generator

    config, _ = read_generator_metadata(path)
    if expect is not None and config.to_dict() != expect.to_dict():
        raise TrailcamError(f"{path} was made with another GAN config: {'; '.join(config.differences(expect))}")
    g = Generator(config)
    sd = load_file(str(path))
    load_matching(g, sd, f"generator file {path}")
    return g.to(device).eval().requires_grad_(False)


def load_matching(module, state: dict, what: str) -> None:
    """``module.load_state_dict(state)``, with an error naming missing, unexpected and reshaped tensors."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or extra or shapes:
        parts = []
        if shapes:
            parts.append("shapes differ: " + ", ".join(shapes[:4]))
        if missing:
            parts.append(f"{len(missing)} tensors missing ({', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} unexpected tensors ({', '.join(extra[:3])})")
        raise TrailcamError(f"{what} does not match this GAN config: {'; '.join(parts)}")
    module.load_state_dict(state)
