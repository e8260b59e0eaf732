"""The parallel CCT parser (forked workers) gives exactly what the one-process parser gives:
same tables, same warnings, same error messages; and it steps aside whenever it cannot be sure."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from trailcam_core.ingest import cct
from trailcam_core.ingest import cct_parallel
from trailcam_core.ingest import dataset
from trailcam_core.ingest.dataset import load_dataset
from trailcam_core.base.errors import DataError
from trailcam_core.samples.synthetic import write_full_scale_json


@pytest.fixture
def workers(monkeypatch):
    """Parse even small files with 2 workers in runs of a few kB (many cuts, many runs), and
    return a function that says whether the last parse really used them."""
    monkeypatch.setattr(cct_parallel, "MIN_BYTES", 1)
    monkeypatch.setattr(cct_parallel, "PIECE_BYTES", 4096)
    monkeypatch.setenv("TRAILCAM_PARSE_WORKERS", "2")
    cct_parallel.STATS.clear()

    def used() -> bool:
        ran = cct_parallel.STATS.get("workers") == 2
        cct_parallel.STATS.clear()
        return ran
    return used


def one_process(path: Path, monkeypatch, **kw):
    with monkeypatch.context() as m:
        m.setenv("TRAILCAM_PARSE_WORKERS", "1")
        return load_dataset(path, use_cache=False, **kw)


def same(a, b) -> None:
    import pandas.testing

    for x, y in zip(a.tables(), b.tables()):
        assert x.schema == y.schema
        pandas.testing.assert_frame_equal(x.to_pandas(), y.to_pandas())      # NaN boxes compare equal
    assert a.categories == b.categories and a.info == b.info and a.warnings == b.warnings


def test_workers_give_the_one_process_tables(tmp_path, workers, monkeypatch):
    path = write_full_scale_json(tmp_path / "f.json", n_images=4000, n_locations=9)
    par = load_dataset(path, use_cache=False)
    assert workers()
    ref = one_process(path, monkeypatch)
    assert not workers()
    same(par, ref)
    assert any("do not parse" in w for w in par.warnings)          # the file's one bad date, reported once
    assert cct_parallel.workers_for(len(path.read_bytes())) == 2


def test_pretty_printed_file_and_strings_that_look_like_cuts(tmp_path, workers, monkeypatch):
    doc = json.loads(write_full_scale_json(tmp_path / "f.json", n_images=600, n_locations=3).read_text())
    for k, im in enumerate(doc["images"]):
        if k % 7 == 0:       # "}, {" inside strings: a cut there must never be taken for a boundary
            im["file_name"] = f'odd}},{{name{k}"}}, {{"x.jpg'
    doc["images"][5]["exif"] = [{"a": 1}, {"b": 2}]                # a nested array of objects
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps(doc, indent=2))
    par = load_dataset(path, use_cache=False)
    workers()
    ref = one_process(path, monkeypatch)
    same(par, ref)
    assert par.images["file_name"].tolist()[7] == 'odd},{name7"}, {"x.jpg'


def test_cut_inside_a_string_falls_back_to_one_process(tmp_path, workers, monkeypatch):
    """Force every cut candidate to sit inside a string: the runs do not decode, the workers fail,
    and one process parses the file correctly."""
    doc = json.loads(write_full_scale_json(tmp_path / "f.json", n_images=300, n_locations=2).read_text())
    for im in doc["images"]:
        im["file_name"] = "x" * 40 + "},{" + "y" * 3000 + ".jpg"   # most of the bytes are in strings
    path = tmp_path / "strings.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setattr(cct_parallel, "_ELEMENT_COMMA", __import__("re").compile(rb"\}(,)\{y"))
    par = load_dataset(path, use_cache=False)
    assert not workers(), "every run had a cut inside a string: the workers must have given up"
    same(par, one_process(path, monkeypatch))


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["images"][333].pop("file_name"), r"images\[333\] \(id '.+'\).*file_name"),
    (lambda d: d["images"].append(dict(d["images"][10])), "duplicate image id"),
    (lambda d: d["annotations"].append(dict(d["annotations"][3])), "duplicate annotation id"),
    (lambda d: d["annotations"].append({"id": "z", "image_id": "nope", "category_id": 30}),
     r"annotations\[\d+\] \(id 'z'\) points at image 'nope'"),
    (lambda d: d["annotations"][200].update(bbox=[1, 2]), r"annotations\[200\].*bbox"),
    (lambda d: d["annotations"][50].update(category_id="wolf"), r"annotations\[50\] category_id 'wolf'"),
])
def test_bad_records_give_the_one_process_message(tmp_path, workers, monkeypatch, mutate, match):
    doc = json.loads(write_full_scale_json(tmp_path / "f.json", n_images=800, n_locations=3).read_text())
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=match) as par:
        load_dataset(path, use_cache=False)
    with pytest.raises(DataError) as ref:
        one_process(path, monkeypatch)
    assert str(par.value) == str(ref.value)


def test_malformed_file_is_reported_by_position(tmp_path, workers):
    path = write_full_scale_json(tmp_path / "f.json", n_images=500, n_locations=2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"f\.json: malformed JSON at .*the file ends too early"):
        load_dataset(path, use_cache=False)
    assert not workers()


def test_big_files_are_mapped_and_cached_by_content(tmp_path, workers):
    path = write_full_scale_json(tmp_path / "f.json", n_images=1500, n_locations=4)
    buf = dataset._read_bytes(path, writable=True)
    import mmap
    assert isinstance(buf, mmap.mmap)                               # MIN_BYTES is 1 here
    assert dataset.content_key(buf, None) == dataset.content_key(path.read_bytes(), None)
    first = load_dataset(path, cache_dir=tmp_path / "cache")
    assert workers() and not first.from_cache
    copy = tmp_path / "copy.json"                                   # same bytes elsewhere: same key
    copy.write_bytes(path.read_bytes())
    again = load_dataset(copy, cache_dir=tmp_path / "cache")
    assert again.from_cache
    same(first, again)


def test_hash_collisions_fall_back_to_exact_string_checks():
    ids = pa.array(["a", "b", "c", "d"])
    ann = pa.array(["c", "a", "zz", "d", "c"])
    exact = cct.image_rows(ids, ann, Path("x.json"))
    assert exact.tolist() == [2, 0, -1, 3, 2]
    zeros = np.zeros(4, np.int64)                                   # every id collides
    assert cct.image_rows(ids, ann, Path("x.json"), (zeros, np.zeros(5, np.int64))).tolist() == exact.tolist()
    wrong = np.array([1, 2, 3, 4], np.int64)                        # "zz" collides with "a"
    assert cct.image_rows(ids, ann, Path("x.json"), (wrong, np.array([3, 1, 1, 4, 3], np.int64))).tolist() == \
        exact.tolist()
    assert cct._unique_ids(pa.array(["p", "q", None]), np.zeros(3, np.int64))   # clash, but distinct
    assert not cct._unique_ids(pa.array(["p", "p"]), np.array([5, 5], np.int64))


def test_a_hung_worker_is_killed_and_one_process_parses(tmp_path, workers, monkeypatch):
    path = write_full_scale_json(tmp_path / "f.json", n_images=300, n_locations=2)
    real = cct_parallel._worker

    def hang(buf, p, runs, out):
        if runs and runs[0][1] != runs[0][3]:     # the second worker (its first run is not the array start)
            import time
            time.sleep(60)
        real(buf, p, runs, out)
    monkeypatch.setattr(cct_parallel, "_worker", hang)
    real_collect = cct_parallel._collect
    monkeypatch.setattr(cct_parallel, "_collect", lambda children, deadline: real_collect(children, 0))
    par = load_dataset(path, use_cache=False)
    assert not workers()
    same(par, one_process(path, monkeypatch))
