"""Tell a detector results file from a COCO Camera Traps dataset by its first bytes (for pickers).

A file picker (ComfyUI's ``detections`` and ``source`` combos) should offer detector results
where results are wanted and datasets where a dataset is: offering the CCT file as a detections
file (or ComfyUI's own ``3d/`` folder as a dataset) invites a wrong pick.  Reading the whole of a
100 MB file to decide is too slow for a menu, so :func:`json_kind` reads the first 64 KB.

* MegaDetector / AddaxAI batch output: images carry ``"detections"`` (or ``"failure"``), or the
  header holds ``"detection_categories"``;
* SpeciesNet: ``"predictions"``;
* AddaxAI's COCO export: ``"file_name"`` values in its sorted layout (``conf_0.9-1.0``);
* COCO Camera Traps: ``"images"`` with ``"file_name"`` (and none of the above).

Example::

    json_kind("input/caltech_images_20210113.json")   # "dataset"
    json_kind("input/image_recognition_file.json")    # "detections"
"""
from __future__ import annotations

import os
import re

__all__ = ["json_kind", "HEAD_BYTES"]

HEAD_BYTES = 1 << 16
_DETECTIONS = re.compile(rb'"(detections|detection_categories|predictions|failure)"\s*:')
_SORTED = re.compile(rb'"file_name"\s*:\s*"[^"]*conf_\d')
_DATASET = re.compile(rb'"(images|annotations|categories|file_name)"\s*:')


def json_kind(path: str | os.PathLike, head_bytes: int = HEAD_BYTES) -> str:
    """``"detections"``, ``"dataset"`` or ``"other"`` for the JSON file at ``path`` (first bytes only)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(head_bytes)
    except OSError:
        return "other"
    if _DETECTIONS.search(head) or _SORTED.search(head):
        return "detections"
    if _DATASET.search(head):
        return "dataset"
    return "other"
