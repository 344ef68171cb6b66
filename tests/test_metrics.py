import numpy as np
import pytest
from skimage.metrics import structural_similarity

from unveil.eval.metrics import PSNR_CAP, l1, psnr, ssim


def test_psnr_and_l1_hand_computed():
    a = np.zeros((8, 8, 3))
    b = np.full((8, 8, 3), 0.1)
    assert psnr(a, b) == pytest.approx(20.0)  # MSE 0.01 -> 10*log10(100)
    assert l1(a, b) == pytest.approx(0.1)
    # uint8: a difference of 51 everywhere is 0.2 -> MSE 0.04 -> 13.979 dB
    u = np.zeros((4, 4, 3), np.uint8)
    v = np.full((4, 4, 3), 51, np.uint8)
    assert psnr(u, v) == pytest.approx(10 * np.log10(1 / 0.04))
    assert l1(u, v) == pytest.approx(0.2)
    assert psnr(u, u) == PSNR_CAP


def test_hole_metrics_only_look_inside_the_hole():
    a = np.zeros((6, 6, 3))
    b = a.copy()
    mask = np.zeros((6, 6), bool)
    mask[:2] = True
    b[:2] = 0.5  # error only inside the hole
    assert l1(a, b, mask) == pytest.approx(0.5)
    assert l1(a, b) == pytest.approx(0.5 * 12 / 36)
    assert psnr(a, b, mask) == pytest.approx(10 * np.log10(1 / 0.25))
    with pytest.raises(ValueError):
        l1(a, b, np.zeros((6, 6), bool))


def test_ssim_of_constant_images_matches_formula():
    # two flat images: variances and covariance are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    x, y, c1 = 0.2, 0.6, 0.01 ** 2
    a = np.full((32, 32, 3), x)
    b = np.full((32, 32, 3), y)
    assert ssim(a, b) == pytest.approx((2 * x * y + c1) / (x * x + y * y + c1), rel=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def test_ssim_matches_skimage_on_a_real_image(astronaut_face):
    rng = np.random.default_rng(0)
    noisy = np.clip(astronaut_face + rng.normal(0, 20, astronaut_face.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(astronaut_face, noisy, channel_axis=-1, gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False, data_range=255)
    assert ssim(astronaut_face, noisy) == pytest.approx(ref, abs=1e-9)
    mask = np.zeros(astronaut_face.shape[:2], bool)
    mask[100:150, 60:200] = True
    assert 0 < ssim(astronaut_face, noisy, mask) < 1


def test_segmentation_scores_hand_computed():
    from unveil.eval.metrics import seg_counts, seg_scores

    truth = np.zeros((4, 5), bool)
    truth[0, :4] = True  # 4 occluder pixels
    pred = np.zeros((4, 5), bool)
    pred[0, 2:5] = True  # 2 hits, 1 false alarm, 2 misses
    c = seg_counts(pred, truth)
    assert c.tolist() == [2, 1, 2, 15]
    s = seg_scores(c)
    assert s["pa"] == pytest.approx(17 / 20)
    assert s["iou"] == pytest.approx(2 / 5)
    assert s["f1"] == pytest.approx(4 / 7)
    assert seg_scores(seg_counts(truth, truth))["iou"] == 1.0
    assert seg_scores(seg_counts(np.zeros_like(truth), np.zeros_like(truth)))["iou"] == 1.0


def test_detail_ratio_is_the_laplacian_variance_ratio_inside_the_hole():
    """A checkerboard of amplitude a has a 4-neighbour Laplacian of +-8a everywhere inside, so its
    variance is 64 a^2: an output at half the truth's amplitude has detail ratio exactly 0.25, a
    flat fill 0, and the truth itself 1."""
    from unveil.eval.metrics import detail_ratio, hole_box

    yy, xx = np.mgrid[:16, :16]
    sign = np.where((yy + xx) % 2 == 0, 1.0, -1.0)
    truth, half, flat = 0.5 + 0.1 * sign, 0.5 + 0.05 * sign, np.full((16, 16), 0.5)
    hole = np.zeros((16, 16), bool)
    hole[4:12, 4:12] = True
    assert detail_ratio(half, truth, hole) == pytest.approx(0.25)
    assert detail_ratio(flat, truth, hole) == 0.0
    assert detail_ratio(truth, truth, hole) == pytest.approx(1.0)
    assert np.isnan(detail_ratio(half, flat, hole))  # a flat truth has no detail to compare with
    ys, xs = hole_box(hole, min_side=10)
    assert (ys.start, ys.stop, xs.start, xs.stop) == (3, 13, 3, 13)
    top = np.zeros((16, 16), bool)
    top[0:2, 4:12] = True
    ys, xs = hole_box(top, min_side=6)  # grown to 6 rows, inside the image
    assert (ys.start, ys.stop, xs.start, xs.stop) == (0, 6, 4, 12)


def test_the_harness_reports_realism(tmp_path, data_root):
    from unveil.eval.harness import EvalConfig, run_eval

    r = run_eval(EvalConfig(model="telea", masks="facemask", size=128, limit=6, lpips=False, identity=False,
                            data=str(data_root), out=str(tmp_path)), progress=False)
    s = r["summary"]["all"]
    assert 0 < s["detail"] < 1.5 and 0 < s["lpips_vgg_box"] < 1 and 0 <= s["face_found"] <= 1
    assert r["fd_alexnet_hole"] is not None and r["fd_alexnet_hole"] >= 0
    assert "LPIPS-VGG box" in r["table"] and "detail" in r["table"]


def test_bench_prints_realism_rows_and_dashes_for_old_rows():
    from unveil.eval.bench import _realism_table

    lines = _realism_table("face-mask holes", {
        "new": {"detail": 0.5, "lpips_vgg_box": 0.3, "face_found": 0.9, "fd_alexnet_hole": 12.0},
        "old": {"psnr": 20.0}})
    assert "| new | 0.500 | 0.3000 | 0.900 | 12.00 |" in lines and "| old | – | – | – | – |" in lines
    assert _realism_table("face-mask holes", {"old": {"psnr": 20.0}}) == []


def test_bench_scores_the_sunglasses_holes_and_keeps_the_other_rows(data_root, tmp_path):
    """``unveil bench --only eyes --merge``: the sunglasses table is (re)made, the face-mask rows of
    the run before are kept as they were."""
    import json

    from unveil.eval.bench import BenchConfig, run_bench

    old = {"date": "2026-01-01", "speed": {}, "quality": {},
           "facemask": {"telea": {"n": 7, "psnr": 20.0, "ssim": 0.8, "psnr_hole": 15.0, "ssim_hole": 0.6,
                                  "lpips": 0.2}},
           "config": {"sizes": [128], "repeats": 1}}
    (tmp_path / "results.json").write_text(json.dumps(old))
    md = run_bench(BenchConfig(out=str(tmp_path), models=["telea"], parts=("eyes",), facemask_limit=4,
                               docs=False, identity=False, merge=True, data=str(data_root)))
    r = json.loads((tmp_path / "results.json").read_text())
    assert r["eyes"]["telea"]["n"] == 4 and 10 < r["eyes"]["telea"]["psnr"] < 40
    assert r["facemask"] == old["facemask"]
    assert "**Sunglasses**" in md and "**Face-mask occlusion**" in md and "sunglasses holes" in md
    assert "other rows kept from the run of 2026-01-01" in md
    # a merge of that merge still names the run the face-mask rows came from
    md = run_bench(BenchConfig(out=str(tmp_path), models=["telea"], parts=("eyes",), facemask_limit=2,
                               docs=False, identity=False, merge=True, data=str(data_root)))
    assert f"other rows kept from the runs of 2026-01-01, {r['date']}" in md
