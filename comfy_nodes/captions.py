"""AutoTagCaptions (tags + captions for a subset) and SaveCaptionedDataset (images + kohya caption sidecars)."""
from __future__ import annotations

import dataclasses

from comfy_api.latest import io, ui

from trailcam_core.tags import CaptionEntry, CaptionOptions, render_caption, tag_records, TagOptions, write_captions
from trailcam_core.base import TrailcamError

from ._common import (CATEGORY, SUBSET, ComfyProgress, SubsetData, file_stem, option_inputs, options_from, output_path,
                      output_root, path_error, run_core, save_image, skipped_text)

_TAG_SKIP = ("workers", "overwrite_hand")          # no hand edits inside a graph
_CAPTION_SKIP = ("include", "caption_extension")   # curation state / file naming belong to the save node


class AutoTagCaptions(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="AutoTagCaptions", display_name="Auto Tag + Captions (trailcam)", category=CATEGORY,
            description="Tag every frame (species from the labels; time of day, glitches and info strip from the "
                        "pixels) and render one caption per frame from a template.",
            inputs=[SUBSET.Input("subset"), *option_inputs(TagOptions, skip=_TAG_SKIP),
                    *option_inputs(CaptionOptions, skip=_CAPTION_SKIP)],
            outputs=[SUBSET.Output(display_name="subset"),
                     io.String.Output(display_name="captions", tooltip="One caption per line, in subset order")])

    @classmethod
    def execute(cls, subset: SubsetData, **widgets) -> io.NodeOutput:
        tag_options = options_from(TagOptions, widgets, workers=1)
        caption_options = options_from(CaptionOptions, widgets)
        by_id = run_core(tag_records, subset.records, tag_options, progress=ComfyProgress(len(subset)))
        tags = [by_id[r.image_id] for r in subset.records]
        captions = [run_core(render_caption, t, caption_options, r.image_id) for t, r in zip(tags, subset.records)]
        out = subset.replace(tags=tags, captions=captions, caption_options=caption_options)
        return io.NodeOutput(out, "\n".join(captions), ui=ui.PreviewText("\n".join(captions[:20])))


class SaveCaptionedDataset(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SaveCaptionedDataset", display_name="Save Captioned Dataset (trailcam)", category=CATEGORY,
            description="Write the subset's images (the crops when cropped) with kohya caption sidecars, "
                        "metadata.jsonl and tag_frequency.json into a folder of ComfyUI's output folder.",
            inputs=[SUBSET.Input("subset"),
                    io.String.Input("folder", default="trailcam/dataset",
                                    tooltip="Folder inside ComfyUI's output folder (no absolute path, no '..')"),
                    io.Combo.Input("format", options=["png", "jpg", "webp"], default="png",
                                   tooltip="Image file format"),
                    io.String.Input("caption_extension", default=".txt",
                                    tooltip="Extension of the caption sidecar files (kohya: .txt)")],
            outputs=[io.String.Output(display_name="folder", tooltip="The dataset folder, relative to the output folder")],
            is_output_node=True)

    @classmethod
    def validate_inputs(cls, folder: str | None = None) -> bool | str:
        return path_error(lambda: folder is None or output_path(folder, "folder"))

    @classmethod
    def execute(cls, subset: SubsetData, folder: str, format: str, caption_extension: str) -> io.NodeOutput:
        if subset.tags is None:
            raise TrailcamError("SaveCaptionedDataset needs captions: connect it after AutoTagCaptions")
        root = output_path(folder, "folder")
        progress = ComfyProgress(2 * len(subset))
        entries, skipped = [], []
        for i, ((rec, img, why), tags) in enumerate(zip(subset.read_images(), subset.tags)):
            if img is None:
                skipped.append((rec.file_name or str(rec.path), why))
            else:
                path = save_image(img, root / f"{file_stem(rec.image_id)}.{format}")
                entries.append(CaptionEntry(rec.image_id, path, tags))
            run_core(progress, i + 1, 2 * len(subset), rec.file_name)
        options = dataclasses.replace(subset.caption_options, caption_extension=caption_extension)
        report = run_core(write_captions, entries, root, options,
                          progress=lambda d, t, m="", p=None: progress(len(subset) + d, len(subset) + t, m, p))
        rel = root.relative_to(output_root().resolve()).as_posix()
        text = skipped_text(f"{rel}: {report.summary()}", skipped)
        return io.NodeOutput(rel, ui=ui.PreviewText(text))

