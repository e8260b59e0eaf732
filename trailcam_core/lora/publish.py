"""Train a LoRA into a destination file, or reuse it when nothing that shapes it changed.

Front ends that run the same job again and again (a ComfyUI graph re-queued, an app button
pressed twice) call :func:`train_or_reuse`: it continues an interrupted run from its newest
checkpoint when that checkpoint fits the data and options, trains otherwise, moves the LoRA
atomically to ``dest`` (one copy, not one in the run folder too) (e.g. ComfyUI's ``models/loras``) and records in the run folder what
``dest`` was trained from, so the next identical call returns at once::

    outcome = train_or_reuse("dataset/", "sd_xl_base_1.0.safetensors", "runs/night", options,
                             dest=Path("models/loras/night.safetensors"))
    outcome.trained, outcome.lora, outcome.losses[-1], outcome.summary()
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Optional

from trailcam_core.base import atomic_path, list_checkpoints, ProgressCallback, TrailcamError, write_json
from trailcam_core.lora.checkpoint import read_state
from trailcam_core.lora.options import TrainOptions
from trailcam_core.lora.train import LoraTrainer

PUBLISHED = "published.json"        # in the run folder: what dest was trained from

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    """What :func:`train_or_reuse` did."""

    lora: Path                      # the published file (dest)
    trained: bool                   # False: dest was already up to date, nothing ran
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    resumed_from: Optional[int] = None

    def summary(self) -> str:
        if not self.trained:
            return f"{self.lora.name}: up to date (trained earlier on the same data and options)"
        text = f"{self.lora.name}: trained {self.steps} steps"
        if self.resumed_from is not None:
            text += f" (resumed from the checkpoint at step {self.resumed_from})"
        if self.losses:
            text += f", final loss {self.losses[-1]:.4f}"
        return text


def train_or_reuse(data, base_model: str | Path, work_dir: str | Path, options: TrainOptions, dest: str | Path,
                   resume: bool = True, progress: Optional[ProgressCallback] = None,
                   before_training: Optional[Callable[[], None]] = None,
                   training_context: Callable[[], ContextManager] = contextlib.nullcontext) -> TrainOutcome:
    """Make ``dest`` the LoRA trained on ``data`` over ``base_model`` with ``options``.

    ``work_dir`` holds the run (caches, checkpoints, samples, the record of what ``dest`` came
    from). ``resume``: continue the newest checkpoint when it fits (else train afresh).
    ``before_training`` runs only when training is needed (a host freeing memory);
    ``training_context`` wraps the training (a host that runs under ``torch.inference_mode``
    passes one that turns gradients back on). Raises TrailcamError for bad input and re-raises
    ``Cancelled`` after the trainer saved a checkpoint.
    """
    work, dest = Path(work_dir), Path(dest)
    trainer, resumed = None, None
    if resume and list_checkpoints(work):
        try:   # continue an interrupted run when its checkpoint fits these data and options
            trainer = LoraTrainer(data, base_model, work, dataclasses.replace(options, resume="latest"))
            resumed = read_state(list_checkpoints(work)[-1]).get("step")
        except TrailcamError as exc:
            log.info("%s: starting afresh (%s)", options.output_name, exc)
    if trainer is None:
        trainer = LoraTrainer(data, base_model, work, options)
    key = trainer.training_key()
    record = work / PUBLISHED
    done = _read_json(record)
    if done.get("key") == key and dest.is_file() and done.get("size") == dest.stat().st_size:
        losses = _read_json(work / f"{options.output_name}.losses.json").get("losses", [])
        return TrainOutcome(dest, False, int(done.get("steps", 0)), losses)
    if before_training is not None:
        before_training()
    with training_context():
        result = trainer.run(progress)
    with atomic_path(dest) as tmp:
        # one copy per trained LoRA: the run's file moves to dest (a copy only across file systems)
        shutil.move(str(result.lora_path), str(tmp))
    write_json(record, {"key": key, "size": dest.stat().st_size, "steps": result.steps, "dest": str(dest)})
    return TrainOutcome(dest, True, result.steps, result.losses, resumed)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
