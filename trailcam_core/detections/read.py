"""Read any detector results file: MegaDetector (and AddaxAI's image_recognition_file.json), an
AddaxAI COCO export, or SpeciesNet predictions, told apart by their top-level keys.

    from trailcam_core.detections.read import read_detections
    det = read_detections("image_recognition_file.json")
"""
from __future__ import annotations

from pathlib import Path

from trailcam_core.base import DataError, ensure
from trailcam_core.detections.formats import read_coco, read_speciesnet
from trailcam_core.detections.megadetector import load_results, no_gc, read_megadetector
from trailcam_core.detections.model import Detections


def read_detections(path, strip_prefix: str = "", progress=None) -> Detections:
    """Read a MegaDetector, AddaxAI COCO or SpeciesNet results file into :class:`Detections`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"detections file {path} does not exist")
    cb = ensure(progress)
    cb(0, 3, "parsing JSON")
    top = load_results(path)
    cb(1, 3, "checking records")
    with no_gc():
        if top.predictions is not None and top.images is None:
            result = read_speciesnet(top, path, strip_prefix)
        elif top.annotations is not None and (top.categories is not None or top.detection_categories is None):
            result = read_coco(top, path, strip_prefix)
        elif top.images is not None and (top.detection_categories is not None or top.info is not None):
            result = read_megadetector(top, path, strip_prefix, progress=cb)
        else:
            raise DataError(f"{path} is not a detector results file: expected MegaDetector output ('images' and "
                            f"'detection_categories'), an AddaxAI COCO export ('images', 'annotations', "
                            f"'categories') or SpeciesNet output ('predictions')")
        del top
    result.source = path
    cb(3, 3, result.summary())
    return result
