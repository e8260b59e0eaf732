"""Sample-quality metrics on any features: KID (primary on small sets), FID, precision/recall/
density/coverage, and the memorisation check; the feature extractors they can run on.

    feats = PyramidFeatures()(images)                       # model-free, always available
    kid_mean, kid_std = kid(real_feats, fake_feats)         # same estimator as torch-fidelity
    fid(real_feats, fake_feats); prdc_scores(real_feats, fake_feats)

Extractors: ``InceptionFeatures`` (torch-fidelity's Inception-v3 from a local weights file: the
numbers papers report), ``ClipFeatures`` (open_clip image embeddings with real weights) and
``PyramidFeatures`` (blurred image pyramids, the mosaic stage's model-free features).
:func:`make_extractor` picks one from GanEvalOptions; a report always names the one it used.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

from ..errors import TrailcamError


class FeatureExtractor(Protocol):
    name: str

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray: ...


class PyramidFeatures:
    """The mosaic stage's image-pyramid features (no model, no weights)."""

    def __init__(self, size: int = 16, levels: int = 4):
        self.size, self.levels = size, levels
        self.name = f"pyramid features ({size} px, {levels} levels; model-free)"

    def __call__(self, images):
        from ..embed import pyramid_features

        f = np.stack([pyramid_features(im, self.size, self.levels) for im in images]).astype(np.float64)
        # pyramid levels have unit energy; scaled so a feature is O(1) per dimension, as Inception's
        # are (KID's kernel (x.y / d + 1)^3 is not scale-free)
        return f * np.sqrt(f.shape[1] / self.levels)


class ClipFeatures:
    """open_clip image embeddings (L2-normalised) from real weights."""

    def __init__(self, model: str, weights: str):
        from ..clipmodel import load_clip

        self.clip = load_clip(model, weights)
        self.name = f"open_clip {model} ({Path(weights).name if os.path.isfile(weights) else weights})"

    def __call__(self, images):
        return self.clip.encode_images(list(images)).astype(np.float64)


class InceptionFeatures:
    """torch-fidelity's Inception-v3 pool features (2048-d) from a local weights file."""

    def __init__(self, weights_path: str):
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as exc:
            raise TrailcamError("Inception features need torch-fidelity (pip install torch-fidelity)") from exc
        if not os.path.isfile(weights_path):
            raise TrailcamError(f"Inception weights file not found: {weights_path}")
        import torch

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                 feature_extractor_weights_path=weights_path).to(self.device).eval()
        self.name = f"Inception-v3 pool3 (torch-fidelity, {Path(weights_path).name})"

    def __call__(self, images):
        import torch

        out = []
        for i in range(0, len(images), 32):
            batch = torch.stack([torch.from_numpy(np.asarray(im.convert("RGB"))).permute(2, 0, 1)
                                 for im in images[i:i + 32]]).to(self.device)
            with torch.no_grad():
                out.append(self.model(batch)[0].double().cpu().numpy())
        return np.concatenate(out)


def make_extractor(kind: str = "auto", inception_weights: str = "", clip_model: str = "ViT-B-32",
                   clip_weights: str = "") -> FeatureExtractor:
    """The extractor asked for; ``auto``: Inception with a weights file, else open_clip with weights, else pyramid."""
    if kind == "inception" or (kind == "auto" and inception_weights):
        if not inception_weights:
            raise TrailcamError("features inception needs inception_weights (a local weights file)")
        return InceptionFeatures(inception_weights)
    if kind == "clip" or (kind == "auto" and clip_weights):
        if not clip_weights:
            raise TrailcamError("features clip needs clip_weights (real open_clip weights; random weights "
                                "measure nothing)")
        return ClipFeatures(clip_model, clip_weights)
    if kind in ("auto", "pyramid"):
        return PyramidFeatures()
    raise TrailcamError(f"unknown features {kind!r}; choose auto, pyramid, clip or inception")


# ------------------------------------------------------------------------------------ KID / FID
def _poly(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel of KID (Binkowski et al. 2018), equal-size sets."""
    m = x.shape[0]
    kxx, kyy, kxy = _poly(x, x), _poly(y, y), _poly(x, y)
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def kid(real: np.ndarray, fake: np.ndarray, subset_size: int = 1000, subsets: int = 100,
        seed: int = 2020) -> tuple[float, float]:
    """KID (mean, std over subsets); subsets drawn as torch-fidelity draws them (same numbers for the same seed)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.shape[1] != fake.shape[1]:
        raise TrailcamError(f"feature sizes differ: {real.shape[1]} vs {fake.shape[1]}")
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise TrailcamError(f"KID needs at least 2 images per set (got {len(real)} and {len(fake)})")
    rng = np.random.RandomState(seed)
    vals = np.zeros(subsets)
    for i in range(subsets):
        a = real[rng.choice(len(real), m, replace=False)]
        b = fake[rng.choice(len(fake), m, replace=False)]
        vals[i] = mmd2_unbiased(a, b)
    return float(vals.mean()), float(vals.std())


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance of two Gaussians fitted to the features.

    tr sqrt(S1 S2) is computed as the nuclear norm of A1 A2^T / sqrt((n1-1)(n2-1)) (A centred
    features): exact, and cheap when there are fewer images than feature dimensions."""
    a, b = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    a1, b1 = a - mu1, b - mu2
    tr1 = (a1 ** 2).sum() / (len(a) - 1)
    tr2 = (b1 ** 2).sum() / (len(b) - 1)
    cross = np.linalg.svd(a1 @ b1.T, compute_uv=False).sum() / np.sqrt((len(a) - 1) * (len(b) - 1))
    return float(((mu1 - mu2) ** 2).sum() + tr1 + tr2 - 2 * cross)


def prdc_scores(real: np.ndarray, fake: np.ndarray, nearest_k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) through the prdc package."""
    import contextlib
    import io

    from prdc import compute_prdc

    k = min(nearest_k, len(real) - 1, len(fake) - 1)
    with contextlib.redirect_stdout(io.StringIO()):        # prdc prints the set sizes
        out = compute_prdc(real_features=np.asarray(real, np.float32), fake_features=np.asarray(fake, np.float32),
                           nearest_k=k)
    return {key: float(v) for key, v in out.items()}


# ------------------------------------------------------------------------------- memorisation
@dataclass
class Memorisation:
    nearest: np.ndarray            # per sample: index of the nearest training image
    distance: np.ndarray           # per sample: its distance
    real_nn: np.ndarray            # per training image: distance to its nearest other training image
    threshold: float               # 1st percentile of real_nn
    flagged: np.ndarray            # sample indices closer than the threshold (likely copies)

    def summary(self) -> dict:
        return {"threshold_real_p1": self.threshold, "median_sample_to_real": float(np.median(self.distance)),
                "median_real_to_real": float(np.median(self.real_nn)), "flagged": int(len(self.flagged)),
                "samples": int(len(self.distance))}


def memorisation(real: np.ndarray, fake: np.ndarray, percentile: float = 1.0) -> Memorisation:
    """Each sample's nearest training image against the training images' own nearest-neighbour distances."""
    from scipy.spatial.distance import cdist

    rr = cdist(real, real)
    np.fill_diagonal(rr, np.inf)
    real_nn = rr.min(axis=1)
    fr = cdist(fake, real)
    nearest, dist = fr.argmin(axis=1), fr.min(axis=1)
    thr = float(np.percentile(real_nn, percentile))
    return Memorisation(nearest, dist, real_nn, thr, np.flatnonzero(dist < thr))
