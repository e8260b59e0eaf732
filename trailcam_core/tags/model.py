"""What a tag is: a value with its provenance (:class:`Tag`), the tag keys, and their caption words.

Sources say where a tag came from: ``label`` (the CCT metadata: categories, location, date),
``pixels`` (measured on the image), ``model`` (a zero-shot or detector score) and ``hand`` (a
person's edit, see :mod:`trailcam_core.tags.curation`).

    Tag("night-infrared", "pixels", 0.97)
    tag_text("time_of_day", Tag("night-infrared", "pixels"))   # -> "infrared night"
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from trailcam_core.base import TrailcamError

SOURCES = ("label", "pixels", "model", "hand")
TIME_OF_DAY = ("day", "night-infrared", "night-flash", "twilight")
TAG_KEYS = ("species", "time_of_day", "artifact", "location", "info_bar", "unreadable")


@dataclass
class Tag:
    """One tag value with its provenance. ``value`` None marks a tag a person removed by hand."""

    value: Any
    source: str
    score: Optional[float] = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise TrailcamError(f"unknown tag source {self.source!r}; expected one of {', '.join(SOURCES)}")

    def to_dict(self) -> dict:
        out = {"value": self.value, "source": self.source}
        if self.score is not None:
            out["score"] = round(float(self.score), 4)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Tag":
        if not isinstance(d, dict) or "source" not in d:
            raise TrailcamError(f"malformed tag {d!r}: expected an object with 'value' and 'source'")
        return cls(d.get("value"), d["source"], d.get("score"))


def tag_text(key: str, tag: Optional[Tag]) -> str:
    """The caption words for a tag ("" when it says nothing: a clean frame, no info bar, removed)."""
    if tag is None or tag.value is None or tag.value is False or tag.value == "":
        return ""
    v = tag.value
    if key == "artifact":
        return "camera glitch" if v == "glitch" else ("" if v == "clean" else str(v))
    if key == "info_bar":
        return "info bar" if v in (True, "top", "bottom", "both") else ("" if v in ("none",) else str(v))
    if key == "location":
        return f"location {v}"
    if key == "time_of_day":
        return {"day": "day", "night-infrared": "infrared night", "night-flash": "night flash",
                "twilight": "twilight"}.get(str(v), str(v))
    if key == "unreadable":
        return ""
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x).replace("_", " ") for x in v if x not in (None, ""))
    if v is True:
        return key.replace("_", " ")
    return str(v).replace("_", " ")
