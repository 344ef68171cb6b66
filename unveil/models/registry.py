"""Models registered by name (BasicSR-style): ``@register("telea")`` on a class, ``load("telea")``.

A model module registers itself on import; :mod:`unveil.models` imports every model module, so
``unveil.models.load(name)`` sees them all. ``kind`` separates inpainters from segmenters.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from unveil.errors import UnveilError


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
    #: still scores best on the whole image (29.24 against IFACENET's 28.81 dB, see README).
    rank: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, ModelInfo] = {}


def register(name: str, *, kind: str = "inpainter", summary: str = "", rank: int = 0,
             tags: tuple[str, ...] = ()):
    """Class (or factory) decorator that registers a model under ``name``."""

    def deco(factory):
        if name in _REGISTRY:
            raise ValueError(f"model '{name}' is registered twice")
        _REGISTRY[name] = ModelInfo(name, factory, kind, summary or (factory.__doc__ or "").strip()
                                    .split("\n")[0], rank, tuple(tags))
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


def load(name: str, **kwargs):
    """Instantiate a registered model by name (keyword arguments go to its constructor)."""
    return info(name).factory(**kwargs)


def best(kind: str = "inpainter") -> str:
    """The registered model of this kind with the highest rank (ties: name order)."""
    names = available(kind)
    if not names:
        raise UnveilError(f"no {kind} is registered")
    return max(names, key=lambda n: (_REGISTRY[n].rank, [-ord(c) for c in n]))
