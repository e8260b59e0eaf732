"""DiffAugment (Zhao et al., NeurIPS 2020): differentiable colour, translation and cutout.

Applied to real and generated images alike before the discriminator, so the generator never
learns the augmentations.  Every random draw comes from an explicit ``torch.Generator`` (on the
CPU), which the trainer checkpoints: a resumed run draws the same augmentations.

    x = diff_augment(x, ("color", "translation", "cutout"), generator)
"""
# Adapted from the DiffAugment reference code (mit-han-lab/data-efficient-gans, BSD-2-Clause).
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def _rand(gen: torch.Generator, *shape, device) -> torch.Tensor:
    return torch.rand(*shape, generator=gen).to(device)


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b = x.shape[0]
    x = x + (_rand(gen, b, 1, 1, 1, device=x.device) - 0.5)                        # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(gen, b, 1, 1, 1, device=x.device) * 2) + mean          # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(gen, b, 1, 1, 1, device=x.device) + 0.5) + mean     # contrast


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    b, _, h, w = x.shape
    sx, sy = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sx, sx + 1, (b, 1, 1), generator=gen).to(x.device)
    ty = torch.randint(-sy, sy + 1, (b, 1, 1), generator=gen).to(x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return padded.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=gen).to(x.device)
    oy = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=gen).to(x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policies: Sequence[str], gen: torch.Generator) -> torch.Tensor:
    """``x`` (B, 3, H, W, about -1..1) through each named policy, in order."""
    for name in policies:
        x = POLICIES[name](x, gen)
    return x.contiguous()
