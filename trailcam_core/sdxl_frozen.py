"""Load SDXL's frozen parts for training straight in the training dtype, one tensor at a time.

Loading the whole pipeline in fp32 and casting afterwards costs twice the model in memory (14.7 GiB
peak for full-size SDXL on the CPU). Here every part is built in its final dtype:

- the text encoders in the training dtype (transformers ``from_pretrained(torch_dtype=...)``),
- the VAE in fp32 (fp16/bf16 VAEs give NaN or black images),
- the UNet (2.6 B parameters, 5 GB in bf16) on the meta device, then filled tensor by tensor from
  its safetensors file with plain reads: no memory map keeps the file's pages resident beside the
  model, so the peak is the model in its dtype plus one tensor.

Single-file checkpoints go through diffusers' single-file loader in the training dtype, with the
VAE loaded again in fp32 from the same file.

    parts = load_frozen_sdxl("models/sdxl-base", torch.bfloat16)
    parts.unet.dtype, parts.vae.dtype        # (torch.bfloat16, torch.float32)
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator, Optional

from .errors import TrailcamError
from .sdxl import load_sdxl, model_kind, write_sdxl_config_dir

_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}
WEIGHTS = "diffusion_pytorch_model"


def read_safetensors(path: str | os.PathLike, dtype=None) -> Iterator[tuple[str, "object"]]:
    """Yield (name, tensor) from a .safetensors file with ordinary reads (no memory map), each cast to
    ``dtype`` when it is a floating tensor. Only one tensor's bytes are held at a time."""
    import torch

    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise TrailcamError(f"{path}: not a safetensors file (too short)")
        n = int.from_bytes(head, "little")
        try:
            header = json.loads(fh.read(n))
        except ValueError as exc:
            raise TrailcamError(f"{path}: not a safetensors file ({exc})") from None
        base = 8 + n
        for name, info in sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                                 key=lambda kv: kv[1]["data_offsets"][0]):
            start, end = info["data_offsets"]
            kind = _ST_DTYPES.get(info["dtype"])
            if kind is None:
                raise TrailcamError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
            fh.seek(base + start)
            buf = bytearray(end - start)
            if fh.readinto(buf) != len(buf):
                raise TrailcamError(f"{path}: file ends inside tensor {name} (truncated download?)")
            t = torch.frombuffer(buf, dtype=getattr(torch, kind)) if buf else torch.empty(0, dtype=getattr(torch, kind))
            t = t.reshape(info["shape"])
            if dtype is not None and t.is_floating_point() and t.dtype != dtype:
                t = t.to(dtype)
            yield name, t


def weight_files(folder: Path) -> list[Path]:
    """The safetensors file(s) of a diffusers model folder: plain, sharded (index) or the fp16 variant."""
    for stem in (WEIGHTS, f"{WEIGHTS}.fp16"):
        single = folder / f"{stem}.safetensors"
        if single.is_file():
            return [single]
        index = folder / f"{stem}.safetensors.index.json"
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [folder / s for s in shards]
    return []


def load_unet_streaming(folder: str | os.PathLike, dtype):
    """A diffusers UNet2DConditionModel from ``folder``, built on the meta device and filled from its
    safetensors file(s) in ``dtype``; None when the folder has no safetensors weights."""
    from accelerate import init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from diffusers import UNet2DConditionModel

    folder = Path(folder)
    files = weight_files(folder)
    if not files:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = UNet2DConditionModel.load_config(str(folder))
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(config)
    expected = set(unet.state_dict())
    seen: set[str] = set()
    for f in files:
        for name, t in read_safetensors(f, dtype):
            if name not in expected:
                raise TrailcamError(f"{f}: unexpected UNet weight {name} (not an SDXL UNet of this configuration)")
            # dtype given: accelerate would otherwise cast to the meta parameter's fp32
            set_module_tensor_to_device(unet, name, "cpu", value=t, dtype=t.dtype)
            seen.add(name)
    missing = expected - seen
    if missing:
        raise TrailcamError(f"{folder}: the UNet weights lack {len(missing)} tensors, e.g. {sorted(missing)[0]}")
    unet.eval()
    return unet


def load_frozen_sdxl(path: str | os.PathLike, dtype, vae_dtype=None, config_dir: Optional[str] = None):
    """SDXL's parts for training: text encoders and UNet in ``dtype``, the VAE in ``vae_dtype`` (fp32).

    Returns a namespace with ``unet``, ``vae``, ``text_encoder``, ``text_encoder_2``, ``tokenizer``,
    ``tokenizer_2`` and ``scheduler`` (what the trainer reads from a pipeline).
    """
    import torch

    vae_dtype = vae_dtype or torch.float32
    kind = model_kind(path)
    if kind == "single_file":
        pipe = load_sdxl(path, dtype=dtype, config_dir=config_dir)
        if vae_dtype != dtype:
            from diffusers import AutoencoderKL

            del pipe.vae
            cfg = str(config_dir or write_sdxl_config_dir())
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    vae = AutoencoderKL.from_single_file(str(path), config=cfg, subfolder="vae", torch_dtype=vae_dtype,
                                                         local_files_only=True)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise TrailcamError(f"could not load the VAE of {path}: {exc}") from exc
        else:
            vae = pipe.vae
        return SimpleNamespace(unet=pipe.unet, vae=vae, text_encoder=pipe.text_encoder,
                               text_encoder_2=pipe.text_encoder_2, tokenizer=pipe.tokenizer,
                               tokenizer_2=pipe.tokenizer_2, scheduler=pipe.scheduler)

    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    root = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            # text encoders first: their loaders' transient copies are gone before the UNet arrives
            te1 = CLIPTextModel.from_pretrained(str(root / "text_encoder"), torch_dtype=dtype, local_files_only=True)
            te2 = CLIPTextModelWithProjection.from_pretrained(str(root / "text_encoder_2"), torch_dtype=dtype,
                                                              local_files_only=True)
            tok1 = CLIPTokenizer.from_pretrained(str(root / "tokenizer"), local_files_only=True)
            tok2 = CLIPTokenizer.from_pretrained(str(root / "tokenizer_2"), local_files_only=True)
            vae = AutoencoderKL.from_pretrained(str(root / "vae"), torch_dtype=vae_dtype, local_files_only=True)
            scheduler = SimpleNamespace(config=json.loads((root / "scheduler" / "scheduler_config.json").read_text()))
            unet = load_unet_streaming(root / "unet", dtype)
            if unet is None:                   # .bin weights only: diffusers' own loader, same dtype
                from diffusers import UNet2DConditionModel

                unet = UNet2DConditionModel.from_pretrained(str(root / "unet"), torch_dtype=dtype,
                                                            local_files_only=True)
    except TrailcamError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise TrailcamError(f"could not load SDXL base model from {path}: {exc}") from exc
    for m in (te1, te2, vae, unet):
        m.requires_grad_(False)
    return SimpleNamespace(unet=unet, vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tok1,
                           tokenizer_2=tok2, scheduler=scheduler)
