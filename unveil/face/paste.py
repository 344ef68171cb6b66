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
#: a crop mapped back at more than this many crop pixels per photo pixel (a face smaller in the
#: photo than in its crop) is first shrunk to its size in the photo by area averaging
SHRINK_FIRST = 1.25


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


def image_window(image_shape: tuple[int, ...], aligned: AlignedFace) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the part of the photo the face crop covers (clipped), or None if none."""
    h, w = image_shape[:2]
    corners = crop_corners(aligned.inverse, aligned.size)
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, [w, h])
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def warp_to_window(crop_array: np.ndarray, aligned: AlignedFace, window: tuple[int, int, int, int],
                   interp: int = cv2.INTER_LINEAR, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """A crop-space array mapped back onto the photo's ``window`` (see :func:`image_window`): only
    the window is computed, so a face in a 6000 px photo costs what it does in a small one."""
    x0, y0, x1, y1 = window
    inv = aligned.inverse.copy()
    inv[:, 2] -= (x0, y0)  # into the window's coordinates
    if interp == cv2.INTER_AREA and aligned.scale > SHRINK_FIRST:
        # warpAffine samples the crop (its INTER_AREA is bilinear): shrunk several times over, a
        # restored crop's fine detail would come back as speckle, so it is shrunk by area first
        h, w = crop_array.shape[:2]
        sw, sh = max(1, round(w / aligned.scale)), max(1, round(h / aligned.scale))
        kx, ky = w / sw, h / sh
        crop_array = cv2.resize(crop_array, (sw, sh), interpolation=cv2.INTER_AREA)
        # pixel (x, y) of the shrunk crop is pixel (kx x + (kx - 1) / 2, ky y + (ky - 1) / 2) of the crop
        inv[:, 2] += inv[:, 0] * (kx - 1) / 2 + inv[:, 1] * (ky - 1) / 2
        inv[:, 0] *= kx
        inv[:, 1] *= ky
        interp = cv2.INTER_LINEAR
    return cv2.warpAffine(crop_array, inv, (x1 - x0, y1 - y0), flags=interp, borderMode=border,
                          borderValue=0)


def mask_to_window(crop_mask: np.ndarray, aligned: AlignedFace,
                   window: tuple[int, int, int, int]) -> np.ndarray:
    """bool crop mask -> bool mask of the photo's window (a pixel is in when its centre is)."""
    soft = warp_to_window(crop_mask.astype(np.float32), aligned, window)
    return soft >= 0.5


def paste_window(image: np.ndarray, crop: np.ndarray, aligned: AlignedFace, window: tuple[int, int, int, int],
                 region: np.ndarray | None = None, feather: float = FEATHER) -> np.ndarray:
    """The photo's ``window`` (see :func:`image_window`) with ``crop`` blended in, as a new uint8
    array of the window's size: only the window is read and computed, never the whole photo."""
    x0, y0, x1, y1 = window
    weight = blend_weight(aligned.size, region, feather, aligned.valid)
    if aligned.scale < 1:
        back = warp_to_window(crop, aligned, window, cv2.INTER_CUBIC, cv2.BORDER_REPLICATE)
    else:
        back = warp_to_window(crop, aligned, window, cv2.INTER_AREA, cv2.BORDER_REPLICATE)
        if aligned.scale > SHRINK_FIRST and region is not None:
            # the area-shrunk crop where it was filled; around that, the photo's own pixels come
            # back as sampled (shrunk, they would blur the photo in the blend's band)
            mix = warp_to_window(region.astype(np.float32), aligned, window)[..., None]
            sharp = warp_to_window(crop, aligned, window, cv2.INTER_LINEAR, cv2.BORDER_REPLICATE)
            back = sharp + mix * (back.astype(np.float32) - sharp)
    wgt = warp_to_window(weight, aligned, window)[..., None]
    out = image[y0:y1, x0:x1].copy()
    win = out.astype(np.float32)
    blended = win + wgt * (back.astype(np.float32) - win)
    touch = wgt[..., 0] >= 1 / 512
    out[touch] = np.clip(blended[touch] + 0.5, 0, 255).astype(np.uint8)
    return out


def replaced_in_full(aligned: AlignedFace, window: tuple[int, int, int, int], region: np.ndarray | None = None,
                     feather: float = FEATHER) -> np.ndarray:
    """bool mask of the photo's ``window``: the pixels :func:`paste_window` (same ``region`` and
    ``feather``) replaces in full with the crop's, not blended with what was there."""
    weight = blend_weight(aligned.size, region, feather, aligned.valid)
    return warp_to_window(weight, aligned, window) >= 1 - 1 / 512


def paste_back(image: np.ndarray, crop: np.ndarray, aligned: AlignedFace,
               region: np.ndarray | None = None, feather: float = FEATHER) -> np.ndarray:
    """A copy of ``image`` with ``crop`` (same size as ``aligned.crop``) blended back in place.

    ``region``: bool crop-space mask of the pixels to replace (e.g. the inpainted hole); default
    the whole face crop. Pixels outside the face region are returned byte-identical.
    """
    out = image.copy()
    window = image_window(image.shape, aligned)
    if window is not None:
        x0, y0, x1, y1 = window
        out[y0:y1, x0:x1] = paste_window(image, crop, aligned, window, region, feather)
    return out


def face_weight(image_shape: tuple[int, int], aligned: AlignedFace, feather: float = FEATHER) -> np.ndarray:
    """Float image-space weight (0..1) with which paste-back replaces each pixel for this face."""
    weight = blend_weight(aligned.size, None, feather, aligned.valid)
    return cv2.warpAffine(weight, aligned.inverse, (image_shape[1], image_shape[0]),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def face_region(image_shape: tuple[int, int], aligned: AlignedFace, feather: float = FEATHER) -> np.ndarray:
    """bool image-space mask of the pixels paste-back may change for this face."""
    return face_weight(image_shape, aligned, feather) >= 1 / 512
