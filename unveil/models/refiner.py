"""A detail refiner at the face crop's own resolution, after a coarse inpainter.

The learned inpainters work at 128 px; the face crop they fill is 256 px and is pasted into photos
where faces are 200-400 px wide, so their output, upsampled, is soft however good it is (detail
ratio 0.27 of the truth's for LGFace on face-mask holes). The refiner takes the upsampled coarse
fill composited into the crop and adds what the upsampling lost: a residual, at full resolution,
inside the hole.

Shape: a full-resolution stem (the fill and the mask), one stride-2 convolution down to half
resolution, ``blocks`` dilated residual blocks there (the receptive field, about 60 px at half
resolution, covers a mouth), a convolution and a nearest-neighbour resize back up (no transposed
convolution: no checkerboard), the stem's features joined again (skip) in a full-resolution
convolution, and a last convolution that starts at zero,
so an untrained refiner returns its input. With ``unshuffle: 2`` (what ``lgface`` and ``ifacenet`` ship) all of
it works on the input folded space-to-depth (2 x 2 pixels into channels, half the resolution) and
the last convolution's channels are unfolded depth-to-space into the full-resolution residual:
about 2.5x cheaper, for as much detail (0.67 against 0.63 of the truth's). About 0.1 M
parameters: cheap enough to add to every face (:class:`unveil.models.neural.NeuralInpainter` runs
it on the hole's box only).

Contract (not the inpainters' one: its input is already filled)::

    forward(y, m) -> y'     y: N x 3 x H x W in [-1, 1], the coarse fill composited into the crop,
                            m: N x 1 x H x W (1 = hole), y': y plus the residual, any H, W >= 8

Trained by the inpainting task with ``coarse:`` set (``unveil train lgface-refiner``,
``unveil train ifacenet-refiner``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unveil.models.blocks import ConvAct, ResBlock
from unveil.models.registry import network


@dataclass
class RefinerConfig:
    stem: int = 16  # channels at full resolution
    width: int = 32  # channels at half resolution
    blocks: int = 4
    dilations: tuple[int, ...] = (1, 2, 4, 1)
    #: Space-to-depth factor: the network works at 1/unshuffle of the resolution on unshuffle^2
    #: times the channels and returns full-resolution detail by depth-to-space (1: off).
    unshuffle: int = 1


@network("refiner", RefinerConfig, tuples=True)
class DetailRefiner(nn.Module):
    """Residual detail at full resolution on top of an upsampled coarse fill."""

    def __init__(self, cfg: RefinerConfig):
        super().__init__()
        self.cfg = cfg
        if len(cfg.dilations) < cfg.blocks:
            raise ValueError(f"refiner: {cfg.blocks} blocks need as many dilations, got {cfg.dilations}")
        f = self.f = max(1, int(cfg.unshuffle))
        self.stem = ConvAct(4 * f * f, cfg.stem, 3)
        self.down = ConvAct(cfg.stem, cfg.width, 3, stride=2)
        self.body = nn.Sequential(*[ResBlock(cfg.width, d) for d in cfg.dilations[:cfg.blocks]])
        self.up = ConvAct(cfg.width, cfg.stem, 3)
        self.fuse = ConvAct(2 * cfg.stem, cfg.stem, 3)
        self.out = nn.Conv2d(cfg.stem, 3 * f * f, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        z, f = torch.cat([y, m], 1), self.f
        if f > 1:  # pad to a multiple of f (replicated edges), unshuffle; cropped again below
            h, w = z.shape[2:]
            z = F.pixel_unshuffle(F.pad(z, (0, (-w) % f, 0, (-h) % f), mode="replicate"), f)
        s = self.stem(z)
        d = self.body(self.down(s))
        u = F.interpolate(self.up(d), size=s.shape[2:], mode="nearest")
        r = self.out(self.fuse(torch.cat([u, s], 1)))
        if f > 1:
            r = F.pixel_shuffle(r, f)[:, :, :y.shape[2], :y.shape[3]]
        return (y + r * m).clamp(-1, 1)
