"""Tests for trailcam_core.ingest.video (frames out of clips via PyAV) and video crops in crop_batch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from trailcam_core.crop.geometry import CropOptions
from trailcam_core.crop.batch import crop_batch
from trailcam_core.crop.batch import MANIFEST, read_manifest
from trailcam_core.base.errors import DataError
from trailcam_core.ingest.video import is_video, iter_frames, probe_video, write_clip


def frames(n: int, size=(320, 240), strip: bool = False):
    """Frame i is filled with grey level 8*i (so a decoded frame tells its index), a moving square on top."""
    out = []
    for i in range(n):
        img = Image.new("RGB", size, (8 * i, 8 * i, 8 * i))
        d = ImageDraw.Draw(img)
        d.rectangle([10 + 5 * i, 100, 40 + 5 * i, 130], fill=(255, 40, 40))
        if strip:
            d.rectangle([0, size[1] - 14, size[0], size[1]], fill=(0, 0, 0))
            d.text((4, size[1] - 13), "08/12/11 9:14 AM  CUDDEBACK", fill=(255, 255, 255))
        out.append(img)
    return out


def index_of(img: Image.Image) -> int:
    return int(round(np.asarray(img.convert("L"))[5:40, 200:300].mean() / 8))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """3 s at 10 fps, H.264, a keyframe every 10 frames."""
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", frames(30), fps=10, gop=10)


def test_probe(clip):
    info = probe_video(clip)
    assert (info.width, info.height, info.frames) == (320, 240, 30)
    assert info.fps == pytest.approx(10.0)
    assert info.duration == pytest.approx(3.0, abs=0.15)
    assert is_video(clip) and is_video("A.MOV") and not is_video("a.jpg")


def test_every_n_seconds(clip):
    got = list(iter_frames(clip, interval=1.0))
    assert [round(t, 2) for t, _ in got] == [0.0, 1.0, 2.0]
    assert [index_of(img) for _, img in got] == [0, 10, 20]
    assert all(img.size == (320, 240) and img.mode == "RGB" for _, img in got)
    quarter = [round(t, 2) for t, _ in iter_frames(clip, interval=0.25)]
    assert quarter[:5] == [0.0, 0.3, 0.5, 0.8, 1.0]      # the first frame at or after each mark
    assert [round(t, 2) for t, _ in iter_frames(clip, interval=0.5, max_frames=2)] == [0.0, 0.5]


def test_keyframes(clip):
    got = list(iter_frames(clip, keyframes=True))
    assert [round(t, 2) for t, _ in got] == [0.0, 1.0, 2.0]
    assert [index_of(img) for _, img in got] == [0, 10, 20]


def test_avi_and_mpeg4(tmp_path):
    path = write_clip(tmp_path / "cam.avi", frames(12), fps=4, codec="mpeg4")
    assert [round(t, 2) for t, _ in iter_frames(path, interval=1.0)] == [0.0, 1.0, 2.0]


def test_unreadable_videos(tmp_path, clip):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 500)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path, words in [(junk, "unreadable video junk.mp4"), (empty, "empty file"),
                        (tmp_path / "missing.mp4", "does not exist")]:
        with pytest.raises(DataError, match=words):
            list(iter_frames(path))
        with pytest.raises(DataError):
            probe_video(path)
    with pytest.raises(DataError, match="refused"):
        list(iter_frames(clip, max_pixels=1000))


def test_truncated_clip_keeps_frames_before_damage(tmp_path, clip):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    try:
        got = list(iter_frames(cut, interval=0.5))
    except DataError as exc:                 # an mp4 cut before its index cannot be opened at all
        assert "cut.mp4" in str(exc)
    else:
        assert 1 <= len(got) <= 6


def test_crop_batch_video_frames(tmp_path, clip):
    src = tmp_path / "src"
    src.mkdir()
    write_clip(src / "trail.mp4", frames(20, size=(480, 360), strip=True), fps=10, gop=5)
    Image.new("RGB", (400, 300), (90, 120, 60)).save(src / "still.jpg")
    out = tmp_path / "out"
    rep = crop_batch(src, out, CropOptions(size=96, video_interval=0.5, workers=1))
    assert rep.processed == 2 and not rep.skipped
    rows = read_manifest(out / MANIFEST)
    video = [r for r in rows if r["image_id"] == "trail.mp4"]
    assert [r["frame_time"] for r in video] == ["0.000", "0.500", "1.000", "1.500"]
    assert [r["crop_file"] for r in video] == ["trail_00000.000s.jpg", "trail_00000.500s.jpg",
                                               "trail_00001.000s.jpg", "trail_00001.500s.jpg"]
    assert all(int(r["info_bar_bottom"]) >= 14 for r in video)
    for r in video:
        with Image.open(out / r["crop_file"]) as im:
            assert im.size == (96, 96)
    still = [r for r in rows if r["image_id"] == "still.jpg"]
    assert still[0]["frame_time"] == "" and still[0]["crop_file"] == "still.jpg"

    assert crop_batch(src, out, CropOptions(size=96, video_interval=0.5, workers=1)).up_to_date == 2
    # fewer frames: the extra crops of the earlier run are removed, the manifest follows
    rep = crop_batch(src, out, CropOptions(size=96, video_frames="keyframes", workers=1))
    assert (rep.processed, rep.up_to_date) == (1, 1)      # video settings do not redo the photo
    video = [r for r in read_manifest(out / MANIFEST) if r["image_id"] == "trail.mp4"]
    assert [r["frame_time"] for r in video] == ["0.000", "0.500", "1.000", "1.500"]
    rep = crop_batch(src, out, CropOptions(size=96, video_interval=1.0, workers=1))
    video = [r for r in read_manifest(out / MANIFEST) if r["image_id"] == "trail.mp4"]
    assert [r["frame_time"] for r in video] == ["0.000", "1.000"]
    assert sorted(p.name for p in out.glob("trail_*")) == ["trail_00000.000s.jpg", "trail_00001.000s.jpg"]
    rep = crop_batch(src, out, CropOptions(size=96, video_interval=1.0, max_frames=1, workers=1))
    assert [r["frame_time"] for r in read_manifest(out / MANIFEST) if r["image_id"] == "trail.mp4"] == ["0.000"]
