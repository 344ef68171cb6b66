"""Weights on disk: safetensors only (never pickle), with the model's config in the metadata.

``save_weights(path, model, config)`` writes the state dict (fp16 by default, to keep shipped files
small) and ``config`` (a dataclass) as JSON metadata; ``load_weights(path, build)`` rebuilds the
model with ``build(config_dict)`` and loads the tensors back in fp32. Shipped weights live in
``unveil/weights/`` (package data).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from unveil.errors import UnveilError
from unveil.io import atomic_write

SHIPPED = Path(__file__).resolve().parent.parent / "weights"


def shipped(name: str) -> Path:
    """Path of a weight file that ships with the package (may not exist yet)."""
    return SHIPPED / f"{name}.safetensors"


def weights_path(weights: str | os.PathLike | None, weight_name: str, model: str, train: str) -> Path:
    """``weights`` if given, else the shipped file; a clear error when nothing ships for ``model``."""
    path = Path(weights) if weights is not None else shipped(weight_name)
    if weights is None and not path.exists():
        raise UnveilError(f"no trained weights ship for '{model}' (expected {path}); train them with "
                          f"`unveil train {train}` and pass the file as weights=")
    return path


def config_from(config_cls: type, config=None, what: str = "", tuples: bool = False):
    """A ``config_cls`` dataclass from an instance of it, a dict of overrides (e.g. the config of a
    weight file's metadata) or None. Unknown keys are a clear :class:`UnveilError` naming ``what``;
    with ``tuples``, lists become tuples again (JSON has no tuples)."""
    if isinstance(config, config_cls):
        return config
    config = dict(config or {})
    fields = {f.name for f in dataclasses.fields(config_cls)}
    bad = set(config) - fields
    if bad:
        raise UnveilError(f"unknown {what or config_cls.__name__} setting(s) {sorted(bad)}; "
                          f"known: {sorted(fields)}")
    if tuples:
        config = {k: _tuples(v) for k, v in config.items()}
    return config_cls(**config)


def _tuples(v):
    return tuple(_tuples(i) for i in v) if isinstance(v, (list, tuple)) else v


def save_weights(path: str | os.PathLike, model: torch.nn.Module, config=None,
                 meta: dict | None = None, half: bool = True) -> Path:
    """Write ``model``'s state dict atomically as safetensors, config and meta as metadata."""
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        tensors[k] = v.half() if half and v.is_floating_point() else v
    md = {"format": "pt", "unveil": "1"}
    if config is not None:
        md["config"] = json.dumps(dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config)
    for k, v in (meta or {}).items():
        md[k] = v if isinstance(v, str) else json.dumps(v)
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=md))


def read_metadata(path: str | os.PathLike) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        md = dict(f.metadata() or {})
    out = {}
    for k, v in md.items():
        try:
            out[k] = v if k == "format" else json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def load_weights(path: str | os.PathLike, build: Callable[[dict], torch.nn.Module],
                 what: str = "model", network: str | None = None) -> tuple[torch.nn.Module, dict]:
    """Rebuild a model from a safetensors file written by :func:`save_weights`. With ``network``,
    a file whose metadata names another network is refused."""
    path = Path(path)
    if not path.exists():
        raise UnveilError(f"no weights for {what} at {path}")
    try:
        meta = read_metadata(path)
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UnveilError(f"{path}: not a readable safetensors weight file ({e})") from None
    if network and meta.get("network") and meta["network"] != network:
        raise UnveilError(f"{path} holds weights of network '{meta['network']}', not '{network}'")
    model = build(meta.get("config") or {})
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
    shapes = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    if shapes:
        raise UnveilError(f"{path}: weights do not fit {what} (shape differs for {shapes[:3]})")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UnveilError(f"{path}: weights do not fit {what} (missing {list(missing)[:3]}, "
                          f"unexpected {list(unexpected)[:3]})")
    model.eval()
    return model, meta
