"""One core call per data-stage action (load_source, load_subset, import_detections, export_detections):
the faces call these, so what they do is checked here once."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from trailcam_core.base.errors import TrailcamError
from trailcam_core.detections.model import DetectionOptions
from trailcam_core.detections.join import apply_detections
from trailcam_core.detections.export import export_detections
from trailcam_core.detections.read import read_detections
from trailcam_core.ingest.dataset import load_dataset
from trailcam_core.subset.select import MANIFEST_STEM, SUBSET_JSON, SubsetOptions
from trailcam_core.subset.load import import_detections, load_source, load_subset


def test_load_source_applies_every_detection_option_like_apply_detections(photos, photo_results):
    strict = DetectionOptions(threshold=0.3, classification_threshold=0.75)
    ds = load_source(photos, detections=photo_results, detection_options=strict, use_cache=False)
    by_hand = apply_detections(load_dataset(photos, use_cache=False), read_detections(photo_results),
                               threshold=0.3, classification_threshold=0.75)
    assert ds.images["label"].tolist() == by_hand.images["label"].tolist()
    # the classification threshold is not dropped: a 0.7 bobcat stays an animal under 0.75 ...
    loose = load_source(photos, detections=photo_results, detection_options=DetectionOptions(threshold=0.15),
                        use_cache=False)
    labels = dict(zip(ds.images["file_name"], ds.images["label"]))
    loose_labels = dict(zip(loose.images["file_name"], loose.images["label"]))
    assert loose_labels["cam0/IMG_0003.JPG"] == "bobcat" and labels["cam0/IMG_0003.JPG"] != "bobcat"


def test_load_subset_filters_the_loaded_source(photos, photo_results):
    sub = load_subset(photos, SubsetOptions(locations=["cam0"]), detections=photo_results, use_cache=False)
    assert len(sub) == 3 and set(sub.images["location"]) == {"cam0"}
    again = load_subset(sub.dataset, SubsetOptions(locations=["cam1"]))       # a loaded Dataset is used as is
    assert len(again) == 3 and again.dataset is sub.dataset


def test_saved_subset_has_the_same_file_names_in_every_face(photos, tmp_path):
    saved = load_subset(photos, use_cache=False).save(tmp_path / "out")
    assert saved["json"] == tmp_path / "out" / SUBSET_JSON and SUBSET_JSON == "subset.json"
    assert saved["manifest"] == tmp_path / "out" / f"{MANIFEST_STEM}.csv" and saved["parquet"].is_file()
    assert len(json.loads(saved["json"].read_text())["images"]) == 9


def test_import_detections_writes_labels_skips_and_the_labelled_dataset(photos, photo_results, tmp_path):
    report = import_detections(photo_results, tmp_path / "lab", dataset=photos)
    labels = pd.read_csv(report.outputs["labels"])
    assert len(labels) == report.processed == 7                 # the failure entry is skipped, and listed
    assert any("IMG_0005" in item for item, _ in report.skipped)
    assert pd.read_csv(report.outputs["skipped"])["item"].str.contains("IMG_0005").any()
    labelled = json.loads(report.outputs["labelled"].read_text())
    assert len(labelled["images"]) == 9 and "matched" in report.details["join"]
    assert sum(report.details["label_counts"].values()) == 7


def test_export_detections_from_a_results_file_limited_to_a_subset(photos, photo_results, tmp_path):
    cam0 = load_subset(photos, SubsetOptions(locations=["cam0"]), use_cache=False).save(tmp_path / "cam0")["json"]
    report = export_detections(tmp_path / "md.json", results=photo_results, dataset=cam0, threshold=0.2)
    files = [im["file"] for im in json.loads(report.outputs["json"].read_text())["images"]]
    assert sorted(f.replace("\\", "/") for f in files) == ["cam0/IMG_0000.JPG", "cam0/IMG_0003.JPG",
                                                            "cam0/IMG_0006.JPG"]
    with pytest.raises(TrailcamError, match="results file, a dataset"):
        export_detections(tmp_path / "none.json")
