"""The CCT parser's fast paths agree with plain json + Python on the same file, and fall back to
the exact path whenever a shortcut cannot be trusted (repeated hashes, mismatching strings)."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from trailcam_core import cct
from trailcam_core.dataset import load_dataset
from trailcam_core.errors import DataError
from trailcam_core.sample import write_full_scale_json


def _ids(n: int, seed: int = 0) -> list[str]:
    rs = np.random.default_rng(seed)
    return [f"{a:016x}-{k}" for k, a in enumerate(rs.integers(0, 2**62, n))]


def _exact(ids: pa.Array, ann: pa.Array) -> np.ndarray:
    return cct.image_rows(ids, ann, Path("x.json"))          # no hashes: the Arrow hash pass


def test_hashed_matching_agrees_with_the_exact_path():
    ids = _ids(500)
    ann = [ids[k] for k in np.random.default_rng(1).integers(0, 500, 800)] + ["nope", "also-missing"]
    id_arr, ann_arr = pa.array(ids), pa.array(ann)
    rows = cct.image_rows(id_arr, ann_arr, Path("x.json"), cct.str_hashes(ids), cct.str_hashes(ann))
    assert rows.tolist() == _exact(id_arr, ann_arr).tolist()
    assert rows[-2:].tolist() == [-1, -1]
    assert [ids[r] for r in rows[:-2]] == ann[:-2]


def test_colliding_or_misleading_hashes_fall_back_to_the_exact_path():
    ids = _ids(50)
    ann = [ids[3], ids[7], "nope"]
    id_arr, ann_arr = pa.array(ids), pa.array(ann)
    expected = [3, 7, -1]
    zeros = np.zeros(len(ids), np.int64)                       # every hash the same: looks like repeats
    assert cct.image_rows(id_arr, ann_arr, Path("x.json"), zeros, np.zeros(3, np.int64)).tolist() == expected
    distinct = np.arange(len(ids), dtype=np.int64)             # unique hashes that point at the wrong rows
    wrong = np.array([5, 7, 9], np.int64)                     # "nope" hashes like ids[9]
    assert cct.image_rows(id_arr, ann_arr, Path("x.json"), distinct, wrong).tolist() == expected


def test_duplicate_image_ids_are_refused_with_hashes_too():
    ids = _ids(20) + ["dup", "dup"]
    with pytest.raises(DataError, match="duplicate image id 'dup'"):
        cct.image_rows(pa.array(ids), pa.array(["dup"]), Path("x.json"), cct.str_hashes(ids),
                       cct.str_hashes(["dup"]))


def test_str_hashes_only_for_strings():
    assert cct.str_hashes(["a", "b"]).tolist() == [hash("a"), hash("b")]
    assert cct.str_hashes(["a", 3]) is None


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
