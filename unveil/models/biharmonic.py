"""Classical baseline: biharmonic inpainting (Damelin & Hoang 2018), scikit-image."""
from __future__ import annotations

import numpy as np
from skimage.restoration import inpaint_biharmonic

from unveil.models.base import Inpainter
from unveil.models.registry import register


@register("biharmonic", summary="biharmonic equation inpainting, skimage", rank=30,
          tags=("classical",))
class Biharmonic(Inpainter):
    def _inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = inpaint_biharmonic(image.astype(np.float64) / 255, mask, channel_axis=-1)
        return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
