"""What goes into an atlas: its sources (real photos, LoRA or GAN generations), their images and
the values each item carries (labels, tags, favourite / reject, source).

    AtlasSource("cct/", "real", metadata="caltech.json"); parse_source("gen/:lora:lora-v1")
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


from trailcam_core.base import IMAGE_EXTENSIONS, ImageRecord, TrailcamError
from trailcam_core.embed import collect_records


KINDS = ("real", "lora", "gan", "generated")

@dataclass
class AtlasSource:
    """One source of an atlas: a folder of images (or a CCT JSON, or an embeddings .npz) and what it is.

    ``kind``: ``real`` photos, or generated images (``lora`` generations, ``gan`` samples,
    ``generated``). ``metadata``: a CCT JSON lending a folder's photos labels, location and time.
    ``project``: a curation project folder (``trailcam_state.json``: favourites, rejects, tags);
    by default the folder itself when it has one.
    """

    path: str
    kind: str = "real"
    name: str = ""
    metadata: Optional[str] = None
    project: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TrailcamError(f"source {self.path}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        self.path = str(self.path)
        if not self.name:
            self.name = Path(self.path).name or self.kind

    @property
    def generated(self) -> bool:
        return self.kind != "real"

    def to_dict(self) -> dict:
        return {"path": str(Path(self.path).resolve()), "kind": self.kind, "name": self.name,
                "metadata": str(Path(self.metadata).resolve()) if self.metadata else None,
                "project": str(Path(self.project).resolve()) if self.project else None}

def parse_source(text: str, default_kind: str = "real") -> AtlasSource:
    """``[name=][kind:]path`` -> AtlasSource, e.g. ``lora-v1=lora:gen/`` or ``photos/``."""
    name, rest = "", text
    if "=" in text and not os.path.exists(text):
        name, rest = text.split("=", 1)
    kind = default_kind
    head, sep, tail = rest.partition(":")
    if sep and head in KINDS:
        kind, rest = head, tail
    if not rest:
        raise TrailcamError(f"source {text!r}: no path (expected [name=][kind:]path)")
    return AtlasSource(rest, kind, name)

def _is_strength_grid(path: Path) -> bool:
    """A strength grid written by `trailcam strength-grid` (a picture of pictures: not a generation)."""
    if path.suffix.lower() != ".png":
        return False
    try:
        from PIL import Image

        with Image.open(path) as im:
            text = getattr(im, "text", {}).get("trailcam")
        return bool(text) and "model_strengths" in json.loads(text)
    except Exception:
        return False

def source_records(source: AtlasSource, exclude: Optional[Path] = None) -> tuple[list[ImageRecord], list[tuple[str, str]]]:
    """The records of one source (labels from its metadata, curation from its project) and what was left out."""
    path = Path(source.path).expanduser()
    if not path.exists():
        raise TrailcamError(f"source {source.name!r}: {path} does not exist")
    skipped: list[tuple[str, str]] = []
    if path.is_file() and path.suffix.lower() == ".json":
        from trailcam_core.tags import collection_records

        records = collection_records(path)[0]
    elif path.is_dir() and source.metadata:
        from trailcam_core.tags import collection_records

        records = collection_records(path, source.metadata)[0]
    elif path.is_dir():
        records = collect_records(path)
    elif path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        records = collect_records(path)
    else:
        raise TrailcamError(f"source {source.name!r}: {path} is not a folder of images, an image or a CCT JSON")
    if exclude is not None:
        from trailcam_core.base import is_within

        records = [r for r in records if not is_within(r.path, exclude)]
    if source.generated:
        kept = []
        for r in records:
            if _is_strength_grid(Path(r.path)):
                skipped.append((str(r.file_name or r.path), "a strength grid (a picture of several generations)"))
            else:
                kept.append(r)
        records = kept
    _attach_curation(source, path, records)
    return records, skipped

def _attach_curation(source: AtlasSource, path: Path, records: list[ImageRecord]) -> None:
    project_dir = Path(source.project) if source.project else (path if (path / "trailcam_state.json").is_file() else None)
    if project_dir is None:
        return
    from trailcam_core.tags import Project

    project = Project.open(project_dir, create=False)
    by_file = {}
    for iid, entry in project.images.items():
        if entry.get("file"):
            by_file[str((project_dir / entry["file"]).resolve())] = entry
    for r in records:
        entry = project.images.get(r.image_id) or by_file.get(str(Path(r.path).resolve()))
        if entry is None:
            stem = Path(r.file_name or r.path).stem
            entry = project.images.get(stem)
        if entry:
            r.extra["curation"] = entry

def _tag_value(rec: ImageRecord, key: str):
    tag = ((rec.extra.get("curation") or {}).get("tags") or {}).get(key)
    return tag.get("value") if isinstance(tag, dict) else None

def item_values(rec: ImageRecord, source: AtlasSource) -> dict:
    """The layer values of one item: label, location, time of day, glitch, favourite/reject, source."""
    from trailcam_core.tags import sun_phase

    cur = rec.extra.get("curation") or {}
    label = rec.label or _tag_value(rec, "species")
    tod = _tag_value(rec, "time_of_day") or sun_phase(rec.datetime)
    artifact = _tag_value(rec, "artifact")
    fav = "favourite" if cur.get("favorite") else ("reject" if cur.get("reject") else None)
    return {"label": label, "location": rec.location, "time_of_day": tod,
            "glitch": str(artifact) if artifact not in (None, "", False, "none") else None,
            "favourite": fav, "source": source.name}

def item_tags(values: dict, rec: ImageRecord) -> list[str]:
    tags = list(rec.labels)
    for key in ("location", "time_of_day", "glitch", "favourite"):
        v = values.get(key)
        if v and v not in tags:
            tags.append(f"location {v}" if key == "location" else str(v))
    for t in rec.extra.get("tags", []) or []:
        if str(t) not in tags:
            tags.append(str(t))
    return tags
