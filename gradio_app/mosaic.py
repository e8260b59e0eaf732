"""Mosaic tab: features, layout method, grid shape; the mosaic; click a tile for its image and labels."""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from trailcam_core.embed import EmbedOptions
from trailcam_core.base import TrailcamError
from trailcam_core.mosaic import item_at, make_mosaic, MosaicOptions
from trailcam_core.tags import collection_records

from ._common import (LABEL_SOURCES, AppContext, OptionForm, event_fn, label_metadata, long_job, readable,
                      report_markdown, stop_button, thumbnail)

EMBED_MAIN = ("features", "model", "pretrained")
MOSAIC_MAIN = ("layout", "embedding", "columns", "aspect", "tile")
# The sample has no real CLIP weights to use offline: model-free pyramid features sort it by look
# (16 px pyramids: about 1,000 numbers per image keep the demo layout to seconds on a CPU).
DEMO_EMBED = {"features": {"value": "pyramid"}, "pyramid_size": {"value": 16}}


def build(ctx: AppContext) -> None:
    subset = ctx.shared.get("subset") or gr.State(None)
    with gr.Row():
        with gr.Column(scale=2):
            source = gr.Textbox("crops", label="Images", info="Folder of images (below the work folder or an "
                                "absolute path), e.g. the crops", elem_id="mosaic_source")
            labels_from = gr.Radio(list(LABEL_SOURCES), value=LABEL_SOURCES[0], label="Labels shown on click")
            metadata = gr.Textbox("", label="CCT JSON", info="When labels come from a CCT JSON")
            embed_form = OptionForm(EmbedOptions, main=EMBED_MAIN, more_label="More feature options",
                                    overrides=DEMO_EMBED if ctx.sample_json else None)
            form = OptionForm(MosaicOptions, main=MOSAIC_MAIN, more_label="More layout options")
            out_name = gr.Textbox("mosaic", label="Output folder", info="Below the work folder")
            with gr.Row():
                run_btn = gr.Button("Make mosaic", variant="primary")
                stop_button("mosaic", "mosaic_stop")
        with gr.Column(scale=3):
            result = gr.Markdown(elem_classes="trailcam-status")
            image = gr.Image(label="Mosaic (click a tile)", type="filepath", interactive=False, height=480,
                             elem_id="mosaic_image")
            with gr.Row():
                picked = gr.Image(label="Picked image", type="pil", interactive=False, height=240)
                picked_info = gr.Markdown()
    positions_state = gr.State(None)

    def do_run(source, labels_from, metadata, subset, out_name, progress, **values):
        src = ctx.input_path(source, "image folder")
        emb_opts, opts = embed_form.parse(values), form.parse(values)
        meta = label_metadata(ctx, labels_from, subset, metadata)
        records = collection_records(src, meta)[0] if meta else src   # crops named <image_id>.jpg get labels
        out, renamed = ctx.new_out(out_name)      # a new mosaic never replaces an earlier one
        report = make_mosaic(records, out, opts, emb_opts, cache_dir=ctx.workdir / "cache" / "features",
                             progress=progress)
        positions = json.loads(Path(report.outputs["positions"]).read_text(encoding="utf-8"))
        positions["scale"] = float(report.outputs.get("mosaic_scale", 1.0))
        text = report_markdown(report) + (f"\n\n{renamed}" if renamed else "")
        if report.outputs.get("dpq16") is not None:
            text += f"\n\nLayout quality DPQ16: **{report.outputs['dpq16']}** (1 = perfect, random about 0.15)"
        viewer = report.outputs.get("viewer")
        if viewer:
            text += f"\n\n[Open the interactive viewer](/gradio_api/file={Path(viewer).resolve()}) (new tab)"
        return text, report.outputs["mosaic"], positions, None, ""    # the old pick belongs to the old mosaic

    def do_pick(positions, x, y):
        if not positions:
            raise TrailcamError("make a mosaic first")
        item = item_at(positions, float(x), float(y), positions.get("scale", 1.0))
        if item is None:
            return None, "An empty cell."
        labels = ", ".join(item.get("labels") or []) or "none"
        tags = item.get("tags")
        tags = ", ".join(tags) if isinstance(tags, list) else (tags or "")
        text = (f"**{item['file_name']}**  \nrow {item['row']}, column {item['col']}  \nlabels: {labels}"
                + (f"  \ntags: {tags}" if tags else ""))
        return thumbnail(item["file"], 480), text

    def on_select(positions, evt: gr.SelectData):
        try:
            x, y = evt.index
            return do_pick(positions, x, y)
        except Exception as exc:
            raise readable(exc) from None

    names = embed_form.names + form.names
    long_job(run_btn.click, event_fn(do_run, ["source", "labels_from", "metadata", "subset", "out_name", *names],
                                     progress=True, stop_job="mosaic"),
             [source, labels_from, metadata, subset, out_name, *embed_form.components, *form.components],
             [result, image, positions_state, picked, picked_info], "mosaic_run")
    # the click on the picture, and the same lookup by pixel for API users
    image.select(on_select, [positions_state], [picked, picked_info], api_name="mosaic_click",
                 api_visibility="private")
    x_in = gr.Number(visible=False)
    y_in = gr.Number(visible=False)
    pick_btn = gr.Button(visible=False)
    pick_btn.click(event_fn(do_pick, ["positions", "x", "y"]), [positions_state, x_in, y_in],
                   [picked, picked_info], api_name="mosaic_pick")
    from . import atlas as atlas_section

    atlas_section.build(ctx)
