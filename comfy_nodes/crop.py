"""CropSquare: square crops of a subset's frames (info strip dropped, centred or around the boxes)."""
from __future__ import annotations

from comfy_api.latest import io, ui

from trailcam_core.crop import crop_image, CropOptions

from ._common import (CATEGORY, SUBSET, ComfyProgress, SubsetData, option_inputs, options_from, run_core, skipped_text,
                      to_tensor)

# Options that only matter when crops are written as files or cut from videos.
_FILE_ONLY = ("format", "quality", "video_frames", "video_interval", "max_frames", "max_pixels", "workers", "force")


class CropSquare(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="CropSquare", display_name="Crop Square (trailcam)", category=CATEGORY,
            description="Square-crop every frame of a subset: the camera's data strip is dropped, the square "
                        "is centred or placed around the frame's boxes.",
            inputs=[SUBSET.Input("subset"),
                    *option_inputs(CropOptions, skip=_FILE_ONLY, overrides={"mode": {"options": ["center", "bbox"]}})],
            outputs=[io.Image.Output(display_name="crops"), SUBSET.Output(display_name="subset")])

    @classmethod
    def execute(cls, subset: SubsetData, **widgets) -> io.NodeOutput:
        options = options_from(CropOptions, widgets)
        progress = ComfyProgress(len(subset))
        crops, kept, skipped = [], [], []
        for i, (rec, img, why) in enumerate(subset.read_images()):
            if img is None:              # a bad file is skipped and reported, the batch goes on
                skipped.append((rec.file_name or str(rec.path), why))
            else:
                # boxes are in the source frame's pixels; frames already cut upstream have none that apply
                boxes = rec.boxes if subset.images is None else ()
                crops.append(run_core(crop_image, img, boxes, options))
                kept.append(i)
            run_core(progress, i + 1, len(subset), rec.file_name, crops[-1] if crops else None)
        summary = skipped_text(f"{len(crops)} cropped to {options.size} px", skipped)
        return io.NodeOutput(to_tensor(crops), subset.select(kept).replace(images=crops), ui=ui.PreviewText(summary))
