"""The shareable workflows: checked against a real ComfyUI's node definitions, and all five run on it."""
from __future__ import annotations

import copy
import json
import time

import pytest

from comfy_harness import execution_error, ok
from comfy_workflows import (SPEC, WF_GENERATE, WF_GENERATIONS_MOSAIC, WF_MOSAIC, WF_SUBSET, WF_TRAIN, WORKFLOWS,
                             check_api, check_ui, load, ui_to_api)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_the_five_workflows_exist_in_both_formats():
    assert len(SPEC) == 5
    for name in SPEC:
        assert (WORKFLOWS / f"{name}.json").is_file() and (WORKFLOWS / "api" / f"{name}.json").is_file(), name


@pytest.mark.parametrize("name", sorted(SPEC))
def test_workflow_matches_the_node_definitions(comfy_server, name):
    info = comfy_server.object_info()
    ui, api = load(name)
    assert check_ui(ui, info) == []
    assert check_api(api, info) == []
    # the UI file queues exactly the API file
    queued = ui_to_api(ui, info)
    assert {k: (v["class_type"], v["inputs"]) for k, v in queued.items()} == \
        {k: (v["class_type"], v["inputs"]) for k, v in api.items()}


def test_checker_catches_broken_workflows(comfy_server):
    info = comfy_server.object_info()
    ui, api = load(WF_SUBSET)
    bad = copy.deepcopy(ui)
    crop = next(n for n in bad["nodes"] if n["type"] == "CropSquare")
    crop["widgets_values"][0] = "sideways"                    # not a mode
    bad["links"][0][5] = "IMAGE"                             # wrong link type
    bad["nodes"].append({**crop, "id": 99, "type": "NoSuchNode"})
    problems = check_ui(bad, info)
    assert any("sideways" in p for p in problems)
    assert any("link 1" in p for p in problems)
    assert any("NoSuchNode" in p for p in problems)
    api_bad = copy.deepcopy(api)
    api_bad["2"]["inputs"]["size"] = 1                         # below min 16
    api_bad["4"]["inputs"]["subset"] = ["1", 0]                # IMAGE into TRAILCAM_SUBSET
    del api_bad["5"]["inputs"]["folder"]
    problems = check_api(api_bad, info)
    assert len(problems) == 3, problems


def test_generation_workflows_use_stock_nodes_with_both_strengths():
    _, api = load(WF_GENERATE)
    types = [n["class_type"] for n in api.values()]
    for stock in ("CheckpointLoaderSimple", "LoraLoader", "KSampler", "SaveImage"):
        assert stock in types
    lora = next(n for n in api.values() if n["class_type"] == "LoraLoader")["inputs"]
    assert lora["strength_model"] == 0.8 and lora["strength_clip"] == 0.8
    _, api5 = load(WF_GENERATIONS_MOSAIC)
    embed = next(n for n in api5.values() if n["class_type"] == "EmbedImages")
    assert api5[embed["inputs"]["images"][0]]["class_type"] == "VAEDecode"


def _by_type(api: dict, node_type: str) -> dict:
    return next(n for n in api.values() if n["class_type"] == node_type)["inputs"]


def test_workflow_1_subset_crop_captions_dataset(comfy_server):
    _, api = load(WF_SUBSET)
    _by_type(api, "LoadTrailcamSubset")["max_total"] = 8
    _by_type(api, "CropSquare")["size"] = 96
    _by_type(api, "SaveCaptionedDataset")["folder"] = "wf1/dataset"
    entry, messages, previews = comfy_server.run_watching(api)
    outputs = ok(entry)
    # the crop node drew its progress bar up to 8 of 8, with a preview of the crops
    crop_id = next(k for k, v in api.items() if v["class_type"] == "CropSquare")
    bars = [m["data"] for m in messages if m["type"] == "progress" and m["data"].get("node") == crop_id]
    assert bars and bars[-1]["value"] == bars[-1]["max"] == 8, bars
    assert previews >= 1
    folder = comfy_server.output_dir / "wf1" / "dataset"
    images = sorted(folder.glob("*.png"))
    assert len(images) == 8
    from PIL import Image

    assert all(Image.open(p).size == (96, 96) for p in images)
    captions = [p.with_suffix(".txt").read_text().strip() for p in images]
    assert all(c.startswith("trlcm, trailcam photo") for c in captions), captions
    meta = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert sorted(m["file_name"] for m in meta) == [p.name for p in images]
    assert "wf1/dataset" in json.dumps(outputs)            # the save node's summary
    previews = [o for o in outputs.values() if "images" in o]
    assert len(previews) == 2                               # crops and the distribution chart


def test_workflow_2_embed_mosaic(comfy_server):
    _, api = load(WF_MOSAIC)
    embed = _by_type(api, "EmbedImages")
    embed.update(model="trailcam-tiny", pretrained="")     # tiny random weights: no download
    mosaic = _by_type(api, "MosaicLayout")
    mosaic.update(folder="wf2/mosaic", embedding="pca", tile=32)
    outputs = ok(comfy_server.run(api))
    out = comfy_server.output_dir / "wf2" / "mosaic"
    positions = json.loads((out / "positions.json").read_text())
    n_sample = len(json.loads((comfy_server.input_dir / "trailcam_sample" / "sample_cct.json").read_text())["images"])
    assert positions["n"] + len(positions.get("skipped", [])) <= n_sample and positions["n"] >= 0.9 * n_sample
    assert positions["rows"] * positions["cols"] >= positions["n"]
    assert len({it["cell"] for it in positions["items"]}) == positions["n"]
    assert (out / "viewer.html").is_file() and list(out.glob("mosaic.*"))
    assert "images on" in json.dumps(outputs)


def test_a_filter_that_leaves_nothing_fails_with_the_core_message(comfy_server):
    _, api = load(WF_SUBSET)
    _by_type(api, "LoadTrailcamSubset")["categories"] = "lizard"   # a category with no image in the sample
    err = execution_error(comfy_server.run(api))
    assert err["node_type"] == "LoadTrailcamSubset"
    assert "lizard" in err["exception_message"] or "categor" in err["exception_message"], err["exception_message"]


def _train_graph(max_steps: int) -> dict:
    _, api = load(WF_TRAIN)
    _by_type(api, "LoadTrailcamSubset")["max_total"] = 4
    _by_type(api, "CropSquare")["size"] = 64
    _by_type(api, "SaveCaptionedDataset")["folder"] = "wf3/dataset"
    _by_type(api, "TrainLoRA").update(base_model="tiny-sdxl/", output_name="wf3_lora", resolution=64,
                                      max_steps=max_steps, rank=4)
    _by_type(api, "TrainLoRAOptions").update(bucketing=False, alpha=4.0, mixed_precision="no",
                                             gradient_checkpointing=False, cache_to_disk=False)
    return api


def test_workflow_3_train_lora_lands_in_models_loras_and_is_not_retrained(comfy_server):
    outputs = ok(comfy_server.run(_train_graph(3), timeout=400))
    lora = comfy_server.models_dir / "loras" / "wf3_lora.safetensors"
    assert lora.is_file()
    # one copy per trained LoRA: none left in the run folder
    run = comfy_server.output_dir / "trailcam" / "lora_runs" / "wf3_lora"
    assert run.is_dir() and not list(run.glob("*.safetensors")), sorted(p.name for p in run.iterdir())
    from safetensors import safe_open

    with safe_open(str(lora), "pt") as f:
        keys = list(f.keys())
        meta = f.metadata()
    assert keys and all(k.startswith(("lora_unet_", "lora_te1_", "lora_te2_")) for k in keys)
    assert meta.get("ss_output_name") in (None, "wf3_lora") and meta.get("ss_base_model_version", "sdxl").startswith("sdxl")
    # the stock LoraLoader lists it
    loras = comfy_server.object_info(refresh=True)["LoraLoader"]["input"]["required"]["lora_name"][0]
    assert "wf3_lora.safetensors" in loras
    text = json.dumps(outputs)
    assert "trained 3 steps" in text
    assert any("images" in o for o in outputs.values())     # the loss curve preview

    # queued again unchanged: no training, the same file
    mtime = lora.stat().st_mtime_ns
    t0 = time.monotonic()
    again = ok(comfy_server.run(_train_graph(3), timeout=400))
    assert lora.stat().st_mtime_ns == mtime
    assert "trained" not in json.dumps(again) or "up to date" in json.dumps(again)
    assert time.monotonic() - t0 < 60

    # a changed option trains again
    changed = ok(comfy_server.run(_train_graph(4), timeout=400))
    assert "trained 4 steps" in json.dumps(changed)
    assert lora.stat().st_mtime_ns != mtime


def test_the_real_frontend_opens_each_ui_workflow_and_queues_the_api_file(comfy_server):
    """Chromium loads ComfyUI's own frontend; each UI file goes through app.loadGraphData + graphToPrompt."""
    import os
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if os.environ.get("CI"):
        from playwright.sync_api import sync_playwright   # CI must have it: fail loudly if not
    else:
        sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: run `python install.py --dev`")
        pytest.skip("chromium is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto(comfy_server.url, wait_until="domcontentloaded")
            page.wait_for_function("() => window.app && window.app.graph", timeout=120_000)
            for name in sorted(SPEC):
                ui, api = load(name)
                queued = page.evaluate("""async (wf) => {
                    await window.app.loadGraphData(wf);
                    return (await window.app.graphToPrompt()).output; }""", ui)
                assert {k: (v["class_type"], v["inputs"]) for k, v in queued.items()} == \
                    {k: (v["class_type"], v["inputs"]) for k, v in api.items()}, name
        finally:
            browser.close()


def test_detections_file_from_the_input_folder_labels_the_subset(comfy_server):
    from trailcam_core.detections.read import read_detections
    from trailcam_core.samples.detections import make_megadetector

    sample = comfy_server.input_dir / "trailcam_sample"
    files = [im["file_name"] for im in json.loads((sample / "sample_cct.json").read_text())["images"]]
    det_file = sample / "detections.json"
    det_file.write_text(json.dumps(make_megadetector(files, seed=3)))
    expected = set(read_detections(det_file).labels(threshold=0.2)["label"].astype(str))
    graph = {
        "1": {"class_type": "LoadTrailcamSubset", "inputs": {**load(WF_MOSAIC)[1]["1"]["inputs"],
                                                             "detections": "trailcam_sample/detections.json"}},
        "2": {"class_type": "AutoTagCaptions", "inputs": {**_by_type(load(WF_TRAIN)[1], "AutoTagCaptions"),
                                                          "subset": ["1", 1], "template": "{species}",
                                                          "trigger": ""}},
        "3": {"class_type": "SaveCaptionedDataset", "inputs": {"subset": ["2", 0], "folder": "detections/dataset",
                                                               "format": "jpg", "caption_extension": ".txt"}},
    }
    outputs = ok(comfy_server.run(graph))
    species = {line.strip() for line in outputs["2"]["text"][0].splitlines()} - {""}
    assert species and species <= expected, (species, expected)
    assert species - {"opossum", "raccoon", "squirrel", "bobcat", "skunk", "dog", "coyote", "rabbit", "bird",
                      "cat", "car", "deer"}, "labels still come from the CCT metadata"


def test_cancel_stops_training_and_the_next_queue_resumes(comfy_server):
    def graph(max_steps: int) -> dict:
        g = _train_graph(max_steps)
        # a checkpoint every 2 steps shows the loop is running; Cancel then saves one more and stops
        _by_type(g, "TrainLoRA").update(output_name="wf3_cancel")
        _by_type(g, "TrainLoRAOptions").update(save_every_n_steps=2, keep_checkpoints=2)
        return g

    status, body = comfy_server.submit(graph(500))
    assert status == 200 and not body.get("node_errors"), body
    checkpoints = comfy_server.output_dir / "trailcam" / "lora_runs" / "wf3_cancel" / "checkpoints"
    deadline = time.monotonic() + 300
    while not (checkpoints.is_dir() and any(checkpoints.glob("*/*.json"))):
        assert time.monotonic() < deadline, comfy_server.log_tail()
        time.sleep(0.2)
    comfy_server.request("/interrupt", {})                  # the Cancel button
    entry = comfy_server.wait(body["prompt_id"], timeout=300)
    kinds = [m[0] for m in entry["status"]["messages"]]
    assert "execution_interrupted" in kinds, entry["status"]
    assert not (comfy_server.models_dir / "loras" / "wf3_cancel.safetensors").exists()
    step = max(int(p.name.rsplit("-step", 1)[1]) for p in checkpoints.iterdir() if "-step" in p.name)
    assert 2 <= step < 500

    # queued again (one step further): it continues from the checkpoint Cancel saved
    outputs = ok(comfy_server.run(graph(step + 1), timeout=400))
    note = json.dumps(outputs)
    assert f"trained {step + 1} steps (resumed from the checkpoint at step {step})" in note, note
    assert (comfy_server.models_dir / "loras" / "wf3_cancel.safetensors").is_file()


def test_subset_loader_reruns_when_its_file_changes_on_disk(comfy_server):
    import os
    import shutil

    src = comfy_server.input_dir / "trailcam_sample" / "sample_cct.json"
    copy_ = comfy_server.input_dir / "trailcam_sample" / "fingerprint_cct.json"
    shutil.copyfile(src, copy_)
    graph = {"1": {"class_type": "LoadTrailcamSubset", "inputs": {**load(WF_MOSAIC)[1]["1"]["inputs"],
                                                                  "source": "trailcam_sample/fingerprint_cct.json",
                                                                  "max_total": 2}},
             "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}

    def cached_nodes() -> list[str]:
        entry, messages, _ = comfy_server.run_watching(graph)
        ok(entry)
        return next(m["data"]["nodes"] for m in messages if m["type"] == "execution_cached")

    cached_nodes()
    assert "1" in cached_nodes()                   # same file, same widgets: not loaded again
    st = copy_.stat()
    os.utime(copy_, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert "1" not in cached_nodes()               # the file changed on disk: loaded again


# ------------------------------------------------------------------ workflows 4 and 5 (small SDXL)
SMALL_SDXL = "small-sdxl.safetensors"      # conftest: a single-file SDXL CheckpointLoaderSimple loads


def _small_lora(path, text_encoders: bool, seed: int = 0):
    """A kohya LoRA for the small SDXL: UNet attention, and (optionally) both text encoders."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    modules = {f"lora_unet_input_blocks_{b}_1_transformer_blocks_0_{a}": (320, 2048 if a == "attn2_to_k" else 320)
               for b in (4, 5, 7, 8) for a in ("attn1_to_q", "attn2_to_k")}
    if text_encoders:
        for layer in range(0, 10):
            modules[f"lora_te1_text_model_encoder_layers_{layer}_self_attn_q_proj"] = (768, 768)
            modules[f"lora_te2_text_model_encoder_layers_{layer}_self_attn_q_proj"] = (1280, 1280)
    tensors = {}
    for name, (out_f, in_f) in modules.items():
        tensors[f"{name}.lora_down.weight"] = torch.randn(4, in_f, generator=g) * 0.2
        tensors[f"{name}.lora_up.weight"] = torch.randn(out_f, 4, generator=g) * 0.2
        tensors[f"{name}.alpha"] = torch.tensor(4.0)
    save_file(tensors, str(path))
    return path


def _generation_graph(name: str, lora: str, strength_clip: float, batch: int = 1, prefix: str = "wf4/gen") -> dict:
    _, api = load(name)
    _by_type(api, "CheckpointLoaderSimple")["ckpt_name"] = SMALL_SDXL
    _by_type(api, "LoraLoader").update(lora_name=lora, strength_model=0.8, strength_clip=strength_clip)
    _by_type(api, "EmptyLatentImage").update(width=64, height=64, batch_size=batch)
    _by_type(api, "KSampler").update(steps=1)
    _by_type(api, "SaveImage")["filename_prefix"] = prefix
    return api


def _saved_pngs(server, outputs: dict) -> list:
    from PIL import Image

    files = [im for o in outputs.values() for im in o.get("images", []) if im.get("type") == "output"]
    return [Image.open(server.output_dir / f["subfolder"] / f["filename"]) for f in files]


def test_workflow_4_generate_runs_on_a_single_file_sdxl_and_clip_strength_acts(comfy_server):
    import numpy as np

    loras = comfy_server.models_dir / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    _small_lora(loras / "wf4_both.safetensors", text_encoders=True)
    _small_lora(loras / "wf4_unet.safetensors", text_encoders=False)
    info = comfy_server.object_info(refresh=True)
    assert SMALL_SDXL in info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    log_before = len(comfy_server.log.read_text(errors="replace"))
    pixels = {}
    for lora in ("wf4_both", "wf4_unet"):
        for clip in (0.2, 0.8):
            outputs = ok(comfy_server.run(_generation_graph(WF_GENERATE, f"{lora}.safetensors", clip,
                                                            prefix=f"wf4/{lora}_{clip}"), timeout=400))
            (png,) = _saved_pngs(comfy_server, outputs)
            assert png.size == (64, 64)
            # a PNG queued through the API carries the graph that ran, not the UI layout (docs/comfyui.md)
            assert "prompt" in png.info and "workflow" not in png.info
            pixels[(lora, clip)] = np.asarray(png.convert("RGB")).astype(int)
    log = comfy_server.log.read_text(errors="replace")[log_before:]
    assert "lora key not loaded" not in log and "clip missing" not in log.lower(), log[-3000:]
    changed = (pixels[("wf4_both", 0.2)] != pixels[("wf4_both", 0.8)]).any(axis=2).mean()
    assert changed > 0.5, changed                                   # CLIP strength changes the image
    assert (pixels[("wf4_unet", 0.2)] == pixels[("wf4_unet", 0.8)]).all()   # ... only with text-encoder weights


def test_workflow_5_mosaic_of_generations_runs_end_to_end(comfy_server):
    loras = comfy_server.models_dir / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    _small_lora(loras / "wf5.safetensors", text_encoders=True, seed=5)
    api = _generation_graph(WF_GENERATIONS_MOSAIC, "wf5.safetensors", 0.8, batch=4, prefix="wf5/gen")
    _by_type(api, "EmbedImages").update(model="trailcam-tiny", pretrained="")
    _by_type(api, "MosaicLayout").update(folder="wf5/mosaic", embedding="pca", tile=32)
    outputs = ok(comfy_server.run(api, timeout=400))
    assert len(_saved_pngs(comfy_server, outputs)) == 4
    out = comfy_server.output_dir / "wf5" / "mosaic"
    positions = json.loads((out / "positions.json").read_text())
    assert positions["n"] == 4 and len({it["cell"] for it in positions["items"]}) == 4
    assert list(out.glob("mosaic.*"))
