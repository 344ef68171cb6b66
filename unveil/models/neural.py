"""Learned inpainters: one inference wrapper over the registered networks.

A network module registers itself with ``@network("ifacenet", IFACENetConfig)``
(:mod:`unveil.models.registry`); the trainer builds it by name from a config dict, and
:class:`NeuralInpainter` loads its shipped safetensors weights (the config travels in the file's
metadata). Every network has the same contract::

    forward(x, m) -> y      x: N x 3 x H x W in [-1, 1] with the hole zeroed, m: N x 1 x H x W
                            (1 = hole), y: N x 3 x H x W in [-1, 1], for any H, W >= 16

At inference the face crop is brought to the working size the network was trained at (its shorter
side, aspect kept), filled, and the fill is brought back to the crop's size; the base class then
keeps every pixel outside the hole from the input. A network that predicts a residual on a smooth
pull-push fill (``prefill`` in its config) has that fill recomputed at the crop's own size, and only
its residual upsampled: thin holes then keep the full-resolution detail of their borders.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from unveil.models.base import Inpainter, check_pair
from unveil.models.blocks import prefill
from unveil.models.tensors import to_tensor, to_uint8
from unveil.models.registry import build_network
from unveil.models.weights import load_weights, weights_path

def work_shape(h: int, w: int, work: int | None) -> tuple[int, int]:
    """(h, w) scaled so the shorter side is ``work`` (never enlarged), at least 16 px."""
    if not work or min(h, w) <= work:
        return h, w
    s = work / min(h, w)
    return max(16, round(h * s)), max(16, round(w * s))


def example_pair(n: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` example faces (N x 3 x H x W in [-1, 1]) and their hole (N x 1 x H x W), the inputs the
    ONNX exporter checks an inpainting network on."""
    from unveil.models.onnx_export import example_faces, example_hole

    m = torch.from_numpy(np.stack([example_hole(h, w)] * n)[:, None].astype(np.float32))
    return to_tensor(example_faces(n, h, w)), m


class SubNetwork:
    """A second network of a loaded model (its refiner), as the ONNX backend sees a loaded model:
    a name (keying its cached graph with the weights' hash), the module, its weight file, its
    device and the example inputs the exporter checks it on (an image and a hole)."""

    work_size = 128

    def __init__(self, name: str, model: torch.nn.Module, weights: Path, device):
        self.name, self.model, self.weights, self.device = name, model, weights, device

    def onnx_spec(self):
        return self.model, ["y", "m"], example_pair


class NeuralInpainter(Inpainter):
    """A registered learned inpainter with weights: ``weights=`` a file, default the shipped one."""

    network_name: str = ""
    weight_name: str = ""
    #: Why the network cannot run on ONNX Runtime (None: it can; :mod:`unveil.models.onnx_runtime`).
    onnx_unsupported: str | None = None
    #: The backend that runs the network: "torch" or "onnx" (resolved from ``backend=``).
    backend: str = "torch"
    #: How the network's output is brought to the crop's size (IN2's decoder samples bilinearly).
    upsample_mode: str = "bicubic"
    #: Shipped weights of a detail refiner (:mod:`unveil.models.refiner`) run at the crop's size
    #: after the network's upsampled fill ("" : none).
    refiner_weight: str = ""
    refiner: torch.nn.Module | None = None
    _ort = _refiner_ort = None
    #: ``flip``'s default (see ``__init__``), set per model where it was measured to help
    flip_default: bool = False
    flip: bool = False

    def __init__(self, weights: str | Path | None = None, device: str = "cpu",
                 work_size: int | None = None, backend: str = "auto", refine: bool = True,
                 flip: bool | None = None):
        """``work_size``: shorter side the network works at (default: its training size; 0: the
        crop's own size). ``backend``: "torch", "onnx" (ONNX Runtime on the CPU) or "auto"
        (ONNX Runtime where it was measured faster, see :mod:`unveil.models.onnx_runtime`).
        ``refine``: run the model's detail refiner after the upsampled fill, where it has one.
        ``flip``: the network fills the crop and its mirror image (one batch of both; the guide,
        where there is one, mirrored with it) and the two fills are averaged, the mirror's flipped
        back, before the refiner (default :attr:`flip_default`)."""
        self.flip = self.flip_default if flip is None else bool(flip)
        path = weights_path(weights, self.weight_name, self.name, self.network_name)
        self.device = torch.device(device)
        net = self.network_name
        self.model, self.meta = load_weights(path, lambda c: build_network(net, c),
                                             what=f"inpainter '{self.name}'", network=net)
        self.model.to(self.device).eval()
        self.weights = path
        self.work_size = (int(self.meta.get("size") or 0) or None) if work_size is None else (work_size or None)
        from unveil.models.onnx_export import attach_backend

        self._ort = attach_backend(self, backend)
        self.backend = "torch" if self._ort is None else "onnx"
        self.refiner = None
        if refine and self.refiner_weight:
            from unveil.models.weights import shipped

            rpath = shipped(self.refiner_weight)
            if rpath.exists():
                self.refiner, _ = load_weights(rpath, lambda c: build_network("refiner", c),
                                               what=f"refiner of '{self.name}'", network="refiner")
                self.refiner.to(self.device).eval()
                self._refiner_ort = attach_backend(SubNetwork(f"{self.name}-refiner", self.refiner, rpath,
                                                              self.device), backend)

    @classmethod
    def from_module(cls, model: torch.nn.Module, size: int | None, name: str | None = None):
        """Wrap a network in memory (a model being trained) without reading weights."""
        self = cls.__new__(cls)
        self.model, self.meta, self.weights = model, {"size": size}, None
        self.device = next(model.parameters()).device
        self.work_size = size
        if name:
            self.name = name
        return self

    def onnx_spec(self):
        """The network, its input names and ``example(n, h, w)`` inputs, for the ONNX exporter."""

        def example(n, h, w):
            x, m = example_pair(n, h, w)
            return x * (1 - m), m

        return self.model, ["x", "m"], example

    def _inpaint(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._fill(image[None], mask[None])[0]

    def inpaint_batch(self, images: list[np.ndarray], masks: list[np.ndarray]) -> list[np.ndarray]:
        pairs = [check_pair(i, m) for i, m in zip(images, masks)]
        out: list[np.ndarray | None] = [None] * len(pairs)
        groups: dict[tuple, list[int]] = {}
        for k, (img, m) in enumerate(pairs):
            if not m.any():
                out[k] = img.copy()
            else:
                groups.setdefault(img.shape, []).append(k)
        for idx in groups.values():
            imgs = np.stack([pairs[k][0] for k in idx])
            ms = np.stack([pairs[k][1] for k in idx])
            filled = self._fill(imgs, ms)
            for k, f in zip(idx, filled):
                out[k] = np.where(pairs[k][1][..., None], f, pairs[k][0])
        return out

    @torch.inference_mode()
    def _fill(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """uint8 N x H x W x 3 and bool N x H x W -> uint8 N x H x W x 3 (the hole filled)."""
        h, w = images.shape[1:3]
        wh, ww = work_shape(h, w, self.work_size)
        if (wh, ww) != (h, w):
            small = np.stack([cv2.resize(i, (ww, wh), interpolation=cv2.INTER_AREA) for i in images])
            # a working pixel is a hole if any part of it is: no hole pixel leaks into the input
            msmall = np.stack([cv2.resize(m.astype(np.float32), (ww, wh), interpolation=cv2.INTER_AREA)
                               for m in masks]) > 1e-3
        else:
            small, msmall = images, masks
        x = to_tensor(small).to(self.device)
        m = torch.from_numpy(msmall[:, None].astype(np.float32)).to(self.device)
        guide = self._guide(images, masks)
        if guide is None:
            y = self._forward(x * (1 - m), m, (h, w))
        else:
            if (wh, ww) != (h, w):
                guide = np.stack([np.stack([cv2.resize(c, (ww, wh), interpolation=cv2.INTER_AREA) for c in g])
                                  for g in guide])
            y = self._forward(x * (1 - m), m, (h, w), torch.from_numpy(guide).to(self.device))
        if (wh, ww) != (h, w) and getattr(getattr(self.model, "cfg", None), "prefill", False):
            y = self._rebase(y, x * (1 - m), m, images, masks)
        if (wh, ww) != (h, w) and self.refiner is not None:
            y = self._refine(y, images, masks)
        return to_uint8(y)

    def _refine(self, y: torch.Tensor, images: np.ndarray, masks: np.ndarray, margin: int = 24) -> torch.Tensor:
        """The refiner's residual detail on the upsampled fill ``y``, computed on the box around
        every hole of the batch (``margin`` px of context on each side) only."""
        any_hole = masks.any(0)
        rows, cols = np.flatnonzero(any_hole.any(1)), np.flatnonzero(any_hole.any(0))
        h, w = any_hole.shape
        y0, y1 = max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)
        x0, x1 = max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)
        xf = to_tensor(images[:, y0:y1, x0:x1]).to(self.device)
        mf = torch.from_numpy(masks[:, None, y0:y1, x0:x1].astype(np.float32)).to(self.device)
        win = y[:, :, y0:y1, x0:x1] * mf + xf * (1 - mf)
        y = y.clone()
        y[:, :, y0:y1, x0:x1] = (self.refiner(win, mf) if self._refiner_ort is None
                                 else self._refiner_ort.run_torch(win, mf))
        return y

    def _rebase(self, y: torch.Tensor, x: torch.Tensor, m: torch.Tensor, images: np.ndarray,
                masks: np.ndarray) -> torch.Tensor:
        """``y`` (at the crop's size) = upsampled (working-size smooth fill + residual): swap the
        upsampled smooth fill for one computed on the crop itself. Measured on 48 UTKFace val faces
        with NVIDIA masks at 256 px (a 128 px network): +1.0 dB PSNR over the 10-60 % bins, +1.7 dB
        in the 0-10 % bin."""
        size = y.shape[2:]
        coarse = F.interpolate(prefill(x, m), size=size, mode=self.upsample_mode, align_corners=False)
        xf = to_tensor(images).to(self.device)
        mf = torch.from_numpy(masks[:, None].astype(np.float32)).to(self.device)
        return prefill(xf * (1 - mf), mf) + (y - coarse)

    def _guide(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray | None:
        """Extra input channels (float N x C x H x W at the crop's size) for networks that take
        guidance (:mod:`unveil.models.lgface`); None for the others."""
        return None

    def _net(self, x: torch.Tensor, m: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """The network call, on the chosen backend (with :attr:`flip`, on the batch and its mirror
        image at once, the two fills averaged)."""
        inputs = (x, m) if guide is None else (x, m, guide)
        if not self.flip:
            return self.model(*inputs) if self._ort is None else self._ort.run_torch(*inputs)
        n = x.shape[0]
        both = tuple(torch.cat([t, t.flip(3)]) for t in inputs)
        y = self.model(*both) if self._ort is None else self._ort.run_torch(*both)
        return 0.5 * (y[:n] + y[n:].flip(3))

    def _forward(self, x: torch.Tensor, m: torch.Tensor, size: tuple[int, int],
                 guide: torch.Tensor | None = None) -> torch.Tensor:
        """Fill at the working size, then resize the result to ``size``."""
        y = self._net(x, m, guide)
        if tuple(y.shape[2:]) != tuple(size):
            y = F.interpolate(y, size=size, mode="bicubic", align_corners=False)
        return y
