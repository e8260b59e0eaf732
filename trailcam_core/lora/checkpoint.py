"""Resumable training checkpoints: adapter weights, optimizer, schedule, RNG and loop position.

A checkpoint is a folder ``<output>/checkpoints/<name>-step00000123/``::

    state.json              step, epoch, next batch, losses, the settings and data it was made with
    adapter.safetensors     the trainable (LoRA) parameters, by module path
    training_state.pt       optimizer, LR scheduler and noise-generator states
    <name>.safetensors      a kohya LoRA snapshot, usable as is

It is written into a hidden temporary folder and renamed into place, so a folder that exists is
complete.  Only LoRA weights are stored, never the base model.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from trailcam_core.base import TrailcamError
from trailcam_core.lora.kohya import save_lora

STATE = "state.json"
ADAPTER = "adapter.safetensors"
TRAINING_STATE = "training_state.pt"
FORMAT_VERSION = 1


def checkpoint_root(output_dir: Path) -> Path:
    return Path(output_dir) / "checkpoints"


# the hidden temporary folder save_checkpoint writes first: .<name>-step00000123.<random>
_TEMP_RE = re.compile(r"^\..+-step\d{8}\.[A-Za-z0-9_]+$")


def remove_stale_temps(output_dir: Path) -> list[Path]:
    """Delete the hidden temp folders an interrupted checkpoint write left in ``checkpoints/``.

    Called when a run starts (one run per output folder), so a kill during a save leaves nothing
    behind for good. Returns what was removed."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    stale = [d for d in root.iterdir() if d.is_dir() and not d.is_symlink() and _TEMP_RE.match(d.name)]
    for d in stale:
        shutil.rmtree(d, ignore_errors=True)
    return stale


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints under ``output_dir``, oldest first (by step)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        if d.is_dir() and not d.name.startswith(".") and (d / STATE).is_file():
            try:
                found.append((json.loads((d / STATE).read_text())["step"], d.name, d))
            except (ValueError, KeyError):
                continue
    return [d for _, _, d in sorted(found)]


def resolve_resume(resume: str, output_dir: Path) -> Optional[Path]:
    """The checkpoint folder named by ``resume`` ('' none, 'latest', a folder, or an output folder)."""
    if not resume:
        return None
    if resume == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise TrailcamError(f"resume=latest but there is no checkpoint under {checkpoint_root(output_dir)}")
        return found[-1]
    p = Path(resume)
    if (p / STATE).is_file():
        return p
    if p.is_dir() and list_checkpoints(p):
        return list_checkpoints(p)[-1]
    raise TrailcamError(f"resume checkpoint not found: {p} (expected a folder with {STATE})")


def read_state(folder: Path) -> dict[str, Any]:
    try:
        state = json.loads((Path(folder) / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrailcamError(f"cannot read checkpoint {folder}: {exc}") from exc
    if state.get("version") != FORMAT_VERSION:
        raise TrailcamError(f"checkpoint {folder} has format version {state.get('version')}, expected {FORMAT_VERSION}")
    return state


def check_compatible(state: dict, settings: dict, dataset: str, folder: Path) -> None:
    """Raise naming every setting in which the checkpoint differs from this run."""
    diffs = [f"{k}={state['settings'].get(k)!r} (now {v!r})" for k, v in settings.items()
             if state["settings"].get(k) != v]
    if state.get("dataset") != dataset:
        diffs.append("the training images or captions changed")
    if diffs:
        raise TrailcamError(f"checkpoint {folder} was made with other settings: {'; '.join(diffs)}. "
                            "Resume with the same settings or start a new run.")


def save_checkpoint(folder: Path, state: dict, adapter: dict, training_state: dict, lora_sd: dict,
                    lora_meta: dict, lora_name: str) -> Path:
    """Write one checkpoint folder atomically (temp folder + rename)."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in adapter.items()}, str(tmp / ADAPTER))
        torch.save(training_state, tmp / TRAINING_STATE)
        save_lora(tmp / f"{lora_name}.safetensors", lora_sd, lora_meta)
        (tmp / STATE).write_text(json.dumps({**state, "version": FORMAT_VERSION}, indent=1), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_checkpoint(folder: Path) -> tuple[dict, dict, dict]:
    """(state, adapter tensors, training state) of a checkpoint folder."""
    import torch
    from safetensors.torch import load_file

    folder = Path(folder)
    state = read_state(folder)
    try:
        adapter = load_file(str(folder / ADAPTER))
        training_state = torch.load(folder / TRAINING_STATE, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError) as exc:
        raise TrailcamError(f"checkpoint {folder} is incomplete or damaged: {exc}") from exc
    return state, adapter, training_state


def prune(output_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (0 keeps all)."""
    if keep <= 0:
        return
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
