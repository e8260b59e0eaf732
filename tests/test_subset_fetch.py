"""Fetch against a real HTTP server on 127.0.0.1: Range resume, dropped connections, 404, no re-download."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from http_files import Server

from trailcam_core.ingest.dataset import load_dataset
from trailcam_core.base.errors import Cancelled, TrailcamError
from trailcam_core.subset.fetch import LILA_GCS, FetchOptions, download, fetch_images, file_url, missing_files
from trailcam_core.subset.select import SubsetOptions, make_subset


@pytest.fixture()
def server(sample_cct):
    s = Server(Path(sample_cct).parent)
    yield s
    s.close()


@pytest.fixture(scope="module")
def sub(sample_cct, tmp_path_factory):
    ds = load_dataset(sample_cct, cache_dir=tmp_path_factory.mktemp("cache"))
    return make_subset(ds, SubsetOptions(locations=["38"]))


def test_default_url_is_lilas_bucket():
    assert LILA_GCS == "https://storage.googleapis.com/public-datasets-lila/caltech-unzipped/cct_images/"
    assert file_url(LILA_GCS, "a b/c.jpg").endswith("cct_images/a%20b/c.jpg")


def test_fetch_downloads_in_parallel_and_never_twice(server, sub, tmp_path, sample_cct):
    events = []
    report = fetch_images(sub, tmp_path, FetchOptions(base_url=server.url, workers=4),
                          progress=lambda d, t, m="", p=None: events.append((d, t)))
    assert report.processed == len(sub) and not report.skipped
    for name in sub.images["file_name"]:
        assert (tmp_path / name).read_bytes() == (Path(sample_cct).parent / name).read_bytes()
    assert events[-1] == (len(sub), len(sub))
    n_requests = len(server.log)
    again = fetch_images(sub, tmp_path, FetchOptions(base_url=server.url))
    assert again.up_to_date == len(sub) and again.processed == 0
    assert len(server.log) == n_requests                           # no request for a complete file
    assert missing_files(sub, tmp_path) == []
    assert not list(tmp_path.glob(".*.part"))


def test_dropped_connection_is_resumed_with_range(server, sub, tmp_path, sample_cct):
    name = sub.images["file_name"].iloc[0]
    server.drop_once.add(name)
    report = fetch_images(sub.images.iloc[:1], tmp_path, FetchOptions(base_url=server.url, retries=2))
    assert report.processed == 1, report.skipped
    assert (tmp_path / name).read_bytes() == (Path(sample_cct).parent / name).read_bytes()
    reqs = server.requests_for(name)
    assert len(reqs) == 2 and reqs[0][1] is None and reqs[1][1].startswith("bytes=")
    assert int(reqs[1][1].split("=")[1].rstrip("-")) > 0


def test_a_cut_chunked_stream_without_length_is_resumed(server, sub, tmp_path, sample_cct):
    name = sub.images["file_name"].iloc[3]
    server.chunked = True
    server.drop_once.add(name)
    report = fetch_images([name], tmp_path, FetchOptions(base_url=server.url, retries=2))
    assert report.processed == 1, report.skipped
    assert (tmp_path / name).read_bytes() == (Path(sample_cct).parent / name).read_bytes()
    assert len(server.requests_for(name)) == 2


def test_interrupted_part_file_resumes_and_a_server_ignoring_range_restarts(server, sub, tmp_path, sample_cct):
    name = sub.images["file_name"].iloc[1]
    full = (Path(sample_cct).parent / name).read_bytes()
    part = tmp_path / f".{name}.part"
    part.write_bytes(full[:1000])
    assert download(file_url(server.url, name), tmp_path / name) == "downloaded"
    assert (tmp_path / name).read_bytes() == full
    assert server.requests_for(name)[-1][1] == "bytes=1000-"
    (tmp_path / name).unlink()
    part.write_bytes(b"stale junk")
    server.ignore_range = True
    assert download(file_url(server.url, name), tmp_path / name) == "downloaded"
    assert (tmp_path / name).read_bytes() == full


def test_a_complete_part_gets_416_and_is_kept(server, sub, tmp_path, sample_cct):
    name = sub.images["file_name"].iloc[2]
    full = (Path(sample_cct).parent / name).read_bytes()
    (tmp_path / f".{name}.part").write_bytes(full)
    assert download(file_url(server.url, name), tmp_path / name) == "downloaded"
    assert (tmp_path / name).read_bytes() == full


def test_404_and_unreachable_are_skipped_and_reported(server, sub, tmp_path):
    names = list(sub.images["file_name"].iloc[:2]) + ["no_such_image.jpg"]
    report = fetch_images(names, tmp_path, FetchOptions(base_url=server.url, retries=1))
    assert report.processed == 2
    assert report.skipped[0][0] == "no_such_image.jpg" and "404" in report.skipped[0][1]
    assert len(server.requests_for("no_such_image.jpg")) == 1          # a 404 is not retried
    dead = fetch_images(["x.jpg"], tmp_path, FetchOptions(base_url="http://127.0.0.1:9/", retries=1, timeout=2))
    assert dead.skipped and "gave up after 2 attempt" in dead.skipped[0][1]
    assert not (tmp_path / "x.jpg").exists()


def test_unsafe_names_are_never_written(server, tmp_path):
    report = fetch_images(["../escape.jpg", "/abs.jpg"], tmp_path / "dest", FetchOptions(base_url=server.url))
    assert len(report.skipped) == 2 and not (tmp_path / "escape.jpg").exists()
    assert server.log == []


def test_other_schemes_are_refused(tmp_path):
    with pytest.raises(TrailcamError, match="only http"):
        download("file:///etc/passwd", tmp_path / "x")


def test_cancel_from_the_progress_callback(server, sub, tmp_path):
    def cancel(done, total, message="", preview=None):
        if done >= 1:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        fetch_images(sub, tmp_path, FetchOptions(base_url=server.url, workers=1), progress=cancel)
    assert len(os.listdir(tmp_path)) < len(sub)
