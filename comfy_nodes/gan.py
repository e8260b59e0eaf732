"""TrainGAN: an image folder -> a generator in models/gan (+ loss curve, preview); SampleGAN: an IMAGE batch from it."""
from __future__ import annotations

import contextlib
import os

from comfy_api.latest import io, ui

import folder_paths

from trailcam_core.base import TrailcamError
from trailcam_core.gan import (curve, GanTrainOptions, generate, load_directions, load_generator, TAG_DIRECTIONS,
                               train_or_reuse)

from ._common import (CATEGORY, ComfyProgress, fingerprint_path, input_path, model_folder, model_path, option_inputs,
                      options_from, output_path, path_error, run_core, to_tensor)

RUNS = "trailcam/gan_runs"          # run folders (checkpoints, previews) inside the output folder
KIND = "gan"                        # models/gan, where generators are saved and listed
ROOTS = ("input", "output")
_SKIP = ("resume",)

if KIND not in folder_paths.folder_names_and_paths:
    folder_paths.folder_names_and_paths[KIND] = ([os.path.join(folder_paths.models_dir, KIND)], {".safetensors"})


@contextlib.contextmanager
def _with_gradients():
    """ComfyUI runs nodes under torch.inference_mode(); training needs autograd back."""
    import torch

    with torch.inference_mode(False), torch.enable_grad():
        yield


def image_folder(root: str, folder: str):
    if root not in ROOTS:
        raise TrailcamError(f"root must be one of {', '.join(ROOTS)}, not {root!r}")
    path = input_path(folder, "images folder") if root == "input" else output_path(folder, "images folder")
    if not path.is_dir():
        raise TrailcamError(f"images folder {folder!r} not found in ComfyUI's {root} folder")
    return path


class TrainGAN(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TrainGAN", display_name="Train GAN (trailcam)", category=CATEGORY,
            description="Train a GAN from scratch on one image folder (a favourites export, crops): only your "
                        "images, no pre-trained model. Saves the generator into models/gan. Re-queueing with the "
                        "same inputs returns the saved file; Cancel saves a checkpoint and the next run resumes it.",
            inputs=[io.String.Input("folder", default="Favorites", tooltip="Image folder inside ComfyUI's input "
                                    "(or output) folder"),
                    io.Combo.Input("root", options=list(ROOTS), default="input", tooltip="Which ComfyUI folder "
                                   "holds the images"),
                    io.Boolean.Input("resume", default=True, tooltip="Continue an interrupted run of the same name "
                                     "when it fits the images and options"),
                    *option_inputs(GanTrainOptions, skip=_SKIP)],
            outputs=[io.String.Output(display_name="generator", tooltip="The generator file in models/gan"),
                     io.Image.Output(display_name="loss_curve"),
                     io.Image.Output(display_name="preview", tooltip="Samples of the final generator")],
            is_output_node=True)

    @classmethod
    def validate_inputs(cls, folder: str | None = None, root: str | None = None) -> bool | str:
        def check():
            if folder is not None and root is not None:
                image_folder(root, folder)
        return path_error(check)

    @classmethod
    def fingerprint_inputs(cls, folder: str = "", root: str = "input", output_name: str = "trailcam_gan", **_) -> str:
        parts = []
        for get in (lambda: image_folder(root, folder), lambda: model_folder(KIND) / f"{output_name}.safetensors"):
            try:
                parts.append(fingerprint_path(get()))
            except TrailcamError:
                parts.append("missing")
        return "|".join(parts)

    @classmethod
    def execute(cls, folder: str, root: str, resume: bool, **widgets) -> io.NodeOutput:
        data = image_folder(root, folder)
        options = options_from(GanTrainOptions, widgets)
        work = output_path(f"{RUNS}/{options.output_name}", "output_name")
        dest = model_folder(KIND) / f"{options.output_name}.safetensors"
        outcome = run_core(train_or_reuse, data, work, options, dest, resume=resume, progress=ComfyProgress(1),
                           training_context=_with_gradients)
        loss = curve({"discriminator": outcome.d_losses, "generator": outcome.g_losses},
                     f"{options.output_name} on {data.name}")
        g = load_generator(dest)
        preview = generate(g, seed=0, count=min(8, options.preview_count))
        return io.NodeOutput(dest.name, to_tensor([loss]), to_tensor(preview), ui=ui.PreviewText(outcome.summary()))


def _strength_inputs() -> list:
    return [io.Float.Input(f"strength_{name.replace('-', '_')}", default=0.0, min=-5.0, max=5.0, step=0.1,
                           tooltip=f"Move along the fitted '{label}' direction (in latent standard deviations; "
                                   "needs `trailcam gan steer` or the app's Steer first)")
            for name, label in TAG_DIRECTIONS.items()]


class SampleGAN(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SampleGAN", display_name="Sample GAN (trailcam)", category=CATEGORY,
            description="Images from a trailcam generator in models/gan: image i from seed + i, truncation, and "
                        "one strength per tag direction (infrared, flash night, day, glitch, info bar).",
            inputs=[io.String.Input("generator", default="trailcam_gan.safetensors",
                                    tooltip="Generator file in models/gan (link TrainGAN's output here)"),
                    io.Int.Input("seed", default=0, min=0, max=2**31 - 1, control_after_generate=False),
                    io.Int.Input("count", default=8, min=1, max=256),
                    io.Float.Input("truncation", default=1.0, min=0.0, max=2.0, step=0.05,
                                   tooltip="Latents are scaled by this (lower: more typical images)"),
                    *_strength_inputs()],
            outputs=[io.Image.Output(display_name="images")])

    @classmethod
    def validate_inputs(cls, generator: str | None = None) -> bool | str:
        return path_error(lambda: generator is None or model_path(KIND, generator, "generator"))

    @classmethod
    def execute(cls, generator: str, seed: int, count: int, truncation: float, **strengths) -> io.NodeOutput:
        path = model_path(KIND, generator, "generator")
        wanted = {name: float(strengths.get(f"strength_{name.replace('-', '_')}", 0.0)) for name in TAG_DIRECTIONS}
        wanted = {k: v for k, v in wanted.items() if v}
        directions = load_directions(path, required=bool(wanted))
        g = load_generator(path)
        images = run_core(generate, g, seed, count, truncation, directions, wanted, ComfyProgress(count))
        return io.NodeOutput(to_tensor(images))
