"""The GAN tab on the real app: gradio_client drives train (live losses), Stop, sample with sliders,
the latent-walk video, steer and evaluate; a real headless Chromium trains and samples by clicking."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _gradio_harness import get_client, get_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TINY = dict(data="sample", size=64, batch_size=4, z_dim=16, ngf=4, ndf=4, preview_every=2, preview_count=4,
            checkpoint_every=0, ema_start=1, resume="", time_limit_minutes=0)


def _path(item) -> Path:
    if isinstance(item, dict):
        item = item.get("path") or item.get("video", {}).get("path") or item.get("image", {}).get("path")
    return Path(item)


def _gallery(gallery) -> list[Path]:
    return [_path(g["image"] if isinstance(g, dict) and "image" in g else g[0]) for g in gallery]


@pytest.fixture(scope="module")
def app():
    return get_server(), get_client()


def test_gan_tab_train_sample_walk_steer_eval(app):
    s, c = app
    wd = s["ctx"].workdir
    status, loss, preview, gen_file, gen_name = c.predict(run_dir="gan_api", output_name="api_gan", steps=4, **TINY,
                                                          api_name="/gan_train")
    assert status.startswith("**Done**: 4 steps"), status
    rows = loss["value"]["data"] if isinstance(loss, dict) and "value" in loss else loss["data"]
    assert len(rows) == 8                                   # D and G loss of every step
    assert (wd / "gan_api" / "api_gan.safetensors").is_file() and gen_name == "gan_api/api_gan.safetensors"
    assert Image.open(_path(preview)).size[0] > 64          # the preview grid

    gallery, note = c.predict(generator=gen_name, seed=3, count=5, truncation=0.6, api_name="/gan_sample")
    pics = _gallery(gallery)
    assert len(pics) == 5 and "truncation 0.6" in note
    with pytest.raises(Exception, match="trailcam gan steer"):
        c.predict(generator=gen_name, strength_glitch=1.0, api_name="/gan_sample")

    video = c.predict(generator=gen_name, seeds="0, 1", frames=3, fps=6, api_name="/gan_interpolate")
    assert _path(video).suffix == ".mp4" and _path(video).stat().st_size > 1000

    table, strips = c.predict(generator=gen_name, samples=40, batch_size=20, min_class=2, api_name="/gan_steer")
    assert "| direction |" in table and (wd / "gan_api" / "api_gan.directions.json").is_file()

    report, pictures = c.predict(generator=gen_name, real="sample", samples=20, kid_subsets=3, api_name="/gan_eval")
    assert "pyramid features" in report and "Gap closed" in report
    assert {p.name for p in _gallery(pictures)} >= {"samples.png", "real.png", "nearest_real.png"}


def test_gan_stop_saves_a_checkpoint(app):
    s, c = app
    wd = s["ctx"].workdir
    job = c.submit(run_dir="gan_stop", output_name="stop_gan", steps=5000, **TINY, api_name="/gan_train")
    deadline = time.time() + 180
    while "Step " not in str((job.outputs() or [[""]])[-1][0]) or " D " not in str((job.outputs() or [[""]])[-1][0]):
        assert time.time() < deadline and not job.done(), job.outputs()[-1:] if job.outputs() else "no output"
        time.sleep(0.2)
    assert c.predict(api_name="/gan_stop").startswith("Stopping")
    status = job.result(timeout=120)[0]
    assert status.startswith("**Stopped**") and "checkpoint" in status
    assert list((wd / "gan_stop" / "checkpoints").iterdir())


def test_gan_tab_in_a_real_browser(app, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("chromium is not installed")
    s, _ = app
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(s["url"], wait_until="domcontentloaded", timeout=120_000)
            page.get_by_role("tab", name="GAN").click()
            page.locator("#gan_train").wait_for(state="visible", timeout=60_000)
            steps = page.locator("#GanTrainOptions-steps input[type=number]").first
            steps.fill("6")
            steps.press("Enter")
            page.locator("#gan_train").click()                      # the sample-mode defaults: a tiny GAN
            page.locator("#gan_status >> text=/Done/").wait_for(timeout=300_000)
            page.locator("#gan_preview img").first.wait_for(timeout=30_000)
            # truncation down with the keyboard, then sample
            rng = page.locator("#GanSampleOptions-truncation input[type=range]")
            rng.focus()
            for _ in range(10):
                rng.press("ArrowLeft")
            assert page.locator("#GanSampleOptions-truncation input[type=number]").input_value() == "0.5"
            page.locator("#gan_sample").click()
            page.locator("#gan_gallery img").first.wait_for(timeout=120_000)
            shot = tmp_path / "gan_tab.png"
            page.screenshot(path=str(shot), full_page=True)
            a = np.asarray(Image.open(shot).convert("L"), dtype=float)
            assert a.std() > 8, "blank screenshot"
            assert not errors, errors
        finally:
            browser.close()
