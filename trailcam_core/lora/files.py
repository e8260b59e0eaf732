"""Which .safetensors files are LoRAs: read from each file's header, never from its name or folder.

A training folder holds many .safetensors files that are not LoRAs: cached latents
(``cache/latents/*.safetensors``), checkpoint internals (``adapter.safetensors``), base models.
A LoRA is a file whose metadata says so (kohya ``ss_network_module``, or a model spec
architecture ending in ``/lora``), or whose tensors have kohya's LoRA layout.

    find_lora_files("work/")      # [Path("work/loras/night.safetensors"), ...], newest first
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Optional

_KOHYA_PREFIXES = ("lora_unet_", "lora_te1_", "lora_te2_", "lora_te_")
_KOHYA_SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha")
_MAX_HEADER = 100 * 1024 * 1024


def read_header(path: str | os.PathLike) -> Optional[dict]:
    """The JSON header of a .safetensors file (tensor table + ``__metadata__``), or None if unreadable."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) != 8:
                return None
            n = int.from_bytes(head, "little")
            if not 2 <= n <= _MAX_HEADER:
                return None
            header = json.loads(fh.read(n))
    except (OSError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def is_lora_file(path: str | os.PathLike) -> bool:
    """True when the file's metadata (or its kohya key layout) says it is a LoRA."""
    header = read_header(path)
    if header is None:
        return False
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        meta = {}
    if meta.get("ss_network_module") or str(meta.get("modelspec.architecture", "")).endswith("/lora"):
        return True
    keys = [k for k in header if k != "__metadata__"]
    return bool(keys) and all(k.startswith(_KOHYA_PREFIXES) and k.endswith(_KOHYA_SUFFIXES) for k in keys)


def find_lora_files(root: str | os.PathLike, skip_dirs: Iterable[str] = ()) -> list[Path]:
    """LoRA files below ``root`` (hidden folders and ``skip_dirs`` at the top left out), newest first."""
    root = Path(root)
    skip = set(skip_dirs)
    found = []
    for p in root.rglob("*.safetensors"):
        rel = p.relative_to(root).parts
        if rel[0] in skip or any(part.startswith(".") for part in rel) or not p.is_file():
            continue
        if is_lora_file(p):
            found.append(p)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
