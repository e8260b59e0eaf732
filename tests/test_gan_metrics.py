"""KID / FID / PRDC on features, the memorisation check, direction fitting, the evaluation report."""
from __future__ import annotations

import numpy as np
import pytest

from trailcam_core.base.errors import TrailcamError
from trailcam_core.gan.metrics import fid, kid, memorisation, prdc_scores
from trailcam_core.gan.steer import fit_direction, parse_strengths
from trailcam_core.gan.metrics import PyramidFeatures, make_extractor


def _feats(n=200, d=32, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) + shift


def test_kid_of_a_set_against_itself_is_about_zero_and_a_shift_is_clearly_above():
    a, b = _feats(seed=0), _feats(seed=1)
    same, _ = kid(a, b, subset_size=100, subsets=50)
    shifted, std = kid(a, _feats(seed=1, shift=0.5), subset_size=100, subsets=50)
    assert abs(same) < 0.02
    assert shifted > 0.1 and shifted > 10 * abs(same) and shifted > 5 * std


def test_kid_equals_torch_fidelity_on_the_same_features():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("torch_fidelity.metric_kid")
    a, b = _feats(120, 16, seed=2), _feats(150, 16, shift=0.3, seed=3)
    ours = kid(a, b, subset_size=100, subsets=10, seed=7)
    theirs = tf.kid_features_to_metric(torch.from_numpy(a), torch.from_numpy(b), kid_subsets=10,
                                       kid_subset_size=100, rng_seed=7, verbose=False, kid_degree=3, kid_gamma=None,
                                       kid_coef0=1)
    assert ours[0] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert ours[1] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-5)


def test_fid_matches_the_textbook_formula_and_prdc_separates():
    from scipy import linalg

    a, b = _feats(300, 8, seed=4), _feats(300, 8, shift=1.0, seed=5)
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    textbook = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert fid(a, b) == pytest.approx(textbook, rel=1e-6)
    near, far = prdc_scores(a, _feats(300, 8, seed=6)), prdc_scores(a, b)
    assert near["coverage"] > 0.8 and far["coverage"] < near["coverage"] and far["precision"] < near["precision"]


def test_memorisation_flags_copies_beside_their_twin():
    real = _feats(60, 8, seed=7)
    fake = np.concatenate([_feats(20, 8, seed=8), real[[3, 11]] + 1e-4])
    mem = memorisation(real, fake)
    assert sorted(mem.flagged.tolist()) == [20, 21]
    assert mem.nearest[20] == 3 and mem.nearest[21] == 11


def test_a_direction_is_recovered_from_a_tag_that_depends_linearly_on_z():
    rng = np.random.default_rng(9)
    z = rng.normal(size=(2000, 32)).astype(np.float32)
    w = rng.normal(size=32)
    w /= np.linalg.norm(w)
    y = z @ w + 0.1 * rng.normal(size=2000) > 0.3
    d = fit_direction(z, y, test_fraction=0.25, seed=0)
    assert float(np.dot(d["vector"], w)) > 0.95
    assert d["accuracy"] > 0.9 and d["held_out"] == 500 and d["n_pos"] == int(y.sum())


def test_a_direction_needs_both_sides():
    z = np.zeros((50, 4))
    with pytest.raises(TrailcamError, match="3 samples with the tag and 47 without: need 10"):
        fit_direction(z, np.arange(50) < 3)


def test_extractors_are_chosen_and_named():
    from PIL import Image

    ex = make_extractor("auto")
    assert isinstance(ex, PyramidFeatures) and "model-free" in ex.name
    f = ex([Image.new("RGB", (64, 64), (200, 10, 10)), Image.new("RGB", (64, 64), (10, 10, 200))])
    assert f.shape == (2, 1020) and np.abs(f[0] - f[1]).max() > 0.5
    with pytest.raises(TrailcamError, match="inception_weights"):
        make_extractor("inception")
    with pytest.raises(TrailcamError, match="not found"):
        make_extractor("inception", inception_weights="/nonexistent/pt_inception.pth")
    with pytest.raises(TrailcamError, match="real open_clip weights"):
        make_extractor("clip")


def test_strengths_parse():
    assert parse_strengths(["glitch=2", "night-infrared=-1.5"]) == {"glitch": 2.0, "night-infrared": -1.5}
    with pytest.raises(TrailcamError, match="NAME=NUMBER"):
        parse_strengths(["glitch"])
