"""Image grids and labels for contact sheets, comparison grids and evaluation reports."""
from __future__ import annotations

import cv2
import numpy as np


def label(img: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``img`` with ``text`` written in its top-left corner (white on a dark outline)."""
    img = img.copy()
    cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def image_grid(rows: list[list[np.ndarray]], titles: list[str] | None = None, pad: int = 2) -> np.ndarray:
    """Tile rows of equally sized uint8 RGB (or bool mask) images; titles label the first row."""
    out_rows = []
    for r, row in enumerate(rows):
        cells = []
        for c, im in enumerate(row):
            im = np.asarray(im)
            if im.dtype == bool:
                im = im.astype(np.uint8) * 255
            if im.ndim == 2:
                im = np.repeat(im[..., None], 3, 2)
            if titles and r == 0 and c < len(titles):
                im = label(im, titles[c])
            cells.append(np.pad(im, ((pad, pad), (pad, pad), (0, 0)), constant_values=255))
        out_rows.append(np.concatenate(cells, 1))
    return np.concatenate(out_rows, 0)
