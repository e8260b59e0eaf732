"""Detector results in use: join/apply to a Dataset or folder, compare with CCT labels, sort as
AddaxAI does, chart through the shared chart code, export as MegaDetector JSON, and the CLI."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trailcam_cli import main as cli
from trailcam_core.ingest.dataset import load_dataset
from trailcam_core.detections.join import apply_detections
from trailcam_core.detections.read import read_detections
from trailcam_core.detections.export import write_megadetector
from trailcam_core.detections.compare import compare, detection_chart_table, write_comparison, \
    write_detection_charts
from trailcam_core.detections.join import join
from trailcam_core.samples.detections import make_megadetector
from trailcam_core.detections.sort import SortOptions, conf_bin, sort_detections, sort_table
from trailcam_core.base.errors import TrailcamError

from detection_files import det, md  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): (hashlib.md5(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------- join/apply
def test_apply_to_a_plain_folder_gives_labels_pixel_boxes_and_scores(photos, photo_results):
    ds = apply_detections(photos, photo_results, threshold=0.2)
    res = ds.detections_join
    assert len(res.matched) == 6
    assert res.only_in_detections == ["cam9/gone.jpg"]
    assert res.only_in_dataset == ["cam1/IMG_0007.JPG", "cam2/IMG_0005.JPG", "cam2/IMG_0008.JPG"]
    assert res.failed == ["cam2/IMG_0005.JPG"]
    labels = ds.images.set_index("file_name")["label"]
    assert labels["cam0/IMG_0000.JPG"] == "coyote"
    assert labels["cam1/IMG_0001.JPG"] == "empty"
    assert labels["cam2/IMG_0002.JPG"] == "vehicle"
    assert labels["cam0/IMG_0003.JPG"] == "bobcat"        # exactly at the threshold passes
    assert labels["cam1/IMG_0004.JPG"] == "empty"
    assert pd.isna(labels["cam2/IMG_0005.JPG"]) and pd.isna(labels["cam1/IMG_0007.JPG"])
    ann = ds.annotations
    coyote = ann[ann["image_id"] == "cam0/IMG_0000.JPG"].iloc[0]
    assert (coyote["bbox_x"], coyote["bbox_y"], coyote["bbox_w"], coyote["bbox_h"]) == (100, 50, 50, 50)
    assert coyote["score"] == pytest.approx(0.95) and coyote["category"] == "coyote"
    assert len(ann[ann["image_id"] == "cam2/IMG_0002.JPG"]) == 2   # vehicle and bobcat boxes both kept
    assert set(ann[ann["category"] == "empty"]["image_id"]) == {"cam1/IMG_0001.JPG", "cam1/IMG_0004.JPG"}
    # the crop stage's records carry pixel boxes
    rec = {r.file_name: r for r in ds.records()}["cam0/IMG_0000.JPG"]
    assert rec.label == "coyote" and rec.boxes[0].as_list() == [100, 50, 50, 50] and rec.boxes[0].score == 0.95
    assert ds.info["detections"]["threshold"] == 0.2
    assert any("1 results have no image" in w for w in ds.warnings)


def test_apply_reads_sizes_from_headers_and_keeps_boxes_without_size_as_nan(photos, photo_results):
    ds = load_dataset(photos, use_cache=False)
    ds.images = ds.images.assign(width=pd.array([pd.NA] * len(ds.images), dtype="Int64"),
                                 height=pd.array([pd.NA] * len(ds.images), dtype="Int64"))
    with_sizes = apply_detections(ds, photo_results)
    box = with_sizes.annotations[with_sizes.annotations["image_id"] == "cam0/IMG_0000.JPG"].iloc[0]
    assert box["bbox_x"] == 100
    without = apply_detections(ds, photo_results, read_sizes=False)
    box = without.annotations[without.annotations["image_id"] == "cam0/IMG_0000.JPG"].iloc[0]
    assert np.isnan(box["bbox_x"]) and box["score"] == pytest.approx(0.95)


def test_join_falls_back_to_case_and_unique_names(tmp_path):
    class Fake:
        images = pd.DataFrame({"image_id": ["1", "2", "3", "4"],
                               "file_name": ["A/x.jpg", "b/Y.JPG", "dup/z.jpg", "other/z.jpg"]})

    d = tmp_path / "r.json"
    d.write_text(json.dumps(md([{"file": f, "detections": []} for f in
                                ["a/x.jpg", "cct_images/b/y.jpg", "z.jpg", "A/x.jpg"]])))
    res = join(Fake(), read_detections(d))
    how = dict(zip(res.matched["file_name"], res.matched["how"]))
    assert how == {"A/x.jpg": "path", "b/Y.JPG": "name"}
    assert res.only_in_dataset == ["dup/z.jpg", "other/z.jpg"]   # ambiguous names are not guessed
    assert sorted(res.only_in_detections) == ["a/x.jpg", "z.jpg"]


def test_apply_to_a_subset_keeps_its_rows_and_root(sample_cct, tmp_path):
    from trailcam_core.subset.select import SubsetOptions, make_subset

    ds = load_dataset(sample_cct, use_cache=False)
    sub = make_subset(ds, SubsetOptions(empty="exclude", unlabelled="exclude"))
    out = apply_detections(sub, truth_results(ds, tmp_path))
    assert len(out.images) == len(sub.images) and out.root == ds.root and out.kind == "cct"
    assert "empty" not in set(sub.images["label"])
    assert int(out.images["label"].isin(["empty"]).sum()) == 3       # the 3 animals the detector missed


def test_apply_refuses_when_nothing_matches(photos, tmp_path):
    d = tmp_path / "r.json"
    d.write_text(json.dumps(md([{"file": "elsewhere/a1.jpg", "detections": []}])))
    with pytest.raises(TrailcamError, match="no image of the dataset"):
        apply_detections(photos, d)


# ------------------------------------------------------------------------------------- compare
def truth_results(ds, tmp_path, wrong: int = 3) -> Path:
    """Results that get every CCT label right except the first ``wrong`` animals (called empty)."""
    images, mistakes = [], 0
    for k, (f, label) in enumerate(zip(ds.images["file_name"], ds.images["label"])):
        if label == "empty" or pd.isna(label):
            dets = [det("2", 0.08 + 0.001 * k)]
        elif label == "car":
            dets = [det("3", 0.9)]
        elif mistakes < wrong:
            mistakes += 1
            dets = [det("1", 0.15, classifications=[["0", 0.9]])]
        else:
            dets = [det("1", 0.3 + 0.006 * k, classifications=[["0", 0.9]])]
        images.append({"file": f.replace("/", "\\"), "detections": dets})
    names = sorted({label for label in ds.images["label"].dropna() if label not in ("empty", "car")})
    # one class per species: classification key = species index
    for im, label in zip(images, ds.images["label"]):
        for d in im["detections"]:
            if "classifications" in d:
                d["classifications"] = [[str(names.index(label)), 0.9]]
    path = tmp_path / "sample_results.json"
    path.write_text(json.dumps(md(images, {str(i): n for i, n in enumerate(names)})))
    return path


def test_compare_agreement_table_and_precision_recall(sample_cct, tmp_path):
    ds = load_dataset(sample_cct, use_cache=False)
    results = truth_results(ds, tmp_path, wrong=3)
    c = compare(ds, results, threshold=0.2, thresholds=(0.05, 0.1, 0.2, 0.5))
    n = int(ds.images["label"].notna().sum())
    assert c.notes == [f"{len(ds.images) - n} matched images have no CCT label and are left out"]
    n_empty = int((ds.images["label"] == "empty").sum())
    assert len(c.images) == n
    agree = c.agreement.set_index("cct_label")
    assert agree.loc["empty", "same_class_rate"] == 1.0
    assert agree.loc["car", "detector_top_label"] == "vehicle"
    assert agree.loc["car", "same_class"] == 0 and agree.loc["car", "same_coarse_class_rate"] == 1.0
    assert int(agree["images"].sum()) == n
    assert int(agree["same_class"].sum()) == n - 3 - 4       # 3 missed animals, 4 cars named "vehicle"
    pr = c.precision_recall.set_index("threshold")
    positives = n - n_empty
    # at 0.05 every frame (noise included) is "something": recall 1, precision = share of non-empty frames
    assert pr.loc[0.05, "recall"] == 1.0 and pr.loc[0.05, "precision"] == round(positives / n, 4)
    # at 0.2 the noise is gone and 3 animals at 0.15 are missed
    assert (pr.loc[0.2, "tp"], pr.loc[0.2, "fp"], pr.loc[0.2, "fn"], pr.loc[0.2, "tn"]) == \
        (positives - 3, 0, 3, n_empty)
    assert pr.loc[0.2, "precision"] == 1.0 and pr.loc[0.2, "recall"] == round((positives - 3) / positives, 4)
    conf = c.confusion.set_index(["cct_label", "detector_label"])["images"]
    assert conf[("car", "vehicle")] == 4
    report = write_comparison(c, tmp_path / "cmp")
    for name in ("agreement.csv", "confusion.csv", "precision_recall.csv"):
        assert (tmp_path / "cmp" / name).stat().st_size > 0
    assert (tmp_path / "cmp" / "precision_recall.png").read_bytes()[:8] == PNG
    assert pd.read_csv(tmp_path / "cmp" / "precision_recall.csv").shape == (4, 7)
    assert report.skipped == [] and "precision 1.000" in c.summary()
    with pytest.raises(TrailcamError, match="no image has both"):
        compare(ds, _unrelated(tmp_path))


def _unrelated(tmp_path) -> Path:
    path = tmp_path / "unrelated.json"
    path.write_text(json.dumps(md([{"file": "nowhere/a.jpg", "detections": []}])))
    return path


# ------------------------------------------------------------------------------------- sort
@pytest.mark.parametrize("value,expected", [(0.93, "conf_0.9-1.0"), (1.0, "conf_0.9-1.0"), (0.2, "conf_0.1-0.2"),
                                            (0.21, "conf_0.2-0.3"), (0.05, "conf_0.0-0.1"), (0.0, "conf_0.0"),
                                            (0.5, "conf_0.4-0.5")])
def test_confidence_bins_are_addaxais(value, expected):
    assert conf_bin(value) == expected


@pytest.mark.parametrize("mode", ["copy", "hardlink", "symlink"])
def test_sort_places_never_moves_and_reruns_change_nothing(photos, photo_results, tmp_path, mode):
    before = tree_digest(photos)
    out = tmp_path / f"sorted_{mode}"
    opts = SortOptions(mode=mode, conf_bins=True, counts=True)
    report = sort_detections(photo_results, photos, out, opts)
    assert report.processed == 6 and report.up_to_date == 0
    assert [item for item, _ in report.skipped] == ["cam9/gone.jpg"]
    expected = {"2-coyote/conf_0.9-1.0/cam0/IMG_0000.JPG", "2-empty/cam1/IMG_0001.JPG",
                "1-vehicle/conf_0.6-0.7/cam2/IMG_0002.JPG", "1-bobcat/conf_0.1-0.2/cam0/IMG_0003.JPG",
                "2-empty/cam1/IMG_0004.JPG", "2-coyote/conf_0.8-0.9/cam0/IMG_0006.JPG"}
    placed = {str(p.relative_to(out)) for p in out.rglob("*") if (p.is_file() or p.is_symlink())
              and p.name != "placements.csv"}
    assert placed == expected
    for rel in expected:
        src = photos / "/".join(rel.split("/")[-2:])
        assert (out / rel).read_bytes() == src.read_bytes()
        if mode == "symlink":
            assert (out / rel).is_symlink() and os.readlink(out / rel) == str(src.resolve())
        if mode == "hardlink":
            assert os.path.samefile(out / rel, src)
    assert tree_digest(photos) == before                        # originals untouched
    csv = pd.read_csv(out / "placements.csv")
    assert len(csv) == 7 and set(csv["status"]) == {"placed", "missing"}
    assert set(csv.columns) >= {"file", "label", "score", "folder", "bin", "placed_as", "mode", "status"}
    snapshot = tree_digest(out)
    again = sort_detections(photo_results, photos, out, opts)
    assert again.processed == 0 and again.up_to_date == 6
    snap2 = tree_digest(out)
    assert {k: v for k, v in snap2.items() if k != "placements.csv"} == \
        {k: v for k, v in snapshot.items() if k != "placements.csv"}
    assert tree_digest(photos) == before


def test_sort_plain_layout_and_addaxai_join_rule(photos, photo_results, tmp_path):
    det_ = read_detections(photo_results)
    plan = sort_table(det_, SortOptions(multiple="join")).set_index("file")
    assert plan.loc["cam2/IMG_0002.JPG", "dest"] == "bobcat_vehicle/cam2/IMG_0002.JPG"
    assert plan.loc["cam0/IMG_0000.JPG", "dest"] == "coyote/cam0/IMG_0000.JPG"
    report = sort_detections(det_, photos, tmp_path / "plain")
    assert (tmp_path / "plain" / "vehicle" / "cam2" / "IMG_0002.JPG").is_file()
    assert report.outputs["folders"] == 4
    with pytest.raises(TrailcamError, match="must not be the image folder"):
        sort_detections(det_, photos, photos)


def test_sort_never_writes_outside_the_output_folder(photos, tmp_path):
    results = tmp_path / "r.json"
    # a label that looks like a path: its folder name is made safe
    results.write_text(json.dumps({"info": {"format_version": "1.4"},
                                   "detection_categories": {"1": "../../evil", "2": "a/b"},
                                   "images": [{"file": "cam0/IMG_0000.JPG", "detections": [det("1", 0.9)]},
                                              {"file": "cam1/IMG_0001.JPG", "detections": [det("2", 0.9)]}]}))
    out = tmp_path / "out"
    sort_detections(results, photos, out)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(photos)
               and p.name != "r.json"]
    assert written and all(p.is_relative_to(out) for p in written)


# ------------------------------------------------------------------------------------- charts
def test_charts_use_the_shared_chart_code(photos, photo_results, tmp_path, monkeypatch):
    import trailcam_core.ingest.charts as charts

    seen = []
    real = charts.category_bar_chart
    monkeypatch.setattr(charts, "category_bar_chart", lambda table, out, **kw: seen.append(table) or real(table, out, **kw))
    report = write_detection_charts(photo_results, tmp_path / "charts", threshold=0.2)
    assert (tmp_path / "charts" / "categories.png").read_bytes()[:8] == PNG
    assert (tmp_path / "charts" / "locations.png").read_bytes()[:8] == PNG
    table = seen[0]
    assert sorted(table["category"]) == ["animal", "bobcat", "bobcat", "coyote", "coyote", "vehicle"]
    assert set(table["location"]) == {"cam0", "cam2", "cam9"}
    per_image = detection_chart_table(photo_results, per="image")
    assert per_image["category"].value_counts()["empty"] == 2
    assert report.processed == 6


def test_chart_locations_come_from_the_dataset(sample_cct, tmp_path):
    ds = load_dataset(sample_cct, use_cache=False)
    table = detection_chart_table(truth_results(ds, tmp_path), dataset=ds, per="image")
    assert set(table["location"]) == set(ds.images["location"].astype(str))


# ------------------------------------------------------------------------------------- export
def test_export_round_trip_keeps_labels_and_boxes(photo_results, tmp_path):
    d = read_detections(photo_results)
    out = write_megadetector(d, tmp_path / "export.json", threshold=0.2)
    doc = json.loads(out.read_text())
    assert doc["info"]["format_version"] == "1.4"
    assert all(isinstance(k, str) and k.isdigit() for k in doc["detection_categories"])
    again = read_detections(out)
    assert [item for item, _ in again.skipped] == ["cam2/IMG_0005.JPG"]    # the failure entry, kept
    assert again.failures.to_dict("list") == d.failures.to_dict("list")
    assert again.labels(0.2)["label"].tolist() == d.labels(0.2)["label"].tolist()
    assert np.allclose(again.boxes(0.2)[["x", "y", "w", "h"]], d.boxes(0.2)[["x", "y", "w", "h"]])
    subset = write_megadetector(d, tmp_path / "two.json", files=["cam0/IMG_0000.JPG", "cam1\\IMG_0001.JPG"])
    assert [im["file"] for im in json.loads(subset.read_text())["images"]] == ["cam0/IMG_0000.JPG",
                                                                               "cam1/IMG_0001.JPG"]


def test_export_a_cct_subset_with_its_labels(sample_cct, tmp_path):
    ds = load_dataset(sample_cct, use_cache=False)
    out = write_megadetector(ds, tmp_path / "cct_as_md.json")
    back = read_detections(out)
    labelled = int(ds.images["label"].notna().sum())
    assert labelled < len(ds.images)                      # the unlabelled frame is left out, not called empty
    assert back.skipped == [] and len(back.images) == labelled
    labels = back.labels(0.2).set_index("file")["label"]
    truth = ds.images.set_index("file_name")["label"].dropna()
    for f, label in truth.items():
        assert labels[f] == label, f          # car: a "vehicle" detection classified "car"
    boxed = ds.annotations[ds.annotations["bbox_x"].notna()].iloc[0]
    img = ds.images.set_index("image_id").loc[boxed["image_id"]]
    row = back.boxes(0.2).set_index("file").loc[[img["file_name"]]].iloc[0]
    assert row["x"] == pytest.approx(boxed["bbox_x"] / img["width"], abs=1e-4)


# ------------------------------------------------------------------------------------- CLI
def test_cli_import_compare_sort_chart_export(sample_cct, tmp_path, capsys, photos, photo_results):
    ds = load_dataset(sample_cct, use_cache=False)
    results = truth_results(ds, tmp_path)
    out = tmp_path / "imp"
    assert cli(["detections", "import", str(results), "--dataset", str(sample_cct), "--out", str(out)]) == 0
    labels = pd.read_csv(out / "labels.csv")
    assert len(labels) == len(ds.images) and {"file", "label", "score", "location"} <= set(labels.columns)
    labelled = load_dataset(out / "labelled.json", use_cache=False)
    assert labelled.root.resolve() == sample_cct.parent.resolve()
    assert int((labelled.images["label"] == "vehicle").sum()) == 4
    assert cli(["detections", "compare", str(results), "--dataset", str(sample_cct), "--out",
                str(tmp_path / "cmp"), "--thresholds", "0.1", "0.2"]) == 0
    assert "same class" in capsys.readouterr().out
    assert (tmp_path / "cmp" / "precision_recall.png").is_file()
    assert cli(["detections", "sort", str(photo_results), "--images", str(photos), "--out", str(tmp_path / "s"),
                "--conf-bins", "--counts", "--mode", "hardlink"]) == 0
    assert (tmp_path / "s" / "2-coyote" / "conf_0.9-1.0" / "cam0" / "IMG_0000.JPG").is_file()
    assert cli(["detections", "chart", str(photo_results), "--out", str(tmp_path / "ch"), "--per", "image"]) == 0
    assert (tmp_path / "ch" / "categories.png").is_file()
    assert cli(["detections", "export", "--subset", str(sample_cct), "--out", str(tmp_path / "e.json")]) == 0
    assert read_detections(tmp_path / "e.json").skipped == []
    assert cli(["detections", "export", str(results), "--subset", str(out / "labelled.json"),
                "--out", str(tmp_path / "e2.json")]) == 0
    assert len(read_detections(tmp_path / "e2.json").images) == len(ds.images)
    assert "0 skipped" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"info": {"format_version": "9.9"}, "detection_categories": {}, "images": []}))
    assert cli(["detections", "import", str(bad), "--out", str(tmp_path / "x")]) == 1
    assert "info.format_version" in capsys.readouterr().err


def test_detector_boxes_drive_the_bbox_crop(photos, photo_results):
    """A plain folder has no CCT boxes: the detector's boxes (pixels) place the bbox-mode crop."""
    from trailcam_core.crop.geometry import CropOptions, crop_box

    ds = apply_detections(photos, photo_results)
    rec = {r.file_name: r for r in ds.records()}["cam0/IMG_0000.JPG"]
    options = CropOptions(mode="bbox", size=32, margin=0.0, strip_info_bar=False)
    left, top, right, bottom = crop_box(rec.width, rec.height, rec.boxes, options)
    assert (left, top, right, bottom) == (100, 50, 150, 100)     # the coyote's box, already square
    centre = crop_box(rec.width, rec.height, [], options)
    assert centre != (left, top, right, bottom)
