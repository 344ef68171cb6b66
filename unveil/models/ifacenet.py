"""IFACENET: face inpainting with an ensemble encoder (seed paper "De-Occlusion Face Model").

An autoencoder whose encoder is an *ensemble of parallel branches* that look at the masked face in
different ways, so the fused features are more diverse than one branch of the same size gives:

* ``plain``   - stacks of 3x3 convolutions (fine local texture),
* ``dilated`` - 3x3 convolutions with dilation 2 (wider context at the same cost),
* ``wide``    - 5x5 strided convolutions and 7x7 depthwise-separable ones (large kernels).

Each branch downsamples three times (1/2, 1/4, 1/8). At every scale the branch outputs are
concatenated and fused by a 1x1 convolution; the fused maps are the skip connections. A bottleneck
of dilated residual blocks (dilations 1, 2, 4, 8) spreads context across large holes, and the decoder
upsamples with the skips back to an RGB image. Input: masked image and mask; any H x W.

With ``prefill`` (the shipped weights) the hole is first filled by parameter-free pull-push
interpolation (:func:`unveil.models.blocks.prefill`), the network sees that smooth fill instead of a
blank, and its output is a residual added to it (the last convolution starts at zero, so an untrained
network already returns the smooth fill): the network spends its capacity on structure and texture,
not on carrying colours across the hole.

Ablation: ``branches=("plain",)`` with a wider ``branch_width`` gives a single-branch encoder with
about the same number of parameters (``IFACENetConfig.single_branch()``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from unveil.models.blocks import ConvAct, ResBlock, act, on_fill, prefill, to_net
from unveil.models.neural import NeuralInpainter
from unveil.models.registry import network, register

BRANCHES = ("plain", "dilated", "wide")


@dataclass
class IFACENetConfig:
    width: int = 16  # channels of the full-resolution stem
    scale_width: int = 24  # fused channels at 1/2 (2x and 4x at 1/4 and 1/8)
    branch_width: int = 24  # per-branch channels at 1/2 (2x and 4x at 1/4 and 1/8)
    branches: list[str] = field(default_factory=lambda: list(BRANCHES))
    bottleneck_dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    decoder_width: int = 16  # channels at full resolution in the decoder
    prefill: bool = False  # start from a pull-push fill of the hole and predict a residual

    @classmethod
    def single_branch(cls, **kw) -> "IFACENetConfig":
        """The ablation: one plain branch, widened to about the ensemble's parameter count
        (``unveil train ifacenet --name ifacenet_single --set model.branches=[plain]
        --set model.branch_width=40``)."""
        return cls(**{"branches": ["plain"], "branch_width": 40, **kw})


def _stage(kind: str, cin: int, cout: int) -> nn.Sequential:
    if kind == "plain":
        return nn.Sequential(ConvAct(cin, cout, 3, 2), ConvAct(cout, cout, 3))
    if kind == "dilated":
        return nn.Sequential(ConvAct(cin, cout, 3, 2), ConvAct(cout, cout, 3, dilation=2))
    if kind == "wide":
        return nn.Sequential(ConvAct(cin, cout, 5, 2), ConvAct(cout, cout, 7, groups=cout),
                             ConvAct(cout, cout, 1))
    raise ValueError(f"unknown IFACENET branch '{kind}'; choose from {BRANCHES}")


class Branch(nn.Module):
    """One encoder branch: three downsampling stages, returning the three feature maps."""

    def __init__(self, kind: str, cin: int, width: int):
        super().__init__()
        chans = (width, 2 * width, 4 * width)
        self.stages = nn.ModuleList()
        for c in chans:
            self.stages.append(_stage(kind, cin, c))
            cin = c

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for s in self.stages:
            x = s(x)
            feats.append(x)
        return feats


class Up(nn.Module):
    """Upsample to the skip's size, concatenate, one or two convolutions."""

    def __init__(self, cin: int, cskip: int, cout: int, convs: int = 2):
        super().__init__()
        layers = [ConvAct(cin + cskip, cout, 3)] + [ConvAct(cout, cout, 3) for _ in range(convs - 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], 1))


@network("ifacenet", IFACENetConfig)
class IFACENet(nn.Module):
    def __init__(self, cfg: IFACENetConfig):
        super().__init__()
        self.cfg = cfg
        w, bw, sw = cfg.width, cfg.branch_width, cfg.scale_width
        self.stem = ConvAct(4, w, 3)
        self.branches = nn.ModuleList(Branch(k, w, bw) for k in cfg.branches)
        nb = len(cfg.branches)
        scales = (sw, 2 * sw, 4 * sw)  # fused channels at 1/2, 1/4, 1/8
        self.fuse = nn.ModuleList(
            nn.Sequential(nn.Conv2d(nb * bw * (2 ** i), c, 1), act()) for i, c in enumerate(scales))
        self.bottleneck = nn.Sequential(*[ResBlock(scales[2], d) for d in cfg.bottleneck_dilations])
        self.up3 = Up(scales[2], scales[1], scales[1])
        self.up2 = Up(scales[1], scales[0], scales[0])
        self.up1 = Up(scales[0], w, cfg.decoder_width, convs=1)
        self.out = nn.Conv2d(cfg.decoder_width, 3, 3, 1, 1)
        if cfg.prefill:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        inp, base = self.inputs(x, m)
        return self.body(self.stem(inp), base)

    def inputs(self, x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The stem's input (image + mask) and the smooth fill the output is added to (or None)."""
        if not self.cfg.prefill:
            return to_net(x, m), None
        base = prefill(x, m)
        return torch.cat([base, m], 1), base

    def body(self, s0: torch.Tensor, base: torch.Tensor | None = None,
             film: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Everything after the stem: ensemble encoder, fusion, bottleneck, decoder; a residual on
        ``base`` when given; ``film``: (scale, shift), N x C each, applied to the bottleneck's
        output as ``y * (1 + scale) + shift`` (a guided network's codes)."""
        per_branch = [b(s0) for b in self.branches]
        fused = [f(torch.cat([pb[i] for pb in per_branch], 1)) for i, f in enumerate(self.fuse)]
        y = self.bottleneck(fused[2])
        if film is not None:
            y = y * (1 + film[0][:, :, None, None]) + film[1][:, :, None, None]
        y = self.up3(y, fused[1])
        y = self.up2(y, fused[0])
        y = self.up1(y, s0)
        if base is None:
            return torch.tanh(self.out(y))
        return on_fill(base, self.out(y), self.training)


@register("ifacenet", summary="IFACENET: ensemble-encoder autoencoder, fine-tuned for realism (trained, shipped)",
          rank=40, tags=("learned",))
class IFACENetInpainter(NeuralInpainter):
    """IFACENET inpainter with the shipped weights (``weights=`` another file): since 2026-12-07 the
    realism fine-tune (perceptual + SN-PatchGAN losses, ``unveil/weights/ifacenet.md``)."""

    network_name = "ifacenet"
    weight_name = "ifacenet"
    refiner_weight = "ifacenet_refiner"
    #: the mirror look (``flip``): on 100 test faces with NVIDIA holes +0.20 dB, LPIPS-VGG on the
    #: hole's box -0.004, for one more batch entry in the network (unveil/weights/ifacenet.md)
    flip_default = True


@register("ifacenet-fidelity", summary="IFACENET trained on pixel losses (L1 + SSIM): the fidelity variant, "
                                       "best PSNR, smoothest fill", rank=3, tags=("learned", "fidelity"))
class IFACENetFidelityInpainter(IFACENetInpainter):
    """The same network with the weights of IFACENET's pixel-loss training (shipped as ``ifacenet``
    until 2026-12-07), before the realism fine-tune: what to use when PSNR / SSIM against the truth
    matter more than a drawn mouth."""

    weight_name = "ifacenet_fidelity"
    refiner_weight = ""
    flip_default = False  # measured, shipped and pinned as trained (the mirror look: ``flip=True``)


@register("ifacenet-single", summary="IFACENET with one encoder branch of the same size (ablation)",
          rank=2, tags=("learned", "ablation"))
class IFACENetSingleInpainter(IFACENetInpainter):
    """The ablation of IFACENET's ensemble: one plain branch, widened to about the same number of
    parameters, trained with the same recipe and budget (its weights carry the config)."""

    weight_name = "ifacenet_single"
    refiner_weight = ""
    flip_default = False  # measured, shipped and pinned as trained (the mirror look: ``flip=True``)
