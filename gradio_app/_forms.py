"""Gradio controls built from the core's option dataclasses (``trailcam_core.base.options.describe``)."""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import gradio as gr

from trailcam_core.base import describe, from_mapping, OptionInfo, parse_list, TrailcamError


def label_of(name: str) -> str:
    return name.replace("_", " ").capitalize()


def control(info: OptionInfo, **override: Any) -> gr.components.Component:
    """One Gradio control for one documented option (type, default, help, choices, bounds)."""
    kw: dict[str, Any] = dict(label=label_of(info.name), info=info.help)
    value = override.pop("value", info.default)
    kw.update(override)
    if info.kind is bool:
        return gr.Checkbox(value=bool(value), **kw)
    if info.kind is list:
        if info.choices or "choices" in kw:       # a list picked from known values (fixed or filled later)
            kw.setdefault("choices", list(info.choices or ()))
            return gr.Dropdown(value=list(value or []), multiselect=True, **kw)
        return gr.Textbox(value=value if isinstance(value, str) else ", ".join(str(v) for v in (value or [])), **kw)
    if info.choices:
        return gr.Dropdown(choices=list(info.choices), value=value, **kw)
    if info.kind in (int, float):
        # A slider only where it can hold every useful value: a modest integer range, or a float
        # option that names its step.  Learning rates, seeds and step counts get a number box.
        bounded = info.min is not None and info.max is not None
        if bounded and ((info.kind is int and info.max - info.min <= 10_000) or
                        (info.kind is float and info.step)):
            return gr.Slider(minimum=info.min, maximum=info.max, step=info.step or 1, value=value, **kw)
        return gr.Number(value=value, precision=0 if info.kind is int else None, minimum=info.min,
                         maximum=info.max, **kw)
    return gr.Textbox(value="" if value is None else str(value), **kw)


class OptionForm:
    """Controls for an options dataclass, built from ``describe(cls)``; ``parse`` turns values back."""

    def __init__(self, cls: type, skip: Iterable[str] = (), overrides: Optional[dict] = None,
                 only: Optional[Sequence[str]] = None, main: Optional[Sequence[str]] = None,
                 more_label: str = "More options", prefix: str = "", defer_more: bool = False):
        """``only``: just these options; ``main``: these shown, the others in a closed accordion
        (built at once, or where the tab calls :meth:`build_more` with ``defer_more``);
        ``prefix``: put before each parameter name (two forms with a same-named option in one event)."""
        self.cls = cls
        self.prefix = prefix
        overrides = overrides or {}
        skip = set(skip)
        infos = [i for i in describe(cls) if i.ui and i.name not in skip]
        if only is not None:
            infos = [i for i in infos if i.name in only]
        first = [i for i in infos if main is None or i.name in main]
        rest = [i for i in infos if main is not None and i.name not in main]
        self.infos = first + rest
        # list options typed as text: comma-separated, or one per line with overrides {"separator": "\n"}
        self.separators = {n: o.pop("separator") for n, o in
                           ((n, dict(o)) for n, o in overrides.items()) if "separator" in o}
        overrides = {n: {k: v for k, v in o.items() if k != "separator"} for n, o in overrides.items()}
        for n, sep in self.separators.items():
            overrides[n].setdefault("lines", 3)
            if "value" in overrides[n] and isinstance(overrides[n]["value"], list):
                overrides[n]["value"] = sep.join(overrides[n]["value"])

        def make(i):
            o = dict(overrides.get(i.name, {}))
            o.setdefault("elem_id", f"{cls.__name__}-{i.name}")     # stable handles for browser tests and CSS
            if i.name in self.separators and "value" not in o:
                o["value"] = self.separators[i.name].join(str(v) for v in (i.default or []))
            return control(i, **o)

        self.components = [make(i) for i in first]
        self._rest, self._make, self._more_label = rest, make, more_label
        if not defer_more:
            self.build_more()
        self.names = [prefix + i.name for i in self.infos]

    def build_more(self) -> None:
        """Build the accordion of the less common options here (once)."""
        if self._rest:
            with gr.Accordion(self._more_label, open=False):
                self.components += [self._make(i) for i in self._rest]
            self._rest = []

    def values(self, kwargs: dict) -> dict:
        """Pick this form's values out of an event's keyword values and convert them to option types."""
        out = {}
        for info in self.infos:
            v = kwargs.get(self.prefix + info.name)
            if info.kind is list and isinstance(v, str):
                v = parse_list(v, info.item_kind, self.separators.get(info.name, ","))
            elif info.kind is int and v is not None and v != "":
                v = int(round(float(v)))
            elif info.kind is float and v is not None and v != "":
                v = float(v)
            elif info.kind is str and v is None:
                v = ""
            if v is None or v == "" and info.kind in (int, float):
                continue        # left empty: the dataclass default applies
            out[info.name] = v
        return out

    def parse(self, kwargs: dict, **extra: Any):
        """Build the options dataclass; bad values raise TrailcamError naming the option."""
        values = self.values(kwargs)
        values.update(extra)
        try:
            return from_mapping(self.cls, values, strict=False)
        except (TypeError, ValueError) as exc:
            raise TrailcamError(f"invalid {self.cls.__name__} value: {exc}") from exc
