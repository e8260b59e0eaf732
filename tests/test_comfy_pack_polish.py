"""The node pack as a user of a real ComfyUI 0.3.75 finds it: TrainLoRA's essentials with the rest
on an options node, errors once under the widget at fault, useful defaults and pickers, templates
with pictures, registry metadata."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trailcam_core.lora.options import TrainOptions
from trailcam_core.base.options import describe

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SAMPLE = "trailcam_sample/sample_cct.json"


def widgets(info: dict, node: str) -> dict:
    spec = info[node]["input"]
    return {**spec.get("required", {}), **spec.get("optional", {})}


def errors_of(body: dict) -> list[dict]:
    return [e for node in body.get("node_errors", {}).values() for e in node["errors"]]


def node_inputs(workflow: str, node_type: str) -> dict:
    """Every input of ``node_type`` as the shipped workflow sets it (links dropped)."""
    from comfy_workflows import load

    api = load(workflow)[1]
    inputs = next(n["inputs"] for n in api.values() if n["class_type"] == node_type)
    return {k: v for k, v in inputs.items() if not isinstance(v, list)}


def train_graph(options: bool = False, **inputs) -> dict:
    from comfy_workflows import WF_TRAIN

    graph = {"1": {"class_type": "TrainLoRA", "inputs": {**node_inputs(WF_TRAIN, "TrainLoRA"),
                                                        "dataset": "trailcam/dataset", "base_model": "tiny-sdxl/",
                                                        **inputs}}}
    if options:
        graph["1"]["inputs"]["options"] = ["2", 0]
        graph["2"] = {"class_type": "TrainLoRAOptions", "inputs": node_inputs(WF_TRAIN, "TrainLoRAOptions")}
    return graph


def test_train_lora_shows_the_essentials_and_takes_the_rest_from_an_options_node(comfy_server):
    info = comfy_server.object_info()
    train, extra = widgets(info, "TrainLoRA"), widgets(info, "TrainLoRAOptions")
    assert set(train) == {"dataset", "base_model", "rank", "epochs", "max_steps", "unet_lr", "resolution",
                          "output_name", "resume", "options"}
    assert train["options"][0] == "TRAILCAM_TRAIN_OPTIONS" and "options" in info["TrainLoRA"]["input"]["optional"]
    assert info["TrainLoRAOptions"]["output"] == ["TRAILCAM_TRAIN_OPTIONS"]
    every = {o.name for o in describe(TrainOptions) if o.ui} - {"resume"}
    assert set(train) | set(extra) >= every and not (set(train) & set(extra))
    assert len(train) <= 12


def test_options_node_values_reach_the_trainer(comfy_server):
    """An options node with a bad combination fails on that node; without it the node's defaults apply."""
    graph = train_graph(options=True, dataset="nowhere", output_name="wf_options")
    graph["2"]["inputs"].update(lr_scheduler="constant_with_warmup", lr_warmup_steps=0)
    status, body = comfy_server.submit(graph)
    assert status == 200, body
    entry = comfy_server.wait(body["prompt_id"], timeout=120)
    text = json.dumps(entry["status"])
    assert "lr_warmup_steps" in text, text


@pytest.mark.parametrize("bad, words", [("../escape", "'..'"), ("/tmp/escape", "absolute"), ("a/b", "a path")])
def test_output_name_paths_are_refused_in_validation_once(comfy_server, bad, words):
    status, body = comfy_server.submit(train_graph(output_name=bad))
    assert status == 400, body
    errs = errors_of(body)
    assert len(errs) == 1, errs
    assert errs[0]["extra_info"]["input_name"] == "output_name" and words in errs[0]["details"], errs


def test_a_bad_source_is_reported_once_under_source(comfy_server):
    from comfy_workflows import WF_MOSAIC

    status, body = comfy_server.submit({
        "1": {"class_type": "LoadTrailcamSubset",
              "inputs": {**node_inputs(WF_MOSAIC, "LoadTrailcamSubset"), "source": "../outside"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}})
    assert status == 400
    errs = errors_of(body)
    assert [e["extra_info"]["input_name"] for e in errs] == ["source"], errs
    assert "detections" not in json.dumps(errs)


def test_pickers_offer_the_right_files_and_start_on_a_dataset(comfy_server):
    (comfy_server.input_dir / "3d").mkdir(exist_ok=True)            # ComfyUI's own folder, no photos
    info = comfy_server.object_info(refresh=True)
    source = widgets(info, "LoadTrailcamSubset")["source"][1]
    assert source["default"] == SAMPLE and source["options"][0] == SAMPLE
    assert "3d/" not in source["options"] and "trailcam_sample/" in source["options"]
    detections = widgets(info, "LoadTrailcamSubset")["detections"][1]["options"]
    assert SAMPLE not in detections, detections                      # a dataset is not a results file
    base = widgets(info, "TrainLoRA")["base_model"][1]
    assert {"tiny-sdxl/", "small-sdxl.safetensors"} <= set(base["options"])
    assert base.get("default") == next(n for n in base["options"] if "xl" in n.lower()), base


def test_templates_are_numbered_readable_and_have_a_picture(comfy_server):
    names = comfy_server.get("/workflow_templates")["trailcam-curation"]
    assert len(names) == 6
    ordered = sorted(names)
    assert [n.split(".", 1)[0] for n in ordered] == ["1", "2", "3", "4", "5", "6"]
    for name in names:
        assert "_" not in name and re.match(r"^\d\. [A-Z]", name), name
        status, body = comfy_server.request(f"/api/workflow_templates/trailcam-curation/{name}.jpg")
        assert status == 200 and body[:3] == b"\xff\xd8\xff", name           # a JPEG, served beside the file
        from PIL import Image

        with Image.open(REPO / "workflows" / f"{name}.jpg") as img:
            assert img.format == "JPEG" and img.width >= 256 and img.height >= 192


def test_workflow_4_prompt_uses_the_captions_words():
    from trailcam_core.tags.model import TIME_OF_DAY, tag_text

    api = json.loads((REPO / "workflows" / "api" / "4. Generate with model and CLIP strength.json").read_text())
    prompt = next(n["inputs"]["text"] for n in api.values() if n["class_type"] == "CLIPTextEncode")
    assert "infrared night" in prompt
    for value in TIME_OF_DAY:
        if tag_text("time_of_day", _Tag(value)) != value:
            assert value not in prompt, prompt


class _Tag:
    def __init__(self, value):
        self.value = value


def test_registry_metadata_licence_icon_and_links():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    comfy, urls = project["tool"]["comfy"], project["project"]["urls"]
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and project["project"]["license"]["text"] == "MIT"
    assert comfy["Icon"].startswith("https://") and comfy["Icon"].endswith("docs/images/icon.png")
    assert (REPO / "docs" / "images" / "icon.png").is_file()
    assert urls["Documentation"].startswith("https://") and urls["Bug Tracker"].startswith("https://")


def test_an_api_graph_with_the_old_flat_train_options_is_still_accepted(comfy_server):
    """API graphs saved when every option sat on TrainLoRA: ComfyUI ignores the inputs it no longer has."""
    graph = train_graph(output_name="old_layout", dataset="no/such/folder", alpha=4.0, trigger_word="trlcm",
                        bucketing=False)
    graph["2"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 1]}}
    status, body = comfy_server.submit(graph)
    assert status == 200 and not body.get("node_errors"), body
    comfy_server.wait(body["prompt_id"], timeout=120)          # fails at run time: no such dataset folder
