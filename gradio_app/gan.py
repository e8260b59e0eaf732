"""GAN tab: train on an image folder (live losses, preview, Stop), sample with truncation and tag
directions, a latent-walk video, fitting the directions, and the evaluation report."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from trailcam_core.base import Cancelled, list_checkpoints, TrailcamError
from trailcam_core.gan import (evaluate_generator, fit_directions, GanEvalOptions, GanInterpolateOptions,
                               GanSampleOptions, GanSteerOptions, GanTrainOptions, interpolation_video,
                               load_directions, sample_to_folder, TAG_DIRECTIONS, train_gan)

from ._common import AppContext, OptionForm, event_fn, long_job, stop_button, stream, watch

MAIN = ("size", "steps", "batch_size", "time_limit_minutes", "output_name", "resume")
# What trains in about a minute on a CPU with the bundled sample (sample mode only).
DEMO = dict(size=64, steps=60, batch_size=4, z_dim=32, ngf=8, ndf=8, preview_every=10, preview_count=9,
            checkpoint_every=30, ema_start=10, ema_beta=0.95, output_name="demo_gan")


def strength_name(tag: str) -> str:
    return "strength_" + tag.replace("-", "_")


def loss_table(points: list[tuple[int, float, float]]) -> pd.DataFrame:
    rows = [(s, d, "discriminator") for s, d, _ in points] + [(s, g, "generator") for s, _, g in points]
    return pd.DataFrame(rows or [(0, float("nan"), "discriminator")], columns=["step", "loss", "network"])


def build(ctx: AppContext) -> None:
    demo = {k: {"value": v} for k, v in DEMO.items()} if ctx.sample_json else {}
    gr.Markdown("A GAN trained from scratch on **only your images**: nothing pre-trained, no SDXL. Train it, "
                "then sample, walk and steer it toward your tags.")
    with gr.Row():
        with gr.Column(scale=2):
            data = gr.Textbox("sample" if ctx.sample_json else "", label="Training images",
                              info="Image folder (a favourites export, crops), below the work folder or absolute")
            run_dir = gr.Textbox("gan", label="Run folder", info="Below the work folder: generator, checkpoints")
            train_form = OptionForm(GanTrainOptions, main=MAIN, overrides=demo)
            with gr.Row():
                train_btn = gr.Button("Train", variant="primary", elem_id="gan_train")
                stop_button("gan_train", "gan_stop")
        with gr.Column(scale=3):
            status = gr.Markdown(elem_classes="trailcam-status", elem_id="gan_status")
            loss_plot = gr.LinePlot(loss_table([]), x="step", y="loss", color="network", title="Hinge losses",
                                    height=240)
            preview = gr.Image(label="Preview (fixed latents, EMA generator)", type="pil", interactive=False,
                               elem_id="gan_preview", height=300)
            gen_file = gr.File(label="Generator file", interactive=False)
    with gr.Accordion("Sample", open=True):
        with gr.Row():
            with gr.Column(scale=2):
                generator = gr.Textbox("gan/demo_gan.safetensors" if ctx.sample_json else "", label="Generator",
                                       info="A .safetensors from training, below the work folder or absolute",
                                       elem_id="gan_generator")
                sample_form = OptionForm(GanSampleOptions)
                sliders = [gr.Slider(-3, 3, value=0.0, step=0.1, label=label.capitalize(),
                                     info="Needs the directions (Steer below)", elem_id=f"gan_{strength_name(t)}")
                           for t, label in TAG_DIRECTIONS.items()]
                sample_btn = gr.Button("Sample", variant="primary", elem_id="gan_sample")
            with gr.Column(scale=3):
                gallery = gr.Gallery(label="Samples", columns=4, height=360, elem_id="gan_gallery")
                sample_note = gr.Markdown()
    with gr.Accordion("Latent walk video", open=False):
        walk_form = OptionForm(GanInterpolateOptions)
        walk_btn = gr.Button("Make video", variant="primary")
        video = gr.Video(label="Interpolation", interactive=False)
    with gr.Accordion("Steer: fit directions for the tags", open=False):
        steer_form = OptionForm(GanSteerOptions, overrides={"samples": {"value": 400}} if ctx.sample_json else None)
        steer_btn = gr.Button("Fit directions", variant="primary")
        steer_table = gr.Markdown()
        strips = gr.Gallery(label="Strips along each direction (-3 .. +3)", columns=1, height=400)
    with gr.Accordion("Evaluate", open=False):
        real = gr.Textbox("sample" if ctx.sample_json else "", label="Real images",
                          info="The training images (or another folder of real photos)")
        eval_form = OptionForm(GanEvalOptions)
        eval_btn = gr.Button("Evaluate", variant="primary")
        eval_md = gr.Markdown()
        eval_pics = gr.Gallery(label="Report pictures", columns=2, height=400)

    def gen_path(text: str) -> Path:
        return ctx.input_path(text, "generator file")

    def do_train(data, run_dir, progress, **values):
        opts = train_form.parse(values).validate()
        src = ctx.input_path(data, "training images folder")
        out = ctx.out(run_dir)
        points: list[tuple[int, float, float]] = []

        def snapshot(text, file=None):
            shown = progress.previews[-1] if progress.previews else gr.update()
            return text, loss_table(list(points)), shown, file, gr.update()

        yield snapshot(f"Loading images from `{ctx.rel(src)}`...")
        try:
            result = yield from stream(watch(lambda: train_gan(src, out, opts, progress=progress,
                                                                on_step=lambda s, d, g: points.append((s, d, g))),
                                              progress), lambda: snapshot(_running(progress)))
        except Cancelled:
            ck = list_checkpoints(out)
            where = f"; checkpoint `{ctx.rel(ck[-1])}`" if ck else ""
            yield snapshot(f"**Stopped** at step {progress.done} of {progress.total}{where}. Set *Resume* to "
                           "`latest` and train again to continue.")
            return
        from PIL import Image

        final = Image.open(result.previews[-1]) if result.previews else gr.update()
        skipped = f"; {len(result.skipped)} unreadable images skipped" if result.skipped else ""
        yield (f"**Done**: {result.steps} steps, final D {result.d_losses[-1]:.3f} G {result.g_losses[-1]:.3f} -> "
               f"`{ctx.rel(result.generator_path)}`{skipped}", loss_table(points), final,
               str(result.generator_path), ctx.rel(result.generator_path))

    def do_sample(generator, **values):
        path = gen_path(generator)
        strengths = {t: float(values.pop(strength_name(t), 0) or 0) for t in TAG_DIRECTIONS}
        strengths = {k: v for k, v in strengths.items() if v}
        opts = sample_form.parse(values)
        out = ctx.out("gan_samples") / path.stem / f"seed{opts.seed}"
        rep = sample_to_folder(path, out, opts, load_directions(path, required=bool(strengths)), strengths)
        pics = [(str(p), p.stem) for p in sorted(out.glob("seed*.png"))[: opts.count]]
        moved = ", ".join(f"{TAG_DIRECTIONS[k]} {v:+g}" for k, v in strengths.items()) or "no directions"
        return pics, f"{rep.processed} images in `{ctx.rel(out)}` (truncation {opts.truncation:g}; {moved})"

    def do_walk(generator, progress, **values):
        path = gen_path(generator)
        opts = walk_form.parse(values)
        dest = ctx.out("gan_videos") / f"{path.stem}-{'-'.join(map(str, opts.seeds))}.mp4"
        return str(interpolation_video(path, dest, opts, progress=progress))

    def do_steer(generator, progress, **values):
        path = gen_path(generator)
        opts = steer_form.parse(values)
        result = fit_directions(path, opts, out_dir=ctx.out("gan_steer") / path.stem, progress=progress)
        pics = [(str(p), TAG_DIRECTIONS.get(n, n)) for n, p in result.strips.items()]
        return f"Directions saved beside the generator (`{ctx.rel(result.path)}`)\n\n{result.table()}", pics

    def do_eval(generator, real, progress, **values):
        path = gen_path(generator)
        opts = eval_form.parse(values)
        src = ctx.input_path(real, "real images folder")
        rep = evaluate_generator(path, src, ctx.out("gan_eval") / path.stem, opts, progress=progress)
        text = rep.markdown_path.read_text(encoding="utf-8").split("\n## ")[0]
        return text, [(str(p), k) for k, p in rep.pictures.items()]

    long_job(train_btn.click, event_fn(do_train, ["data", "run_dir", *train_form.names], progress=True,
                                       stop_job="gan_train"),
             [data, run_dir, *train_form.components], [status, loss_plot, preview, gen_file, generator], "gan_train")
    s_names = ["generator", *sample_form.names, *[strength_name(t) for t in TAG_DIRECTIONS]]
    long_job(sample_btn.click, event_fn(do_sample, s_names), [generator, *sample_form.components, *sliders],
             [gallery, sample_note], "gan_sample")
    long_job(walk_btn.click, event_fn(do_walk, ["generator", *walk_form.names], progress=True),
             [generator, *walk_form.components], [video], "gan_interpolate")
    long_job(steer_btn.click, event_fn(do_steer, ["generator", *steer_form.names], progress=True),
             [generator, *steer_form.components], [steer_table, strips], "gan_steer")
    long_job(eval_btn.click, event_fn(do_eval, ["generator", "real", *eval_form.names], progress=True),
             [generator, real, *eval_form.components], [eval_md, eval_pics], "gan_eval")



def _running(progress) -> str:
    if not progress.reports:
        return "Loading images..."
    return f"Step {progress.done} of {progress.total}: {progress.message}"

