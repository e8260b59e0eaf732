"""Square crops: geometry and info-strip detection (``geometry``), one file in and one crop out with
the JPEG fast path (``single``), and whole collections with a manifest, resumably (``batch``).
"""
from trailcam_core.crop.batch import crop_batch
from trailcam_core.crop.geometry import CropOptions, InfoBar, crop_box, crop_image, detect_info_bar
from trailcam_core.crop.geometry import usable_boxes
from trailcam_core.crop.geometry import MIN_STRIP_ROWS
from .single import jpeg_orientation, upright, write_atomic

__all__ = ["jpeg_orientation", "upright", "write_atomic", "MIN_STRIP_ROWS", "usable_boxes", "crop_batch", "CropOptions", "InfoBar", "crop_box", "crop_image", "detect_info_bar"]
