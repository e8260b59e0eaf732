"""Train a generator into a destination file, or reuse it when nothing that shapes it changed.

For faces that re-run the same job (a ComfyUI graph re-queued, a button pressed twice): an
interrupted run continues from its newest checkpoint when it fits; the generator (and its
directions, when fitted) is copied atomically to ``dest``; the run folder records what ``dest``
was trained from, so the next identical call returns at once.

    outcome = train_or_reuse("Favorites/", "runs/gan", options, dest=Path("models/gan/night.safetensors"))
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
from trailcam_core.gan.checkpoint import read_state
from trailcam_core.gan.config import GanTrainOptions
from trailcam_core.gan.data import load_images
from trailcam_core.gan.train import GanTrainer

PUBLISHED = "published.json"
log = logging.getLogger(__name__)


@dataclass
class GanTrainOutcome:
    generator: Path
    trained: bool
    steps: int = 0
    d_losses: list[float] = field(default_factory=list)
    g_losses: list[float] = field(default_factory=list)
    resumed_from: Optional[int] = None
    skipped: list = field(default_factory=list)

    def summary(self) -> str:
        if not self.trained:
            return f"{self.generator.name}: up to date (trained earlier on the same images and options)"
        text = f"{self.generator.name}: trained {self.steps} steps"
        if self.resumed_from is not None:
            text += f" (resumed from step {self.resumed_from})"
        if self.d_losses:
            text += f", final D {self.d_losses[-1]:.3f} G {self.g_losses[-1]:.3f}"
        if self.skipped:
            text += f"; {len(self.skipped)} unreadable images skipped"
        return text


def train_or_reuse(data, work_dir, options: GanTrainOptions, dest, resume: bool = True,
                   progress: Optional[ProgressCallback] = None,
                   training_context: Callable[[], ContextManager] = contextlib.nullcontext) -> GanTrainOutcome:
    """Make ``dest`` the generator trained on ``data`` with ``options`` (see the module docstring)."""
    work, dest = Path(work_dir), Path(dest)
    images = load_images(data, options.size, exclude=work)
    trainer = GanTrainer(images, work, dataclasses.replace(options, resume=""))
    key = trainer.training_key()
    done = _read_json(work / PUBLISHED)
    if done.get("key") == key and dest.is_file() and done.get("size") == dest.stat().st_size:
        losses = _read_json(work / f"{options.output_name}.losses.json")
        return GanTrainOutcome(dest, False, int(done.get("steps", 0)), losses.get("d_losses", []),
                               losses.get("g_losses", []), skipped=list(images.skipped))
    resumed = None
    if resume and list_checkpoints(work):
        try:       # continue an interrupted run (or a shorter one) when its checkpoint fits
            step = int(read_state(list_checkpoints(work)[-1]).get("step", 0))
            if step < options.steps:
                trainer = GanTrainer(images, work, dataclasses.replace(options, resume="latest"))
                resumed = step
        except TrailcamError as exc:
            log.info("%s: starting afresh (%s)", options.output_name, exc)
    if resumed is None and list_checkpoints(work):
        # checkpoints of other settings in this run folder would pass for the new run's: clear them
        log.info("%s: clearing the checkpoints of an earlier run in %s", options.output_name, work)
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
    with training_context():
        result = trainer.run(progress)
    with atomic_path(dest) as tmp:
        shutil.copyfile(result.generator_path, tmp)
    write_json(dest.with_suffix(".json"), json.loads(result.generator_path.with_suffix(".json").read_text()))
    write_json(work / PUBLISHED, {"key": key, "size": dest.stat().st_size, "steps": result.steps, "dest": str(dest)})
    return GanTrainOutcome(dest, True, result.steps, result.d_losses, result.g_losses, resumed, list(images.skipped))


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
