"""The GAN nodes on a real ComfyUI: workflow 6 (train on a favourites folder, sample) checked and run."""
from __future__ import annotations

import copy
import json
import shutil
import time

import pytest

from comfy_harness import execution_error, ok
from comfy_workflows import check_api, check_ui, ui_to_api
from gan_workflows import load

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
TINY = dict(size=64, steps=3, batch_size=4, z_dim=16, ngf=4, ndf=4, preview_every=0, checkpoint_every=0,
            ema_start=1, output_name="wf6_gan")


def test_workflow_6_matches_the_node_definitions(comfy_server):
    info = comfy_server.object_info()
    ui, api = load()
    assert check_ui(ui, info) == [] and check_api(api, info) == []
    queued = ui_to_api(ui, info)
    assert {k: (v["class_type"], v["inputs"]) for k, v in queued.items()} == \
        {k: (v["class_type"], v["inputs"]) for k, v in api.items()}
    train = info["TrainGAN"]["input"]
    assert "size" in train["required"] and "folder" in train["required"]
    assert {f"strength_{t}" for t in ("night_infrared", "night_flash", "day", "glitch", "info_bar")} <= \
        set(info["SampleGAN"]["input"]["required"])


def _graph(favourites: str, **train):
    _, api = load()
    api = copy.deepcopy(api)
    node = next(n for n in api.values() if n["class_type"] == "TrainGAN")["inputs"]
    node.update({"folder": favourites, **TINY, **train})
    sample = next(n for n in api.values() if n["class_type"] == "SampleGAN")["inputs"]
    sample["count"] = 4
    save = next(n for n in api.values() if n["class_type"] == "SaveImage")["inputs"]
    save["filename_prefix"] = "wf6/sample"
    return api


def test_workflow_6_trains_on_a_favourites_folder_samples_and_reuses(comfy_server):
    fav = comfy_server.input_dir / "Favorites_gan"
    fav.mkdir(exist_ok=True)
    for src in sorted((comfy_server.input_dir / "trailcam_sample").glob("*.jpg"))[:10]:
        shutil.copy(src, fav / src.name)
    api = _graph("Favorites_gan")
    entry, messages, previews = comfy_server.run_watching(api, timeout=400)
    outputs = ok(entry)
    gen = comfy_server.models_dir / "gan" / "wf6_gan.safetensors"
    assert gen.is_file() and gen.with_suffix(".json").is_file()
    saved = list((comfy_server.output_dir / "wf6").glob("sample_*.png"))
    assert len(saved) == 4
    train_id = next(k for k, v in api.items() if v["class_type"] == "TrainGAN")
    bars = [m["data"] for m in messages if m["type"] == "progress" and m["data"].get("node") == train_id]
    assert bars and bars[-1]["value"] == bars[-1]["max"] == 3, bars          # one report per step
    assert "trained 3 steps" in json.dumps(outputs)

    # queued again unchanged: the same file, no training
    mtime = gen.stat().st_mtime_ns
    t0 = time.monotonic()
    again = ok(comfy_server.run(_graph("Favorites_gan"), timeout=400))
    assert gen.stat().st_mtime_ns == mtime and time.monotonic() - t0 < 60
    assert "trained 3 steps" not in json.dumps(again)


def test_sample_gan_without_directions_says_what_to_run(comfy_server):
    gen = comfy_server.models_dir / "gan" / "wf6_gan.safetensors"
    if not gen.is_file():
        pytest.skip("needs the generator of the workflow test")
    api = {"1": {"class_type": "SampleGAN", "inputs": {"generator": "wf6_gan.safetensors", "seed": 0, "count": 2,
                                                        "truncation": 1.0, "strength_night_infrared": 0.0,
                                                        "strength_night_flash": 0.0, "strength_day": 0.0,
                                                        "strength_glitch": 1.5, "strength_info_bar": 0.0}},
           "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    err = execution_error(comfy_server.wait(comfy_server.submit(api)[1]["prompt_id"], 120))
    assert "trailcam gan steer" in err["exception_message"]
    api["1"]["inputs"]["generator"] = "../../etc/passwd"
    status, body = comfy_server.submit(api)
    assert status == 400 and "contains '..'" in json.dumps(body), body       # refused before it runs


def test_cancel_saves_a_checkpoint_and_the_next_queue_resumes(comfy_server):
    fav = comfy_server.input_dir / "Favorites_gan"
    fav.mkdir(exist_ok=True)
    for src in sorted((comfy_server.input_dir / "trailcam_sample").glob("*.jpg"))[:10]:
        shutil.copy(src, fav / src.name)
    status, body = comfy_server.submit(_graph("Favorites_gan", steps=5000, checkpoint_every=2,
                                              output_name="wf6_cancel"))
    assert status == 200 and not body.get("node_errors"), body
    checkpoints = comfy_server.output_dir / "trailcam" / "gan_runs" / "wf6_cancel" / "checkpoints"
    deadline = time.monotonic() + 300
    while not (checkpoints.is_dir() and any(checkpoints.glob("*/state.json"))):
        assert time.monotonic() < deadline, comfy_server.log_tail()
        time.sleep(0.2)
    comfy_server.request("/interrupt", {})                  # the Cancel button
    entry = comfy_server.wait(body["prompt_id"], timeout=300)
    assert "execution_interrupted" in [m[0] for m in entry["status"]["messages"]], entry["status"]
    assert not (comfy_server.models_dir / "gan" / "wf6_cancel.safetensors").exists()
    step = max(int(p.name.split("-")[1]) for p in checkpoints.iterdir() if p.name.startswith("step-"))
    assert 2 <= step < 5000
    outputs = ok(comfy_server.run(_graph("Favorites_gan", steps=step + 1, checkpoint_every=2,
                                         output_name="wf6_cancel"), timeout=400))
    assert f"trained {step + 1} steps (resumed from step {step})" in json.dumps(outputs)
    assert (comfy_server.models_dir / "gan" / "wf6_cancel.safetensors").is_file()
