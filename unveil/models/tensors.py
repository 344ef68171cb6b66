"""The one conversion between uint8 RGB images and the networks' tensors in [-1, 1]."""
from __future__ import annotations

import numpy as np
import torch


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """float N x 3 x H x W in [-1, 1] -> uint8 N x H x W x 3."""
    return ((t.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
