"""Constants and naming rules every stage shares: media file types, the home folder, image file names.

    from trailcam_core.base.media import IMAGE_EXTENSIONS, default_home, flat_name
    flat_name("cam1/IMG_0001.JPG")   # -> "cam1__IMG_0001.JPG"
"""
from __future__ import annotations

import os
from pathlib import Path

from trailcam_core.base.paths import safe_relative

#: Still images every stage reads (lower case; compare with ``path.suffix.lower()``).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
#: Videos the folder loader lists and the crop stage samples frames from.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".mts", ".wmv", ".3gp", ".webm", ".mpg", ".mpeg")
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS


def is_image(path: str | os.PathLike) -> bool:
    """True for a still-image file name (by extension)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video(path: str | os.PathLike) -> bool:
    """True for a video file name (by extension)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def default_home() -> Path:
    """The tool's own folder (caches, generated configs, the sample):
    ``$TRAILCAM_HOME``, else ``$XDG_CACHE_HOME/trailcam``, else ``~/.cache/trailcam``."""
    if os.environ.get("TRAILCAM_HOME"):
        return Path(os.environ["TRAILCAM_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trailcam"


def flat_name(image_id: str) -> str:
    """The one rule for turning an image id (folder ids hold ``/``) into a single file name:
    path parts joined by ``__``. Refuses absolute ids and ``..`` (:class:`UnsafePathError`)."""
    return safe_relative(str(image_id), "image id").as_posix().replace("/", "__")
