"""Train LoRA tab: the training parameters, base model, live loss, sample previews, Stop, the LoRA file."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from trailcam_core.base import Cancelled, list_checkpoints
from trailcam_core.lora import PRESETS, train_lora, TrainOptions

from ._common import AppContext, OptionForm, event_fn, long_job, stop_button, stream, watch
from .generate import demo_base, resolve_base

MAIN = ("output_name", "trigger_word", "rank", "alpha", "unet_lr", "epochs", "max_steps", "batch_size",
        "resolution", "sample_every_n_steps", "sample_prompts", "resume")
# What the bundled tiny demo model trains with on a CPU in about a minute (sample mode only).
DEMO = dict(rank=4, alpha=4.0, max_steps=12, resolution=128, bucketing=False, sample_every_n_steps=6,
            sample_prompts=["trailcam photo, coyote"], sample_steps=4, gradient_checkpointing=False,
            output_name="demo_lora", unet_lr=1e-3)
DEFAULTS = "(defaults)"


def loss_table(points: list[tuple[int, float]]) -> pd.DataFrame:
    return pd.DataFrame(points or [(0, float("nan"))], columns=["step", "loss"])


def build(ctx: AppContext) -> None:
    overrides = {k: {"value": v} for k, v in DEMO.items()} if ctx.sample_json else {}
    overrides.setdefault("sample_prompts", {})["separator"] = "\n"
    with gr.Row():
        with gr.Column(scale=2):
            data = gr.Textbox("training", label="Training images",
                              info="Folder of images with .txt captions (exported from the Tags tab), below the "
                                   "work folder or an absolute path")
            base = gr.Textbox(str(demo_base(ctx)) if ctx.sample_json else "", label="Base model",
                              info="SDXL diffusers folder or single-file checkpoint (default: the tiny demo model)")
            out_name = gr.Textbox("loras", label="Output folder", info="Below the work folder")
            preset = gr.Dropdown([DEFAULTS, *PRESETS], value=DEFAULTS, label="Preset",
                                 info="Fill the parameters from a named preset")
            with gr.Row():      # above the long parameter list, where it is seen without scrolling
                run_btn = gr.Button("Train", variant="primary", elem_id="train_run")
                stop_button("train", "train_stop")
            form = OptionForm(TrainOptions, main=MAIN, overrides=overrides)
        with gr.Column(scale=3):
            status = gr.Markdown(elem_classes="trailcam-status")
            loss_plot = gr.LinePlot(loss_table([]), x="step", y="loss", title="Training loss", height=260,
                                    show_label=False)    # its title says what it is; a label would cover it
            samples = gr.Gallery(label="Samples as they appear", columns=4, height=240)
            lora_file = gr.File(label="LoRA file", interactive=False)

    def do_preset(name):
        values = TrainOptions.preset(name) if name in PRESETS else TrainOptions()
        return [gr.update(value=_ui_value(getattr(values, n))) for n in form.names]

    def do_train(data, base, out_name, progress, **values):
        opts = form.parse(values).validate()
        src = ctx.input_path(data, "training images folder")
        out = ctx.out(out_name)
        base_path = resolve_base(ctx, base)
        points: list[tuple[int, float]] = []
        seen_samples: list[str] = []

        def snapshot(text: str, file=None):
            files = sorted((out / "samples").glob(f"{opts.output_name}-step*.png"))
            seen_samples[:] = [str(p) for p in files[-8:]]
            return text, loss_table(list(points)), [(p, Path(p).stem.rsplit("-", 2)[-2]) for p in seen_samples], file

        yield snapshot(f"Preparing: {src} with {base_path.name}")
        try:
            result = yield from stream(watch(lambda: train_lora(src, base_path, out, opts, progress=progress,
                                                               on_step=lambda step, loss: points.append((step, loss))),
                                              progress), lambda: snapshot(_running(progress)))
        except Cancelled:
            ckpt = list_checkpoints(out)
            where = f"; checkpoint `{ctx.rel(ckpt[-1])}`" if ckpt else ""
            yield snapshot(f"**Stopped** at step {progress.done} of {progress.total}{where}. "
                           "Set *Resume* to `latest` and train again to continue.")
            return
        final = f" final loss {result.losses[-1]:.4f}" if result.losses else ""
        yield snapshot(f"**Done**: {result.steps} steps,{final} -> `{ctx.rel(result.lora_path)}`",
                       str(result.lora_path))

    preset.change(event_fn(do_preset, ["preset"]), [preset], form.components, api_name="train_preset")
    ctx.shared["train_event"] = long_job(run_btn.click, event_fn(do_train, ["data", "base", "out_name", *form.names], progress=True,
                                     stop_job="train"),
             [data, base, out_name, *form.components], [status, loss_plot, samples, lora_file], "train_run")



def _running(progress) -> str:
    if not progress.reports:
        return "Loading the base model and caching latents..."
    return f"Step {progress.done} of {progress.total}: {progress.message}"


def _ui_value(value):
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return value
