"""The atlas section of the Mosaic tab: open an atlas, see it whole, its favourites, a layer, the copy report;
click the picture for an image, its tags and (for a generation) its nearest real photos."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from trailcam_core.atlas import atlas_item_at, atlas_view, layer_picture
from trailcam_core.base import TrailcamError

from ._common import AppContext, event_fn, readable, thumbnail


def build(ctx: AppContext) -> None:
    with gr.Accordion("Atlas: a whole collection and its generations", open=False):
        gr.Markdown("Open an atlas made by `trailcam atlas build` (or the JointAtlas node): the whole atlas, "
                    "its favourites in context, a layer, and where each generation sits among the real photos.")
        with gr.Row():
            folder = gr.Textbox("atlas", label="Atlas folder", info="Below the work folder or an absolute path",
                                elem_id="atlas_folder", scale=3)
            open_btn = gr.Button("Open atlas", variant="primary", scale=1)
        info = gr.Markdown(elem_classes="trailcam-status")
        with gr.Row():
            picture = gr.Image(label="Atlas (click an image)", type="filepath", interactive=False, height=480,
                               elem_id="atlas_picture")
            favourites = gr.Image(label="Favourites in context", type="filepath", interactive=False, height=480)
        with gr.Row():
            layer = gr.Dropdown(choices=[], value=None, label="Layer", info="Colour the atlas by a layer",
                                elem_id="atlas_layer")
            legend = gr.Markdown()
        figure = gr.Image(label="Nearest-real distances per source", type="filepath", interactive=False, height=360)
        with gr.Row():
            picked = gr.Image(label="Picked image", type="pil", interactive=False, height=240)
            picked_info = gr.Markdown()
            nearest = gr.Gallery(label="Nearest real photos", columns=4, height=240)
    state = gr.State(None)          # {"folder": path, "width": picture width}

    def do_open(folder):
        path = ctx.input_path(folder, "atlas folder")
        view = atlas_view(path)
        text = view["text"].replace("\n", "  \n")
        text += f"\n\n[Open the deep-zoom viewer](/gradio_api/file={Path(view['viewer']).resolve()}) (new tab)"
        from PIL import Image

        with Image.open(view["overview"]) as im:
            width = im.width
        return (text, view["overview"], view["favourites"],
                gr.update(choices=view["layers"], value=None), view["figure"], {"folder": str(path), "width": width})

    def do_layer(state, layer):
        if not state:
            raise TrailcamError("open an atlas first")
        if not layer:
            return gr.update(), ""
        img, legend = layer_picture(state["folder"], layer)     # in memory: nothing written beside the atlas
        lines = [f"<span style='color:{e['colour']}'>&#9632;</span> {e['value']} ({e['count']})" for e in legend[:40]]
        return img, "  \n".join(lines) or "no values"

    def do_pick(state, x, y):
        if not state:
            raise TrailcamError("open an atlas first")
        item = atlas_item_at(state["folder"], float(x), float(y), state["width"])
        if item is None:
            return None, "An empty cell.", []
        text = (f"**{item['name']}**  \nsource: {item['source']} ({item['kind']})  \nrow {item['row']}, "
                f"column {item['col']}  \ntags: {', '.join(item['tags']) or 'none'}")
        near = [(thumbnail(n["file"], 240), f"{n['name']} ({n['distance']:.3f})") for n in item["nearest"]]
        return thumbnail(item["file"], 480), text, near

    def on_select(state, evt: gr.SelectData):
        try:
            x, y = evt.index
            return do_pick(state, x, y)
        except Exception as exc:
            raise readable(exc) from None

    open_btn.click(event_fn(do_open, ["folder"]), [folder], [info, picture, favourites, layer, figure, state],
                   api_name="atlas_open")
    layer.change(event_fn(do_layer, ["state", "layer"]), [state, layer], [picture, legend], api_name="atlas_layer")
    picture.select(on_select, [state], [picked, picked_info, nearest], api_name="atlas_click", api_visibility="private")
    x_in, y_in = gr.Number(visible=False), gr.Number(visible=False)
    pick_btn = gr.Button(visible=False)
    pick_btn.click(event_fn(do_pick, ["state", "x", "y"]), [state, x_in, y_in], [picked, picked_info, nearest],
                   api_name="atlas_pick")
