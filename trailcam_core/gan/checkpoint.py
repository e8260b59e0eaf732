"""Resumable GAN checkpoints: G, D and EMA weights, both optimizers, every RNG, step and losses.

A checkpoint is a folder ``<output>/checkpoints/step-00001000/``::

    state.json            step, losses, settings, dataset fingerprint, config
    models.safetensors    G.*, D.*, EMA.* tensors
    training_state.pt     optimizer states and generator (RNG) states

written into a hidden temporary folder and renamed into place: a folder that exists is complete.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from trailcam_core.base import TrailcamError

STATE = "state.json"
MODELS = "models.safetensors"
TRAINING_STATE = "training_state.pt"
FORMAT_VERSION = 1


def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under ``output_dir``, oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        if d.is_dir() and not d.name.startswith(".") and (d / STATE).is_file():
            try:
                found.append((int(json.loads((d / STATE).read_text())["step"]), d.name, d))
            except (ValueError, KeyError, OSError):
                continue
    return [d for _, _, d in sorted(found)]


def resolve_resume(resume: str, output_dir: Path) -> Optional[Path]:
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
    if state.get("version") != FORMAT_VERSION or state.get("kind") != "gan":
        raise TrailcamError(f"{folder} is not a GAN checkpoint of format {FORMAT_VERSION}")
    return state


def check_compatible(state: dict, settings: dict, dataset: str, folder: Path) -> None:
    """Raise naming every setting in which the checkpoint differs from this run."""
    diffs = [f"{k} {state['settings'].get(k)!r} vs {v!r} now" for k, v in settings.items()
             if state["settings"].get(k) != v]
    if state.get("dataset") != dataset:
        diffs.append("the training images changed")
    if diffs:
        raise TrailcamError(f"checkpoint {folder} was made with another config: {'; '.join(diffs)}. "
                            "Resume with the same settings or start a new run.")


def save_checkpoint(folder: Path, state: dict, tensors: dict, training_state: dict) -> Path:
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp / MODELS))
        torch.save(training_state, tmp / TRAINING_STATE)
        (tmp / STATE).write_text(json.dumps({**state, "kind": "gan", "version": FORMAT_VERSION}, indent=1),
                                 encoding="utf-8")
        os.chmod(tmp, 0o755)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_checkpoint(folder: Path) -> tuple[dict, dict, dict]:
    import torch
    from safetensors.torch import load_file

    folder = Path(folder)
    state = read_state(folder)
    try:
        tensors = load_file(str(folder / MODELS))
        training_state = torch.load(folder / TRAINING_STATE, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError) as exc:
        raise TrailcamError(f"checkpoint {folder} is incomplete or damaged: {exc}") from exc
    return state, tensors, training_state


def prune(output_dir: Path, keep: int) -> None:
    if keep <= 0:
        return
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


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
