"""EmbedImages: one feature vector per image of a subset (-> TRAILCAM_EMBEDDINGS)."""
from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io

from trailcam_core.embed import embed_images, EmbedOptions

from trailcam_core.base import TrailcamError

from ._common import (CATEGORY, EMBEDDINGS, SUBSET, ComfyProgress, SubsetData, model_path, option_inputs, options_from,
                      path_error, run_core, save_batch, to_pils)

MODEL_KIND = "open_clip"   # local open_clip weights live in models/open_clip/
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def embed_cache_dir() -> str:
    """Features are cached in models/trailcam/embed_cache, so a restart keeps them."""
    return os.path.join(folder_paths.models_dir, "trailcam", "embed_cache")


def local_weights(model: str, pretrained: str) -> tuple[str, str]:
    """Local files named in the widgets resolve inside models/open_clip/ (no absolute paths, no ``..``)."""
    if model.startswith("local-dir:"):
        model = "local-dir:" + str(model_path(MODEL_KIND, model[len("local-dir:"):], "open_clip model folder"))
    if pretrained and ("/" in pretrained or "\\" in pretrained or pretrained.lower().endswith(_WEIGHT_SUFFIXES)):
        pretrained = str(model_path(MODEL_KIND, pretrained, "open_clip weights"))
    return model, pretrained


if MODEL_KIND not in folder_paths.folder_names_and_paths:
    folder_paths.add_model_folder_path(MODEL_KIND, os.path.join(folder_paths.models_dir, MODEL_KIND))


class EmbedImages(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EmbedImages", display_name="Embed Images (trailcam)", category=CATEGORY,
            description="One open_clip (or image-pyramid) feature vector per image of the subset; cached on disk "
                        "so a rerun over the same files computes nothing. Local weights go in models/open_clip/.",
            inputs=[SUBSET.Input("subset", optional=True, tooltip="The images to embed (their files)"),
                    io.Image.Input("images", optional=True, tooltip="Or an IMAGE batch (e.g. generations)"),
                    *option_inputs(EmbedOptions, skip=("device", "workers"))],
            outputs=[EMBEDDINGS.Output(display_name="embeddings")])

    @classmethod
    def validate_inputs(cls, pretrained: str | None = None) -> bool | str:
        # One input per check: ComfyUI files a failed check under every input the method takes, so
        # only the weights file is checked here; a local-dir model is checked when the node runs.
        # None: the widget is linked from another node.
        return path_error(lambda: local_weights("", pretrained or ""))

    @classmethod
    def execute(cls, subset: SubsetData | None = None, images=None, **widgets) -> io.NodeOutput:
        if (subset is None) == (images is None):
            raise TrailcamError("EmbedImages: connect either a subset or an IMAGE batch")
        model, pretrained = local_weights(widgets["model"], widgets["pretrained"])
        options = options_from(EmbedOptions, widgets, model=model, pretrained=pretrained)
        # an IMAGE batch is embedded from PNGs in ComfyUI's temp folder (the core reads files)
        source = subset.records if subset is not None else save_batch(to_pils(images), "embed")
        emb = run_core(embed_images, source, options, cache_dir=embed_cache_dir(),
                       progress=ComfyProgress(len(source)))
        return io.NodeOutput(emb)
