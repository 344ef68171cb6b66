"""Training checkpoints in safetensors (model, optimizer moments, step), for exact resume.

No pickle: the optimizer's tensors are stored flat (``opt.<param index>.<name>``) and its scalar
settings as JSON metadata, next to the model's fp32 state dict.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from unveil.io import atomic_write


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, extra: dict | None = None) -> Path:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    osd = optimizer.state_dict()
    for pid, st in osd["state"].items():
        for name, t in st.items():
            t = t if torch.is_tensor(t) else torch.tensor(t)
            tensors[f"opt.{pid}.{name}"] = t.detach().cpu().contiguous()
    meta = {"step": str(step), "param_groups": json.dumps(osd["param_groups"]),
            "extra": json.dumps(extra or {})}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> tuple[int, dict]:
    """Load a checkpoint into ``model`` (and ``optimizer``); returns (step, extra)."""
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None:
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("opt."):
                _, pid, name = k.split(".", 2)
                state.setdefault(int(pid), {})[name] = v
        optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    return int(meta["step"]), json.loads(meta.get("extra", "{}"))
