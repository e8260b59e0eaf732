"""The app in a real headless Chromium (Debian's package driven by Playwright): open the page, see the
sample, switch tabs, move the CLIP and model strength sliders, run a small generation, screenshot."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _gradio_harness import get_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def tiny_lora():
    """A LoRA trained for two steps on two sample images, below the app's work folder."""
    from trailcam_core.lora.options import TrainOptions
    from trailcam_core.lora.train import train_lora
    from trailcam_core.models.tiny import build_tiny_sdxl

    wd = get_server()["ctx"].workdir
    path = wd / "loras-browser" / "browser_lora.safetensors"
    if not path.is_file():
        data = wd / "browser-train"
        data.mkdir(exist_ok=True)
        for src in sorted((wd / "sample").glob("*.jpg"))[:2]:
            shutil.copy(src, data / src.name)
            (data / src.name).with_suffix(".txt").write_text("trailcam photo, coyote")
        base = build_tiny_sdxl(wd / "models" / "tiny-sdxl")
        train_lora(data, base, path.parent, TrainOptions(rank=4, alpha=4.0, max_steps=2, resolution=64,
                                                         bucketing=False, unet_lr=1e-3, output_name=path.stem,
                                                         gradient_checkpointing=False))
    return path


def _not_blank(png: Path, min_std: float = 8.0) -> float:
    keep = os.environ.get("TRAILCAM_TEST_ARTIFACTS")     # CI can keep the screenshots
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)
    a = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert a.std() > min_std, f"{png} looks blank (pixel std {a.std():.1f})"
    return float(a.std())


def _set_slider(page, elem_id: str, presses: int, key: str) -> str:
    rng = page.locator(f"#{elem_id} input[type=range]")
    rng.focus()
    for _ in range(presses):
        rng.press(key)
    return page.locator(f"#{elem_id} input[type=number]").input_value()


def test_open_switch_tabs_move_strengths_generate_screenshot(browser, tiny_lora, tmp_path):
    s = get_server()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(s["url"], wait_until="domcontentloaded", timeout=120_000)
    # the sample is loaded on page load: its subset gallery fills with pictures
    page.locator("text=/\\d+ of \\d+ images/").first.wait_for(timeout=180_000)
    page.locator("img").first.wait_for(timeout=60_000)
    first = tmp_path / "dataset.png"
    page.screenshot(path=str(first), full_page=True)
    _not_blank(first)

    for title in ("Crop", "Tags & captions", "Mosaic", "Train LoRA"):
        page.get_by_role("tab", name=title).click()
        page.wait_for_timeout(300)
    page.get_by_role("tab", name="Generate").click()
    page.locator("#strength_model").wait_for(state="visible", timeout=30_000)

    # choose the LoRA, move both sliders with the keyboard as a person would
    page.get_by_role("button", name="Refresh list").click()
    lora_box = page.locator("input[aria-label='LoRA']").first
    lora_box.click()
    page.get_by_role("option", name="loras-browser/browser_lora.safetensors").click()
    assert _set_slider(page, "strength_model", 10, "ArrowLeft") == "0.5"
    assert _set_slider(page, "strength_clip", 10, "ArrowRight") == "1.5"
    # a small job: 3 steps at 64 x 64
    page.locator("#GenerateOptions-steps input[type=number]").fill("3")
    page.get_by_text("More options").last.click()
    for name in ("width", "height"):
        box = page.locator(f"#GenerateOptions-{name} input[type=number]")
        box.fill("64")
        box.press("Enter")
    page.locator("#generate_run").click()
    page.locator("text=LoRA: browser_lora.safetensors (model 0.5, clip 1.5)").wait_for(timeout=240_000)
    gallery_img = page.locator("#generate_gallery img").first
    gallery_img.wait_for(timeout=30_000)
    shot = tmp_path / "generate.png"
    page.screenshot(path=str(shot), full_page=True)
    _not_blank(shot)

    # a mosaic of the sample; clicking its first tile shows that image and its labels
    page.get_by_role("tab", name="Mosaic").click()
    page.locator("#mosaic_source textarea, #mosaic_source input").first.fill("sample")
    page.locator("input[aria-label='Embedding']").click()
    page.get_by_role("option", name="pca").click()
    page.get_by_role("button", name="Make mosaic").click()
    page.locator("text=Layout quality DPQ16").wait_for(timeout=240_000)
    mosaic = page.locator("#mosaic_image img").first
    mosaic.wait_for(timeout=30_000)
    mosaic.click(position={"x": 3, "y": 3})
    page.locator("text=/labels: /").first.wait_for(timeout=60_000)
    shot = tmp_path / "mosaic.png"
    page.screenshot(path=str(shot), full_page=True)
    _not_blank(shot)
    assert not errors, errors
    page.close()
