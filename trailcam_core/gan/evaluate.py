"""The evaluation report: how close a generator's samples come to the real images, with pictures.

    report = evaluate_generator("runs/night/trailcam_gan.safetensors", "Favorites/", "runs/night/eval")
    report.kid, report.gap_closed, report.markdown_path      # eval/report.md + PNGs

KID (primary: unbiased on small sets) and FID, precision/recall/density/coverage; the floor is
the real set split into two halves (what "as good as real" scores here), the ceiling an untrained
generator of the same config; ``gap_closed`` = (ceiling - model) / (ceiling - floor).  With
``checkpoints`` every checkpoint of the run is scored too (the curve).  Memorisation: samples
nearer to a training image than the real images' 1st-percentile nearest-neighbour distance are
flagged as likely copies and shown beside their twin.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from trailcam_core.base import ensure, ProgressCallback, write_json, write_text
from trailcam_core.gan.config import GanEvalOptions
from trailcam_core.gan.data import load_images, to_pil
from trailcam_core.gan.metrics import FeatureExtractor, fid, kid, make_extractor, memorisation, prdc_scores
from trailcam_core.gan.pictures import curve, grid, labelled_rows, save_png
from trailcam_core.base import checkpoints


@dataclass
class EvalReport:
    extractor: str
    real_images: int
    samples: int
    kid: tuple[float, float]
    kid_floor: tuple[float, float]
    kid_ceiling: tuple[float, float]
    fid: float
    fid_floor: float
    fid_ceiling: float
    prdc: dict
    memorisation: dict
    curve: list[tuple[int, float]] = field(default_factory=list)      # (step, KID) per checkpoint
    pictures: dict[str, Path] = field(default_factory=dict)
    markdown_path: Optional[Path] = None

    @property
    def gap_closed(self) -> float:
        span = self.kid_ceiling[0] - self.kid_floor[0]
        return float((self.kid_ceiling[0] - self.kid[0]) / span) if span > 0 else float("nan")

    def to_dict(self) -> dict:
        return {"extractor": self.extractor, "real_images": self.real_images, "samples": self.samples,
                "kid": self.kid, "kid_floor": self.kid_floor, "kid_ceiling": self.kid_ceiling,
                "gap_closed": self.gap_closed, "fid": self.fid, "fid_floor": self.fid_floor,
                "fid_ceiling": self.fid_ceiling, "prdc": self.prdc, "memorisation": self.memorisation,
                "curve": self.curve, "pictures": {k: str(v) for k, v in self.pictures.items()}}


def _samples(generator, n: int, seed: int) -> list[Image.Image]:
    from trailcam_core.gan.sample import latents, render

    return render(generator, latents(range(seed, seed + n), generator.config.z_dim))


def score(extractor: FeatureExtractor, real_feats: np.ndarray, images, options: GanEvalOptions) -> tuple:
    feats = extractor(images)
    return feats, kid(real_feats, feats, options.kid_subset_size, options.kid_subsets, options.seed)


def evaluate_generator(generator, real_folder, out_dir, options: Optional[GanEvalOptions] = None,
                       progress: Optional[ProgressCallback] = None,
                       extractor: Optional[FeatureExtractor] = None) -> EvalReport:
    """Score ``generator`` (a file or module) against the images of ``real_folder``; write the report."""
    import torch

    from trailcam_core.gan import checkpoint as ckpt
    from trailcam_core.gan.model import build_models
    from trailcam_core.gan.sample import resolve_generator

    o = options or GanEvalOptions()
    cb = ensure(progress)
    out = Path(out_dir)
    g, path = resolve_generator(generator)
    size = g.config.size
    cb(0, 6, "loading the real images")
    real = load_images(real_folder, size, exclude=out, min_images=4)
    real_pils = to_pil(real.tensor.float().div(127.5).sub(1))
    ex = extractor or make_extractor(o.features, o.inception_weights, o.clip_model, o.clip_weights)
    cb(1, 6, f"features of {len(real_pils)} real images ({ex.name})")
    real_feats = ex(real_pils)
    n = o.samples or max(100, len(real_pils))
    # floor: two halves of the real set
    perm = np.random.RandomState(o.seed).permutation(len(real_feats))
    h1, h2 = real_feats[perm[: len(perm) // 2]], real_feats[perm[len(perm) // 2:]]
    floor = kid(h1, h2, o.kid_subset_size, o.kid_subsets, o.seed)
    fid_floor = fid(h1, h2)
    # ceiling: an untrained generator of the same config
    cb(2, 6, "untrained generator (the ceiling)")
    untrained, _ = build_models(g.config, o.seed)
    untrained = untrained.to(next(g.parameters()).device).eval()
    ceil_feats, ceiling = score(ex, real_feats, _samples(untrained, n, o.seed), o)
    fid_ceiling = fid(real_feats, ceil_feats)
    del untrained
    cb(3, 6, f"{n} samples of the generator")
    samples = _samples(g, n, o.seed)
    fake_feats, model_kid = score(ex, real_feats, samples, o)
    fid_model = fid(real_feats, fake_feats)
    pr = prdc_scores(real_feats, fake_feats, o.nearest_k)
    mem = memorisation(real_feats, fake_feats)
    # metric over checkpoints
    points: list[tuple[int, float]] = []
    run_dir = path.parent if path is not None else None
    ck = checkpoints.list_checkpoints(run_dir) if (o.checkpoints and run_dir is not None) else []
    if ck:
        points.append((0, ceiling[0]))
        for i, folder in enumerate(ck):
            cb(4, 6, f"checkpoint {i + 1} of {len(ck)}")
            try:
                cg, state = ckpt.ema_generator_from_checkpoint(folder, str(next(g.parameters()).device))
            except Exception as exc:            # another config or a damaged folder: leave it off the curve
                cb(4, 6, f"checkpoint {folder.name} skipped: {exc}")
                continue
            if cg.config.to_dict() != g.config.to_dict():
                continue
            points.append((int(state["step"]), score(ex, real_feats, _samples(cg, n, o.seed), o)[1][0]))
            del cg
            torch.cuda.empty_cache() if torch.cuda.is_available() else None
    cb(5, 6, "pictures")
    rep = EvalReport(ex.name, len(real_pils), n, model_kid, floor, ceiling, fid_model, fid_floor, fid_ceiling, pr,
                     mem.summary(), points)
    pics = rep.pictures
    pics["samples"] = save_png(grid(samples[:64]), out / "samples.png")
    pics["real"] = save_png(grid(real_pils[:64]), out / "real.png")
    order = np.argsort(mem.distance)[:8]
    zoom = max(1, 128 // size)          # small samples are shown larger, side by side with their twin
    big = lambda im: im.resize((im.width * zoom, im.height * zoom), Image.Resampling.NEAREST)  # noqa: E731
    rows = []
    for k in order:
        flag = "LIKELY COPY" if k in set(mem.flagged.tolist()) else ""
        rows.append((f"sample {int(k)}\nd={mem.distance[k]:.3f}\n(real p1 {mem.threshold:.3f})\n{flag}",
                     [big(samples[k]), big(real_pils[mem.nearest[k]])]))
    pics["nearest"] = save_png(labelled_rows(rows), out / "nearest_real.png")
    if mem.flagged.size:
        pics["copies"] = save_png(labelled_rows([(f"sample {int(k)}", [big(samples[k]), big(real_pils[mem.nearest[k]])])
                                                 for k in mem.flagged[:16]]), out / "likely_copies.png")
    if len(points) > 1:
        curve({"KID": [p[1] for p in points]}, f"KID over checkpoints ({ex.name.split(' (')[0]})",
                              ylabel="KID", xs=[p[0] for p in points],
                              hlines={"floor (real half vs half)": floor[0]}, out_png=out / "kid_curve.png")
        pics["curve"] = out / "kid_curve.png"
    write_json(out / "report.json", rep.to_dict())
    rep.markdown_path = write_text(out / "report.md", markdown(rep, path))
    cb(6, 6, f"KID {model_kid[0]:.4f} (floor {floor[0]:.4f}, ceiling {ceiling[0]:.4f})")
    return rep


def markdown(rep: EvalReport, generator_path: Optional[Path] = None) -> str:
    name = generator_path.name if generator_path else "generator"
    lines = [f"# Evaluation of {name}", "",
             f"Features: **{rep.extractor}**. {rep.real_images} real images, {rep.samples} samples.", "",
             "| | KID (mean ± std) | FID |", "|---|---|---|",
             f"| floor: real half vs real half | {rep.kid_floor[0]:.5f} ± {rep.kid_floor[1]:.5f} | {rep.fid_floor:.3f} |",
             f"| **this generator** | **{rep.kid[0]:.5f} ± {rep.kid[1]:.5f}** | **{rep.fid:.3f}** |",
             f"| ceiling: untrained generator | {rep.kid_ceiling[0]:.5f} ± {rep.kid_ceiling[1]:.5f} | "
             f"{rep.fid_ceiling:.3f} |", "",
             f"Gap closed (ceiling to floor, KID): **{rep.gap_closed:.1%}**.", "",
             "Precision / recall / density / coverage: " +
             ", ".join(f"{k} {v:.3f}" for k, v in rep.prdc.items()) + ".", "",
             f"Memorisation: {rep.memorisation['flagged']} of {rep.memorisation['samples']} samples are closer to a "
             f"training image than the real images' 1st-percentile nearest-neighbour distance "
             f"({rep.memorisation['threshold_real_p1']:.4f}); median sample-to-real "
             f"{rep.memorisation['median_sample_to_real']:.4f} vs real-to-real "
             f"{rep.memorisation['median_real_to_real']:.4f}.", ""]
    if rep.curve:
        lines += ["| step | KID |", "|---|---|"] + [f"| {s} | {v:.5f} |" for s, v in rep.curve] + [""]
    for key, title in (("samples", "Samples"), ("real", "Real images"), ("curve", "KID over checkpoints"),
                       ("nearest", "Closest samples beside their nearest real image"),
                       ("copies", "Likely copies")):
        if key in rep.pictures:
            lines += [f"## {title}", "", f"![{title}]({Path(rep.pictures[key]).name})", ""]
    return "\n".join(lines)
