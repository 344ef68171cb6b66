"""ONNX export and the ONNX Runtime backend: exported graphs agree with torch on a real face, the
backend keeps the wrapper's behaviour, the export cache is reused and keyed by the weights, and
the errors are clear. Skips without onnx / onnxruntime."""

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -c constraints.txt onnxruntime)")
pytest.importorskip("onnx", reason="onnx is not installed (pip install -c constraints.txt onnx)")

from unveil import models  # noqa: E402
from unveil.errors import UnveilError  # noqa: E402
from unveil.models import onnx_export as uo  # noqa: E402
from unveil.models import onnx_runtime as rt  # noqa: E402
from unveil.models.soclnet import SOCLNet, SOCLNetConfig  # noqa: E402
from unveil.models.weights import save_weights  # noqa: E402

TINY_SOCL = dict(width=0.5, stages=((1, 16, 1, 1), (4, 24, 1, 2), (4, 32, 1, 2), (4, 64, 1, 2)),
                 aspp_channels=16, low_level_channels=8, decoder_channels=16)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test exports into its own cache folder, never the user's."""
    monkeypatch.setenv(rt.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(rt.BACKEND_ENV, raising=False)
    return tmp_path / "cache" / "onnx"


def _hole(h, w):
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w // 2, int(h * 0.7)), (w // 5, h // 8), 0, 0, 360, 1, -1)
    cv2.line(m, (w // 5, h // 3), (w // 2, h // 3), 1, 9)
    return m.astype(bool)


@pytest.mark.parametrize("name", ["ifacenet", "soclnet", "cutface"])
def test_exported_graph_matches_torch_on_a_real_face(name, tmp_path, astronaut_face):
    path = uo.export_onnx(name, tmp_path / "out" / f"{name}.onnx")
    assert path.exists() and path.stat().st_size > 100_000
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    net = models.load(name, backend="torch").model
    sess = rt.OrtSession(path)
    for h, w in [(128, 128), (96, 160)]:  # the working size, and another (dynamic axes)
        face = cv2.resize(astronaut_face, (w, h), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(face).permute(2, 0, 1)[None].float() / 127.5 - 1
        if name == "soclnet":
            args = (x,)
        else:
            m = torch.from_numpy(_hole(h, w)).float()[None, None]
            args = (x * (1 - m), m)
        with torch.inference_mode():
            ref = net(*args)
        got = sess.run_torch(*args)
        assert got.shape == ref.shape
        assert float((got - ref).abs().max()) < 1e-3 * max(1.0, float(ref.abs().max()))


def test_onnx_inpainter_agrees_with_torch_and_keeps_pixels_outside_the_hole(astronaut_face):
    mask = _hole(256, 256)
    # with its detail refiner (a second graph) and without it
    for refine in (True, False):
        ort_model = models.load("ifacenet", backend="onnx", refine=refine)
        torch_model = models.load("ifacenet", backend="torch", refine=refine)
        assert (ort_model.backend, torch_model.backend) == ("onnx", "torch")
        assert (ort_model._refiner_ort is not None) == refine and torch_model._refiner_ort is None
        a, b = ort_model.inpaint(astronaut_face, mask), torch_model.inpaint(astronaut_face, mask)
        assert a.shape == astronaut_face.shape and a.dtype == np.uint8
        np.testing.assert_array_equal(a[~mask], astronaut_face[~mask])
        d = np.abs(a.astype(int) - b.astype(int))
        assert d.max() <= 2 and d.mean() < 0.05
    # a batch of two equal-size faces (one flipped) through the same graph (without the refiner,
    # which runs on the batch's common hole box: its zero padding then sits elsewhere)
    flipped = astronaut_face[:, ::-1].copy()
    outs = ort_model.inpaint_batch([astronaut_face, flipped], [mask, mask[:, ::-1].copy()])
    np.testing.assert_array_equal(outs[0], a)
    np.testing.assert_array_equal(outs[1][~mask[:, ::-1]], flipped[~mask[:, ::-1]])


def test_onnx_segmenter_agrees_with_torch_at_any_size(astronaut_face):
    img = astronaut_face[:250, :190].copy()  # not a multiple of 16: reflect-padded
    o, t = models.load_segmenter("soclnet", backend="onnx"), models.load_segmenter("soclnet", backend="torch")
    po, pt = o.segment(img), t.segment(img)
    assert po.shape == (250, 190) and po.dtype == np.float32
    np.testing.assert_allclose(po, pt, atol=1e-4)
    batch = o.segment_batch([img, img[::-1].copy()])
    np.testing.assert_allclose(batch[0], po, atol=1e-5)


def test_auto_picks_onnx_on_cpu_for_the_allow_list_only(monkeypatch):
    assert models.load("ifacenet").backend == "onnx"
    assert models.load("in2").backend == "torch"  # does not export
    assert rt.resolve_backend("auto", "ifacenet", "cuda") == "torch"
    monkeypatch.setenv(rt.BACKEND_ENV, "torch")
    assert models.load("ifacenet").backend == "torch"
    monkeypatch.delenv(rt.BACKEND_ENV)
    monkeypatch.setattr(rt, "runtime_available", lambda: False)
    assert models.load("ifacenet").backend == "torch"
    with pytest.raises(UnveilError, match="needs onnx and onnxruntime"):
        models.load("ifacenet", backend="onnx")


def test_cache_is_reused_and_keyed_by_the_weight_file(tmp_path, cache):
    torch.manual_seed(0)
    cfg = SOCLNetConfig(**TINY_SOCL)
    w = save_weights(tmp_path / "w.safetensors", SOCLNet(cfg), cfg)
    n0 = uo.exports_done
    first = models.load_segmenter("soclnet", weights=w, backend="onnx")
    files = sorted(cache.glob("*.onnx"))
    assert uo.exports_done == n0 + 1 and len(files) == 1
    assert files[0].name.startswith("soclnet-" + rt.file_sha256(w)[:16])
    mtime = files[0].stat().st_mtime_ns
    second = models.load_segmenter("soclnet", weights=w)  # auto: from the cache, no new export
    assert second.backend == "onnx" and uo.exports_done == n0 + 1
    assert files[0].stat().st_mtime_ns == mtime
    img = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    np.testing.assert_array_equal(first.segment(img), second.segment(img))
    # new weights in the same file: a new export, never the stale graph
    torch.manual_seed(1)
    save_weights(w, SOCLNet(cfg), cfg)
    third = models.load_segmenter("soclnet", weights=w)
    assert uo.exports_done == n0 + 2 and len(list(cache.glob("*.onnx"))) == 2
    ref = models.load_segmenter("soclnet", weights=w, backend="torch")
    np.testing.assert_allclose(third.segment(img), ref.segment(img), atol=1e-4)
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]


def test_clear_errors():
    with pytest.raises(UnveilError, match="unknown model 'nope'"):
        uo.export_onnx("nope")
    with pytest.raises(UnveilError, match="'in2' cannot be exported to ONNX: .*rfft2"):
        uo.export_onnx("in2")
    with pytest.raises(UnveilError, match="no network to export"):
        uo.export_onnx("telea")
    with pytest.raises(UnveilError, match="'in2' cannot run on ONNX Runtime"):
        models.load("in2", backend="onnx")
    with pytest.raises(UnveilError, match="unknown backend 'tensorrt'"):
        models.load("ifacenet", backend="tensorrt")
    with pytest.raises(UnveilError, match="runs on the CPU"):
        rt.resolve_backend("onnx", "ifacenet", "cuda")
    with pytest.raises(UnveilError, match="unknown model"):
        uo.run_export(["soclnet", "nope"], "unused")


def test_run_export_lines(tmp_path):
    lines = uo.run_export(["soclnet-noattn"], tmp_path)
    assert len(lines) == 1 and lines[0].startswith("soclnet-noattn: ") and "MB" in lines[0]
    assert "max |onnx - torch|" in lines[0] and (tmp_path / "soclnet-noattn.onnx").exists()
    assert set(uo.exportable()) == {"ifacenet", "ifacenet-fidelity", "ifacenet-single", "soclnet", "soclnet-noattn", "cutface",
                                    "lgface", "lgface-fidelity"}
    assert set(uo.not_exportable()) == {"in2"}


def test_lgface_runs_on_onnx_with_its_guide_as_a_third_input(astronaut_face):
    """LGFace's graph takes the guide (two landmark heatmaps and the gender code) beside the
    photo and the hole: the fill agrees with torch and the pixels outside the hole stay."""
    mask = _hole(256, 256)
    o, t = models.load("lgface", backend="onnx"), models.load("lgface", backend="torch")
    assert models.load("lgface").backend == "onnx"  # auto: measured faster
    a, b = o.inpaint(astronaut_face, mask), t.inpaint(astronaut_face, mask)
    np.testing.assert_array_equal(a[~mask], astronaut_face[~mask])
    d = np.abs(a.astype(int) - b.astype(int))
    assert d.max() <= 2 and d.mean() < 0.05
    assert o._ort.inputs == ["x", "m", "g"]
