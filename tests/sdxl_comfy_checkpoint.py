"""Test helper: a small single-file SDXL checkpoint that ComfyUI's CheckpointLoaderSimple loads as SDXL.

ComfyUI recognises a checkpoint by the shape of its UNet (``comfy/supported_models.py``): SDXL and
its distilled relatives all need ``model_channels`` 320, linear transformer projections, 2048-wide
cross-attention and 2816 ``adm`` inputs; the number of transformer blocks picks the family member.
Its text encoders and VAE are built from fixed configurations, so they must have the real shapes.
This file therefore holds:

* a small UNet: 320 channels at every level (SDXL widens to 640 and 1280), transformer depth
  [0, 0, 1, 1, 2, 2] (the block counts of Segmind Vega, an SDXL model class), about 80 M weights;
* the real CLIP-L (768 wide, 12 layers) and OpenCLIP bigG (1280 wide, 32 layers) text encoders and
  the real 4-level SDXL VAE, with random weights.

Nothing is trained or downloaded: the models are laid out on the meta device, their keys
converted to the original single-file layout with ComfyUI's own conversion (tests/sdxl_ldm.py),
and each tensor filled with small random fp16 values (norm weights 1, biases 0).  About 2 GB on
disk, written in about half a minute.
"""
from __future__ import annotations

import re
from pathlib import Path

UNET_CONFIG = dict(
    block_out_channels=(320, 320, 320), layers_per_block=2, sample_size=128, in_channels=4, out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 5, 5), use_linear_projection=True, addition_embed_type="text_time",
    addition_time_embed_dim=256, transformer_layers_per_block=(1, 1, 2), projection_class_embeddings_input_dim=2816,
    cross_attention_dim=2048, norm_num_groups=32)
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              hidden_act="quick_gelu", projection_dim=768, max_position_embeddings=77, vocab_size=49408,
              bos_token_id=0, eos_token_id=2, pad_token_id=1, layer_norm_eps=1e-5)
CLIP_G = dict(CLIP_L, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
              hidden_act="gelu", projection_dim=1280)
VAE_CONFIG = dict(block_out_channels=[128, 256, 512, 512], in_channels=3, out_channels=3, layers_per_block=2,
                  down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                  latent_channels=4, sample_size=1024, norm_num_groups=32, scaling_factor=0.13025)


class _MetaPipe:
    """What tests/sdxl_ldm.to_ldm_state_dict reads from a pipeline: the four models."""

    def __init__(self):
        import torch
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

        with torch.device("meta"):
            self.unet = UNet2DConditionModel(**UNET_CONFIG)
            self.vae = AutoencoderKL(**VAE_CONFIG)
            self.text_encoder = CLIPTextModel(CLIPTextConfig(**CLIP_L))
            self.text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G))


_ONES = re.compile(r"(norm|ln_|layer_norm|norm_out|ln_final)[^.]*\.weight$|\.(norm\d?|ln_\d|ln_final)\.weight$")


def _fill(key: str, meta, gen):
    import torch

    if meta.device.type != "meta":               # real buffers (position ids) stay as they are
        return meta.contiguous()
    if key.endswith(".bias") or key.endswith("_bias"):
        return torch.zeros(meta.shape, dtype=torch.float16)
    if _ONES.search(key) or (key.endswith(".weight") and meta.ndim == 1):
        return torch.ones(meta.shape, dtype=torch.float16)
    fan_in = max(1, meta[0].numel()) if meta.ndim > 1 else max(1, meta.numel())
    std = min(0.02, 1.0 / fan_in ** 0.5)
    return torch.randn(meta.shape, generator=gen, dtype=torch.float16).mul_(std)


def build_small_sdxl_checkpoint(dest: Path, comfy_root: Path, seed: int = 0) -> Path:
    """Write the checkpoint to ``dest`` (once: an existing file is kept) and return its path."""
    import torch
    from safetensors.torch import save_file

    from sdxl_ldm import to_ldm_state_dict

    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    layout = to_ldm_state_dict(_MetaPipe(), Path(comfy_root))
    gen = torch.Generator().manual_seed(seed)
    state = {k: _fill(k, v, gen) for k, v in sorted(layout.items())}
    if "conditioner.embedders.1.model.logit_scale" in state:
        state["conditioner.embedders.1.model.logit_scale"] = torch.tensor(4.6052, dtype=torch.float16)
    tmp = dest.with_name(dest.name + ".part")
    save_file(state, str(tmp), metadata={"format": "pt", "note": "random weights, for tests"})
    tmp.replace(dest)
    return dest
