"""The one interface every inpainting model implements."""
from __future__ import annotations

import numpy as np

from unveil.errors import UnveilError


def check_pair(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate an (image, mask) pair: uint8 HxWx3 RGB and a bool HxW mask of the same size."""
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UnveilError(f"image must be uint8 HxWx3 RGB, got {image.dtype} {image.shape}")
    if mask.dtype != bool:
        if mask.dtype == np.uint8 and mask.ndim == 2 and set(np.unique(mask)) <= {0, 1, 255}:
            mask = mask > 0
        else:
            raise UnveilError(f"mask must be bool HxW (True = hole), got {mask.dtype} {mask.shape}")
    if mask.shape != image.shape[:2]:
        raise UnveilError(
            f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{image.shape[1]}x{image.shape[0]}; they must be the same size"
        )
    return image, mask


class Inpainter:
    """Fill the holes of a face image.

    ``inpaint(image uint8 HxWx3 RGB, mask bool HxW, True = hole) -> uint8 HxWx3``. Pixels outside
    the hole are returned unchanged (the base class composites, so no model can break that).
    Subclasses implement :meth:`_inpaint` and may override :meth:`inpaint_batch` for speed.
    """

    name: str = "inpainter"

    def inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        image, mask = check_pair(image, mask)
        if not mask.any():
            return image.copy()
        out = np.asarray(self._inpaint(image, mask))
        if out.shape != image.shape or out.dtype != np.uint8:
            raise RuntimeError(f"{self.name} returned {out.dtype} {out.shape} for {image.shape}")
        return np.where(mask[..., None], out, image)

    def inpaint_batch(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[np.ndarray]:
        return [self.inpaint(i, m) for i, m in zip(images, masks)]

    def _inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} '{self.name}'>"


class Segmenter:
    """Find the occluder on a face.

    ``segment(image uint8 HxWx3 RGB) -> float32 HxW`` occluder probability in [0, 1], at the input's
    resolution, for aligned face crops of any size. ``mask(image, threshold)`` gives the bool mask.
    Subclasses implement :meth:`_segment`.
    """

    name: str = "segmenter"

    def segment(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise UnveilError(f"image must be uint8 HxWx3 RGB, got {image.dtype} {image.shape}")
        if min(image.shape[:2]) < 16:
            raise UnveilError(f"image is too small to segment ({image.shape[1]}x{image.shape[0]})")
        prob = np.asarray(self._segment(image), np.float32)
        if prob.shape != image.shape[:2]:
            raise RuntimeError(f"{self.name} returned {prob.shape} for {image.shape[:2]}")
        return prob

    def mask(self, image: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        return self.segment(image) >= threshold

    def segment_fine(self, image: np.ndarray) -> np.ndarray:
        """:meth:`segment` with a finer look for thin occluders (ear loops, straps) where the
        segmenter works below the crop's resolution; the same as :meth:`segment` otherwise."""
        return self.segment(image)

    def _segment(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} '{self.name}'>"
