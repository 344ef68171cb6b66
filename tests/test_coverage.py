"""`unveil eval-coverage`: what survives of an occluder, counted on hand-made cases and run end to end."""
import numpy as np
import pytest

from unveil.eval.coverage import (CoverageConfig, beyond_sums, coverage_counts, crop_square, run_coverage, seam_sums,
                                  summarize)
from unveil.face import AlignedFace
from unveil.io import read_image


def test_coverage_counts_match_a_hand_count():
    masked = np.zeros((60, 60, 3), np.uint8)
    occ = np.zeros((60, 60), bool)
    occ[10:20, 10:30] = True  # 200 px of occluder, of which the loop is column 29
    loops = np.zeros_like(occ)
    loops[10:20, 29] = True
    out = masked.copy()
    out[10:20, 10:20] = 1  # 100 body pixels changed; 90 body pixels and the 10 loop pixels left
    out[55:58, 55:58] = 1  # 9 pixels changed far from the occluder
    c = coverage_counts(masked, out, occ, loops, far=25)
    assert c == {"body": 190, "body_left": 90, "loops": 10, "loops_left": 10, "changed": 109, "far": 9}
    s = summarize([c, c])
    assert s["body_left"] == pytest.approx(90 / 190) and s["loops_left"] == 1.0 and s["far"] == pytest.approx(9 / 109)


def test_a_step_at_the_face_crops_edge_reads_as_a_seam():
    """A fill 60 levels brighter outside the face crop's square than inside it is a seam; the same
    texture without the step is not. The crop is the photo itself (identity matrix), 100 px, and
    the fully pasted square starts 10 px in."""
    rng = np.random.default_rng(0)
    tex = rng.normal(100, 4, (100, 100, 1)).repeat(3, -1)
    yy, xx = np.mgrid[:100, :100]
    inside = (xx >= 10) & (xx <= 90) & (yy >= 10) & (yy <= 90)
    stepped = np.clip(tex + np.where(inside, 0, 60)[..., None], 0, 255).astype(np.uint8)
    plain = np.clip(tex, 0, 255).astype(np.uint8)
    changed = np.ones((100, 100), bool)
    eye = AlignedFace(plain, np.array([[1.0, 0, 0], [0, 1.0, 0]]), changed)
    c = seam_sums(stepped, plain, changed, eye, 10)
    s = summarize([{"body": 1, "body_left": 0, "loops": 0, "loops_left": 0, "changed": 1, "far": 0, "seam": c}])
    assert s["seam"] > 3 and 0.7 < s["seam_truth"] < 1.3, s
    assert c["n_on"] > 0 and c["n_near"] > 0


def test_the_fill_beyond_the_face_crop_is_scored_against_the_clean_photo():
    """PSNR and detail ratio of the beyond fill, pooled over photos, equal a hand computation: 50
    pixels off by 10 levels in every channel and 50 exact give MSE 50; a flat fill over a
    checkerboard has no detail, the checkerboard itself all of it."""
    truth = np.zeros((20, 20, 3), np.uint8)
    truth[::2, ::2] = truth[1::2, 1::2] = 100  # a checkerboard: strong Laplacian everywhere
    region = np.zeros((20, 20), bool)
    region[5:15, 5:15] = True  # 100 pixels
    out = truth.copy()
    out[5:10, 5:15] += 10  # 50 of them off by 10 levels
    s = summarize([{"body": 1, "body_left": 0, "loops": 0, "loops_left": 0, "changed": 1, "far": 0,
                    "beyond": beyond_sums(out, truth, region)}])
    assert s["beyond_pixels"] == 100 and s["beyond_psnr"] == pytest.approx(10 * np.log10(255 ** 2 / 50))
    flat = np.full_like(truth, 50)
    a = summarize([{"body": 1, "body_left": 0, "loops": 0, "loops_left": 0, "changed": 1, "far": 0,
                    "beyond": beyond_sums(flat if k else truth, truth, region)} for k in (0, 1)])
    assert a["beyond_pixels"] == 200 and 0.4 < a["beyond_detail"] < 0.6  # one photo of two kept it all


def test_crop_square_maps_the_fully_pasted_square_into_the_photo():
    """With the crop at half the photo's scale, the square ``full_weight_inset`` crop px in from a
    100 px crop's border is twice as far in from the border of the crop's 200 px in the photo
    (the pixel on the line, half in, counts in)."""
    from unveil.pipeline import full_weight_inset

    k = full_weight_inset(100)
    crop = np.zeros((100, 100, 3), np.uint8)
    half = AlignedFace(crop, np.array([[0.5, 0, 0], [0, 0.5, 0]]), np.ones((100, 100), bool))
    inside = crop_square((200, 200, 3), half)
    ys, xs = np.nonzero(inside)
    assert 0 < k < 20 and (ys.min(), ys.max(), xs.min(), xs.max()) == (2 * k - 1, 199 - 2 * k, 2 * k - 1, 199 - 2 * k)
    assert np.flatnonzero(inside[100]).tolist() == list(range(2 * k - 1, 200 - 2 * k))  # a whole row across it


def test_eval_coverage_runs_on_real_photos(data_root, tmp_path):
    r = run_coverage(CoverageConfig(n=3, clean=2, real=False, sheet=2, data=str(data_root), out=str(tmp_path)),
                     progress=False)
    s = r["summary"]
    assert s["photos"] == 3 and s["pixels"]["body"] > 0 and s["pixels"]["loops"] > 0
    assert 0 <= s["body_left"] <= 1 and 0 <= s["loops_left"] <= 1 and s["clean"] == 2
    assert (tmp_path / "sheet.png").exists() and (tmp_path / "coverage.json").exists()
    rows = r["photos"]  # one row per photo, adding up to the pooled counts; the worst ones shown
    assert len(rows) == 3 and sum(x["pixels"]["body_left"] for x in rows) == s["pixels"]["body_left"]
    assert all(x["family"] and (x["restored"] or x["missed_why"]) for x in rows)
    assert read_image(tmp_path / "worst.png").shape == read_image(tmp_path / "sheet.png").shape  # 2 of 3
    assert "body left" in r["table"] and 0 < s["seam"] < 5 and s["seam_pixels"] > 0
    assert 5 < s["beyond_psnr"] < 60 and s["beyond_pixels"] > 0 and "beyond" in r["table"]
