"""SOCLNET: occluder segmentation with DeepLabv3+ (ASPP) and self-attention.

After the seed paper ("De-Occlusion Face Model based on Deep Occlusor Segmentation and Deep
Inpainting Models"): a DeepLabv3 segmenter with a self-attention block predicts, for every pixel of
an aligned face crop, whether it belongs to the occluding object. Built small enough for a CPU:

* backbone: MobileNetV2-style inverted residual blocks (BatchNorm + ReLU6), trained from scratch;
  the stride-4 features are kept for the decoder and the last stages are dilated instead of strided
  so the high-level features sit at ``output_stride`` 16 (16x16 for a 256 px crop);
* ASPP: a 1x1 branch, three 3x3 atrous branches at ``aspp_rates`` (small, since the maps are
  small), an image-pooling branch, concatenation, 1x1 projection and dropout;
* self-attention (DANet-style) on the ASPP output: position attention (query/key reduced to C/8,
  softmax over the HxW positions) plus channel attention, each scaled by its own learnable gamma
  initialised at 0, so the block starts as the identity. ``attention=False`` (the ablation)
  replaces it by the identity;
* DeepLabv3+ decoder: upsample x4, concatenate the projected low-level features, two 3x3 convs,
  a 1-channel classifier, bilinear upsampling of the logits to the input size.

Any input whose height and width are multiples of 16 works (square or not); the segmenter
reflect-pads other sizes. Weights are safetensors written by :func:`unveil.models.weights.save_weights`
with the :class:`SOCLNetConfig` in their metadata.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unveil.errors import UnveilError
from unveil.models.base import Segmenter
from unveil.models.registry import build_network, network, register
from unveil.models.tensors import to_tensor
from unveil.models.weights import load_weights, weights_path

#: Output stride of the whole network: input sides must be multiples of this (the segmenter pads).
MULTIPLE = 16


@dataclass
class SOCLNetConfig:
    #: Channel multiplier of the backbone (1.0 = the channel sizes of ``stages`` as written).
    width: float = 1.0
    #: Inverted residual stages ``(expansion t, channels c, blocks n, stride s)`` after the stem
    #: (a stride-2 3x3 conv of ``stem_channels``). Stages are grouped by the stride they reach: the
    #: last stage of stride 4 feeds the decoder, strides beyond ``output_stride`` become dilation.
    #: MobileNetV2's recipe, slimmed where it is costly on a CPU: a 16-channel stem, expansion 4
    #: at stride 4 and fewer blocks at strides 8 and 16 (the 16x16 stages hold most weights).
    stages: tuple = ((1, 16, 1, 1), (4, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 2), (6, 96, 2, 1),
                     (6, 160, 2, 2), (6, 192, 1, 1))
    stem_channels: int = 16
    output_stride: int = 16
    aspp_rates: tuple = (2, 4, 6)
    aspp_channels: int = 64
    #: Depthwise-separable 3x3 convs in the ASPP and the decoder (as in DeepLabv3+): much cheaper.
    separable: bool = True
    dropout: float = 0.1
    #: The self-attention block on the ASPP output (False: identity, the ablation).
    attention: bool = True
    #: Query/key channels of position attention are ``C // attention_reduction``.
    attention_reduction: int = 8
    low_level_channels: int = 32
    decoder_channels: int = 64


def _make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_bn_act(cin: int, cout: int, k: int = 1, stride: int = 1, dilation: int = 1, groups: int = 1,
                act: type[nn.Module] | None = nn.ReLU6) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, padding=dilation * (k - 1) // 2, dilation=dilation,
                  groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


def conv3x3(cin: int, cout: int, dilation: int = 1, separable: bool = True) -> nn.Sequential:
    """3x3 conv + BN + ReLU; separable: depthwise 3x3 (+BN+ReLU) then pointwise 1x1 (+BN+ReLU)."""
    if not separable:
        return conv_bn_act(cin, cout, 3, dilation=dilation, act=nn.ReLU)
    return nn.Sequential(conv_bn_act(cin, cin, 3, dilation=dilation, groups=cin, act=nn.ReLU),
                         conv_bn_act(cin, cout, 1, act=nn.ReLU))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (strided or dilated), 1x1 linear project."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, dilation: int = 1):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_act(cin, hidden, 1))
        layers += [conv_bn_act(hidden, hidden, 3, stride, dilation, groups=hidden),
                   conv_bn_act(hidden, cout, 1, act=None)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class Backbone(nn.Module):
    """MobileNetV2-style encoder. ``forward(x) -> (low-level features at stride 4, high-level
    features at output_stride)``."""

    def __init__(self, cfg: SOCLNetConfig):
        super().__init__()
        if cfg.output_stride not in (8, 16, 32):
            raise UnveilError(f"output_stride must be 8, 16 or 32, got {cfg.output_stride}")
        cin = _make_divisible(cfg.stem_channels * cfg.width)
        self.stem = conv_bn_act(3, cin, 3, 2)
        stride, dilation = 2, 1
        low, high = [], []
        for t, c, n, s in cfg.stages:
            cout = _make_divisible(c * cfg.width)
            for i in range(int(n)):
                st = s if i == 0 else 1
                dil = dilation
                if st > 1 and stride * st > cfg.output_stride:
                    dilation *= st  # keep the resolution, widen the receptive field instead
                    st = 1  # the first block keeps the previous dilation (as in DeepLabv3)
                block = InvertedResidual(cin, cout, st, int(t), dil if i == 0 else dilation)
                stride *= st
                (low if stride <= 4 else high).append(block)
                cin = cout
            if stride <= 4:
                self.low_channels = cin
        if not low or not high:
            raise UnveilError("the backbone stages must reach stride 4 and then go beyond it")
        self.low = nn.Sequential(*low)
        self.high = nn.Sequential(*high)
        self.out_channels = cin
        self.output_stride = stride

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.low(self.stem(x))
        return low, self.high(low)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, three atrous 3x3, image pooling; concat, 1x1, dropout."""

    def __init__(self, cin: int, cout: int, rates=(2, 4, 6), separable: bool = True,
                 dropout: float = 0.1):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_act(cin, cout, 1, act=nn.ReLU)] +
                                      [conv3x3(cin, cout, int(r), separable) for r in rates])
        # no BatchNorm on the pooled 1x1 map: it would fail on a batch of one while training
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(conv_bn_act(cout * (len(rates) + 2), cout, 1, act=nn.ReLU),
                                     nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, x.shape[2], x.shape[3]))
        return self.project(torch.cat(outs, 1))


class PositionAttention(nn.Module):
    """DANet position attention: every position attends to all HxW positions (query/key at C/r)."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # N x HW x C'
        k = self.key(x).flatten(2)  # N x C' x HW
        attn = torch.softmax(torch.bmm(q, k), dim=-1)  # N x HW x HW, each row sums to 1
        v = self.value(x).flatten(2)  # N x C x HW
        return torch.bmm(v, attn.transpose(1, 2)).view(n, c, h, w)


class ChannelAttention(nn.Module):
    """DANet channel attention: each channel is a softmax-weighted mix of all channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        f = x.flatten(2)  # N x C x HW
        energy = torch.bmm(f, f.transpose(1, 2))  # N x C x C
        energy = energy.amax(-1, keepdim=True) - energy  # DANet's trick: favours dissimilar channels
        attn = torch.softmax(energy, dim=-1)
        return torch.bmm(attn, f).view(n, c, h, w)


class SelfAttention(nn.Module):
    """Position + channel attention in parallel, added to the input through learnable gammas
    (both 0 at initialisation, so the block starts as the identity)."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.position = PositionAttention(channels, reduction)
        self.channel = ChannelAttention()
        self.gamma_position = nn.Parameter(torch.zeros(1))
        self.gamma_channel = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma_position * self.position(x) + self.gamma_channel * self.channel(x)


@network("soclnet", SOCLNetConfig, tuples=True)
class SOCLNet(nn.Module):
    """Occluder segmentation network: ``forward(x N x 3 x H x W, normalised to [-1, 1]) -> logits
    N x 1 x H x W``. H and W must be multiples of 16."""

    def __init__(self, config: SOCLNetConfig | None = None):
        super().__init__()
        cfg = self.config = config or SOCLNetConfig()
        self.fused = False
        self.backbone = Backbone(cfg)
        self.aspp = ASPP(self.backbone.out_channels, cfg.aspp_channels, cfg.aspp_rates, cfg.separable,
                         cfg.dropout)
        self.attention = (SelfAttention(cfg.aspp_channels, cfg.attention_reduction) if cfg.attention
                          else nn.Identity())
        self.low_project = conv_bn_act(self.backbone.low_channels, cfg.low_level_channels, 1, act=nn.ReLU)
        self.decoder = nn.Sequential(
            conv3x3(cfg.aspp_channels + cfg.low_level_channels, cfg.decoder_channels, 1, cfg.separable),
            conv3x3(cfg.decoder_channels, cfg.decoder_channels, 1, cfg.separable),
        )
        self.classifier = nn.Conv2d(cfg.decoder_channels, 1, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @torch.no_grad()
    def fuse(self) -> "SOCLNet":
        """Fold every BatchNorm into the conv before it (inference only: the running statistics
        become conv weights and biases; the outputs stay the same up to float rounding). Returns
        self, in eval mode; a fused model's state dict no longer fits :func:`build_soclnet`."""
        self.eval()
        for seq in [m for m in self.modules() if isinstance(m, nn.Sequential)]:
            for i in range(len(seq) - 1):
                conv, bn = seq[i], seq[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                    conv.weight.mul_(scale[:, None, None, None])
                    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
                    seq[i + 1] = nn.Identity()
        self.fused = True
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % MULTIPLE or w % MULTIPLE:
            raise UnveilError(f"SOCLNet needs sides that are multiples of {MULTIPLE}, got {w}x{h}")
        low, high = self.backbone(x)
        y = self.attention(self.aspp(high))
        low = self.low_project(low)
        y = F.interpolate(y, size=low.shape[-2:], mode="bilinear", align_corners=False)
        y = self.classifier(self.decoder(torch.cat([y, low], 1)))
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)


def build_soclnet(config: dict | SOCLNetConfig | None = None) -> SOCLNet:
    """A :class:`SOCLNet` from a config dict (as stored in a weight file's metadata)."""
    return build_network("soclnet", config)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


#: :meth:`SOCLNetSegmenter.segment_fine` keeps, from its finer look, what is narrower than this (px)
THIN = 17


@register("soclnet", kind="segmenter",
          summary="SOCLNET: DeepLabv3 (ASPP) + self-attention occluder segmentation", rank=10)
class SOCLNetSegmenter(Segmenter):
    """SOCLNET occluder segmenter. ``weights``: a safetensors file (default: the shipped one)."""

    network_name = "soclnet"
    #: Name of the shipped weight file (``unveil/weights/<name>.safetensors``).
    weight_name = "soclnet"
    #: Why the network cannot run on ONNX Runtime (None: it can; :mod:`unveil.models.onnx_runtime`).
    onnx_unsupported: str | None = None
    #: The backend that runs the network: "torch" or "onnx" (resolved from ``backend=``).
    backend: str = "torch"
    _ort = None

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", backend: str = "auto",
                 flip: bool = True):
        """``backend``: "torch", "onnx" (ONNX Runtime on the CPU) or "auto" (ONNX Runtime where it
        was measured faster, see :mod:`unveil.models.onnx_runtime`). ``flip``: the mean of the
        probabilities of each crop and of its mirror image (one batch of both). Measured on 300
        synthetic val crops and 200 clean val faces (256 px): IoU 0.9257 -> 0.9312, clean faces the
        pipeline would touch 1.5 -> 1.0 %, occluded faces missed 0.7 -> 1.0 %; about 1.8x the time
        (4.9 -> 9.0 ms a 256 px crop on ONNX Runtime, `unveil bench --only backends`)."""
        self.flip = bool(flip)
        path = weights_path(weights, self.weight_name, self.name, "soclnet")
        self.device = torch.device(device)
        model, self.meta = load_weights(path, build_soclnet, what=f"segmenter '{self.name}'")
        # BatchNorm folded into the convs and channels-last tensors: ~1.7x faster on a CPU
        self.model = model.fuse().to(self.device, memory_format=torch.channels_last)
        self.weights = path
        #: Crops larger than the training size are segmented at that size (shorter side), and the
        #: probabilities upsampled back: the network sees faces at the scale it learned them.
        self.work_size = int(self.meta.get("size") or 0) or None
        from unveil.models.onnx_export import attach_backend

        self._ort = attach_backend(self, backend)
        self.backend = "torch" if self._ort is None else "onnx"

    def onnx_spec(self):
        """The network, its input names and ``example(n, h, w)`` inputs, for the ONNX exporter."""
        from unveil.models.onnx_export import example_faces, example_hole

        def example(n, h, w):
            imgs = example_faces(n, h, w)
            imgs[:, example_hole(h, w)] = (40, 90, 160)  # a flat "occluder"
            return (to_tensor(imgs),)

        return self.model, ["x"], example

    def _segment(self, image: np.ndarray) -> np.ndarray:
        return self._forward(image[None])[0]

    def segment_fine(self, image: np.ndarray, thin: int = THIN) -> np.ndarray:
        """A second look at twice the working size (at most the crop's own size), where a loop that
        is one pixel wide at 128 px is two, kept only where it finds something thin: the most of the
        first look and the second look's top-hat (what an opening with a ``thin`` px square,
        at the crop's resolution, removes). At twice its training scale SOCLNET also takes white
        shirts and clothing for masks; those are wide and the top-hat drops them. Measured on the
        automatic holes of 100 LFW photos wearing a synthetic face mask with loops (two draws):
        loops missed 13.6 / 14.1 % -> 7.6 / 9.7 %, the body as before (2.0 / 5.7 %), hole pixels
        farther than 25 px from the occluder 0.6 / 0.9 % -> 0.6 / 1.4 % (without the top-hat:
        6.3 / 8.6 % of the loops missed, but a white shirt under the mask could join the hole)."""
        prob = self.segment(image)
        if not self.work_size or min(image.shape[:2]) <= self.work_size:
            return prob
        fine = self._forward(np.asarray(image)[None], min(2 * self.work_size, min(image.shape[:2])),
                             flip=False)[0]  # (ridges need no mirror: the top-hat already drops specks)
        ridges = cv2.morphologyEx(fine, cv2.MORPH_TOPHAT, np.ones((thin, thin), np.uint8))
        return np.maximum(prob, ridges)

    def segment_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Occluder probabilities for a list of equal-size uint8 HxWx3 crops, in one forward pass."""
        if not len(images):
            return []
        arr = [np.asarray(i) for i in images]
        for a in arr:
            if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
                raise UnveilError(f"image must be uint8 HxWx3 RGB, got {a.dtype} {a.shape}")
            if a.shape != arr[0].shape:
                raise UnveilError(f"segment_batch needs equal-size crops, got {arr[0].shape} and {a.shape}")
        if min(arr[0].shape[:2]) < MULTIPLE:
            raise UnveilError(f"image is too small to segment ({arr[0].shape[1]}x{arr[0].shape[0]})")
        return list(self._forward(np.stack(arr)))

    def _forward(self, batch: np.ndarray, work_size: int | None = None, flip: bool | None = None) -> np.ndarray:
        """uint8 N x H x W x 3 -> float32 N x H x W probabilities (at the working size, default
        :attr:`work_size`, then upsampled; ``flip`` default :attr:`flip`)."""
        h0, w0 = batch.shape[1:3]
        work = work_size or self.work_size
        s = work / min(h0, w0) if work else 1.0
        if s >= 1:
            return self._forward_native(batch, flip)
        size = (max(MULTIPLE, round(w0 * s)), max(MULTIPLE, round(h0 * s)))
        small = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in batch])
        prob = torch.from_numpy(self._forward_native(small, flip))[:, None]
        return F.interpolate(prob, size=(h0, w0), mode="bilinear", align_corners=False)[:, 0].numpy()

    def _forward_native(self, batch: np.ndarray, flip: bool | None = None) -> np.ndarray:
        """uint8 N x H x W x 3 -> float32 N x H x W probabilities (reflect-padded to multiples of 16;
        with ``flip``, default :attr:`flip`, the mean over the crop and its mirror image)."""
        flip = self.flip if flip is None else flip
        h, w = batch.shape[1:3]
        ph, pw = -h % MULTIPLE, -w % MULTIPLE
        top, left = ph // 2, pw // 2
        with torch.inference_mode():
            x = to_tensor(batch).to(self.device)
            if ph or pw:
                x = F.pad(x, (left, pw - left, top, ph - top), mode="reflect")
            n = x.shape[0]
            if flip:
                x = torch.cat([x, x.flip(3)])
            if self._ort is not None:
                logits = self._ort.run_torch(x)
            else:
                logits = self.model(x.contiguous(memory_format=torch.channels_last))
            prob = torch.sigmoid(logits.float())
            if flip:
                prob = 0.5 * (prob[:n] + prob[n:].flip(3))
            return prob[:, 0, top:top + h, left:left + w].cpu().numpy()


@register("soclnet-noattn", kind="segmenter",
          summary="SOCLNET without the self-attention block (ablation)", rank=5)
class SOCLNetNoAttnSegmenter(SOCLNetSegmenter):
    """SOCLNET ablation without self-attention (its weights carry ``attention: false``)."""

    weight_name = "soclnet_noattn"
