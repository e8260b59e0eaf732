"""The one progress protocol every long job reports through.

A progress callback is ``callback(done, total, message="", preview=None)``; ``preview`` is an
optional PIL image (a sample, a crop).  Each face adapts it: tqdm in the CLI, gr.Progress in
Gradio, comfy's ProgressBar in ComfyUI.  A callback may raise ``errors.Cancelled`` to stop the
job; jobs that own state (training) catch it, save, and re-raise.
"""
from __future__ import annotations

from typing import Any, Optional, Protocol


class ProgressCallback(Protocol):
    def __call__(self, done: int, total: int, message: str = "", preview: Any = None) -> None: ...


def null_progress(done: int, total: int, message: str = "", preview: Any = None) -> None:
    """A callback that ignores everything."""


def ensure(callback: Optional[ProgressCallback]) -> ProgressCallback:
    """Return ``callback`` or the null callback when None."""
    return callback if callback is not None else null_progress


class TqdmProgress:
    """Adapter for the CLI: one tqdm bar, created on the first report. Use as a context manager."""

    def __init__(self, desc: str = "", unit: str = "it", disable: bool | None = None):
        self.desc, self.unit, self.disable = desc, unit, disable
        self.bar = None

    def __call__(self, done: int, total: int, message: str = "", preview: Any = None) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, disable=self.disable, dynamic_ncols=True)
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        if message:
            self.bar.set_postfix_str(message, refresh=False)
        self.bar.refresh()

    def __enter__(self) -> "TqdmProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

