"""Model loading shared by the stages: open_clip image/text encoders (``clip``), SDXL pipelines from
diffusers folders or single files (``sdxl``), and tiny random-weight models for offline tests (``tiny``).
"""
from .clip import load_clip, weights_key
from .sdxl import load_sdxl, model_kind
from .tiny import build_tiny_sdxl
from .sdxl_frozen import load_frozen_sdxl

__all__ = ["load_frozen_sdxl", "load_clip", "weights_key", "load_sdxl", "model_kind", "build_tiny_sdxl"]
