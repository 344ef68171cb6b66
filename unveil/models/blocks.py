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


def _neighbour_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of the 4 neighbours of every pixel (edges replicated): one Jacobi step of Laplace."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return (p[:, :, :-2, 1:-1] + p[:, :, 2:, 1:-1] + p[:, :, 1:-1, :-2] + p[:, :, 1:-1, 2:]) * 0.25


def prefill(images: torch.Tensor, masks: torch.Tensor, levels: int = 6, smooth: int = 4) -> torch.Tensor:
    """A smooth first fill of the hole by pull-push interpolation (no parameters, any H x W).

    *Pull*: the known pixels (``masks`` 0) and their coverage are averaged down ``levels`` times by 2.
    *Push*: from the coarsest level up, each level keeps its own (coverage-normalised) colour where it
    has enough known pixels and takes the bilinearly upsampled coarser fill elsewhere, then relaxes
    the pixels it has no data for with ``smooth`` Jacobi steps of the Laplace equation, so the fill
    approaches a harmonic interpolation of the hole's border. A level with no known pixel at all
    takes the image's mean colour. Known pixels are returned unchanged. Built from pooling,
    interpolation, padding and slicing, so it exports to ONNX with the network around it.
    """
    known = 1 - masks
    imgs, cover = [images * known], [known]
    for _ in range(levels):
        imgs.append(F.avg_pool2d(imgs[-1], 2, ceil_mode=True))
        cover.append(F.avg_pool2d(cover[-1], 2, ceil_mode=True))
    mean = imgs[0].sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1)
    fill = torch.where(cover[-1] > 0, imgs[-1] / cover[-1].clamp_min(1e-6), mean)
    for lvl in range(levels - 1, -1, -1):
        up = F.interpolate(fill, size=imgs[lvl].shape[2:], mode="bilinear", align_corners=False)
        w = cover[lvl]
        trust = (4 * w).clamp(max=1) if lvl else w  # a coarse cell a quarter covered is trusted
        fill = trust * (imgs[lvl] / w.clamp_min(1e-6)) + (1 - trust) * up
        free = 1 - trust
        for _ in range(smooth):
            fill = free * _neighbour_mean(fill) + trust * fill
    return fill


def on_fill(fill: torch.Tensor, residual: torch.Tensor, training: bool) -> torch.Tensor:
    """A prefilled network's output: its residual added to the smooth fill, clamped to [-1, 1] at
    inference only (while training, a clamped pixel would get no gradient and could stay past 1)."""
    y = fill + residual
    return y if training else y.clamp(-1, 1)


def to_net(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Network input: the image in [-1, 1] with the hole zeroed, and the mask (1 = hole)."""
    return torch.cat([images * (1 - masks), masks], 1)
