"""The gender classifier: API and bad input (no data), registry, a tiny training run on real faces,
and the shipped weights on real test faces, clean and wearing a synthetic face mask."""
import dataclasses

import numpy as np
import pytest

from unveil.errors import UnveilError
from unveil.models import gender as gmod


@pytest.fixture(scope="module")
def clf():
    return gmod.load_gender_classifier()


def test_registered_as_classifier():
    from unveil import models
    from unveil.models.catalog import catalog, rows

    assert models.available("classifier") == ["gender"]
    assert models.info("gender").kind == "classifier"
    assert "gender" not in models.available("inpainter") + models.available("segmenter")
    assert isinstance(models.load("gender"), gmod.GenderClassifier)
    row = next(r for r in rows() if r["name"] == "gender")
    assert row["kind"] == "classifier" and row["params"] <= 1.5e6 and row["mb"] < 3.5
    assert any(line.startswith("gender ") and "classifier" in line for line in catalog())
    with pytest.raises(UnveilError, match="not a segmenter"):
        models.load_segmenter("gender")


def test_predict_shapes(clf, astronaut_face):
    assert clf.size == 96 and clf is gmod.load_gender_classifier()
    one = clf.predict(astronaut_face)
    assert one.shape == (1,) and one.dtype == np.float32 and 0 <= one[0] <= 1
    batch = clf.predict(np.stack([astronaut_face] * 3))
    assert batch.shape == (3,) and np.allclose(batch, one[0], atol=1e-5)
    mixed = clf.predict([astronaut_face, astronaut_face[::2, ::2].copy(), astronaut_face[:, 10:250]])
    assert mixed.shape == (3,) and np.all((mixed >= 0) & (mixed <= 1))
    assert abs(mixed[1] - one[0]) < 0.2  # the same face at half the size
    assert clf.label(one[0]) in ("female", "male")
    assert clf.label(0.7) == "female" and clf.label(0.3) == "male" and clf.label(0.5) == "female"
    label, p = clf.classify(astronaut_face)
    assert label == clf.label(p) and abs(p - one[0]) < 1e-6


def test_bad_input(clf, astronaut_face):
    bad = [astronaut_face.astype(np.float32), astronaut_face[..., 0], astronaut_face[..., :2],
           np.dstack([astronaut_face, astronaut_face[..., :1]]), astronaut_face[:8, :8]]
    for crop in bad:
        with pytest.raises(UnveilError):
            clf.predict([crop])
    for crops in ([], np.zeros((2, 2, 32, 32, 3), np.uint8), "face.jpg", None):
        with pytest.raises(UnveilError):
            clf.predict(crops)
    for p in (1.5, -0.1, float("nan"), "x", None):
        with pytest.raises(UnveilError):
            clf.label(p)
    with pytest.raises(UnveilError, match="no weights"):
        gmod.GenderClassifier(weights="/nonexistent/gender.safetensors")


def test_network_small():
    net = gmod.GenderNet()
    assert sum(p.numel() for p in net.parameters()) <= 1.5e6
    with pytest.raises(UnveilError, match="unknown"):
        gmod.build_gender_net({"depth": 3})


def test_tiny_training_loss_falls(data_root, tmp_path):
    from unveil.train import fit
    from unveil.train.gender import GenderTrainConfig

    # 100 steps: on the mixed-order split's first faces (all ages) 60 steps lowered the loss by only
    # 0.04 (0.66 -> 0.62), 100 steps by 0.12
    cfg = GenderTrainConfig(size=48, pool=16, clean=48, val=8, batch=16, steps=100, lr=1e-2, warmup=5,
                            workers=0, cache=str(tmp_path / "cache"), out=str(tmp_path / "run"),
                            val_every=1000, ckpt_every=30, data=str(data_root),
                            model={"stages": ((16, 1), (32, 1), (64, 1))})
    r = fit(cfg, progress=False)
    losses = r["losses"]
    assert r["steps"] == 100 and len(losses) == 100
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.05, (losses[:10], losses[-10:])
    assert set(r["val"]) == {"clean", "masked"} and r["val"]["masked"]["n"] >= 6
    # the weights load into the classifier; a longer run resumes from the checkpoint
    c = gmod.GenderClassifier(weights=r["weights"])
    assert c.size == 48 and c.predict(np.zeros((64, 64, 3), np.uint8)).shape == (1,)
    assert not c.has_age and "age" not in r["val"]["clean"]
    with pytest.raises(UnveilError, match="no age output"):
        c.predict_age(np.zeros((64, 64, 3), np.uint8))
    assert np.isnan(c.predict_both(np.zeros((64, 64, 3), np.uint8))[1]).all()
    r2 = fit(dataclasses.replace(cfg, steps=104), progress=False)
    assert r2["steps"] == 104 and len(r2["losses"]) == 4


def test_age_code_maps_years_and_back():
    assert gmod.age_code(35) == 0 and gmod.age_code(55) == 1 and gmod.age_code(25) == -0.5
    assert gmod.age_code(5) == -1.5 and gmod.age_code(90) == 2.0  # children and the old clip
    assert np.allclose(gmod.code_age([-0.5, 0, 1, 9]), [25, 35, 55, 75])
    assert gmod.age_code([20, 60]).dtype == np.float32


def test_tiny_training_with_age_learns_both(data_root, tmp_path):
    from unveil.train import fit
    from unveil.train.gender import GenderTrainConfig

    cfg = GenderTrainConfig(size=48, pool=16, clean=48, val=8, batch=16, steps=100, lr=1e-2, warmup=5, age=1.0,
                            workers=0, cache=str(tmp_path / "cache"), out=str(tmp_path / "run"),
                            val_every=1000, ckpt_every=1000, data=str(data_root),
                            model={"stages": ((16, 1), (32, 1), (64, 1))})
    r = fit(cfg, progress=False)
    losses = r["losses"]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.05, (losses[:10], losses[-10:])
    # the age error is reported in years on val faces; a tiny net beats nothing much, but it is finite
    assert 0 < r["val"]["clean"]["age_mae"] < 40 and 0 < r["val"]["masked"]["age_mae"] < 40
    c = gmod.GenderClassifier(weights=r["weights"])
    assert c.has_age
    face = np.zeros((64, 64, 3), np.uint8)
    years = c.predict_age([face, face])
    assert years.shape == (2,) and np.all((years >= 5) & (years <= 75))
    p, code = c.predict_both(face)
    assert p[0] == pytest.approx(c.predict(face)[0]) and np.isfinite(code).all()


def test_shipped_beats_chance_clean_and_masked(data_root, clf):
    from unveil.train.gender import evaluate_gender

    r = evaluate_gender(64, "test", classifier=clf, data=str(data_root))
    assert r["n"] == 64 and r["clean"]["n"] == 64 and r["masked"]["n"] >= 60
    assert r["clean"]["acc"] >= 0.75, r
    assert r["masked"]["acc"] >= 0.75, r
    # the age, bare and masked, well inside what guessing the faces' median age would miss by
    from unveil.data import face_records
    from unveil.train.gender import EVAL_PICK_SEED

    recs = face_records("utkface", "test", data_root)
    pick = np.random.default_rng(EVAL_PICK_SEED).permutation(len(recs))[:64]
    years = gmod.code_age(gmod.age_code([recs[i].age for i in pick]))
    guess = float(np.abs(years - np.median(years)).mean())
    assert clf.has_age and r["clean"]["age_mae"] < 0.75 * guess and r["masked"]["age_mae"] < 0.8 * guess, (r, guess)


def test_cli(run_cli, tmp_path):
    code, out, _ = run_cli("train", "gender", "--help")
    assert code == 0 and "--set" in out and "--restart" in out
    code, out, _ = run_cli("eval-gender", "--help")
    assert code == 0 and "--weights" in out
    code, _, err = run_cli("eval-gender", "--weights", tmp_path / "missing.safetensors")
    assert code == 2 and "no weights" in err


def test_eval_harness_reports_gender_consistency(tmp_path, data_root):
    from unveil.eval.harness import EvalConfig, run_eval

    r = run_eval(EvalConfig(model="telea", masks="facemask", size=96, limit=8, lpips=False, identity=False,
                            gender=True, grid=0, data=str(data_root), out=str(tmp_path)), progress=False)
    g = r["summary"]["all"]["gender"]
    assert g is not None and 0.5 <= g <= 1.0  # a small hole: the fill keeps most faces' gender
    assert "gender agree" in r["table"]
    # the same numbers by group of the faces' labels: each face in one gender and one age band
    groups, rows = r["groups"], r["per_image"]
    assert groups["women"]["n"] + groups["men"]["n"] == 8 == sum(
        groups[k]["n"] for k in groups if k.startswith("age "))
    men = [x["psnr"] for x in rows if x["sex"] == 0]
    assert groups["men"]["psnr"] == pytest.approx(np.mean(men))
    assert "By group" in r["table"] and "| men |" in r["table"]
    # and by pose: the truth's yaw splits the faces with a mesh into frontal and turned heads
    from unveil.face.detect import TURNED

    posed = [x for x in rows if x["yaw"] is not None]
    assert len(posed) >= 6 and all(abs(x["yaw"]) < 0.6 for x in posed)
    turned = [x for x in posed if abs(x["yaw"]) >= TURNED]
    assert groups["frontal"]["n"] == len(posed) - len(turned)
    assert groups.get("turned head", {"n": 0})["n"] == len(turned)
    assert groups["frontal"]["psnr"] == pytest.approx(np.mean([x["psnr"] for x in posed if x not in turned]))
