"""Square crops: geometry and info-strip detection (``geometry``), one file in and one crop out with
the JPEG fast path (``single``), and whole collections with a manifest, resumably (``batch``).
"""
from .batch import crop_batch
from .geometry import CropOptions, InfoBar, crop_box, crop_image, detect_info_bar
from .geometry import usable_boxes

__all__ = ["usable_boxes", "crop_batch", "CropOptions", "InfoBar", "crop_box", "crop_image", "detect_info_bar"]
