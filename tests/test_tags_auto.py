"""Auto tags: time of day on real photos, glitch score, info bar, labels, bad files, collections."""
from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trailcam_core.tags.curation import Project
from trailcam_core.base.errors import TrailcamError
from trailcam_core.base.records import ImageRecord
from trailcam_core.tags.model import Tag, tag_text
from trailcam_core.tags.auto import TagOptions, auto_tags, folder_records, label_tags, pixel_tags, sun_phase, tag_collection, tag_records, time_of_day
from trailcam_core.tags.artifacts import artifact_score

REPO = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_artifacts", REPO / "benchmarks" / "bench_artifacts.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _gray_fraction(sample: Path) -> dict[str, float]:
    with open(sample / "labels.csv", newline="") as fh:
        return {r["file_name"]: float(r["gray_fraction"]) for r in csv.DictReader(fh)}


# ------------------------------------------------------------------------------ real photos

def test_time_of_day_on_real_photos(cct_sample_dir):
    gray = _gray_fraction(cct_sample_dir)
    infrared = sorted(f for f, g in gray.items() if g >= 0.99)[:6]
    day = sorted(f for f, g in gray.items() if f.startswith("empty") and g < 0.5)[:5]
    flash = ["coyote__59673655-23d2-11e8-a6a3-ec086b02610b.jpg", "skunk__5973880a-23d2-11e8-a6a3-ec086b02610b.jpg"]
    for f in infrared:
        assert pixel_tags(cct_sample_dir / f)["time_of_day"].value == "night-infrared", f
    for f in day:
        assert pixel_tags(cct_sample_dir / f)["time_of_day"].value == "day", f
    for f in flash:       # colour-flash nights are not grey: a grayscale test alone misses them
        tags = pixel_tags(cct_sample_dir / f)
        assert tags["time_of_day"].value == "night-flash", f
        assert tags["time_of_day"].source == "pixels"


def test_capture_hour_turns_a_lit_colour_frame_into_night_flash(cct_sample_dir):
    # a truck lit by the flash at 6:04 PM in December: the pixels alone look like day
    f = cct_sample_dir / "car__598dea48-23d2-11e8-a6a3-ec086b02610b.jpg"
    assert pixel_tags(f)["time_of_day"].value == "day"
    assert pixel_tags(f, datetime(2011, 12, 14, 18, 4))["time_of_day"].value == "night-flash"
    assert pixel_tags(f, datetime(2011, 12, 14, 11, 0))["time_of_day"].value == "day"


def test_info_bar_side_on_real_photos(cct_sample_dir):
    assert pixel_tags(cct_sample_dir / "bird__59a49a6d-23d2-11e8-a6a3-ec086b02610b.jpg")["info_bar"].value == "top"
    assert pixel_tags(cct_sample_dir / "skunk__5973880a-23d2-11e8-a6a3-ec086b02610b.jpg")["info_bar"].value == "bottom"


def test_no_info_bar_on_a_plain_image(tmp_path):
    rng = np.random.default_rng(1)
    arr = (rng.random((240, 320, 3)) * 80 + 90).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "plain.png")
    tags = pixel_tags(tmp_path / "plain.png")
    assert tags["info_bar"].value == "none"
    assert tag_text("info_bar", tags["info_bar"]) == ""


def _glitch(arr: np.ndarray, kind: str) -> np.ndarray:
    """One clear camera glitch of each kind (the benchmark draws random ones)."""
    a = arr.astype(np.int16).copy()
    h, w, _ = a.shape
    if kind == "tear":
        a[h // 2:] = np.roll(a[h // 2:], w // 5, axis=1)
    elif kind == "banding":
        for y in range(h // 4, 3 * h // 4, 16):
            a[y:y + 5] += np.array([40, -20, 30], np.int16)
    elif kind == "channel":
        a[..., 0] = np.roll(a[..., 0], 8, axis=1)
    elif kind == "blown":
        a[h // 3:h // 3 + 10] = 255
    elif kind == "smear":
        a[2 * h // 3:] = a[2 * h // 3]
    return np.clip(a, 0, 255).astype(np.uint8)


def test_artifact_score_separates_clean_from_glitched_real_photos(cct_sample_dir):
    gray = _gray_fraction(cct_sample_dir)
    files = [sorted(f for f, g in gray.items() if f.startswith("empty") and g < 0.5)[0],
             sorted(f for f, g in gray.items() if g >= 0.99)[0]]           # one colour day, one infrared night
    for name in files:
        with Image.open(cct_sample_dir / name) as im:
            im.draft("RGB", (512, 512))
            img = im.convert("RGB")
        img = img.resize((512, round(img.height * 512 / img.width)))         # the analysis scale
        body = np.asarray(img)[30:-30]                                         # info strip left out
        clean, _ = artifact_score(body)
        assert clean < 0.5, name
        for kind in ("tear", "banding", "channel", "blown", "smear"):
            if kind == "channel" and gray[name] >= 0.99:
                continue
            score, info = artifact_score(_glitch(body, kind))
            assert score >= 0.5, (name, kind, info["raw"])
            assert set(info["parts"]) == {"tear", "banding", "channel", "flat_rows", "smear"}


def test_benchmark_glitch_generator_makes_every_kind(cct_sample_dir):
    bench = _bench()
    img = Image.new("RGB", (200, 150), (90, 110, 70))
    rng = np.random.default_rng(0)
    for kind in bench.GLITCH_KINDS:
        assert bench.make_glitch(img, kind, rng).size == img.size
    with pytest.raises(ValueError):
        bench.make_glitch(img, "nope", rng)


def test_artifact_threshold_decides_the_tag(tmp_path):
    rng = np.random.default_rng(3)
    base = np.clip(rng.normal(120, 30, (200, 300, 3)), 0, 255).astype(np.uint8)
    base = np.asarray(Image.fromarray(base).resize((300, 200)).resize((600, 400), Image.BILINEAR))
    img = np.array(base)
    img[150:400] = np.roll(img[150:400], 90, axis=1)       # a torn frame
    Image.fromarray(img).save(tmp_path / "torn.png")
    tags = pixel_tags(tmp_path / "torn.png")
    assert tags["artifact"].value == "glitch" and tags["artifact"].score >= 0.5
    strict = pixel_tags(tmp_path / "torn.png", options=TagOptions(artifact_threshold=1.0))
    assert strict["artifact"].score == tags["artifact"].score
    assert strict["artifact"].value == ("glitch" if tags["artifact"].score >= 1.0 else "clean")


# ------------------------------------------------------------------------------ rules

def test_sun_phase_from_the_capture_time():
    assert sun_phase(datetime(2012, 6, 21, 3, 0)) == "night"
    assert sun_phase(datetime(2012, 6, 21, 12, 0)) == "day"
    assert sun_phase(datetime(2012, 1, 4, 17, 0)) == "twilight"       # winter sunset near 5 PM at 34 N
    assert sun_phase(datetime(2012, 6, 21, 17, 0)) == "day"           # still day in June
    assert sun_phase(None) is None


def test_time_of_day_rules():
    grey = {"gray_fraction": 1.0, "colourfulness": 0.0, "brightness": 40, "centre_brightness": 50,
            "dark_fraction": 0.5, "p10": 10, "p90": 60}
    assert time_of_day(grey)[0] == "night-infrared"
    assert time_of_day(grey, datetime(2012, 6, 1, 12))[0] == "night-infrared"   # IR wins over a wrong clock
    colour_day = {"gray_fraction": 0.0, "colourfulness": 35, "brightness": 110, "centre_brightness": 110,
                  "dark_fraction": 0.02, "p10": 50, "p90": 180}
    assert time_of_day(colour_day)[0] == "day"
    assert time_of_day(colour_day, datetime(2012, 6, 1, 2))[0] == "night-flash"
    dusk = dict(colour_day, brightness=50, colourfulness=15)
    assert time_of_day(dusk, datetime(2012, 1, 4, 17, 0))[0] == "twilight"


def test_label_tags_sources():
    rec = ImageRecord("a", Path("a.jpg"), labels=["coyote"], location="38")
    tags = label_tags(rec)
    assert tags["species"] == Tag("coyote", "label") and tags["location"] == Tag("38", "label")
    scored = label_tags(ImageRecord("b", Path("b.jpg"), labels=["deer", "bobcat"]), 0.2, {"bobcat": 0.7, "deer": 0.25})
    assert scored["species"].value == "bobcat" and scored["species"].source == "model"   # the best guess only
    assert scored["species"].score == pytest.approx(0.7)
    mixed = label_tags(ImageRecord("m", Path("m.jpg"), labels=["fox", "deer"]), 0.2, {"deer": 0.9})
    assert mixed["species"] == Tag("fox", "label")                                      # a person's label wins
    assert "species" not in label_tags(ImageRecord("c", Path("c.jpg"), labels=["deer"]), 0.2, {"deer": 0.05})
    assert label_tags(ImageRecord("d", Path("d.jpg"), labels=["empty", "rabbit"]))["species"].value == "rabbit"
    with pytest.raises(TrailcamError, match="source"):
        Tag("x", "guess")


# ------------------------------------------------------------------------------ bad input, batches

def test_undecodable_images_are_tagged_not_fatal(tmp_path, cct_sample_dir):
    (tmp_path / "text.jpg").write_text("not an image")
    data = (cct_sample_dir / "bird__59a49a6d-23d2-11e8-a6a3-ec086b02610b.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 3])
    Image.new("RGB", (64, 48), (90, 120, 60)).save(tmp_path / "ok.png")
    records = folder_records(tmp_path)
    tags = tag_records(records + [ImageRecord("missing", tmp_path / "missing.jpg")], TagOptions(workers=1))
    assert set(tags["text.jpg"]) == {"unreadable"} and "cannot decode" in tags["text.jpg"]["unreadable"].value
    assert set(tags["truncated.jpg"]) == {"unreadable"}
    assert "not found" in tags["missing"]["unreadable"].value
    assert tags["ok.png"]["time_of_day"].value == "day"


def test_process_pool_gives_the_same_tags_and_reports_progress(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(18):
        arr = np.clip(rng.normal(100 + 4 * i, 25, (60, 80, 3)), 0, 255).astype(np.uint8)
        if i % 3 == 0:
            arr[:] = arr.mean(axis=2, keepdims=True).astype(np.uint8)      # grey like infrared
        Image.fromarray(arr).resize((160, 120)).save(tmp_path / f"{i:02d}.png")
    records = folder_records(tmp_path)
    seen = []
    pooled = tag_records(records, TagOptions(workers=2), progress=lambda d, t, m="", p=None: seen.append((d, t)))
    serial = tag_records(records, TagOptions(workers=1))
    assert {k: {n: t.to_dict() for n, t in v.items()} for k, v in pooled.items()} == \
           {k: {n: t.to_dict() for n, t in v.items()} for k, v in serial.items()}
    assert seen[-1] == (18, 18) and seen[0] == (0, 18)
    assert pooled["00.png"]["time_of_day"].value == "night-infrared"


# ------------------------------------------------------------------------------ collections

@pytest.fixture
def sample_copy(sample_cct, tmp_path):
    dest = tmp_path / "sample"
    shutil.copytree(sample_cct.parent, dest)
    return dest / sample_cct.name


def test_tag_collection_matches_the_synthetic_ground_truth(sample_copy):
    report = tag_collection(sample_copy, options=TagOptions(workers=1))
    doc = json.loads(sample_copy.read_text())
    project = Project.open(sample_copy.parent, create=False)
    names = {"day": "day", "ir_night": "night-infrared", "flash_night": "night-flash"}
    n = len(doc["images"])
    assert report.processed == n and not report.skipped
    tod = sum(project.tags(im["id"])["time_of_day"].value == names[im["synthetic"]["time_of_day"]]
              for im in doc["images"])
    bars = sum(project.tags(im["id"])["info_bar"].value in (im["synthetic"]["info_bar"]["side"], "both")
               for im in doc["images"])
    assert tod / n >= 0.9 and bars / n >= 0.9
    some = doc["images"][0]
    assert project.tags(some["id"])["location"].value == str(some["location"])
    # a rerun is up to date (nothing analysed again)
    again = tag_collection(sample_copy)
    assert again.processed == 0 and again.up_to_date == n


def test_folder_of_crops_borrows_labels_from_metadata(sample_copy, tmp_path):
    doc = json.loads(sample_copy.read_text())
    crops = tmp_path / "crops"
    crops.mkdir()
    picked = doc["images"][:4]
    for im in picked:
        shutil.copy(sample_copy.parent / im["file_name"], crops / f"{im['id']}.jpg")
    report = tag_collection(crops, metadata=sample_copy, options=TagOptions(workers=1))
    assert report.processed == 4
    project = Project.open(crops)
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    for im in picked:
        want = [cats[a["category_id"]] for a in doc["annotations"] if a["image_id"] == im["id"]]
        tags = project.tags(f"{im['id']}.jpg")
        assert tags["species"].source == "label"
        assert tags["species"].value in want or set(tags["species"].value) <= set(want)
        assert tags["location"].value == str(im["location"])
    # a hand edit survives a forced re-tag, unless asked
    first = f"{picked[0]['id']}.jpg"
    project.set_tag(first, "time_of_day", "twilight")
    project.save()
    tag_collection(crops, metadata=sample_copy, force=True, options=TagOptions(workers=1))
    assert Project.open(crops).tags(first)["time_of_day"] == Tag("twilight", "hand")
    tag_collection(crops, metadata=sample_copy, force=True, options=TagOptions(workers=1, overwrite_hand=True))
    assert Project.open(crops).tags(first)["time_of_day"].source == "pixels"
    with pytest.raises(TrailcamError, match="no such"):
        tag_collection(tmp_path / "nope")


def test_auto_tags_of_one_record(cct_sample_dir):
    f = cct_sample_dir / "opossum__59c8e1f2-23d2-11e8-a6a3-ec086b02610b.jpg"
    if not f.exists():
        f = sorted(cct_sample_dir.glob("opossum__*.jpg"))[0]
    tags = auto_tags(ImageRecord("x", f, labels=["opossum"], location="70"))
    assert tags["species"].value == "opossum" and tags["time_of_day"].value == "night-infrared"
    assert {t.source for t in tags.values()} == {"label", "pixels"}
