"""Training configs: one dataclass base (:class:`TrainConfig`) for every family, read from the YAML
files shipped in ``unveil/train/configs/`` (one per trainable registered model), overridden by
options and ``--set key=value`` items. No torch here: the CLI lists and describes the configs
without loading it.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from unveil.errors import UnveilError

CONFIGS = Path(__file__).resolve().parent / "configs"


@dataclass
class TrainConfig:
    """What every family's run has. Families subclass it with their own fields and defaults."""

    task: str = ""  # the family (inpaint, unpaired, seg, gender): chooses the Task
    name: str = ""  # weight file name: <out>/<name>.safetensors
    model: dict = field(default_factory=dict)  # network config overrides
    #: start from these weights: "shipped" (the shipped file of ``name``), "shipped:NAME" or a file
    init: str | None = None
    size: int = 128
    batch: int = 8
    steps: int = 1000
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup: int = 100
    ema: float = 0.0  # EMA decay of the shipped weights (0: ship the trained network itself)
    seed: int = 0
    val_every: int = 500  # 0: validate only at the end
    ckpt_every: int = 250
    log_every: int = 10
    resume: bool = True  # continue from <out>/last.safetensors when it exists
    out: str = ""  # default runs/train/<name>
    data: str | None = None
    device: str = "cpu"
    threads: int | None = None  # torch CPU threads
    workers: int = 0  # data-loader (or pool-synthesis) processes
    channels_last: bool = True

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # nested settings given as mappings, tuples as lists
            setattr(self, f.name, _coerce(hints[f.name], getattr(self, f.name), f.name))
        self.name = self.name or getattr(self, "network", "") or self.task
        self.out = self.out or f"runs/train/{self.name}"


def build_config(cls: type, raw: dict, where: str = ""):
    """A ``cls`` dataclass from a mapping: nested dataclass fields from nested mappings (their
    defaults fill what is missing), lists into tuples where the field is a tuple; unknown keys are
    a clear :class:`UnveilError`."""
    if not isinstance(raw, dict):
        raise UnveilError(f"{where or cls.__name__}: a config must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    bad = set(raw) - known
    if bad:
        raise UnveilError(f"{where or cls.__name__}: unknown setting(s) {sorted(bad)}; known: {sorted(known)}")
    return cls(**{k: _coerce(hints[k], v, f"{where}: {k}" if where else k) for k, v in raw.items()})


def _scalar(t):
    """int, float, bool or str for a field of that type (or of that type or None), else None."""
    args = [a for a in typing.get_args(t) if a is not type(None)] if typing.get_origin(t) in (
        typing.Union, types.UnionType) else [t]
    return args[0] if len(args) == 1 and args[0] in (int, float, bool, str) else None


def _coerce(t, v, where: str):
    """``v`` as the field's type: a nested config from a mapping, a tuple from a list, a number
    from a string YAML did not read as one (``4e-4``: YAML 1.1 wants ``4.0e-4``)."""
    if dataclasses.is_dataclass(t) and isinstance(v, dict):
        return build_config(t, v, where)
    if typing.get_origin(t) is tuple and isinstance(v, list):
        return tuple(v)
    kind = _scalar(t)
    if kind in (int, float) and isinstance(v, str):
        try:
            return kind(v)
        except ValueError:
            raise UnveilError(f"{where}: expected a number, got {v!r}") from None
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    if kind is int and isinstance(v, float) and v.is_integer():
        return int(v)
    if kind is not None and v is not None and not isinstance(v, kind):
        raise UnveilError(f"{where}: expected {kind.__name__}, got {v!r}")
    return v


def merge(base: dict, over: dict) -> dict:
    """``base`` updated by ``over``, mappings merged key by key at every depth."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_sets(sets: list[str]) -> dict:
    """``--set KEY=VALUE`` items (``loss.perceptual=0.05``; values parsed as YAML) as a nested
    mapping (dotted keys at any depth)."""
    over: dict = {}
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UnveilError(f"--set wants KEY=VALUE (e.g. loss.perceptual=0.05), got '{item}'")
        *heads, last = key.split(".")
        d = over
        for h in heads:
            d = d.setdefault(h, {})
            if not isinstance(d, dict):
                raise UnveilError(f"--set {item}: '{h}' is set to a value and used as a mapping")
        d[last] = yaml.safe_load(value)
    return over


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise UnveilError(f"{path}: no such config file")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise UnveilError(f"{path}: a training config must be a mapping")
    return raw


def config_names() -> list[str]:
    """The shipped training configs (``unveil/train/configs/*.yaml``), one per trainable registered
    model (``ifacenet_single.yaml`` trains ``ifacenet-single``)."""
    return sorted(p.stem for p in CONFIGS.glob("*.yaml"))


def config_title(name: str) -> str:
    """The first comment line of a shipped config (what ``unveil train --help`` shows)."""
    for line in (CONFIGS / f"{name}.yaml").read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").rstrip(".")
    return name
