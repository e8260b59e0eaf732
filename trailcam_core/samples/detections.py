"""Synthetic detector results shaped like the real ones (for tests, the benchmark and demos).

:func:`make_megadetector` builds a MegaDetector batch-output dict the way AddaxAI writes it
(format 1.4 by default): mostly empty frames carrying low-confidence noise detections
(person/animal at 0.01-0.2), animals with one to three confident boxes that a species
classifier relabelled (``classifications`` plus ``prev_category``/``prev_conf``, species under
new keys in a remapped ``detection_categories`` whose names carry stray whitespace), some
vehicles, and a few ``failure`` entries.  Deterministic for a given seed.

Example::

    doc = make_megadetector(["0/a.jpg", "0/b.jpg"], seed=1)
"""
from __future__ import annotations

import random
from typing import Optional, Sequence

#: classifier classes (AddaxAI's "classification_categories" of a North American model)
SPECIES = ["bobcat", "cat", "coyote", "deer", "dog", "fox", "opossum", "rabbit", "raccoon", "rodent", "skunk",
           "squirrel", "bird"]


def addaxai_categories() -> tuple[dict, dict]:
    """(detection_categories, classification_categories) as AddaxAI rewrites them after classification."""
    classification = {str(i): name for i, name in enumerate(SPECIES)}
    detection = {"1": "unidentified animal", "2": "person", "3": "vehicle ", "4": "vehicle"}
    for i, name in enumerate(SPECIES):
        detection[str(5 + i)] = name if i % 4 else f"{name} "  # stray whitespace on some names
    return detection, classification


def make_megadetector(files: Sequence[str], seed: int = 0, version: str = "1.4", addaxai: bool = True,
                      empty_fraction: float = 0.6, vehicle_fraction: float = 0.05, failure_fraction: float = 0.002,
                      labels: Optional[dict] = None) -> dict:
    """A MegaDetector results dict for ``files``.

    ``labels`` (file -> class name, "empty" allowed) forces the truth of chosen images so tests
    can check the label rule and the comparison; other images get a random realistic outcome.
    """
    rng = random.Random(seed)
    if addaxai:
        dcats, ccats = addaxai_categories()
    else:
        dcats, ccats = {"1": "animal", "2": "person", "3": "vehicle"}, {}
    species_key = {name: str(5 + i) for i, name in enumerate(SPECIES)}
    class_key = {name: str(i) for i, name in enumerate(SPECIES)}
    images = []
    labels = labels or {}

    def box(big: bool) -> list:
        w = rng.uniform(0.15, 0.5) if big else rng.uniform(0.01, 0.08)
        h = rng.uniform(0.1, 0.45) if big else rng.uniform(0.01, 0.08)
        return [round(rng.uniform(0, 1 - w), 4), round(rng.uniform(0, 1 - h), 4), round(w, 4), round(h, 4)]

    def noise() -> list:
        out = []
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            out.append({"category": rng.choice(("1", "2", "2")), "conf": round(rng.uniform(0.005, 0.19), 3),
                        "bbox": box(False)})
        return out

    for f in files:
        truth = labels.get(f)
        r = rng.random()
        if truth is None and r < failure_fraction:
            images.append({"file": f, "failure": "Failure image access", "detections": None})
            continue
        if truth == "empty" or (truth is None and r < empty_fraction):
            images.append({"file": f, "detections": noise()})
            continue
        if truth == "vehicle" or (truth is None and r < empty_fraction + vehicle_fraction):
            dets = [{"category": rng.choice(("3", "4")) if addaxai else "3", "conf": round(rng.uniform(0.6, 0.99), 3),
                     "bbox": box(True)}]
            images.append({"file": f, "detections": dets + noise()})
            continue
        species = truth if truth in SPECIES else rng.choice(SPECIES)
        dets = []
        for k in range(rng.choice((1, 1, 1, 2, 3))):
            conf = round(rng.uniform(0.5, 0.99) if k == 0 else rng.uniform(0.2, 0.9), 3)
            d = {"category": "1", "conf": conf, "bbox": box(True)}
            if addaxai:
                top = round(rng.uniform(0.6, 0.99), 3)
                others = rng.sample([s for s in SPECIES if s != species], 2)
                d["classifications"] = [[class_key[species], top], [class_key[others[0]], round((1 - top) / 2, 3)],
                                        [class_key[others[1]], round((1 - top) / 4, 3)]]
                d["prev_category"] = "1"
                d["prev_conf"] = conf
                d["category"] = species_key[species]
            dets.append(d)
        dets.sort(key=lambda d: -d["conf"])
        images.append({"file": f, "detections": dets + noise()})
    info = {"format_version": version, "detector": "md_v5a.0.0.pt",
            "detection_completion_time": "2024-03-02 10:11:12",
            "detector_metadata": {"megadetector_version": "v5a.0.0", "typical_detection_threshold": 0.2,
                                  "conservative_detection_threshold": 0.05}}
    doc = {"info": info, "detection_categories": dcats, "images": images}
    if addaxai:
        info["classifier"] = "Namibian Desert - Addax Data Science"
        info["classification_completion_time"] = "2024-03-02 10:20:00"
        info["classifier_metadata"] = {"typical_classification_threshold": 0.6}
        info["addaxai_metadata"] = {"version": "5.0", "custom_model": False}
        doc["classification_categories"] = ccats
        doc["forbidden_classes"] = []
    return doc


def caltech_like_files(n: int, seed: int = 0, locations: int = 140) -> list[str]:
    """``<location>/<uuid-like id>.jpg`` relative paths, as a folder of Caltech images sorted by camera."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        uid = "%08x-%04x-11e9-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                                               rng.getrandbits(48))
        out.append(f"{rng.randrange(locations)}/{uid}.jpg")
    return out
