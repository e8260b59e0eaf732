"""Gradio face of trailcam: one tab per stage over trailcam_core (see gradio_app.app)."""
from __future__ import annotations


def build_app(*args, **kwargs):
    from .app import build_app as _build

    return _build(*args, **kwargs)


def launch(*args, **kwargs):
    from .app import launch as _launch

    return _launch(*args, **kwargs)
