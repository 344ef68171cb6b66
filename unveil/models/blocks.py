"""Small building blocks shared by the learned inpainters (no BatchNorm: inpainting nets see
images with large blank holes, where batch statistics mislead)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class ConvAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1,
                 groups: int = 1):
        super().__init__(nn.Conv2d(cin, cout, k, stride, dilation * (k - 1) // 2, dilation, groups),
                         act())


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: global average pool -> bottleneck MLP -> per-channel gate."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.fc = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3), keepdim=True))


class ResBlock(nn.Module):
    """Two 3x3 convs (the first dilated) with a residual connection."""

    def __init__(self, channels: int, dilation: int = 1):
        super().__init__()
        self.c1 = ConvAct(channels, channels, 3, dilation=dilation)
        self.c2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.c2(self.c1(x)), 0.2)


def to_net(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Network input: the image in [-1, 1] with the hole zeroed, and the mask (1 = hole)."""
    return torch.cat([images * (1 - masks), masks], 1)
