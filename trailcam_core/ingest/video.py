"""Frames out of trail-camera video clips (via PyAV), so clips can be cropped like photos.

Trail cameras in video mode write short clips (MP4/AVI/MOV, often 10-60 s).  :func:`iter_frames`
yields ``(time_in_seconds, PIL image)`` either every ``interval`` seconds or at every keyframe;
the crop stage writes the frame time into its manifest.

Example::

    for t, img in iter_frames("clip.mp4", interval=2.0):
        print(f"{t:.2f}s", img.size)
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Optional

from PIL import Image

from trailcam_core.base import atomic_path, DataError, VIDEO_EXTENSIONS



def is_video(path: str | os.PathLike) -> bool:
    """True when the file name has a video extension."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    duration: Optional[float]     # seconds, None when the container does not say
    fps: Optional[float]
    frames: Optional[int]         # frame count from the header, None when unknown
    codec: str


def _open(path: Path):
    import av

    if not path.is_file():
        raise DataError(f"video {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"unreadable video {path.name}: empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except Exception as exc:  # av.error.FFmpegError and friends
        raise DataError(f"unreadable video {path.name}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"unreadable video {path.name}: no video stream")
    return container


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a clip's header: size, duration, frame rate, frame count, codec."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        cc = stream.codec_context
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(int(cc.width), int(cc.height), duration, float(rate) if rate else None,
                         int(stream.frames) or None, cc.name)
    finally:
        container.close()


def iter_frames(path: str | os.PathLike, interval: float = 1.0, keyframes: bool = False, max_frames: int = 0,
                max_pixels: Optional[int] = None) -> Iterator[tuple[float, Image.Image]]:
    """Yield ``(seconds, RGB image)`` from a clip: the first frame at or after 0, interval, 2*interval...

    ``keyframes=True`` yields every keyframe instead (no decoding of the frames between).
    ``max_frames`` > 0 stops after that many.  Frames bigger than ``max_pixels`` are refused.
    Raises DataError naming the file when the clip cannot be read at all; a clip that breaks
    part-way yields the frames before the damage and then stops.
    """
    path = Path(path)
    if not keyframes and not interval > 0:
        raise DataError(f"video frame interval must be positive, got {interval}")
    container = _open(path)
    yielded = 0
    try:
        stream = container.streams.video[0]
        cc = stream.codec_context
        if max_pixels and cc.width * cc.height > max_pixels:
            raise DataError(f"refused video {path.name}: frames of {cc.width}x{cc.height} are above the limit "
                            f"of {max_pixels:,} pixels")
        stream.thread_type = "AUTO"
        if keyframes:
            cc.skip_frame = "NONKEY"
        rate = stream.average_rate or stream.guessed_rate
        next_t = 0.0
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                t = frame.time
                if t is None:
                    t = index / float(rate) if rate else float(index)
                t = max(0.0, float(t))
                if not keyframes:
                    if t + 1e-6 < next_t:
                        continue
                    next_t = (math.floor(t / interval + 1e-6) + 1) * interval
                elif not frame.key_frame:
                    continue
                img = frame.to_image()
                rotation = int(getattr(frame, "rotation", 0) or 0)
                if rotation % 360:
                    img = img.rotate(rotation, expand=True)
                yield t, img
                yielded += 1
                if max_frames and yielded >= max_frames:
                    return
        except DataError:
            raise
        except Exception as exc:
            if yielded == 0:
                raise DataError(f"unreadable video {path.name}: {exc}") from None
            return                     # a damaged tail: keep what decoded
        if yielded == 0:
            raise DataError(f"unreadable video {path.name}: no frame could be decoded")
    finally:
        container.close()


def write_clip(dest: str | os.PathLike, images: Iterable[Image.Image], fps: float = 10.0, codec: str = "libx264",
               gop: Optional[int] = None, bit_rate: int = 2_000_000) -> Path:
    """Encode ``images`` (all the same size) into a clip at ``dest``, atomically.

    Useful for fixtures and demos; ``gop`` sets the keyframe spacing in frames.
    """
    import av

    dest = Path(dest)
    fmt = {".avi": "avi", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}.get(dest.suffix.lower(), "mp4")
    with atomic_path(dest) as tmp:
        container = av.open(str(tmp), mode="w", format=fmt)
        try:
            stream = None
            for img in images:
                if stream is None:
                    stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
                    stream.width, stream.height = img.width - img.width % 2, img.height - img.height % 2
                    stream.pix_fmt = "yuv420p"
                    stream.bit_rate = bit_rate
                    if gop:
                        stream.codec_context.gop_size = gop
                        if codec == "libx264":       # keyframes exactly every gop frames, not at scene cuts
                            stream.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
                frame = av.VideoFrame.from_image(img.convert("RGB").crop((0, 0, stream.width, stream.height)))
                for packet in stream.encode(frame):
                    container.mux(packet)
            if stream is None:
                raise DataError(f"no frames to write into {dest.name}")
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return dest
