"""Paste-back: warp a restored crop into the photo with feathered edges, touching only the face.

The blend weight lives in crop space: the region to replace (the whole face crop, or a hole mask)
is grown and blurred by a feather of ``feather`` x crop size, then limited to a window whose edges
fade to zero inside the crop. Mapped back to the photo, the weight is exactly zero outside the
face region, so those pixels stay byte-identical, and edge width scales with the face's size.
"""
from __future__ import annotations

import cv2
import numpy as np

from unveil.face.align import AlignedFace, crop_corners

FEATHER = 0.04  # fraction of the crop side


def blend_weight(size: int, region: np.ndarray | None = None, feather: float = FEATHER,
                 valid: np.ndarray | None = None) -> np.ndarray:
    """Float weight size x size in [0, 1]: 1 where the crop replaces the photo, 0 at its border."""
    r = max(1, int(round(feather * size)))
    window = np.zeros((size, size), np.float32)
    window[2 * r:size - 2 * r, 2 * r:size - 2 * r] = 1
    window = cv2.GaussianBlur(window, (0, 0), r / 2)
    if valid is not None:
        window *= cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32)
    if region is None:
        return window
    grown = cv2.dilate(region.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    soft = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), r / 2)
    soft = np.maximum(soft, region.astype(np.float32))  # the hole itself is fully replaced
    return np.minimum(soft, window) if region.any() else soft * 0


def paste_back(image: np.ndarray, crop: np.ndarray, aligned: AlignedFace,
               region: np.ndarray | None = None, feather: float = FEATHER) -> np.ndarray:
    """A copy of ``image`` with ``crop`` (same size as ``aligned.crop``) blended back in place.

    ``region``: bool crop-space mask of the pixels to replace (e.g. the inpainted hole); default
    the whole face crop. Pixels outside the face region are returned byte-identical.
    """
    size = aligned.size
    weight = blend_weight(size, region, feather, aligned.valid)
    out = image.copy()
    h, w = image.shape[:2]
    corners = crop_corners(aligned.inverse, size)
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, [w, h])
    if x1 <= x0 or y1 <= y0:
        return out
    inv = aligned.inverse.copy()
    inv[:, 2] -= (x0, y0)  # into the window's coordinates
    bw, bh = int(x1 - x0), int(y1 - y0)
    interp = cv2.INTER_CUBIC if aligned.scale < 1 else cv2.INTER_AREA
    back = cv2.warpAffine(crop, inv, (bw, bh), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    wgt = cv2.warpAffine(weight, inv, (bw, bh), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    win = out[y0:y1, x0:x1].astype(np.float32)
    blended = win + wgt * (back.astype(np.float32) - win)
    touch = wgt[..., 0] >= 1 / 512
    win_u8 = out[y0:y1, x0:x1]
    win_u8[touch] = np.clip(blended[touch] + 0.5, 0, 255).astype(np.uint8)
    return out


def face_weight(image_shape: tuple[int, int], aligned: AlignedFace, feather: float = FEATHER) -> np.ndarray:
    """Float image-space weight (0..1) with which paste-back replaces each pixel for this face."""
    weight = blend_weight(aligned.size, None, feather, aligned.valid)
    return cv2.warpAffine(weight, aligned.inverse, (image_shape[1], image_shape[0]),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def face_region(image_shape: tuple[int, int], aligned: AlignedFace, feather: float = FEATHER) -> np.ndarray:
    """bool image-space mask of the pixels paste-back may change for this face."""
    return face_weight(image_shape, aligned, feather) >= 1 / 512
