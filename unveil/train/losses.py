"""Reusable training losses.

Segmentation losses for occluder masks live here (soft Dice, BCE + Dice); the inpainting losses
(reconstruction, perceptual, adversarial, ...) will join them. Every loss takes raw model outputs
(``logits``, N x 1 x H x W for masks) and float 0/1 targets of the same shape, and returns a scalar.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    return target.to(logits.dtype)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss on sigmoid probabilities: ``1 - (2 |P T| + eps) / (|P| + |T| + eps)`` per
    sample (sums over all non-batch dimensions), averaged over the batch. ``eps`` smooths it and
    makes an empty target predicted empty a loss of 0."""
    target = _check(logits, target)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    inter = (p * t).sum(1)
    dice = (2 * inter + eps) / (p.sum(1) + t.sum(1) + eps)
    return (1 - dice).mean()


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, bce_weight: float = 1.0,
                  dice_weight: float = 1.0) -> torch.Tensor:
    """``bce_weight`` x binary cross-entropy (mean over pixels) + ``dice_weight`` x :func:`dice_loss`."""
    target = _check(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    return bce_weight * bce + dice_weight * dice_loss(logits, target)
