"""Fetch against a real HTTP server on 127.0.0.1: Range resume, dropped connections, 404, no re-download."""
from __future__ import annotations

import http.server
import os
import re
import threading
from pathlib import Path

import pytest

from trailcam_core.ingest.dataset import load_dataset
from trailcam_core.base.errors import Cancelled, TrailcamError
from trailcam_core.subset.fetch import LILA_GCS, FetchOptions, download, fetch_images, file_url, missing_files
from trailcam_core.subset.select import SubsetOptions, make_subset


class Server:
    """Serves files from ``root`` with Range support, and logs every request.

    - a name listed in ``drop_once`` gets its headers and half its bytes, then the connection is
      cut, the first time it is asked for;
    - ``ignore_range`` makes the server answer 200 with the whole file even to Range requests.
    """

    def __init__(self, root: Path):
        self.root, self.log, self.drop_once, self.ignore_range = root, [], set(), False
        self.chunked = False                      # send bodies chunked, with no Content-Length
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/").split("/", 1)[1] if self.path.startswith("/imgs/") else None
                rng = self.headers.get("Range")
                server.log.append((self.path, rng))
                path = server.root / name if name else None
                if path is None or not path.is_file():
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = path.read_bytes()
                start = 0
                if rng and not server.ignore_range:
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                if server.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = body[: len(body) // 2]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
                    if name in server.drop_once:          # cut inside the chunked stream
                        server.drop_once.discard(name)
                        self.wfile.write(b"%x\r\n" % (len(body) - len(half)))
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    rest = body[len(half):]
                    self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in server.drop_once:
                    server.drop_once.discard(name)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/imgs/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def requests_for(self, name: str) -> list:
        return [r for r in self.log if r[0].endswith("/" + name)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


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
