import numpy as np
import pytest

from unveil.errors import UnveilError
from unveil.masks import BINS, STYLES, bin_of, eyes_shape, facemask_shape, freeform_mask, hole_ratio, mask_source


@pytest.mark.parametrize("style", list(STYLES))
def test_freeform_hits_every_requested_bin(style):
    for b, (lo, hi) in BINS.items():
        for seed in range(4):
            m = freeform_mask(256, seed, style, bin=b)
            assert m.dtype == bool and m.shape == (256, 256)
            assert lo <= hole_ratio(m) < hi and m.any(), (style, b, seed)


def test_freeform_is_deterministic_and_seed_dependent():
    a = freeform_mask(128, 7, "thick", bin="30-40")
    b = freeform_mask(128, 7, "thick", bin="30-40")
    c = freeform_mask(128, 8, "thick", bin="30-40")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert freeform_mask((96, 160), 1).shape == (96, 160)


def test_styles_differ_in_stroke_width():
    # thin masks have far more boundary per hole pixel than thick ones
    def edge_per_pixel(m):
        e = (m[1:] != m[:-1]).sum() + (m[:, 1:] != m[:, :-1]).sum()
        return e / m.sum()

    thin = np.mean([edge_per_pixel(freeform_mask(256, s, "thin", bin="20-30")) for s in range(5)])
    thick = np.mean([edge_per_pixel(freeform_mask(256, s, "thick", bin="20-30")) for s in range(5)])
    assert thin > 2 * thick


def test_bad_bin_and_style_are_clear_errors():
    with pytest.raises(UnveilError, match="bin"):
        freeform_mask(64, 0, bin="70-80")
    with pytest.raises(UnveilError, match="style"):
        freeform_mask(64, 0, style="huge")
    with pytest.raises(UnveilError, match="mask source"):
        mask_source("nonsense")


def test_facemask_shape_covers_the_lower_face():
    m = facemask_shape(256)
    assert 0.2 < hole_ratio(m) < 0.45
    assert not m[:100].any()  # eyes and forehead stay visible
    assert m[200, 128]  # mouth/chin covered


def test_eyes_shape_covers_both_eyes_and_reads_as_eyes_to_the_pipeline():
    from unveil.face.align import TEMPLATE
    from unveil.pipeline import occluder_kind

    for seed in range(20):
        m = eyes_shape(256, seed)
        assert 0.08 < hole_ratio(m) < 0.3, seed
        for x, y in TEMPLATE[:2]:  # both eye centres of the alignment template
            assert m[int(y * 256), int(x * 256)], seed
        assert not m[int(TEMPLATE[2, 1] * 256):].any(), seed  # nose tip, mouth and chin visible
        assert occluder_kind(m) == "eyes", seed
    src = mask_source("eyes")
    a, b = src(3, 128)[0], src(3, 128)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, src(4, 128)[0])


def test_nvidia_masks_cycle_bins_and_match_ratios_csv(data_root):
    src = mask_source("nvidia", data_root)
    seen = []
    for i in range(12):
        m, b = src(i, 256)
        lo, hi = BINS[b]
        assert lo - 0.02 <= hole_ratio(m) < hi + 0.02  # ratios.csv promises +-2 %
        seen.append(b)
    assert seen[:6] == list(BINS)
    m128, _ = src(3, 128)
    assert m128.shape == (128, 128)
    only, b = mask_source("nvidia:40-50", data_root)(5, 256)
    assert b == "40-50" and bin_of(hole_ratio(only)) in ("30-40", "40-50", "50-60")
