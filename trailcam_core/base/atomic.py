"""One helper for every file the project writes: temp file in the same folder, then rename.

An interrupted run therefore never leaves a half-written JSON, image or model file behind:
the destination either holds its old content or the complete new one.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it is renamed onto ``dest``.

    ``suffix`` defaults to dest's own suffix so writers that pick a format from the
    extension (Pillow, matplotlib, pandas) still work.  Example::

        with atomic_path("out/chart.png") as tmp:
            fig.savefig(tmp)
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix if suffix is not None else dest.suffix + ".part",
                               dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            # mkstemp makes the file private (0600); give it the mode a plain open() would have.
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_bytes(dest: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``dest`` atomically (fsync before rename) and return the path."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(dest)


def write_text(dest: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``dest`` atomically."""
    return write_bytes(dest, text.encode(encoding))


def write_json(dest: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Serialise ``obj`` as JSON (UTF-8, non-ASCII kept) and write it atomically."""
    return write_text(dest, json.dumps(obj, indent=indent, ensure_ascii=False, default=str))


PLACE_MODES = ("copy", "hardlink", "symlink")


def place_file(src: str | os.PathLike, dest: str | os.PathLike, mode: str = "copy") -> Path:
    """Put ``src`` at ``dest`` by copy (with its times), hard link or symbolic link, atomically.

    The original is never moved; an existing ``dest`` is replaced in one rename.
    """
    src, dest = Path(src), Path(dest)
    if mode not in PLACE_MODES:
        raise ValueError(f"mode must be one of {', '.join(PLACE_MODES)}, not {mode!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if mode == "copy":
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
            shutil.copystat(src, tmp)
        return dest
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    if mode == "hardlink":
        os.link(src, tmp)
    else:
        os.symlink(str(src), tmp)
    os.replace(tmp, dest)
    return dest


def is_placed(src: str | os.PathLike, dest: str | os.PathLike, mode: str = "copy") -> bool:
    """True when ``dest`` already holds ``src`` as ``place_file`` would put it (so a rerun skips it)."""
    src, dest = Path(src), Path(dest)
    try:
        if mode == "symlink":
            return dest.is_symlink() and os.readlink(dest) == str(src)
        if dest.is_symlink() or not dest.is_file():
            return False
        if mode == "hardlink":
            return os.path.samefile(src, dest)
        a, b = src.stat(), dest.stat()
        return a.st_size == b.st_size and int(a.st_mtime) == int(b.st_mtime)
    except OSError:
        return False
