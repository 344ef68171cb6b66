"""Occlusion synthesis on real UTKFace faces: exact masks, placement per kind, determinism, CLI folder."""
import json

import numpy as np
import pytest

from unveil.errors import UnveilError
from unveil.occlusion.synth import (
    KINDS,
    MAX_AREA,
    FacePoints,
    SynthConfig,
    Synthesizer,
    min_area,
    parse_masks_cfg,
    run_synth,
)

N_FACES = 3


@pytest.fixture(scope="module")
def faces(data_root):
    """(face uint8 256x256x3, detect.Face) for the first test faces, detected once."""
    from unveil.data import face_records, load_face
    from unveil.face.detect import get_detector

    det = get_detector()
    out = []
    for rec in face_records("utkface", "test", data_root)[:N_FACES]:
        img = load_face(rec, 256)
        found = det.detect(img)
        assert found and found[0].mesh is not None, rec.path
        out.append((img, found[0]))
    return out


@pytest.fixture(scope="module")
def synth(data_root):
    return Synthesizer(data_root, split="test", size=256)


def test_masks_cfg_parses_all_templates(data_root):
    tpls = parse_masks_cfg(data_root / "occluders" / "facemask_templates" / "masks.cfg")
    assert len(tpls) == 21
    assert all(t.anchors.shape == (6, 2) and t.path.exists() for t in tpls)
    ratios = {t.name: t.nose_ratio for t in tpls}
    assert ratios["surgical_left"] < 0.33 < ratios["surgical"] < 0.67 < ratios["surgical_right"]


@pytest.mark.parametrize("kind", KINDS)
def test_mask_is_exact_and_placed(synth, faces, kind):
    for j, (img, face) in enumerate(faces):
        s = synth.sample(img, seed=(11, j), kind=kind, landmarks=face)
        assert s.kind == kind and s.meta["asset"]
        assert s.mask.dtype == bool and s.mask.shape == img.shape[:2]
        assert s.occluded.dtype == np.uint8 and s.occluded.shape == img.shape
        assert np.array_equal(s.clean, img)
        ratio = s.mask.mean()
        assert min_area(kind) <= ratio <= MAX_AREA, (kind, ratio)
        # compositing: outside the mask nothing changed, inside (almost) every pixel did
        changed = (s.occluded != img).any(-1)
        assert not changed[~s.mask].any()
        assert changed[s.mask].mean() > 0.8, (kind, changed[s.mask].mean())

        p = FacePoints.from_mesh(face.mesh, face.box)
        ys, xs = np.nonzero(s.mask)
        eyes_mid = (p.eye_l + p.eye_r) / 2
        d = p.eye_dist
        def at(pt):  # is this point covered (False outside the image)
            x, y = int(round(pt[0])), int(round(pt[1]))
            return bool(0 <= x < s.mask.shape[1] and 0 <= y < s.mask.shape[0] and s.mask[y, x])

        def near(pt, r):
            return bool((((xs - pt[0]) ** 2 + (ys - pt[1]) ** 2) <= r * r).any())

        if kind == "facemask":  # on the nose and the mouth, eyes free, in the lower face
            assert at(p.nose_tip) and at((p.mouth_l + p.mouth_r) / 2)
            assert not at(p.eye_l) and not at(p.eye_r)
            assert ys.mean() > eyes_mid[1] + 0.5 * (p.nose_tip[1] - eyes_mid[1])
        elif kind in ("glasses", "sunglasses"):  # around both eyes, centred on the eye line
            assert near(p.eye_l, 0.35 * d) and near(p.eye_r, 0.35 * d)
            assert abs(ys.mean() - eyes_mid[1]) < 0.4 * d
            assert not at(p.chin)
            if kind == "sunglasses":
                assert at(p.eye_l) or at(p.eye_r)
        elif kind == "scarf":  # over the mouth and chin, below the eyes
            assert at((p.mouth_l + p.mouth_r) / 2)
            assert ys.min() > eyes_mid[1]


def test_same_seed_same_sample(synth, faces):
    img, face = faces[0]
    for kind in (None, "facemask", "shape"):
        a = synth.sample(img, seed=5, kind=kind, landmarks=face)
        b = synth.sample(img, seed=5, kind=kind, landmarks=face)
        assert a.kind == b.kind and a.meta == b.meta
        assert np.array_equal(a.occluded, b.occluded) and np.array_equal(a.mask, b.mask)
    a = synth.sample(img, seed=1, kind="object", landmarks=face)
    b = synth.sample(img, seed=2, kind="object", landmarks=face)
    assert not np.array_equal(a.mask, b.mask)


def test_detects_the_face_itself(synth, faces):
    img, face = faces[0]
    a = synth.sample(img, seed=3, kind="glasses")
    b = synth.sample(img, seed=3, kind="glasses", landmarks=face)
    assert np.array_equal(a.mask, b.mask)


def test_unknown_kind_and_no_face(synth, faces, data_root, tmp_path):
    img, face = faces[0]
    with pytest.raises(UnveilError, match="unknown occluder kind"):
        synth.sample(img, seed=0, kind="hat", landmarks=face)
    with pytest.raises(UnveilError, match="unknown occluder kind"):
        run_synth(SynthConfig(out=str(tmp_path / "x"), n=2, kinds=("hat",), data=str(data_root)))
    with pytest.raises(UnveilError, match="no face"):
        synth.sample(np.full((256, 256, 3), 128, np.uint8), seed=0, kind="scarf")


def test_run_synth_writes_triplets(data_root, tmp_path):
    out = tmp_path / "synth"
    msg = run_synth(SynthConfig(out=str(out), n=6, split="test", size=256, seed=0, data=str(data_root)))
    assert "6 triplets" in msg
    pngs = sorted(p.name for p in out.glob("0*.png"))
    assert len(pngs) == 18
    assert (out / "sheet.png").stat().st_size > 0
    man = json.loads((out / "manifest.json").read_text())
    assert {it["kind"] for it in man["items"]} == set(KINDS)
    for it in man["items"]:
        assert all((out / f).exists() for f in it["files"].values())
        assert 0 < it["hole_ratio"] <= MAX_AREA and it["asset"] and it["source"]
    from unveil.io import read_image, read_mask

    it = man["items"][0]
    occ, clean = read_image(out / it["files"]["occluded"]), read_image(out / it["files"]["clean"])
    mask = read_mask(out / it["files"]["mask"])
    assert np.array_equal(occ[~mask], clean[~mask]) and mask.mean() == pytest.approx(it["hole_ratio"], abs=1e-3)


def test_ear_loops_and_recolouring_are_exact_and_leave_the_default_stream_alone(data_root, synth, faces):
    """loops=1 draws ear loops (or N95 straps) outside the mask's body, part of the exact mask;
    the body is the default sample's, pixel for pixel, so seeded sets made before stay the same."""
    looped = Synthesizer(data_root, split="test", size=256, loops=1.0)
    recol = Synthesizer(data_root, split="test", size=256, recolor=1.0)
    for j, (img, face) in enumerate(faces):
        base = synth.sample(img, seed=(5, j), kind="facemask", landmarks=face)
        s = looped.sample(img, seed=(5, j), kind="facemask", landmarks=face)
        assert base.loops is None and s.loops is not None and s.loops.any()
        assert not (s.loops & base.mask).any() and np.array_equal(s.mask, base.mask | s.loops)
        assert np.array_equal(s.occluded[base.mask], base.occluded[base.mask])
        assert np.array_equal(s.occluded[~s.mask], img[~s.mask])  # exact outside the mask
        assert (s.occluded[s.loops] != img[s.loops]).any(-1).mean() > 0.5  # drawn, not invisible
        assert s.meta["loops"] in ("ear loops", "straps")
        r = recol.sample(img, seed=(5, j), kind="facemask", landmarks=face)
        assert np.array_equal(r.mask, base.mask) and "recolor" in r.meta
        assert not np.array_equal(r.occluded, base.occluded)
    with pytest.raises(UnveilError, match="probabilities"):
        Synthesizer(data_root, loops=2)


def test_fan_stretch_is_one_for_a_similar_warp_and_inf_when_folded():
    from unveil.occlusion.synth import _fan_stretch

    src = np.array([[0, 0], [50, -10], [100, 0], [10, 60], [50, 80], [90, 60]], float)
    assert _fan_stretch(src, src * 2.5 + 7) == pytest.approx(1.0)
    wide = src.copy()
    wide[0, 0] -= 100  # the left cheek anchor pulled far out: the b-a-d sector stretches
    # b-a-d: area 0.5*|(-150)(70) - (-40)(10)| = 5050 against 1550 unwarped; median of the others 1
    assert _fan_stretch(src, wide) == pytest.approx(5050 / 1550, rel=1e-6)
    folded = src.copy()
    folded[3] = [60, -20]  # the left jaw anchor above the bridge: b-a-d turned inside out
    assert _fan_stretch(src, folded) == float("inf")


def test_a_gas_mask_is_never_thrown_off_the_face_as_a_wing(data_root):
    """On an LFW photo where the fan warp threw a gas mask's filter far beside the head (the
    second-draw coverage photo 83 of seed 0), the drawn mask now stays on the face."""
    from unveil.eval.coverage import _photos

    photo = _photos("lfw", 100, 0, data_root)[83]
    s = Synthesizer(data_root, "test", photo.shape[0], loops=1.0, recolor=0.33).sample(photo, seed=(0, 83),
                                                                                       kind="facemask")
    from unveil.face import get_detector

    box = get_detector().detect_one(photo).box
    w = box[2] - box[0]
    ys, xs = np.nonzero(s.mask & ~s.loops if s.loops is not None else s.mask)
    assert xs.min() > box[0] - 0.25 * w and xs.max() < box[2] + 0.25 * w, (xs.min(), xs.max(), box)
    assert ys.min() > box[1] - 0.1 * w, (ys.min(), box)
