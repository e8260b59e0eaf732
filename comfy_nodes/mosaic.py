"""MosaicLayout: embeddings -> similarity grid -> mosaic IMAGE, positions JSON, scatter plot and viewer."""
from __future__ import annotations

import json

from PIL import Image
from comfy_api.latest import io, ui

from trailcam_core.mosaic import make_mosaic, MosaicOptions

from ._common import (CATEGORY, EMBEDDINGS, ComfyProgress, option_inputs, options_from, output_path, output_root,
                      path_error, run_core, to_tensor)


class MosaicLayout(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MosaicLayout", display_name="Mosaic Layout (trailcam)", category=CATEGORY,
            description="Lay the embedded images out on a grid so similar images sit together; writes mosaic, "
                        "positions.json, scatter.png and viewer.html into a folder of ComfyUI's output folder.",
            inputs=[EMBEDDINGS.Input("embeddings"),
                    io.String.Input("folder", default="trailcam/mosaic",
                                    tooltip="Folder inside ComfyUI's output folder (no absolute path, no '..')"),
                    *option_inputs(MosaicOptions, skip=("title",))],
            outputs=[io.Image.Output(display_name="mosaic"),
                     io.String.Output(display_name="positions", tooltip="positions.json: grid cell of every image")],
            is_output_node=True)

    @classmethod
    def validate_inputs(cls, folder: str | None = None) -> bool | str:
        return path_error(lambda: folder is None or output_path(folder, "folder"))

    @classmethod
    def execute(cls, embeddings, folder: str, **widgets) -> io.NodeOutput:
        out_dir = output_path(folder, "folder")
        report = run_core(make_mosaic, embeddings, out_dir, options_from(MosaicOptions, widgets),
                          progress=ComfyProgress(1000))
        with Image.open(report.outputs["mosaic"]) as im:
            mosaic = im.convert("RGB")
        positions = json.loads(open(report.outputs["positions"], encoding="utf-8").read())
        rel = out_dir.relative_to(output_root().resolve()).as_posix()
        summary = f"{rel}: {positions['n']} images on {positions['rows']} x {positions['cols']}"
        if positions.get("dpq16") is not None:
            summary += f", DPQ16 {positions['dpq16']:.3f}"
        if report.skipped:
            summary += f", {len(report.skipped)} skipped ({report.skipped[0][0]}: {report.skipped[0][1]})"
        return io.NodeOutput(to_tensor([mosaic]), json.dumps(positions), ui=ui.PreviewText(summary))
