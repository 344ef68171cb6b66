"""What `unveil models` prints: every registered model with its size and its measured numbers.

Numbers come from the last `make bench` (``bench/results.json`` of the source tree): for
inpainters PSNR / SSIM / LPIPS over the 10-60 % NVIDIA bins at 256 px on UTKFace test faces and
ms per 256 px face; for segmenters IoU / pixel accuracy on synthetic occlusions and ms per crop.
"""
from __future__ import annotations

import json
from pathlib import Path

from unveil.models.registry import available, best, info

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results.json"
MEAN = "10-60 (mean of bins)"


def _results() -> dict:
    try:
        return json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}


def _weights(name: str):
    """(parameters, file size in MB) of a learned model's shipped weights, or None."""
    from unveil.models.weights import SHIPPED

    path = SHIPPED / f"{name.replace('-', '_')}.safetensors"
    if not path.exists():
        return None
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        n = sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())
    return n, path.stat().st_size / 1e6


def _prod(shape) -> int:
    p = 1
    for s in shape:
        p *= int(s)
    return p


def rows() -> list[dict]:
    """One dict per registered model: name, kind, summary, default, params, mb, and numbers."""
    res = _results()
    defaults = {k: best(k) for k in ("inpainter", "segmenter") if available(k)}
    out = []
    for name in available(None):
        i = info(name)
        row = {"name": name, "kind": i.kind, "summary": i.summary, "default": defaults.get(i.kind) == name}
        w = _weights(name)
        if w:
            row["params"], row["mb"] = w
        if i.kind == "inpainter":
            q = res.get("quality", {}).get(name, {}).get(MEAN)
            if q:
                row.update(psnr=q.get("psnr"), ssim=q.get("ssim"), lpips=q.get("lpips"))
            ms = res.get("speed", {}).get(name, {}).get("256")
            if ms:
                row["ms"] = ms
        else:
            s = res.get("segmentation", {}).get(name, {})
            if s.get("all"):
                row.update(iou=s["all"].get("iou"), pa=s["all"].get("pa"))
            if s.get("ms_per_crop"):
                row["ms"] = s["ms_per_crop"]
        out.append(row)
    return out


def catalog() -> list[str]:
    """Lines of the `unveil models` table."""
    table = rows()  # opens every weight file: once
    w = max([16] + [len(r["name"]) + 1 for r in table])  # the longest name, one space after it
    lines = [f"{'name':<{w}}{'kind':<11}{'params':>8}{'MB':>6}  {'numbers (make bench)':<34}{'ms':>6}  summary"]
    for r in table:
        params = f"{r['params'] / 1e6:.2f}M" if "params" in r else "-"
        mb = f"{r['mb']:.1f}" if "mb" in r else "-"
        if "psnr" in r and r["psnr"] is not None:
            nums = f"PSNR {r['psnr']:.2f} SSIM {r['ssim']:.3f}" + (
                f" LPIPS {r['lpips']:.3f}" if r.get("lpips") is not None else "")
        elif "iou" in r and r["iou"] is not None:
            nums = f"IoU {r['iou']:.3f} PA {r['pa']:.3f}"
        else:
            nums = "-"
        ms = f"{r['ms']:.0f}" if r.get("ms") else "-"
        star = " (default)" if r["default"] else ""
        lines.append(f"{r['name']:<{w}}{r['kind']:<11}{params:>8}{mb:>6}  {nums:<34}{ms:>6}  {r['summary']}{star}")
    if not _results():
        lines.append("(no bench/results.json here: run `make bench` for the numbers)")
    return lines
