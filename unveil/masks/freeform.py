"""Procedural free-form masks: brush strokes plus boxes, in LaMa-like thin/medium/thick styles.

Deterministic given a seed. ``freeform_mask(256, seed=3, bin="30-40")`` keeps adding strokes and
boxes until the hole ratio reaches a target drawn inside the bin, discarding any element that
would overshoot it, so the result always lies in the requested bin.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from unveil.errors import UnveilError
from unveil.masks.bins import BINS, hole_ratio


@dataclass(frozen=True)
class FreeformStyle:
    """Sizes are fractions of the image side (so a style looks the same at any size)."""

    width: tuple[float, float]  # brush width
    segment: tuple[float, float]  # length of one stroke segment
    vertices: tuple[int, int]  # segments per stroke
    box_prob: float  # chance that an element is a box rather than a stroke
    box_side: tuple[float, float]


STYLES: dict[str, FreeformStyle] = {
    "thin": FreeformStyle((0.015, 0.04), (0.04, 0.20), (4, 12), 0.0, (0.1, 0.2)),
    "medium": FreeformStyle((0.04, 0.10), (0.06, 0.25), (3, 8), 0.15, (0.1, 0.3)),
    "thick": FreeformStyle((0.08, 0.20), (0.08, 0.30), (2, 6), 0.3, (0.15, 0.45)),
}


def _stroke(canvas: np.ndarray, rng: np.random.Generator, st: FreeformStyle, scale: float) -> None:
    h, w = canvas.shape
    side = min(h, w)
    width = max(1, int(rng.uniform(*st.width) * side * scale))
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(st.vertices[0], st.vertices[1] + 1))):
        angle += rng.uniform(-np.pi / 2, np.pi / 2)
        length = rng.uniform(*st.segment) * side * scale
        nx, ny = x + length * np.cos(angle), y + length * np.sin(angle)
        if not (0 <= nx < w and 0 <= ny < h):  # bounce off the border instead of running along it
            angle += np.pi
            nx, ny = x + length * np.cos(angle), y + length * np.sin(angle)
        nx, ny = float(np.clip(nx, 0, w - 1)), float(np.clip(ny, 0, h - 1))
        cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), 1, width, cv2.LINE_8)
        cv2.circle(canvas, (int(nx), int(ny)), width // 2, 1, -1)
        x, y = nx, ny


def _box(canvas: np.ndarray, rng: np.random.Generator, st: FreeformStyle, scale: float) -> None:
    h, w = canvas.shape
    bw = max(2, int(rng.uniform(*st.box_side) * w * scale))
    bh = max(2, int(rng.uniform(*st.box_side) * h * scale))
    x0, y0 = int(rng.integers(0, max(1, w - bw))), int(rng.integers(0, max(1, h - bh)))
    canvas[y0:y0 + bh, x0:x0 + bw] = 1


def freeform_mask(size: int | tuple[int, int], seed: int | tuple = 0, style: str = "medium",
                  bin: str | None = None, max_tries: int = 400) -> np.ndarray:
    """A bool mask (True = hole) of ``size`` (side or (H, W)).

    With ``bin`` (e.g. ``"20-30"``) the hole ratio is guaranteed to fall inside that bin;
    without, 1-6 elements are drawn (LaMa-style) and the ratio is whatever they cover.
    """
    if style not in STYLES:
        raise UnveilError(f"unknown free-form style '{style}': choose {', '.join(STYLES)}")
    st = STYLES[style]
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    canvas = np.zeros((h, w), np.uint8)

    def add(c: np.ndarray, scale: float = 1.0) -> None:
        (_box if rng.random() < st.box_prob else _stroke)(c, rng, st, scale)

    if bin is None:
        for _ in range(int(rng.integers(1, 7))):
            add(canvas)
        return canvas.astype(bool)

    if bin not in BINS:
        raise UnveilError(f"unknown hole-ratio bin '{bin}': choose one of {', '.join(BINS)}")
    lo, hi = BINS[bin]
    target = rng.uniform(max(lo, 0.01), hi)
    scale, misses = 1.0, 0
    for _ in range(max_tries):
        trial = canvas.copy()
        add(trial, scale)
        r = hole_ratio(trial)
        if r >= hi:  # overshoot: drop the element, and draw smaller ones after repeated misses
            misses += 1
            if misses % 3 == 0:
                scale *= 0.7
            continue
        canvas = trial
        if r >= target:
            break
    r = hole_ratio(canvas)
    if not lo <= r < hi or r == 0:
        raise RuntimeError(f"free-form generator missed bin {bin} (ratio {r:.3f}, seed {seed})")
    return canvas.astype(bool)
