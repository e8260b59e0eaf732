"""Shared utilities every stage uses: errors, options (declared once, checked once), progress,
batch reports, atomic writes, path confinement, records, media constants and the image-id rule.

Modules: ``errors``, ``options``, ``progress``, ``report``, ``atomic``, ``paths``, ``records``, ``media``.
"""
from .errors import Cancelled, DataError, TrailcamError, UnsafePathError
from .options import add_arguments, check_options, describe, from_mapping, from_namespace, option, OptionInfo, Options, parse_list
from .progress import ProgressCallback, TqdmProgress, ensure
from .report import BatchReport
from .atomic import atomic_path, is_placed, place_file, write_bytes, write_json, write_text
from .paths import confine, is_within, safe_relative
from .records import Box, ImageRecord
from .media import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS, default_home, flat_name
from .checkpoints import (CheckpointFormat, check_compatible, checkpoint_root, list_checkpoints, prune,
                          remove_stale_temps, resolve_resume)
from .composites import COMPOSITE_KEY, composite_kind
from .safe_image import DEFAULT_MAX_PIXELS, image_problem, open_image_safely, placeholder

__all__ = ["CheckpointFormat", "check_compatible", "checkpoint_root", "list_checkpoints", "prune",
           "remove_stale_temps", "resolve_resume", "DEFAULT_MAX_PIXELS", "image_problem", "open_image_safely", "placeholder", "COMPOSITE_KEY", "composite_kind", "OptionInfo", "Options", "check_options", "parse_list", "Cancelled", "DataError", "TrailcamError", "UnsafePathError", "add_arguments", "describe",
           "from_mapping", "from_namespace", "option", "ProgressCallback", "TqdmProgress", "ensure",
           "BatchReport", "atomic_path", "is_placed", "place_file", "write_bytes", "write_json", "write_text",
           "confine", "is_within", "safe_relative", "Box", "ImageRecord", "IMAGE_EXTENSIONS",
           "MEDIA_EXTENSIONS", "VIDEO_EXTENSIONS", "default_home", "flat_name"]
