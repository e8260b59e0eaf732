"""CuratedSubset: keep the frames a person picked (favourites only, stars >= N) in the culling page,
the Tags tab or the CLI, read from the folder's curation state (the file all faces share)."""
from __future__ import annotations

from comfy_api.latest import io, ui

from trailcam_core.cull import curated_indices, CurationFilter
from trailcam_core.tags import Project, STATE_NAME
from trailcam_core.base import TrailcamError

from ._common import CATEGORY, SUBSET, SubsetData, input_path, option_inputs, options_from, path_error, run_core


class CuratedSubset(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="CuratedSubset", display_name="Curated Subset (trailcam)", category=CATEGORY,
            description="Keep the subset's frames that are favourites (or rated at least N stars) in the curation "
                        "state of a folder of ComfyUI's input folder; connect it before SaveCaptionedDataset or "
                        "TrainLoRA to train on your picks.",
            inputs=[SUBSET.Input("subset"),
                    io.String.Input("curation", default="trailcam_sample",
                                    tooltip=f"Folder inside ComfyUI's input folder holding {STATE_NAME} "
                                            "(the folder you culled or tagged)"),
                    *option_inputs(CurationFilter)],
            outputs=[SUBSET.Output(display_name="subset"),
                     io.Int.Output(display_name="kept", tooltip="How many frames were kept")])

    @classmethod
    def validate_inputs(cls, curation: str | None = None) -> bool | str:
        return path_error(lambda: curation is None or input_path(curation, "curation folder"))

    @classmethod
    def execute(cls, subset: SubsetData, curation: str, **widgets) -> io.NodeOutput:
        folder = input_path(curation, "curation folder")
        if not (folder / STATE_NAME).is_file():
            raise TrailcamError(f"no curation state ({STATE_NAME}) in {curation!r}: cull or tag that folder first")
        project = run_core(Project.open, folder, create=False)
        keep = run_core(curated_indices, subset.ids, project, options_from(CurationFilter, widgets))
        out = subset.select(keep)
        notes = "".join(f"\n{w}" for w in project.warnings)
        return io.NodeOutput(out, len(keep), ui=ui.PreviewText(f"kept {len(keep)} of {len(subset)} frames{notes}"))
