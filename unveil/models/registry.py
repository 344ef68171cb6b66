"""The one registry: networks and the models built on them (BasicSR-style).

* ``@network("ifacenet", IFACENetConfig)`` on an ``nn.Module`` taking one config dataclass: the
  trainer and the weight loader build it by name (:func:`build_network`, :func:`make_config`).
* ``@register("telea", kind=...)`` on a model class (or factory): what users load by name,
  ``load("telea")``, with its kind (``inpainter``, ``segmenter`` or ``classifier``; ``load(name,
  kind=...)`` refuses another kind) and, for a learned model, the network it runs.
* :func:`shared`: one loaded instance per (name, device) for the whole process, the cache the
  pipeline, the CLI and the server use.

A model module registers itself on import; :mod:`unveil.models` imports every model module, so the
registry sees them all.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from unveil.errors import UnveilError

KINDS = ("inpainter", "segmenter", "classifier")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    factory: Callable
    kind: str = "inpainter"
    summary: str = ""
    #: Higher is preferred when choosing the default model. Set from measurements on real occluder
    #: shapes, the use unveil is for: on the face-mask set (100 UTKFace test faces, 256 px, `make
    #: bench`) IFACENET scores PSNR 23.18 / hole 18.55 dB / LPIPS 0.193 in 46 ms against biharmonic's
    #: 20.81 / 16.18 / 0.215 in 612 ms, so IFACENET is the default; on thin NVIDIA strokes biharmonic
    #: still scores best on the whole image (29.24 against IFACENET's 28.81 dB, see docs/benchmarks.md).
    rank: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)
    network: str = ""  # the registered network a learned model runs ("" for classical ones)


_REGISTRY: dict[str, ModelInfo] = {}
NETWORKS: dict[str, tuple[type, type, bool]] = {}


def network(name: str, config_cls: type, tuples: bool = False):
    """Class decorator: register an ``nn.Module`` taking one config dataclass under ``name``
    (``tuples``: the config's sequences are tuples, JSON's lists become tuples again)."""

    def deco(cls):
        if name in NETWORKS:
            raise ValueError(f"network '{name}' is registered twice")
        NETWORKS[name] = (config_cls, cls, tuples)
        cls.network_name = name
        return cls

    return deco


def make_config(name: str, overrides=None):
    """The config dataclass of network ``name`` from overrides (a dict or an instance)."""
    from unveil.models.weights import config_from

    if name not in NETWORKS:
        raise UnveilError(f"unknown network '{name}'; networks: {', '.join(sorted(NETWORKS))}")
    return config_from(NETWORKS[name][0], overrides, name, tuples=NETWORKS[name][2])


def build_network(name: str, overrides=None):
    return NETWORKS[name][1](make_config(name, overrides))


def register(name: str, *, kind: str = "inpainter", summary: str = "", rank: int = 0,
             tags: tuple[str, ...] = ()):
    """Class (or factory) decorator that registers a model under ``name``; a class's
    ``network_name`` (when set) names the network it runs."""

    def deco(factory):
        if name in _REGISTRY:
            raise ValueError(f"model '{name}' is registered twice")
        if kind not in KINDS:
            raise ValueError(f"model '{name}': kind must be one of {KINDS}, got '{kind}'")
        _REGISTRY[name] = ModelInfo(name, factory, kind, summary or (factory.__doc__ or "").strip()
                                    .split("\n")[0], rank, tuple(tags), getattr(factory, "network_name", ""))
        if isinstance(factory, type):
            factory.name = name
        return factory

    return deco


def info(name: str) -> ModelInfo:
    if name not in _REGISTRY:
        raise UnveilError(f"unknown model '{name}'; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def available(kind: str | None = "inpainter") -> list[str]:
    return sorted(n for n, i in _REGISTRY.items() if kind is None or i.kind == kind)


def require(name: str, kind: str | None = None) -> ModelInfo:
    """The registration of ``name``; with ``kind``, a model of another kind is a clear error."""
    i = info(name)
    if kind is not None and i.kind != kind:
        an = "an" if kind[0] in "aeiou" else "a"
        raise UnveilError(f"'{name}' is not {an} {kind} (it is a {i.kind}); {kind}s: {', '.join(available(kind))}")
    return i


def load(name: str, kind: str | None = None, **kwargs):
    """Instantiate a registered model by name (keyword arguments go to its constructor); with
    ``kind``, a model of another kind is a clear error."""
    return require(name, kind).factory(**kwargs)


def takes_device(name: str) -> bool:
    """Whether a registered model's constructor takes ``device`` (the learned ones do)."""
    try:
        return "device" in inspect.signature(info(name).factory).parameters
    except (TypeError, ValueError):
        return False


@lru_cache(maxsize=16)
def _shared(name: str, device: str):
    return load(name, **({"device": device} if takes_device(name) else {}))


def shared(name: str, kind: str | None = None, device: str = "cpu"):
    """The process's one instance of a registered model (loaded on first use, then reused; the
    kind is checked on every call, not part of the cache key, so a model is never loaded twice)."""
    require(name, kind)
    from unveil.models.tensors import torch_device

    torch_device(device)  # a bad device name is one clear error, before anything loads
    return _shared(name, str(device))


def runs(network_name: str) -> ModelInfo:
    """The first registered model (by name) that runs ``network_name``."""
    for n in sorted(_REGISTRY):
        if _REGISTRY[n].network == network_name:
            return _REGISTRY[n]
    raise UnveilError(f"no registered model runs network '{network_name}'")


def best(kind: str = "inpainter") -> str:
    """The registered model of this kind with the highest rank (ties: name order)."""
    names = available(kind)
    if not names:
        raise UnveilError(f"no {kind} is registered")
    return max(names, key=lambda n: (_REGISTRY[n].rank, [-ord(c) for c in n]))
