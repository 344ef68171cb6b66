"""Learning-rate schedule shared by the trainers: linear warm-up, then cosine decay to 2 %."""
from __future__ import annotations

import math

import torch


def warmup_cosine(steps: int, warmup: int, floor: float = 0.02):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        p = (step - warmup) / max(1, steps - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))
    return f


def scheduler(opt: torch.optim.Optimizer, steps: int, warmup: int, step: int = 0):
    """A LambdaLR that continues at ``step`` after a resume (the checkpoint holds initial_lr)."""
    return torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps, warmup),
                                             last_epoch=step - 1 if step else -1)
