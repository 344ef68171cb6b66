"""IN2: a position-aware implicit network for faces of arbitrary shape and size (seed paper
"Learning position-aware implicit neural network for real-world face inpainting").

* **Downsample-processing encoder.** Three stages, each a strided convolution followed by a fast
  Fourier convolution (a local 3x3 path plus a global path that mixes channels in the 2-D Fourier
  domain, so every stage sees the whole face) and channel attention.
* **Neighbourhood hybrid attention** at 1/8: each position attends to its k x k neighbours (zero
  padding masked out, so it works for any H x W, square or not) with a learned relative-position
  bias per head; in parallel a depthwise convolution; then channel attention and an MLP.
* **Implicit neural pyramid decoder.** The decoder is a function of continuous pixel coordinates:
  for every query point it samples the feature pyramid (1/8, 1/4, 1/2 and the full-resolution stem)
  at that point, adds the point's position relative to each level's feature cell and the query cell
  size, and refines a hidden code from the coarsest level to the finest, each level an MLP step
  (LIIF-style). The image can therefore be rendered at any size and aspect ratio, or only at the
  hole's pixels.

Input: masked image and mask at any H x W >= 16 (no padding to a square). ``forward(x, m)`` renders
at the input size; ``forward(x, m, size=(H', W'))`` at another; ``render(x, m, coords)`` at points.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unveil.models.blocks import ChannelAttention, ConvAct, act, on_fill, prefill, to_net
from unveil.models.neural import NeuralInpainter
from unveil.models.registry import network, register


@dataclass
class IN2Config:
    width: int = 16  # stem channels
    stage_width: int = 24  # channels at 1/2; 2x and 4x at 1/4 and 1/8
    attention_blocks: int = 4
    window: int = 7  # neighbourhood size (odd)
    heads: int = 4
    decoder_features: int = 24  # channels each pyramid level is projected to for the decoder
    decoder_hidden: int = 48
    #: encode a pull-push fill of the hole (:func:`unveil.models.blocks.prefill`) instead of a blank,
    #: and decode a residual on that fill sampled at the query point
    prefill: bool = False


class SpectralTransform(nn.Module):
    """Global branch of a fast Fourier convolution: 1x1 conv on the real/imaginary parts of rfft2."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(2 * channels, 2 * channels, 1), act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        f = torch.fft.rfft2(x.float(), norm="ortho")
        f = self.conv(torch.cat([f.real, f.imag], 1))
        re, im = f.chunk(2, 1)
        return torch.fft.irfft2(torch.complex(re, im), s=(h, w), norm="ortho").to(x.dtype)


class FFC(nn.Module):
    """Fast Fourier convolution block: local 3x3 path + global spectral path, fused, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.local = ConvAct(channels, channels, 3)
        self.glob = SpectralTransform(channels)
        self.fuse = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.fuse(torch.cat([self.local(x), self.glob(x)], 1)), 0.2)


class DownStage(nn.Module):
    """Downsample-processing stage: strided conv -> FFC -> channel attention."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.down = ConvAct(cin, cout, 3, 2)
        self.ffc = FFC(cout)
        self.ca = ChannelAttention(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ca(self.ffc(self.down(x)))


class NeighbourhoodAttention(nn.Module):
    """Multi-head attention of every position over its ``k x k`` neighbourhood, any H x W."""

    def __init__(self, channels: int, heads: int, k: int):
        super().__init__()
        if k % 2 == 0:
            raise ValueError("the neighbourhood size must be odd")
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.heads, self.k = heads, k
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.bias = nn.Parameter(torch.zeros(heads, k * k))  # relative-position bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        hd, k, d = self.heads, self.k, c // self.heads
        q, kk, v = self.qkv(x).chunk(3, 1)
        pad = k // 2
        kk = F.unfold(kk, k, padding=pad).view(n, hd, d, k * k, h * w)
        v = F.unfold(v, k, padding=pad).view(n, hd, d, k * k, h * w)
        q = q.reshape(n, hd, d, 1, h * w) * d ** -0.5
        logits = (q * kk).sum(2) + self.bias.view(1, hd, k * k, 1)  # n, hd, k*k, hw
        inside = F.unfold(torch.ones(1, 1, h, w, device=x.device, dtype=x.dtype), k, padding=pad)
        logits = logits.masked_fill(inside.view(1, 1, k * k, h * w) == 0, float("-inf"))
        attn = logits.softmax(2)
        out = (attn.unsqueeze(2) * v).sum(3)  # n, hd, d, hw
        return self.proj(out.reshape(n, c, h, w))


class HybridAttentionBlock(nn.Module):
    """Neighbourhood attention + depthwise conv in parallel, channel attention, then an MLP."""

    def __init__(self, channels: int, heads: int, k: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(1, channels)
        self.attn = NeighbourhoodAttention(channels, heads, k)
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels)
        self.ca = ChannelAttention(channels)
        self.norm2 = nn.GroupNorm(1, channels)
        self.mlp = nn.Sequential(nn.Conv2d(channels, 2 * channels, 1), nn.GELU(),
                                 nn.Conv2d(2 * channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.ca(self.attn(y) + self.conv(y))
        return x + self.mlp(self.norm2(x))


def pixel_coords(h: int, w: int, device=None) -> torch.Tensor:
    """Centres of an h x w pixel grid as (h*w, 2) (x, y) in [-1, 1] (align_corners=False)."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1).view(-1, 2)


def _sample(feat: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of N x C x H x W at N x Q x 2 coords -> N x Q x C."""
    s = F.grid_sample(feat, coords.unsqueeze(1), mode="bilinear", padding_mode="border",
                      align_corners=False)
    return s[:, :, 0].transpose(1, 2)


def _relative(coords: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Offset of each query from the centre of the level's nearest feature cell, in cell units."""
    size = coords.new_tensor([w, h])
    pos = (coords + 1) / 2 * size - 0.5  # in feature-pixel units
    return pos - pos.round()


@network("in2", IN2Config)
class IN2(nn.Module):
    def __init__(self, cfg: IN2Config):
        super().__init__()
        self.cfg = cfg
        w, sw = cfg.width, cfg.stage_width
        chans = (sw, 2 * sw, 4 * sw)
        self.stem = ConvAct(4, w, 3)
        self.stages = nn.ModuleList([DownStage(w, chans[0]), DownStage(chans[0], chans[1]),
                                     DownStage(chans[1], chans[2])])
        self.blocks = nn.Sequential(*[HybridAttentionBlock(chans[2], cfg.heads, cfg.window)
                                      for _ in range(cfg.attention_blocks)])
        df, hid = cfg.decoder_features, cfg.decoder_hidden
        # pyramid levels, coarse to fine: 1/8 (after attention), 1/4, 1/2; the finest step also
        # sees the full-resolution stem features and the input pixel at the query point
        self.proj = nn.ModuleList(nn.Conv2d(c, df, 1) for c in (chans[2], chans[1], chans[0]))
        self.proj_stem = nn.Conv2d(w, df, 1)
        extra = 2 + 2  # relative position in the level's cell, query cell size
        self.levels = nn.ModuleList()
        for i in range(3):
            cin = df + extra + (0 if i == 0 else hid) + (df + 4 if i == 2 else 0)
            self.levels.append(nn.Sequential(nn.Linear(cin, hid), act(), nn.Linear(hid, hid)))
        self.head = nn.Linear(hid, 3)
        if cfg.prefill:  # an untrained decoder returns the smooth fill
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def encode(self, x: torch.Tensor, m: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The feature pyramid (coarse to fine), and full-resolution stem features + network input
        (for the finest level)."""
        inp = torch.cat([prefill(x, m), m], 1) if self.cfg.prefill else to_net(x, m)
        s0 = self.stem(inp)
        f1 = self.stages[0](s0)
        f2 = self.stages[1](f1)
        f3 = self.blocks(self.stages[2](f2))
        pyramid = [p(f) for p, f in zip(self.proj, (f3, f2, f1))]
        return pyramid, torch.cat([self.proj_stem(s0), inp], 1)

    def decode(self, pyramid: list[torch.Tensor], inp: torch.Tensor, coords: torch.Tensor,
               cell: tuple[float, float]) -> torch.Tensor:
        """RGB in [-1, 1] at N x Q x 2 coords (x, y in [-1, 1]) -> N x Q x 3. ``cell``: the size of
        one output pixel in the same units (2/W, 2/H)."""
        n, q = coords.shape[:2]
        cellt = coords.new_tensor([cell[0] * inp.shape[3] / 2, cell[1] * inp.shape[2] / 2])
        cellt = cellt.log2()  # 0 = native resolution, -1 = rendered at twice the size, ...
        cellt = cellt.view(1, 1, 2).expand(n, q, 2)
        h = None
        for i, (feat, mlp) in enumerate(zip(pyramid, self.levels)):
            parts = [_sample(feat, coords), _relative(coords, *feat.shape[2:]), cellt]
            if h is not None:
                parts.append(h)
            if i == len(pyramid) - 1:
                pixel = _sample(inp, coords)
                parts.append(pixel)
            z = mlp(torch.cat(parts, -1))
            h = z if h is None else h + z
        out = self.head(F.leaky_relu(h, 0.2))
        if not self.cfg.prefill:
            return torch.tanh(out)
        # the input's channels end with the filled image and the mask
        return on_fill(pixel[..., -4:-1], out, self.training)

    def render(self, x: torch.Tensor, m: torch.Tensor, coords: torch.Tensor,
               cell: tuple[float, float]) -> torch.Tensor:
        pyramid, inp = self.encode(x, m)
        return self.decode(pyramid, inp, coords, cell)

    def forward(self, x: torch.Tensor, m: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        h, w = size or x.shape[2:]
        coords = pixel_coords(h, w, x.device).unsqueeze(0).expand(x.shape[0], -1, -1)
        y = self.render(x, m, coords, (2 / w, 2 / h))
        return y.transpose(1, 2).reshape(x.shape[0], 3, h, w)


@register("in2", summary="IN2: position-aware implicit network, any shape and size (trained, shipped)",
          rank=5, tags=("learned",))
class IN2Inpainter(NeuralInpainter):
    """IN2 inpainter with the shipped weights; the face is encoded at the working size and the
    implicit decoder is queried at the crop's own resolution, at the hole's pixels only."""

    network_name = "in2"
    weight_name = "in2"
    upsample_mode = "bilinear"  # the decoder samples the working-size input bilinearly
    # The TorchScript ONNX exporter has no conversion for torch.fft.rfft2; the dynamo exporter
    # (onnxscript) converts the encoder, but ONNX Runtime's DFT ran it ~3x slower than torch.
    onnx_unsupported = ("its Fourier convolutions (torch.fft.rfft2) have no ONNX conversion in the "
                        "TorchScript exporter, and its decoder renders only the hole's pixels "
                        "(data-dependent shapes); it runs on torch")

    def _forward(self, x: torch.Tensor, m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        n = x.shape[0]
        pyramid, inp = self.model.encode(x, m)
        # The shipped weights were trained at one scale, so the decoder is told the cell size of
        # the working grid (as LIIF does beyond its training scales): measured on 48 test faces at
        # 256 px, this gives +0.6 dB in the hole over passing the true, smaller output cell.
        cell = (2 / inp.shape[3], 2 / inp.shape[2])
        mo = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False) > 0
        out = torch.zeros(n, 3, h, w, device=x.device)
        grid = pixel_coords(h, w, x.device)
        for i in range(n):
            idx = mo[i, 0].view(-1).nonzero()[:, 0]
            if not len(idx):
                continue
            y = self.model.decode([p[i:i + 1] for p in pyramid], inp[i:i + 1], grid[idx][None], cell)
            out[i].view(3, -1)[:, idx] = y[0].T
        return out
