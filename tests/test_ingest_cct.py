"""The CCT parser's fast paths agree with plain json + Python on the same file, and the vectorised
capture-time reader agrees with the general parser on every form, good or bad."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from trailcam_core.ingest import cct
from trailcam_core.ingest import cct_times
from trailcam_core.ingest.dataset import load_dataset
from trailcam_core.samples.synthetic import write_full_scale_json


def test_full_scale_shape_matches_plain_json(tmp_path):
    """A 3,000-image file of the benchmark's shape: every column equals what json + loops give."""
    path = write_full_scale_json(tmp_path / "f.json", n_images=3000, n_locations=12)
    ds = load_dataset(path, use_cache=False)
    doc = json.loads(path.read_text())
    im = ds.images
    assert im["image_id"].tolist() == [str(i["id"]) for i in doc["images"]]
    assert im["file_name"].tolist() == [i["file_name"] for i in doc["images"]]
    assert im["location"].tolist() == [str(i["location"]) for i in doc["images"]]
    assert im["seq_id"].tolist() == [str(i["seq_id"]) for i in doc["images"]]
    assert im["width"].tolist() == [i["width"] for i in doc["images"]]
    assert im["frame_num"].tolist() == [i["frame_num"] for i in doc["images"]]

    def when(text):
        try:
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
    got = [None if t is None or t != t else t.to_pydatetime() for t in im["datetime"].tolist()]
    assert got == [when(i["date_captured"]) for i in doc["images"]]
    names = {c["id"]: c["name"] for c in doc["categories"]}
    labels: dict = {}
    for a in doc["annotations"]:
        old, name = labels.get(a["image_id"]), names[a["category_id"]]
        if old is None or (old == "empty" and name != "empty"):
            labels[a["image_id"]] = name
    assert [None if v is None or v != v else v for v in im["label"].tolist()] == \
        [labels.get(i["id"]) for i in doc["images"]]
    ann = ds.annotations
    assert ann["annotation_id"].tolist() == [a["id"] for a in doc["annotations"]]
    assert ann["image_id"].tolist() == [a["image_id"] for a in doc["annotations"]]
    assert ann["category"].tolist() == [names[a["category_id"]] for a in doc["annotations"]]


@pytest.mark.parametrize("values", [
    ["2012-03-17 03:48:44", "2000-02-29 23:59:59", "1999-12-31 00:00:00"],
    ["2012-03-17 03:48:44", None, "2013-07-01T14:05:00", "2012-02-31 25:00:00", "2011-02-29 10:00:00",
     "2012-02-30 10:00:00", "2012-13-01 00:00:00", "2012-03-17 03:48:60", "NA", "", "2012/03/17 03:48:44",
     "2013-07-01T14:05:00+02:00", "2012-03-17 3:48:44", "0000-01-01 00:00:00", "2400-02-29 12:00:00"],
])
def test_vectorised_times_equal_the_general_parser(values):
    arr = pa.array(values, pa.string())
    w_fast, w_slow = [], []
    fast = cct.parse_datetimes(arr, Path("x.json"), w_fast)
    problems = []
    slow = cct_times._parse_datetimes(arr, problems)
    w_slow = [cct_times.time_warning(problems, Path("x.json"))] if problems else []
    as_int = lambda a: a.cast(pa.int64()).to_pylist()     # noqa: E731 (year 0 has no Python datetime)
    assert as_int(fast) == as_int(slow)
    assert w_fast == w_slow
    sliced = pa.array(["x"] + values, pa.string()).slice(1)        # offsets not starting at 0
    assert as_int(cct.parse_datetimes(sliced, Path("x.json"), [])) == as_int(slow)
