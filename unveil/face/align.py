"""Alignment: a similarity transform from five face key points to a fixed template, and its inverse.

The template is unveil's own, measured so that aligned crops frame faces exactly like the UTKFace
crops our models train on: the mean MediaPipe key points (eyes, nose tip, mouth corners) of 300
UTKFace train faces, made left-right symmetric, as fractions of the crop side.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from unveil.errors import UnveilError

#: (5, 2) eye, eye, nose tip, mouth corner, mouth corner, in fractions of the crop side.
TEMPLATE = np.array([[0.3065, 0.2910], [0.6935, 0.2910], [0.5000, 0.5446],
                     [0.3341, 0.6937], [0.6659, 0.6937]])


def framed_template(scale: float, lift: float) -> np.ndarray:
    """:data:`TEMPLATE` for a wider framing: the face at ``scale`` of its size in the crop, about
    the crop's centre, moved up by ``lift`` of the side."""
    return 0.5 + (TEMPLATE - 0.5) * scale - np.array([0.0, lift])


#: The wide crop's framing: the face at 0.7 of its size in the crop, moved up by 8 % of the side,
#: so chin, jaw, neck and ears are in view. The pipeline segments occluders there too, so the
#: part of a face mask below the (tight) crop's edge is found and filled.
WIDE_SCALE, WIDE_LIFT = 0.7, 0.08
WIDE_TEMPLATE = framed_template(WIDE_SCALE, WIDE_LIFT)

def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale, translation; no
    reflection) mapping points ``src`` onto ``dst`` (Umeyama 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s ** 2).sum() / len(src)
    if var_s < 1e-12:
        raise UnveilError("face key points are degenerate (all at one place)")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    scale = (sig * np.diag(e)).sum() / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64)
    return pts @ m[:, :2].T + m[:, 2]


@dataclass
class AlignedFace:
    crop: np.ndarray  # size x size x 3 uint8
    matrix: np.ndarray  # 2x3, image -> crop
    valid: np.ndarray  # size x size bool: crop pixels that come from inside the image

    @property
    def size(self) -> int:
        return self.crop.shape[0]

    @property
    def inverse(self) -> np.ndarray:
        return invert(self.matrix)

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def to_crop(self, pts: np.ndarray) -> np.ndarray:
        return apply(self.matrix, pts)

    def to_image(self, pts: np.ndarray) -> np.ndarray:
        return apply(self.inverse, pts)

    def onto(self, other: "AlignedFace") -> np.ndarray:
        """2x3: this crop's pixel coordinates -> ``other``'s (two alignments of one face)."""
        inv = self.inverse
        return np.hstack([other.matrix[:, :2] @ inv[:, :2], (other.matrix[:, :2] @ inv[:, 2] + other.matrix[:, 2])[:, None]])

    def mask_onto(self, mask: np.ndarray, other: "AlignedFace") -> np.ndarray:
        """A bool mask of this crop, resampled into ``other``'s crop (a pixel is in when its centre is)."""
        m = cv2.warpAffine(mask.astype(np.float32), self.onto(other), (other.size, other.size),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return m >= 0.5


def crop_corners(m_inv: np.ndarray, size: int) -> np.ndarray:
    """The four corners of a size x size crop, in image coordinates."""
    c = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float64)
    return apply(m_inv, c)


def align_face(image: np.ndarray, kps5: np.ndarray, size: int = 256,
               template: np.ndarray = TEMPLATE) -> AlignedFace:
    """Warp the face with key points ``kps5`` to a size x size crop in unveil's framing.

    Only the face's region of the image is read; a face much larger than the crop is first shrunk
    with area averaging so the crop does not alias (a 6000 px photo costs about what a small one does).
    """
    m = similarity_transform(kps5, np.asarray(template) * size)
    h, w = image.shape[:2]
    corners = crop_corners(invert(m), size)
    x0, y0 = np.floor(corners.min(0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        raise UnveilError("the face lies outside the image")
    region = image[y0:y1, x0:x1]
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    f = 1.0
    if scale < 0.5:
        f = min(1.0, scale * 1.5)
        region = cv2.resize(region, (max(1, round(region.shape[1] * f)), max(1, round(region.shape[0] * f))),
                            interpolation=cv2.INTER_AREA)
    # crop = m @ (p_region / f + offset)
    local = np.hstack([m[:, :2] / f, (m[:, :2] @ np.array([x0, y0]) + m[:, 2])[:, None]])
    crop = cv2.warpAffine(region, local, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    ones = np.ones(region.shape[:2], np.uint8)
    valid = cv2.warpAffine(ones, local, (size, size), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    return AlignedFace(crop, m, valid)
