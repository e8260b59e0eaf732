"""Captions from tags: templates, trigger word, tag order and dropout, kohya sidecars, HF metadata.

A caption is a template over tag fields, split on commas into parts (empty parts vanish, so a
clean frame's ``{artifact}`` or a frame with no info bar leaves no stray comma)::

    opts = CaptionOptions(template="{trigger}, trailcam photo, {species}, {time_of_day}, {artifact}",
                          trigger="trlcm")
    render_caption(tags, opts, image_id="a1")   # "trlcm, trailcam photo, coyote, infrared night"

Fields: ``{trigger}``, ``{species}``, ``{time_of_day}``, ``{artifact}``, ``{location}``,
``{info_bar}``, ``{tags}`` (every tag, in key order) and any tag key a person added by hand.
An unknown field is a TrailcamError naming it.

``tag_order`` keeps the template's order, sorts the parts, or shuffles them (deterministically per
image and seed); ``keep_tokens`` leading parts never move or drop (kohya's meaning), and the
trigger word always stays first.  ``dropout`` drops each other part with that probability.

Written files (:func:`write_captions`):
- ``<image>.txt`` beside each image (kohya sd-scripts' caption sidecar, UTF-8, one line);
- ``metadata.jsonl`` in the collection folder: one ``{"file_name", "text", "image_id", "tags"}``
  per line, ``file_name`` relative to that folder (Hugging Face ``imagefolder``);
- ``tag_frequency.json``: ``{folder: {tag: count}}``, the shape of kohya's ``ss_tag_frequency``
  LoRA metadata (a folder is the image's parent folder relative to the collection, or its name).
"""
from __future__ import annotations

import json
import random
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional

from trailcam_core.base import (BatchReport, ensure, is_within, option, Options, ProgressCallback, TrailcamError,
                                write_json, write_text)
from trailcam_core.tags.model import TAG_KEYS, Tag, tag_text

DEFAULT_TEMPLATE = "{trigger}, trailcam photo, {species}, {time_of_day}, {artifact}"
BUILTIN_FIELDS = ("trigger", "tags") + tuple(k for k in TAG_KEYS if k != "unreadable")
METADATA_NAME = "metadata.jsonl"
TAG_FREQUENCY_NAME = "tag_frequency.json"


@dataclass
class CaptionOptions(Options):
    """How captions are written (CLI flags, node inputs and Gradio controls read these)."""

    STAGE = "caption"

    template: str = option(DEFAULT_TEMPLATE, "Caption template over tag fields: {trigger} {species} "
                           "{time_of_day} {artifact} {location} {info_bar} {tags} or a hand-added tag key")
    trigger: str = option("", "Trigger word put first in every caption (the LoRA's activation word)")
    tag_order: str = option("template", "Order of the caption's comma-separated parts",
                            choices=("template", "alphabetical", "shuffle"))
    keep_tokens: int = option(1, "Leading parts that never move or drop (besides the trigger)", min=0, max=32)
    dropout: float = option(0.0, "Probability of dropping each other part (per image, seeded)",
                            min=0.0, max=1.0, step=0.05)
    seed: int = option(0, "Seed for shuffle and dropout (the same seed gives the same captions)")
    include: str = option("not-rejected", "Which images get captions",
                          choices=("not-rejected", "favorites", "all"))
    caption_extension: str = option(".txt", "Extension of the caption sidecar files (kohya: .txt)")


def template_fields(template: str) -> list[str]:
    """Field names of a template, in order; TrailcamError for malformed templates."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TrailcamError(f"caption template {template!r} is malformed: {exc}") from exc
    fields = []
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if not name or not name.replace("_", "").isalnum():
            raise TrailcamError(f"caption template field {{{name}}} is not a plain name; "
                                f"use fields like {{species}}")
        if spec or conv:
            raise TrailcamError(f"caption template field {{{name}}}: format specs and conversions are not supported")
        fields.append(name)
    return fields


def check_template(template: str, extra_fields: Iterable[str] = ()) -> list[str]:
    """Validate a template against the known fields; the error names the unknown field."""
    known = list(BUILTIN_FIELDS) + sorted(set(extra_fields) - set(BUILTIN_FIELDS))
    fields = template_fields(template)
    for name in fields:
        if name not in known:
            raise TrailcamError(f"unknown caption template field {{{name}}}; known fields: "
                                + ", ".join("{" + k + "}" for k in known))
    return fields


def caption_parts(tags: Mapping[str, Tag], options: CaptionOptions, image_id: str = "") -> list[str]:
    """The caption as a list of parts (after order and dropout). See :func:`render_caption`."""
    fields = check_template(options.template, tags.keys())
    values = {k: tag_text(k, t) for k, t in tags.items()}
    values["tags"] = ", ".join(v for k, v in sorted(values.items(), key=lambda kv: _key_rank(kv[0])) if v)
    values["trigger"] = options.trigger.strip()
    for name in fields:
        values.setdefault(name, "")
    text = options.template.format(**values)
    parts: list[str] = []
    for p in text.split(","):
        p = " ".join(p.split())
        if p and p not in parts:
            parts.append(p)
    trigger = options.trigger.strip()
    head: list[str] = []
    if trigger:
        if trigger in parts:
            parts.remove(trigger)
        head.append(trigger)
    head += parts[:options.keep_tokens]
    rest = parts[options.keep_tokens:]
    rng = random.Random(f"{options.seed}:{image_id}")
    if options.tag_order == "alphabetical":
        rest.sort(key=str.lower)
    elif options.tag_order == "shuffle":
        rng.shuffle(rest)
    elif options.tag_order != "template":
        raise TrailcamError(f"unknown tag_order {options.tag_order!r}; use template, alphabetical or shuffle")
    if options.dropout > 0:
        rest = [p for p in rest if rng.random() >= options.dropout]
    return head + rest


def render_caption(tags: Mapping[str, Tag], options: Optional[CaptionOptions] = None, image_id: str = "") -> str:
    """One caption line from an image's tags. Example: ``render_caption(tags, CaptionOptions(trigger="trlcm"))``."""
    return ", ".join(caption_parts(tags, options or CaptionOptions(), image_id))


def _key_rank(key: str) -> tuple:
    order = ("species", "time_of_day", "artifact", "location", "info_bar")
    return (order.index(key), "") if key in order else (len(order), key)


def tag_frequency(captions: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """kohya ``ss_tag_frequency`` shape from (folder, caption) pairs: folder -> tag -> count."""
    out: dict[str, Counter] = {}
    for folder, caption in captions:
        counter = out.setdefault(folder, Counter())
        for part in caption.split(","):
            part = part.strip()
            if part:
                counter[part] += 1
    return {folder: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for folder, c in out.items()}


@dataclass
class CaptionEntry:
    """One image to caption: its id, its file, and its tags."""

    image_id: str
    path: Path
    tags: Mapping[str, Tag]


def write_captions(entries: Iterable[CaptionEntry], root: str | Path, options: Optional[CaptionOptions] = None,
                   progress: Optional[ProgressCallback] = None, folder_name: Optional[str] = None) -> BatchReport:
    """Write sidecars, ``metadata.jsonl`` and ``tag_frequency.json`` for images under ``root``.

    Images outside ``root`` or tagged unreadable are skipped and reported. An unchanged sidecar is
    not rewritten (counted as up to date). ``folder_name`` names the tag-frequency folder for
    images directly in ``root`` (default: root's own name).
    """
    options = options or CaptionOptions()
    progress = ensure(progress)
    root = Path(root)
    entries = list(entries)
    extra = {k for e in entries for k in e.tags}
    check_template(options.template, extra)          # fail before writing anything
    if not options.caption_extension.startswith(".") or "/" in options.caption_extension:
        raise TrailcamError(f"caption_extension {options.caption_extension!r} must look like '.txt'")
    report = BatchReport("caption")
    lines, pairs = [], []
    total = len(entries)
    progress(0, total, "captions")
    for i, e in enumerate(entries, 1):
        path = Path(e.path)
        if "unreadable" in e.tags and e.tags["unreadable"].value:
            report.skip(e.image_id, f"unreadable image ({e.tags['unreadable'].value})")
        elif not is_within(path, root):
            report.skip(e.image_id, f"{path} is outside {root}")
        else:
            caption = render_caption(e.tags, options, e.image_id)
            sidecar = path.with_suffix(options.caption_extension)
            if sidecar.is_file() and sidecar.read_text(encoding="utf-8", errors="replace") == caption + "\n":
                report.up_to_date += 1
            else:
                write_text(sidecar, caption + "\n")
                report.processed += 1
            rel = path.resolve().relative_to(root.resolve()).as_posix()
            folder = rel.rsplit("/", 1)[0] if "/" in rel else (folder_name or root.resolve().name)
            lines.append(json.dumps({"file_name": rel, "text": caption, "image_id": e.image_id,
                                     "tags": {k: t.to_dict() for k, t in e.tags.items()}}, ensure_ascii=False))
            pairs.append((folder, caption))
        progress(i, total, e.image_id)
    write_text(root / METADATA_NAME, "".join(line + "\n" for line in lines))
    write_json(root / TAG_FREQUENCY_NAME, tag_frequency(pairs))
    report.outputs.update({"metadata": root / METADATA_NAME, "tag_frequency": root / TAG_FREQUENCY_NAME,
                           "captions": len(lines)})
    return report
