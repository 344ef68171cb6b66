"""Classical diffusion baselines from OpenCV: Telea's fast marching and Navier-Stokes."""
from __future__ import annotations

import cv2
import numpy as np

from unveil.models.base import Inpainter
from unveil.models.registry import register


class _CV2Inpainter(Inpainter):
    flag: int

    def __init__(self, radius: int = 5):
        self.radius = radius

    def _inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return cv2.inpaint(image, mask.astype(np.uint8) * 255, self.radius, self.flag)


@register("telea", summary="Telea (2004) fast-marching inpainting, cv2.inpaint", rank=20,
          tags=("classical",))
class Telea(_CV2Inpainter):
    flag = cv2.INPAINT_TELEA


@register("navier-stokes", summary="Bertalmio et al. (2001) Navier-Stokes inpainting, cv2.inpaint",
          rank=10, tags=("classical",))
class NavierStokes(_CV2Inpainter):
    flag = cv2.INPAINT_NS
