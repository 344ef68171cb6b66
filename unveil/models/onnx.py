"""ONNX export of the learned networks and an ONNX Runtime backend for CPU inference.

* :func:`export_onnx` writes the network of a registered learned model (``ifacenet``, ``soclnet``,
  ``soclnet-noattn``) as an fp32 ONNX graph with dynamic batch, height and width, after checking
  ONNX Runtime's output against torch on a real face (scikit-image's astronaut with a drawn hole or
  occluder) at the working size and at another, non-square size with a batch of two. Files are
  written atomically (a temporary file moved into place).
* ``backend=`` on :class:`~unveil.models.neural.NeuralInpainter` and
  :class:`~unveil.models.soclnet.SOCLNetSegmenter`: ``"torch"``, ``"onnx"`` (ONNX Runtime; a clear
  :class:`UnveilError` when impossible) or ``"auto"`` (the default: ONNX Runtime on a CPU for the
  models in :data:`ORT_FASTER` when onnxruntime is installed, else torch; ``$UNVEIL_BACKEND`` may
  set what ``"auto"`` means, e.g. ``torch``). Only the network call changes: resizing, padding
  and compositing stay in the wrapper.
* Without an exported file the backend exports once into a cache, ``$UNVEIL_CACHE/onnx`` (default
  ``~/.cache/unveil/onnx``), under a name holding the weight file's sha256 prefix: a changed weight
  file never runs a stale graph, and concurrent processes never see half-written files.

IN2 does not export: ``torch.fft.rfft2`` in its Fourier convolutions has no ONNX conversion in the
TorchScript exporter, and its decoder queries only the hole's pixels (data-dependent shapes). The
dynamo exporter (with the extra ``onnxscript`` package) does convert the encoder, but ONNX
Runtime's DFT made it about 3x slower than torch (720 ms against 235 ms at 256 px, 2 threads), so
IN2 keeps torch.
"""
from __future__ import annotations

import hashlib
import importlib.util
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

BACKENDS = ("auto", "torch", "onnx")
#: What ``backend="auto"`` means when set (``auto``, ``torch`` or ``onnx``).
BACKEND_ENV = "UNVEIL_BACKEND"
CACHE_ENV = "UNVEIL_CACHE"
OPSET = 17
#: Part of cached file names: bump it when the exported graph changes for the same weights.
FORMAT = 1
INSTALL_HINT = "pip install onnx onnxruntime (versions pinned in pyproject.toml)"

#: Models that ``backend="auto"`` runs through ONNX Runtime on a CPU, because it was faster there.
#: Measured on a 2-core x86_64 CPU shared with another process (so indicative), 2 threads, batch 1,
#: median of 15 runs, the backends taking turns (``unveil.eval.bench.backend_speed``). A whole call
#: on a 256 px face (the networks work at their training size, 128 px):
#:   ifacenet        inpaint  torch 48.1 ms, ORT 35.3 ms (1.36x)
#:   soclnet         segment  torch 15.7 ms (fused BN, channels_last), ORT 7.4 ms (2.13x)
#:   soclnet-noattn  segment  torch 15.1 ms, ORT 7.1 ms (2.11x)
#: The network alone at 256 px: ifacenet torch 275 ms, ORT 103 ms; soclnet 105 ms, ORT 32 ms.
#: in2 does not export (see the module docstring).
ORT_FASTER = frozenset({"ifacenet", "soclnet", "soclnet-noattn"})

#: How many graphs this process has exported (the tests check that the cache is reused).
exports_done = 0
_lock = threading.Lock()


def runtime_available() -> bool:
    """Whether onnx and onnxruntime can be imported (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def _import_ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise UnveilError(f"onnxruntime is not installed ({e}); {INSTALL_HINT}") from None
    return onnxruntime


def _import_onnx():
    try:
        import onnx
    except ImportError as e:
        raise UnveilError(f"onnx is not installed ({e}); {INSTALL_HINT}") from None
    return onnx


def cache_dir() -> Path:
    """Where exported graphs are cached: ``$UNVEIL_CACHE/onnx``, else ``~/.cache/unveil/onnx``."""
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "unveil") / "onnx"


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_path(name: str, weights: str | os.PathLike) -> Path:
    """The cache file for model ``name`` with this weight file (named by its sha256 prefix)."""
    return cache_dir() / f"{name}-{file_sha256(weights)[:16]}-v{FORMAT}.onnx"


class OrtSession:
    """An ONNX Runtime CPU session: intra-op threads = torch's thread count, no spinning (torch
    runs in the same process), sequential execution. ``session(*arrays)`` -> the first output."""

    def __init__(self, model: str | os.PathLike | bytes, threads: int | None = None):
        ort = _import_ort()
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or torch.get_num_threads())
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        so.log_severity_level = 3
        src = model if isinstance(model, bytes) else str(model)
        self.path = None if isinstance(model, bytes) else Path(model)
        self.session = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        if len(arrays) != len(self.inputs):
            raise UnveilError(f"the ONNX graph takes {len(self.inputs)} input(s), got {len(arrays)}")
        feed = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in zip(self.inputs, arrays)}
        return self.session.run(None, feed)[0]

    def run_torch(self, *tensors: torch.Tensor) -> torch.Tensor:
        """Tensors in, a CPU tensor out (the network call of a wrapper)."""
        return torch.from_numpy(self(*[t.detach().cpu().numpy() for t in tensors]))


# ---- which models export ------------------------------------------------------------------------

def _kinds():
    from unveil.models.neural import NeuralInpainter
    from unveil.models.soclnet import SOCLNetSegmenter

    return NeuralInpainter, SOCLNetSegmenter


def _learned(factory) -> bool:
    return isinstance(factory, type) and issubclass(factory, _kinds())


def exportable() -> list[str]:
    """Registered models whose network exports to ONNX."""
    from unveil.models import available, info

    return [n for n in available(None)
            if _learned(info(n).factory) and not getattr(info(n).factory, "onnx_unsupported", None)]


def not_exportable() -> dict[str, str]:
    """Registered learned models whose network does not export, with the reason."""
    from unveil.models import available, info

    return {n: info(n).factory.onnx_unsupported for n in available(None)
            if _learned(info(n).factory) and getattr(info(n).factory, "onnx_unsupported", None)}


def check_exportable(name: str) -> None:
    """A clear :class:`UnveilError` for an unknown model or one whose network does not export."""
    from unveil.models import info

    factory = info(name).factory  # unknown names: UnveilError listing the registered models
    if not _learned(factory):
        raise UnveilError(f"'{name}' has no network to export to ONNX; exportable: {', '.join(exportable())}")
    reason = getattr(factory, "onnx_unsupported", None)
    if reason:
        raise UnveilError(f"'{name}' cannot be exported to ONNX: {reason}")


# ---- export -------------------------------------------------------------------------------------

def _face(h: int, w: int) -> np.ndarray:
    """A real face: Eileen Collins from scikit-image's astronaut, resized to h x w."""
    from skimage import data

    from unveil.data.faces import resize

    return resize(data.astronaut()[20:240, 130:350], (h, w))


def _drawn_hole(h: int, w: int) -> np.ndarray:
    """A bool hole: a filled ellipse over the mouth and a thick stroke across an eye."""
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w // 2, int(h * 0.68)), (max(2, w // 5), max(2, h // 9)), 0, 0, 360, 1, -1)
    cv2.line(m, (w // 5, h // 3), (w * 3 // 5, h * 2 // 5), 1, max(2, w // 20))
    return m.astype(bool)


def _spec(obj) -> tuple[torch.nn.Module, list[str], callable]:
    """The torch network of a loaded model, its input names and ``example(n, h, w) -> tensors``."""
    NeuralInpainter, SOCLNetSegmenter = _kinds()
    if isinstance(obj, NeuralInpainter):
        from unveil.models.neural import to_tensor

        def example(n, h, w):
            imgs = np.stack([_face(h, w)[:, ::(1 if i % 2 == 0 else -1)] for i in range(n)])
            m = torch.from_numpy(np.stack([_drawn_hole(h, w)] * n)[:, None].astype(np.float32))
            return to_tensor(imgs) * (1 - m), m

        return obj.model, ["x", "m"], example
    if isinstance(obj, SOCLNetSegmenter):
        from unveil.models.soclnet import to_tensor

        def example(n, h, w):
            imgs = np.stack([_face(h, w)[:, ::(1 if i % 2 == 0 else -1)] for i in range(n)])
            imgs[:, _drawn_hole(h, w)] = (40, 90, 160)  # a flat "occluder"
            return (to_tensor(imgs),)

        return obj.model, ["x"], example
    raise UnveilError(f"{type(obj).__name__} has no network to export to ONNX")


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
    from unveil.models import load

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

def resolve_backend(backend: str | None, name: str, device: torch.device | str,
                    unsupported: str | None = None) -> str:
    """``"torch"`` or ``"onnx"`` for a model; UnveilError when ``"onnx"`` is asked and impossible."""
    b = (backend or "auto").lower()
    if b not in BACKENDS:
        raise UnveilError(f"unknown backend '{backend}'; choose from {', '.join(BACKENDS)}")
    if b == "auto":
        b = (os.environ.get(BACKEND_ENV) or "auto").lower()
        if b not in BACKENDS:
            raise UnveilError(f"${BACKEND_ENV}='{b}' is not a backend; choose from {', '.join(BACKENDS)}")
    device = torch.device(device)
    if b == "torch":
        return "torch"
    if b == "onnx":
        if device.type != "cpu":
            raise UnveilError(f"the onnx backend runs on the CPU; '{name}' on {device} needs backend='torch'")
        if unsupported:
            raise UnveilError(f"'{name}' cannot run on ONNX Runtime: {unsupported}")
        if not runtime_available():
            raise UnveilError(f"the onnx backend needs onnx and onnxruntime; {INSTALL_HINT}")
        return "onnx"
    ok = device.type == "cpu" and not unsupported and name in ORT_FASTER and runtime_available()
    return "onnx" if ok else "torch"


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
