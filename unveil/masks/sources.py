"""Mask sources for evaluation and training: ``source(index, size) -> (mask, bin)``.

Specs understood by :func:`mask_source`:
    ``nvidia``            NVIDIA irregular test masks, cycling through the six ratio bins
    ``nvidia:30-40``      only that bin
    ``freeform``          procedural strokes+boxes (medium), cycling through the six bins
    ``freeform:thick``    a style (thin, medium, thick), still cycling through the bins
    ``facemask``          a lower-face shape, where a face mask sits on an aligned crop
    ``eyes``              the shape of sunglasses over the eyes of an aligned crop
    ``PATH``              a folder of mask images (white = hole), cycled in name order
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from unveil.data.paths import data_root
from unveil.errors import UnveilError
from unveil.masks.bins import BINS, bin_of, hole_ratio
from unveil.masks.freeform import STYLES, freeform_mask
from unveil.masks.shapes import eyes_shape, facemask_shape
from unveil.io import read_mask


class MaskSource:
    """Deterministic masks: the same (index, size) always gives the same mask."""

    name: str = "masks"

    def __call__(self, index: int, size: int) -> tuple[np.ndarray, str]:
        raise NotImplementedError


def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    if mask.shape == (size, size):
        return mask
    return cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0


@lru_cache(maxsize=4)
def _nvidia_index(folder: Path) -> dict[str, list[tuple[str, float]]]:
    by_bin: dict[str, list[tuple[str, float]]] = {b: [] for b in BINS}
    with open(folder / "ratios.csv", newline="") as f:
        for row in csv.DictReader(f):
            by_bin.setdefault(row["bucket"], []).append((row["file"], float(row["hole_ratio"])))
    return by_bin


@dataclass
class NvidiaMasks(MaskSource):
    folder: Path
    bins: tuple[str, ...] = tuple(BINS)
    name: str = "nvidia"

    def __post_init__(self):
        index = _nvidia_index(self.folder)
        for b in self.bins:
            if not index.get(b):
                raise UnveilError(f"no NVIDIA masks in bin '{b}' (bins: {', '.join(BINS)})")
        self._index = index

    def files(self, bin: str) -> list[tuple[str, float]]:
        return self._index[bin]

    def __call__(self, index: int, size: int) -> tuple[np.ndarray, str]:
        b = self.bins[index % len(self.bins)]
        name, _ = self._index[b][(index // len(self.bins)) % len(self._index[b])]
        return _resize_mask(read_mask(self.folder / name), size), b


@dataclass
class FreeformMasks(MaskSource):
    style: str = "medium"
    seed: int = 0
    bins: tuple[str, ...] = tuple(BINS)
    name: str = field(default="freeform")

    def __call__(self, index: int, size: int) -> tuple[np.ndarray, str]:
        b = self.bins[index % len(self.bins)]
        return freeform_mask(size, (self.seed, index), self.style, bin=b), b


#: The procedural holes fitted to the aligned face, by mask-source name.
SHAPES = {"facemask": facemask_shape, "eyes": eyes_shape}


@dataclass
class ShapeMasks(MaskSource):
    """A hole shape of :data:`SHAPES` (``name``), drawn with the seed ``(seed, index)``."""
    name: str = "facemask"
    seed: int = 0

    def __call__(self, index: int, size: int) -> tuple[np.ndarray, str]:
        m = SHAPES[self.name](size, (self.seed, index))
        return m, bin_of(hole_ratio(m))


@dataclass
class FolderMasks(MaskSource):
    folder: Path
    name: str = "folder"

    def __post_init__(self):
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))
        if not self._files:
            raise UnveilError(f"{self.folder}: no mask images (.png/.jpg/.bmp) found")

    def __call__(self, index: int, size: int) -> tuple[np.ndarray, str]:
        m = _resize_mask(read_mask(self._files[index % len(self._files)]), size)
        return m, bin_of(hole_ratio(m))


def mask_source(spec: str = "nvidia", data=None, seed: int = 0) -> MaskSource:
    kind, _, arg = spec.partition(":")
    if kind == "nvidia":
        folder = data_root(data, need="masks/irregular/ratios.csv") / "masks" / "irregular"
        if arg and arg not in BINS:
            raise UnveilError(f"unknown bin '{arg}': choose one of {', '.join(BINS)}")
        return NvidiaMasks(folder, (arg,) if arg else tuple(BINS))
    if kind == "freeform":
        style = arg or "medium"
        if style not in STYLES:
            raise UnveilError(f"unknown free-form style '{style}': choose {', '.join(STYLES)}")
        return FreeformMasks(style, seed, name=f"freeform-{style}")
    if kind in SHAPES:
        return ShapeMasks(kind, seed)
    if Path(spec).is_dir():
        return FolderMasks(Path(spec))
    raise UnveilError(
        f"unknown mask source '{spec}': use nvidia[:BIN], freeform[:thin|medium|thick], "
        f"facemask, eyes, or a folder of mask images"
    )
