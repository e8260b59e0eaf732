"""TrainLoRA: a captioned dataset folder -> an SDXL LoRA in models/loras (LoraLoader lists it) + its loss curve."""
from __future__ import annotations

import contextlib
from pathlib import Path

from comfy_api.latest import io, ui

from trailcam_core.ingest import loss_curve
from trailcam_core.base import TrailcamError
from trailcam_core.lora import check_output_name, train_or_reuse, TrainOptions

from ._common import (CATEGORY, ComfyProgress, fingerprint_path, list_diffusers_folders, list_models, model_folder,
                      model_path, option_inputs, options_from, output_path, path_error, run_core, to_tensor)

RUNS = "trailcam/lora_runs"        # work folders (caches, checkpoints, samples) inside the output folder
# Paths and resuming are the node's business (confined folders, the resume toggle), not free text.
_SKIP = ("resume",)
# On TrainLoRA itself, as on ComfyUI's own trainer node: what nearly every run sets.  The other
# options come from an optional TrainLoRAOptions node (its defaults when it is not connected).
ESSENTIALS = ("rank", "epochs", "max_steps", "unet_lr", "resolution", "output_name")
TRAIN_OPTIONS = io.Custom("TRAILCAM_TRAIN_OPTIONS")


def _free_comfy_memory() -> None:
    """Give the trainer the memory ComfyUI's cached models hold."""
    import comfy.model_management as mm

    mm.unload_all_models()
    mm.soft_empty_cache()


@contextlib.contextmanager
def _with_gradients():
    """ComfyUI runs nodes under torch.inference_mode(); training needs autograd back."""
    import torch

    with torch.inference_mode(False), torch.enable_grad():
        yield


def base_model_path(name: str) -> Path:
    """A checkpoint file in models/checkpoints, or a diffusers folder (listed with a trailing /) in models/diffusers."""
    if name.endswith("/"):
        return model_path("diffusers", name.rstrip("/"), "base model")
    return model_path("checkpoints", name, "base model")


def default_base(names: list[str]) -> str | None:
    """The SDXL base a new TrainLoRA node starts with: the first whose name says SDXL, else the first."""
    return next((n for n in names if "xl" in n.lower()), names[0] if names else None)


class TrainLoRAOptions(io.ComfyNode):
    """Every TrainOptions field that is not on TrainLoRA itself, as one optional input of TrainLoRA."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TrainLoRAOptions", display_name="Train LoRA Options (trailcam)", category=CATEGORY,
            description="The rest of the training options (alpha, targets, text encoders, optimizer, schedule, "
                        "captions, buckets, memory, checkpoints, samples) for TrainLoRA's optional 'options' input.",
            inputs=option_inputs(TrainOptions, skip=_SKIP + ESSENTIALS),
            outputs=[TRAIN_OPTIONS.Output(display_name="options")])

    @classmethod
    def execute(cls, **widgets) -> io.NodeOutput:
        options_from(TrainOptions, widgets).validate()   # bad combinations fail here, on this node
        return io.NodeOutput(dict(widgets))


class TrainLoRA(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        bases = list_models("checkpoints") + list_diffusers_folders()
        return io.Schema(
            node_id="TrainLoRA", display_name="Train LoRA (trailcam)", category=CATEGORY,
            description="Train an SDXL LoRA on a captioned image folder (e.g. from SaveCaptionedDataset) and save it "
                        "into models/loras, where the stock LoraLoader lists it. Re-queueing with the same inputs "
                        "returns the saved LoRA instead of training again; a cancelled run resumes.",
            inputs=[io.String.Input("dataset", default="trailcam/dataset",
                                    tooltip="Captioned image folder inside ComfyUI's output folder"),
                    io.Combo.Input("base_model", options=bases, default=default_base(bases),
                                   tooltip="SDXL checkpoint (models/checkpoints) or diffusers folder (models/diffusers)"),
                    *[w for name in ESSENTIALS for w in option_inputs(TrainOptions, skip=_SKIP) if w.id == name],
                    io.Boolean.Input("resume", default=True,
                                     tooltip="Continue from the newest checkpoint of an interrupted run with the same name "
                                             "(when it fits the data and options; otherwise train afresh)"),
                    TRAIN_OPTIONS.Input("options", optional=True,
                                        tooltip="Every other training option, from a TrainLoRAOptions node "
                                                "(its defaults when not connected)")],
            outputs=[io.String.Output(display_name="lora_name", tooltip="The LoRA as LoraLoader lists it"),
                     io.Image.Output(display_name="loss_curve")],
            is_output_node=True)

    @classmethod
    def validate_inputs(cls, output_name: str | None = None) -> bool | str:
        # One input per check: ComfyUI files a failed check under every input the method takes.
        # base_model is a combo (ComfyUI checks it); dataset is usually linked and checked when it runs.
        if output_name is None:              # linked from another node, checked when it runs
            return True
        return path_error(lambda: check_output_name(output_name))

    @classmethod
    def fingerprint_inputs(cls, base_model: str = "", output_name: str = "trailcam_lora", **_) -> str:
        # Re-run (and so re-check) when the base model or the LoRA in models/loras changes or disappears;
        # the node itself then decides whether training is needed.
        parts = []
        for get in (lambda: base_model_path(base_model), lambda: model_folder("loras") / f"{output_name}.safetensors"):
            try:
                parts.append(fingerprint_path(get()))
            except TrailcamError:
                parts.append("missing")
        return "|".join(parts)

    @classmethod
    def execute(cls, dataset: str, base_model: str, resume: bool, options: dict | None = None,
                **widgets) -> io.NodeOutput:
        data_dir = output_path(dataset, "dataset")
        if not data_dir.is_dir():
            raise TrailcamError(f"dataset folder {dataset!r} not found in ComfyUI's output folder")
        base = base_model_path(base_model)
        options = options_from(TrainOptions, {**(options or {}), **widgets})
        work = output_path(f"{RUNS}/{options.output_name}", "output_name")
        final = model_folder("loras") / f"{options.output_name}.safetensors"
        outcome = run_core(train_or_reuse, data_dir, base, work, options, final, resume=resume,
                           progress=ComfyProgress(1), before_training=_free_comfy_memory,
                           training_context=_with_gradients)
        losses, note = outcome.losses, outcome.summary()
        curve = loss_curve(losses, f"{options.output_name} on {data_dir.name}")
        return io.NodeOutput(final.name, to_tensor([curve]), ui=ui.PreviewText(note))
