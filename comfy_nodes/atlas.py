"""JointAtlas: real photos and generations on one similarity grid -> overview, favourites, report, viewer."""
from __future__ import annotations

from PIL import Image
from comfy_api.latest import io, ui

from trailcam_core.atlas import atlas_report, AtlasOptions, AtlasSource, build_atlas
from trailcam_core.embed import EmbedOptions

from ._common import (CATEGORY, ComfyProgress, input_path, option_inputs, options_from, output_path, output_root,
                      path_error, run_core, to_tensor)

GENERATED_KINDS = ("lora", "gan", "generated")


class JointAtlas(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="JointAtlas", display_name="Joint Atlas (trailcam)", category=CATEGORY,
            description="Lay real photos (a folder of ComfyUI's input folder) and generated images (a folder of its "
                        "output folder, where generations land) out on one deep-zoom grid; each generation is linked "
                        "to its nearest real photos and likely copies are flagged. Writes the atlas (index.html) into "
                        "a folder of the output folder.",
            inputs=[io.String.Input("real", default="trailcam_sample/",
                                    tooltip="Folder of real photos inside ComfyUI's input folder"),
                    io.String.Input("generated", default="",
                                    tooltip="Folder of generated images inside ComfyUI's output folder (empty: none)"),
                    io.Combo.Input("generated_kind", options=list(GENERATED_KINDS), default="lora",
                                   tooltip="What made the generated images"),
                    io.String.Input("folder", default="trailcam/atlas",
                                    tooltip="Atlas folder inside ComfyUI's output folder (no absolute path, no '..')"),
                    *option_inputs(EmbedOptions, skip=("device", "workers", "batch_size", "dedupe")),
                    *option_inputs(AtlasOptions, skip=("title", "relayout", "draw_workers", "real_sample",
                                                       "background", "quality"))],
            outputs=[io.Image.Output(display_name="atlas"), io.Image.Output(display_name="favourites"),
                     io.String.Output(display_name="report")],
            is_output_node=True)

    @classmethod
    def validate_inputs(cls, real: str | None = None, generated: str | None = None,
                        folder: str | None = None) -> bool | str:
        return path_error(lambda: (real is None or input_path(real, "real"),
                                   not generated or output_path(generated, "generated"),
                                   folder is None or output_path(folder, "folder")))

    @classmethod
    def execute(cls, real: str, generated: str, generated_kind: str, folder: str, **widgets) -> io.NodeOutput:
        sources = [AtlasSource(str(input_path(real, "real")), "real", "real")]
        if generated:
            sources.append(AtlasSource(str(output_path(generated, "generated")), generated_kind, generated_kind))
        out_dir = output_path(folder, "folder")
        # the two option sets share no name: each takes its own widgets
        report = run_core(build_atlas, sources, out_dir, options_from(AtlasOptions, widgets),
                          options_from(EmbedOptions, widgets), progress=ComfyProgress(1000))
        with Image.open(report.outputs["overview"]) as im:
            overview = im.convert("RGB")
        with Image.open(report.outputs["favourites"]) as im:
            favourites = im.convert("RGB")
        text = atlas_report(out_dir)["text"]
        rel = out_dir.relative_to(output_root().resolve()).as_posix()
        summary = f"{rel}/index.html\n{text}"
        if report.skipped:
            summary += f"\n{len(report.skipped)} skipped ({report.skipped[0][0]}: {report.skipped[0][1]})"
        return io.NodeOutput(to_tensor([overview]), to_tensor([favourites]), summary, ui=ui.PreviewText(summary))
