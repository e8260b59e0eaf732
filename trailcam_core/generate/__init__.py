"""Generation with a LoRA at chosen model and CLIP strengths, and strength grids (``pipeline``).
"""
from trailcam_core.generate.pipeline import GenerateOptions, LoraSpec, default_generator, parse_strengths, strength_grid
from trailcam_core.generate.notes import clip_strength_notes

__all__ = ["clip_strength_notes", "GenerateOptions", "LoraSpec", "default_generator", "parse_strengths", "strength_grid"]
