"""What a user should be told about the LoRAs of a generation: CLIP strength without text encoders.

``strength_clip`` scales a LoRA's text-encoder weights (ComfyUI's LoraLoader, diffusers'
``set_adapters``).  A LoRA trained UNet-only has none, so its CLIP strength changes nothing: at
0.2 and 0.8 the images are identical to the pixel.  The Generate tab, ``trailcam generate`` /
``strength-grid`` and the docs say so instead of letting the user tune a dead slider.

Example::

    has_text_encoder_weights("flash.safetensors")        # False for a UNet-only LoRA
    clip_strength_notes([LoraSpec("flash.safetensors", 1.0, 0.5)])
    # ['flash.safetensors has no text-encoder weights: CLIP strength has no effect on it ...']
"""
from __future__ import annotations

import os
from typing import Sequence

from trailcam_core.generate.pipeline import LoraSpec, read_lora_keys

__all__ = ["has_text_encoder_weights", "clip_strength_notes", "TEXT_ENCODER_PREFIXES"]

#: key prefixes of text-encoder LoRA weights (kohya SDXL / SD1, diffusers / peft layouts)
TEXT_ENCODER_PREFIXES = ("lora_te1_", "lora_te2_", "lora_te_", "text_encoder.", "text_encoder_2.", "te1.", "te2.")


def has_text_encoder_weights(path: str | os.PathLike) -> bool:
    """True when the LoRA file at ``path`` holds weights for a text encoder (read from its header only)."""
    shapes, _ = read_lora_keys(path)
    return any(k.startswith(TEXT_ENCODER_PREFIXES) for k in shapes)


def clip_strength_notes(loras: Sequence[LoraSpec]) -> list[str]:
    """One sentence per LoRA whose CLIP strength cannot matter (no text-encoder weights)."""
    notes = []
    for spec in loras:
        if not has_text_encoder_weights(spec.path):
            notes.append(f"{spec.name} has no text-encoder weights: CLIP strength has no effect on it "
                         f"(train with train_text_encoder on, the default, to get them)")
    return notes
