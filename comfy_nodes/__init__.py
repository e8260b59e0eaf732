"""The Trailcam Curation node pack for ComfyUI (V3 node API, ``comfy_api.latest``).

One small module per stage; each node parses its inputs, calls one ``trailcam_core`` function and
presents the result.  ComfyUI finds the nodes through :func:`comfy_entrypoint`, which the root
``__init__.py`` of the repository re-exports.
"""
from __future__ import annotations

import importlib
import logging

from comfy_api.latest import ComfyExtension, io

# module -> node classes it defines, in the order of the "Add Node" menu
_MODULES = {
    "subset": ["LoadTrailcamSubset"],
    "charts": ["DistributionChart"],
    "crop": ["CropSquare"],
    "captions": ["AutoTagCaptions", "SaveCaptionedDataset"],
    "curation": ["CuratedSubset"],
    "embed": ["EmbedImages"],
    "mosaic": ["MosaicLayout"],
    "atlas": ["JointAtlas"],
    "train": ["TrainLoRA", "TrainLoRAOptions"],
    "gan": ["TrainGAN", "SampleGAN"],
}


def _load_nodes() -> list[type[io.ComfyNode]]:
    nodes = []
    for module, names in _MODULES.items():
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except Exception as exc:  # one broken stage must not hide the others; the log says why
            logging.warning("[trailcam] nodes %s not loaded: %s: %s", ", ".join(names), exc.__class__.__name__, exc)
            continue
        nodes.extend(getattr(mod, n) for n in names if hasattr(mod, n))
    return nodes


NODES = _load_nodes()


class TrailcamExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> TrailcamExtension:
    return TrailcamExtension()
