"""Content-keyed thumbnail cache for the culling view: made once, in the background, served small.

A thumbnail is keyed by the XXH3-128 hash of its source file's bytes plus the thumbnail size, so a
copy or a renamed file reuses it and an edited file gets a new one.  Files live under
``<cache>/<key[:2]>/<key>.jpg``; ``index.json`` remembers path + size + mtime -> key (and the frame's
sharpness, used by "best of burst") so a cache hit never re-reads the source.

Decoding takes the crop stage's JPEG fast path (libjpeg-turbo through simplejpeg, DCT-scaled to the
smallest size that still covers the thumbnail, EXIF orientation from APP1, OpenCV shrink, simplejpeg
encode); other formats and odd JPEGs go through Pillow's draft mode.  A file that cannot be decoded
raises :class:`ThumbnailError` with the reason; the face shows a placeholder tile and lists it.

    cache = ThumbnailCache("work/.trailcam-thumbs", size=256)
    data = cache.get("/photos/a.jpg")           # JPEG bytes, made now if missing
    cache.build(paths, progress=cb, workers=2)  # all at once -> BatchReport
"""
from __future__ import annotations

import io
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import xxhash
from PIL import Image, ImageOps

from trailcam_core.base import BatchReport, ensure, ProgressCallback, TrailcamError, write_text
from trailcam_core.crop import jpeg_orientation, upright, write_atomic

THUMB_VERSION = 1
MAX_PIXELS = 200_000_000


class ThumbnailError(TrailcamError):
    """One image could not be made into a thumbnail; the message is the reason."""


def _fast():
    try:
        import cv2
        import simplejpeg
        return simplejpeg, cv2
    except Exception:                                # a broken binary: Pillow does the work
        return None


def _shrink(arr: np.ndarray, side: int, cv2) -> np.ndarray:
    h, w = arr.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return arr
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(arr, size, interpolation=cv2.INTER_AREA)


def sharpness(grey: np.ndarray) -> float:
    """Mean absolute Laplacian of a small grey frame: higher is sharper (used to pick the best of a burst)."""
    g = grey.astype(np.float32)
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(np.abs(lap).mean())


def make_thumbnail(data: bytes, side: int, name: str = "image", quality: int = 82) -> tuple[bytes, float]:
    """Encode a thumbnail (longest side ``side``) of image file bytes -> (JPEG bytes, sharpness)."""
    if not data:
        raise ThumbnailError(f"{name}: empty file (0 bytes)")
    mods = _fast()
    if mods is not None and data[:3] == b"\xff\xd8\xff":
        sj, cv2 = mods
        try:
            h, w, space, _ = sj.decode_jpeg_header(data)
            orient = jpeg_orientation(data)
        except ValueError:
            h = None
        if h is not None and space in ("YCbCr", "RGB", "Gray") and orient is not None:
            if w * h > MAX_PIXELS:
                raise ThumbnailError(f"{name}: {w}x{h} pixels is larger than the {MAX_PIXELS:,} allowed")
            scale = max(1, min(8, max(w, h) // side))
            scale = 1 << (scale.bit_length() - 1)          # libjpeg scales by 1/2, 1/4, 1/8
            try:
                arr = sj.decode_jpeg(data, "RGB", min_height=-(-h // scale), min_width=-(-w // scale), strict=True)
            except ValueError as exc:
                raise ThumbnailError(f"{name}: corrupt or truncated image ({exc})") from None
            if orient != 1:
                arr = upright(arr, orient)
            arr = np.ascontiguousarray(_shrink(arr, side, cv2))
            grey = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
            return sj.encode_jpeg(arr, quality, "RGB", "420"), sharpness(grey)
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ThumbnailError(f"{name}: {im.width}x{im.height} pixels is larger than the {MAX_PIXELS:,} allowed")
            im.draft("RGB", (side, side))
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((side, side))
    except ThumbnailError:
        raise
    except Exception as exc:                         # Pillow raises many kinds for broken files
        raise ThumbnailError(f"{name}: cannot decode image ({exc})") from None
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue(), sharpness(np.asarray(im.convert("L")))


class ThumbnailCache:
    """Thumbnails of one size under ``folder`` (see the module doc). Thread-safe."""

    def __init__(self, folder: str | os.PathLike, size: int = 256):
        if not 16 <= int(size) <= 2048:
            raise TrailcamError(f"thumbnail size must be 16 to 2048 pixels, got {size!r}")
        self.folder = Path(folder)
        self.size = int(size)
        self._lock = threading.Lock()
        self._index_path = self.folder / f"index-{self.size}.json"
        self._index: dict[str, list] = {}
        self._dirty = 0
        try:
            doc = json.loads(self._index_path.read_text())
            if doc.get("version") == THUMB_VERSION:
                self._index = doc.get("files", {})
        except (OSError, ValueError, AttributeError):
            self._index = {}                        # a damaged index only costs re-hashing

    def _file(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.jpg"

    def _lookup(self, path: str, st: os.stat_result) -> Optional[list]:
        hit = self._index.get(path)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit
        return None

    def cached(self, path: str | os.PathLike) -> bool:
        """True when a thumbnail of the file as it is now exists (no reading of the source)."""
        p = str(path)
        try:
            st = os.stat(p)
        except OSError:
            return False
        hit = self._lookup(p, st)
        return bool(hit) and self._file(hit[2]).is_file()

    def sharpness_of(self, path: str | os.PathLike) -> Optional[float]:
        hit = self._index.get(str(path))
        return None if not hit else float(hit[3])

    def get(self, path: str | os.PathLike) -> bytes:
        """JPEG bytes of the thumbnail of ``path`` (made and stored now when missing)."""
        p = str(path)
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise ThumbnailError(f"{p}: file not found (deleted or moved?)") from None
        except OSError as exc:
            raise ThumbnailError(f"{p}: cannot read ({exc})") from None
        hit = self._lookup(p, st)
        if hit:
            try:
                return self._file(hit[2]).read_bytes()
            except OSError:
                pass
        try:
            data = Path(p).read_bytes()
        except OSError as exc:
            raise ThumbnailError(f"{p}: cannot read ({exc})") from None
        key = xxhash.xxh3_128_hexdigest(data) + f"-{self.size}"
        dest = self._file(key)
        sharp = None
        try:
            thumb = dest.read_bytes()
        except OSError:
            thumb, sharp = make_thumbnail(data, self.size, name=p)
            write_atomic(dest, thumb)
        if sharp is None:
            old = next((v for v in self._index.values() if v[2] == key), None)
            sharp = old[3] if old else sharpness(np.asarray(Image.open(io.BytesIO(thumb)).convert("L")))
        with self._lock:
            self._index[p] = [st.st_size, st.st_mtime_ns, key, round(float(sharp), 3)]
            self._dirty += 1
        return thumb

    def flush(self) -> None:
        """Write the path index (atomically) when it changed."""
        with self._lock:
            if not self._dirty:
                return
            doc = json.dumps({"version": THUMB_VERSION, "size": self.size, "files": self._index})
            self._dirty = 0
        write_text(self._index_path, doc)

    def build(self, paths: Iterable[str | os.PathLike], progress: Optional[ProgressCallback] = None,
              workers: int = 0, stop: Optional[threading.Event] = None) -> BatchReport:
        """Make every missing thumbnail -> BatchReport (bad files skipped with their reason).

        Runs ``workers`` threads (0: one per core; libjpeg-turbo and OpenCV release the GIL).
        The index is saved every 500 images, so an interrupted build resumes.
        """
        progress = ensure(progress)
        paths = [str(p) for p in paths]
        report = BatchReport("thumbnails")
        todo = [p for p in paths if not self.cached(p)]
        report.up_to_date = len(paths) - len(todo)
        total = len(todo)
        progress(0, total, "thumbnails")
        workers = workers or os.cpu_count() or 1

        def one(p: str):
            if stop is not None and stop.is_set():
                return p, "stopped"
            try:
                self.get(p)
                return p, None
            except ThumbnailError as exc:
                return p, str(exc)

        done = 0
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for p, err in pool.map(one, todo):
                done += 1
                if err is None:
                    report.processed += 1
                elif err != "stopped":
                    report.skip(p, err)
                if done % 500 == 0:
                    self.flush()
                progress(done, total, os.path.basename(p))
        self.flush()
        return report
