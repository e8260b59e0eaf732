"""Load a local SDXL base model, offline: a diffusers folder or a single-file checkpoint.

Users point at what they have: a diffusers folder (``model_index.json`` inside) or the single
file a ComfyUI install keeps in ``models/checkpoints`` (``sd_xl_base_1.0.safetensors``).  Nothing
is fetched from a hub: for single files the SDXL base configuration is written from this module
and the CLIP tokenizers are rebuilt from the BPE vocabulary that open_clip ships in its package.

    pipe = load_sdxl("models/checkpoints/sd_xl_base_1.0.safetensors", dtype=torch.float16)
"""
from __future__ import annotations

import gzip
import os
import threading
import warnings
from pathlib import Path
from typing import Optional

from trailcam_core.base import atomic
from trailcam_core.base import default_home, TrailcamError

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")

# SDXL 1.0 base as published (diffusers layout).  Kept here so a single-file checkpoint loads
# with no network: diffusers would otherwise fetch these from the hub.
SDXL_UNET = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64, "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280], "center_input_sample": False, "class_embed_type": None,
    "class_embeddings_concat": False, "conv_in_kernel": 3, "conv_out_kernel": 3, "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
    "in_channels": 4, "layers_per_block": 2, "mid_block_only_cross_attention": None, "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn", "norm_eps": 1e-05, "norm_num_groups": 32,
    "num_attention_heads": None, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816, "resnet_out_scale_factor": 1.0, "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default", "sample_size": 128, "time_cond_proj_dim": None,
    "time_embedding_act_fn": None, "time_embedding_dim": None, "time_embedding_type": "positional",
    "timestep_post_act": None, "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "upcast_attention": None,
    "use_linear_projection": True,
}
SDXL_VAE = {
    "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "force_upcast": True, "in_channels": 3, "latent_channels": 4,
    "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 1024,
    "scaling_factor": 0.13025, "up_block_types": ["UpDecoderBlock2D"] * 4,
}
SDXL_TEXT_ENCODER = {
    "architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
    "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 768, "initializer_factor": 1.0,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 12,
    "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": 768, "vocab_size": 49408,
}
SDXL_TEXT_ENCODER_2 = {
    **SDXL_TEXT_ENCODER, "architectures": ["CLIPTextModelWithProjection"], "hidden_act": "gelu",
    "hidden_size": 1280, "intermediate_size": 5120, "num_attention_heads": 20, "num_hidden_layers": 32,
    "projection_dim": 1280,
}
SDXL_SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
    "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None, "use_karras_sigmas": False,
}
SDXL_MODEL_INDEX = {
    "_class_name": "StableDiffusionXLPipeline", "force_zeros_for_empty_prompt": True,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"], "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


def _bytes_to_unicode() -> dict[int, str]:
    # The byte <-> unicode table of GPT-2 / CLIP BPE (same as open_clip's and transformers').
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_clip_tokenizer(dest: str | os.PathLike, pad_token: str = "<|endoftext|>") -> Path:
    """Write a transformers CLIPTokenizer folder (vocab.json, merges.txt, configs) from open_clip's BPE.

    The result tokenizes exactly like ``openai/clip-vit-large-patch14``: same merges, same ids.
    SDXL's second tokenizer differs only by its pad token ("!").
    """
    import open_clip.tokenizer as oct

    dest = Path(dest)
    if (dest / "vocab.json").is_file() and (dest / "merges.txt").is_file() and (dest / "tokenizer_config.json").is_file():
        return dest
    lines = gzip.open(oct.default_bpe()).read().decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    atomic.write_json(dest / "vocab.json", {tok: i for i, tok in enumerate(vocab)}, indent=None)
    atomic.write_text(dest / "merges.txt", "#version: 0.2\n" + "\n".join(merges) + "\n")
    atomic.write_json(dest / "special_tokens_map.json", {
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": pad_token})
    atomic.write_json(dest / "tokenizer_config.json", {
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "pad_token": pad_token, "errors": "replace", "add_prefix_space": False})
    return dest


def load_clip_tokenizer(dest: Optional[str | os.PathLike] = None, pad_token: str = "<|endoftext|>"):
    """A transformers CLIPTokenizer built offline (see write_clip_tokenizer)."""
    from transformers import CLIPTokenizer

    name = "clip-tokenizer" if pad_token == "<|endoftext|>" else "clip-tokenizer-pad-bang"
    folder = write_clip_tokenizer(Path(dest) if dest else default_home() / "configs" / name, pad_token)
    return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)


def write_sdxl_config_dir(dest: Optional[str | os.PathLike] = None) -> Path:
    """Write the SDXL base configuration folder (no weights) that single-file loading reads."""
    dest = Path(dest) if dest else default_home() / "configs" / "sdxl-base-1.0"
    if (dest / "model_index.json").is_file():
        return dest
    for sub, cfg, fname in (("unet", SDXL_UNET, "config.json"), ("vae", SDXL_VAE, "config.json"),
                            ("text_encoder", SDXL_TEXT_ENCODER, "config.json"),
                            ("text_encoder_2", SDXL_TEXT_ENCODER_2, "config.json"),
                            ("scheduler", SDXL_SCHEDULER, "scheduler_config.json")):
        atomic.write_json(dest / sub / fname, cfg)
    write_clip_tokenizer(dest / "tokenizer", "<|endoftext|>")
    write_clip_tokenizer(dest / "tokenizer_2", "!")
    atomic.write_json(dest / "model_index.json", SDXL_MODEL_INDEX)  # last: marks the folder complete
    return dest


def model_kind(path: str | os.PathLike) -> str:
    """'diffusers' for a diffusers folder, 'single_file' for a checkpoint file; clear error otherwise."""
    p = Path(path)
    if not p.exists():
        raise TrailcamError(f"base model not found: {p}")
    if p.is_dir():
        if (p / "model_index.json").is_file():
            return "diffusers"
        raise TrailcamError(f"{p} is a folder but not a diffusers model (no model_index.json inside)")
    if p.suffix.lower() in CHECKPOINT_SUFFIXES:
        return "single_file"
    raise TrailcamError(f"{p} is neither a diffusers folder nor a checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)})")


# Where each component lives in an SDXL base single file (Stability's layout, which ComfyUI saves too),
# as diffusers' single-file loader looks them up.
SDXL_SINGLE_FILE_PARTS = (("UNet", ("model.diffusion_model.",)), ("VAE", ("first_stage_model.", "vae.")),
                          ("CLIP-L text encoder", ("conditioner.embedders.0.transformer.",)),
                          ("OpenCLIP bigG text encoder", ("conditioner.embedders.1.model.",)))


def check_sdxl_single_file(path: str | os.PathLike) -> None:
    """Clear TrailcamError unless a .safetensors file has the SDXL base layout (reads only its header)."""
    p = Path(path)
    if p.suffix.lower() != ".safetensors":
        return   # pickled checkpoints are only read by the loader itself
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as f:
            keys = list(f.keys())
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise TrailcamError(f"could not load SDXL base model from {p}: not a readable .safetensors file ({exc})") from exc
    missing = [name for name, prefixes in SDXL_SINGLE_FILE_PARTS if not any(k.startswith(prefixes) for k in keys)]
    if missing:
        hint = ""
        if any(k.startswith("cond_stage_model.") for k in keys):
            hint = " (it looks like a Stable Diffusion 1.x/2.x checkpoint)"
        elif any(k.startswith("conditioner.embedders.0.model.") for k in keys):
            hint = " (it looks like the SDXL refiner)"
        raise TrailcamError(f"{p} is not an SDXL base checkpoint{hint}: it has no {', '.join(missing)} weights")


_LOCK = threading.Lock()


def load_sdxl(path: str | os.PathLike, dtype=None, device: Optional[str] = None, config_dir: Optional[str] = None):
    """Load a StableDiffusionXLPipeline from a local diffusers folder or single-file checkpoint, offline.

    ``config_dir`` overrides the configuration used for single files (a diffusers folder with
    configs; defaults to the SDXL base configuration written by write_sdxl_config_dir).
    """
    import torch
    from diffusers import StableDiffusionXLPipeline
    from diffusers.loaders.single_file_utils import SingleFileComponentError

    kind = model_kind(path)
    if kind == "single_file":
        check_sdxl_single_file(path)
    dtype = dtype or torch.float32
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch_dtype -> dtype rename in newer diffusers
        try:
            if kind == "diffusers":
                pipe = StableDiffusionXLPipeline.from_pretrained(str(path), torch_dtype=dtype, local_files_only=True)
            else:
                cfg = str(config_dir or write_sdxl_config_dir())
                pipe = StableDiffusionXLPipeline.from_single_file(str(path), config=cfg, torch_dtype=dtype,
                                                                  local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError, SingleFileComponentError) as exc:
            raise TrailcamError(f"could not load SDXL base model from {path}: {exc}") from exc
    if device:
        pipe.to(device)
    return pipe
