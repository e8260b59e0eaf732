"""Crop tab: mode, size, info-bar strip; a before/after preview; the batch run with progress and Stop."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from trailcam_core.crop import crop_batch, crop_image, CropOptions, detect_info_bar, usable_boxes
from trailcam_core.base import DataError, ImageRecord, open_image_safely, placeholder, TrailcamError
from trailcam_core.ingest import list_media

from ._common import AppContext, OptionForm, event_fn, long_job, report_markdown, stop_button, thumbnail

MAIN = ("mode", "size", "strip_info_bar", "margin", "min_score")
SOURCES = ("Dataset subset", "Folder")
SHOW = 24


def source_of(ctx: AppContext, subset, source: str, folder: str):
    """The crop input: the subset's records, or a folder the user typed."""
    if source == SOURCES[1]:
        return ctx.input_path(folder, "image folder")
    if subset is None:
        raise TrailcamError("no subset yet: make one in the Dataset tab, or choose Folder")
    return subset.records()


def preview_record(src, index: int) -> ImageRecord:
    if isinstance(src, Path):
        files = [p for p in list_media(src) if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".tif",
                                                                      ".tiff", ".bmp")]
        if not files:
            raise TrailcamError(f"no images in {src}")
        p = files[min(int(index), len(files) - 1)]
        return ImageRecord(image_id=p.stem, path=p, file_name=p.name)
    if not src:
        raise TrailcamError("the subset is empty")
    return src[min(int(index), len(src) - 1)]


def build(ctx: AppContext) -> None:
    subset = ctx.shared.get("subset") or gr.State(None)
    with gr.Row():
        with gr.Column(scale=2):
            source = gr.Radio(list(SOURCES), value=SOURCES[0], label="Crop what")
            folder = gr.Textbox("", label="Image folder", info="Used when 'Folder' is chosen")
            form = OptionForm(CropOptions, main=MAIN)
            out_name = gr.Textbox("crops", label="Output folder", info="Below the work folder")
            with gr.Row():
                run_btn = gr.Button("Crop all", variant="primary")
                stop_crop = stop_button("crop", "crop_stop")
        with gr.Column(scale=3):
            index = gr.Slider(0, 200, value=0, step=1, label="Preview image #")
            preview_btn = gr.Button("Preview")
            with gr.Row():
                before = gr.Image(label="Before", type="pil", interactive=False, height=300)
                after = gr.Image(label="After", type="pil", interactive=False, height=300)
            bar_text = gr.Markdown()
    result = gr.Markdown(elem_classes="trailcam-status")
    gallery = gr.Gallery(label="Crops (first images)", columns=8, height=300, preview=False)

    names, components = form.names, form.components
    options_from = form.parse

    def do_preview(subset, source, folder, index, **values):
        opts = options_from(values)
        rec = preview_record(source_of(ctx, subset, source, folder), index)
        name = rec.file_name or Path(rec.path).name
        try:
            im = open_image_safely(rec.path, name, mode=None)
        except DataError as exc:       # a bad file: placeholders with the reason, not an error
            reason = str(exc).split(": ", 1)[-1]
            return placeholder(512, reason, name), placeholder(256, reason), f"`{name}` cannot be shown: {reason}"
        bar = detect_info_bar(im)
        out = crop_image(im, rec.boxes, opts)
        size = im.size
        text = (f"`{name}` {size[0]}x{size[1]} -> {out.width}x{out.height}; "
                f"info strip: top {bar.top} rows, bottom {bar.bottom} rows"
                + (" (dropped)" if opts.strip_info_bar and bar.present else ""))
        if opts.mode == "bbox" and not usable_boxes(rec.boxes, opts, *size):
            text += "; no usable box on this image: centre crop used"
        im.thumbnail((512, 512))
        return im, out, text

    def do_run(subset, source, folder, out_name, progress, **values):
        opts = options_from(values)
        out = ctx.out(out_name)
        report = crop_batch(source_of(ctx, subset, source, folder), out, opts, progress=progress)
        files = sorted(p for p in out.iterdir() if p.suffix.lower() == opts.extension)[:SHOW]
        return report_markdown(report), [(thumbnail(p), p.stem[:12]) for p in files]

    pre_inputs = [subset, source, folder, index, *components]
    pre = event_fn(do_preview, ["subset", "source", "folder", "index", *names])
    preview_btn.click(pre, pre_inputs, [before, after, bar_text], api_name="crop_preview")
    index.release(pre, pre_inputs, [before, after, bar_text], api_name="crop_preview_slide",
                  api_visibility="private")
    long_job(run_btn.click, event_fn(do_run, ["subset", "source", "folder", "out_name", *names], progress=True,
                                     stop_job="crop"),
             [subset, source, folder, out_name, *components], [result, gallery], "crop_run")
