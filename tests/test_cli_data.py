"""`trailcam subset | fetch | sort | chart | demo` end to end, in process."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from trailcam_cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("command", ["subset", "fetch", "sort", "chart", "demo"])
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: trailcam " + command in capsys.readouterr().out


def test_subset_sort_chart_pipeline(capsys, sample_cct, tmp_path):
    out = tmp_path / "sub"
    code, stdout, _ = run(capsys, "subset", sample_cct, "--out", out, "--locations", "26", "43",
                          "--empty", "exclude", "--sequence", "first", "--sort", "symlink")
    assert code == 0
    line = stdout.strip().splitlines()[-1]
    assert line.startswith("subset: ") and "done" in line and str(out / "subset.json") in line
    doc = json.loads((out / "subset.json").read_text())
    assert {i["location"] for i in doc["images"]} == {"26", "43"}
    assert all(i["frame_num"] == 1 for i in doc["images"])
    assert (out / "manifest.csv").is_file() and (out / "manifest.parquet").is_file()
    assert sum(1 for _ in (out / "Sorted").rglob("*.jpg")) == len(doc["images"])

    code, stdout, _ = run(capsys, "sort", out / "subset.json", "--out", tmp_path / "s2", "--mode", "copy")
    assert code == 0 and stdout.strip().splitlines()[-1].startswith("sort: ")
    assert sum(1 for _ in (tmp_path / "s2" / "Sorted").rglob("*.jpg")) == len(doc["images"])

    code, stdout, _ = run(capsys, "chart", out / "subset.json", "--out", tmp_path / "charts", "--per", "image")
    assert code == 0 and (tmp_path / "charts" / "categories.png").is_file()
    assert (tmp_path / "charts" / "locations.png").is_file() and "chart: " in stdout


def test_chart_from_a_detection_table(capsys, tmp_path):
    table = tmp_path / "detections.csv"
    pd.DataFrame({"category": ["animal", "person", "animal"], "location": ["a", "a", "b"]}).to_csv(table, index=False)
    code, stdout, _ = run(capsys, "chart", table, "--out", tmp_path / "c")
    assert code == 0 and (tmp_path / "c" / "locations.png").is_file()


def test_errors_are_one_clear_line_and_exit_1(capsys, sample_cct, tmp_path):
    code, _, err = run(capsys, "subset", sample_cct, "--out", tmp_path, "--locations", "999")
    assert code == 1 and "trailcam subset: error: unknown location '999'" in err and "26, 38, 43, 61" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    code, _, err = run(capsys, "subset", bad, "--out", tmp_path)
    assert code == 1 and "bad.json: malformed JSON at line 1" in err
    assert not (tmp_path / "subset.json").exists()


def test_fetch_command_against_local_server(capsys, sample_cct, tmp_path):
    from http_files import Server

    server = Server(Path(sample_cct).parent)
    try:
        run(capsys, "subset", sample_cct, "--out", tmp_path / "s", "--locations", "61")
        dest = tmp_path / "images"
        code, stdout, _ = run(capsys, "fetch", tmp_path / "s" / "subset.json", "--dest", dest,
                              "--base-url", server.url, "--workers", "3")
        assert code == 0
        n = len(json.loads((tmp_path / "s" / "subset.json").read_text())["images"])
        assert f"fetch: {n} done" in stdout and len(list(dest.glob("*.jpg"))) == n
        code, stdout, _ = run(capsys, "fetch", tmp_path / "s" / "subset.json", "--dest", dest,
                              "--base-url", server.url)
        assert f"fetch: 0 done, {n} up to date" in stdout
    finally:
        server.close()


def test_demo_prints_where_outputs_are(capsys, tmp_path, monkeypatch):
    from trailcam_cli import _common
    from trailcam_core.base.progress import TqdmProgress
    from trailcam_core.samples.demo import STEPS

    shown = []

    class Recording(TqdmProgress):       # the CLI's own bar, remembering what it was told to show
        def __call__(self, done, total, message="", preview=None):
            shown.append((done, total, message))
            super().__call__(done, total, message, preview)

    monkeypatch.setattr(_common, "progress", lambda desc, unit="img": Recording(desc=desc, unit=unit))
    code, stdout, _ = run(capsys, "demo", "--out", tmp_path / "demo")
    assert code == 0
    for k, (name, _) in enumerate(STEPS):   # every step shows its own progress (done/total) in the bar
        assert any(d == k and re.match(rf"{name} \d+/\d+", m) for d, _, m in shown), f"no progress for {name}"
    assert shown[-1] == (len(STEPS), len(STEPS), "done")
    assert "synthetic" in stdout.lower()
    for name in ("subset.json", "manifest.csv", "Sorted", "categories.png", "locations.png", "crops",
                 "crops/tag_frequency.json", "mosaic/mosaic.jpg", "mosaic/viewer.html"):
        assert str(tmp_path / "demo" / name) in stdout
        assert (tmp_path / "demo" / name).exists()
    crops = sorted((tmp_path / "demo" / "crops").glob("*.jpg"))
    captions = sorted((tmp_path / "demo" / "crops").glob("*.txt"))
    assert len(crops) == len(captions) > 0
    assert captions[0].read_text().startswith("trailcam, ")
    assert stdout.strip().splitlines()[-1].startswith("demo: ")
