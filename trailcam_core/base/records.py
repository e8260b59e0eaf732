"""ImageRecord: the small, face-neutral description of one image that stages pass along.

A Dataset or Subset yields records; crop, tags, embed and mosaic accept any iterable of them
(or build them from a plain folder), so each stage works on CCT data and on loose folders alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class Box:
    """A bounding box in absolute pixels, [x, y, width, height] as COCO writes it."""

    x: float
    y: float
    w: float
    h: float
    category: Optional[str] = None
    score: Optional[float] = None

    def as_list(self) -> list[float]:
        return [self.x, self.y, self.w, self.h]


@dataclass
class ImageRecord:
    image_id: str                          # the dataset's id (CCT: a string; file_name is <id>.jpg)
    path: Path                             # absolute path of the file on disk (may not exist yet)
    file_name: str = ""                    # path relative to the dataset root, POSIX separators
    location: Optional[str] = None
    datetime: Optional[datetime] = None
    labels: list[str] = field(default_factory=list)   # category names; ["empty"] for empty frames
    boxes: list[Box] = field(default_factory=list)
    width: Optional[int] = None
    height: Optional[int] = None
    seq_id: Optional[str] = None
    frame_num: Optional[int] = None
    extra: dict = field(default_factory=dict)          # stage-specific data (frame time, tags ...)

    @property
    def label(self) -> Optional[str]:
        """The primary label: the first non-empty category, else "empty", else None (unlabelled)."""
        for name in self.labels:
            if name != "empty":
                return name
        return "empty" if self.labels else None
