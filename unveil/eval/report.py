"""Reports: markdown tables of per-bin metrics (image grids: :mod:`unveil.viz`)."""
from __future__ import annotations

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
    ("detail", "detail", "{:.2f}"),
    ("lpips_vgg_box", "LPIPS-VGG box", "{:.4f}"),
    ("face_found", "face found", "{:.2f}"),
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
