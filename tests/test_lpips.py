import cv2
import numpy as np
import pickle
import pytest

from unveil.eval.lpips import frechet_distance, get_lpips
from unveil.models.imagenet import _NumpyOnlyUnpickler


def test_lpips_zero_for_identical_and_grows_with_blur(astronaut_face):
    lp = get_lpips("alex")
    assert lp.distance(astronaut_face, astronaut_face)[0] == pytest.approx(0.0, abs=1e-7)
    d = [lp.distance(astronaut_face, cv2.GaussianBlur(astronaut_face, (0, 0), s))[0] for s in (0.7, 1.5, 3)]
    assert 0 < d[0] < d[1] < d[2]
    assert 0.1 < d[2] < 1.0  # a strong blur is far, in the range LPIPS gives


def test_lpips_uses_real_imagenet_weights():
    lp = get_lpips("alex")
    w = lp.features.convs[0].weight
    # trained AlexNet conv1 filters: non-random statistics, mostly colour-opponent/edge filters
    assert w.shape == (64, 3, 11, 11)
    assert 0.05 < float(w.std()) < 0.5
    assert all(float(x.min()) >= 0 for x in lp.lin)  # LPIPS linear layers are non-negative


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    import io
    with pytest.raises(pickle.UnpicklingError):
        _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Evil()))).load()


def test_frechet_distance_zero_for_same_set_and_positive_when_shifted():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(200, 8))
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(f, f + 1.0) == pytest.approx(8.0, rel=1e-6)  # |mu shift|^2
