"""Hole masks (bool HxW, True = hole): NVIDIA irregular masks, a procedural free-form generator,
a lower-face (face-mask) shape, a sunglasses shape, or a folder of mask images; one interface for all of them.

``mask_source(spec)`` returns a callable ``source(index, size) -> (mask, bin)`` that is
deterministic in ``index``, so every model is scored on the same holes.
"""
from unveil.masks.bins import BINS, bin_of, hole_ratio
from unveil.masks.freeform import STYLES, FreeformStyle, freeform_mask
from unveil.masks.shapes import eyes_shape, facemask_shape
from unveil.masks.sources import MaskSource, mask_source

__all__ = [
    "BINS",
    "STYLES",
    "FreeformStyle",
    "MaskSource",
    "bin_of",
    "eyes_shape",
    "facemask_shape",
    "freeform_mask",
    "hole_ratio",
    "mask_source",
]
