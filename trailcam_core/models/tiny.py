"""Tiny, random-weight stand-ins of the real models, built offline in about a second.

No model weights can be downloaded in tests, demos or CI, so these small models exercise the very
code paths users run with real SDXL weights: same classes, same configs shape, real tokenizer.

    folder = build_tiny_sdxl()              # a diffusers folder, cached
    pipe = trailcam_core.models.sdxl.load_sdxl(folder)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from trailcam_core.base import default_home
from trailcam_core.models.sdxl import load_clip_tokenizer

TINY_SDXL_VERSION = "1"


def build_tiny_sdxl_pipeline(seed: int = 0):
    """Return an in-memory StableDiffusionXLPipeline with tiny random weights (deterministic per seed)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4, sample_size=128, norm_num_groups=32)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="scaled_linear",
                                       timestep_spacing="leading")
    te_cfg = dict(bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
                  num_attention_heads=4, num_hidden_layers=5, pad_token_id=1, vocab_size=49408, hidden_act="gelu",
                  projection_dim=32, max_position_embeddings=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(**te_cfg))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**te_cfg))
    tokenizer = load_clip_tokenizer()
    tokenizer_2 = load_clip_tokenizer(pad_token="!")
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler)


def build_tiny_sdxl(dest: Optional[str | os.PathLike] = None, seed: int = 0) -> Path:
    """Write (once) and return a tiny SDXL diffusers folder; loads with ``load_sdxl(folder)``."""

    dest = Path(dest) if dest else default_home() / "models" / f"tiny-sdxl-v{TINY_SDXL_VERSION}-seed{seed}"
    if (dest / "model_index.json").is_file():
        return dest
    pipe = build_tiny_sdxl_pipeline(seed)
    tmp = dest.with_name(dest.name + ".part")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)   # the folder appears complete or not at all
    return dest
