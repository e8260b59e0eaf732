"""Square crops: geometry and info-strip detection (``geometry``), one file in and one crop out with
the JPEG fast path (``single``), and whole collections with a manifest, resumably (``batch``).
"""
from .batch import crop_batch
from .geometry import CropOptions, InfoBar, crop_box, crop_image, detect_info_bar

__all__ = ["crop_batch", "CropOptions", "InfoBar", "crop_box", "crop_image", "detect_info_bar"]
