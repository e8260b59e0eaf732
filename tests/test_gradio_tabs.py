"""Every tab's endpoints driven through gradio_client against the real app, in pipeline order.

One app and one client session for the file: the Dataset tab's subset feeds Crop, the crops feed
Tags and Mosaic, the exported training set feeds Train, the trained LoRA feeds Generate.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _gradio_harness import get_client, get_server

pytestmark = pytest.mark.e2e


def _path(item) -> Path:
    """A file output as gradio_client returns it (a path, or a FileData dict) -> local server path."""
    if isinstance(item, dict):
        item = item.get("path") or item.get("image", {}).get("path")
    return Path(item)


def _gallery_paths(gallery) -> list[Path]:
    return [_path(g["image"] if isinstance(g, dict) and "image" in g else g[0]) for g in gallery]


@pytest.fixture(scope="module")
def app():
    return get_server(), get_client()


def test_generate_with_tiny_base_and_stop(app):
    s, c = app
    base = str(s["ctx"].workdir / "models" / "tiny-sdxl")
    common = dict(base=base, lora="(no LoRA)", strength_model=1.0, strength_clip=1.0, prompt="coyote at night",
                  negative_prompt="", seed=3, guidance=5.0, width=64, height=64, scheduler="euler", batch=2)
    gallery, info = c.predict(steps=2, **common, api_name="/generate")
    files = _gallery_paths(gallery)
    assert len(files) == 2 and "2 image(s)" in info
    assert all(Image.open(f).size == (64, 64) for f in files)
    saved = sorted((s["ctx"].workdir / "generated").glob("*.png"))
    assert len(saved) >= 2
    # a long run stops at the next step after Stop
    job = c.submit(steps=200, **common, api_name="/generate")
    deadline = time.time() + 120
    while time.time() < deadline:
        st = job.status()
        if st.progress_data:
            break
        time.sleep(0.2)
    assert c.predict(api_name="/generate_stop").startswith("Stopping")
    from gradio_client.exceptions import AppError

    t0 = time.time()
    with pytest.raises(AppError, match="Stopped"):
        job.result(timeout=120)
    assert time.time() - t0 < 60
