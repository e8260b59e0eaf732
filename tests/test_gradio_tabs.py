"""Every tab's endpoints driven through gradio_client against the real app, in pipeline order.

One app and one client session for the file: the Dataset tab's subset feeds Crop, the crops feed
Tags and Mosaic, the exported training set feeds Train, the trained LoRA feeds Generate.
"""
from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _gradio_harness import get_client, get_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOCS = ["26", "38"]


def _path(item) -> Path:
    """A file output as gradio_client returns it (path or FileData dict) -> the server-side path."""
    if isinstance(item, dict):
        item = item.get("path") or item.get("image", {}).get("path")
    return Path(item)


def _gallery(gallery) -> list[Path]:
    return [_path(g["image"] if isinstance(g, dict) and "image" in g else g[0]) for g in gallery]


@pytest.fixture(scope="module")
def app():
    return get_server(), get_client()


@pytest.fixture(scope="module")
def wd(app):
    return app[0]["ctx"].workdir


def _wait_progress(job, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if job.status().progress_data:
            return
        if job.done():
            raise AssertionError(f"job ended before reporting progress: {job.result()}")
        time.sleep(0.2)
    raise AssertionError("no progress reported")


# ------------------------------------------------------------------------------------- dataset
def test_dataset_load_subset_chart_gallery(app, wd):
    s, c = app
    sample = str(s["ctx"].sample_json)
    out = c.predict(source=sample, image_root="", bboxes="", detections="", threshold=0.2, api_name="/dataset_load")
    summary = out[0]
    total = len(json.loads(Path(sample).read_text())["images"])
    assert f"**{total} images**" in summary and "4 locations" in summary
    text, bar, heat, gallery = c.predict(locations=LOCS, categories=[], empty="exclude", time_of_day="any",
                                         sequence="first", max_per_category=0, max_total=0, api_name="/dataset_subset")
    n = int(text.split("**")[1].split()[0])
    assert 0 < n < total
    assert len(_gallery(gallery)) == min(n, 60)
    for png in (bar, heat):
        im = np.asarray(Image.open(_path(png)).convert("L"), dtype=float)
        assert im.std() > 5          # a drawn chart, not a blank canvas
    saved = c.predict(out_name="subset", api_name="/dataset_save")
    cct = json.loads((wd / "subset" / "subset.json").read_text())
    assert (wd / "subset" / "manifest.csv").is_file()      # the same files the CLI writes
    assert f"{n} images" in saved and len(cct["images"]) == n
    assert {str(im["location"]) for im in cct["images"]} <= set(LOCS)
    sort = c.predict(out_name="sorted", sort_mode="copy", api_name="/dataset_sort")
    assert "sort" in sort.lower()
    folders = [p for p in (wd / "sorted").rglob("*") if p.is_dir()]
    assert sum(len(list(f.glob("*.jpg"))) for f in folders) == n


def test_dataset_fetch_from_a_loopback_server(app, wd):
    s, c = app
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(wd / "sample"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        text = c.predict(out_name="fetched", base_url=url, api_name="/dataset_fetch")
        got = list((wd / "fetched" / "images").rglob("*.jpg"))
        assert got and f"{len(got)} done" in text
        again = c.predict(out_name="fetched", base_url=url, api_name="/dataset_fetch")
        assert f"{len(got)} up to date" in again
    finally:
        server.shutdown()


def test_bad_subset_value_is_a_readable_error(app):
    from gradio_client.exceptions import AppError

    s, c = app
    with pytest.raises(AppError) as err:
        c.predict(locations=["no-such-camera"], categories=[], empty="include", time_of_day="any", sequence="all",
                  max_per_category=0, max_total=0, api_name="/dataset_subset")
    assert "no-such-camera" in str(err.value)


# ---------------------------------------------------------------------------------------- crop
def test_crop_preview_and_run(app, wd):
    s, c = app
    before, after, text = c.predict(source="Dataset subset", folder="", index=0, mode="center", size=96,
                                    strip_info_bar=True, margin=0.15, min_score=0.0, api_name="/crop_preview")
    assert Image.open(_path(after)).size == (96, 96)
    assert "info strip" in text
    report, gallery = c.predict(source="Dataset subset", folder="", out_name="crops", mode="center", size=96,
                                strip_info_bar=True, margin=0.15, min_score=0.0, api_name="/crop_run")
    crops = sorted((wd / "crops").glob("*.jpg"))
    assert crops and f"{len(crops)} done" in report and _gallery(gallery)
    assert Image.open(crops[0]).size == (96, 96)
    again, _ = c.predict(source="Dataset subset", folder="", out_name="crops", mode="center", size=96,
                         strip_info_bar=True, margin=0.15, min_score=0.0, api_name="/crop_run")
    assert f"{len(crops)} up to date" in again


def test_crop_output_outside_the_work_folder_is_refused(app):
    from gradio_client.exceptions import AppError

    s, c = app
    with pytest.raises(AppError, match="work folder|outside|'\\.\\.'"):
        c.predict(source="Dataset subset", folder="", out_name="../escape", mode="center", size=96,
                  strip_info_bar=True, margin=0.15, min_score=0.0, api_name="/crop_run")


# ---------------------------------------------------------------------------------------- tags
def test_tags_edit_star_reject_caption_export(app, wd):
    from trailcam_core.tags.curation import Project

    s, c = app
    report, gallery = c.predict(folder="crops", labels_from="Labels from the Dataset tab's subset", metadata="",
                                artifact_threshold=0.5, min_label_score=0.2, api_name="/tags_run")
    ids = Project.open(wd / "crops").ids()
    assert ids and f"{len(ids)} done" in report and len(_gallery(gallery)) == len(ids)
    first, second, third = ids[:3]
    tags_text, msg = c.predict(folder="crops", image_id=first, tags="species: bobcat\nmood: curious",
                               api_name="/tags_edit")
    assert "species: bobcat" in tags_text and "mood: curious" in tags_text
    project = Project.open(wd / "crops")
    assert project.tags(first)["mood"].source == "hand"
    assert "time_of_day" in project.tags(first) and project.tags(first)["time_of_day"].value is None  # removed
    for iid in (first, second):
        c.predict(folder="crops", image_id=iid, show="all", api_name="/tags_star")
    msg, gallery = c.predict(folder="crops", image_id=third, show="not-rejected", api_name="/tags_reject")
    assert "Reject on" in msg and len(_gallery(gallery)) == len(ids) - 1
    project = Project.open(wd / "crops")
    assert set(project.favorites()) == {first, second} and project.rejects() == [third]
    caption = c.predict(folder="crops", image_id=first, template="{trigger}, trailcam photo, {species}, {mood}",
                        trigger="trlcm", api_name="/tags_caption_preview")
    assert caption == "trlcm, trailcam photo, bobcat, curious"
    out = c.predict(folder="crops", out_name="training", template="{trigger}, trailcam photo, {species}",
                    trigger="trlcm", export_repeats=0, export_name="trailcam", export_include="favorites",
                    api_name="/tags_export")
    images = sorted((wd / "training").glob("*.jpg"))
    assert len(images) == 2 and "2 done" in out
    assert all(p.with_suffix(".txt").read_text().startswith("trlcm, trailcam photo") for p in images)


# -------------------------------------------------------------------------------------- mosaic
def test_mosaic_run_and_pick_a_tile(app, wd):
    s, c = app
    text, mosaic, _picked, _info = c.predict(source="crops", out_name="mosaic", features="pyramid", pyramid_size=8, layout="flas",
                             columns=0, aspect=1.0, tile=32, embedding="pca", api_name="/mosaic_run")
    img = Image.open(_path(mosaic))
    # the newest mosaic folder: a taken name gets a new one (mosaic-2, ...), never overwritten
    out = max((p for p in wd.glob("mosaic*") if (p / "positions.json").is_file()),
              key=lambda p: (p / "positions.json").stat().st_mtime)
    positions = json.loads((out / "positions.json").read_text())
    assert img.size == (positions["cols"] * 32, positions["rows"] * 32)
    assert "DPQ16" in text and "viewer" in text
    item = next(it for it in positions["items"] if it["cell"] == 0)
    picked, info = c.predict(x=5, y=5, api_name="/mosaic_pick")
    assert item["file_name"] in info and f"labels: {', '.join(item['labels'])}" in info
    assert all(it["labels"] for it in positions["items"])      # crops got their subset labels
    assert picked is not None
    # the viewer link is served (inside the work folder)
    import urllib.request

    link = text.split("](")[1].split(")")[0]
    with urllib.request.urlopen(s["url"].rstrip("/") + link, timeout=20) as r:
        assert r.status == 200 and b"<html" in r.read(2000).lower()


# ----------------------------------------------------------------------------------- train
TRAIN = dict(out_name="loras", output_name="tiny_lora", trigger_word="trlcm", rank=4, alpha=4.0, unet_lr=1e-3,
             epochs=1, batch_size=1, resolution=64, sample_prompts="trailcam photo, coyote", resume="")


def test_train_streams_loss_and_samples_then_gives_the_file(app, wd):
    s, c = app
    base = str(wd / "models" / "tiny-sdxl")
    status, loss, samples, lora = c.predict(data="training", base=base, max_steps=4, sample_every_n_steps=2, **TRAIN,
                                            api_name="/train_run")
    assert status.startswith("**Done**"), status
    path = _path(lora)
    assert path.name == "tiny_lora.safetensors" and (wd / "loras" / "tiny_lora.safetensors").is_file()
    rows = loss["value"]["data"] if isinstance(loss, dict) and "value" in loss else loss["data"]
    assert len(rows) == 4, rows                         # every step's loss, not samples of the status text
    assert len(_gallery(samples)) >= 1


def test_train_stop_saves_a_checkpoint(app, wd):
    s, c = app
    base = str(wd / "models" / "tiny-sdxl")
    args = {**TRAIN, "output_name": "stopped_lora", "out_name": "loras_stop"}
    job = c.submit(data="training", base=base, max_steps=400, sample_every_n_steps=0, **args, api_name="/train_run")
    _wait_progress(job)
    while "loss" not in str((job.outputs() or [[""]])[-1][0]):      # a training step, not the set-up
        time.sleep(0.2)
        assert not job.done()
    # the page stays responsive while training holds the heavy slot
    gallery = c.predict(folder="crops", show="favorites", api_name="/tags_show")
    assert len(_gallery(gallery)) == 2 and not job.done()
    assert c.predict(api_name="/train_stop").startswith("Stopping")
    status = job.result(timeout=120)[0]
    assert status.startswith("**Stopped**") and "checkpoint" in status
    assert list((wd / "loras_stop" / "checkpoints").iterdir())


# ---------------------------------------------------------------------------------- generate
def test_generate_strengths_change_the_image(app, wd):
    s, c = app
    base = str(wd / "models" / "tiny-sdxl")
    common = dict(base=base, prompt="trlcm, trailcam photo, coyote", negative_prompt="", seed=7, steps=3,
                  guidance=5.0, width=64, height=64, scheduler="euler", batch=1)
    loras = c.predict(api_name="/generate_loras")
    choices = [ch[0] if isinstance(ch, (list, tuple)) else ch for ch in loras["choices"]]
    assert "loras/tiny_lora.safetensors" in choices

    def gen(lora, sm, sc):
        gallery, info = c.predict(lora=lora, strength_model=sm, strength_clip=sc, **common, api_name="/generate")
        return np.asarray(Image.open(_gallery(gallery)[0]).convert("RGB"), dtype=np.int16), info

    plain, _ = gen("(no LoRA)", 1.0, 1.0)
    off, _ = gen("loras/tiny_lora.safetensors", 0.0, 0.0)
    on, info = gen("loras/tiny_lora.safetensors", 2.0, 2.0)
    assert "model 2, clip 2" in info
    assert np.abs(off - plain).max() <= 2          # strength 0 is the base model
    assert np.abs(on - plain).max() > 2            # strength 2 changes the picture
    grid, saved = c.predict(lora="loras/tiny_lora.safetensors", grid_model="0, 2", grid_clip="0, 2", **common,
                            api_name="/generate_grid")
    g = Image.open(_path(grid))
    assert "Saved `generated/grids/grid_tiny_lora_seed7.png`" in saved
    assert g.width > 2 * 64 and g.height > 2 * 64


def test_generate_stop(app, wd):
    s, c = app
    job = c.submit(base=str(wd / "models" / "tiny-sdxl"), lora="(no LoRA)", strength_model=1.0, strength_clip=1.0,
                   prompt="coyote", negative_prompt="", seed=3, steps=200, guidance=5.0, width=64, height=64,
                   scheduler="euler", batch=1, api_name="/generate")
    _wait_progress(job)
    assert c.predict(api_name="/generate_stop").startswith("Stopping")
    t0 = time.time()
    _gallery_out, info = job.result(timeout=120)        # a Stop is a clean message, not an error
    assert info.startswith("**Stopped** after") and "Nothing was saved" in info
    assert time.time() - t0 < 60


# ------------------------------------------------------------------- detections as the labels
def test_dataset_folder_labelled_by_a_detections_file(app, wd):
    from trailcam_core.samples.detections import SPECIES, make_megadetector

    s, c = app
    files = sorted(p.name for p in (wd / "sample").glob("*.jpg"))
    det = wd / "detections" / "md_results.json"
    det.parent.mkdir(exist_ok=True)
    det.write_text(json.dumps(make_megadetector(files, seed=1)))
    summary = c.predict(source=str(wd / "sample"), image_root="", bboxes="", detections=str(det), threshold=0.2,
                        api_name="/dataset_load")[0]
    assert f"**{len(files)} images**" in summary
    text, bar, heat, gallery = c.predict(locations=[], categories=[], empty="exclude", time_of_day="any",
                                         sequence="all", max_per_category=0, max_total=0, api_name="/dataset_subset")
    labels = {g["caption"].split(" · ")[0] for g in gallery}
    assert labels and labels <= set(SPECIES) | {"person", "vehicle", "unidentified animal", "animal"}, labels
