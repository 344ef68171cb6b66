"""Hole-ratio bins, as in the NVIDIA irregular mask test set (ratios.csv buckets)."""
from __future__ import annotations

import numpy as np

#: Bin labels and their [lo, hi) hole-ratio bounds.
BINS: dict[str, tuple[float, float]] = {
    "00-10": (0.0, 0.1),
    "10-20": (0.1, 0.2),
    "20-30": (0.2, 0.3),
    "30-40": (0.3, 0.4),
    "40-50": (0.4, 0.5),
    "50-60": (0.5, 0.6),
}
OVER = "60-100"


def hole_ratio(mask: np.ndarray) -> float:
    return float(np.count_nonzero(mask)) / mask.size


def bin_of(ratio: float) -> str:
    for name, (lo, hi) in BINS.items():
        if lo <= ratio < hi:
            return name
    return OVER
