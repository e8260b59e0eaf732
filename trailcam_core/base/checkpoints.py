"""Resumable checkpoint folders, shared by every trainer (LoRA, GAN).

A checkpoint is a folder ``<output>/checkpoints/<name>/`` holding ``state.json`` (step, losses,
the settings and data it was made with, the format ``kind`` and ``version``), the trained tensors
as safetensors and ``training_state.pt`` (optimizer, schedule and RNG states), plus whatever
files the trainer adds.  It is written into a hidden temporary folder and renamed into place, so
a folder that exists is complete; a kill during a save leaves only a hidden temp folder, removed
by :func:`remove_stale_temps` when the next run starts.

    fmt = CheckpointFormat(kind="gan", tensors_file="models.safetensors")
    fmt.save(out / "checkpoints" / "step-00001000", state, tensors, training_state)
    state, tensors, training_state = fmt.load(fmt.resolve_resume("latest", out))
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from trailcam_core.base.errors import TrailcamError

STATE = "state.json"
TRAINING_STATE = "training_state.pt"

# the hidden temporary folder a save writes first: .<checkpoint name>.<random>
_TEMP_RE = re.compile(r"^\..*step-?\d{8}\.[A-Za-z0-9_]+$")


def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    """Where a run's checkpoints live: ``<output>/checkpoints``."""
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under ``output_dir``, oldest first (by step)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        if d.is_dir() and not d.name.startswith(".") and (d / STATE).is_file():
            try:
                found.append((int(json.loads((d / STATE).read_text())["step"]), d.name, d))
            except (ValueError, KeyError, TypeError, OSError):
                continue
    return [d for _, _, d in sorted(found)]


def remove_stale_temps(output_dir: str | os.PathLike) -> list[Path]:
    """Delete the hidden temp folders an interrupted save left in ``checkpoints/``; returns them.

    Called when a run starts (one run per output folder)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    stale = [d for d in root.iterdir() if d.is_dir() and not d.is_symlink() and _TEMP_RE.match(d.name)]
    for d in stale:
        shutil.rmtree(d, ignore_errors=True)
    return stale


def resolve_resume(resume: str, output_dir: str | os.PathLike) -> Optional[Path]:
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


def check_compatible(state: dict, settings: dict, dataset: str, folder: Path) -> None:
    """Raise naming every setting in which the checkpoint differs from this run."""
    diffs = [f"{k}={state['settings'].get(k)!r} (now {v!r})" for k, v in settings.items()
             if state["settings"].get(k) != v]
    if state.get("dataset") != dataset:
        diffs.append("the training data changed")
    if diffs:
        raise TrailcamError(f"checkpoint {folder} was made with other settings: {'; '.join(diffs)}. "
                            "Resume with the same settings or start a new run.")


def prune(output_dir: str | os.PathLike, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (0 keeps all)."""
    if keep <= 0:
        return
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class CheckpointFormat:
    """One trainer's checkpoint layout: its ``kind`` (None for folders written before kinds were
    recorded), the safetensors file of its tensors, and the format version it reads."""

    tensors_file: str
    kind: Optional[str] = None
    version: int = 1

    def read_state(self, folder: str | os.PathLike) -> dict[str, Any]:
        try:
            state = json.loads((Path(folder) / STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TrailcamError(f"cannot read checkpoint {folder}: {exc}") from exc
        if state.get("version") != self.version or (self.kind and state.get("kind") != self.kind):
            what = f"a {self.kind} checkpoint" if self.kind else "a checkpoint"
            raise TrailcamError(f"{folder} is not {what} of format {self.version} "
                                f"(it has kind {state.get('kind')!r}, version {state.get('version')!r})")
        return state

    def save(self, folder: str | os.PathLike, state: dict, tensors: dict, training_state: dict,
             extra: Optional[Callable[[Path], None]] = None) -> Path:
        """Write one checkpoint folder atomically; ``extra(tmp_folder)`` may add files to it."""
        import torch
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(tmp / self.tensors_file))
            torch.save(training_state, tmp / TRAINING_STATE)
            if extra is not None:
                extra(tmp)
            stamp = {"version": self.version, **({"kind": self.kind} if self.kind else {})}
            (tmp / STATE).write_text(json.dumps({**state, **stamp}, indent=1), encoding="utf-8")
            os.chmod(tmp, 0o755)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    def load(self, folder: str | os.PathLike) -> tuple[dict, dict, dict]:
        """(state, tensors, training state) of a checkpoint folder."""
        import torch
        from safetensors.torch import load_file

        folder = Path(folder)
        state = self.read_state(folder)
        try:
            tensors = load_file(str(folder / self.tensors_file))
            training_state = torch.load(folder / TRAINING_STATE, map_location="cpu", weights_only=False)
        except (OSError, RuntimeError) as exc:
            raise TrailcamError(f"checkpoint {folder} is incomplete or damaged: {exc}") from exc
        return state, tensors, training_state
