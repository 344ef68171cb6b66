"""The ONNX Runtime backend for CPU inference: sessions, the cache of exported graphs, and the
choice of backend.

``backend=`` on :class:`~unveil.models.neural.NeuralInpainter` and
:class:`~unveil.models.soclnet.SOCLNetSegmenter`: ``"torch"``, ``"onnx"`` (ONNX Runtime; a clear
:class:`UnveilError` when impossible) or ``"auto"`` (the default: ONNX Runtime on a CPU for the
models in :data:`ORT_FASTER` when onnxruntime is installed, else torch; ``$UNVEIL_BACKEND`` may set
what ``"auto"`` means, e.g. ``torch``). Only the network call changes: resizing, padding and
compositing stay in the wrapper. Graphs are cached in ``$UNVEIL_CACHE/onnx`` (default
``~/.cache/unveil/onnx``) under a name holding the weight file's sha256 prefix: a changed weight
file never runs a stale graph. Writing them is the exporter's (:mod:`unveil.models.onnx_export`).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from unveil.errors import UnveilError

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
#:   lgface          inpaint  torch 77.2 ms, ORT 65.2 ms (1.18x, quiet machine; 440 vs 190 ms when busy)
#:   lgface-refiner  the refiner after lgface, on a 170x256 hole box: torch 211 ms, ORT 27 ms (busy machine)
#: in2 does not export (see the module docstring).
#: The fidelity variants run the same networks as ifacenet and lgface, ifacenet-refiner the same as
#: lgface-refiner.
ORT_FASTER = frozenset({"ifacenet", "ifacenet-fidelity", "soclnet", "soclnet-noattn", "lgface", "lgface-fidelity",
                        "lgface-refiner", "ifacenet-refiner"})

def runtime_available() -> bool:
    """Whether onnx and onnxruntime can be imported (without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def _import_ort():
    try:
        import onnxruntime
    except ImportError as e:
        raise UnveilError(f"onnxruntime is not installed ({e}); {INSTALL_HINT}") from None
    return onnxruntime


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
