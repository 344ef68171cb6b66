"""Procedural occluders fitted to five face key points: a surgical face mask (shading, pleats,
straps), sunglasses, a knitted scarf and a hand.

Drawn from nothing but the key points (no asset from ../shared), so the photos they make may be
committed: the demo photo and the gallery (:mod:`unveil.eval.gallery`) are built with them at run
time. The key points are the front end's (:class:`unveil.face.Face`): eye, eye, nose tip, mouth
corner, mouth corner. Each ``draw_*`` returns (the image wearing the occluder, the bool occluder
mask); the input image is not changed.
"""
from __future__ import annotations

import cv2
import numpy as np

MASK_RGB = np.array([170, 205, 228], np.float32)  # light surgical blue


def face_frame(kps5: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(origin at mid-eyes, unit x towards the image-right eye, unit y down the face, eye distance
    d, eyes-to-mouth height m) from five key points: eye, eye, nose tip, mouth corner, mouth corner
    (the front end's order, see :mod:`unveil.face.detect`)."""
    p = np.asarray(kps5, np.float64)
    left, right = (p[0], p[1]) if p[0][0] <= p[1][0] else (p[1], p[0])
    origin = (left + right) / 2
    ux = (right - left) / np.linalg.norm(right - left)
    uy = np.array([-ux[1], ux[0]])
    mouth = (p[3] + p[4]) / 2
    if np.dot(mouth - origin, uy) < 0:
        uy = -uy
    d = float(np.linalg.norm(right - left))
    m = float(max(np.dot(mouth - origin, uy), 0.6 * d))
    return origin, ux, uy, d, m


def _frame_points(kps5: np.ndarray):
    """``to_img(points in face units) -> image points`` and the frame (origin, ux, uy, d, m)."""
    origin, ux, uy, d, m = face_frame(kps5)

    def to_img(pts):
        pts = np.asarray(pts, np.float64)
        return origin + pts[:, :1] * ux + pts[:, 1:2] * uy

    return to_img, origin, ux, uy, d, m


def _poly_mask(shape, pts: np.ndarray) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_AA, shift=4)
    return m > 0


def _face_coords(shape, origin, ux, uy) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's coordinates along ux and uy from the origin (image pixels)."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    rel = np.stack([xx - origin[0], yy - origin[1]], -1)
    return rel @ ux, rel @ uy


def _composite(image: np.ndarray, mask: np.ndarray, tex: np.ndarray, d: float) -> np.ndarray:
    out = image.astype(np.float32)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(0.6, d / 120))[..., None] * mask[..., None]
    return np.clip(out * (1 - soft) + tex * soft + 0.5, 0, 255).astype(np.uint8)


def draw_surgical_mask(image: np.ndarray, kps5: np.ndarray,
                       color: np.ndarray = MASK_RGB) -> tuple[np.ndarray, np.ndarray]:
    """Return (image wearing the mask, bool occluder mask incl. straps). ``image`` is not changed."""
    to_img, origin, ux, uy, d, m = _frame_points(kps5)
    h = 0.62 * m  # eyes to nose tip, about

    # outline in face units: from the middle of the nose down past the chin, cheek to cheek
    top, bottom = 0.45 * h, 1.72 * m
    outline = [(-0.98 * d, top + 0.25 * h), (-0.5 * d, top + 0.02 * h), (0.0, top - 0.12 * h),
               (0.5 * d, top + 0.02 * h), (0.98 * d, top + 0.25 * h), (0.94 * d, top + 1.05 * h),
               (0.70 * d, bottom - 0.40 * h), (0.35 * d, bottom - 0.08 * h), (0.0, bottom),
               (-0.35 * d, bottom - 0.08 * h), (-0.70 * d, bottom - 0.40 * h),
               (-0.94 * d, top + 1.05 * h)]
    body = _poly_mask(image.shape, to_img(outline))
    hgt, wid = image.shape[:2]

    # shading: darker towards the cheeks (the mask wraps around the face) and at the bottom
    fx, fy = _face_coords(image.shape, origin, ux, uy)
    fx, fy = fx / d, (fy - top) / (bottom - top)
    shade = 1.0 - 0.28 * np.clip(np.abs(fx), 0, 1) ** 2 - 0.10 * np.clip(fy, 0, 1)
    # pleats: three soft horizontal folds across the middle
    for k in (0.30, 0.48, 0.66):
        shade -= 0.10 * np.exp(-(((fy - k) * (bottom - top)) / (0.05 * h)) ** 2) * (np.abs(fx) < 0.95)
    tex = color[None, None, :] * shade[..., None]
    rng = np.random.default_rng(0)
    tex += rng.normal(0, 2.0, tex.shape)  # fabric grain

    out = _composite(image, body, tex, d).astype(np.float32)

    # straps: from the mask's corners back towards the ears
    straps = np.zeros((hgt, wid), np.uint8)
    width = max(2, int(round(d / 22)))
    for a, b in [((-0.96 * d, top + 0.3 * h), (-1.45 * d, top - 0.1 * h)),
                 ((0.96 * d, top + 0.3 * h), (1.45 * d, top - 0.1 * h)),
                 ((-0.85 * d, top + 1.35 * h), (-1.35 * d, top + 1.05 * h)),
                 ((0.85 * d, top + 1.35 * h), (1.35 * d, top + 1.05 * h))]:
        pa, pb = to_img([a, b])
        cv2.line(straps, tuple(np.round(pa).astype(int)), tuple(np.round(pb).astype(int)), 1, width,
                 cv2.LINE_AA)
    straps = (straps > 0) & ~body
    out[straps] = out[straps] * 0.3 + np.array([235, 238, 240], np.float32) * 0.7
    occluder = body | straps
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), occluder


def draw_sunglasses(image: np.ndarray, kps5: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dark rounded lenses over the eyes with a sky reflection, a bridge and temple arms."""
    to_img, origin, ux, uy, d, m = _frame_points(kps5)
    lens = np.zeros(image.shape[:2], bool)
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    for cx in (-0.5 * d, 0.5 * d):  # a soft rectangle around each eye, a little lower on the outside
        x = cx + 0.43 * d * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** 0.6
        y = 0.06 * d + 0.32 * d * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** 0.7
        lens |= _poly_mask(image.shape, to_img(np.stack([x, y], 1)))
    frame = np.zeros(image.shape[:2], np.uint8)
    w = max(2, int(round(d / 18)))
    for a, b in [((-0.1 * d, -0.04 * d), (0.1 * d, -0.04 * d)),  # bridge
                 ((-0.92 * d, -0.08 * d), (-1.25 * d, -0.12 * d)), ((0.92 * d, -0.08 * d), (1.25 * d, -0.12 * d))]:
        pa, pb = to_img([a, b])
        cv2.line(frame, tuple(np.round(pa).astype(int)), tuple(np.round(pb).astype(int)), 1, w, cv2.LINE_AA)
    occ = lens | (frame > 0)
    fx, fy = _face_coords(image.shape, origin, ux, uy)
    g = np.clip((fy / d + 0.3) / 0.7, 0, 1)  # darker at the bottom of the lens
    tex = np.stack([28 + 30 * (1 - g), 30 + 34 * (1 - g), 38 + 46 * (1 - g)], -1)
    glare = np.exp(-(((fx + fy * 0.8) % (0.5 * d) - 0.12 * d) / (0.035 * d)) ** 2) * (fy < 0)
    tex = tex + 60 * glare[..., None]
    tex[frame > 0] = (22, 22, 24)
    return _composite(image, occ, tex, d), occ


def draw_scarf(image: np.ndarray, kps5: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A red knitted scarf from just below the nose to the neck, wider than the face."""
    to_img, origin, ux, uy, d, m = _frame_points(kps5)
    top, bottom = 0.6 * m, 2.0 * m
    outline = [(-1.3 * d, top + 0.22 * m), (-0.6 * d, top + 0.02 * m), (0.0, top - 0.04 * m), (0.6 * d, top + 0.02 * m),
               (1.3 * d, top + 0.22 * m), (1.45 * d, bottom), (0.0, bottom + 0.12 * m), (-1.45 * d, bottom)]
    occ = _poly_mask(image.shape, to_img(outline))
    fx, fy = _face_coords(image.shape, origin, ux, uy)
    knit = 0.82 + 0.18 * np.abs(np.sin(fx / (0.06 * d) * np.pi + 0.6 * np.sin(fy / (0.09 * d) * np.pi)))
    ribs = 1.0 - 0.22 * (np.sin((fy - top) / (0.32 * m) * np.pi) > 0.85)  # horizontal folds
    shade = knit * ribs * (1 - 0.25 * np.clip(np.abs(fx) / (1.5 * d), 0, 1) ** 2)
    tex = np.array([176, 34, 44], np.float64)[None, None] * shade[..., None]
    return _composite(image, occ, tex, d), occ


def draw_hand(image: np.ndarray, kps5: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A hand held over the mouth and one cheek: a palm, four fingers and a thumb, skin-toned with
    shading and creases between the fingers."""
    to_img, origin, ux, uy, d, m = _frame_points(kps5)
    occ = np.zeros(image.shape[:2], bool)
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    # palm: an ellipse over the mouth, tilted, reaching the chin
    cx, cy, rx, ry, a = 0.25 * d, 1.05 * m, 0.62 * d, 0.5 * m, 0.35
    pts = np.stack([rx * np.cos(t), ry * np.sin(t)], 1) @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    occ |= _poly_mask(image.shape, to_img(pts + (cx, cy)))
    fingers = np.zeros(image.shape[:2], np.uint8)
    w = int(round(0.2 * d))
    for k, (x0, y0, x1, y1) in enumerate([(-0.25, 0.72, -0.95, 0.32), (-0.18, 0.95, -1.02, 0.62),
                                          (-0.12, 1.18, -0.98, 0.92), (-0.05, 1.38, -0.85, 1.22),
                                          (0.65, 1.35, 0.98, 0.72)]):
        pa, pb = to_img([(x0 * d, y0 * m), (x1 * d, y1 * m)])
        cv2.line(fingers, tuple(np.round(pa).astype(int)), tuple(np.round(pb).astype(int)), k + 1,
                 w if k < 4 else int(w * 1.15), cv2.LINE_AA)
    occ |= fingers > 0
    fx, fy = _face_coords(image.shape, origin, ux, uy)
    shade = 1.0 - 0.18 * np.clip((fx / d + 1.0) / 2.0, 0, 1) - 0.08 * np.clip((fy - 0.6 * m) / m, 0, 1)
    tex = np.array([226, 172, 142], np.float64)[None, None] * shade[..., None]
    edges = cv2.morphologyEx(fingers, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    tex[edges & occ] *= 0.78  # creases between fingers
    rng = np.random.default_rng(1)
    tex += rng.normal(0, 1.5, tex.shape)
    return _composite(image, occ, tex, d), occ


#: The procedural occluders by kind (the gallery's rows).
DRAWN = {"facemask": draw_surgical_mask, "sunglasses": draw_sunglasses, "scarf": draw_scarf, "hand": draw_hand}


def demo_photo() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-image's astronaut (a public-domain NASA portrait) wearing a surgical mask drawn on her
    face: (clean photo, photo with the drawn face mask, occluder mask, 5 key points). The photo of
    ``make demo`` and of the bench's end-to-end rows."""
    from skimage import data

    from unveil.face import get_detector

    photo = data.astronaut()
    face = get_detector().detect_one(photo)
    masked, occ = draw_surgical_mask(photo, face.kps5)
    return photo, masked, occ, face.kps5
