"""Sampling a generator file: images from seeds, truncation, directions; grids; latent-walk videos.

    G = load_generator("gan.safetensors")
    images = generate(G, seed=0, count=16, truncation=0.8)            # image i from seed + i
    paths = sample_to_folder("gan.safetensors", "samples/", GanSampleOptions(count=64))
    interpolation_video("gan.safetensors", "walk.mp4", GanInterpolateOptions(seeds=[0, 5, 9]))

Every PNG carries its parameters (generator, seed, truncation, directions) in a ``trailcam_gan``
text chunk; a folder of samples is a folder of images like any other, so mosaics take it as is.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from trailcam_core.base import BatchReport, ensure, ProgressCallback, TrailcamError
from trailcam_core.gan.config import GanInterpolateOptions, GanSampleOptions
from trailcam_core.gan.data import to_pil
from trailcam_core.gan.pictures import grid, save_png

PNG_KEY = "trailcam_gan"


def latents(seeds: Sequence[int], z_dim: int):
    """One latent per seed, each from its own generator: z(seed) never depends on its neighbours."""
    import torch

    return torch.stack([torch.randn(z_dim, generator=torch.Generator("cpu").manual_seed(int(s))) for s in seeds])


def steer(z, directions: Optional[dict] = None, strengths: Optional[dict[str, float]] = None):
    """Move latents along unit directions: z + sum(strength * direction)."""
    import torch

    if not strengths:
        return z
    directions = directions or {}
    out = z.clone()
    for name, s in strengths.items():
        if not s:
            continue
        if name not in directions:
            raise TrailcamError(f"no direction named {name!r}; fitted: {', '.join(directions) or 'none'}")
        d = torch.as_tensor(np.asarray(directions[name]["vector"], dtype=np.float32))
        if d.numel() != z.shape[1]:
            raise TrailcamError(f"direction {name!r} has {d.numel()} dimensions, the generator's latent has {z.shape[1]}")
        out = out + float(s) * d
    return out


def render(generator, z, batch_size: int = 32, progress: Optional[ProgressCallback] = None) -> list[Image.Image]:
    """Latents -> PIL images, in batches, on the generator's device."""
    import torch

    cb = ensure(progress)
    device = next(generator.parameters()).device
    out: list[Image.Image] = []
    for i in range(0, len(z), batch_size):
        with torch.no_grad():
            out += to_pil(generator(z[i:i + batch_size].to(device)).float())
        cb(min(len(z), i + batch_size), len(z), "generating")
    return out


def generate(generator, seed: int = 0, count: int = 16, truncation: float = 1.0, directions: Optional[dict] = None,
             strengths: Optional[dict[str, float]] = None, progress=None) -> list[Image.Image]:
    """``count`` images, image i from seed + i, latents scaled by ``truncation`` then steered."""
    z = latents(range(seed, seed + count), generator.config.z_dim) * float(truncation)
    return render(generator, steer(z, directions, strengths), progress=progress)


def resolve_generator(generator):
    """A Generator module, or a path to a generator file (loaded on the GPU when there is one)."""
    if isinstance(generator, (str, os.PathLike)):
        import torch

        from trailcam_core.gan.export import load_generator

        return load_generator(generator, "cuda" if torch.cuda.is_available() else "cpu"), Path(generator)
    return generator, None


def sample_to_folder(generator, out_dir, options: Optional[GanSampleOptions] = None,
                     directions: Optional[dict] = None, strengths: Optional[dict[str, float]] = None,
                     progress: Optional[ProgressCallback] = None) -> BatchReport:
    """Write ``count`` PNGs (named by seed) and ``grid.png`` into ``out_dir``."""
    o = options or GanSampleOptions()
    g, path = resolve_generator(generator)
    images = generate(g, o.seed, o.count, o.truncation, directions, strengths, progress)
    out = Path(out_dir)
    rep = BatchReport(stage="gan sample")
    name = path.name if path else "generator"
    for k, img in enumerate(images):
        params = {"generator": name, "seed": o.seed + k, "truncation": o.truncation,
                  "directions": {n: s for n, s in (strengths or {}).items() if s}, "size": g.config.size}
        save_png(img, out / f"seed{o.seed + k:08d}.png", {PNG_KEY: json.dumps(params, sort_keys=True)})
        rep.processed += 1
    if o.grid:
        rep.outputs["grid"] = save_png(grid(images, o.columns), out / "grid.png")
    rep.outputs["folder"] = out
    return rep


def read_parameters(png: str | os.PathLike) -> dict:
    """The parameters a sample PNG was made with."""
    with Image.open(png) as im:
        text = im.text.get(PNG_KEY) if hasattr(im, "text") else None
    if not text:
        raise TrailcamError(f"{png} carries no {PNG_KEY} parameters")
    return json.loads(text)


def slerp(a, b, t: float):
    """Spherical interpolation between two latents (keeps them at a typical length)."""
    import torch

    an, bn = a / a.norm(), b / b.norm()
    omega = torch.acos((an * bn).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    if so.abs() < 1e-6:
        return (1 - t) * a + t * b
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def interpolation_latents(seeds: Sequence[int], z_dim: int, frames: int, loop: bool = True):
    import torch

    if len(seeds) < 2:
        raise TrailcamError(f"an interpolation needs at least 2 seeds, got {list(seeds)}")
    z = latents(seeds, z_dim)
    stops = list(range(len(seeds))) + ([0] if loop else [])
    out = [slerp(z[a], z[b], k / frames) for a, b in zip(stops, stops[1:]) for k in range(frames)]
    if not loop:
        out.append(z[stops[-1]])
    return torch.stack(out)


def write_video(images: Sequence[Image.Image], dest: str | os.PathLike, fps: int = 24) -> Path:
    """Frames -> H.264 mp4 (yuv420p, plays in browsers), written atomically."""
    import av

    from trailcam_core.base import atomic_path

    dest = Path(dest)
    w, h = images[0].size
    w2, h2 = w - w % 2, h - h % 2
    with atomic_path(dest) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
            stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
            if stream.codec_context.name == "libx264":
                stream.options = {"crf": "18", "preset": "medium"}
            for im in images:
                frame = av.VideoFrame.from_ndarray(np.asarray(im.convert("RGB"))[:h2, :w2], format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return dest


def interpolation_video(generator, dest, options: Optional[GanInterpolateOptions] = None,
                        directions: Optional[dict] = None, strengths: Optional[dict[str, float]] = None,
                        progress: Optional[ProgressCallback] = None, upscale: int = 0) -> Path:
    """A latent walk through ``options.seeds`` as an mp4; ``upscale``: frame side (0: at least 256 px)."""
    o = options or GanInterpolateOptions()
    g, _ = resolve_generator(generator)
    z = interpolation_latents(o.seeds, g.config.z_dim, o.frames, o.loop) * float(o.truncation)
    frames = render(g, steer(z, directions, strengths), progress=progress)
    side = upscale or max(256, g.config.size)
    if side != g.config.size:
        frames = [f.resize((side, side), Image.Resampling.NEAREST if side % g.config.size == 0
                           else Image.Resampling.LANCZOS) for f in frames]
    return write_video(frames, dest, o.fps)
