"""SN-PatchGAN discriminator: strided 5x5 (or 4x4) convolutions with spectral normalisation,
one logit per overlapping patch; returns the logits and the intermediate features (for feature
matching). Input: image (3 channels), optionally with the mask as a fourth channel."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import spectral_norm


@dataclass
class PatchGANConfig:
    in_channels: int = 4  # image + mask
    width: int = 32
    layers: int = 4  # strided layers; the receptive field grows with each
    kernel: int = 4


class PatchDiscriminator(nn.Module):
    def __init__(self, cfg: PatchGANConfig = PatchGANConfig()):
        super().__init__()
        self.cfg = cfg
        blocks, cin = [], cfg.in_channels
        for i in range(cfg.layers):
            cout = cfg.width * min(2 ** i, 8)
            blocks.append(nn.Sequential(
                spectral_norm(nn.Conv2d(cin, cout, cfg.kernel, 2, (cfg.kernel - 1) // 2)),
                nn.LeakyReLU(0.2, inplace=True)))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = spectral_norm(nn.Conv2d(cin, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return self.head(x), feats
