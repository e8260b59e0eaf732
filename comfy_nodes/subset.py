"""LoadTrailcamSubset: a CCT JSON or a folder from ComfyUI's input folder, filtered into a subset."""
from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io

from trailcam_core.detections import DetectionOptions
from trailcam_core.subset import load_subset, SubsetOptions

from ._common import (CATEGORY, SUBSET, ComfyProgress, SubsetData, fingerprint_path, input_path,
                      list_detection_files, list_input_sources, option_inputs, options_from, path_error, previews, run_core,
                      to_tensor)

NO_DETECTIONS = "(none)"


def dataset_cache_dir() -> str:
    """The columnar cache of loaded metadata lives in models/trailcam/dataset_cache."""
    return os.path.join(folder_paths.models_dir, "trailcam", "dataset_cache")


def _check(source: str | None, detections: str | None) -> None:
    if source is not None:              # None: linked from another node, checked when it runs
        input_path(source, "source")
    if detections and detections != NO_DETECTIONS:
        input_path(detections, "detections")


class LoadTrailcamSubset(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        sources = list_input_sources()
        return io.Schema(
            node_id="LoadTrailcamSubset", display_name="Load Trailcam Subset", category=CATEGORY,
            description="Load COCO Camera Traps metadata (a .json in ComfyUI's input folder) or a plain folder of "
                        "photos, optionally labelled by a MegaDetector/AddaxAI/SpeciesNet results file, and keep "
                        "the frames the filters select. Outputs a preview batch and the subset (ids, labels, boxes).",
            inputs=[io.Combo.Input("source", options=sources, default=sources[0] if sources else None,
                                   tooltip="A CCT .json or a folder/ of photos in ComfyUI's input folder"),
                    io.Combo.Input("detections", options=[NO_DETECTIONS, *list_detection_files()],
                                   default=NO_DETECTIONS, tooltip="Optional detector results whose labels replace "
                                                                  "the metadata's"),
                    *option_inputs(DetectionOptions, skip=("strip_prefix",)),
                    *option_inputs(SubsetOptions, overrides={"max_total": {"default": 64}}),
                    io.Int.Input("preview_size", default=256, min=32, max=2048,
                                 tooltip="Side of the letterboxed preview images (the IMAGE output)")],
            outputs=[io.Image.Output(display_name="preview"), SUBSET.Output(display_name="subset")])

    @classmethod
    def validate_inputs(cls, source: str | None = None) -> bool | str:
        # One input per check: ComfyUI files a failed check under every input the method takes.
        # ``detections`` is a combo, which ComfyUI checks itself (and execute confines it).
        return path_error(lambda: _check(source, None))

    @classmethod
    def fingerprint_inputs(cls, source: str, detections: str, **_) -> str:
        # re-run when the metadata, the folder listing or the detections file change
        parts = [fingerprint_path(input_path(source, "source"))]
        if detections and detections != NO_DETECTIONS:
            parts.append(fingerprint_path(input_path(detections, "detections")))
        return "|".join(parts)

    @classmethod
    def execute(cls, source: str, detections: str, preview_size: int, **widgets) -> io.NodeOutput:
        path = input_path(source, "source")
        if detections and detections != NO_DETECTIONS:
            _check(None, detections)
        found = input_path(detections, "detections") if detections and detections != NO_DETECTIONS else None
        subset = run_core(load_subset, path, options_from(SubsetOptions, widgets), detections=found,
                          detection_options=options_from(DetectionOptions, widgets), cache_dir=dataset_cache_dir(),
                          progress=ComfyProgress())
        data = SubsetData(records=subset.records(), source=source, subset=subset)
        return io.NodeOutput(to_tensor(previews(data, preview_size)), data)
