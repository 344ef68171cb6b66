"""Evaluation: metrics, LPIPS, identity, the harness behind `unveil eval`, and LFW verification."""
from unveil.eval.metrics import l1, psnr, ssim, ssim_map

__all__ = ["l1", "psnr", "ssim", "ssim_map"]
