"""FastGAN-style networks (Liu et al., ICLR 2021), compact and on plain PyTorch.

Generator: a latent z -> 4x4 -> upsampling blocks (nearest x2, 3x3 conv, per-sample norm, GLU) up
to the training side, with skip-layer excitation (SLE): the 4/8/16/32 px features gate the
channels of the 16x larger ones.  Per-sample GroupNorm instead of FastGAN's BatchNorm keeps a
sample independent of the batch it is drawn in (sampling is then reproducible image by image).

Discriminator: spectral-normalised strided convolutions down to 8x8, a patch logit head, and a
small decoder that reconstructs the (down-scaled) input from the 8x8 features and a random
quarter from the 16x16 ones: FastGAN's self-supervision, which keeps D from memorising 100 images.

    G = Generator(GanConfig(size=64, ngf=16)); imgs = G(torch.randn(4, G.config.z_dim))   # -1..1
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

from trailcam_core.gan.config import GanConfig

RECON_SIDE = 64          # side of the discriminator's reconstructions (and of their targets)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, min(32, channels // 4)), channels)


class UpBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out * 2, 3, 1, 1, bias=False)
        self.norm = _norm(c_out * 2)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.glu(self.norm(self.conv(x)), dim=1)


class SLE(nn.Module):
    """Skip-layer excitation: a small feature map gates the channels of a large one."""

    def __init__(self, c_small: int, c_big: int):
        super().__init__()
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(c_small, c_big, 4, 1, 0, bias=False), nn.SiLU(),
                                 nn.Conv2d(c_big, c_big, 1, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, small, big):
        return big * self.net(small)


class Generator(nn.Module):
    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        ch = config.g_channels
        self.init = nn.Sequential(nn.ConvTranspose2d(config.z_dim, ch[4] * 2, 4, 1, 0, bias=False),
                                  _norm(ch[4] * 2), nn.GLU(dim=1))
        self.resolutions = [4 * 2 ** k for k in range(1, int(math.log2(config.size // 4)) + 1)]
        self.ups = nn.ModuleDict({str(r): UpBlock(ch[r // 2], ch[r]) for r in self.resolutions})
        self.sles = nn.ModuleDict({str(r * 16): SLE(ch[r], ch[r * 16]) for r in (4, 8, 16, 32)
                                   if r * 16 <= config.size})
        self.to_rgb = nn.Conv2d(ch[config.size], 3, 3, 1, 1)

    def forward(self, z):
        feats = {4: self.init(z[:, :, None, None])}
        x = feats[4]
        for r in self.resolutions:
            x = self.ups[str(r)](x)
            if str(r) in self.sles:
                x = self.sles[str(r)](feats[r // 16], x)
            if r <= 32:
                feats[r] = x
        return torch.tanh(self.to_rgb(x))


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)), nn.LeakyReLU(0.2, inplace=True))


class Decoder(nn.Module):
    """8x8 features -> a RECON_SIDE x RECON_SIDE image (the discriminator's self-supervision)."""

    def __init__(self, c_in: int, width: int = 64):
        super().__init__()
        layers, c = [], c_in
        side = 8
        while side < RECON_SIDE:
            c_out = max(16, width // max(1, side // 16))
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c_out * 2, 3, 1, 1, bias=False),
                       _norm(c_out * 2), nn.GLU(dim=1)]
            c, side = c_out, side * 2
        layers += [nn.Conv2d(c, 3, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Discriminator(nn.Module):
    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        ch = config.d_channels
        rgb = min(ch[config.size], 64)
        self.from_rgb = nn.Sequential(spectral_norm(nn.Conv2d(3, rgb, 3, 1, 1, bias=False)),
                                      nn.LeakyReLU(0.2, inplace=True))
        downs, c, r = [], rgb, config.size
        self.side_index = {}
        while r > 8:
            downs.append(_down(c, ch[r // 2]))
            c, r = ch[r // 2], r // 2
            self.side_index[r] = len(downs) - 1
        self.downs = nn.ModuleList(downs)
        self.head = nn.Sequential(spectral_norm(nn.Conv2d(ch[8], ch[8], 1, 1, 0, bias=False)),
                                  nn.LeakyReLU(0.2, inplace=True), spectral_norm(nn.Conv2d(ch[8], 1, 4, 1, 0)))
        self.decoder_big = Decoder(ch[8], config.ndf)
        self.decoder_part = Decoder(ch[16], config.ndf)

    def forward(self, x, quarter=None):
        """Patch logits (B,); with ``quarter`` (B,) in 0..3 also the reconstructions (whole, quarter)."""
        h = self.from_rgb(x)
        feats = {}
        for i, block in enumerate(self.downs):
            h = block(h)
            feats[h.shape[-1]] = h
        logits = self.head(h).mean(dim=(1, 2, 3))
        if quarter is None:
            return logits
        f16 = feats[16]
        part = torch.stack([quarter_of(f, int(q)) for f, q in zip(f16, quarter)])
        return logits, self.decoder_big(h), self.decoder_part(part)


def quarter_of(x: torch.Tensor, q: int) -> torch.Tensor:
    """The top-left (0), top-right (1), bottom-left (2) or bottom-right (3) quarter of (..., H, W)."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    return x[..., (q // 2) * h:(q // 2 + 1) * h, (q % 2) * w:(q % 2 + 1) * w]


def recon_targets(real: torch.Tensor, quarter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What the decoders should reproduce: the image and the chosen quarter, each at RECON_SIDE."""
    whole = F.interpolate(real, size=(RECON_SIDE, RECON_SIDE), mode="area")
    parts = torch.stack([quarter_of(r, int(q)) for r, q in zip(real, quarter)])
    return whole, F.interpolate(parts, size=(RECON_SIDE, RECON_SIDE), mode="area")


def init_weights(module: nn.Module) -> None:
    """FastGAN's initialisation: N(0, 0.02) convolutions, N(1, 0.02) norms."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            w = m.weight_orig if hasattr(m, "weight_orig") else m.weight
            nn.init.normal_(w, 0.0, 0.02)
        elif isinstance(m, nn.GroupNorm):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_models(config: GanConfig, seed: int = 0) -> tuple[Generator, Discriminator]:
    """G and D with the seeded initial weights (independent of the global RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g, d = Generator(config), Discriminator(config)
        init_weights(g)
        init_weights(d)
    return g, d


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
