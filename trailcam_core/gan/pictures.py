"""Pictures of a GAN run: image grids, the two-line loss curve, strips and side-by-side pairs."""
from __future__ import annotations

import io
import math
import os
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from trailcam_core.base import atomic_path


def grid(images: Sequence[Image.Image], columns: int = 0, pad: int = 2, background=(24, 24, 24)) -> Image.Image:
    """Images of one size in rows of ``columns`` (0: about square)."""
    if not images:
        raise ValueError("no images for a grid")
    n = len(images)
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    w, h = images[0].size
    out = Image.new("RGB", (cols * w + (cols + 1) * pad, rows * h + (rows + 1) * pad), background)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out.paste(im.convert("RGB"), (pad + c * (w + pad), pad + r * (h + pad)))
    return out


def labelled_rows(rows: Sequence[tuple[str, Sequence[Image.Image]]], label_width: int = 150,
                  pad: int = 2) -> Image.Image:
    """One row of images per (label, images), the label written at the left."""
    strips = [grid(list(ims), columns=len(ims), pad=pad) for _, ims in rows]
    w = label_width + max(s.width for s in strips)
    out = Image.new("RGB", (w, sum(s.height for s in strips)), (24, 24, 24))
    y = 0
    draw = ImageDraw.Draw(out)
    for (label, _), s in zip(rows, strips):
        out.paste(s, (label_width, y))
        for k, line in enumerate(str(label).split("\n")[:4]):
            draw.text((6, y + 6 + 12 * k), line, fill=(230, 230, 230))
        y += s.height
    return out


def save_png(img: Image.Image, dest: str | os.PathLike, text: Optional[dict[str, str]] = None):
    """Write a PNG atomically, with optional text chunks (parameters)."""
    from PIL.PngImagePlugin import PngInfo

    info = None
    if text:
        info = PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
    with atomic_path(dest) as tmp:
        img.save(tmp, format="PNG", pnginfo=info)
    return dest


def curve(series: dict[str, Sequence[float]], title: str, ylabel: str = "loss", xs: Optional[Sequence[float]] = None,
          xlabel: str = "step", hlines: Optional[dict[str, float]] = None, out_png=None) -> Image.Image:
    """Lines (with a moving average for long noisy series) as a PIL image; ``hlines``: labelled levels."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.2), dpi=100)
    ax = fig.add_subplot()
    colours = ["#1f4e79", "#c0504d", "#4f8a3c", "#8064a2"]
    for (name, ys), colour in zip(series.items(), colours):
        ys = np.asarray([float(v) for v in ys])
        if not len(ys):
            continue
        x = np.asarray(xs, dtype=float) if xs is not None else np.arange(1, len(ys) + 1)
        k = max(1, len(ys) // 25) if xs is None else 1
        if k > 1:
            ax.plot(x, ys, color=colour, alpha=0.25, linewidth=0.8)
            kernel = np.ones(k) / k
            smooth = np.convolve(np.pad(ys, (k - 1, 0), mode="edge"), kernel, mode="valid")
            ax.plot(x, smooth, color=colour, linewidth=1.8, label=f"{name} (mean of {k})")
        else:
            ax.plot(x, ys, color=colour, linewidth=1.8, marker="o" if xs is not None else None, label=name)
    for (name, y), colour in zip((hlines or {}).items(), ["#7f7f7f", "#000000", "#e46c0a"]):
        ax.axhline(y, color=colour, linestyle="--", linewidth=1, label=name)
    ax.legend(fontsize=8, loc="best")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    if out_png is not None:
        save_png(img, out_png)
    return img
