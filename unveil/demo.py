"""``make demo``: scikit-image's astronaut (a public-domain NASA portrait) wearing a surgical mask
that unveil draws, restored by the best registered model. Nothing is downloaded; no shared data.

Steps: find the face and its 5 landmarks (dlib HOG + 5-point model), draw the mask, crop a square
around the face, inpaint the occluder (slightly dilated) at 256 px, and paste back only the hole.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unveil.errors import UnveilError
from unveil.eval.report import image_grid
from unveil.io import write_image
from unveil.models import best, load
from unveil.occlusion import draw_surgical_mask
from unveil.occlusion.draw import face_frame

WORK_SIZE = 256


def demo_photo() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(clean photo, photo with a drawn face mask, occluder mask, 5 landmarks)."""
    from skimage import data

    from unveil.eval.identity import get_embedder

    photo = data.astronaut()
    emb = get_embedder()
    box = emb.detect(photo)
    if box is None:
        raise UnveilError("no face found in the demo photo")
    import dlib

    shape = emb.shape(photo, dlib.rectangle(*box))
    pts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float64)
    masked, occ = draw_surgical_mask(photo, pts)
    return photo, masked, occ, pts


def face_crop_box(points5: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """A square (left, top, side, side) framing the face like the aligned training crops."""
    origin, _, uy, d, h = face_frame(points5)
    center = origin + uy * 1.0 * h
    side = int(round(2.6 * d))
    x0 = int(np.clip(round(center[0] - side / 2), 0, max(0, shape[1] - side)))
    y0 = int(np.clip(round(center[1] - side / 2), 0, max(0, shape[0] - side)))
    return x0, y0, min(side, shape[1]), min(side, shape[0])


def restore(photo: np.ndarray, hole: np.ndarray, points5: np.ndarray, model) -> np.ndarray:
    """Inpaint ``hole`` of ``photo`` in a face crop at WORK_SIZE and paste back only the hole."""
    x0, y0, w, h = face_crop_box(points5, photo.shape[:2])
    crop, crop_hole = photo[y0:y0 + h, x0:x0 + w], hole[y0:y0 + h, x0:x0 + w]
    small = cv2.resize(crop, (WORK_SIZE, WORK_SIZE), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(crop_hole.astype(np.uint8), (WORK_SIZE, WORK_SIZE),
                            interpolation=cv2.INTER_NEAREST) > 0
    small_hole = cv2.dilate(small_hole.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    filled = model.inpaint(small, small_hole)
    big = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)
    out = photo.copy()
    region = out[y0:y0 + h, x0:x0 + w]
    region[crop_hole] = big[crop_hole]
    # outside the crop (e.g. strap ends) fall back to inpainting on the full photo
    rest = hole.copy()
    rest[y0:y0 + h, x0:x0 + w] = False
    if rest.any():
        out = model.inpaint(out, rest)
    return out


def run_demo(out: Path, model_name: str | None = None) -> list[str]:
    out = Path(out)
    name = model_name or best()
    model = load(name)
    photo, masked, occ, pts = demo_photo()
    hole = cv2.dilate(occ.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    restored = restore(masked, hole, pts, model)
    x0, y0, w, h = face_crop_box(pts, photo.shape[:2])
    crops = [im[y0:y0 + h, x0:x0 + w] for im in (masked, hole, restored, photo)]
    files = {
        "astronaut_masked.png": masked,
        "astronaut_mask.png": hole,
        "astronaut_restored.png": restored,
        "astronaut_compare.png": image_grid([crops], ["masked", "hole", f"restored ({name})", "original"]),
    }
    for fn, im in files.items():
        write_image(out / fn, im)
    from unveil.eval.metrics import psnr, ssim

    return [f"model: {name}",
            f"hole: {hole.mean() * 100:.1f} % of the photo; face crop {w}x{h} px at ({x0}, {y0})",
            f"restored vs original inside the hole: PSNR {psnr(restored, photo, hole):.2f} dB, "
            f"SSIM {ssim(restored, photo, hole):.3f}",
            *[f"wrote {out / fn}" for fn in files]]
