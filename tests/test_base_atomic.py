"""The one atomic-write helper: all or nothing, ordinary file modes, no temp files left behind."""
from __future__ import annotations

import os
import stat

import pytest

from trailcam_core.base import atomic


def test_write_replaces_whole_file_with_plain_mode(tmp_path):
    dest = tmp_path / "out" / "a.json"
    atomic.write_json(dest, {"x": 1})
    atomic.write_json(dest, {"x": 2})
    assert dest.read_text().strip().endswith("}") and '"x": 2' in dest.read_text()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in dest.parent.iterdir()] == ["a.json"]


def test_failure_keeps_old_content_and_removes_temp(tmp_path):
    dest = tmp_path / "b.txt"
    atomic.write_text(dest, "old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.txt"]
