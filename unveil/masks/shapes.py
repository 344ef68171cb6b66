"""Geometric hole shapes on aligned face crops (UTKFace framing: eyes at ~1/3, mouth at ~3/4)."""
from __future__ import annotations

import cv2
import numpy as np


def facemask_shape(size: int, seed: int | tuple = 0, jitter: float = 0.03) -> np.ndarray:
    """A lower-face hole where a face mask sits on an aligned crop: from the middle of the nose
    down past the chin, cheek to cheek, with a rounded lower edge. bool size x size."""
    rng = np.random.default_rng(seed)
    j = lambda: rng.uniform(-jitter, jitter)  # noqa: E731
    top = 0.50 + j()
    left, right = 0.10 + j(), 0.90 + j()
    bottom = 1.02 + j()
    # outline: top edge rises slightly over the nose bridge; sides curve in towards the chin
    pts = [
        (left, top + 0.06), (0.3 + j(), top + 0.01), (0.5, top - 0.02 + j()),
        (0.7 + j(), top + 0.01), (right, top + 0.06), (right - 0.02, top + 0.25),
        (right - 0.10, bottom - 0.06), (0.5, bottom), (left + 0.10, bottom - 0.06),
        (left + 0.02, top + 0.25),
    ]
    poly = np.array([(x * size, y * size) for x, y in pts], np.float32)
    canvas = np.zeros((size, size), np.uint8)
    cv2.fillPoly(canvas, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return canvas.astype(bool)
