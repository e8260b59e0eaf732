"""Small detector results files for the tests (MegaDetector batch-output layout)."""
from __future__ import annotations


def det(cat="1", conf=0.9, bbox=(0.1, 0.2, 0.3, 0.4), **kw) -> dict:
    return {"category": cat, "conf": conf, "bbox": list(bbox), **kw}


def md(images, ccats=None) -> dict:
    doc = {"info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt"},
           "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"}, "images": images}
    if ccats:
        doc["classification_categories"] = ccats
    return doc
