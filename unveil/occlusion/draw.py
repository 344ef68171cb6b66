"""A procedural surgical face mask, fitted to five face key points, with shading, pleats and straps.

Used to build the demo photo at run time (no asset from ../shared is needed). The key points are the
front end's (:class:`unveil.face.Face`): eye, eye, nose tip, mouth corner, mouth corner.
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


def draw_surgical_mask(image: np.ndarray, kps5: np.ndarray,
                       color: np.ndarray = MASK_RGB) -> tuple[np.ndarray, np.ndarray]:
    """Return (image wearing the mask, bool occluder mask incl. straps). ``image`` is not changed."""
    origin, ux, uy, d, m = face_frame(kps5)
    h = 0.62 * m  # eyes to nose tip, about

    def to_img(pts):
        pts = np.asarray(pts, np.float64)
        return origin + pts[:, :1] * ux + pts[:, 1:2] * uy

    # outline in face units: from the middle of the nose down past the chin, cheek to cheek
    top, bottom = 0.45 * h, 1.72 * m
    outline = [(-0.98 * d, top + 0.25 * h), (-0.5 * d, top + 0.02 * h), (0.0, top - 0.12 * h),
               (0.5 * d, top + 0.02 * h), (0.98 * d, top + 0.25 * h), (0.94 * d, top + 1.05 * h),
               (0.70 * d, bottom - 0.40 * h), (0.35 * d, bottom - 0.08 * h), (0.0, bottom),
               (-0.35 * d, bottom - 0.08 * h), (-0.70 * d, bottom - 0.40 * h),
               (-0.94 * d, top + 1.05 * h)]
    poly = to_img(outline)
    hgt, wid = image.shape[:2]
    body = np.zeros((hgt, wid), np.uint8)
    cv2.fillPoly(body, [np.round(poly * 16).astype(np.int32)], 1, cv2.LINE_AA, shift=4)
    body = body > 0

    # shading: darker towards the cheeks (the mask wraps around the face) and at the bottom
    yy, xx = np.mgrid[0:hgt, 0:wid].astype(np.float64)
    rel = np.stack([xx - origin[0], yy - origin[1]], -1)
    fx = (rel @ ux) / (1.0 * d)
    fy = ((rel @ uy) - top) / (bottom - top)
    shade = 1.0 - 0.28 * np.clip(np.abs(fx), 0, 1) ** 2 - 0.10 * np.clip(fy, 0, 1)
    # pleats: three soft horizontal folds across the middle
    for k in (0.30, 0.48, 0.66):
        shade -= 0.10 * np.exp(-(((fy - k) * (bottom - top)) / (0.05 * h)) ** 2) * (np.abs(fx) < 0.95)
    tex = color[None, None, :] * shade[..., None]
    rng = np.random.default_rng(0)
    tex += rng.normal(0, 2.0, tex.shape)  # fabric grain

    out = image.astype(np.float32)
    soft = cv2.GaussianBlur(body.astype(np.float32), (0, 0), max(0.6, d / 120))[..., None]
    out = out * (1 - soft) + tex * soft

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
