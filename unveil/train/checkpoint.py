"""Training checkpoints in safetensors (models, optimizer moments, step), for exact resume.

No pickle: each optimizer's tensors are stored flat (``<prefix>.<param index>.<name>``) and its
scalar settings as JSON metadata, next to the models' fp32 state dicts. Besides the main ``model``
and ``optimizer``, ``others`` names further modules (an EMA copy, a discriminator) and optimizers.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from unveil.io import atomic_write


def _parts(model, optimizer, others) -> tuple[dict, dict]:
    modules = {"model": model}
    opts = {"opt": optimizer} if optimizer is not None else {}
    for k, v in (others or {}).items():
        if k in ("model", "opt") or "." in k:
            raise ValueError(f"checkpoint part name '{k}' is reserved or has a dot")
        (opts if isinstance(v, torch.optim.Optimizer) else modules)[k] = v
    return modules, opts


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, extra: dict | None = None, others: dict | None = None) -> Path:
    modules, opts = _parts(model, optimizer, others)
    tensors, meta = {}, {"step": str(step), "extra": json.dumps(extra or {})}
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
    for name, o in opts.items():
        osd = o.state_dict()
        for pid, st in osd["state"].items():
            for key, t in st.items():
                t = t if torch.is_tensor(t) else torch.tensor(t)
                tensors[f"{name}.{pid}.{key}"] = t.detach().cpu().contiguous()
        meta["param_groups" if name == "opt" else f"param_groups.{name}"] = json.dumps(osd["param_groups"])
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None,
                    others: dict | None = None) -> tuple[int, dict]:
    """Load a checkpoint into ``model`` (and ``optimizer``, and ``others``); returns (step, extra)."""
    modules, opts = _parts(model, optimizer, others)
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    for name, m in modules.items():
        p = name + "."
        m.load_state_dict({k[len(p):]: v for k, v in tensors.items() if k.startswith(p)})
    for name, o in opts.items():
        p, state = name + ".", {}
        for k, v in tensors.items():
            if k.startswith(p):
                _, pid, key = k.split(".", 2)
                state.setdefault(int(pid), {})[key] = v
        groups = meta["param_groups" if name == "opt" else f"param_groups.{name}"]
        o.load_state_dict({"state": state, "param_groups": json.loads(groups)})
    return int(meta["step"]), json.loads(meta.get("extra", "{}"))
