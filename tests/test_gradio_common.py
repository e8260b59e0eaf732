"""The app's shared adapters, without a server: controls from options, event functions, Stop, paths."""
from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass

import gradio as gr
import pytest

from gradio_app._common import STOPS, AppContext, GradioProgress, OptionForm, event_fn, watch
from trailcam_core.base.errors import Cancelled, TrailcamError, UnsafePathError
from trailcam_core.base.options import option


@dataclass
class Opts:
    size: int = option(512, "Side in pixels", min=16, max=4096)
    mode: str = option("center", "Mode", choices=("center", "bbox"))
    sharp: bool = option(True, "Sharpen")
    scale: float = option(1.5, "Scale")
    names: list[str] = option(["a", "b"], "Names")
    prompts: list[str] = option(["x, y"], "Prompts")
    hidden: int = option(3, "Not in the UI", ui=False)

    def __post_init__(self):
        if self.size % 2:
            raise TrailcamError(f"size must be even, got {self.size}")


def test_controls_follow_the_option_types():
    with gr.Blocks():
        form = OptionForm(Opts, main=("size", "mode"), overrides={"prompts": {"separator": "\n"}})
    kinds = dict(zip(form.names, (type(c).__name__ for c in form.components)))
    assert kinds == {"size": "Slider", "mode": "Dropdown", "sharp": "Checkbox", "scale": "Number",
                     "names": "Textbox", "prompts": "Textbox"}
    size = form.components[0]
    assert (size.minimum, size.maximum, size.value, size.info) == (16, 4096, 512, "Side in pixels")
    assert form.components[-1].value == "x, y"          # one prompt per line, commas kept
    opts = form.parse({"size": 64.0, "mode": "bbox", "sharp": False, "scale": "", "names": "p, q ,",
                       "prompts": "trailcam photo, coyote\nnight, owl\n"})
    assert opts == Opts(size=64, mode="bbox", sharp=False, scale=1.5, names=["p", "q"],
                        prompts=["trailcam photo, coyote", "night, owl"])
    with pytest.raises(TrailcamError, match="size must be even"):
        form.parse({"size": 65})


def test_prefixed_forms_share_an_event():
    with gr.Blocks():
        a = OptionForm(Opts, only=("mode",))
        b = OptionForm(Opts, only=("mode",), prefix="b_")
    assert a.names == ["mode"] and b.names == ["b_mode"]
    values = {"mode": "center", "b_mode": "bbox"}
    assert (a.parse(values).mode, b.parse(values).mode) == ("center", "bbox")


def test_event_fn_signature_and_readable_errors():
    def run(source, size, progress):
        if source == "bad":
            raise TrailcamError("bad.json: record 3 has no id")
        if source == "bug":
            raise KeyError("oops")
        return f"{source}:{size}:{type(progress).__name__}"

    fn = event_fn(run, ["source", "size"], progress=True)
    params = list(inspect.signature(fn).parameters.values())
    assert [p.name for p in params] == ["source", "size", "progress"]
    assert isinstance(params[-1].default, gr.Progress)
    assert fn("a", 3, None) == "a:3:GradioProgress"
    with pytest.raises(gr.Error) as err:
        fn("bad", 3, None)
    assert err.value.message == "bad.json: record 3 has no id"
    with pytest.raises(gr.Error) as err:
        fn("bug", 3, None)
    assert err.value.message.startswith("Unexpected KeyError") and "Traceback" not in err.value.message


def test_stop_flag_stops_the_job_at_its_next_report():
    started, seen = threading.Event(), []

    def job(progress):
        for i in range(1000):
            progress(i, 1000, f"item {i}")
            seen.append(i)
            started.set()
            time.sleep(0.01)
        return "finished"

    fn = event_fn(job, [], progress=True, stop_job="unit")
    request = type("R", (), {"session_hash": "s1"})()
    result = {}

    def call():
        try:
            result["value"] = fn(request, None)
        except gr.Error as exc:
            result["error"] = exc.message

    t = threading.Thread(target=call)
    t.start()
    assert started.wait(10)
    assert STOPS.stop("s2", "unit") is False           # another session's Stop does nothing
    assert STOPS.stop("s1", "unit") is True
    t.join(10)
    assert result["error"].startswith("Stopped") and len(seen) < 1000
    assert STOPS.stop("s1", "unit") is False           # the finished job's flag is gone


def test_watch_streams_then_returns_or_raises():
    cb = GradioProgress()

    def work():
        for i in range(3):
            cb(i + 1, 3, "step")
            time.sleep(0.05)
        return 42

    gen = watch(work, cb, interval=0.02)
    ticks = 0
    try:
        while True:
            next(gen)
            ticks += 1
    except StopIteration as done:
        assert done.value == 42
    assert ticks >= 1 and cb.done == 3

    def boom():
        raise TrailcamError("no images in folder x")

    with pytest.raises(TrailcamError, match="no images"):
        list(watch(boom, GradioProgress(), interval=0.01))

    stop = threading.Event()
    cb = GradioProgress(stop=stop)

    def slow():
        for i in range(500):
            cb(i, 500)
            time.sleep(0.01)

    gen = watch(slow, cb, interval=0.01)
    next(gen)
    gen.close()                      # the page went away: the job is told to stop
    assert stop.is_set()


def test_outputs_stay_in_the_work_folder(tmp_path):
    ctx = AppContext(workdir=tmp_path)
    assert ctx.out("crops") == (tmp_path / "crops").resolve()
    assert ctx.out(str(tmp_path / "a" / "b")) == (tmp_path / "a" / "b").resolve()
    with pytest.raises(UnsafePathError):
        ctx.out("../elsewhere")
    with pytest.raises(TrailcamError, match="outside the work folder"):
        ctx.out("/etc/trailcam")
    with pytest.raises(TrailcamError, match="not found"):
        ctx.input_path("no-such-folder", "image folder")


def test_progress_adapter_drives_gr_progress():
    calls = []
    cb = GradioProgress(lambda value, desc=None: calls.append((value, desc)))
    cb(2, 10, "crop a.jpg")
    cb(3, 0)
    assert calls == [((2, 10), "crop a.jpg"), ((3, None), "crop a.jpg")]
    with pytest.raises(Cancelled):
        stopped = GradioProgress(stop=threading.Event())
        stopped.stop.set()
        stopped(1, 2)


def test_app_builds_without_the_sample(tmp_path):
    from gradio_app.app import TABS, build_app

    demo = build_app(sample=False, workdir=tmp_path)
    assert demo.trailcam_context.sample_json is None and not (tmp_path / "sample").exists()
    config = demo.config
    tabs = [c for c in config["components"] if c.get("type") == "tabitem"]
    assert [t["props"]["label"] for t in tabs] == [title for _, title in TABS]
    texts = [str(c.get("props", {}).get("value")) for c in config["components"] if c.get("type") == "markdown"]
    assert not [t for t in texts if "not available" in t]
    assert "dataset_open_sample" not in {fn.api_name for fn in demo.fns.values()}
