"""Node widgets built from a stage's options dataclass (``trailcam_core.base.options.describe``), and back.

The CLI flags and the Gradio controls read the same dataclasses, so a new option is one line in the core.
"""
from __future__ import annotations

import math
import typing
from typing import Any, Iterable, Optional

from comfy_api.latest import io

from trailcam_core.base import describe, from_mapping, parse_list



def _optional_names(cls: type) -> set[str]:
    hints = typing.get_type_hints(cls)
    return {n for n, tp in hints.items() if type(None) in typing.get_args(tp)}


def _float_step(info) -> float:
    if info.step:
        return float(info.step)
    ref = abs(info.default) if isinstance(info.default, (int, float)) and info.default else 1.0
    return float(10 ** math.floor(math.log10(ref)) / 100) if ref < 1 else 0.01


_INT_LIMIT = 2**31 - 1


def option_inputs(cls: type, skip: Iterable[str] = (), overrides: Optional[dict[str, dict]] = None) -> list:
    """One widget per UI option of the options dataclass ``cls`` (types, defaults, limits, help).

    Lists are comma-separated text; an optional number (default None) is 0 meaning "none";
    ``overrides`` replaces keyword arguments of a widget (e.g. a default that suits the graph).
    """
    skip, overrides = set(skip), overrides or {}
    widgets = []
    for info in describe(cls):
        if not info.ui or info.name in skip:
            continue
        tip = info.help
        kw: dict[str, Any] = {"tooltip": tip}
        if info.kind is bool:
            make, kw["default"] = io.Boolean.Input, bool(info.default)
        elif info.kind in (int, float):
            default = info.default
            if default is None:
                default, kw["tooltip"] = 0, tip + " (0: none)"
            # explicit limits: the frontend otherwise clamps numbers to 0..2048
            big = _INT_LIMIT if info.kind is int else 1e9
            low = info.min if info.min is not None else (0 if default >= 0 else -big)
            kw.update(default=default, min=low, max=info.max if info.max is not None else big)
            if info.kind is float:
                make, kw["step"] = io.Float.Input, _float_step(info)
            else:
                make = io.Int.Input
                if info.step:
                    kw["step"] = int(info.step)
                if info.name == "seed":   # a fixed seed: re-queueing must not silently change (and redo) the job
                    kw["control_after_generate"] = False
        elif info.kind is list:
            make = io.String.Input
            kw["default"] = ", ".join(str(v) for v in (info.default or []))
            if info.choices:
                kw["tooltip"] = f"{tip} (comma-separated; any of: {', '.join(map(str, info.choices))})"
            else:
                kw["tooltip"] = tip + " (comma-separated)"
        elif info.choices:
            make = io.Combo.Input
            kw.update(options=[str(c) for c in info.choices], default=str(info.default))
        else:
            make = io.String.Input
            kw["default"] = "" if info.default is None else str(info.default)
        kw = {k: v for k, v in kw.items() if v is not None}
        kw.update(overrides.get(info.name, {}))
        widgets.append(make(info.name, **kw))
    return widgets


def options_from(cls: type, values: dict, **fixed: Any):
    """Build the options dataclass from a node's inputs (the widgets ``option_inputs`` made)."""
    optional = _optional_names(cls)
    kinds = {info.name: info for info in describe(cls)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        info = kinds.get(name)
        if info is None or not info.ui:
            continue
        if info.kind is list:
            value = parse_list(value, info.item_kind)
        elif name in optional and info.default is None and value in (0, 0.0, ""):
            value = None
        out[name] = value
    out.update(fixed)
    return from_mapping(cls, out)
