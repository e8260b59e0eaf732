"""Which images of a set the curation state keeps: "favourites only", "not rejected", "stars >= N".

The curation file is the contract between the faces: the culling page and the Tags tab write it,
the CLI's ``export-favorites`` and the ComfyUI ``CuratedSubset`` node read it through this.
An image is matched to its state entry by id, or by file stem (crops are ``<image_id>.jpg`` and
folder collections are keyed by file name).

    keep = curated_indices(["a1", "b2", "c3"], Project.open("crops"), CurationFilter(keep="favorites"))
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Optional, Sequence

from trailcam_core.tags import Project
from trailcam_core.base import option, TrailcamError

KEEPS = ("all", "favorites", "not-rejected")


@dataclass
class CurationFilter:
    """Keep images by their curation state."""

    keep: str = option("favorites", "Which images to keep: favourites only, all but the rejects, or all",
                       choices=KEEPS)
    min_stars: int = option(0, "Only images rated at least this many stars (0: any rating); rejects never count",
                            min=0, max=5)


def _stem(name: str) -> str:
    return PurePosixPath(str(name).replace("\\", "/")).stem


def curated_indices(ids: Sequence[str], project: Project, options: Optional[CurationFilter] = None) -> list[int]:
    """Positions in ``ids`` of the images the filter keeps (see the module doc)."""
    options = options or CurationFilter()
    if options.keep not in KEEPS:
        raise TrailcamError(f"unknown keep {options.keep!r}; use one of {', '.join(KEEPS)}")
    if not 0 <= int(options.min_stars) <= 5:
        raise TrailcamError(f"min_stars must be 0 to 5, got {options.min_stars!r}")
    images = project.images
    by_stem = {}
    for key, e in images.items():
        by_stem.setdefault(_stem(key), e)
        if e.get("file"):
            by_stem.setdefault(_stem(e["file"]), e)
    empty: dict = {}
    out = []
    for n, i in enumerate(ids):
        e = images.get(i) or by_stem.get(_stem(i)) or empty
        if options.keep == "favorites" and not e.get("favorite"):
            continue
        if options.keep == "not-rejected" and e.get("reject"):
            continue
        if options.min_stars and (e.get("reject") or int(e.get("stars", 0) or 0) < int(options.min_stars)):
            continue
        out.append(n)
    return out
