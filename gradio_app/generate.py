"""Generate tab: prompt, seed, steps, a LoRA with its model and CLIP strengths; gallery; strength grid."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from trailcam_core.generate import (clip_strength_notes, default_generator, GenerateOptions, LoraSpec,
                                    parse_strengths, strength_grid)
from trailcam_core.lora import find_lora_files

from ._common import AppContext, OptionForm, event_fn, existing, long_job, stop_button, stopped_message


NONE = "(no LoRA)"
MAIN = ("prompt", "negative_prompt", "seed", "steps")


def demo_base(ctx: AppContext) -> Path:
    """Where the tiny offline SDXL used by the demo and the tests lives (built on first use)."""
    return ctx.workdir / "models" / "tiny-sdxl"


def resolve_base(ctx: AppContext, text: str) -> Path:
    """The base model the user named; the demo model is built the first time it is asked for."""
    if (text or "").strip() and Path(text).expanduser().resolve() == demo_base(ctx).resolve():
        from trailcam_core.models import build_tiny_sdxl

        return build_tiny_sdxl(demo_base(ctx))
    return ctx.input_path(text, "base model (diffusers folder or .safetensors checkpoint)")


def lora_choices(ctx: AppContext) -> list[str]:
    """LoRA files below the work folder (by their metadata: no latent caches or checkpoint
    internals), as paths relative to it, newest first."""
    return [NONE] + [ctx.rel(p) for p in find_lora_files(ctx.workdir, skip_dirs=("models", "cache"))]


def lora_path(ctx: AppContext, choice: str) -> Path | None:
    if not choice or choice == NONE:
        return None
    p = Path(choice).expanduser()
    return existing(str(p if p.is_absolute() else ctx.workdir / p), "LoRA file")


def build(ctx: AppContext) -> None:
    gen = default_generator()
    with gr.Row():
        with gr.Column(scale=2):
            base = gr.Textbox(str(demo_base(ctx)) if ctx.sample_json else "", label="Base model",
                              info="SDXL diffusers folder or single-file checkpoint on this machine "
                                   "(the default is a tiny random-weight demo model)", elem_id="generate_base")
            ctx.shared["base_model"] = base
            form = OptionForm(GenerateOptions, main=MAIN, defer_more=True)
            with gr.Row():
                lora = gr.Dropdown(lora_choices(ctx), value=NONE, label="LoRA", allow_custom_value=True,
                                   info="A .safetensors LoRA below the work folder, or a path")
                refresh = gr.Button("Refresh list", size="sm")
            strength_model = gr.Slider(-2, 2, value=1.0, step=0.05, label="Model strength",
                                       info="How strongly the LoRA changes the UNet (ComfyUI strength_model)",
                                       elem_id="strength_model")
            strength_clip = gr.Slider(-2, 2, value=1.0, step=0.05, label="CLIP strength",
                                      info="How strongly the LoRA changes the text encoders (strength_clip)",
                                      elem_id="strength_clip")
            form.build_more()
            with gr.Row():
                run_btn = gr.Button("Generate", variant="primary", elem_id="generate_run")
                stop_button("generate", "generate_stop")
        with gr.Column(scale=3):
            gallery = gr.Gallery(label="Generated", columns=4, height=420, elem_id="generate_gallery")
            info = gr.Markdown(elem_classes="trailcam-status")
    with gr.Accordion("Strength grid", open=False):
        with gr.Row():
            grid_model = gr.Textbox("0, 0.5, 1", label="Model strengths (rows)", info="'0,0.5,1' or 'start:stop:count'")
            grid_clip = gr.Textbox("0, 0.5, 1", label="CLIP strengths (columns)")
            grid_btn = gr.Button("Make grid", variant="primary")
        grid_img = gr.Image(label="Strength grid", show_label=False, type="filepath", interactive=False)  # titled
        grid_info = gr.Markdown(elem_classes="trailcam-status")

    names, components = form.names, form.components
    options_from = form.parse

    def do_generate(base, lora, strength_model, strength_clip, progress, **values):
        opts = options_from(values)
        path = lora_path(ctx, lora)
        specs = [LoraSpec(str(path), float(strength_model), float(strength_clip))] if path else []
        out = ctx.out("generated")
        images = gen.generate(resolve_base(ctx, base), specs, opts, out_dir=out, progress=progress)
        pics = [(str(im.path), f"seed {im.params.get('seed')}") for im in images]
        lora_text = f"{path.name} (model {strength_model:g}, clip {strength_clip:g})" if path else "none"
        size = f"{images[0].params['width']}x{images[0].params['height']}" if images else ""
        auto = f" ({gen.size_note})" if gen.size_note else ""
        notes = "".join(f"\n\nNote: {n}" for n in clip_strength_notes(specs))
        return pics, f"{len(pics)} image(s) {size}{auto} in `{ctx.rel(out)}`; LoRA: {lora_text}{notes}"

    def do_grid(base, lora, grid_model, grid_clip, progress, **values):
        path = lora_path(ctx, lora)
        if path is None:
            raise gr.Error("Choose a LoRA for the strength grid.")
        opts = options_from(values)
        out = ctx.out("generated") / "grids" / f"grid_{path.stem}_seed{opts.seed}.png"
        grid = strength_grid(resolve_base(ctx, base), path, opts, parse_strengths(grid_model),
                             parse_strengths(grid_clip), out_path=out, generator=gen, progress=progress)
        return str(out), f"Saved `{ctx.rel(out)}` ({grid.width}x{grid.height})"

    def lora_note(lora_name):
        try:
            path = lora_path(ctx, lora_name)
            notes = clip_strength_notes([LoraSpec(str(path))]) if path else []
        except Exception:        # a missing or unreadable file is reported when Generate is pressed
            return ""
        return f"Note: {notes[0]}" if notes else ""

    lora.change(lora_note, lora, info, api_name="generate_lora_note")
    refresh.click(lambda: gr.update(choices=lora_choices(ctx)), None, lora, api_name="generate_loras")
    if "train_event" in ctx.shared:      # a LoRA just trained appears in the list without a click
        ctx.shared["train_event"].then(lambda: gr.update(choices=lora_choices(ctx)), None, lora,
                                       api_name="generate_loras_after_train", api_visibility="private")
    # Stop is no error: the page keeps what it shows and says where it stopped
    long_job(run_btn.click, event_fn(do_generate, ["base", "lora", "strength_model", "strength_clip", *names],
                                     progress=True, stop_job="generate",
                                     stopped=stopped_message(2, 1, "Nothing was saved.")),
             [base, lora, strength_model, strength_clip, *components], [gallery, info], "generate")
    long_job(grid_btn.click, event_fn(do_grid, ["base", "lora", "grid_model", "grid_clip", *names],
                                      progress=True, stop_job="generate",
                                      stopped=stopped_message(2, 1, "No grid was saved.")),
             [base, lora, grid_model, grid_clip, *components], [grid_img, grid_info], "generate_grid")
    ctx.shared["lora_dropdown"] = lora
