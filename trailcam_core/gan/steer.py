"""Latent directions for the project's own tags: sample, tag with the tagger, fit, move along.

    result = fit_directions("gan.safetensors", GanSteerOptions(samples=2000), out_dir="steer/")
    result.directions["night-infrared"]["accuracy"]          # held-out accuracy of the fitted classifier
    generate(G, seed=3, strengths={"glitch": 2.0})           # sample.generate: "more glitch"

Each sample is tagged from its pixels by the tags stage's own measurements (time of day from the
colour statistics, the glitch/artifact score, the info strip); one logistic regression
(scikit-learn) per tag separates the latents that carry it from those that do not, and its unit
normal is the direction.  Strength is in standard deviations of the latent along it (-3..3).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image

from trailcam_core.base import ensure, ProgressCallback, TrailcamError, write_json
from trailcam_core.gan.config import GanSteerOptions
from trailcam_core.gan.pictures import labelled_rows, save_png

# direction name -> what the user reads
TAG_DIRECTIONS = {
    "night-infrared": "more infrared night",
    "night-flash": "more flash night",
    "day": "more day",
    "glitch": "more glitch",
    "info-bar": "more info bar",
}
STRIP_STRENGTHS = (-3.0, -1.5, 0.0, 1.5, 3.0)
# Generated infrared frames are grey to the eye but never R = G = B exactly, as a camera's are (the
# tagger's rule): colourfulness 4.5 to 6.5 for a generator's infrared-like frames, 0 for real ones,
# 14 and more for its day frames and 25 and more for the real day photos (docs/gan.md).
GENERATED_GREY = 8.0


def tag_pixels(img: Image.Image) -> dict:
    """The tags stage's pixel measurements of an in-memory image: time of day, artifact score, info bar."""
    from trailcam_core.crop import detect_info_bar
    from trailcam_core.tags import artifact_score
    from trailcam_core.tags import image_statistics, time_of_day

    rgb = np.asarray(img.convert("RGB"))
    bar = detect_info_bar(img)
    top, bottom = int(getattr(bar, "top", 0) or 0), int(getattr(bar, "bottom", 0) or 0)
    body = rgb[top: rgb.shape[0] - bottom] if top + bottom < rgb.shape[0] - 16 else rgb
    stats = image_statistics(body)
    tod, _ = time_of_day(stats)
    score, _ = artifact_score(body)
    return {"time_of_day": tod, "artifact_score": float(score), "brightness": stats["brightness"],
            "colourfulness": stats["colourfulness"],
            "info_bar": "both" if top and bottom else "top" if top else "bottom" if bottom else "none"}


def labels_for(tags: list[dict], artifact_threshold: float) -> dict[str, np.ndarray]:
    """Binary labels per direction name (infrared: the tagger's, or near-grey as generated frames are)."""
    tod = np.array([t["time_of_day"] for t in tags])
    grey = (tod == "night-infrared") | np.array([t["colourfulness"] < GENERATED_GREY for t in tags])
    return {
        "night-infrared": grey,
        "night-flash": (tod == "night-flash") & ~grey,
        "day": (tod == "day") & ~grey,
        "glitch": np.array([t["artifact_score"] >= artifact_threshold for t in tags]),
        "info-bar": np.array([t["info_bar"] != "none" for t in tags]),
    }


def fit_direction(z: np.ndarray, y: np.ndarray, test_fraction: float = 0.25, seed: int = 0,
                  min_class: int = 10) -> dict:
    """Logistic regression of ``y`` on ``z`` -> {vector (unit), accuracy, balanced_accuracy, n_pos, n_neg, chance}.

    Raises TrailcamError when one side has fewer than ``min_class`` samples."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import train_test_split

    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if min(n_pos, n_neg) < min_class:
        raise TrailcamError(f"{n_pos} samples with the tag and {n_neg} without: need {min_class} of each")
    zt, zv, yt, yv = train_test_split(z, y, test_size=test_fraction, random_state=seed, stratify=y)
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(zt, yt)
    w = clf.coef_[0].astype(np.float64)
    pred = clf.predict(zv)
    return {"vector": (w / (np.linalg.norm(w) + 1e-12)).astype(np.float32).tolist(),
            "accuracy": float((pred == yv).mean()), "balanced_accuracy": float(balanced_accuracy_score(yv, pred)),
            "chance": float(max(yv.mean(), 1 - yv.mean())), "n_pos": n_pos, "n_neg": n_neg,
            "held_out": int(len(yv))}


@dataclass
class SteerResult:
    directions: dict[str, dict]
    not_fitted: dict[str, str] = field(default_factory=dict)     # name -> why
    tag_counts: dict[str, int] = field(default_factory=dict)
    path: Optional[Path] = None
    strips: dict[str, Path] = field(default_factory=dict)

    def table(self) -> str:
        rows = ["| direction | with tag | without | held-out accuracy | balanced | chance |", "|---|---|---|---|---|---|"]
        for name, d in self.directions.items():
            rows.append(f"| {TAG_DIRECTIONS.get(name, name)} | {d['n_pos']} | {d['n_neg']} | {d['accuracy']:.3f} | "
                        f"{d['balanced_accuracy']:.3f} | {d['chance']:.3f} |")
        for name, why in self.not_fitted.items():
            rows.append(f"| {TAG_DIRECTIONS.get(name, name)} | not fitted: {why} | | | | |")
        return "\n".join(rows)


def directions_path(generator_path: str | os.PathLike) -> Path:
    """Where a generator's directions live: ``<name>.directions.json`` beside it."""
    p = Path(generator_path)
    return p.with_name(p.stem + ".directions.json")


def load_directions(generator_path: str | os.PathLike, required: bool = False) -> dict:
    p = directions_path(generator_path)
    if not p.is_file():
        if required:
            raise TrailcamError(f"no directions for {Path(generator_path).name}: run `trailcam gan steer` first "
                                f"(expected {p})")
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))["directions"]
    except (OSError, ValueError, KeyError) as exc:
        raise TrailcamError(f"cannot read directions {p}: {exc}") from exc


def tag_samples(generator, count: int, seed: int, batch_size: int = 64,
                progress: Optional[ProgressCallback] = None) -> tuple[np.ndarray, list[dict]]:
    """Sample ``count`` latents (seeds seed..seed+count-1), render and tag them -> (z, tags)."""
    from trailcam_core.gan.sample import latents, render

    cb = ensure(progress)
    zs, tags = [], []
    for i in range(0, count, batch_size):
        z = latents(range(seed + i, seed + min(count, i + batch_size)), generator.config.z_dim)
        imgs = render(generator, z, batch_size)
        zs.append(z.numpy())
        tags.extend(tag_pixels(im) for im in imgs)
        cb(min(count, i + batch_size), count, "sampling and tagging")
    return np.concatenate(zs), tags


def fit_directions(generator, options: Optional[GanSteerOptions] = None, out_dir=None,
                   progress: Optional[ProgressCallback] = None,
                   labeller: Optional[Callable[[list[dict], float], dict]] = None) -> SteerResult:
    """Fit every tag's direction for ``generator`` (a file or a module); save them beside the file."""
    from trailcam_core.gan.sample import resolve_generator

    o = options or GanSteerOptions()
    g, path = resolve_generator(generator)
    z, tags = tag_samples(g, o.samples, o.seed, o.batch_size, progress)
    labels = (labeller or labels_for)(tags, o.artifact_threshold)
    result = SteerResult({}, tag_counts={k: int(v.sum()) for k, v in labels.items()})
    for name, y in labels.items():
        try:
            result.directions[name] = fit_direction(z, y, o.test_fraction, o.seed, o.min_class)
        except TrailcamError as exc:
            result.not_fitted[name] = str(exc)
    dest = directions_path(path) if path is not None else (Path(out_dir) / "directions.json" if out_dir else None)
    if dest is not None:
        write_json(dest, {"directions": result.directions, "not_fitted": result.not_fitted,
                          "samples": o.samples, "seed": o.seed, "generator": path.name if path else None,
                          "labels": TAG_DIRECTIONS}, indent=None)
        result.path = dest
    if out_dir is not None and result.directions:
        for name in result.directions:
            result.strips[name] = save_png(direction_strip(g, result.directions, name, o.strip_seeds),
                                           Path(out_dir) / f"strip-{name}.png")
        write_json(Path(out_dir) / "steer_report.json",
                   {k: {kk: vv for kk, vv in d.items() if kk != "vector"} for k, d in result.directions.items()})
    return result


def direction_strip(generator, directions: dict, name: str, seeds, strengths=STRIP_STRENGTHS) -> Image.Image:
    """Rows of images (one per seed) moving along ``name`` from -3 to +3."""
    from trailcam_core.gan.sample import latents, render, steer
    import torch

    from trailcam_core.gan.sample import latents, render, steer

    rows = []
    for s in seeds:
        z = latents([s] * len(strengths), generator.config.z_dim)
        zz = torch.cat([steer(z[k:k + 1], directions, {name: st}) for k, st in enumerate(strengths)])
        rows.append((f"seed {s}\n{TAG_DIRECTIONS.get(name, name)}\n{strengths[0]:+.1f} .. {strengths[-1]:+.1f}",
                     render(generator, zz)))
    return labelled_rows(rows)


def parse_strengths(items) -> dict[str, float]:
    """``["glitch=2", "night-infrared=-1"]`` -> {"glitch": 2.0, "night-infrared": -1.0}."""
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = str(item).partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise TrailcamError(f"strength {item!r} is not NAME=NUMBER (e.g. glitch=2)") from None
    return out
