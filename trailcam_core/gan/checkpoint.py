"""Resumable GAN checkpoints: G, D and EMA weights, both optimizers, every RNG, step and losses.

A checkpoint is a folder ``<output>/checkpoints/step-00001000/``::

    state.json            step, losses, settings, dataset fingerprint, config
    models.safetensors    G.*, D.*, EMA.* tensors
    training_state.pt     optimizer states and generator (RNG) states

written into a hidden temporary folder and renamed into place (:mod:`trailcam_core.base.checkpoints`):
a folder that exists is complete.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from trailcam_core.base import CheckpointFormat

MODELS = "models.safetensors"
FORMAT = CheckpointFormat(tensors_file=MODELS, kind="gan")


def read_state(folder: Path) -> dict[str, Any]:
    """The ``state.json`` of a GAN checkpoint (a clear error for another format)."""
    return FORMAT.read_state(folder)


def save_checkpoint(folder: Path, state: dict, tensors: dict, training_state: dict) -> Path:
    """Write one checkpoint folder atomically (G, D and EMA tensors; optimizer and RNG states)."""
    return FORMAT.save(folder, state, tensors, training_state)


def load_checkpoint(folder: Path) -> tuple[dict, dict, dict]:
    """(state, tensors, training state) of a checkpoint folder."""
    return FORMAT.load(folder)


def ema_generator_from_checkpoint(folder: Path, device: str = "cpu"):
    """The EMA generator stored in a checkpoint (for the metric curve over checkpoints)."""
    from trailcam_core.gan.config import GanConfig
    from trailcam_core.gan.export import load_matching
    from trailcam_core.gan.model import Generator

    state, tensors, _ = load_checkpoint(folder)
    config = GanConfig.from_dict(state["config"])
    g = Generator(config)
    prefix = "EMA.ema_model."
    load_matching(g, {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}, f"checkpoint {folder}")
    return g.to(device).eval().requires_grad_(False), state
