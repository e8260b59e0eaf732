"""Describe a stage's parameters once; the CLI, ComfyUI and Gradio read them from here.

Each stage declares a dataclass of options whose fields are made with :func:`option`::

    @dataclass
    class CropOptions:
        size: int = option(512, "Output side in pixels", min=16, max=4096)
        mode: str = option("center", "How the square is chosen", choices=("center", "bbox"))

The faces then build their controls from :func:`describe` (name, type, default, help, choices,
min, max), so a new option is one line in the core, not three in the faces.  Every options class
derives from :class:`Options`, so the declared choices and bounds are checked once, generically,
whenever an options object is built (as scikit-learn checks ``_parameter_constraints``), and a
face that parses a typed list (``"a, b"``) uses :func:`parse_list`.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence
from trailcam_core.base.errors import TrailcamError


def option(default: Any, help: str, *, choices: Optional[Sequence[Any]] = None, min: Optional[float] = None,
           max: Optional[float] = None, step: Optional[float] = None, cli: bool = True, ui: bool = True) -> Any:
    """A dataclass field carrying its documentation. Lists/dicts defaults are copied per instance."""
    meta = {"help": help, "choices": tuple(choices) if choices else None, "min": min, "max": max, "step": step,
            "cli": cli, "ui": ui}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Options:
    """Base of every stage's options dataclass: building one checks each field against its declared
    ``choices`` / ``min`` / ``max`` (:func:`check_options`).  A subclass that needs more checks
    defines ``__post_init__`` and calls ``super().__post_init__()`` first.  ``STAGE`` names the
    stage in error messages ("crop option size=8: ...")."""

    STAGE = ""

    def __post_init__(self) -> None:
        check_options(self)


def check_options(options: Any) -> None:
    """Raise :class:`TrailcamError` naming the first option whose value is outside its declared
    choices or bounds, or of the wrong kind (a list where one value belongs, text for a number)."""

    cls = type(options)
    stage = getattr(cls, "STAGE", "") or cls.__name__
    for info in describe(cls):
        value = getattr(options, info.name)
        what = f"{stage} option {info.name}={value!r}"
        if value is None:
            continue
        values = value if info.kind is list else [value]
        if info.kind is list and not isinstance(value, (list, tuple)):
            raise TrailcamError(f"{what}: expected a list")
        if info.kind is not list and isinstance(value, (list, tuple, dict, set)):
            raise TrailcamError(f"{what}: expected one value, not a list")
        for v in values:
            if info.choices and v not in info.choices:
                raise TrailcamError(f"{what}: choose one of {', '.join(map(str, info.choices))}")
            if info.min is None and info.max is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TrailcamError(f"{what}: expected a number")
            if info.min is not None and v < info.min or info.max is not None and v > info.max:
                low = "" if info.min is None else f"{info.min:g}"
                high = "" if info.max is None else f"{info.max:g}"
                bound = f"{low} to {high}" if low and high else (f"at least {low}" if low else f"at most {high}")
                raise TrailcamError(f"{what}: expected {bound}")


def parse_list(text: Any, item_kind: type = str, separator: str = ",") -> list:
    """A list option from a face's text box: ``"a, b,, c"`` -> ``["a", "b", "c"]`` (a list passes
    through); items converted to ``item_kind``, a bad item raising TrailcamError naming it."""

    items = list(text) if isinstance(text, (list, tuple)) else [
        s.strip() for s in str(text or "").split(separator) if s.strip()]
    try:
        return [item_kind(v) if item_kind in (int, float) and not isinstance(v, item_kind) else v for v in items]
    except ValueError as exc:
        raise TrailcamError(f"{text!r}: expected {item_kind.__name__} values separated by {separator!r} ({exc})")


@dataclass(frozen=True)
class OptionInfo:
    name: str
    kind: type           # bool, int, float, str or list
    default: Any
    help: str
    choices: Optional[tuple]
    min: Optional[float]
    max: Optional[float]
    step: Optional[float]
    cli: bool
    ui: bool
    item_kind: type = str  # element type for list options


def _base_kind(tp: Any) -> tuple[type, type]:
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        return _base_kind(args[0])
    if origin in (list, tuple, Sequence, typing.List) or tp in (list, tuple):
        item = args[0] if args else str
        return list, item if isinstance(item, type) else str
    if isinstance(tp, type):
        return tp, str
    return str, str


def describe(cls: type) -> list[OptionInfo]:
    """List the documented options of an options dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        kind, item = _base_kind(hints.get(f.name, str))
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        m = f.metadata
        out.append(OptionInfo(f.name, kind, default, m["help"], m["choices"], m["min"], m["max"], m["step"],
                              m["cli"], m["ui"], item))
    return out


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: Iterable[str] = ()) -> None:
    """Add one ``--flag`` per option of ``cls`` to an argparse parser (dest = field name)."""
    skip = set(skip)
    for info in describe(cls):
        if not info.cli or info.name in skip:
            continue
        flag = "--" + info.name.replace("_", "-")
        # argparse formats help with %: a literal % ("20% slower") must be doubled to render
        helptext = f"{info.help} (default: {info.default!r})".replace("%", "%%")
        if info.kind is bool:
            parser.add_argument(flag, dest=info.name, action=argparse.BooleanOptionalAction, default=None,
                                help=helptext)
        elif info.kind is list:
            parser.add_argument(flag, dest=info.name, nargs="*", type=info.item_kind, default=None,
                                choices=info.choices, help=helptext)
        else:
            parser.add_argument(flag, dest=info.name, type=info.kind, default=None, choices=info.choices,
                                help=helptext)


def from_namespace(cls: type, ns: argparse.Namespace, **overrides: Any):
    """Build ``cls`` from parsed flags: unset flags keep the dataclass defaults."""
    values = {}
    for info in describe(cls):
        v = getattr(ns, info.name, None)
        if v is not None:
            values[info.name] = v
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)


def from_mapping(cls: type, values: dict, strict: bool = True):
    """Build ``cls`` from a dict (a node's inputs, a Gradio form). Unknown keys are an error if strict."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if strict and unknown:
        raise TrailcamError(f"unknown option(s) for {cls.__name__}: {', '.join(sorted(unknown))}")
    return cls(**{k: v for k, v in values.items() if k in names})
