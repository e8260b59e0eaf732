"""The node pack as a real ComfyUI 0.3.75 on 127.0.0.1 sees it: loading, widgets, path confinement, packaging."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trailcam_core.tags.captions import CaptionOptions
from trailcam_core.crop.geometry import CropOptions
from trailcam_core.embed.features import EmbedOptions
from trailcam_core.base.options import describe
from trailcam_core.subset.select import SubsetOptions
from trailcam_core.tags.auto import TagOptions

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
NODES = ["LoadTrailcamSubset", "CropSquare", "AutoTagCaptions", "SaveCaptionedDataset", "EmbedImages",
         "MosaicLayout", "TrainLoRA", "DistributionChart"]
WIDGET_TYPE = {bool: "BOOLEAN", int: "INT", float: "FLOAT", str: "STRING", list: "STRING"}


def test_every_node_loads_from_the_cloned_pack(comfy_server):
    info = comfy_server.object_info()
    missing = [n for n in NODES if n not in info]
    assert not missing, f"nodes missing from /object_info: {missing}\n{comfy_server.log_tail()}"
    for name in NODES:
        assert info[name]["category"] == "trailcam"
        assert info[name]["python_module"].startswith("custom_nodes.trailcam-curation"), info[name]["python_module"]
    log = comfy_server.log.read_text(errors="replace")
    assert "[trailcam] nodes" not in log, log
    assert not re.search(r"IMPORT FAILED\): \S*trailcam-curation", log)
    # the custom types travel between our own nodes
    assert "TRAILCAM_SUBSET" in info["LoadTrailcamSubset"]["output"]
    assert info["MosaicLayout"]["input"]["required"]["embeddings"][0] == "TRAILCAM_EMBEDDINGS"
    assert info["EmbedImages"]["output"] == ["TRAILCAM_EMBEDDINGS"]


@pytest.mark.parametrize("node, options, skipped", [
    ("LoadTrailcamSubset", SubsetOptions, set()),
    ("CropSquare", CropOptions, {"format", "quality", "video_frames", "video_interval", "max_frames", "max_pixels",
                                 "workers", "force"}),
    ("AutoTagCaptions", TagOptions, {"workers", "overwrite_hand"}),
    ("AutoTagCaptions", CaptionOptions, {"include", "caption_extension"}),
    ("EmbedImages", EmbedOptions, {"device", "workers"}),
])
def test_widgets_are_built_from_the_core_options(comfy_server, node, options, skipped):
    spec = comfy_server.object_info()[node]["input"]
    widgets = {**spec.get("required", {}), **spec.get("optional", {})}
    for opt in describe(options):
        if opt.name in skipped:
            assert opt.name not in widgets
            continue
        assert opt.name in widgets, f"{node} lacks a widget for {options.__name__}.{opt.name}"
        kind, conf = widgets[opt.name]
        assert conf["tooltip"].startswith(opt.help)
        if opt.choices and opt.kind is not list:
            assert kind == "COMBO" and set(conf["options"]) <= {str(c) for c in opt.choices}
            assert conf["default"] == str(opt.default)
            continue
        assert kind == WIDGET_TYPE[opt.kind]
        if opt.kind is list:
            assert conf["default"] == ", ".join(map(str, opt.default))
        elif opt.default is not None and not (node == "LoadTrailcamSubset" and opt.name == "max_total"):
            assert conf["default"] == opt.default
        if opt.kind in (int, float):
            if opt.min is not None:
                assert conf["min"] == opt.min
            if opt.max is not None:
                assert conf["max"] == opt.max
            assert conf["max"] > 2048 or opt.max is not None  # the frontend would clamp to 2048


def test_source_combo_lists_the_input_folder(comfy_server):
    conf = comfy_server.object_info(refresh=True)["LoadTrailcamSubset"]["input"]["required"]["source"]
    assert "trailcam_sample/sample_cct.json" in conf[1]["options"]
    assert "trailcam_sample/" in conf[1]["options"]


@pytest.mark.parametrize("bad, words", [
    ("../outside", "'..'"),
    ("/etc", "absolute"),
    ("trailcam_sample/../../x", "'..'"),
])
def test_paths_outside_the_input_folder_are_refused(comfy_server, bad, words):
    status, body = comfy_server.submit({
        "1": {"class_type": "LoadTrailcamSubset", "inputs": {"source": bad}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}})
    assert status == 400, body
    details = json.dumps(body["node_errors"])
    assert "source" in details and words in details, details


def test_output_folders_outside_the_output_folder_are_refused(comfy_server):
    src = {"class_type": "LoadTrailcamSubset", "inputs": {"source": "trailcam_sample/sample_cct.json"}}
    for bad, words in (("../../escape", "'..'"), ("/tmp/escape", "absolute")):
        status, body = comfy_server.submit({"1": src, "2": {"class_type": "MosaicLayout", "inputs": {
            "embeddings": ["3", 0], "folder": bad}},
            "3": {"class_type": "EmbedImages", "inputs": {"subset": ["1", 1]}}})
        assert status == 400
        details = json.dumps(body["node_errors"])
        assert "folder" in details and words in details, details
    assert not Path("/tmp/escape").exists()


def test_a_symlink_out_of_the_input_folder_is_refused(comfy_server, tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    link = comfy_server.input_dir / "sneaky"
    link.symlink_to(outside, target_is_directory=True)
    try:
        status, body = comfy_server.submit({
            "1": {"class_type": "LoadTrailcamSubset", "inputs": {"source": "sneaky/"}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}})
        assert status == 400
        assert "outside" in json.dumps(body["node_errors"])
    finally:
        link.unlink()


def test_workflows_folder_is_served_as_templates(comfy_server):
    templates = comfy_server.get("/workflow_templates")
    names = set(templates.get("trailcam-curation", []))
    expected = {p.stem for p in (REPO / "workflows").glob("*.json")}
    assert len(expected) >= 5 and names == expected
    some = sorted(expected)[0]
    assert "nodes" in comfy_server.get(f"/api/workflow_templates/trailcam-curation/{some}.json")


def test_requirements_match_the_project_dependencies():
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = lambda reqs: {re.split(r"[\s;<>=!~\[]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}
    sys.path.insert(0, str(REPO))
    try:
        import install
    finally:
        sys.path.remove(str(REPO))
    reqs = install.read_requirements(REPO / "requirements.txt")
    # everything the pack needs is a declared dependency; torch/torchvision come with ComfyUI itself,
    # and OpenCV is left to the ComfyUI install (its own cv2 package may be opencv-python; two cv2
    # distributions clash) since the crop stage falls back to Pillow without it
    assert names(reqs) <= names(deps)
    assert names(deps) - names(reqs) <= {"torch", "torchvision", "gradio", "opencv-python-headless"}
    assert not install.missing(reqs), "requirements.txt is not satisfied in this environment"


def test_install_script_is_a_noop_when_everything_is_present():
    out = subprocess.run([sys.executable, str(REPO / "install.py")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install" not in out.stdout and "ok" in out.stdout
    path = subprocess.run([sys.executable, str(REPO / "install.py"), "--comfyui-path"], capture_output=True,
                          text=True, timeout=60)
    assert path.returncode == 0 and (Path(path.stdout.strip()) / "main.py").is_file()


def test_registry_metadata():
    import tomllib

    comfy = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]


def test_missing_comfyui_fails_in_ci_and_skips_elsewhere(monkeypatch, tmp_path):
    from comfy_harness import require_comfyui

    monkeypatch.setenv("TRAILCAM_COMFYUI", str(tmp_path / "no-comfyui"))
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="install.py --dev"):
        require_comfyui()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_comfyui()
