"""Cull tab: opens the culling page (grid, loupe, keyboard flags and stars, filters with counts,
bursts, the map) that the app serves beside its tabs at /cull/ on the same port."""
from __future__ import annotations

import html
from urllib.parse import quote

import gradio as gr

from ._common import AppContext

HELP = ("**Keys:** ← → ↑ ↓ move · **P** favourite · **X** reject · **U** unflag · **1-5** stars (0 clears) · "
        "**N** next unflagged · **Space** loupe · **S** more like this · **B** best of burst · **M** map · "
        "**Z** undo · shift-click to select several")


def page_link(source: str) -> str:
    url = "/cull/?source=" + quote(source or "")
    return (f'<p><a href="{html.escape(url)}" target="_blank" id="cull_open_link">Open the culling view of '
            f'<code>{html.escape(source or "")}</code> in a new tab</a></p>'
            f'<iframe src="{html.escape(url)}" style="width:100%;height:820px;border:0" title="culling view">'
            f'</iframe>')


def build(ctx: AppContext) -> None:
    default = "sample/sample_cct.json" if ctx.sample_json else "crops"
    gr.Markdown("Pick the few from the thousands: every image of a collection in one grid, flagged from the "
                "keyboard, saved at once into the collection's curation state (the same state the Tags tab, "
                "the CLI and the ComfyUI nodes read). " + HELP)
    with gr.Row():
        source = gr.Textbox(default, label="Collection", scale=4,
                            info="A folder of images (e.g. the crops) or a CCT JSON, below the work folder or an "
                                 "absolute path; a folder outside the work folder is only read")
        show = gr.Button("Show", scale=1)
    frame = gr.HTML(page_link(default))
    show.click(page_link, [source], frame, api_name="cull_page")
