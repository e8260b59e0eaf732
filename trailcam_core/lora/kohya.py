"""The kohya LoRA file layout: key names, peft -> kohya conversion, metadata, atomic save.

kohya's layout is the one SDXL LoRA format that stock ComfyUI (``LoraLoader``) and diffusers
(``load_lora_weights``) both load.  Each adapted module ``M`` becomes three tensors::

    lora_unet_<M with "." -> "_">.lora_down.weight   (rank, in)         peft's lora_A
    lora_unet_<M ...>.lora_up.weight                 (out, rank)        peft's lora_B
    lora_unet_<M ...>.alpha                          scalar             effective = up @ down * alpha / rank

with ``lora_te1_text_model_...`` (CLIP-L) and ``lora_te2_text_model_...`` (OpenCLIP bigG) for the
text encoders.  UNet modules keep diffusers' block names (``down_blocks_1_attentions_0_...``),
which both loaders map.  transformers 5 dropped the ``text_model`` level of ``CLIPTextModel``;
names here always carry it, as both loaders expect.

    names = lora_names(unet=unet, text_encoder=te1, text_encoder_2=te2, targets="transformer")
    sd = kohya_state_dict(unet=peft_unet, text_encoder=peft_te1)
    save_lora("out/lora.safetensors", sd, metadata)
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterable, Optional

from trailcam_core.base import atomic

PREFIXES = {"unet": "lora_unet_", "te1": "lora_te1_", "te2": "lora_te2_"}
TARGET_CHOICES = ("attention", "transformer", "transformer+conv")

_ATTN_LEAVES = ("to_q", "to_k", "to_v", "to_out.0")
_TE_ATTN_LEAVES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj")
_TE_MLP_LEAVES = ("mlp.fc1", "mlp.fc2")
# A UNet resnet / sampler conv LoRA (LoCon): the 3x3 and 1x1 convs of resnets, the samplers' convs.
_CONV_RE = re.compile(r"(^|\.)(resnets\.\d+\.(conv1|conv2|conv_shortcut)|(down|up)samplers\.\d+\.conv)$")


def _is_linear(module) -> bool:
    import torch.nn as nn

    return isinstance(module, nn.Linear)


def unet_targets(unet, targets: str = "attention") -> list[str]:
    """Module paths of ``unet`` (a diffusers UNet2DConditionModel) that get a LoRA, in tree order.

    ``attention``: q/k/v/out projections of every attention block (self and cross);
    ``transformer``: every Linear inside the transformer blocks (adds proj_in/out, feed-forward),
    kohya's default; ``transformer+conv``: also the resnet and sampler convolutions (LoCon).
    """
    import torch.nn as nn

    if targets not in TARGET_CHOICES:
        raise ValueError(f"targets must be one of {TARGET_CHOICES}, got {targets!r}")
    out = []
    for name, module in unet.named_modules():
        if ".attentions." not in f".{name}" and not (targets == "transformer+conv" and _CONV_RE.search(name)):
            continue
        if _is_linear(module):
            leaf_ok = any(name.endswith(f".{leaf}") for leaf in _ATTN_LEAVES) and (".attn1." in name or ".attn2." in name)
            if leaf_ok or targets != "attention":
                out.append(name)
        elif targets == "transformer+conv" and isinstance(module, nn.Conv2d) and _CONV_RE.search(name):
            out.append(name)
    return out


def text_encoder_targets(text_encoder, targets: str = "attention", skip_layers: Iterable[int] = ()) -> list[str]:
    """Module paths of a CLIP text encoder that get a LoRA: attention projections (+ MLP unless ``attention``).

    ``skip_layers``: encoder layer indices left out (see :func:`unused_te1_layers`)."""
    leaves = _TE_ATTN_LEAVES if targets == "attention" else _TE_ATTN_LEAVES + _TE_MLP_LEAVES
    skip = {int(i) for i in skip_layers}
    return [name for name, module in text_encoder.named_modules()
            if ".encoder.layers." in f".{name}" and _is_linear(module) and any(name.endswith("." + x) for x in leaves)
            and _layer_index(name) not in skip]


def _layer_index(module_path: str) -> int:
    m = re.search(r"(?:^|\.)encoder\.layers\.(\d+)\.", module_path)
    return int(m.group(1)) if m else -1


def unused_te1_layers(text_encoder) -> list[int]:
    """CLIP-L layers whose LoRA would never train: SDXL conditions on CLIP-L's penultimate hidden
    state (and takes no pooled output from it), so its last layer (11 of 0..11) gets no gradient.
    kohya's sd-scripts and OneTrainer leave it out too. (OpenCLIP bigG's last layer feeds the pooled
    embedding, so it keeps its LoRA.)"""
    n = getattr(getattr(text_encoder, "config", None), "num_hidden_layers", None)
    if n is None:
        layers = {_layer_index(name) for name, _ in text_encoder.named_modules()} - {-1}
        n = max(layers) + 1 if layers else 0
    return [n - 1] if n else []


def kohya_name(part: str, module_path: str) -> str:
    """The kohya key stem of one module: ``kohya_name("te1", "encoder.layers.0.self_attn.q_proj")``
    -> ``lora_te1_text_model_encoder_layers_0_self_attn_q_proj``."""
    path = module_path
    for strip in ("base_model.model.", "_orig_mod.", "module."):   # peft / torch.compile / DDP wrappers
        while path.startswith(strip):
            path = path[len(strip):]
    if part in ("te1", "te2"):
        path = path[len("text_model."):] if path.startswith("text_model.") else path
        path = "text_model." + path
    elif part != "unet":
        raise ValueError(f"part must be unet, te1 or te2, got {part!r}")
    return PREFIXES[part] + path.replace(".", "_")


def lora_names(unet=None, text_encoder=None, text_encoder_2=None, targets: str = "attention",
               text_encoder_targets_: Optional[str] = None) -> dict[str, tuple[str, str]]:
    """kohya key stem -> (part, module path) for every LoRA target of an SDXL module tree.

    Works on any tree (a real model, a tiny one, one built on the meta device). CLIP-L's last layer
    is left out: it gets no gradient in SDXL (:func:`unused_te1_layers`).
    """
    te_targets = text_encoder_targets_ or ("attention" if targets == "attention" else "transformer")
    out: dict[str, tuple[str, str]] = {}
    for part, model in (("unet", unet), ("te1", text_encoder), ("te2", text_encoder_2)):
        if model is None:
            continue
        if part == "unet":
            paths = unet_targets(model, targets)
        else:
            paths = text_encoder_targets(model, te_targets, unused_te1_layers(model) if part == "te1" else ())
        for path in paths:
            out[kohya_name(part, path)] = (part, path)
    return out


def _lora_layers(model, adapter: str):
    from peft.tuners.lora import LoraLayer

    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and adapter in getattr(module, "lora_A", {}):
            yield name, module


def kohya_state_dict(unet=None, text_encoder=None, text_encoder_2=None, adapter: str = "default",
                     dtype=None) -> dict:
    """Convert the peft LoRA layers of the given models into a kohya state dict (tensors on CPU).

    Models are peft-injected (``inject_adapter_in_model`` / ``get_peft_model``), possibly wrapped
    by accelerate; pass them unwrapped.  ``dtype`` casts the saved tensors (default: keep).
    """
    import torch

    sd: dict[str, torch.Tensor] = {}
    for part, model in (("unet", unet), ("te1", text_encoder), ("te2", text_encoder_2)):
        if model is None:
            continue
        for name, layer in _lora_layers(model, adapter):
            stem = kohya_name(part, name)
            down = layer.lora_A[adapter].weight.detach()
            up = layer.lora_B[adapter].weight.detach()
            rank = layer.r[adapter]
            # peft scales by lora_alpha / r (or / sqrt(r) with rsLoRA); kohya always by alpha / rank.
            alpha = float(layer.scaling[adapter]) * rank
            if dtype is not None:
                down, up = down.to(dtype), up.to(dtype)
            sd[f"{stem}.lora_down.weight"] = down.to("cpu").contiguous()
            sd[f"{stem}.lora_up.weight"] = up.to("cpu").contiguous()
            sd[f"{stem}.alpha"] = torch.tensor(alpha, dtype=dtype or torch.float32)
    return sd


def kohya_to_modules(state_dict: dict) -> dict[str, dict]:
    """Group a kohya state dict by key stem: stem -> {"down", "up", "alpha"}."""
    groups: dict[str, dict] = {}
    for key, value in state_dict.items():
        stem, _, kind = key.partition(".")
        slot = {"lora_down.weight": "down", "lora_up.weight": "up", "alpha": "alpha"}.get(kind)
        if slot is None:
            raise ValueError(f"not a kohya LoRA key: {key}")
        groups.setdefault(stem, {})[slot] = value
    return groups


def _addnet_hashes(tensors: dict, metadata: dict) -> tuple[str, str]:
    """``sshs_model_hash`` / ``sshs_legacy_hash`` as kohya and the webui's additional-networks compute them."""
    from safetensors.torch import save

    data = save(tensors, {k: v for k, v in metadata.items() if k.startswith("ss_")})
    n = int.from_bytes(data[:8], "little")
    model_hash = hashlib.sha256(data[8 + n:]).hexdigest()
    legacy_hash = hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]
    return model_hash, legacy_hash


def save_lora(path: str | os.PathLike, state_dict: dict, metadata: Optional[dict] = None) -> Path:
    """Write ``state_dict`` (+ string metadata, with sshs hashes added) as one safetensors file, atomically."""
    from safetensors.torch import save_file

    meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    meta["sshs_model_hash"], meta["sshs_legacy_hash"] = _addnet_hashes(state_dict, meta)
    with atomic.atomic_path(path) as tmp:
        save_file(state_dict, str(tmp), metadata=meta)
    return Path(path)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file (kohya ``ss_*``, ``modelspec.*``)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})


def tag_frequency(captions_by_dir: dict[str, Iterable[str]]) -> dict[str, dict[str, int]]:
    """kohya's ``ss_tag_frequency``: dataset folder -> comma-separated tag -> count."""
    out: dict[str, dict[str, int]] = {}
    for folder, captions in captions_by_dir.items():
        freq: dict[str, int] = {}
        for caption in captions:
            for tag in (t.strip() for t in caption.split(",")):
                if tag:
                    freq[tag] = freq.get(tag, 0) + 1
        out[folder] = freq
    return out


def modelspec(title: str, resolution: int, date: str, trigger: str = "", description: str = "",
              prediction_type: str = "epsilon", tags: str = "") -> dict[str, str]:
    """Stability AI's model spec fields for an SDXL LoRA."""
    meta = {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
        "modelspec.title": title,
        "modelspec.date": date,
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.prediction_type": prediction_type,
    }
    if trigger:
        meta["modelspec.trigger_phrase"] = trigger
    if description:
        meta["modelspec.description"] = description
    if tags:
        meta["modelspec.tags"] = tags
    return meta


def training_metadata(options: dict, *, base_model: str, captions_by_dir: dict[str, list[str]], num_images: int,
                      num_repeated: int, steps: int, epoch: int, num_batches_per_epoch: int, optimizer_desc: str,
                      started: float, finished: float, title: str, mixed_precision: str,
                      te1_excluded_layers: Iterable[int] = ()) -> dict[str, str]:
    """kohya ``ss_*`` + ``modelspec.*`` metadata of a trained LoRA (all values strings).

    ``te1_excluded_layers``: CLIP-L layers left without a LoRA (recorded in ``ss_network_args``)."""
    import time as _time

    network_args = {"unet_targets": options["unet_targets"]}
    excluded = [int(i) for i in te1_excluded_layers]
    if options["train_text_encoder"] and excluded:
        network_args["te1_excluded_layers"] = ",".join(map(str, excluded))
        network_args["te1_excluded_reason"] = ("SDXL conditions on CLIP-L's penultimate layer: its last layer "
                                               "gets no gradient, so it has no LoRA")
    if options["unet_targets"] == "transformer+conv":
        network_args.update(conv_dim=str(options["rank"]), conv_alpha=str(options["alpha"]))
    trigger = options.get("trigger_word") or ""
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(options["rank"]),
        "ss_network_alpha": str(options["alpha"]),
        "ss_network_args": json.dumps(network_args),
        "ss_network_train_unet_only": str(not options["train_text_encoder"]),
        "ss_base_model_version": "sdxl_base_v1-0",
        "ss_sd_model_name": Path(base_model).name,
        "ss_v2": "False",
        "ss_resolution": f"({options['resolution']}, {options['resolution']})",
        "ss_enable_bucket": str(options["bucketing"]),
        "ss_bucket_no_upscale": str(not options["allow_upscale"]),
        "ss_tag_frequency": json.dumps(tag_frequency(captions_by_dir), ensure_ascii=False),
        "ss_dataset_dirs": json.dumps({d: {"n_repeats": options["repeats"], "img_count": len(c)}
                                       for d, c in captions_by_dir.items()}, ensure_ascii=False),
        "ss_num_train_images": str(num_repeated),
        "ss_num_reg_images": "0",
        "ss_num_batches_per_epoch": str(num_batches_per_epoch),
        "ss_num_epochs": str(options["epochs"]),
        "ss_epoch": str(epoch),
        "ss_steps": str(steps),
        "ss_max_train_steps": str(options["max_steps"]),
        "ss_batch_size_per_device": str(options["batch_size"]),
        "ss_gradient_accumulation_steps": str(options["gradient_accumulation"]),
        "ss_learning_rate": str(options["unet_lr"]),
        "ss_unet_lr": str(options["unet_lr"]),
        "ss_text_encoder_lr": str(options["text_encoder_lr"] if options["train_text_encoder"] else 0.0),
        "ss_lr_scheduler": options["lr_scheduler"],
        "ss_lr_warmup_steps": str(options["lr_warmup_steps"]),
        "ss_optimizer": optimizer_desc,
        "ss_max_grad_norm": str(options["max_grad_norm"]),
        "ss_min_snr_gamma": str(options["min_snr_gamma"]),
        "ss_noise_offset": str(options["noise_offset"]),
        "ss_seed": str(options["seed"]),
        "ss_shuffle_caption": str(options["shuffle_captions"]),
        "ss_keep_tokens": str(options["keep_tokens"]),
        "ss_flip_aug": str(options["flip"]),
        "ss_random_crop": str(options["random_crop"]),
        "ss_cache_latents": str(options["cache_latents"]),
        "ss_gradient_checkpointing": str(options["gradient_checkpointing"]),
        "ss_mixed_precision": mixed_precision,
        "ss_full_fp16": "False",
        "ss_training_started_at": str(started),
        "ss_training_finished_at": str(finished),
        "ss_training_comment": f"trigger word: {trigger}" if trigger else "",
        "ss_output_name": options["output_name"],
        "ss_num_images": str(num_images),
    }
    tags = sorted({t for f in tag_frequency(captions_by_dir).values() for t in f}, key=str)[:20]
    meta.update(modelspec(title=title, resolution=options["resolution"],
                          date=_time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(finished)), trigger=trigger,
                          tags=", ".join(tags)))
    return meta
