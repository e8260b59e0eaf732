"""The trailcam Gradio app: one Blocks with a tab per stage, each tab a thin face over trailcam_core.

    from gradio_app.app import build_app, launch
    launch(port=7860)                     # http://127.0.0.1:7860, the bundled sample loaded

Every output goes below one work folder, which is also the only folder the server may serve
(``allowed_paths``); galleries show in-memory thumbnails, so the user's photo folders are read
but never served as files.  Binds 127.0.0.1 unless told otherwise; share is off; auth is opt-in.
"""
from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any, Optional

import gradio as gr

from ._common import AppContext, missing_stage

log = logging.getLogger("trailcam.app")

# (module, tab title); each module defines build(ctx) and is built inside its own gr.Tab.
TABS = [
    ("dataset", "Dataset"),
    ("crop", "Crop"),
    ("tags", "Tags & captions"),
    ("cull", "Cull"),
    ("mosaic", "Mosaic"),
    ("train", "Train LoRA"),
    ("generate", "Generate"),
    ("gan", "GAN"),
]

CSS = """
.trailcam-status {min-height: 2em}
footer {display: none !important}
/* gallery captions wrap instead of being cut off (ids, labels and reasons are long) */
.caption-label {white-space: normal !important; max-width: 100% !important; overflow: visible !important;
                text-overflow: clip !important; word-break: break-word; line-height: 1.25}
"""


def default_workdir() -> Path:
    """``$TRAILCAM_WORKDIR`` or ``./trailcam-work``."""
    return Path(os.environ.get("TRAILCAM_WORKDIR") or "trailcam-work").expanduser().resolve()


def make_context(workdir: Optional[str | os.PathLike] = None, sample: bool = True) -> AppContext:
    """Create the work folder and, with ``sample``, the bundled synthetic sample inside it."""
    wd = Path(workdir).expanduser().resolve() if workdir else default_workdir()
    wd.mkdir(parents=True, exist_ok=True)
    sample_json = None
    if sample:
        from trailcam_core.samples import ensure_sample

        sample_json = ensure_sample(wd / "sample")
    return AppContext(workdir=wd, sample_json=sample_json)


def build_app(sample: bool = True, workdir: Optional[str | os.PathLike] = None,
              ctx: Optional[AppContext] = None) -> gr.Blocks:
    """Build (not launch) the Blocks app. ``sample`` loads the synthetic sample on page load."""
    ctx = ctx or make_context(workdir, sample)
    with gr.Blocks(title="trailcam", analytics_enabled=False) as demo:
        gr.Markdown(f"# trailcam\nCamera-trap archives to curated collections, mosaics and LoRAs. "
                    f"Work folder: `{ctx.workdir}`")
        with gr.Tabs():
            for module_name, title in TABS:
                with gr.Tab(title, id=module_name):
                    try:
                        module = importlib.import_module(f"{__package__}.{module_name}")
                    except ImportError as exc:
                        log.warning("tab %s unavailable: %s", title, exc)
                        missing_stage(title, exc)
                        continue
                    module.build(ctx)
        for hook in ctx.shared.get("on_load", []):
            demo.load(**hook)
    demo.trailcam_context = ctx   # type: ignore[attr-defined]  (tests and launch() read it)
    return demo


def launch(host: str = "127.0.0.1", port: Optional[int] = None, *, share: bool = False,
           auth: Any = None, workdir: Optional[str | os.PathLike] = None, sample: bool = True,
           prevent_thread_lock: bool = False, quiet: bool = False, demo: Optional[gr.Blocks] = None):
    """Build and serve the app. Returns what ``Blocks.launch`` returns (app, local url, share url)."""
    demo = demo or build_app(sample=sample, workdir=workdir)
    ctx: AppContext = demo.trailcam_context   # type: ignore[attr-defined]
    demo.queue(default_concurrency_limit=4)
    out = demo.launch(server_name=host, server_port=port, share=share, auth=auth,
                      allowed_paths=[str(ctx.workdir)], prevent_thread_lock=True,
                      quiet=quiet, show_error=True, theme=gr.themes.Soft(), css=CSS,
                      footer_links=["api", "settings"], ssr_mode=False)
    from .cull_routes import mount      # the culling page, on the same server and port

    mount(demo.app, ctx.workdir)
    if not prevent_thread_lock:
        demo.block_thread()
    return out
