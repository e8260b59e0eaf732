"""Reading detector results: formats 1.0-1.6, AddaxAI's remapped files and COCO export, SpeciesNet,
the label rule, and every kind of bad record (skipped, counted, named)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from trailcam_core.detections import megadetector
from trailcam_core.detections.model import DetectionOptions, Detections, coarse_class, normalise_name
from trailcam_core.detections.read import read_detections
from trailcam_core.samples.detections import addaxai_categories, caltech_like_files, make_megadetector
from trailcam_core.base.errors import DataError
from trailcam_core.base.options import describe


def write(tmp_path: Path, doc, name: str = "results.json", indent=1) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=indent))
    return path


def md(images, version="1.4", dcats=None, ccats=None, **extra) -> dict:
    doc = {"info": {"format_version": version, "detector": "md_v5a.0.0.pt",
                    "detector_metadata": {"typical_detection_threshold": 0.2,
                                          "conservative_detection_threshold": 0.05}},
           "detection_categories": dcats or {"1": "animal", "2": "person", "3": "vehicle"}, "images": images}
    if ccats is not None:
        doc["classification_categories"] = ccats
    doc.update(extra)
    return doc


def det(cat="1", conf=0.9, bbox=(0.1, 0.2, 0.3, 0.4), **kw) -> dict:
    return {"category": cat, "conf": conf, "bbox": list(bbox), **kw}


def reasons(d: Detections) -> str:
    return "\n".join(r for _, r in d.skipped)


# ------------------------------------------------------------------------------- versions
@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", 1.0, 1.4])
def test_every_known_format_version_reads(tmp_path, version):
    images = [{"file": "a/1.jpg", "detections": [det(conf=0.8)], "max_detection_conf": 0.8},
              {"file": "a/2.jpg", "detections": []}]
    d = read_detections(write(tmp_path, md(images, version=version)))
    assert d.format_version == f"{float(version):.1f}"
    assert list(d.labels()["label"]) == ["animal", "empty"]


@pytest.mark.parametrize("version", ["2.0", "0.9", "abc", None])
def test_unknown_or_missing_version_is_rejected_naming_the_field(tmp_path, version):
    doc = md([{"file": "a.jpg", "detections": []}], version=version)
    if version is None:
        del doc["info"]["format_version"]
    path = write(tmp_path, doc)
    with pytest.raises(DataError, match=r"info\.format_version") as exc:
        read_detections(path)
    assert str(path) in str(exc.value)


def test_files_that_are_not_results_are_rejected(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"info": {"format_version": "1.4"}, "images": [')
    with pytest.raises(DataError, match="not valid JSON"):
        read_detections(broken)
    with pytest.raises(DataError, match="JSON object"):
        read_detections(write(tmp_path, [1, 2], "list.json"))
    with pytest.raises(DataError, match="not a detector results file"):
        read_detections(write(tmp_path, {"foo": 1}, "other.json"))
    with pytest.raises(DataError, match="does not exist"):
        read_detections(tmp_path / "missing.json")
    with pytest.raises(DataError, match="'images' is not a list"):
        read_detections(write(tmp_path, md("nope"), "bad_images.json"))


# --------------------------------------------------------------------------- label rule
def test_label_rule_most_confident_detection_above_threshold(tmp_path):
    dcats, ccats = {"1": "animal", "2": "person", "3": "vehicle "}, {"0": "coyote", "1": "Mountain  Lion"}
    images = [
        {"file": "noise.jpg", "detections": [det("2", 0.12), det("1", 0.05)]},
        {"file": "none.jpg", "detections": []},
        {"file": "classified.jpg", "detections": [
            det("1", 0.95, classifications=[["1", 0.8], ["0", 0.15]]), det("2", 0.5)]},
        {"file": "tie.jpg", "detections": [det("3", 0.7), det("2", 0.7)]},
        {"file": "vehicle.jpg", "detections": [det("2", 0.19), det("3", 0.3)]},
        {"file": "weakclass.jpg", "detections": [det("1", 0.9, classifications=[["0", 0.3]])]},
    ]
    d = read_detections(write(tmp_path, md(images, dcats=dcats, ccats=ccats)))
    t = d.labels(0.2).set_index("file")
    assert t.loc["noise.jpg", "label"] == "empty" and math.isnan(t.loc["noise.jpg", "score"])
    assert t.loc["noise.jpg", "max_conf"] == pytest.approx(0.12)
    assert t.loc["none.jpg", "label"] == "empty"
    assert t.loc["classified.jpg", "label"] == "mountain lion"          # classifier class, normalised
    assert t.loc["classified.jpg", "detector_label"] == "animal"
    assert t.loc["classified.jpg", "score"] == pytest.approx(0.95)
    assert t.loc["classified.jpg", "n_above"] == 2
    assert t.loc["tie.jpg", "label"] == "vehicle"                       # tie: first listed; "vehicle " trimmed
    assert t.loc["vehicle.jpg", "label"] == "vehicle"
    assert t.loc["weakclass.jpg", "label"] == "animal"                  # 0.3 < AddaxAI's 0.5: detector class
    assert d.labels(0.2, classification_threshold=0.0).set_index("file").loc["weakclass.jpg", "label"] == "coyote"
    # threshold configurable: at 0.1 the person noise counts, at 0.96 nothing does
    assert d.labels(0.1).set_index("file").loc["noise.jpg", "label"] == "person"
    assert set(d.labels(0.96)["label"]) == {"empty"}
    # a classification below classification_threshold leaves the detector class
    assert d.labels(0.2, classification_threshold=0.5).set_index("file").loc["weakclass.jpg", "label"] == "animal"
    assert d.typical_threshold == 0.2


def test_addaxai_file_remapped_categories_whitespace_and_prev_category(tmp_path):
    files = caltech_like_files(300, seed=5)
    truth = {f: ("empty" if i % 3 == 0 else "coyote" if i % 3 == 1 else "vehicle") for i, f in enumerate(files)}
    doc = make_megadetector(files, seed=9, labels=truth, failure_fraction=0)
    dcats, ccats = addaxai_categories()
    assert "vehicle " in dcats.values() and "vehicle" in dcats.values()
    d = read_detections(write(tmp_path, doc))
    assert d.skipped == []
    assert set(d.detections["category"].cat.categories) >= {"vehicle", "coyote", "unidentified animal"}
    assert "vehicle " not in set(d.detections["category"].cat.categories)
    labels = d.labels().set_index("file")["label"]
    assert labels.to_dict() == truth
    animals = d.detections[d.detections["classification"].notna()]
    assert len(animals) and set(animals["prev_category"]) == {"animal"}
    assert np.all(animals["prev_conf"].to_numpy() == animals["conf"].to_numpy())
    assert d.info["addaxai_metadata"]["version"] == "5.0"
    assert d.classification_categories["2"] == "coyote"


def test_names_are_normalised():
    assert normalise_name("  Vehicle \t") == "vehicle"
    assert normalise_name("Mountain   Lion") == "mountain lion"
    assert coarse_class("car") == "vehicle" and coarse_class("Human") == "person"
    assert coarse_class("mountain_lion") == "animal" and coarse_class("blank") == "empty"
    assert [o.name for o in describe(DetectionOptions)] == ["threshold", "classification_threshold", "strip_prefix"]


# ------------------------------------------------------------------------------- bad input
def test_bad_records_are_skipped_counted_and_named(tmp_path):
    ccats = {"0": "coyote"}
    images = [
        {"file": "good.jpg", "detections": [det(conf=0.9)]},
        {"file": "badcat.jpg", "detections": [det("7", 0.9), det("1", 0.4)]},
        {"file": "outside.jpg", "detections": [det(bbox=(0.8, 0.1, 0.5, 0.2))]},
        {"file": "negative.jpg", "detections": [det(bbox=(0.1, 0.1, -0.2, 0.2))]},
        {"file": "conf.jpg", "detections": [det(conf=1.7), det(conf=-0.1), det(conf="0.5"), det(conf=None)]},
        {"file": "shape.jpg", "detections": [det(bbox=(0.1, 0.2, 0.3)), "junk", {"conf": 0.5}]},
        {"file": "good.jpg", "detections": []},
        {"file": "failed.jpg", "failure": "Failure image access", "detections": None},
        {"file": "/data/cams/abs.jpg", "detections": []},
        {"file": "C:\\cams\\drive.jpg", "detections": []},
        {"file": "../escape.jpg", "detections": []},
        {"file": "nodets.jpg"},
        {"file": "strdets.jpg", "detections": "none"},
        "not an image",
        {"detections": []},
        {"file": "badcls.jpg", "detections": [det(classifications=[["9", 0.9]]),
                                               det(classifications=[["0", 1.5]])]},
        {"file": "rounding.jpg", "detections": [det(bbox=(0.5, 0.5, 0.5004, 0.5))]},
    ]
    d = read_detections(write(tmp_path, md(images, ccats=ccats)))
    text = reasons(d)
    for fragment in ["'badcat.jpg': detections[0].category '7' is not a key of detection_categories",
                     "'outside.jpg': detections[0].bbox [0.8, 0.1, 0.5, 0.2] lies outside the image",
                     "'negative.jpg': detections[0].bbox [0.1, 0.1, -0.2, 0.2] has a negative",
                     "'conf.jpg': detections[0].conf 1.7 is not a number in 0..1",
                     "'conf.jpg': detections[1].conf -0.1", "'conf.jpg': detections[2].conf '0.5'",
                     "'conf.jpg': detections[3].conf None",
                     "'shape.jpg': detections[0].bbox [0.1, 0.2, 0.3] is not four numbers",
                     "'shape.jpg': detections[1] is not an object",
                     "'shape.jpg': detections[2].bbox None",
                     "'good.jpg': duplicate 'file'",
                     "'failed.jpg': field 'failure' says the detector could not process it: Failure image access",
                     "'/data/cams/abs.jpg': field 'file' is an absolute path",
                     "'C:\\\\cams\\\\drive.jpg': field 'file' is an absolute path",
                     "contains '..'",
                     "'nodets.jpg': field 'detections' is missing",
                     "'strdets.jpg': field 'detections' is a str",
                     "images[13] is not an object",
                     "images[14]: field 'file' is missing",
                     "'badcls.jpg': detections[0].classifications class '9' is not a key of classification_categories",
                     "'badcls.jpg': detections[1].classifications"]:
        assert fragment in text, fragment
    kept = set(d.images["file"])
    assert kept == {"good.jpg", "badcat.jpg", "outside.jpg", "negative.jpg", "conf.jpg", "shape.jpg", "badcls.jpg",
                    "rounding.jpg"}
    assert list(d.failures["file"]) == ["failed.jpg"]
    # the valid detection of badcat.jpg survives; badcls keeps its detections with the detector class
    t = d.labels().set_index("file")
    assert t.loc["badcat.jpg", "label"] == "animal" and t.loc["badcat.jpg", "score"] == pytest.approx(0.4)
    assert t.loc["badcls.jpg", "label"] == "animal"
    assert t.loc["outside.jpg", "label"] == "empty"
    # rounding overshoot within tolerance is clipped into the image, not rejected
    r = d.detections[d.detections["image"] == list(d.images["file"]).index("rounding.jpg")].iloc[0]
    assert r["x"] + r["w"] <= 1.0
    assert len(d.skipped) == 21


def test_absolute_paths_become_relative_with_strip_prefix(tmp_path):
    images = [{"file": "/mnt/cams/site1/a.jpg", "detections": [det()]},
              {"file": "/mnt/cams/site2/b.jpg", "detections": []}]
    path = write(tmp_path, md(images))
    assert len(read_detections(path).images) == 0
    for prefix in ("/mnt/cams", "/mnt/cams/", "auto"):
        d = read_detections(path, strip_prefix=prefix)
        assert list(d.images["file"]) == ["site1/a.jpg", "site2/b.jpg"], prefix
        assert list(d.images["stored_as"]) == ["/mnt/cams/site1/a.jpg", "/mnt/cams/site2/b.jpg"]


def test_empty_paths_are_skipped(tmp_path):
    for files in (["a.jpg", ""], ["", "a.jpg"], [""]):
        d = read_detections(write(tmp_path, md([{"file": f, "detections": []} for f in files])))
        assert list(d.images["file"]) == [f for f in files if f]
        assert "field 'file' is missing or empty" in reasons(d)


def test_windows_separators_are_accepted(tmp_path):
    images = [{"file": "cam1\\IMG_0001.JPG", "detections": [det()]}, {"file": "cam1/IMG_0002.JPG", "detections": []}]
    d = read_detections(write(tmp_path, md(images)))
    assert list(d.images["file"]) == ["cam1/IMG_0001.JPG", "cam1/IMG_0002.JPG"]
    assert list(d.labels()["location"]) == ["cam1", "cam1"]


def test_chunked_reading_gives_the_same_result(tmp_path, monkeypatch):
    files = caltech_like_files(120, seed=2)
    doc = make_megadetector(files, seed=4)
    doc["images"][5]["detections"].append("junk")          # forces the loose decoder for that chunk
    doc["images"][77]["file"] = doc["images"][3]["file"]    # duplicate across chunks
    doc["images"][90]["detections"][0:0] = [det("99", 0.9)]
    path = write(tmp_path, doc)
    whole = read_detections(path)
    monkeypatch.setattr(megadetector, "CHUNK", 7)
    chunked = read_detections(path)
    assert list(chunked.images["file"]) == list(whole.images["file"])
    assert chunked.labels().equals(whole.labels())
    assert chunked.detections.equals(whole.detections)
    assert sorted(chunked.skipped) == sorted(whole.skipped)
    assert any("repeats images[3]" in r for _, r in whole.skipped)


# ------------------------------------------------------------------------------- AddaxAI COCO
def addaxai_coco() -> dict:
    return {
        "images": [
            {"id": 1, "width": 2048, "height": 1536, "file_name": "coyote\\conf_0.9-1.0\\5968c0f9-23d2.jpg",
             "license": 1, "date_captured": "NA"},
            {"id": 2, "width": 2048, "height": 1494, "file_name": "vehicle\\conf_0.8-0.9\\site 3\\car.jpg",
             "license": 1, "date_captured": "2012-03-17 03:48:44"},
            {"id": 3, "width": 800, "height": 584, "file_name": "empty\\blank.jpg", "license": 1,
             "date_captured": "NA"},
            {"id": 4, "width": 800, "height": 584, "file_name": "animal_person\\conf_0.5-0.6\\both.jpg",
             "license": 1, "date_captured": "NA"},
            {"id": 5, "width": 0, "height": 584, "file_name": "coyote\\nosize.jpg", "date_captured": "NA"},
            {"id": 6, "width": 800, "height": 584, "file_name": "..\\evil.jpg", "date_captured": "NA"},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1024, 768, 512, 384], "area": 196608.0, "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 100, 800, 300], "area": 240000.0, "iscrowd": 0},
            {"id": 3, "image_id": 4, "category_id": 3, "bbox": [10, 10, 100, 100], "area": 1e4, "iscrowd": 0},
            {"id": 4, "image_id": 4, "category_id": 4, "bbox": [300, 10, 100, 200], "area": 2e4, "iscrowd": 0},
            {"id": 5, "image_id": 1, "category_id": 9, "bbox": [1, 1, 1, 1]},
            {"id": 6, "image_id": 1, "category_id": 1, "bbox": [2000, 1500, 500, 500]},
            {"id": 7, "image_id": 5, "category_id": 1, "bbox": [1, 1, 10, 10]},
        ],
        "categories": [{"id": 1, "name": "coyote"}, {"id": 2, "name": "vehicle "}, {"id": 3, "name": "animal"},
                       {"id": 4, "name": "person"}],
        "licenses": [{"id": 1, "name": "Unknown", "url": "NA"}],
        "info": {"description": "Object detection results exported from AddaxAI (v5.0).",
                 "url": "https://addaxdatascience.com/addaxai/", "date_created": "2024-03-02 10:11:12"},
    }


def test_addaxai_coco_export(tmp_path):
    d = read_detections(write(tmp_path, addaxai_coco(), "results_coco.json"))
    assert d.format == "addaxai-coco"
    by_file = d.images.set_index("file")
    assert list(d.images["file"]) == ["5968c0f9-23d2.jpg", "site 3/car.jpg", "blank.jpg", "both.jpg", "nosize.jpg"]
    assert by_file.loc["5968c0f9-23d2.jpg", "stored_as"] == "coyote/conf_0.9-1.0/5968c0f9-23d2.jpg"
    assert by_file.loc["5968c0f9-23d2.jpg", "conf_bin"] == "conf_0.9-1.0"
    assert by_file.loc["5968c0f9-23d2.jpg", "width"] == 2048
    assert str(by_file.loc["site 3/car.jpg", "datetime"]) == "2012-03-17 03:48:44"
    assert by_file["datetime"].isna().sum() == 4                  # "NA" -> NaT
    box = d.detections.iloc[0]
    assert (box["x"], box["y"], box["w"], box["h"]) == (0.5, 0.5, 0.25, 0.25)
    labels = d.labels().set_index("file")["label"]
    assert labels["5968c0f9-23d2.jpg"] == "coyote" and labels["site 3/car.jpg"] == "vehicle"
    assert labels["blank.jpg"] == "empty" and labels["both.jpg"] == "animal"
    text = reasons(d)
    assert "annotations[4].category_id 9 is not in 'categories'" in text
    assert "annotations[5].bbox [2000, 1500, 500, 500] lies outside the 2048x1536 image" in text
    assert "'coyote/nosize.jpg': field 'width'/'height' (0 x 584) is not a positive size" in text
    assert "field 'file_name'" in text and "contains '..'" in text


# ------------------------------------------------------------------------------- SpeciesNet
def test_speciesnet_predictions(tmp_path):
    coyote = "5a565886-156e-4b19-a017-6a5bbae4df0f;mammalia;carnivora;canidae;canis;latrans;coyote"
    preds = {"predictions": [
        {"filepath": "C:\\traps\\cam1\\a.jpg", "classifications": {"classes": [coyote], "scores": [0.97]},
         "detections": [{"category": "1", "label": "animal", "conf": 0.9, "bbox": [0.1, 0.1, 0.4, 0.4]}],
         "prediction": coyote, "prediction_score": 0.97, "prediction_source": "classifier", "model_version": "4.0.1a"},
        {"filepath": "C:\\traps\\cam1\\b.jpg", "detections": [],
         "prediction": "f1856211-cfb7-4a5b-9158-c0f72fd09ee6;;;;;;blank", "prediction_score": 0.99},
        {"filepath": "C:\\traps\\cam2\\c.jpg", "detections": [],
         "prediction": "5a565886-156e-4b19-a017-6a5bbae4df0f;mammalia;carnivora;canidae;canis;latrans;coyote",
         "prediction_score": 0.6},
        {"filepath": "C:\\traps\\cam2\\d.jpg",
         "detections": [{"category": "2", "label": "human", "conf": 0.95, "bbox": [0.2, 0.2, 0.3, 0.6]}],
         "prediction": "990ae9dd-7a59-4344-afcb-1b7b21368000;mammalia;primates;hominidae;homo;sapiens;human",
         "prediction_score": 0.95},
        {"filepath": "C:\\traps\\cam2\\e.jpg", "failures": ["CLASSIFIER", "DETECTOR"]},
    ]}
    path = write(tmp_path, preds, "predictions.json")
    assert len(read_detections(path).images) == 0  # absolute paths need a prefix
    d = read_detections(path, strip_prefix="auto")
    assert d.format == "speciesnet"
    t = d.labels().set_index("file")
    assert t["label"].to_dict() == {"cam1/a.jpg": "coyote", "cam1/b.jpg": "empty", "cam2/c.jpg": "coyote",
                                    "cam2/d.jpg": "human"}
    assert t.loc["cam2/d.jpg", "detector_label"] == "person"
    whole = d.detections[d.detections["image"] == 2].iloc[0]
    assert (whole["x"], whole["y"], whole["w"], whole["h"]) == (0, 0, 1, 1)
    assert list(d.failures["file"]) == ["cam2/e.jpg"]


def test_progress_is_reported(tmp_path):
    calls = []
    read_detections(write(tmp_path, md([{"file": "a.jpg", "detections": []}])),
                    progress=lambda done, total, message="", preview=None: calls.append((done, total)))
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1]
