"""What every tab shares: the work folder, controls built from the core's option dataclasses
(``_forms``), the progress adapter and Stop flags (``_jobs``), stop buttons and readable errors.

Nothing here knows a stage: a tab calls one core function through :func:`event_fn`, which gives
the function a signature Gradio and ``gradio_client`` understand (one named parameter per input),
adapts the core progress protocol to ``gr.Progress`` and turns ``TrailcamError`` into ``gr.Error``
(a readable message in the page, never a stack trace).
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import gradio as gr

from trailcam_core.base import Cancelled, confine, TrailcamError

from ._forms import OptionForm, control, label_of  # noqa: F401  (re-exported for the tabs)
from ._jobs import STOPS, GradioProgress, StopFlags, stream, watch  # noqa: F401

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

    def new_out(self, name: str, what: str = "output folder") -> tuple[Path, str]:
        """Like :meth:`out`, but never into a folder that already holds something: ``name-2``,
        ``name-3`` ... instead. Returns (folder, a note saying so, or '')."""
        first = self.out(name, what)
        if not first.exists() or not any(first.iterdir()):
            return first, ""
        for i in range(2, 10_000):
            candidate = first.with_name(f"{first.name}-{i}")
            if not candidate.exists() or not any(candidate.iterdir()):
                return candidate, (f"`{self.rel(first)}` already exists, so this went to `{self.rel(candidate)}` "
                                   "(nothing was overwritten)")
        raise TrailcamError(f"{what} {name!r}: too many folders of that name; choose another name")

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


LABEL_SOURCES = ("Labels from the Dataset tab's subset", "Labels from a CCT JSON", "No labels")


def label_metadata(ctx: AppContext, labels_from: str, subset: Any, metadata: str) -> Optional[Path]:
    """The CCT JSON that lends a folder of crops their labels (the subset is saved for it), or None."""
    if labels_from == LABEL_SOURCES[0]:
        if subset is None:
            raise TrailcamError("no subset yet: make one in the Dataset tab, or choose another label source")
        return subset.save(ctx.out("subset"))["json"]
    if labels_from == LABEL_SOURCES[1]:
        return ctx.input_path(metadata, "CCT JSON")
    return None


def existing(path: str, what: str) -> Path:
    """An input path the user typed (a dataset, a model, a folder); clear error when it is missing."""
    text = (path or "").strip()
    if not text:
        raise TrailcamError(f"{what} is empty: type a path on the machine running the app")
    p = Path(text).expanduser()
    if not p.exists():
        raise TrailcamError(f"{what} not found: {p}")
    return p.resolve()


# ------------------------------------------------------------------------------------- errors
def readable(exc: BaseException) -> gr.Error:
    """The message a user sees for an exception: the core's own words, or a short one-liner."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, Cancelled):
        return gr.Error(f"Stopped: {exc}.", title="Stopped")
    if isinstance(exc, TrailcamError):
        return gr.Error(str(exc), title="Cannot do that")
    log.exception("unexpected error in the app")
    return gr.Error(f"Unexpected {type(exc).__name__}: {exc} (details in the server log)", title="Error")


def event_fn(fn: Callable, names: Sequence[str], *, progress: bool = False, stop_job: Optional[str] = None,
             stopped: Optional[Callable[[Cancelled], Any]] = None) -> Callable:
    """Expose ``fn(**values[, progress=cb])`` as a Gradio event function with parameters ``names``.

    ``names`` matches the event's ``inputs`` one to one, so ``gradio_client`` can call the endpoint
    with keywords.  With ``progress`` the function receives a :class:`GradioProgress`; with
    ``stop_job`` that progress also watches the session's stop flag for that job.  Generator
    functions stay generators (streamed updates).  Exceptions become readable ``gr.Error``;
    with ``stopped``, a Stop is no error: ``stopped(exc)`` gives the outputs (a clean message).
    """
    names = list(names)
    n = len(names)
    want_request = stop_job is not None

    def _prepare(args):
        values = dict(zip(names, args[:n]))
        extra, flag = {}, None
        if progress or stop_job:
            request = args[n] if want_request else None
            if stop_job is not None:
                session = getattr(request, "session_hash", None) or "default"
                flag = (session, STOPS.begin(session, stop_job))
            extra["progress"] = GradioProgress(args[-1] if progress else None, flag[1] if flag else None)
        return values, extra, flag

    def _done(flag):
        if flag is not None:
            STOPS.end(flag[0], stop_job, flag[1])

    if inspect.isgeneratorfunction(fn):
        def wrapper(*args):
            values, extra, flag = _prepare(args)
            try:
                yield from fn(**values, **extra)
            except Cancelled as exc:
                if stopped is None:
                    raise readable(exc) from None
                yield stopped(exc)
            except Exception as exc:
                raise readable(exc) from None
            finally:
                _done(flag)
    else:
        def wrapper(*args):
            values, extra, flag = _prepare(args)
            try:
                return fn(**values, **extra)
            except Cancelled as exc:
                if stopped is None:
                    raise readable(exc) from None
                return stopped(exc)
            except Exception as exc:
                raise readable(exc) from None
            finally:
                _done(flag)

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
    wrapper.stop_job = stop_job  # type: ignore[attr-defined]   (long_job clears that job's Stop note after it)
    return wrapper


def stopped_message(n_outputs: int, status_index: int, what: str = "") -> Callable[[Cancelled], tuple]:
    """For ``event_fn(stopped=...)``: keep every output as it is, put "Stopped ..." in one of them."""
    def outputs(exc: Cancelled) -> Any:
        detail = str(exc)
        detail = detail[len("stopped "):] if detail.lower().startswith("stopped ") else detail
        text = f"**Stopped** {detail}." + (f" {what}" if what else "")
        values = [gr.skip()] * n_outputs
        values[status_index] = text
        return values[0] if n_outputs == 1 else tuple(values)
    return outputs


_STOP_NOTES: dict[tuple[int, str], list] = {}
_CONTROLS = (gr.State, gr.Dropdown, gr.Textbox, gr.Slider, gr.Number, gr.Checkbox, gr.CheckboxGroup, gr.Radio)


def _root_id() -> int:
    from gradio.context import Context

    return id(Context.root_block)


def stop_button(job: str, api_name: str, label: str = "Stop") -> gr.Button:
    """A Stop button for ``job``: sets the session's flag; the job stops at its next progress report."""
    btn = gr.Button(label, variant="stop", size="sm", elem_id=api_name)

    def stop(request: gr.Request) -> str:
        session = getattr(request, "session_hash", None) or "default"
        return "Stopping at the next step..." if STOPS.stop(session, job) else "Nothing is running."

    note = gr.Markdown("", elem_classes="trailcam-stop-note")
    btn.click(stop, inputs=None, outputs=note, api_name=api_name, concurrency_limit=None, queue=True)
    _STOP_NOTES.setdefault((_root_id(), job), []).append(note)
    return btn


def long_job(trigger: Any, fn: Callable, inputs: list, outputs: list, api_name: str, **kw: Any):
    """Wire a long event: shared concurrency slot, progress shown on its outputs.

    When the job ends (done, failed or stopped), its Stop button's "Stopping..." note is cleared."""
    # progress and error overlays go on the results, never on controls (a badge there blocks clicks)
    outs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    shown = [o for o in outs if not isinstance(o, _CONTROLS)]
    if shown and len(shown) < len(outs):
        kw.setdefault("show_progress_on", shown)
    event = trigger(fn, inputs=inputs, outputs=outputs, api_name=api_name, concurrency_id=HEAVY,
                    concurrency_limit=1, show_progress="full", **kw)
    notes = _STOP_NOTES.get((_root_id(), getattr(fn, "stop_job", None) or ""), [])
    if notes:
        event.then(lambda: [""] * len(notes) if len(notes) > 1 else "", None, notes, queue=False,
                   show_progress="hidden", api_visibility="private")
    return event


# ----------------------------------------------------------------------------------- pictures
def picture(path: str | os.PathLike, side: int = THUMB):
    """(small in-memory copy, None), or (a placeholder saying why, the reason) for a bad image.

    Galleries never serve files from the user's folders, and one bad file never breaks a view."""
    from trailcam_core.base import DataError
    from trailcam_core.base import open_image_safely, placeholder

    try:
        im = open_image_safely(path, Path(path).name, draft=(side, side))
    except DataError as exc:
        reason = str(exc).split(": ", 1)[-1]
        return placeholder(side, reason, Path(path).name), reason
    im.thumbnail((side, side))
    return im, None


def thumbnail(path: str | os.PathLike, side: int = THUMB):
    """A small in-memory copy of an image, or a placeholder that says why it cannot be shown."""
    return picture(path, side)[0]


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
