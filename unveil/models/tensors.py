"""The one conversion between uint8 RGB images and the networks' tensors in [-1, 1], and the one
check of a device name."""
from __future__ import annotations

import numpy as np
import torch

from unveil.errors import UnveilError


def torch_device(name) -> torch.device:
    """``name`` as a torch device, or one clear error: an unknown name, or CUDA on a machine
    without a CUDA GPU (instead of torch's assertion deep inside a model)."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise UnveilError(f"unknown device '{name}'; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UnveilError(f"--device {name} asked for, but no CUDA device is available (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise UnveilError(f"unknown device '{name}'; use cpu or cuda")
    return dev


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """float N x 3 x H x W in [-1, 1] -> uint8 N x H x W x 3."""
    return ((t.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
