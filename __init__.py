"""ComfyUI entry point: cloning this repository into ``ComfyUI/custom_nodes/`` installs the node pack.

ComfyUI imports this file as a package and calls :func:`comfy_entrypoint` (the V3 node API); the
nodes live in ``comfy_nodes/`` and call the core in ``trailcam_core/``.  When the pack is not
pip-installed, its own folder is put on ``sys.path`` so those two packages import from here.
"""
from __future__ import annotations

import importlib.util
import os
import sys

_PACK_DIR = os.path.dirname(os.path.abspath(__file__))


def _ensure_importable() -> None:
    """Make ``trailcam_core`` / ``comfy_nodes`` import from this checkout unless they already do."""
    for name in ("trailcam_core", "comfy_nodes"):
        spec = importlib.util.find_spec(name)
        here = os.path.join(_PACK_DIR, name, "__init__.py")
        if spec is None or not spec.origin or os.path.realpath(spec.origin) != os.path.realpath(here):
            # Not installed, another version, or a stale editable install: the copy beside this file wins.
            if _PACK_DIR not in sys.path:
                sys.path.insert(0, _PACK_DIR)
            return


_ensure_importable()

# Only ComfyUI (which has imported its ``folder_paths`` before loading custom nodes) gets the
# nodes; other importers of this folder as a package (pytest collecting the checkout, a linter)
# must not need ComfyUI installed.
if "folder_paths" in sys.modules:
    from comfy_nodes import NODES, TrailcamExtension, comfy_entrypoint  # noqa: E402

    __all__ = ["comfy_entrypoint", "TrailcamExtension", "NODES"]
