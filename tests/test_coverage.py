"""`unveil eval-coverage`: what survives of an occluder, counted on hand-made cases and run end to end."""
import numpy as np
import pytest

from unveil.eval.coverage import CoverageConfig, coverage_counts, run_coverage, seam_sums, summarize
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
