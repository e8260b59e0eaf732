"""Path confinement: nothing is read or written outside the folders the user named."""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from trailcam_core.base.errors import UnsafePathError


def safe_relative(name: str, what: str = "path") -> PurePosixPath:
    """Check that ``name`` is a relative path with no ``..`` and return it in POSIX form.

    Windows separators are accepted (``a\\b.jpg`` -> ``a/b.jpg``).  Raises UnsafePathError
    naming ``what`` for absolute paths, drive letters and parent references.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnsafePathError(f"{what} is empty")
    text = name.replace("\\", "/")
    if text.startswith("/") or PureWindowsPath(name).drive or PureWindowsPath(name).is_absolute():
        raise UnsafePathError(f"{what} {name!r} is absolute; only paths relative to the folder are allowed")
    parts = PurePosixPath(text).parts
    if any(p == ".." for p in parts):
        raise UnsafePathError(f"{what} {name!r} contains '..'; it would reach outside the folder")
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


def confine(root: str | os.PathLike, name: str, what: str = "path") -> Path:
    """Resolve ``name`` under ``root`` and make sure the result (symlinks followed) stays inside.

    Example: ``confine("/data/cct", "cat/1.jpg")`` -> ``/data/cct/cat/1.jpg``.
    """
    rel = safe_relative(name, what)
    root_real = Path(os.path.realpath(root))
    target = Path(os.path.realpath(root_real / rel))
    if target != root_real and root_real not in target.parents:
        raise UnsafePathError(f"{what} {name!r} resolves outside {root_real}")
    return target


def is_within(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True when ``path`` (symlinks followed) lies inside ``root``."""
    p, r = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return p == r or r in p.parents
