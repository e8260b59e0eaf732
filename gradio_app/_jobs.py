"""Long jobs in the app: the core progress protocol on gr.Progress, Stop flags, worker threads."""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from trailcam_core.base import Cancelled


class StopFlags:
    """One stop flag per (browser session, job); a Stop button sets it, the progress adapter checks it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._flags: dict[tuple[str, str], threading.Event] = {}

    def begin(self, session: str, job: str) -> threading.Event:
        with self._lock:
            ev = self._flags[(session, job)] = threading.Event()
            return ev

    def end(self, session: str, job: str, flag: threading.Event) -> None:
        """Forget the flag of a finished job (a later Stop then says nothing is running)."""
        with self._lock:
            if self._flags.get((session, job)) is flag:
                del self._flags[(session, job)]

    def stop(self, session: str, job: str) -> bool:
        with self._lock:
            ev = self._flags.get((session, job))
        if ev is None:
            return False
        ev.set()
        return True


STOPS = StopFlags()


class GradioProgress:
    """The core protocol ``callback(done, total, message, preview)`` on top of ``gr.Progress``.

    Keeps the latest preview images (``previews``) for tabs that stream them, and raises
    ``Cancelled`` at the next report after the Stop button was pressed.
    """

    def __init__(self, progress: Any = None, stop: Optional[threading.Event] = None, keep_previews: int = 8):
        self.progress, self.stop = progress, stop
        self.forward = True        # False when the job runs in a worker thread: push() forwards instead
        self.keep = keep_previews
        self.previews: list = []
        self.done = self.total = 0
        self.message = ""
        self.reports = 0

    def __call__(self, done: int, total: int, message: str = "", preview: Any = None) -> None:
        self.done, self.total, self.message = done, total, message or self.message
        self.reports += 1
        if preview is not None:
            self.previews = (self.previews + [preview])[-self.keep:]
        if self.stop is not None and self.stop.is_set():
            raise Cancelled(f"stopped after {done} of {total}")
        if self.forward:
            self.push()

    def push(self) -> None:
        """Show the latest report in the page's progress bar (call from the event's own thread)."""
        if self.progress is not None and self.reports:
            try:
                self.progress((int(self.done), int(self.total) if self.total else None), desc=self.message or None)
            except Exception:      # a closed page must not kill the job
                pass

    @property
    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()


def watch(fn: Callable[[], Any], progress: GradioProgress, interval: float = 0.5):
    """Run ``fn()`` in a worker thread while the event streams: yields every ``interval`` seconds
    (the caller yields its own updates), then returns fn's result or raises its exception.
    Use as ``result = yield from watch(lambda: core(..., progress=cb), cb)``."""
    box: dict = {}
    progress.forward = False

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:      # handed to the event's thread below
            box["error"] = exc

    worker = threading.Thread(target=target, name="trailcam-job", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(interval)
            progress.push()
            yield None
    except GeneratorExit:             # the event was cancelled or the page closed: stop the job too
        if progress.stop is not None:
            progress.stop.set()
        raise
    if "error" in box:
        raise box["error"]
    return box.get("result")


def stream(job, make_update):
    """Yield ``make_update()`` each time a :func:`watch` ed job ticks; return the job's result.

    For a tab that streams a trainer's progress (``result = yield from stream(watch(...), update)``)."""
    try:
        while True:
            try:
                next(job)
            except StopIteration as done:
                return done.value
            yield make_update()
    finally:
        job.close()         # closing the event closes the watcher, which stops the job
