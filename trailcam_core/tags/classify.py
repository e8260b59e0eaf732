"""Zero-shot classification of camera-trap images with open_clip, written back as CCT annotations.

For each image the model compares it with one prompt per label ("a camera trap photo of a
coyote") plus an "empty" prompt, and keeps the top-k labels with their softmax scores::

    report = classify_to_cct("subset.json", "subset_zeroshot.json",
                             ClassifyOptions(model="ViT-B-32", pretrained="laion2b_s34b_b79k", top_k=3))

The output is a new COCO Camera Traps JSON: the source's images, categories (new labels get new
ids) and its hand-made annotations, plus one annotation per kept label::

    {"id": "zs-<image id>-1", "image_id": "...", "category_id": 9, "score": 0.83,
     "source": "zero-shot ViT-B-32/laion2b_s34b_b79k"}

Scores are per image and sum to at most 1 over the kept labels; filter with ``min_score``.
With ``only_unlabelled`` (default) images that already carry an unscored annotation keep it and
are not classified; earlier zero-shot annotations are replaced. A plain folder works too (labels
are then required); its new JSON sits in the folder so ``file_name`` stays relative to it.

Models: any open_clip architecture and pretrained tag (downloaded once by open_clip), a
``hf-hub:`` repo such as ``hf-hub:imageomics/bioclip``, a checkpoint file, or the tiny random
``trailcam-tiny`` used by tests (see clipmodel.py).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
from PIL import Image

from trailcam_core.base import (BatchReport, DataError, ensure, ImageRecord, option, Options, ProgressCallback,
                                TrailcamError, write_json)
from trailcam_core.models import load_clip
from trailcam_core.tags.auto import folder_records
from trailcam_core.ingest import load_dataset

ZERO_SHOT_PREFIX = "zero-shot "


@dataclass
class ClassifyOptions(Options):
    """Zero-shot classification parameters (CLI flags, node inputs and Gradio controls read these)."""

    STAGE = "classify"

    model: str = option("ViT-B-32", "open_clip model: architecture name, hf-hub:org/repo, local-dir:/path "
                        "or trailcam-tiny (random weights, for tests)")
    pretrained: str = option("laion2b_s34b_b79k", "open_clip pretrained tag or checkpoint file; empty for "
                             "random weights")
    labels: list[str] = option([], "Labels to choose from (default: the dataset's categories except empty)")
    prompt: str = option("a camera trap photo of a {label}", "Prompt per label; {label} is replaced")
    empty_prompt: str = option("a camera trap photo of an empty scene with no animals",
                               "Prompt for the empty class (empty text: no empty class)")
    empty_label: str = option("empty", "Category name written for the empty prompt")
    top_k: int = option(3, "Labels kept per image", min=1, max=50)
    min_score: float = option(0.0, "Drop labels scoring below this", min=0.0, max=1.0, step=0.01)
    only_unlabelled: bool = option(True, "Classify only images without a hand-made annotation")
    batch_size: int = option(32, "Images per model batch", min=1, max=1024)
    device: str = option("", "Torch device (empty: cuda when available, else cpu)")


def _prompts(labels: list[str], options: ClassifyOptions) -> tuple[list[str], list[str]]:
    if "{label}" not in options.prompt:
        raise TrailcamError(f"prompt {options.prompt!r} has no {{label}} field")
    names = [lab for lab in dict.fromkeys(str(x).strip() for x in labels) if lab and lab != options.empty_label]
    if not names:
        raise TrailcamError("no labels to classify with: give --labels (e.g. coyote bobcat deer)")
    texts = [options.prompt.replace("{label}", n.replace("_", " ")) for n in names]
    if options.empty_prompt.strip():
        names.append(options.empty_label)
        texts.append(options.empty_prompt)
    return names, texts


def _load(path: Path, size: int) -> Image.Image:
    with Image.open(path) as im:
        im.draft("RGB", (size, size))
        return im.convert("RGB")


def classify_records(records: Iterable[ImageRecord], labels: list[str], options: Optional[ClassifyOptions] = None,
                     progress: Optional[ProgressCallback] = None, clip=None
                     ) -> tuple[dict[str, list[tuple[str, float]]], BatchReport]:
    """Top-k (label, score) per image id; undecodable images are skipped and reported.

    ``clip``: an already loaded ``clipmodel.ClipModel`` (else loaded from the options).
    """

    options = options or ClassifyOptions()
    progress = ensure(progress)
    records = list(records)
    names, texts = _prompts(labels, options)
    if clip is None:
        clip = load_clip(options.model, options.pretrained or None, device=options.device or None)
    text_features = clip.encode_texts(texts)
    report = BatchReport("classify")
    out: dict[str, list[tuple[str, float]]] = {}
    total = len(records)
    progress(0, total, f"zero-shot with {clip.name}")
    for start in range(0, total, options.batch_size):
        chunk = records[start:start + options.batch_size]
        images, kept = [], []
        for rec in chunk:
            try:
                images.append(_load(Path(rec.path), clip.image_size))
                kept.append(rec)
            except Exception as exc:  # missing, truncated, not an image: report, go on
                report.skip(rec.file_name or rec.image_id, f"cannot decode image ({exc})")
        if images:
            probs = clip.zero_shot(clip.encode_images(images, batch_size=options.batch_size), text_features)
            for rec, p in zip(kept, probs):
                order = np.argsort(-p, kind="stable")[:options.top_k]
                out[rec.image_id] = [(names[j], float(p[j])) for j in order if p[j] >= options.min_score]
                report.processed += 1
        done = min(total, start + len(chunk))
        progress(done, total, chunk[-1].file_name or chunk[-1].image_id, images[-1] if images else None)
    return out, report


def classify_to_cct(source: str | os.PathLike, out_json: Optional[str | os.PathLike] = None,
                    options: Optional[ClassifyOptions] = None, image_root: Optional[str | os.PathLike] = None,
                    progress: Optional[ProgressCallback] = None, clip=None) -> BatchReport:
    """Classify a CCT JSON's (or a folder's) images and write a new CCT JSON with scored annotations.

    ``out_json`` defaults to ``<source stem>_zeroshot.json`` beside a JSON source, or
    ``<folder>/zeroshot_cct.json`` for a folder. The source file is never modified.
    """
    options = options or ClassifyOptions()
    source = Path(source).expanduser()
    if source.is_dir():

        records = folder_records(source)
        doc = {"info": {"description": f"images of {source.name}"}, "images": [
            {"id": r.image_id, "file_name": r.file_name} for r in records], "annotations": [], "categories": []}
        default_out = source / "zeroshot_cct.json"
        labels = list(options.labels)
    elif source.is_file():

        ds = load_dataset(source, image_root=image_root)
        try:
            doc = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{source}: cannot read CCT JSON ({exc})") from exc
        records = ds.records()
        default_out = source.with_name(source.stem + "_zeroshot.json")
        labels = list(options.labels) or [n for n in ds.category_names if n != options.empty_label]
    else:
        raise TrailcamError(f"{source}: no such file or folder")
    out_path = Path(out_json).expanduser() if out_json else default_out
    if out_path.resolve() == source.resolve():
        raise TrailcamError(f"{out_path}: the output must be a new file, not the source")

    anns = [a for a in doc.get("annotations", []) if not str(a.get("source", "")).startswith(ZERO_SHOT_PREFIX)]
    hand_labelled = {str(a.get("image_id")) for a in anns if a.get("score") is None}
    todo = [r for r in records if not (options.only_unlabelled and r.image_id in hand_labelled)]
    results, report = classify_records(todo, labels, options, progress, clip)
    report.up_to_date = len(records) - len(todo)

    cats = list(doc.get("categories", []))
    by_name = {str(c.get("name", "")).strip(): c["id"] for c in cats}
    next_id = max([int(c["id"]) for c in cats if str(c.get("id", "")).lstrip("-").isdigit()] + [0]) + 1
    tag = f"{ZERO_SHOT_PREFIX}{options.model}/{options.pretrained or 'random'}"
    for image_id, top in results.items():
        for k, (name, score) in enumerate(top, 1):
            if name not in by_name:
                by_name[name] = next_id
                cats.append({"id": next_id, "name": name})
                next_id += 1
            anns.append({"id": f"zs-{image_id}-{k}", "image_id": image_id, "category_id": by_name[name],
                         "score": round(score, 5), "source": tag})
    doc["annotations"] = anns
    doc["categories"] = cats
    info = dict(doc.get("info") or {})
    info["zero_shot"] = {"model": options.model, "pretrained": options.pretrained, "prompt": options.prompt,
                         "empty_prompt": options.empty_prompt, "top_k": options.top_k, "labels": labels}
    doc["info"] = info
    write_json(out_path, doc)
    report.outputs["cct"] = out_path
    return report
