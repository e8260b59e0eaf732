"""Camera-glitch artifact score: horizontal tearing, banding, colour-channel misalignment, blown or
flat rows and smeared rows, each a 0..1 detector; the score is the largest.

    score, parts = artifact_score(np.asarray(img.convert("RGB")))
    parts  -> {"tear": 0.02, "banding": 0.91, ...}

The tags stage turns the score into the ``glitch`` / ``clean`` tag with a threshold; precision and
recall on a labelled fixture set: benchmarks/bench_artifacts.py.
"""
from __future__ import annotations

import math

import numpy as np


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


def _median_filter_1d(x: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import median_filter

    return median_filter(x, size=size, mode="nearest")


def artifact_features(rgb: np.ndarray) -> dict:
    """Raw glitch measurements of an RGB array (info strip removed). See :func:`artifact_score`."""
    a = rgb.astype(np.float32)
    h, w, _ = a.shape
    if h < 16 or w < 16:
        return {"tear": 0.0, "banding": 0.0, "channel": 0.0, "flat_rows": 0.0, "smear": 0.0}
    y = a @ np.array([0.299, 0.587, 0.114], np.float32)
    d = np.abs(np.diff(y, axis=0)).mean(axis=1)                    # consecutive-row differences (h-1,)

    # 1. tear: rows slipped sideways, in the luminance or in a single colour channel
    tear = max(_tear(y), *(_tear(a[:, :, c]) for c in range(3)))

    # 2. banding: row-mean residuals after a median filter (which keeps real edges like horizons),
    #    measured in four strips across the width: a band spans them all with one sign, while
    #    branches or fences cross only some of them
    segs = np.array_split(np.arange(w), 4)
    strong = np.ones(h, bool)
    sign = None
    for seg in segs:
        m = a[:, seg[0]:seg[-1] + 1].mean(axis=1)                 # (h, 3)
        r = np.stack([m[:, c] - _median_filter_1d(m[:, c], 21) for c in range(3)], axis=1)
        big = np.abs(r).argmax(axis=1)
        rr = r[np.arange(h), big]
        strong &= np.abs(rr) > 6.0
        s_ = np.sign(rr)
        sign = s_ if sign is None else np.where(sign == s_, sign, 0)
    banding = float((strong & (sign != 0)).mean())

    # 3. colour channels displaced sideways, per band of rows: the per-row cross-spectra of the
    #    red/blue against the green edges are computed once and summed per band (cumulative sums)
    channel = 0.0
    band = max(8, h // 8)
    gx = np.diff(a, axis=1)
    gx -= gx.mean(axis=1, keepdims=True)
    max_cs = max(3, w // 4)          # camera channel tears reach a quarter of the frame
    cband = max(6, h // 24)           # thin bands: a torn channel may cover only a few rows
    n = 2 * gx.shape[1]
    spec = np.fft.rfft(gx, n=n, axis=1)                               # (h, n/2+1, 3)
    energy = np.concatenate([np.zeros((1, 3)), np.cumsum((gx * gx).sum(axis=1), axis=0)])
    act = np.concatenate([[0.0], np.cumsum(np.abs(gx[:, :, 1]).mean(axis=1))])
    starts = [y0 for y0 in range(0, h - cband + 1, cband // 2) if (act[y0 + cband] - act[y0]) / cband >= 0.3]
    for ch in (0, 2):
        if not starts:
            break
        cross = np.concatenate([np.zeros((1, spec.shape[1]), complex),
                                np.cumsum(spec[:, :, ch] * np.conj(spec[:, :, 1]), axis=0)])
        sums = np.stack([cross[y0 + cband] - cross[y0] for y0 in starts])
        corr = np.fft.irfft(sums, n=n, axis=1)
        den = np.sqrt(np.array([(energy[y0 + cband, ch] - energy[y0, ch]) * (energy[y0 + cband, 1] - energy[y0, 1])
                                for y0 in starts])) + 1e-6
        corr /= den[:, None]
        best = np.maximum(corr[:, 1:max_cs].max(axis=1), corr[:, -max_cs + 1:].max(axis=1))
        channel = max(channel, float((best - corr[:, 0]).max()))

    # 4. blown or flat rows: full-width rows with (almost) no variation, or exact copies of the
    #    row above, in runs of two or more; black rows are left out (flash nights have black skies)
    row_std = a.std(axis=1).max(axis=1)
    flat = ((row_std < 1.5) | np.concatenate([[False], d < 0.35])) & (y.mean(axis=1) > 16)
    runs = flat & (np.concatenate([[False], flat[:-1]]) | np.concatenate([flat[1:], [False]]))
    flat_rows = float(runs.mean())

    # 5. smeared rows: bands whose horizontal detail collapsed while vertical detail remains,
    #    compared with the rest of the same frame
    gy = np.abs(np.diff(y, axis=0))
    gxx = np.abs(np.diff(y, axis=1))
    ratios = []
    for y0 in range(0, h - band, band // 2):
        vx = gxx[y0:y0 + band].mean()
        vy = gy[y0:y0 + band].mean()
        if vy >= 1.0:
            ratios.append(float(vy / (vx + 0.5)))
    smear = float(max(ratios) / (np.median(ratios) + 1e-6)) if len(ratios) >= 3 else 0.0
    return {"tear": float(tear), "banding": banding, "channel": float(channel), "flat_rows": flat_rows,
            "smear": smear}


def _tear(y: np.ndarray) -> float:
    """At the strongest row jumps of one plane, how well does a sideways shift line the rows back up?"""
    h, w = y.shape
    d = np.abs(np.diff(y, axis=0)).mean(axis=1)
    local = _median_filter_1d(d, 15) + 1.0
    tear = 0.0
    max_shift = max(4, w // 3)
    edge = max(2, h // 50)            # rows next to a removed info strip keep some of its blur
    for i in np.argsort(d / local)[-8:]:
        if i < edge or i > h - edge - 2 or d[i] < 2.0:
            continue
        above, below = y[i - 1:i + 1].mean(axis=0), y[i + 1:i + 3].mean(axis=0)
        c = _xcorr(below[None], above[None], max_shift)
        base, best = c[0], max(c[2:max_shift].max(), c[-max_shift + 1:-1].max())
        # a shift must line the rows up well, not merely beat a poor match: the best of many
        # shifts of unrelated texture also correlates a little
        tear = max(tear, max(0.0, best - max(base, 0.0)) * _ramp(float(best), 0.45, 0.7)
                   * _ramp(float(d[i] / local[i]), 1.5, 4.0))
    return float(tear)


def _xcorr(x: np.ndarray, g: np.ndarray, max_shift: int) -> np.ndarray:
    """Normalised cross-correlation of rows of x against rows of g for every sideways shift.

    Index s holds shift +s, index -s shift -s (summed over rows, computed with one FFT).
    """
    x = x - x.mean(axis=1, keepdims=True)
    g = g - g.mean(axis=1, keepdims=True)
    n = 2 * x.shape[1]
    spec = (np.fft.rfft(x, n=n, axis=1) * np.conj(np.fft.rfft(g, n=n, axis=1))).sum(axis=0)
    c = np.fft.irfft(spec, n=n)
    den = math.sqrt(float((x * x).sum()) * float((g * g).sum())) + 1e-6
    return c / den


# How each measurement maps to 0..1 (lo -> 0, hi -> 1); tuned on benchmarks/bench_artifacts.py.
ARTIFACT_RAMPS = {"tear": (0.06, 0.14), "banding": (0.03, 0.09), "channel": (0.02, 0.1),
                  "flat_rows": (0.006, 0.02), "smear": (1.9, 2.6)}


def artifact_score(rgb: np.ndarray) -> tuple[float, dict]:
    """Glitch score 0..1 (the largest of the five detectors) and the per-detector parts."""
    feats = artifact_features(rgb)
    parts = {k: _ramp(v, *ARTIFACT_RAMPS[k]) for k, v in feats.items()}
    return max(parts.values()), {"raw": feats, "parts": parts}
