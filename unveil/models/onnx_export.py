"""ONNX export of the learned networks, and the backend's first use (export into the cache).

* :func:`export_onnx` writes the network of a registered learned model (``ifacenet``, ``soclnet``,
  ``soclnet-noattn``) as an fp32 ONNX graph with dynamic batch, height and width, after checking
  ONNX Runtime's output against torch on a real face (scikit-image's astronaut with a drawn hole or
  occluder) at the working size and at another, non-square size with a batch of two. Files are
  written atomically (a temporary file moved into place). A model exports when its wrapper has
  ``onnx_spec()`` (the network, its input names and example inputs) and no ``onnx_unsupported``.
* :func:`attach_backend`: the session a freshly loaded model calls (see
  :mod:`unveil.models.onnx_runtime`), exporting its weights into the cache on first use.

IN2 does not export: ``torch.fft.rfft2`` in its Fourier convolutions has no ONNX conversion in the
TorchScript exporter, and its decoder queries only the hole's pixels (data-dependent shapes). The
dynamo exporter (with the extra ``onnxscript`` package) does convert the encoder, but ONNX
Runtime's DFT made it about 3x slower than torch (720 ms against 235 ms at 256 px, 2 threads), so
IN2 keeps torch.
"""
from __future__ import annotations

import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from unveil.errors import UnveilError
from unveil.io import atomic_write
from unveil.models.onnx_runtime import (BACKEND_ENV, FORMAT, INSTALL_HINT, OPSET, OrtSession, _import_ort,
                                        cached_path, file_sha256, resolve_backend)

#: How many graphs this process has exported (the tests check that the cache is reused).
exports_done = 0
_lock = threading.Lock()


def _import_onnx():
    try:
        import onnx
    except ImportError as e:
        raise UnveilError(f"onnx is not installed ({e}); {INSTALL_HINT}") from None
    return onnx


# ---- which models export ------------------------------------------------------------------------

def _learned(factory) -> bool:
    return isinstance(factory, type) and hasattr(factory, "onnx_spec")


def exportable() -> list[str]:
    """Registered models whose network exports to ONNX."""
    from unveil.models.registry import available, info

    return [n for n in available(None)
            if _learned(info(n).factory) and not getattr(info(n).factory, "onnx_unsupported", None)]


def not_exportable() -> dict[str, str]:
    """Registered learned models whose network does not export, with the reason."""
    from unveil.models.registry import available, info

    return {n: info(n).factory.onnx_unsupported for n in available(None)
            if _learned(info(n).factory) and getattr(info(n).factory, "onnx_unsupported", None)}


def check_exportable(name: str) -> None:
    """A clear :class:`UnveilError` for an unknown model or one whose network does not export."""
    from unveil.models.registry import info

    factory = info(name).factory  # unknown names: UnveilError listing the registered models
    if not _learned(factory):
        raise UnveilError(f"'{name}' has no network to export to ONNX; exportable: {', '.join(exportable())}")
    reason = getattr(factory, "onnx_unsupported", None)
    if reason:
        raise UnveilError(f"'{name}' cannot be exported to ONNX: {reason}")


# ---- export -------------------------------------------------------------------------------------

def example_faces(n: int, h: int, w: int) -> np.ndarray:
    """uint8 n x h x w x 3 real faces for export checks: Eileen Collins from scikit-image's
    astronaut, resized, every second one mirrored."""
    from skimage import data

    from unveil.data.faces import resize

    face = resize(data.astronaut()[20:240, 130:350], (h, w))
    return np.stack([face[:, ::(1 if i % 2 == 0 else -1)] for i in range(n)])


def example_hole(h: int, w: int) -> np.ndarray:
    """A bool hole: a filled ellipse over the mouth and a thick stroke across an eye."""
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w // 2, int(h * 0.68)), (max(2, w // 5), max(2, h // 9)), 0, 0, 360, 1, -1)
    cv2.line(m, (w // 5, h // 3), (w * 3 // 5, h * 2 // 5), 1, max(2, w // 20))
    return m.astype(bool)


def _spec(obj) -> tuple[torch.nn.Module, list[str], callable]:
    """The torch network of a loaded model, its input names and ``example(n, h, w) -> tensors``."""
    if not hasattr(obj, "onnx_spec"):
        raise UnveilError(f"{type(obj).__name__} has no network to export to ONNX")
    return obj.onnx_spec()


@dataclass
class Exported:
    path: Path
    max_abs_diff: float
    bytes: int


def _verify(session: OrtSession, net: torch.nn.Module, example, sizes, name: str) -> float:
    """Max abs difference ONNX Runtime vs torch over the examples; UnveilError beyond tolerance."""
    worst = 0.0
    for n, h, w in sizes:
        args = example(n, h, w)
        with torch.inference_mode():
            ref = net(*args).float()
        got = session.run_torch(*args)
        if got.shape != ref.shape:
            raise UnveilError(f"ONNX export of '{name}' gives shape {tuple(got.shape)} at {n}x{h}x{w}, "
                              f"torch {tuple(ref.shape)}")
        diff = float((got - ref).abs().max())
        tol = 1e-3 * max(1.0, float(ref.abs().max()))
        if not np.isfinite(diff) or diff > tol:
            raise UnveilError(f"ONNX export of '{name}' differs from torch by {diff:.2e} at {n}x{h}x{w} "
                              f"(tolerance {tol:.1e})")
        worst = max(worst, diff)
    return worst


def export_model(obj, path: str | os.PathLike) -> Exported:
    """Export the network of a loaded learned model (torch backend or not) to ``path``."""
    global exports_done
    name = getattr(obj, "name", type(obj).__name__)
    reason = getattr(obj, "onnx_unsupported", None)
    if reason:
        raise UnveilError(f"'{name}' cannot be exported to ONNX: {reason}")
    net, inputs, example = _spec(obj)
    onnx = _import_onnx()
    _import_ort()
    net = net.eval()
    ws = int(getattr(obj, "work_size", None) or 128)
    ws = max(32, ws - ws % 16)  # the segmenter needs multiples of 16; any size suits the inpainters
    sizes = [(1, ws, ws), (2, ws - 16 * max(1, ws // 64), ws)]  # the real input, then dynamic axes
    dyn = {k: {0: "batch", 2: "height", 3: "width"} for k in inputs + ["y"]}
    with tempfile.TemporaryDirectory(prefix="unveil-onnx-") as tmp:
        raw = Path(tmp) / "model.onnx"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(net, example(*sizes[0]), str(raw), dynamo=False, input_names=inputs,
                                  output_names=["y"], dynamic_axes=dyn, opset_version=OPSET,
                                  do_constant_folding=True)
        except UnveilError:
            raise
        except Exception as e:  # the exporter's messages can hold a whole graph: keep the first line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise UnveilError(f"cannot export '{name}' to ONNX: {first}") from None
        model = onnx.load(str(raw))
    props = {"unveil_model": name, "opset": str(OPSET), "format": str(FORMAT),
             "work_size": str(getattr(obj, "work_size", None) or "")}
    if getattr(obj, "weights", None):
        props["weights_sha256"] = file_sha256(obj.weights)
    onnx.helper.set_model_props(model, props)
    data = model.SerializeToString()
    diff = _verify(OrtSession(data), net, example, sizes, name)
    path = atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    with _lock:
        exports_done += 1
    return Exported(Path(path), diff, len(data))


def export_onnx(name: str, out_path: str | os.PathLike | None = None,
                weights: str | os.PathLike | None = None) -> Path:
    """Export the network of registered model ``name`` (shipped weights unless ``weights``) to
    ``out_path`` (default: the cache file the ONNX backend uses). Returns the path."""
    return _export_named(name, out_path, weights).path


def _export_named(name: str, out_path, weights) -> Exported:
    from unveil.models.registry import load

    check_exportable(name)
    kwargs = {"backend": "torch"} if weights is None else {"backend": "torch", "weights": weights}
    obj = load(name, **kwargs)
    return export_model(obj, out_path if out_path is not None else cached_path(name, obj.weights))


def run_export(models: list[str] | None, out_dir: Path) -> list[str]:
    """``unveil export --onnx``: export ``models`` (default: every exportable one) to
    ``out_dir/<name>.onnx``; returns one line to print per model."""
    names = list(models) if models else exportable()
    for n in names:
        check_exportable(n)  # fail before any work
    out_dir = Path(out_dir)
    lines = []
    for n in names:
        r = _export_named(n, out_dir / f"{n}.onnx", None)
        lines.append(f"{n}: {r.path} ({r.bytes / 1e6:.1f} MB, max |onnx - torch| = {r.max_abs_diff:.1e})")
    if not models:
        lines += [f"{n}: not exported ({why})" for n, why in not_exportable().items()]
    return lines


# ---- the backend --------------------------------------------------------------------------------

def cached_session(obj) -> OrtSession:
    """A session on the cached export of a loaded model's weights, exporting it on first use."""
    path = cached_path(obj.name, obj.weights)
    if path.exists():
        try:
            return OrtSession(path)
        except Exception:  # unreadable (e.g. written by an incompatible version): export again
            pass
    export_model(obj, path)
    return OrtSession(path)


def attach_backend(obj, backend: str | None) -> OrtSession | None:
    """The ONNX Runtime session a freshly loaded model should call, or None for torch.
    ``"auto"`` falls back to torch (with a warning) when the export or the session fails."""
    name = getattr(obj, "name", type(obj).__name__)
    resolved = resolve_backend(backend, name, getattr(obj, "device", "cpu"),
                               getattr(obj, "onnx_unsupported", None))
    if resolved == "torch":
        return None
    forced = (backend or "auto").lower() == "onnx" or (
        (backend or "auto").lower() == "auto" and (os.environ.get(BACKEND_ENV) or "").lower() == "onnx")
    if getattr(obj, "weights", None) is None:
        if forced:
            raise UnveilError(f"'{name}' has no weight file to export for the onnx backend")
        return None
    try:
        return cached_session(obj)
    except Exception as e:
        if forced:
            if isinstance(e, UnveilError):
                raise
            raise UnveilError(f"cannot run '{name}' on ONNX Runtime: {e}") from None
        warnings.warn(f"'{name}': ONNX Runtime backend unavailable ({e}); using torch", RuntimeWarning,
                      stacklevel=3)
        return None
