"""Captions: templates, trigger, order, dropout, sidecars, metadata.jsonl and tag frequency."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from trailcam_core.tags.captions import (CaptionEntry, CaptionOptions, check_template, render_caption, tag_frequency,
                                    write_captions)
from trailcam_core.base.errors import TrailcamError
from trailcam_core.tags.model import Tag

TAGS = {"species": Tag("mountain_lion", "label"), "time_of_day": Tag("night-infrared", "pixels", 0.9),
        "artifact": Tag("clean", "pixels", 0.1), "location": Tag("38", "label"), "info_bar": Tag("top", "pixels")}


def test_default_template_with_trigger():
    text = render_caption(TAGS, CaptionOptions(trigger="trlcm"))
    assert text == "trlcm, trailcam photo, mountain lion, infrared night"     # clean artifact leaves no comma
    glitch = dict(TAGS, artifact=Tag("glitch", "pixels", 0.9))
    assert render_caption(glitch, CaptionOptions()) == "trailcam photo, mountain lion, infrared night, camera glitch"


def test_trigger_goes_first_even_when_the_template_lacks_it():
    text = render_caption(TAGS, CaptionOptions(template="{species}, {location}, {info_bar}", trigger="trlcm"))
    assert text == "trlcm, mountain lion, location 38, info bar"


def test_unknown_field_is_an_error_naming_it():
    with pytest.raises(TrailcamError, match=r"\{weather\}"):
        render_caption(TAGS, CaptionOptions(template="{species}, {weather}"))
    with pytest.raises(TrailcamError, match="malformed"):
        check_template("{species")
    with pytest.raises(TrailcamError, match="format specs"):
        check_template("{species:>10}")
    # a tag key a person added by hand is a valid field
    assert render_caption(dict(TAGS, mood=Tag("eerie", "hand")), CaptionOptions(template="{species}, {mood}")) \
        == "mountain lion, eerie"


def test_removed_tags_and_the_tags_field():
    tags = dict(TAGS, species=Tag(None, "hand"))
    assert render_caption(tags, CaptionOptions(template="{tags}")) == "infrared night, location 38, info bar"


def test_order_and_dropout_are_seeded_and_keep_the_head():
    opts = CaptionOptions(template="a, b, c, d, e, f, g", trigger="trg", tag_order="shuffle", keep_tokens=1, seed=3)
    one = render_caption({}, opts, "img1")
    assert one == render_caption({}, opts, "img1")                      # deterministic per image + seed
    parts = one.split(", ")
    assert parts[:2] == ["trg", "a"] and sorted(parts[2:]) == ["b", "c", "d", "e", "f", "g"]
    shuffles = {render_caption({}, opts, f"img{i}") for i in range(10)}
    assert len(shuffles) > 1
    assert render_caption({}, CaptionOptions(template="d, c, b, a", tag_order="alphabetical", keep_tokens=0)) \
        == "a, b, c, d"
    drop_all = CaptionOptions(template="a, b, c, d", trigger="trg", dropout=1.0, keep_tokens=1)
    assert render_caption({}, drop_all, "x") == "trg, a"
    half = [render_caption({}, CaptionOptions(template=", ".join("t%d" % i for i in range(40)), dropout=0.5,
                                              keep_tokens=0), "x").count(",") + 1]
    assert 8 < half[0] < 32


def test_tag_frequency_has_kohya_shape():
    freq = tag_frequency([("2_trailcam", "trlcm, coyote, day"), ("2_trailcam", "trlcm, deer, day"),
                          ("1_other", "x")])
    assert freq == {"2_trailcam": {"day": 2, "trlcm": 2, "coyote": 1, "deer": 1}, "1_other": {"x": 1}}


def test_write_captions_sidecars_metadata_and_rerun(tmp_path):
    root = tmp_path / "coll"
    (root / "sub").mkdir(parents=True)
    for name in ("a.jpg", "sub/b.jpg"):
        Image.new("RGB", (32, 24)).save(root / name)
    outside = tmp_path / "elsewhere.jpg"
    Image.new("RGB", (8, 8)).save(outside)
    entries = [CaptionEntry("a", root / "a.jpg", TAGS),
               CaptionEntry("b", root / "sub/b.jpg", dict(TAGS, species=Tag("coyote", "hand"))),
               CaptionEntry("bad", root / "bad.jpg", {"unreadable": Tag("cannot decode image", "pixels")}),
               CaptionEntry("out", outside, TAGS)]
    seen = []
    report = write_captions(entries, root, CaptionOptions(trigger="trlcm"),
                            progress=lambda d, t, m="", p=None: seen.append(d))
    assert report.processed == 2 and len(report.skipped) == 2 and seen[-1] == 4
    assert (root / "a.txt").read_text() == "trlcm, trailcam photo, mountain lion, infrared night\n"
    assert (root / "sub/b.txt").read_text().startswith("trlcm, trailcam photo, coyote")
    lines = [json.loads(x) for x in (root / "metadata.jsonl").read_text().splitlines()]
    assert [x["file_name"] for x in lines] == ["a.jpg", "sub/b.jpg"]
    assert all((root / x["file_name"]).is_file() for x in lines)       # HF imagefolder: relative to the file
    assert lines[1]["tags"]["species"] == {"value": "coyote", "source": "hand"}
    freq = json.loads((root / "tag_frequency.json").read_text())
    assert freq == {"coll": {"infrared night": 1, "mountain lion": 1, "trailcam photo": 1, "trlcm": 1},
                    "sub": {"coyote": 1, "infrared night": 1, "trailcam photo": 1, "trlcm": 1}}
    again = write_captions(entries, root, CaptionOptions(trigger="trlcm"))
    assert again.processed == 0 and again.up_to_date == 2
    with pytest.raises(TrailcamError, match=r"\{nope\}"):
        write_captions(entries, root, CaptionOptions(template="{nope}"))
    assert (root / "a.txt").read_text().startswith("trlcm")          # nothing written by the failed run
