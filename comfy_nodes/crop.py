"""CropSquare: square crops of a subset's frames (info strip dropped, centred or around the boxes)."""
from __future__ import annotations

from comfy_api.latest import io

from trailcam_core.crop import CropOptions, crop_image

from ._common import CATEGORY, SUBSET, ComfyProgress, SubsetData, option_inputs, options_from, run_core, to_tensor

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
        crops = []
        for i, (rec, img) in enumerate(zip(subset.records, subset.pil_images())):
            # boxes are in the source frame's pixels; frames already cut upstream have none that apply
            boxes = rec.boxes if subset.images is None else ()
            crops.append(run_core(crop_image, img, boxes, options))
            run_core(progress, i + 1, len(subset), rec.file_name, crops[-1])
        return io.NodeOutput(to_tensor(crops), subset.replace(images=crops))
