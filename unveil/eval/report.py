"""Reports: markdown tables of per-bin metrics and image grids."""
from __future__ import annotations

import cv2
import numpy as np

#: (key, column title, format) for the metric columns of a per-bin table.
COLUMNS = [
    ("psnr", "PSNR", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("l1", "L1", "{:.4f}"),
    ("psnr_hole", "PSNR hole", "{:.2f}"),
    ("ssim_hole", "SSIM hole", "{:.4f}"),
    ("l1_hole", "L1 hole", "{:.4f}"),
    ("lpips", "LPIPS", "{:.4f}"),
    ("identity", "ID dist", "{:.3f}"),
    ("ms", "ms/img", "{:.1f}"),
    ("gender", "gender agree", "{:.3f}"),
]


def _fmt(v, f):
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f.format(v)


def metrics_table(rows: dict[str, dict], first: str = "bin") -> str:
    """Markdown table: one row per key of ``rows`` (e.g. bins, 'all'), only metrics present."""
    present = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows.values())]
    head = f"| {first} | n | " + " | ".join(c[1] for c in present) + " |"
    sep = "|" + "---|" * (len(present) + 2)
    lines = [head, sep]
    for name, r in rows.items():
        cells = [_fmt(r.get(k), f) for k, _, f in present]
        lines.append(f"| {name} | {r.get('n', '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
