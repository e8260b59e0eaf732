"""Download just a subset's images from LILA's public per-image URLs.

Each image lives at ``<base_url><file_name>``; the default base URL is LILA's Google Cloud bucket
(``LILA_GCS``), the Azure mirror is ``LILA_AZURE``.  Downloads run in parallel threads and:

- write to ``.<name>.part`` beside the destination, then rename, so a finished name is always a
  complete file, and an existing file is never downloaded again (no request is made for it);
- resume an interrupted ``.part`` with an HTTP Range request (a server that ignores Range sends
  the whole file and the part is restarted);
- verify the size against Content-Length / Content-Range and retry a short read (a dropped
  connection) from where it stopped, up to ``retries`` times;
- skip and report what cannot be had (HTTP 404, too many failures), never aborting the batch.

Example: ``fetch_images(subset, "cct_images", FetchOptions(workers=16), progress=cb)``.
"""
from __future__ import annotations

import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from trailcam_core.base import (BatchReport, Cancelled, confine, ensure, option, Options, TrailcamError,
                                UnsafePathError)

LILA_GCS = "https://storage.googleapis.com/public-datasets-lila/caltech-unzipped/cct_images/"
LILA_AZURE = "https://lilawildlife.blob.core.windows.net/lila-wildlife/caltech-unzipped/cct_images/"
CHUNK = 1 << 16
USER_AGENT = "trailcam-curation (+https://lila.science)"


@dataclass
class FetchOptions(Options):
    STAGE = "fetch"

    base_url: str = option(LILA_GCS, "URL prefix each file_name is appended to (LILA's GCS bucket by default)")
    workers: int = option(8, "Parallel downloads", min=1, max=64)
    retries: int = option(3, "Extra attempts for a failed or short download (resuming where it stopped)",
                          min=0, max=20)
    timeout: float = option(60.0, "Seconds to wait for the server before an attempt fails", min=1, max=600)


class _Fatal(Exception):
    """An error not worth retrying (404, bad URL)."""


def file_url(base_url: str, file_name: str) -> str:
    """``base_url`` + the URL-quoted POSIX ``file_name``."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    return base + urllib.parse.quote(file_name.replace("\\", "/"))


def _total_from_headers(status: int, headers, offset: int) -> Optional[int]:
    if status == 206:
        m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != offset:
            return None
        return int(m.group(3)) if m.group(3) != "*" else None
    length = headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def download(url: str, dest: Path, retries: int = 3, timeout: float = 60.0) -> str:
    """Download ``url`` to ``dest`` (resumable, size-verified). Returns "downloaded" or "up to date".

    Raises TrailcamError with the reason when the file cannot be had.
    """
    if dest.is_file():
        return "up to date"
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise TrailcamError(f"{url}: only http and https URLs are fetched")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    last_error = "no attempt made"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(0.2 * 2 ** (attempt - 1), 5.0))
        try:
            if _attempt(url, part, timeout):
                os.replace(part, dest)
                return "downloaded"
            last_error = "connection closed before the whole file arrived"
        except _Fatal as exc:
            raise TrailcamError(str(exc)) from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            last_error = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
    raise TrailcamError(f"{url}: gave up after {retries + 1} attempt(s): {last_error}")


def _attempt(url: str, part: Path, timeout: float) -> bool:
    """One request; append to ``part``. True when the part is complete and verified."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:                      # the part may already be whole
            m = re.search(r"/(\d+)", exc.headers.get("Content-Range", "") or "")
            exc.close()
            if m and int(m.group(1)) == offset:
                return True
            part.unlink(missing_ok=True)                    # stale part: start again
            return False
        exc.close()
        if exc.code in (404, 410, 401, 403):
            raise _Fatal(f"{url}: HTTP {exc.code} {exc.reason}") from None
        raise
    with resp:
        status = resp.status
        if status == 200 and offset:                        # Range ignored: restart from zero
            offset = 0
        total = _total_from_headers(status, resp.headers, offset)
        if status == 206 and total is None:
            part.unlink(missing_ok=True)
            return False
        with open(part, "ab" if offset else "wb") as fh:
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except (ConnectionError, TimeoutError, OSError, ValueError, http.client.HTTPException):
                    total = -1 if total is None else total      # a cut stream is never "complete"
                    break                                   # keep what arrived; resume next attempt
                if not chunk:
                    break
                fh.write(chunk)
    size = part.stat().st_size
    if total == -1:                                         # cut short, no length known: try again
        return False
    if total is None:                                       # no length announced: trust a clean end
        return size > 0
    if size > total:
        part.unlink(missing_ok=True)
        return False
    return size == total


def fetch_images(images, dest_root: str | os.PathLike, options: Optional[FetchOptions] = None,
                 progress=None) -> BatchReport:
    """Download the files of ``images`` (a Subset, Dataset, DataFrame with ``file_name`` or an
    iterable of file names) under ``dest_root``.  Returns a BatchReport: processed = downloaded,
    up_to_date = already complete, skipped = (file_name, reason)."""
    o = options or FetchOptions()
    names = _file_names(images)
    root = Path(dest_root)
    root.mkdir(parents=True, exist_ok=True)
    report = BatchReport("fetch")
    cb = ensure(progress)
    jobs: dict[str, Path] = {}
    for name in dict.fromkeys(names):
        try:
            jobs[name] = confine(root, name, what="file_name")
        except UnsafePathError as exc:
            report.skip(name, str(exc))
    total, done = len(jobs), 0
    cb(0, total, "starting")
    pending = {}
    with ThreadPoolExecutor(max_workers=max(1, int(o.workers))) as pool:
        for name, dest in jobs.items():
            if dest.is_file():                              # never touch a complete file
                report.up_to_date += 1
                done += 1
                continue
            pending[pool.submit(download, file_url(o.base_url, name), dest, o.retries, o.timeout)] = name
        try:
            cb(done, total, "")
            for fut in as_completed(pending):
                name = pending[fut]
                try:
                    result = fut.result()
                    if result == "downloaded":
                        report.processed += 1
                    else:
                        report.up_to_date += 1
                except TrailcamError as exc:
                    report.skip(name, str(exc))
                except Exception as exc:  # one bad file never aborts the batch
                    report.skip(name, f"{type(exc).__name__}: {exc}")
                done += 1
                cb(done, total, name)
        except Cancelled:
            for fut in pending:
                fut.cancel()
            raise
    report.outputs["dest"] = str(root)
    return report


def _file_names(images) -> list[str]:
    import pandas as pd

    if hasattr(images, "images") and isinstance(getattr(images, "images"), pd.DataFrame):
        images = images.images
    if isinstance(images, pd.DataFrame):
        if "file_name" not in images:
            raise TrailcamError("fetch needs a table with a file_name column")
        return [str(x) for x in images["file_name"]]
    if isinstance(images, (str, bytes)):
        raise TrailcamError("fetch takes a Subset, a Dataset, a table or a list of file names")
    return [getattr(x, "file_name", x) for x in images]  # ImageRecords or names


def missing_files(images, root: str | os.PathLike) -> list[str]:
    """The file_names of ``images`` with no complete file under ``root`` (what fetch would get)."""
    root = Path(root)
    out = []
    for name in _file_names(images):
        try:
            if not confine(root, name).is_file():
                out.append(name)
        except UnsafePathError:
            out.append(name)
    return out


__all__ = ["FetchOptions", "LILA_AZURE", "LILA_GCS", "download", "fetch_images", "file_url", "missing_files"]
