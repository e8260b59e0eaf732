"""The synthetic sample: deterministic, honest about being synthetic, and shaped like trail-camera data."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trailcam_core.samples import synthetic as sample
from trailcam_core.ingest.dataset import load_dataset


@pytest.fixture(scope="module")
def doc(sample_cct):
    return json.loads(Path(sample_cct).read_text())


def _pixels(sample_cct, rec):
    return np.asarray(Image.open(Path(sample_cct).parent / rec["file_name"]).convert("RGB")).astype(int)


def test_sample_is_labelled_synthetic_and_cct_shaped(sample_cct, doc):
    assert doc["info"]["synthetic"] is True and "SYNTHETIC" in doc["info"]["description"]
    assert 60 <= len(doc["images"]) <= 120
    ids = {c["name"]: c["id"] for c in doc["categories"]}
    assert ids["empty"] == 30 and ids["car"] == 33 and ids["coyote"] == 9   # sparse ids, as in the real file
    im = doc["images"][0]
    for key in ("id", "file_name", "width", "height", "location", "date_captured", "seq_id", "seq_num_frames",
                "frame_num"):
        assert key in im
    assert im["file_name"] == im["id"] + ".jpg" and isinstance(im["location"], str)
    assert len({i["location"] for i in doc["images"]}) >= 3
    assert any("bbox" in a for a in doc["annotations"]) and any("bbox" not in a for a in doc["annotations"])
    assert all((Path(sample_cct).parent / i["file_name"]).is_file() for i in doc["images"])


def test_ground_truth_covers_every_kind_of_frame(doc):
    truth = [i["synthetic"] for i in doc["images"]]
    kinds = {t["time_of_day"] for t in truth}
    assert kinds == {"day", "ir_night", "flash_night"}
    assert {t["info_bar"]["side"] for t in truth} == {"top", "bottom"}
    assert {t["info_bar"]["style"] for t in truth} == {"black", "light"}
    assert any(t["glitch"] for t in truth) and not all(t["glitch"] for t in truth)
    assert {t["glitch_kind"] for t in truth if t["glitch"]} == {"band", "channel_tear"}


def test_infrared_frames_are_exactly_grey_and_flash_frames_are_not(sample_cct, doc):
    for rec in doc["images"]:
        px = _pixels(sample_cct, rec)
        grey = (px[..., 0] == px[..., 1]) & (px[..., 1] == px[..., 2])
        kind = rec["synthetic"]["time_of_day"]
        if kind == "ir_night":
            assert grey.all(), rec["id"]
        elif kind == "flash_night":
            bar = rec["synthetic"]["info_bar"]
            body = grey[bar["top"]:px.shape[0] - bar["bottom"]]
            assert body.mean() < 0.5, rec["id"]


def test_info_bar_is_where_the_ground_truth_says(sample_cct, doc):
    for rec in doc["images"][::7]:
        px = _pixels(sample_cct, rec)
        bar = rec["synthetic"]["info_bar"]
        rows = px[:bar["rows"]] if bar["side"] == "top" else px[-bar["rows"]:]
        other = px[bar["rows"]:-bar["rows"]]
        level = np.median(rows)
        if bar["style"] == "black":
            assert level < 10 and np.median(other) > level + 15
        else:
            assert level > 180
        # text is drawn in the strip: it is not a flat colour
        assert rows.std() > 5


def test_boxes_sit_inside_the_picture(doc):
    images = {i["id"]: i for i in doc["images"]}
    boxed = [a for a in doc["annotations"] if "bbox" in a]
    for a in boxed:
        im = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        bar = im["synthetic"]["info_bar"]
        assert 0 <= x and x + w <= im["width"] + 0.01 and w > 0 and h > 0
        assert bar["top"] <= y and y + h <= im["height"] - bar["bottom"] + 0.01


def test_generation_is_deterministic(tmp_path, sample_cct):
    other = sample.ensure_sample(tmp_path / "again")
    assert other.read_bytes() == Path(sample_cct).read_bytes()
    doc = json.loads(other.read_text())
    for rec in doc["images"][:5]:
        assert (other.parent / rec["file_name"]).read_bytes() == (Path(sample_cct).parent / rec["file_name"]).read_bytes()


def test_ensure_sample_reuses_a_complete_sample_and_repairs_a_broken_one(tmp_path, sample_cct):
    dest = tmp_path / "s"
    shutil.copytree(Path(sample_cct).parent, dest)
    js = sample.ensure_sample(dest)
    stamp = js.stat().st_mtime_ns
    assert sample.ensure_sample(dest) == js and js.stat().st_mtime_ns == stamp
    victim = next(dest.glob("*.jpg"))
    victim.unlink()
    sample.ensure_sample(dest)
    assert victim.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp folders left


def test_default_location_follows_trailcam_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAILCAM_HOME", str(tmp_path / "home"))
    assert sample.default_sample_dir() == tmp_path / "home" / "sample"


def test_full_scale_generator_small(tmp_path):
    path = sample.write_full_scale_json(tmp_path / "full.json", n_images=3000, n_locations=20, seed=1)
    doc = json.loads(path.read_text())
    assert len(doc["images"]) == 3000 and doc["info"]["synthetic"] is True
    assert {i["location"] for i in doc["images"]} <= {str(k) for k in range(20)}
    ds = load_dataset(path, use_cache=False)
    empty_share = (ds.images["label"] == "empty").mean()
    assert 0.6 < empty_share < 0.8
    assert ds.images["datetime"].isna().sum() == 1           # one unparseable date, like the real file
    assert (ds.annotations.groupby("image_id").size() > 1).any()
    again = sample.write_full_scale_json(tmp_path / "again.json", n_images=3000, n_locations=20, seed=1)
    assert again.read_bytes() == path.read_bytes()

