"""Test helper: write a diffusers SDXL pipeline as ONE original-layout ("ldm") checkpoint file.

The layout is the one Stability published (``sd_xl_base_1.0.safetensors``) and ComfyUI keeps in
``models/checkpoints``: ``model.diffusion_model.*`` (UNet), ``first_stage_model.*`` (VAE),
``conditioner.embedders.0.transformer.text_model.*`` (CLIP-L, transformers layout) and
``conditioner.embedders.1.model.*`` (OpenCLIP bigG layout: ``transformer.resblocks.N.attn.in_proj_weight``,
``text_projection``, ``positional_embedding``, ``token_embedding.weight``, ``ln_final``).

The key conversion is ComfyUI's own (the code it runs when it saves an SDXL checkpoint), so the
file is written by an implementation independent of the diffusers loader under test:
``comfy/diffusers_convert.py`` (VAE, OpenCLIP) is loaded from its file, and ``comfy.utils.unet_to_diffusers``
(UNet key map) runs in a subprocess because importing ``comfy`` pulls in ComfyUI's CLI arguments.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

TEXT_L = "conditioner.embedders.0.transformer."
TEXT_G = "conditioner.embedders.1.model."
UNET = "model.diffusion_model."
VAE = "first_stage_model."


def build_tiny_sdxl_ldm_pipeline(seed: int = 0):
    """A tiny random SDXL whose shape survives the single-file round trip, like the real one does.

    Differences from ``trailcam_core.models.tiny.build_tiny_sdxl_pipeline`` and why:
    - text_encoder_2 is wider than text_encoder (48 vs 32; real SDXL: 1280 vs 768): diffusers tells the
      two encoders of a single file apart by the width of the position embedding, so with equal widths
      text_encoder_2 would be filled from the CLIP-L weights;
    - text_encoder_2 has 10 layers: diffusers recognises a file as SDXL base by
      ``conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias``;
    - the VAE has 4 levels like SDXL's (ComfyUI's VAE key map is written for 4 levels).
    """
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from trailcam_core.models.sdxl import load_clip_tokenizer

    torch.manual_seed(seed)
    te1 = dict(bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
               num_attention_heads=4, num_hidden_layers=3, pad_token_id=1, vocab_size=49408, hidden_act="quick_gelu",
               projection_dim=32, max_position_embeddings=77)
    te2 = dict(te1, hidden_size=48, intermediate_size=64, num_hidden_layers=10, hidden_act="gelu", projection_dim=40)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + te2["projection_dim"],
        cross_attention_dim=te1["hidden_size"] + te2["hidden_size"], norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=[32, 32, 32, 32], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                        latent_channels=4, sample_size=64, norm_num_groups=32)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="scaled_linear",
                                       timestep_spacing="leading")
    return StableDiffusionXLPipeline(
        vae=vae, text_encoder=CLIPTextModel(CLIPTextConfig(**te1)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**te2)),
        tokenizer=load_clip_tokenizer(), tokenizer_2=load_clip_tokenizer(pad_token="!"), unet=unet, scheduler=scheduler)


def _load_diffusers_convert(comfy_root: Path):
    spec = importlib.util.spec_from_file_location("_comfy_diffusers_convert", comfy_root / "comfy" / "diffusers_convert.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def comfy_unet_config(cfg) -> dict:
    """ComfyUI's description of a diffusers UNet (the input of comfy.utils.unet_to_diffusers)."""
    levels = len(cfg["block_out_channels"])
    per_block = cfg["layers_per_block"]
    tl = cfg["transformer_layers_per_block"]
    tl = [tl] * levels if isinstance(tl, int) else list(tl)
    depth = [tl[i] if "CrossAttn" in cfg["down_block_types"][i] else 0 for i in range(levels)]
    return {"num_res_blocks": [per_block] * levels,
            "channel_mult": [c // cfg["block_out_channels"][0] for c in cfg["block_out_channels"]],
            "transformer_depth": [d for d in depth for _ in range(per_block)],
            "transformer_depth_output": [d for d in depth for _ in range(per_block + 1)],
            "transformer_depth_middle": tl[-1]}


def comfy_unet_map(comfy_root: Path, unet_config: dict) -> dict[str, str]:
    """diffusers UNet key -> ldm key, from ComfyUI's comfy.utils.unet_to_diffusers (in a subprocess)."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import comfy.utils; "
            "print(json.dumps(comfy.utils.unet_to_diffusers(json.loads(sys.argv[2]))))")
    out = subprocess.run([sys.executable, "-c", code, str(comfy_root), json.dumps(unet_config)],
                         capture_output=True, text=True, timeout=120, cwd=str(comfy_root))
    if out.returncode != 0:
        raise RuntimeError(f"comfy.utils.unet_to_diffusers failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def to_ldm_state_dict(pipe, comfy_root: Path) -> dict:
    """Every weight of ``pipe`` under its original SDXL single-file key; raises if any key is left unmapped."""
    import torch

    conv = _load_diffusers_convert(Path(comfy_root))
    out = {}

    unet_sd = pipe.unet.state_dict()
    umap = comfy_unet_map(Path(comfy_root), comfy_unet_config(pipe.unet.config))
    missing = sorted(k for k in unet_sd if k not in umap)
    if missing:
        raise KeyError(f"UNet keys without an ldm name: {missing[:10]}")
    out.update({UNET + umap[k]: v for k, v in unet_sd.items()})

    if len(pipe.vae.config.block_out_channels) != 4:
        raise ValueError("ComfyUI's VAE key map is written for SDXL's 4-level VAE")
    vae_sd = conv.convert_vae_state_dict(pipe.vae.state_dict())
    left = [k for k in vae_sd if any(s in k for s in ("down_blocks", "up_blocks", "mid_block", "resnets"))]
    if left:
        raise KeyError(f"VAE keys left in diffusers layout: {left[:10]}")
    out.update({VAE + k: v for k, v in vae_sd.items()})

    # CLIP-L: transformers layout under conditioner.embedders.0.transformer.text_model (as ComfyUI saves it,
    # including the position_ids buffer the published file carries).
    for k, v in pipe.text_encoder.state_dict().items():
        out[TEXT_L + (k if k.startswith("text_model.") else "text_model." + k)] = v
    out[TEXT_L + "text_model.embeddings.position_ids"] = torch.arange(77).expand((1, -1))

    # OpenCLIP bigG: ComfyUI's convert_text_enc_state_dict_v20 on its "clip_g.transformer.*" names.
    g = {"clip_g.transformer." + k: v for k, v in pipe.text_encoder_2.state_dict().items()
         if not k.endswith("position_ids")}
    g = conv.convert_text_enc_state_dict_v20(g, "clip_g")
    left = [k for k in g if "text_model" in k or "self_attn" in k]
    if left:
        raise KeyError(f"text_encoder_2 keys left in transformers layout: {left[:10]}")
    out.update({TEXT_G + k[len("clip_g."):]: v for k, v in g.items()})
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def write_ldm_checkpoint(pipe, dest: Path, comfy_root: Path) -> Path:
    from safetensors.torch import save_file

    save_file(to_ldm_state_dict(pipe, comfy_root), str(dest), metadata={"format": "pt"})
    return dest
