"""``make demo``: scikit-image's astronaut (a public-domain NASA portrait) wearing a surgical mask
that unveil draws, restored end to end by the pipeline. Nothing is downloaded; no shared data.

The drawn mask is only used to score the result: the pipeline itself finds the face, segments the
occluder with SOCLNET, inpaints the aligned crop with the default inpainter and pastes back only
the hole (:class:`unveil.pipeline.Restorer`), exactly as ``unveil remove`` does on a user's photo.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from unveil.io import write_image
from unveil.occlusion import demo_photo
from unveil.pipeline import Restorer
from unveil.viz import image_grid


def run_demo(out: Path, model_name: str | None = None) -> list[str]:
    out = Path(out)
    photo, masked, occ, _ = demo_photo()
    restorer = Restorer(segmenter="soclnet", inpainter=model_name)
    res = restorer.restore(masked)
    face = res.faces[0]
    name = face.model or restorer.model_name
    hole = res.mask
    ys, xs = np.nonzero(hole | occ)
    pad = int(0.35 * (xs.max() - xs.min()))
    y0, y1 = max(ys.min() - 2 * pad, 0), min(ys.max() + pad, photo.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad, photo.shape[1])
    crops = [im[y0:y1, x0:x1] for im in (masked, hole, res.image, photo)]
    files = {
        "astronaut_masked.png": masked,
        "astronaut_mask.png": hole,
        "astronaut_restored.png": res.image,
        "astronaut_compare.png": image_grid([crops], ["masked", "found (SOCLNET)", f"restored ({name})",
                                                      "original"]),
    }
    for fn, im in files.items():
        write_image(out / fn, im)
    from unveil.eval.metrics import psnr, ssim

    iou = (hole & occ).sum() / max((hole | occ).sum(), 1)
    left = (occ & ~(res.image != masked).any(-1)).sum() / max(occ.sum(), 1)
    return [f"model: {restorer.model_name}; segmenter: soclnet; {res.seconds:.2f} s end to end",
            f"face 0: occluder '{face.occluder}' over {face.area * 100:.0f} % of the face crop",
            f"found mask vs the drawn one: IoU {iou:.3f}; {left * 100:.1f} % of the drawn mask left unchanged; "
            f"{hole.mean() * 100:.1f} % of the photo filled (nothing outside it changes)",
            f"restored vs original inside the filled region: PSNR {psnr(res.image, photo, hole):.2f} dB, "
            f"SSIM {ssim(res.image, photo, hole):.3f}",
            *[f"wrote {out / fn}" for fn in files]]
