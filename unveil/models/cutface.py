"""CUTFACE: unpaired masked-face inpainting (seed paper "Unsupervised masked face inpainting based on
contrastive learning and attention mechanism").

The generator is trained *without paired data* (:mod:`unveil.train.unpaired`): real photos of people
wearing masks (their mask found by SOCLNET and blanked) are filled so that an SN-PatchGAN cannot
tell the composite from clean UTKFace faces, while a multilayer patch-wise contrastive loss
(PatchNCE, as in CUT) ties every output patch to the input patch at the same place. No loss ever
compares an output with a ground-truth face.

Network: an encoder written as one flat list of layers, so PatchNCE can tap it by index the way CUT
taps its ResNet generator (default layers 0, 4, 8, 12, 16: the input, 1/2, 1/4, 1/8 after the
downsampling, and the bottleneck after the attention)::

    0 input (masked image + mask)      9-10  3x3 conv            (1/4)
    1-2  5x5 conv                      11-12 3x3 conv, stride 2  (1/8)
    3-4  3x3 conv, stride 2   (1/2)    13-14 dilated residual blocks (dilation 2, 4)
    5-6  3x3 conv                      15    feature attention module
    7-8  3x3 conv, stride 2   (1/4)    16    residual block (dilation 1)

The **feature attention module** on the bottleneck (1/8 scale) adds, to its input, self-attention
over all positions (query/key/value 1x1 convolutions, softmax over the positions: long-range
dependencies between the visible face and the hole) and channel attention (squeeze-and-excitation
gates), each scaled by a learned factor that starts at 0. A decoder upsamples with U-Net skips from
layers 8, 4 and 0 back to an RGB image (tanh). Input: masked image and mask, any H x W.

With ``prefill`` (the shipped weights; unveil's addition, parameter-free, so still unpaired) the
input (layer 0) is the image with its hole filled by pull-push interpolation
(:func:`unveil.models.blocks.prefill`) and the output is a residual on that fill, zero at first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from unveil.models.ifacenet import Up
from unveil.models.blocks import ChannelAttention, ResBlock, on_fill, prefill, to_net
from unveil.models.neural import NeuralInpainter
from unveil.models.registry import network, register

#: CUT's default PatchNCE layers (indices into :attr:`CutFaceNet.encoder`; 0 is the input itself).
NCE_LAYERS = (0, 4, 8, 12, 16)


@dataclass
class CutFaceConfig:
    width: int = 24  # channels at full resolution (2x at 1/2, 4x at 1/4)
    bottleneck: int = 128  # channels at 1/8
    dilations: list[int] = field(default_factory=lambda: [2, 4])  # residual blocks before attention
    attention: bool = True  # the feature attention module (off: the ablation)
    qk: int = 32  # query/key channels of the position attention
    decoder_width: int = 16  # decoder channels at full resolution (x2 at 1/2, x4 at 1/4)
    #: start from a pull-push fill of the hole (:func:`unveil.models.blocks.prefill`): the encoder
    #: sees that smooth fill instead of a blank and the output is a residual on it (zero at first)
    prefill: bool = False


class PositionAttention(nn.Module):
    """Self-attention over all positions (SAGAN): ``V softmax(Q^T K / sqrt(d))``."""

    def __init__(self, channels: int, qk: int):
        super().__init__()
        self.q = nn.Conv2d(channels, qk, 1)
        self.k = nn.Conv2d(channels, qk, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.scale = qk ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.q(x).flatten(2).transpose(1, 2)  # N x HW x qk
        k = self.k(x).flatten(2)  # N x qk x HW
        v = self.v(x).flatten(2)  # N x C x HW
        a = torch.softmax(torch.bmm(q, k) * self.scale, dim=-1)  # N x HW x HW
        return torch.bmm(v, a.transpose(1, 2)).view(n, c, h, w)


class FeatureAttention(nn.Module):
    """The feature attention module: position (long-range) and channel attention, added to the
    input with learned scales that start at 0 (the module starts as the identity)."""

    def __init__(self, channels: int, qk: int = 32):
        super().__init__()
        self.position = PositionAttention(channels, qk)
        self.channel = ChannelAttention(channels)
        self.gamma_p = nn.Parameter(torch.zeros(1))
        self.gamma_c = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma_p * self.position(x) + self.gamma_c * self.channel(x)


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2)  # not in place: PatchNCE may tap the map before it


@network("cutface", CutFaceConfig)
class CutFaceNet(nn.Module):
    SKIPS = (0, 4, 8)  # encoder layers the decoder takes as skip connections

    def __init__(self, cfg: CutFaceConfig):
        super().__init__()
        self.cfg = cfg
        w, b = cfg.width, cfg.bottleneck
        if len(cfg.dilations) != 2:
            raise ValueError("CUTFACE takes exactly two bottleneck dilations (layers 13 and 14)")
        self.encoder = nn.ModuleList([
            nn.Identity(),  # 0: the input itself
            nn.Conv2d(4, w, 5, 1, 2), _act(),  # 1-2
            nn.Conv2d(w, 2 * w, 3, 2, 1), _act(),  # 3-4 (1/2)
            nn.Conv2d(2 * w, 2 * w, 3, 1, 1), _act(),  # 5-6
            nn.Conv2d(2 * w, 4 * w, 3, 2, 1), _act(),  # 7-8 (1/4)
            nn.Conv2d(4 * w, 4 * w, 3, 1, 1), _act(),  # 9-10
            nn.Conv2d(4 * w, b, 3, 2, 1), _act(),  # 11-12 (1/8)
            ResBlock(b, cfg.dilations[0]), ResBlock(b, cfg.dilations[1]),  # 13-14
            FeatureAttention(b, cfg.qk) if cfg.attention else nn.Identity(),  # 15
            ResBlock(b, 1),  # 16
        ])
        d = cfg.decoder_width
        self.up3 = Up(b, 4 * w, 4 * d)
        self.up2 = Up(4 * d, 2 * w, 2 * d)
        self.up1 = Up(2 * d, 4, d, convs=1)
        self.out = nn.Conv2d(d, 3, 3, 1, 1)
        if cfg.prefill:  # an untrained generator returns the smooth fill
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    @property
    def layer_channels(self) -> list[int]:
        """Output channels of every encoder layer (index = layer)."""
        w, b = self.cfg.width, self.cfg.bottleneck
        return [4, w, w, 2 * w, 2 * w, 2 * w, 2 * w, 4 * w, 4 * w, 4 * w, 4 * w, b, b, b, b, b, b]

    def _encode(self, x: torch.Tensor, m: torch.Tensor, keep, upto: int | None = None, fill: bool = True):
        """Run the encoder (up to layer ``upto``); returns (last map, {layer: map for keep}).
        ``fill=False`` skips the prefill (for an all-zero mask it would return ``x`` as it is)."""
        if self.cfg.prefill:
            h = torch.cat([prefill(x, m) if fill else x, m], 1)
        else:
            h = to_net(x, m)
        feats = {}
        for i, layer in enumerate(self.encoder[: None if upto is None else upto + 1]):
            h = layer(h)
            if i in keep:
                feats[i] = h
        return h, feats

    def encode_features(self, x: torch.Tensor, m: torch.Tensor,
                        layers=NCE_LAYERS) -> list[torch.Tensor]:
        """Encoder feature maps at ``layers`` (indices into :attr:`encoder`) for PatchNCE. ``m`` is
        the hole (1) of ``x``; an output image is encoded with an all-zero mask."""
        bad = [i for i in layers if not 0 <= i < len(self.encoder)]
        if bad:
            raise ValueError(f"PatchNCE layers {bad} outside the encoder (0..{len(self.encoder) - 1})")
        # PatchNCE encodes whole output images (all-zero masks) twice a step: nothing to fill there
        _, feats = self._encode(x, m, set(layers), max(layers), fill=bool(m.any()))
        return [feats[i] for i in layers]

    def forward(self, x: torch.Tensor, m: torch.Tensor, layers=None):
        """The filled image; with ``layers`` also the encoder maps of the input at those layers
        (what PatchNCE needs of the input, without a second encoder pass)."""
        h, feats = self._encode(x, m, set(self.SKIPS) | set(layers or ()))
        y = self.up3(h, feats[8])
        y = self.up2(y, feats[4])
        y = self.up1(y, feats[0])
        if self.cfg.prefill:
            y = on_fill(feats[0][:, :3], self.out(y), self.training)
        else:
            y = torch.tanh(self.out(y))
        if layers is None:
            return y
        return y, [feats[i] for i in layers]


@register("cutface", summary="CUTFACE: unpaired (GAN + PatchNCE, no ground truth) masked-face "
                             "inpainting with feature attention (trained, shipped)", rank=3,
          tags=("learned",))
class CutFaceInpainter(NeuralInpainter):
    """CUTFACE inpainter with the shipped weights (``weights=`` another file)."""

    network_name = "cutface"
    weight_name = "cutface"
