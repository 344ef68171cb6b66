import numpy as np
import pytest

from unveil import models
from unveil.errors import UnveilError
from unveil.masks import freeform_mask

BASELINES = ["telea", "navier-stokes", "biharmonic", "pullpush"]


def test_registry_lists_baselines_and_refuses_unknown_names():
    assert set(BASELINES) <= set(models.available())
    assert models.best() in models.available()
    with pytest.raises(UnveilError, match="unknown model 'nope'"):
        models.load("nope")


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_leaves_pixels_outside_the_hole_unchanged(name, astronaut_face):
    img = astronaut_face[::2, ::2].copy()  # 128 px keeps biharmonic quick
    mask = freeform_mask(img.shape[:2], 3, "medium", bin="20-30")
    holed = img.copy()
    holed[mask] = 0
    out = models.load(name).inpaint(holed, mask)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(out[~mask], holed[~mask])
    # it actually fills: the hole is no longer black, and is closer to the truth than black is
    err_out = np.abs(out[mask].astype(int) - img[mask]).mean()
    err_black = np.abs(holed[mask].astype(int) - img[mask]).mean()
    assert err_out < 0.5 * err_black


def test_inpaint_checks_its_inputs(astronaut_face):
    m = models.load("telea")
    with pytest.raises(UnveilError, match="same size"):
        m.inpaint(astronaut_face, np.zeros((10, 10), bool))
    with pytest.raises(UnveilError, match="uint8"):
        m.inpaint(astronaut_face.astype(np.float32), np.zeros(astronaut_face.shape[:2], bool))
    empty = np.zeros(astronaut_face.shape[:2], bool)
    assert np.array_equal(m.inpaint(astronaut_face, empty), astronaut_face)


def test_shared_loads_a_model_once_and_checks_its_kind():
    from unveil import models
    from unveil.errors import UnveilError

    a = models.shared("telea", "inpainter")
    assert models.shared("telea") is a and models.shared("telea", "inpainter", "cpu") is a
    with pytest.raises(UnveilError, match="not a segmenter"):
        models.shared("telea", "segmenter")


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_the_mirror_look_makes_a_fill_mirror_symmetric(astronaut_face, backend):
    """``flip=True``: the network fills the crop and its mirror image and averages them, so the
    fill of a mirrored crop is the mirror of the fill (to float rounding); a single look is not."""
    from unveil.masks.shapes import facemask_shape

    face = np.ascontiguousarray(astronaut_face[:256, :256])
    hole = facemask_shape(256, 0)
    for flip, symmetric in ((True, True), (False, False)):
        inp = models.load("ifacenet-fidelity", backend=backend, flip=flip)
        assert inp.flip is flip
        a = inp.inpaint(face, hole)
        b = inp.inpaint(np.ascontiguousarray(face[:, ::-1]), np.ascontiguousarray(hole[:, ::-1]))[:, ::-1]
        gap = np.abs(a.astype(int) - b.astype(int))[hole].max()
        assert (gap <= 2) if symmetric else (gap > 10), (flip, gap)
    # the defaults: on for the realism models the pipeline picks, off for the variants as trained
    assert models.load("lgface").flip and models.load("ifacenet").flip
    assert not models.load("lgface-fidelity").flip and not models.load("ifacenet-fidelity").flip
