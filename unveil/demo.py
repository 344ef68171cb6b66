"""``make demo``: scikit-image's astronaut (a public-domain NASA portrait) wearing a surgical mask
that unveil draws, restored by the best registered model. Nothing is downloaded; no shared data.

Steps: find the face and its key points (the front end, :mod:`unveil.face`), draw the mask, align
the face to a 256 px crop, inpaint the occluder (slightly dilated) there, and paste back only the
hole with feathered edges.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unveil.eval.report import image_grid
from unveil.face import align_face, face_weight, get_detector, paste_back
from unveil.face.paste import FEATHER
from unveil.io import write_image
from unveil.models import best, load
from unveil.occlusion import draw_surgical_mask

WORK_SIZE = 256


def demo_photo() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(clean photo, photo with a drawn face mask, occluder mask, 5 key points)."""
    from skimage import data

    photo = data.astronaut()
    face = get_detector().detect_one(photo)
    masked, occ = draw_surgical_mask(photo, face.kps5)
    return photo, masked, occ, face.kps5


def restore(photo: np.ndarray, hole: np.ndarray, kps5: np.ndarray, model) -> np.ndarray:
    """Inpaint ``hole`` of ``photo`` in the aligned face crop and paste back only the hole."""
    aligned = align_face(photo, kps5, WORK_SIZE)
    crop_hole = cv2.warpAffine(hole.astype(np.uint8), aligned.matrix, (WORK_SIZE, WORK_SIZE),
                               flags=cv2.INTER_NEAREST) > 0
    crop_hole = cv2.dilate(crop_hole.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    filled = model.inpaint(aligned.crop, crop_hole)
    # feather inside the hole (the region is the hole shrunk by the feather width), and change
    # nothing outside it: the hole is the only part of the photo that may differ
    r = max(1, round(FEATHER * WORK_SIZE))
    inner = cv2.erode(crop_hole.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    out = paste_back(photo, filled, aligned, region=inner)
    out = np.where(hole[..., None], out, photo)
    # what the crop does not fully cover (e.g. strap ends by the ears) is filled on the photo
    rest = hole & (face_weight(photo.shape[:2], aligned) < 0.99)
    return model.inpaint(out, rest) if rest.any() else out


def run_demo(out: Path, model_name: str | None = None) -> list[str]:
    out = Path(out)
    name = model_name or best()
    model = load(name)
    photo, masked, occ, kps5 = demo_photo()
    hole = cv2.dilate(occ.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    restored = restore(masked, hole, kps5, model)
    ys, xs = np.nonzero(hole)
    pad = int(0.35 * (xs.max() - xs.min()))
    y0, y1 = max(ys.min() - 2 * pad, 0), min(ys.max() + pad, photo.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad, photo.shape[1])
    crops = [im[y0:y1, x0:x1] for im in (masked, hole, restored, photo)]
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
            f"hole: {hole.mean() * 100:.1f} % of the photo (nothing outside it changes)",
            f"restored vs original inside the hole: PSNR {psnr(restored, photo, hole):.2f} dB, "
            f"SSIM {ssim(restored, photo, hole):.3f}",
            *[f"wrote {out / fn}" for fn in files]]
