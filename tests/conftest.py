import os
from pathlib import Path

import numpy as np
import pytest

from unveil.data.paths import DATA_ENV, DEFAULT_ROOT


@pytest.fixture(scope="session", autouse=True)
def _onnx_cache(tmp_path_factory):
    """Exports made by the ONNX Runtime backend go to a temporary cache, not the user's home."""
    from unveil.models.onnx_runtime import CACHE_ENV

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("unveil-cache"))
    yield
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old


def _shared_root() -> Path:
    return Path(os.environ.get(DATA_ENV) or DEFAULT_ROOT)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared data folder; tests that need it skip with a clear message when it is absent."""
    root = _shared_root()
    if not (root / "faces" / "utkface" / "splits").is_dir():
        pytest.skip(f"shared data not found at {root} (set {DATA_ENV} to ../shared/data)")
    return root


@pytest.fixture(scope="session")
def astronaut_face() -> np.ndarray:
    """A 256x256 face crop from scikit-image's astronaut (ships with the package)."""
    from skimage import data

    from unveil.data.faces import resize

    return resize(data.astronaut()[20:240, 130:350], 256)


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from unveil.cli import main

    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="session")
def facemask_hole_gains(data_root):
    """``gains(model, baseline, n=16, size=128)``: per face, PSNR inside the lower-face hole of a face
    mask of ``model`` minus that of ``baseline`` (loaded Inpainters), on the first ``n`` UTKFace test
    faces at ``size`` px."""
    from unveil.data import face_records, load_face
    from unveil.eval.metrics import psnr
    from unveil.masks.shapes import facemask_shape

    def gains(model, baseline, n: int = 16, size: int = 128) -> list[float]:
        out = []
        for i, rec in enumerate(face_records("utkface", "test", data_root)[:n]):
            face = load_face(rec, size)
            hole = facemask_shape(size, i)
            shown = face.copy()
            shown[hole] = 0
            out.append(psnr(model.inpaint(shown, hole), face, hole) - psnr(baseline.inpaint(shown, hole), face, hole))
        return out

    return gains


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server():
    """``create_app()`` served by uvicorn on a free 127.0.0.1 port in a thread: its base URL."""
    import threading
    import time

    uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    from unveil.serve import create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="off"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    t0 = time.time()
    while not srv.started:
        if not th.is_alive() or time.time() - t0 > 30:
            pytest.fail("the uvicorn server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    th.join(10)
