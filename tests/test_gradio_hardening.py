"""What trying the app as a user found, each checked on the real app on loopback (gradio_client) or
in a real headless Chromium: bad images, LoRA lists, stale state, paths, names, layout."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _gradio_harness import get_client, get_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def app():
    return get_server(), get_client()


@pytest.fixture(scope="module")
def wd(app):
    return app[0]["ctx"].workdir


@pytest.fixture(scope="module")
def tiny(wd) -> Path:
    from trailcam_core.models.tiny import build_tiny_sdxl

    return build_tiny_sdxl(wd / "models" / "tiny-sdxl")


def _path(item) -> Path:
    if isinstance(item, dict):
        item = item.get("path") or item.get("image", {}).get("path")
    return Path(item)


def _captions(gallery) -> list[str]:
    return [(g.get("caption") if isinstance(g, dict) else g[1]) or "" for g in gallery]


def bad_folder(folder: Path, good: int = 2) -> Path:
    """Good photos and the bad files users have: a bomb, text, empty, truncated, garbage."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(good):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(folder / f"good{i}.jpg")
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")
    (folder / "notes.jpg").write_text("not a photo")
    (folder / "empty.jpg").write_bytes(b"")
    data = (folder / "good0.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    return folder


# ------------------------------------------------------------------------------- bad images
def test_auto_tag_gallery_shows_bad_images_as_placeholders_with_their_reason(app, wd):
    s, c = app
    bad_folder(wd / "bad-photos")
    report, gallery = c.predict(folder="bad-photos", labels_from="No labels", metadata="", artifact_threshold=0.5,
                                min_label_score=0.2, api_name="/tags_run")
    captions = _captions(gallery)
    assert len(captions) == 7                          # every file, the bad ones as placeholders
    by_name = {cap.split(":")[0]: cap for cap in captions if ":" in cap}
    assert "decompression bomb" in by_name["bomb.png"] and "not an image" in by_name["notes.jpg"]
    assert "0 bytes" in by_name["empty.jpg"] and "truncated" in by_name["truncated.jpg"]
    for item in gallery:                               # every picture is drawn (no broken entries)
        assert Image.open(_path(item["image"] if isinstance(item, dict) else item[0])).size[0] > 0


def test_crop_preview_of_bad_files_is_a_placeholder_with_the_reason(app, wd):
    s, c = app
    for name in ("notes.jpg", "empty.jpg", "truncated.jpg", "garbage.png", "bomb.png"):
        one = wd / f"one-bad-{Path(name).stem}"
        one.mkdir(exist_ok=True)
        shutil.copy(wd / "bad-photos" / name, one / name)
        before, after, text = c.predict(source="Folder", folder=one.name, index=0, mode="center", size=96,
                                        strip_info_bar=True, margin=0.15, min_score=0.0, api_name="/crop_preview")
        assert f"`{name}` cannot be shown" in text, text
        assert Image.open(_path(before)).size == (512, 512)


def test_crop_preview_says_when_bbox_mode_falls_back_to_centre(app, wd):
    s, c = app
    (wd / "no-boxes").mkdir(exist_ok=True)
    shutil.copy(wd / "bad-photos" / "good0.jpg", wd / "no-boxes" / "good0.jpg")
    _, after, text = c.predict(source="Folder", folder="no-boxes", index=0, mode="bbox", size=32,
                               strip_info_bar=False, margin=0.15, min_score=0.0, api_name="/crop_preview")
    assert "no usable box on this image: centre crop used" in text


# ------------------------------------------------------------------------------- first refresh
def test_first_tags_refresh_names_the_auto_tag_button(app, wd):
    from gradio_client.exceptions import AppError

    s, c = app
    (wd / "untagged").mkdir(exist_ok=True)
    Image.new("RGB", (40, 40)).save(wd / "untagged" / "a.png")
    with pytest.raises(AppError) as err:
        c.predict(folder="untagged", show="all", api_name="/tags_show")
    assert "Auto-tag" in str(err.value)


# ------------------------------------------------------------------------------- LoRA list
def test_lora_list_shows_lora_files_only(app, wd):
    import torch
    from safetensors.torch import save_file

    s, c = app
    run = wd / "lora-list-run"
    (run / "cache" / "latents").mkdir(parents=True, exist_ok=True)
    (run / "checkpoints" / "night-step00000002").mkdir(parents=True, exist_ok=True)
    save_file({"latent": torch.zeros(4, 8, 8)}, str(run / "cache" / "latents" / "0a1b2c.safetensors"))
    save_file({"unet.down_blocks.1.attentions.0.proj_in.lora_A.weight": torch.zeros(2, 8)},
              str(run / "checkpoints" / "night-step00000002" / "adapter.safetensors"))
    kohya = {"lora_unet_down_blocks_1_attentions_0_proj_in.lora_down.weight": torch.zeros(2, 8),
             "lora_unet_down_blocks_1_attentions_0_proj_in.lora_up.weight": torch.zeros(8, 2),
             "lora_unet_down_blocks_1_attentions_0_proj_in.alpha": torch.tensor(2.0)}
    save_file(kohya, str(run / "night.safetensors"), metadata={"ss_network_module": "networks.lora"})
    save_file(kohya, str(run / "no_metadata_kohya.safetensors"))
    loras = c.predict(api_name="/generate_loras")
    choices = {ch[0] if isinstance(ch, (list, tuple)) else ch for ch in loras["choices"]}
    mine = {ch for ch in choices if ch.startswith("lora-list-run/")}
    assert mine == {"lora-list-run/night.safetensors", "lora-list-run/no_metadata_kohya.safetensors"}


# ------------------------------------------------------------------------------- dataset tab
def test_dataset_tab_resolves_relative_paths_and_an_empty_filter_clears_the_subset(app, wd):
    s, c = app
    sample = s["ctx"].sample_json
    rel = sample.relative_to(wd).as_posix()
    out = c.predict(source=rel, image_root="", bboxes="", detections="", threshold=0.2, api_name="/dataset_load")
    total = len(json.loads(sample.read_text())["images"])
    assert f"**{total} images**" in out[0]
    text, bar, heat, gallery = c.predict(locations=[], categories=[], empty="include", time_of_day="any",
                                         sequence="all", max_per_category=0, max_total=0, api_name="/dataset_subset")
    assert text.startswith(f"**{total} of {total} images**") and gallery
    text, bar, heat, gallery = c.predict(locations=["26"], categories=[], empty="only", time_of_day="day",
                                         sequence="all", max_per_category=0, max_total=0, hours="3-4",
                                         api_name="/dataset_subset")
    assert text.startswith(f"**0 of {total} images**") and "the subset is empty" in text
    assert bar is None and heat is None and not gallery


# ------------------------------------------------------------------------------- mosaic tab
def test_a_second_mosaic_gets_a_new_folder_and_drops_the_old_pick(app, wd):
    s, c = app
    src = wd / "mosaic-src"
    src.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(src / f"m{i}.jpg")
    args = dict(source="mosaic-src", labels_from="No labels", metadata="", features="pyramid", pyramid_size=8,
                layout="flas", columns=0, aspect=1.0, tile=16, embedding="pca", api_name="/mosaic_run")
    text1, _, _, _ = c.predict(out_name="twice", **args)
    first = (wd / "twice" / "positions.json").stat().st_mtime_ns
    picked, info = c.predict(x=3, y=3, api_name="/mosaic_pick")
    assert picked is not None and "labels" in info
    text2, mosaic2, picked2, info2 = c.predict(out_name="twice", **args)
    assert "`twice` already exists, so this went to `twice-2`" in text2
    assert (wd / "twice-2" / "positions.json").is_file()
    assert (wd / "twice" / "positions.json").stat().st_mtime_ns == first      # nothing overwritten
    assert picked2 is None and info2 == ""


def test_a_mosaic_of_generations_leaves_the_strength_grid_out(app, wd):
    from trailcam_core.embed.features import EmbedOptions, embed_images
    from trailcam_core.generate.pipeline import GenerateOptions, Generator, strength_grid
    from trailcam_core.lora.options import TrainOptions
    from trailcam_core.lora.train import train_lora
    from trailcam_core.models.tiny import build_tiny_sdxl

    base = build_tiny_sdxl(wd / "models" / "tiny-sdxl")
    gens = wd / "gens-with-grid"
    data = wd / "grid-train"
    data.mkdir(exist_ok=True)
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(data / f"{i}.png")
        (data / f"{i}.txt").write_text("coyote")
    lora = train_lora(data, base, wd / "grid-lora", TrainOptions(rank=2, max_steps=1, resolution=64, bucketing=False,
                                                                 gradient_checkpointing=False)).lora_path
    gen = Generator(device="cpu")
    opts = GenerateOptions(prompt="coyote", steps=1, width=64, height=64)
    gen.generate(base, [], opts, out_dir=gens)
    strength_grid(base, lora, opts, (0.0, 1.0), (1.0,), out_path=gens / "grids" / "grid.png", generator=gen)
    emb = embed_images(gens, EmbedOptions(features="pyramid", pyramid_size=8))
    assert len(emb) == 1
    assert dict(emb.skipped) == {"grids/grid.png": "a strength-grid (a picture of other pictures), left out"}

    # a Stop during a grid acts inside the first cell, not after it
    from trailcam_core.base.errors import Cancelled

    calls = []

    def progress(done, total, message="", preview=None):
        calls.append((done, message))
        if len(calls) == 2:            # the cell's start report, then the first check inside its step 1
            raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        strength_grid(base, lora, GenerateOptions(prompt="coyote", steps=20, width=64, height=64), (0.0, 1.0),
                      (1.0,), generator=gen, progress=progress)
    assert [d for d, _ in calls] == [0, 0] and calls[0][1].startswith("model 0, clip 1: ")


# ------------------------------------------------------------------------------- generate
def test_generate_size_follows_the_device_and_says_why(app, wd, tiny):
    from trailcam_core.generate.pipeline import GenerateOptions, Generator, auto_size

    gen = Generator(device="cpu")
    base = wd / "models" / "tiny-sdxl"
    images = gen.generate(base, [], GenerateOptions(prompt="coyote", steps=1))     # width/height 0: auto
    side = gen.pipe.unet.config.sample_size * gen.pipe.vae_scale_factor
    assert images[0].image.size == (side, side) and images[0].params["width"] == side
    assert "what the model was trained at" in gen.size_note

    class FullSize:                     # what a full SDXL reports, to check the CPU rule
        class unet:
            class config:
                sample_size = 128
        vae_scale_factor = 8
    side, why = auto_size(FullSize, "cpu")
    assert side == 512 and "on a CPU" in why and "1024" in why
    assert auto_size(FullSize, "cuda:0")[0] == 1024


def test_stop_takes_effect_inside_a_denoising_step(app, wd, tiny):
    from trailcam_core.base.errors import Cancelled
    from trailcam_core.generate.pipeline import GenerateOptions, Generator

    gen = Generator(device="cpu")
    seen = []

    def progress(done, total, message="", preview=None):
        seen.append(done)
        if len(seen) == 2:             # the start report, then the first check inside step 1
            raise Cancelled(f"stopped after {done} of {total}")

    with pytest.raises(Cancelled):
        gen.generate(wd / "models" / "tiny-sdxl", [], GenerateOptions(prompt="coyote", steps=50, width=64, height=64),
                     progress=progress)
    assert max(seen) == 0              # stopped before the first step finished


# ------------------------------------------------------------------------------- in the browser
@pytest.fixture(scope="module")
def page(app):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = b.new_page(viewport={"width": 1400, "height": 1000})
        pg.goto(app[0]["url"], wait_until="domcontentloaded", timeout=120_000)
        pg.locator("text=/\\d+ of \\d+ images/").first.wait_for(timeout=180_000)
        yield pg
        b.close()


def test_page_layout_charts_captions_and_the_train_button(page):
    for elem in ("#dataset_chart_categories", "#dataset_chart_locations"):
        page.locator(f"{elem} img").first.wait_for(timeout=60_000)
        img = page.locator(f"{elem} img").first.bounding_box()
        labels = page.locator(f"{elem} [data-testid='block-label']")
        for k in range(labels.count()):                                       # nothing covers the chart
            lab = labels.nth(k)
            box = lab.bounding_box() if lab.is_visible() else None
            assert box is None or box["width"] == 0 or not (
                box["x"] < img["x"] + img["width"] and img["x"] < box["x"] + box["width"]
                and box["y"] < img["y"] + img["height"] and img["y"] < box["y"] + box["height"]), (elem, box, img)
    cap = page.locator(".caption-label").first
    cap.wait_for(timeout=30_000)
    assert cap.evaluate("e => getComputedStyle(e).whiteSpace") == "normal"        # captions wrap
    page.get_by_role("tab", name="Train LoRA").click()
    btn = page.locator("#train_run")
    btn.wait_for(state="visible", timeout=30_000)
    box = btn.bounding_box()
    assert box["y"] + box["height"] < 1000, box                                   # seen without scrolling
    page.get_by_role("tab", name="Dataset").click()


def test_a_failed_load_leaves_no_error_badge_on_the_pickers(page):
    page.get_by_role("tab", name="Dataset").click()
    src = page.locator("#dataset_source textarea, #dataset_source input").first
    good = src.input_value()
    src.fill("no/such/dataset.json")
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_text("dataset (CCT JSON or folder) not found").first.wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    for name in ("locations", "categories"):
        picker = page.locator(f"#SubsetOptions-{name}")
        assert picker.get_by_text("Error", exact=True).count() == 0, name
    page.locator("#SubsetOptions-locations input").first.click(timeout=10_000)     # still clickable
    src.fill(good)


def test_the_stop_note_is_cleared_when_the_job_ends(page, wd, tiny):
    page.get_by_role("tab", name="Generate").click()
    page.locator("#generate_run").wait_for(state="visible", timeout=30_000)
    page.locator("#generate_base textarea, #generate_base input").first.fill(
        str(wd / "models" / "tiny-sdxl"))
    page.locator("#GenerateOptions-steps input[type=number]").fill("200")
    page.get_by_text("More options").last.click()
    for name in ("width", "height"):
        box = page.locator(f"#GenerateOptions-{name} input[type=number]")
        box.fill("64")
        box.press("Enter")
    page.locator("#generate_run").click()
    page.locator("text=/step \\d+\\/200/").first.wait_for(timeout=120_000)
    page.locator("#generate_stop").click()
    page.get_by_text("Stopping at the next step...").first.wait_for(timeout=10_000)
    t0 = time.time()
    page.get_by_text("Stopped after", exact=False).first.wait_for(timeout=60_000)
    assert time.time() - t0 < 30
    page.wait_for_timeout(1500)
    assert page.get_by_text("Stopping at the next step...").count() == 0
    assert page.locator("#generate_gallery").get_by_text("Error", exact=True).count() == 0
