"""Generation with a LoRA at chosen model and CLIP strengths, and strength grids (``pipeline``).
"""
from .pipeline import GenerateOptions, LoraSpec, default_generator, parse_strengths, strength_grid

__all__ = ["GenerateOptions", "LoraSpec", "default_generator", "parse_strengths", "strength_grid"]
