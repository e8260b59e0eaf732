"""What every tab shares: the work folder, controls built from the core's option dataclasses,
the progress adapter, stop buttons and readable errors.

Nothing here knows a stage: a tab calls one core function through :func:`event_fn`, which gives
the function a signature Gradio and ``gradio_client`` understand (one named parameter per input),
adapts the core progress protocol to ``gr.Progress`` and turns ``TrailcamError`` into ``gr.Error``
(a readable message in the page, never a stack trace).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import gradio as gr

from trailcam_core import options as core_options
from trailcam_core.errors import Cancelled, TrailcamError
from trailcam_core.paths import confine

log = logging.getLogger("trailcam.app")

HEAVY = "trailcam-heavy"      # concurrency id shared by every long job: one at a time on the machine
THUMB = 256                   # gallery thumbnail side


# --------------------------------------------------------------------------------- work folder
@dataclass
class AppContext:
    """The app's one work folder: every output goes below it, and it is the only path Gradio serves."""

    workdir: Path
    sample_json: Optional[Path] = None
    shared: dict = dataclasses.field(default_factory=dict)   # components tabs hand to each other

    def out(self, name: str, what: str = "output folder") -> Path:
        """Resolve a user-typed output name inside the work folder (absolute paths inside it are fine)."""
        name = (name or "").strip()
        if not name:
            raise TrailcamError(f"{what} is empty")
        p = Path(name).expanduser()
        if p.is_absolute():
            try:
                name = p.resolve().relative_to(self.workdir.resolve()).as_posix()
            except ValueError:
                raise TrailcamError(f"{what} {str(p)!r} is outside the work folder {self.workdir}; "
                                    "outputs go below the work folder") from None
        return confine(self.workdir, name, what)

    def input_path(self, text: str, what: str) -> Path:
        """An input the user typed: relative names are looked up in the work folder, absolute paths as is."""
        text = (text or "").strip()
        if text and not Path(text).expanduser().is_absolute():
            text = str(self.workdir / text)
        return existing(text, what)

    def rel(self, path: str | os.PathLike) -> str:
        """A path as the user sees it: relative to the work folder when inside it."""
        try:
            return Path(path).resolve().relative_to(self.workdir.resolve()).as_posix()
        except ValueError:
            return str(path)


def existing(path: str, what: str) -> Path:
    """An input path the user typed (a dataset, a model, a folder); clear error when it is missing."""
    text = (path or "").strip()
    if not text:
        raise TrailcamError(f"{what} is empty: type a path on the machine running the app")
    p = Path(text).expanduser()
    if not p.exists():
        raise TrailcamError(f"{what} not found: {p}")
    return p.resolve()


# ------------------------------------------------------------------------ controls from options
def label_of(name: str) -> str:
    return name.replace("_", " ").capitalize()


def control(info: core_options.OptionInfo, **override: Any) -> gr.components.Component:
    """One Gradio control for one documented option (type, default, help, choices, bounds)."""
    kw: dict[str, Any] = dict(label=label_of(info.name), info=info.help)
    value = override.pop("value", info.default)
    kw.update(override)
    if info.kind is bool:
        return gr.Checkbox(value=bool(value), **kw)
    if info.kind is list:
        if info.choices or "choices" in kw:       # a list picked from known values (fixed or filled later)
            kw.setdefault("choices", list(info.choices or ()))
            return gr.Dropdown(value=list(value or []), multiselect=True, **kw)
        return gr.Textbox(value=value if isinstance(value, str) else ", ".join(str(v) for v in (value or [])), **kw)
    if info.choices:
        return gr.Dropdown(choices=list(info.choices), value=value, **kw)
    if info.kind in (int, float):
        if info.min is not None and info.max is not None:
            step = info.step or (1 if info.kind is int else (info.max - info.min) / 100)
            return gr.Slider(minimum=info.min, maximum=info.max, step=step, value=value, **kw)
        return gr.Number(value=value, precision=0 if info.kind is int else None, minimum=info.min,
                         maximum=info.max, **kw)
    return gr.Textbox(value="" if value is None else str(value), **kw)


class OptionForm:
    """Controls for an options dataclass, built from ``describe(cls)``; ``parse`` turns values back."""

    def __init__(self, cls: type, skip: Iterable[str] = (), overrides: Optional[dict] = None,
                 only: Optional[Sequence[str]] = None, main: Optional[Sequence[str]] = None,
                 more_label: str = "More options", prefix: str = ""):
        """``only``: just these options; ``main``: these shown, the others in a closed accordion;
        ``prefix``: put before each parameter name (two forms with a same-named option in one event)."""
        self.cls = cls
        self.prefix = prefix
        overrides = overrides or {}
        skip = set(skip)
        infos = [i for i in core_options.describe(cls) if i.ui and i.name not in skip]
        if only is not None:
            infos = [i for i in infos if i.name in only]
        first = [i for i in infos if main is None or i.name in main]
        rest = [i for i in infos if main is not None and i.name not in main]
        self.infos = first + rest
        # list options typed as text: comma-separated, or one per line with overrides {"separator": "\n"}
        self.separators = {n: o.pop("separator") for n, o in
                           ((n, dict(o)) for n, o in overrides.items()) if "separator" in o}
        overrides = {n: {k: v for k, v in o.items() if k != "separator"} for n, o in overrides.items()}
        for n, sep in self.separators.items():
            overrides[n].setdefault("lines", 3)
            if "value" in overrides[n] and isinstance(overrides[n]["value"], list):
                overrides[n]["value"] = sep.join(overrides[n]["value"])

        def make(i):
            o = dict(overrides.get(i.name, {}))
            o.setdefault("elem_id", f"{cls.__name__}-{i.name}")     # stable handles for browser tests and CSS
            if i.name in self.separators and "value" not in o:
                o["value"] = self.separators[i.name].join(str(v) for v in (i.default or []))
            return control(i, **o)

        self.components = [make(i) for i in first]
        if rest:
            with gr.Accordion(more_label, open=False):
                self.components += [make(i) for i in rest]
        self.names = [prefix + i.name for i in self.infos]

    def values(self, kwargs: dict) -> dict:
        """Pick this form's values out of an event's keyword values and convert them to option types."""
        out = {}
        for info in self.infos:
            v = kwargs.get(self.prefix + info.name)
            if info.kind is list and isinstance(v, str):
                sep = self.separators.get(info.name, ",")
                v = [info.item_kind(s.strip()) for s in v.split(sep) if s.strip()]
            elif info.kind is int and v is not None and v != "":
                v = int(round(float(v)))
            elif info.kind is float and v is not None and v != "":
                v = float(v)
            elif info.kind is str and v is None:
                v = ""
            if v is None or v == "" and info.kind in (int, float):
                continue        # left empty: the dataclass default applies
            out[info.name] = v
        return out

    def parse(self, kwargs: dict, **extra: Any):
        """Build the options dataclass; bad values raise TrailcamError naming the option."""
        values = self.values(kwargs)
        values.update(extra)
        try:
            return core_options.from_mapping(self.cls, values, strict=False)
        except (TypeError, ValueError) as exc:
            raise TrailcamError(f"invalid {self.cls.__name__} value: {exc}") from exc


# --------------------------------------------------------------------------- stop and progress
class StopFlags:
    """One stop flag per (browser session, job); a Stop button sets it, the progress adapter checks it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._flags: dict[tuple[str, str], threading.Event] = {}

    def begin(self, session: str, job: str) -> threading.Event:
        with self._lock:
            ev = self._flags[(session, job)] = threading.Event()
            return ev

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


# ------------------------------------------------------------------------------------- errors
def readable(exc: BaseException) -> gr.Error:
    """The message a user sees for an exception: the core's own words, or a short one-liner."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, Cancelled):
        return gr.Error(f"Stopped: {exc}. Run again to resume.", title="Stopped")
    if isinstance(exc, TrailcamError):
        return gr.Error(str(exc), title="Cannot do that")
    log.exception("unexpected error in the app")
    return gr.Error(f"Unexpected {type(exc).__name__}: {exc} (details in the server log)", title="Error")


def event_fn(fn: Callable, names: Sequence[str], *, progress: bool = False, stop_job: Optional[str] = None) -> Callable:
    """Expose ``fn(**values[, progress=cb])`` as a Gradio event function with parameters ``names``.

    ``names`` matches the event's ``inputs`` one to one, so ``gradio_client`` can call the endpoint
    with keywords.  With ``progress`` the function receives a :class:`GradioProgress`; with
    ``stop_job`` that progress also watches the session's stop flag for that job.  Generator
    functions stay generators (streamed updates).  Exceptions become readable ``gr.Error``.
    """
    names = list(names)
    n = len(names)
    want_request = stop_job is not None

    def _prepare(args):
        values = dict(zip(names, args[:n]))
        extra = {}
        if progress or stop_job:
            request = args[n] if want_request else None
            stop = None
            if stop_job is not None:
                session = getattr(request, "session_hash", None) or "default"
                stop = STOPS.begin(session, stop_job)
            extra["progress"] = GradioProgress(args[-1] if progress else None, stop)
        return values, extra

    if inspect.isgeneratorfunction(fn):
        def wrapper(*args):
            values, extra = _prepare(args)
            try:
                yield from fn(**values, **extra)
            except Exception as exc:
                raise readable(exc) from None
    else:
        def wrapper(*args):
            values, extra = _prepare(args)
            try:
                return fn(**values, **extra)
            except Exception as exc:
                raise readable(exc) from None

    params = [inspect.Parameter(nm, inspect.Parameter.POSITIONAL_OR_KEYWORD) for nm in names]
    annotations: dict[str, Any] = {}
    if want_request:
        params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request))
        annotations["request"] = gr.Request
    if progress:
        params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=gr.Progress(track_tqdm=True)))
    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = annotations
    wrapper.__name__ = getattr(fn, "__name__", "handler")
    wrapper.__doc__ = fn.__doc__
    return wrapper


def stop_button(job: str, api_name: str, label: str = "Stop") -> gr.Button:
    """A Stop button for ``job``: sets the session's flag; the job stops at its next progress report."""
    btn = gr.Button(label, variant="stop", size="sm")

    def stop(request: gr.Request) -> str:
        session = getattr(request, "session_hash", None) or "default"
        return "Stopping at the next step..." if STOPS.stop(session, job) else "Nothing is running."

    note = gr.Markdown("", elem_classes="trailcam-stop-note")
    btn.click(stop, inputs=None, outputs=note, api_name=api_name, concurrency_limit=None, queue=True)
    return btn


def long_job(trigger: Any, fn: Callable, inputs: list, outputs: list, api_name: str, **kw: Any):
    """Wire a long event: shared concurrency slot, progress shown on its outputs."""
    return trigger(fn, inputs=inputs, outputs=outputs, api_name=api_name, concurrency_id=HEAVY,
                   concurrency_limit=1, show_progress="full", **kw)


# ----------------------------------------------------------------------------------- pictures
def thumbnail(path: str | os.PathLike, side: int = THUMB):
    """A small in-memory copy of an image (galleries never serve files from the user's folders)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (side, side))
            im = im.convert("RGB")
            im.thumbnail((side, side))
            return im
    except (OSError, ValueError) as exc:
        raise TrailcamError(f"cannot read image {path}: {exc}") from exc


def report_markdown(report: Any, max_skipped: int = 10) -> str:
    """A BatchReport as a short Markdown block: summary line, then skipped items with reasons."""
    lines = [f"**{report.summary()}**"]
    for item, reason in report.skipped[:max_skipped]:
        lines.append(f"- skipped `{item}`: {reason}")
    if len(report.skipped) > max_skipped:
        lines.append(f"- ... and {len(report.skipped) - max_skipped} more skipped")
    return "\n".join(lines)


def missing_stage(name: str, exc: BaseException) -> None:
    """Shown in a tab whose core stage cannot be imported (a broken install), instead of a crash."""
    gr.Markdown(f"**The {name} stage is not available in this installation:** `{exc}`")
