"""The JointAtlas node in a real ComfyUI 0.3.75: real photos and generations on one grid."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from comfy_harness import ok

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_joint_atlas_node_builds_an_atlas(comfy_server):
    real = sorted((comfy_server.input_dir / "trailcam_sample").rglob("*.jpg"))[:3]
    gens = comfy_server.output_dir / "atlas_gens"
    gens.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(real):       # two near-copies of real frames and one unlike anything
        arr = np.asarray(Image.open(p).convert("RGB").resize((128, 96))).astype(float) + i
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(gens / f"gen_{i}.png")
    spec = comfy_server.object_info()["JointAtlas"]["input"]["required"]
    inputs = {name: (v[1] or {}).get("default", v[0][0] if isinstance(v[0], list) else None) for name, v in spec.items()}
    inputs.update(real="trailcam_sample/", generated="atlas_gens", generated_kind="lora", folder="trailcam/atlas-test",
                  features="pyramid", pyramid_size=8, tile=16, dims=16)
    entry = comfy_server.run({"1": {"class_type": "JointAtlas", "inputs": inputs}}, timeout=600)
    out = ok(entry)
    text = "".join(out["1"]["text"])
    atlas = comfy_server.output_dir / "trailcam" / "atlas-test"
    manifest = json.loads((atlas / "atlas.json").read_text())
    assert (atlas / "index.html").is_file() and [s["kind"] for s in manifest["sources"]] == ["real", "lora"]
    assert "lora: 3 generations" in text and "likely copies" in text
    # refused: a real folder outside the input folder, an atlas folder outside the output folder
    status, body = comfy_server.submit({"1": {"class_type": "JointAtlas", "inputs": dict(
        inputs, real="../../etc", generated="", folder="/tmp/atlas-escape")}})
    assert status == 400 and "real" in json.dumps(body["node_errors"])
    shutil.rmtree(gens)
