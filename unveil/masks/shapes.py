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


#: eye centres on the aligned crop (shares of its side): unveil's alignment template
#: (:data:`unveil.face.align.TEMPLATE`), which frames faces as UTKFace does
EYES = ((0.3065, 0.2910), (0.6935, 0.2910))


def eyes_shape(size: int, seed: int | tuple = 0, jitter: float = 0.03) -> np.ndarray:
    """A hole where sunglasses sit on an aligned crop: two rounded lenses over the eyes and brows'
    lower edge, a bridge over the nose, and (on about half the draws) the temple arms out to the
    crop's sides. Lens size, roundness, a lower outer corner (aviators) and the position are
    jittered. bool size x size."""
    rng = np.random.default_rng(seed)
    j = lambda s=1.0: rng.uniform(-jitter, jitter) * s  # noqa: E731
    d = EYES[1][0] - EYES[0][0]
    scale = rng.uniform(0.85, 1.15)
    hw, hh = 0.43 * d * scale * (1 + j(3)), 0.32 * d * scale * (1 + j(3))
    round_x, round_y = rng.uniform(0.35, 0.9), rng.uniform(0.4, 0.9)
    droop = rng.uniform(0.0, 0.25)  # aviators: the outer lower corner lower
    dy = 0.06 * d + j()
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    canvas = np.zeros((size, size), np.uint8)
    for side, (ex, ey) in zip((-1, 1), EYES):
        x = ex + j() + hw * np.sign(c) * np.abs(c) ** round_x
        y = ey + dy + hh * np.sign(s) * np.abs(s) ** round_y
        outer = np.clip(side * (x - ex) / hw, 0, 1) * np.clip(s, 0, 1)
        y = y + droop * hh * outer
        pts = np.stack([x, y], 1) * size
        cv2.fillPoly(canvas, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    w = max(1, int(round(size * 0.025 * scale)))
    y_bridge = int(round((EYES[0][1] - 0.02 + j()) * size))
    cv2.line(canvas, (int(EYES[0][0] * size), y_bridge), (int(EYES[1][0] * size), y_bridge), 1, w)
    if rng.random() < 0.5:
        for x0, x1 in ((EYES[0][0] - hw * 0.9, -0.02), (EYES[1][0] + hw * 0.9, 1.02)):
            y0 = EYES[0][1] + j()
            cv2.line(canvas, (int(x0 * size), int(y0 * size)), (int(x1 * size), int((y0 - 0.01) * size)), 1, w)
    return canvas.astype(bool)
