"""Pixel metrics on uint8 or [0, 1] float images: PSNR, SSIM, L1, whole image or inside a hole.

Conventions (the usual ones in face inpainting papers, stated so numbers can be compared):
- images are scaled to [0, 1] (uint8 / 255); data range 1;
- PSNR = 10 log10(1 / MSE) over all pixels and channels (of the hole only, with ``mask``); an exact
  match is capped at 100 dB so averages stay finite;
- SSIM is Wang et al. (2004): Gaussian window sigma 1.5 (11x11), K1 = 0.01, K2 = 0.03, computed per
  RGB channel and averaged, borders of 5 px left out, as skimage's ``structural_similarity`` with
  ``gaussian_weights=True, use_sample_covariance=False``; inside a hole it is the mean of the SSIM
  map over hole pixels;
- L1 is the mean absolute error on the [0, 1] scale;
- detail ratio (realism): the variance of the Laplacian of the grey image (ITU-R 601 weights, 4-
  neighbour Laplacian) over the hole's pixels shrunk by 1 px (so the hole's own edge does not count),
  output over truth: 1 matches the truth's texture, near 0 is a smooth patch;
- the hole's box (for LPIPS-VGG on it) is the bounding box of the hole, grown to at least 32 px a
  side inside the image.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_erosion, gaussian_filter, laplace

PSNR_CAP = 100.0
_SIGMA, _TRUNCATE, _PAD = 1.5, 3.5, 5  # window radius int(3.5 * 1.5 + 0.5) = 5 -> 11x11


def as_float(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    return a.astype(np.float64)


def _check(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None):
    a, b = as_float(a), as_float(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != a.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match image {a.shape[:2]}")
        if not mask.any():
            raise ValueError("mask selects no pixel")
    return a, b, mask


def _select(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return x if mask is None else x[mask]


def mse(a, b, mask=None) -> float:
    a, b, mask = _check(a, b, mask)
    return float(np.mean(_select((a - b) ** 2, mask)))


def psnr(a, b, mask=None) -> float:
    m = mse(a, b, mask)
    return PSNR_CAP if m <= 10 ** (-PSNR_CAP / 10) else float(10 * np.log10(1.0 / m))


def l1(a, b, mask=None) -> float:
    a, b, mask = _check(a, b, mask)
    return float(np.mean(_select(np.abs(a - b), mask)))


def ssim_map(a, b) -> np.ndarray:
    """Per-pixel SSIM (HxW, averaged over channels)."""
    a, b, _ = _check(a, b, None)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    f = lambda x: gaussian_filter(x, _SIGMA, truncate=_TRUNCATE, mode="reflect")  # noqa: E731
    maps = []
    for c in range(a.shape[2]):
        x, y = a[..., c], b[..., c]
        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return np.mean(maps, axis=0)


def ssim(a, b, mask=None) -> float:
    """Mean SSIM over the image interior (5 px border left out), or over the hole's pixels."""
    a, b, mask = _check(a, b, mask)
    m = ssim_map(a, b)
    inner = np.zeros(m.shape, bool)
    inner[_PAD:-_PAD, _PAD:-_PAD] = True
    sel = inner if mask is None else (mask & inner if (mask & inner).any() else mask)
    return float(m[sel].mean())


def _grey(img) -> np.ndarray:
    a = as_float(img)
    return a @ np.array([0.299, 0.587, 0.114]) if a.ndim == 3 else a


def laplacian_variance(img, mask=None) -> float:
    """Variance of the grey image's Laplacian over ``mask`` (shrunk by 1 px when that leaves any
    pixel), or over the whole image."""
    lap = laplace(_grey(img), mode="reflect")
    if mask is None:
        return float(lap.var())
    mask = np.asarray(mask, bool)
    inner = binary_erosion(mask)
    return float(lap[inner if inner.any() else mask].var())


def detail_ratio(out, truth, mask) -> float:
    """Detail of ``out`` inside the hole relative to the truth's (nan when the truth is flat)."""
    _check(out, truth, mask)
    t = laplacian_variance(truth, mask)
    return float(laplacian_variance(out, mask) / t) if t > 1e-12 else float("nan")


def hole_box(mask, min_side: int = 32) -> tuple[slice, slice]:
    """(rows, cols) slices of the hole's bounding box, grown to ``min_side`` inside the image."""
    mask = np.asarray(mask, bool)
    ys, xs = np.nonzero(mask)
    if not len(ys):
        raise ValueError("mask selects no pixel")
    out = []
    for lo, hi, n in ((ys.min(), ys.max() + 1, mask.shape[0]), (xs.min(), xs.max() + 1, mask.shape[1])):
        side = int(min(max(hi - lo, min_side), n))
        lo = int(min(max(0, (lo + hi - side) // 2), n - side))
        out.append(slice(lo, lo + side))
    return out[0], out[1]


def seg_counts(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(tp, fp, fn, tn) pixel counts of a bool prediction against a bool truth."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    tp = np.count_nonzero(pred & truth)
    fp = np.count_nonzero(pred & ~truth)
    fn = np.count_nonzero(~pred & truth)
    return np.array([tp, fp, fn, pred.size - tp - fp - fn], np.int64)


def seg_scores(counts: np.ndarray) -> dict:
    """Pixel accuracy, IoU and F1 of the occluder class from (tp, fp, fn, tn) counts (summed over
    a data set they give the pooled scores; 0/0 counts as a perfect 1.0)."""
    tp, fp, fn, tn = (float(c) for c in counts)
    total = tp + fp + fn + tn
    return {"pa": (tp + tn) / total if total else 1.0,
            "iou": tp / (tp + fp + fn) if tp + fp + fn else 1.0,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0}
