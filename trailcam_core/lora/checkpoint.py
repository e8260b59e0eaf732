"""Resumable LoRA training checkpoints: adapter weights, optimizer, schedule, RNG and loop position.

A checkpoint is a folder ``<output>/checkpoints/<name>-step00000123/`` (the layout and the
atomic write are :mod:`trailcam_core.base.checkpoints`')::

    state.json              step, epoch, next batch, losses, the settings and data it was made with
    adapter.safetensors     the trainable (LoRA) parameters, by module path
    training_state.pt       optimizer, LR scheduler and noise-generator states
    <name>.safetensors      a kohya LoRA snapshot, usable as is

Only LoRA weights are stored, never the base model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from trailcam_core.base import CheckpointFormat
from trailcam_core.lora.kohya import save_lora

ADAPTER = "adapter.safetensors"
FORMAT = CheckpointFormat(tensors_file=ADAPTER)     # no kind: folders written before kinds were recorded load


def read_state(folder: Path) -> dict[str, Any]:
    """The ``state.json`` of a LoRA checkpoint (a clear error for another format)."""
    return FORMAT.read_state(folder)


def save_checkpoint(folder: Path, state: dict, adapter: dict, training_state: dict, lora_sd: dict,
                    lora_meta: dict, lora_name: str) -> Path:
    """Write one checkpoint folder atomically, with a kohya LoRA snapshot beside the adapter."""
    return FORMAT.save(folder, state, adapter, training_state,
                       extra=lambda tmp: save_lora(tmp / f"{lora_name}.safetensors", lora_sd, lora_meta))


def load_checkpoint(folder: Path) -> tuple[dict, dict, dict]:
    """(state, adapter tensors, training state) of a checkpoint folder."""
    return FORMAT.load(folder)
