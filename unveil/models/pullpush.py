"""Classical baseline: pull-push interpolation with Laplace relaxation (the prefill that IFACENET
starts from, :func:`unveil.models.blocks.prefill`), on the image's own resolution. A few ms per face."""
from __future__ import annotations

import numpy as np
import torch

from unveil.models.base import Inpainter
from unveil.models.blocks import prefill
from unveil.models.tensors import to_tensor, to_uint8
from unveil.models.registry import register


@register("pullpush", summary="pull-push interpolation with Laplace relaxation (fast)", rank=15,
          tags=("classical",))
class PullPush(Inpainter):
    def __init__(self, levels: int = 6, smooth: int = 4):
        self.levels, self.smooth = levels, smooth

    @torch.inference_mode()
    def _inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m = torch.from_numpy(mask)[None, None].float()
        return to_uint8(prefill(to_tensor(image[None]), m, self.levels, self.smooth))[0]
