"""Loading COCO Camera Traps JSON and plain folders: contract, real-file quirks, cache, bad input."""
from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from trailcam_core.ingest.dataset import load_dataset
from trailcam_core.base.errors import DataError, TrailcamError, UnsafePathError


def cct(images=None, annotations=None, categories=None, **extra) -> dict:
    images = images if images is not None else [
        {"id": "a", "file_name": "a.jpg", "width": 2048, "height": 1494, "location": "38",
         "date_captured": "2012-03-17 03:48:44", "seq_id": "s1", "seq_num_frames": 2, "frame_num": 1},
        {"id": "b", "file_name": "b.jpg", "width": 2048, "height": 1494, "location": 38,
         "date_captured": "2012-03-17 03:48:45", "seq_id": "s1", "seq_num_frames": 2, "frame_num": 2},
        {"id": "c", "file_name": "sub\\c.jpg", "location": "46", "datetime": "2013-07-01T14:05:00"},
        {"id": "d", "file_name": "d.jpg", "location": "46", "date_captured": "2012-02-31 25:00:00"},
    ]
    annotations = annotations if annotations is not None else [
        {"id": "n1", "image_id": "a", "category_id": 30},
        {"id": "n2", "image_id": "b", "category_id": 9, "bbox": [10, 20, 30, 40]},
        {"id": "n3", "image_id": "b", "category_id": 30},
        {"id": "n4", "image_id": "c", "category_id": 33},
        {"id": "n5", "image_id": "c", "category_id": 9},
    ]
    categories = categories if categories is not None else [
        {"id": 30, "name": "empty"}, {"id": 9, "name": "coyote"}, {"id": 33, "name": "car"}, {"id": 5, "name": "fox"}]
    return {"info": {"version": "test"}, "images": images, "annotations": annotations, "categories": categories,
            **extra}


def write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


# ----------------------------------------------------------------------------- the contract
def test_sample_loads_with_the_documented_columns(sample_cct, tmp_path):
    ds = load_dataset(sample_cct, cache_dir=tmp_path)
    im, ann = ds.images, ds.annotations
    assert list(im.columns[:10]) == ["image_id", "file_name", "width", "height", "location", "datetime", "seq_id",
                                     "frame_num", "seq_num_frames", "label"]
    assert str(im["width"].dtype) == "Int64" and str(im["frame_num"].dtype) == "Int64"
    assert str(im["datetime"].dtype).startswith("datetime64")
    assert pd.api.types.is_string_dtype(im["image_id"]) and pd.api.types.is_string_dtype(im["location"])
    for col in ("image_id", "category_id", "category", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "score"):
        assert col in ann.columns
    assert ds.root == Path(sample_cct).parent.resolve()
    assert ds.categories[30] == "empty"
    assert ds.images["label"].isna().sum() == 1                       # the one unannotated image
    assert (ds.images["label"] == "empty").sum() > 20
    assert ann["bbox_x"].notna().any() and ann["bbox_x"].isna().any()
    assert ds.warnings and "do not parse" in ds.warnings[0]
    assert ds.image_path(im["file_name"].iloc[0]).is_file()


def test_records_carry_labels_boxes_and_ground_truth(sample_cct, tmp_path):
    ds = load_dataset(sample_cct, cache_dir=tmp_path)
    records = ds.records()
    assert len(records) == len(ds.images)
    boxed = [r for r in records if r.boxes]
    assert boxed and all(r.path.is_file() for r in records[:5])
    r = boxed[0]
    assert r.label == r.boxes[0].category and r.width and r.height and isinstance(r.datetime, datetime)
    assert r.extra["synthetic"]["time_of_day"] in ("day", "ir_night", "flash_night")
    one = ds.records([records[3].image_id])
    assert [x.image_id for x in one] == [records[3].image_id]


def test_real_file_quirks(tmp_path):
    ds = load_dataset(write(tmp_path / "x.json", cct()), use_cache=False)
    im = ds.images.set_index("image_id")
    assert im.loc["b", "location"] == "38"                            # int location -> string
    assert im.loc["c", "file_name"] == "sub/c.jpg"                    # Windows separators -> POSIX
    assert im.loc["a", "datetime"] == pd.Timestamp("2012-03-17 03:48:44")
    assert im.loc["c", "datetime"] == pd.Timestamp("2013-07-01 14:05:00")   # ISO under "datetime"
    assert pd.isna(im.loc["d", "datetime"]) and "1 capture time" in ds.warnings[0]
    assert im.loc["a", "label"] == "empty" and im.loc["b", "label"] == "coyote"
    assert im.loc["c", "label"] == "car"                              # first non-empty annotation
    assert pd.isna(im.loc["d", "label"])                              # no annotation at all
    assert im.loc["c", "seq_id"] == "c" and pd.isna(im.loc["c", "frame_num"])
    assert len(ds.annotations[ds.annotations["image_id"] == "b"]) == 2
    box = ds.annotations[ds.annotations["annotation_id"] == "n2"].iloc[0]
    assert (box.bbox_x, box.bbox_y, box.bbox_w, box.bbox_h) == (10, 20, 30, 40)
    assert ds.locations == ["38", "46"]


def test_empty_class_is_found_by_name(tmp_path):
    doc = cct(categories=[{"id": 0, "name": "Empty "}, {"id": 9, "name": "coyote"}, {"id": 33, "name": "car"}],
              annotations=[{"id": "n1", "image_id": "a", "category_id": 0}])
    ds = load_dataset(write(tmp_path / "x.json", doc), use_cache=False)
    assert ds.images.set_index("image_id").loc["a", "label"] == "empty"


def test_separate_bbox_file_is_merged_by_image_id(tmp_path):
    main = write(tmp_path / "images.json", cct())
    boxes = write(tmp_path / "bboxes.json", {
        "images": [{"id": "a", "file_name": "a.jpg"}],
        "annotations": [{"id": "b1", "image_id": "c", "category_id": 33, "bbox": [1, 2, 3, 4]},
                        {"id": "b2", "image_id": "c", "category_id": 33, "bbox": [5, 6, 7, 8]},
                        {"id": "b3", "image_id": "gone", "category_id": 9, "bbox": [1, 1, 1, 1]}],
        "categories": [{"id": 33, "name": "car"}, {"id": 9, "name": "coyote"}]})
    ds = load_dataset(main, bboxes=boxes, use_cache=False)
    c = ds.annotations[ds.annotations["image_id"] == "c"]
    assert sorted(c["category"]) == ["car", "car", "coyote"]           # box-less car replaced by two boxes
    assert c[c["category"] == "car"]["bbox_x"].tolist() == [1, 5]
    assert any("not in" in w for w in ds.warnings)                       # the box of an unknown image
    conflict = write(tmp_path / "conflict.json", {"annotations": [], "categories": [{"id": 33, "name": "deer"}]})
    with pytest.raises(DataError, match="33"):
        load_dataset(main, bboxes=conflict, use_cache=False)


# ------------------------------------------------------------------------------------ cache
def test_cache_makes_the_second_load_identical_and_fast(tmp_path, sample_cct):
    src = tmp_path / "data.json"
    shutil.copy(sample_cct, src)
    first = load_dataset(src, cache_dir=tmp_path / "cache", image_root=Path(sample_cct).parent)
    second = load_dataset(src, cache_dir=tmp_path / "cache", image_root=Path(sample_cct).parent)
    assert not first.from_cache and second.from_cache
    pd.testing.assert_frame_equal(first.images, second.images)
    pd.testing.assert_frame_equal(first.annotations, second.annotations)
    assert second.categories == first.categories and second.warnings == first.warnings
    assert second.records()[0].extra.get("synthetic")                 # raw fields still reachable
    # the same content elsewhere hits the same cache entry (keyed by content, not by name)
    copy = tmp_path / "copy.json"
    shutil.copy(src, copy)
    assert load_dataset(copy, cache_dir=tmp_path / "cache").images.equals(first.images)


def test_cache_notices_changed_content_and_survives_corruption(tmp_path):
    src = write(tmp_path / "x.json", cct())
    cache = tmp_path / "cache"
    assert len(load_dataset(src, cache_dir=cache).images) == 4
    doc = cct()
    doc["images"] = doc["images"][:3]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != "d"]
    write(src, doc)
    os.utime(src, ns=(1, 1))                                           # even with an odd mtime
    again = load_dataset(src, cache_dir=cache)
    assert len(again.images) == 3 and not again.from_cache
    for f in cache.rglob("*.arrow"):
        f.write_bytes(b"garbage")
    os.utime(src, ns=(2, 2))
    third = load_dataset(src, cache_dir=cache)
    assert len(third.images) == 3


# -------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("text, match", [
    ('{"images": [{"id": "a", "file_name": "a.jpg"},\n  {"id": "b" "file_name": "b.jpg"}]}', r"line 2, column"),
    ("", "empty"),
    ("[1, 2]", "not a COCO Camera Traps"),
    ('{"annotations": []}', "images"),
])
def test_malformed_json_names_file_and_position(tmp_path, text, match):
    path = write(tmp_path / "bad.json", text)
    with pytest.raises(DataError, match=match) as err:
        load_dataset(path, use_cache=False)
    assert "bad.json" in str(err.value)


def test_missing_required_field_names_the_record(tmp_path):
    doc = cct()
    del doc["images"][2]["file_name"]
    with pytest.raises(DataError, match=r"images\[2\] \(id 'c'\).*file_name"):
        load_dataset(write(tmp_path / "x.json", doc), use_cache=False)
    doc = cct()
    del doc["annotations"][1]["category_id"]
    with pytest.raises(DataError, match=r"annotations\[1\].*category_id"):
        load_dataset(write(tmp_path / "y.json", doc), use_cache=False)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["images"].append(dict(d["images"][0])), "duplicate image id 'a'"),
    (lambda d: d["annotations"].append(dict(d["annotations"][0], image_id="b")), "duplicate annotation id 'n1'"),
    (lambda d: d["categories"].append({"id": 9, "name": "wolf"}), "duplicate category id 9"),
    (lambda d: d["annotations"].append({"id": "z", "image_id": "nope", "category_id": 9}),
     r"annotations\[5\] \(id 'z'\) points at image 'nope'"),
    (lambda d: d["annotations"].append({"id": "z", "image_id": "a", "category_id": 77}), "category_id 77"),
    (lambda d: d["annotations"].append({"id": "z", "image_id": "a", "category_id": 9, "bbox": [1, 2]}), "bbox"),
])
def test_inconsistent_records_are_refused(tmp_path, mutate, match):
    doc = cct()
    mutate(doc)
    with pytest.raises(DataError, match=match):
        load_dataset(write(tmp_path / "x.json", doc), use_cache=False)


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.jpg", "a/../../x.jpg", "C:\\x.jpg", "..\\x.jpg"])
def test_unsafe_file_names_are_refused(tmp_path, name):
    doc = cct()
    doc["images"][1]["file_name"] = name
    with pytest.raises(UnsafePathError, match=r"images\[1\] \(id 'b'\)"):
        load_dataset(write(tmp_path / "x.json", doc), use_cache=False)


def test_missing_and_unreadable_sources(tmp_path):
    with pytest.raises(TrailcamError, match="no such file"):
        load_dataset(tmp_path / "nope.json")
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "dir.json" / "x.txt").write_text("x")
    with pytest.raises(TrailcamError, match="no images"):
        load_dataset(tmp_path / "dir.json")
    with pytest.raises(TrailcamError, match="bbox file not found"):
        load_dataset(write(tmp_path / "x.json", cct()), bboxes=tmp_path / "nope.json")


def test_image_path_is_confined_to_root(tmp_path):
    ds = load_dataset(write(tmp_path / "x.json", cct()), use_cache=False)
    assert ds.image_path("sub/c.jpg") == (tmp_path / "sub" / "c.jpg").resolve()
    with pytest.raises(UnsafePathError):
        ds.image_path("../../etc/passwd")


# ----------------------------------------------------------------------------- plain folders
def _jpeg(path: Path, when: str | None = None, colour=(90, 120, 60)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (64, 48), colour)
    exif = Image.Exif()
    if when:
        exif.get_ifd(0x8769)[36867] = when
    img.save(path, exif=exif.tobytes() if when else b"")


def _video(path: Path) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_plain_folder_of_images_and_videos(tmp_path):
    root = tmp_path / "cams"
    _jpeg(root / "ridge" / "IMG_0001.JPG", "2021:05:04 03:02:01")
    _jpeg(root / "ridge" / "IMG_0002.JPG", "2021:05:04 03:02:02")
    _jpeg(root / "ridge" / "IMG_0003.JPG", "2021:05:04 09:00:00")
    _jpeg(root / "creek" / "deep" / "x.png")
    os.utime(root / "creek" / "deep" / "x.png", (1_600_000_000, 1_600_000_000))
    _jpeg(root / "top.jpg", "2020:01:01 00:00:00")
    _video(root / "creek" / "clip.mp4")
    (root / "creek" / "broken.jpg").write_bytes(b"not a jpeg")
    (root / ".hidden.jpg").write_bytes(b"x")
    (root / "notes.txt").write_text("ignored")
    ds = load_dataset(root, cache_dir=tmp_path / "cache")
    im = ds.images.set_index("image_id")
    assert sorted(im.index) == ["creek/clip.mp4", "creek/deep/x.png", "ridge/IMG_0001.JPG", "ridge/IMG_0002.JPG",
                                "ridge/IMG_0003.JPG", "top.jpg"]
    assert im.loc["ridge/IMG_0001.JPG", "location"] == "ridge" and im.loc["creek/deep/x.png", "location"] == "creek"
    assert im.loc["top.jpg", "location"] == "cams"
    assert im.loc["ridge/IMG_0002.JPG", "datetime"] == pd.Timestamp("2021-05-04 03:02:02")   # EXIF
    assert im.loc["creek/deep/x.png", "datetime"] == pd.Timestamp(datetime.fromtimestamp(1_600_000_000))  # mtime
    assert im.loc["creek/clip.mp4", "media"] == "video" and im.loc["creek/clip.mp4", "width"] == 64
    assert im.loc["ridge/IMG_0001.JPG", "seq_id"] == im.loc["ridge/IMG_0002.JPG", "seq_id"]   # a burst
    assert im.loc["ridge/IMG_0002.JPG", "frame_num"] == 2 and im.loc["ridge/IMG_0001.JPG", "seq_num_frames"] == 2
    assert im.loc["ridge/IMG_0003.JPG", "seq_id"] != im.loc["ridge/IMG_0001.JPG", "seq_id"]
    assert im["label"].isna().all() and ds.annotations.empty and ds.kind == "folder"
    assert [s[0] for s in ds.skipped] == ["creek/broken.jpg"] and "cannot read" in ds.skipped[0][1]
    again = load_dataset(root, cache_dir=tmp_path / "cache")
    assert again.from_cache and again.skipped == ds.skipped
    pd.testing.assert_frame_equal(again.images, ds.images)
    assert ds.records()[0].path.is_file()
