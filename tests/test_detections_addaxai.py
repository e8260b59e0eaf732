"""Detector results as AddaxAI users see them: AddaxAI's own classification threshold, failures
kept on export, image sizes in labels.csv, and AddaxAI COCO files without categories."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from trailcam_cli import main as cli
from trailcam_core.detections import (DEFAULT_CLASSIFICATION_THRESHOLD, DetectionOptions,
                                      read_detections, write_megadetector)
from trailcam_core.detections_sort import SortOptions


def addaxai_doc() -> dict:
    """What AddaxAI writes after its classifier: a detection whose top class scored below AddaxAI's
    threshold keeps category "1", renamed "unidentified animal", and its classifications."""
    return {
        "info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt",
                 "addaxai_metadata": {"version": "6.0"}},
        "detection_categories": {"1": "unidentified animal", "2": "person", "3": "vehicle", "13": "coyote"},
        "classification_categories": {"10": "coyote", "4": "bobcat"},
        "images": [
            {"file": "cam1/IMG_0001.JPG", "detections": [
                {"category": "1", "conf": 0.91, "bbox": [0.1, 0.2, 0.3, 0.4],
                 "classifications": [["4", 0.47], ["10", 0.3]]}]},
            {"file": "cam1/IMG_0002.JPG", "detections": [
                {"category": "13", "conf": 0.88, "bbox": [0.1, 0.2, 0.3, 0.4], "prev_category": "1",
                 "prev_conf": 0.93, "classifications": [["10", 0.88]]}]},
            {"file": "cam1/IMG_0003.JPG", "detections": [], "failure": "Failure image access"},
            {"file": "cam2/IMG_0004.JPG", "detections": []},
        ],
    }


@pytest.fixture
def results(tmp_path) -> Path:
    path = tmp_path / "image_recognition_file.json"
    path.write_text(json.dumps(addaxai_doc(), indent=1))
    return path


def test_default_classification_threshold_is_addaxais(results):
    assert DEFAULT_CLASSIFICATION_THRESHOLD == 0.5
    assert DetectionOptions().classification_threshold == 0.5
    assert SortOptions().classification_threshold == 0.5
    det = read_detections(results)
    labels = det.labels().set_index("file")["label"]
    # AddaxAI files IMG_0001 under "unidentified animal" (0.47 < 0.5): so do we, by default
    assert labels["cam1/IMG_0001.JPG"] == "unidentified animal"
    assert labels["cam1/IMG_0002.JPG"] == "coyote"
    # 0 takes the classifier's top class whatever its score
    assert det.labels(classification_threshold=0.0).set_index("file").loc["cam1/IMG_0001.JPG", "label"] == "bobcat"


def test_export_writes_failures_as_failure_entries(results, tmp_path):
    det = read_detections(results)
    assert list(det.failures["file"]) == ["cam1/IMG_0003.JPG"]
    out = write_megadetector(det, tmp_path / "out.json")
    doc = json.loads(out.read_text())
    entries = {im["file"]: im for im in doc["images"]}
    assert entries["cam1/IMG_0003.JPG"] == {"file": "cam1/IMG_0003.JPG", "failure": "Failure image access"}
    assert len(entries) == 4
    again = read_detections(out)
    assert list(again.failures["file"]) == ["cam1/IMG_0003.JPG"]
    # only the files asked for (case-insensitive), failures included
    some = json.loads(write_megadetector(det, tmp_path / "some.json",
                                         files=["cam1/img_0003.jpg", "cam2/IMG_0004.JPG"]).read_text())
    assert sorted(im["file"] for im in some["images"]) == ["cam1/IMG_0003.JPG", "cam2/IMG_0004.JPG"]


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    for i, (cam, size) in enumerate([("cam1", (64, 48)), ("cam1", (80, 60)), ("cam1", (32, 24)),
                                     ("cam2", (40, 30))]):
        f = root / cam / f"IMG_{i + 1:04d}.JPG"
        f.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (60, 90, 40)).save(f, "JPEG")
    return root


def test_cli_import_with_dataset_fills_width_and_height(results, photos, tmp_path):
    out = tmp_path / "imp"
    assert cli(["detections", "import", str(results), "--dataset", str(photos), "--out", str(out)]) == 0
    table = pd.read_csv(out / "labels.csv").set_index("file")
    assert table.loc["cam1/IMG_0001.JPG", ["width", "height"]].tolist() == [64, 48]
    assert table.loc["cam1/IMG_0002.JPG", ["width", "height"]].tolist() == [80, 60]
    assert table.loc["cam2/IMG_0004.JPG", ["width", "height"]].tolist() == [40, 30]
    # without --dataset the file alone does not know them
    assert cli(["detections", "import", str(results), "--out", str(tmp_path / "bare")]) == 0
    assert pd.read_csv(tmp_path / "bare" / "labels.csv")["width"].isna().all()


def test_cli_export_of_a_subset_keeps_the_failed_image(results, photos, tmp_path):
    out = tmp_path / "e.json"
    assert cli(["detections", "export", str(results), "--subset", str(photos), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert {"file": "cam1/IMG_0003.JPG", "failure": "Failure image access"} in doc["images"]


def coco(categories) -> dict:
    doc = {"info": {"description": "AddaxAI export"},
           "images": [{"id": 1, "file_name": "skunk\\conf_0.9-1.0\\cam7\\IMG_0001.JPG", "width": 100,
                       "height": 80, "date_captured": "NA"},
                      {"id": 2, "file_name": "empty\\conf_0.1-0.2\\cam8\\IMG_0002.JPG", "width": 100,
                       "height": 80, "date_captured": "NA"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 20]}]}
    if categories is not None:
        doc["categories"] = categories
    return doc


@pytest.mark.parametrize("categories", [[], None], ids=["empty", "missing"])
def test_addaxai_coco_without_categories_undoes_sorted_paths_and_warns(tmp_path, categories, photos):
    path = tmp_path / "results_coco.json"
    path.write_text(json.dumps(coco(categories)))
    det = read_detections(path)
    assert list(det.images["file"]) == ["cam7/IMG_0001.JPG", "cam8/IMG_0002.JPG"]
    assert list(det.images["conf_bin"]) == ["conf_0.9-1.0", "conf_0.1-0.2"]
    assert list(det.labels()["location"]) == ["cam7", "cam8"]
    assert len(det.warnings) == 1 and "'categories' is missing or empty" in det.warnings[0]
    assert str(path) in det.warnings[0]


def test_coco_with_categories_has_no_warning(tmp_path):
    path = tmp_path / "results_coco.json"
    path.write_text(json.dumps(coco([{"id": 3, "name": "skunk"}])))
    det = read_detections(path)
    assert det.warnings == []
    assert list(det.labels()["label"]) == ["skunk", "empty"]


def test_cli_prints_the_warning(tmp_path, capsys):
    path = tmp_path / "results_coco.json"
    path.write_text(json.dumps(coco([])))
    assert cli(["detections", "import", str(path), "--out", str(tmp_path / "o")]) == 0
    assert "warning:" in capsys.readouterr().out
