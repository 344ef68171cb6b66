"""Landmark-guided reconstruction (`unveil.models.lgface`): the guide, the network, its training
through the shared trainer on real faces, and the shipped weights on face-mask holes."""
import json

import numpy as np
import pytest
import torch

from unveil.errors import UnveilError
from unveil.models.lgface import GROUPS, LGFaceNet, render_guide
from unveil.models.registry import build_network
from unveil.train import fit, load_config
from unveil.train.inpaint import init_from
from unveil.train.inpaintdata import MaskMix, MaskSampler


@pytest.fixture(scope="module")
def astronaut_mesh():
    from skimage import data

    from unveil.models.lgface import mesh_points

    face = data.astronaut()[20:240, 130:350]
    return face, mesh_points(face)


def test_guide_has_two_heatmaps_and_the_gender_code(astronaut_mesh):
    _, pts = astronaut_mesh
    assert pts is not None and pts.shape == (478, 2) and (pts > 0).all() and (pts < 1).all()
    g = render_guide(pts, -1.0, (128, 96))
    assert g.shape == (3, 128, 96) and g.dtype == np.float32
    assert g[0].max() == pytest.approx(1.0) and g[1].max() == pytest.approx(1.0)
    assert (g[2] == -1).all()
    # the nose/lips heatmap peaks below the eyes' one: it sits where the face mask goes
    rows0 = np.nonzero(g[0].max(1) > 0.5)[0]
    rows1 = np.nonzero(g[1].max(1) > 0.5)[0]
    assert rows1.mean() > rows0.min() and np.median(rows1) > 0.45 * 128
    empty = render_guide(None, 0.5, (64, 64))
    assert not empty[:2].any() and (empty[2] == 0.5).all()
    assert len(set(GROUPS[0]) & set(GROUPS[1])) == 0


def test_a_fourth_guide_channel_carries_the_age_code(astronaut_mesh):
    _, pts = astronaut_mesh
    g3 = render_guide(pts, 1.0, (64, 64), age=0.5)
    g4 = render_guide(pts, 1.0, (64, 64), age=0.5, channels=4)
    assert g3.shape == (3, 64, 64) and g4.shape == (4, 64, 64)
    assert np.array_equal(g4[:3], g3) and (g4[3] == 0.5).all()
    for unknown in (None, float("nan")):  # no estimate: the code is 0
        assert not render_guide(pts, 1.0, (64, 64), age=unknown, channels=4)[3].any()
    with pytest.raises(UnveilError, match="3 or 4 channels"):
        render_guide(pts, 1.0, (64, 64), channels=5)


def test_an_age_channel_added_to_shipped_weights_starts_ignored():
    """init_from widens the stem for the new channel with zeros: the network's output is the shipped
    one's whatever the age code, until training gives the channel weights."""
    from unveil import models

    net = build_network("lgface", {"prefill": False, "guide_channels": 4}).eval()
    counts = init_from(net, "shipped:lgface")
    assert counts["widened"] == 1 and counts["copied"] == counts["of"] - 1
    old = models.load("lgface", backend="torch", refine=False).model.float().eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    m = torch.zeros(1, 1, 64, 64)
    m[..., 32:56, 16:48] = 1
    g = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = old(x * (1 - m), m, g)
        for code in (-1.5, 0.0, 2.0):
            g4 = torch.cat([g, torch.full((1, 1, 64, 64), code)], 1)
            assert (net(x * (1 - m), m, g4) - ref).abs().max() < 1e-4
        net.stem[0].weight[:, -1:].normal_(0, 0.5)
        older = net(x * (1 - m), m, torch.cat([g, torch.full((1, 1, 64, 64), 2.0)], 1))
        assert (older - ref).abs().max() > 1e-3


def test_film_on_the_codes_starts_as_the_shipped_network_and_can_use_them():
    from unveil import models

    net = build_network("lgface", {"prefill": False, "guide_channels": 4, "film": True}).eval()
    counts = init_from(net, "shipped:lgface")
    assert counts["widened"] == 1 and counts["copied"] == counts["of"] - 3  # stem grows, FiLM is new
    old = models.load("lgface", backend="torch", refine=False).model.float().eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    m = torch.zeros(2, 1, 64, 64)
    m[..., 32:56, 16:48] = 1
    g = torch.rand(2, 3, 64, 64)
    g4 = torch.cat([g, torch.full((2, 1, 64, 64), 1.5)], 1)
    with torch.no_grad():
        assert (net(x * (1 - m), m, g4) - old(x * (1 - m), m, g)).abs().max() < 1e-4
        net.film.weight.normal_(0, 0.5)
        young, aged = g4.clone(), g4.clone()
        young[:, 3], aged[:, 3] = -1.0, 2.0
        assert (net(x * (1 - m), m, young) - net(x * (1 - m), m, aged)).abs().max() > 1e-3
    # gradients reach the FiLM weights from zero (a constant input channel's barely do)
    net.train()
    net.film.weight.data.zero_()
    loss = net(x * (1 - m), m, g4).square().mean()
    loss.backward()
    assert net.film.weight.grad.abs().sum() > 0


def test_age_guided_training_items_carry_the_noisy_label(data_root, tmp_path, monkeypatch):
    from unveil.models.gender import age_code
    from unveil.train.inpaintdata import InpaintData

    monkeypatch.chdir(tmp_path)
    mix = MaskMix(weights={"facemask": 1.0})
    d = InpaintData(128, mix, data=str(data_root), limit=4, progress=False, guided=True, guide_dropout=0.0,
                    guide_channels=4, age_noise=0.0)
    for i in range(4):
        _, _, g = d[i]
        assert g.shape == (4, 128, 128)
        assert float(g[3, 0, 0]) == pytest.approx(float(age_code(d.faces.records[i].age)))
        assert (g[3] == g[3, 0, 0]).all()
    noisy = InpaintData(128, mix, data=str(data_root), limit=4, progress=False, guided=True, guide_dropout=0.0,
                        guide_channels=4, age_noise=0.3)
    errs = [float(noisy[i][2][3, 0, 0]) - float(age_code(noisy.faces.records[i].age)) for i in range(4)]
    assert 0 < max(abs(e) for e in errs) < 1.5


def test_lgface_starts_as_ifacenet_and_uses_the_guide():
    from unveil import models

    with pytest.raises(UnveilError, match="trained with prefill=true"):
        init_from(build_network("lgface", {"prefill": False}), "shipped:ifacenet")
    net = build_network("lgface", {"prefill": True}).eval()
    counts = init_from(net, "shipped:ifacenet")
    assert counts["widened"] == 1 and counts["copied"] == counts["of"] - 1  # only the stem grows
    ifn = models.load("ifacenet", backend="torch").model.float().eval()
    x = torch.rand(1, 3, 64, 48) * 2 - 1
    m = (torch.rand(1, 1, 64, 48) > 0.7).float()
    with torch.no_grad():
        same = net(x * (1 - m), m)
        assert (same - ifn(x * (1 - m), m)).abs().max() < 1e-5  # zero guide weights: IFACENET exactly
        net.stem[0].weight[:, 4:].normal_(0, 0.5)
        guide = torch.ones(1, 3, 64, 48)
        assert (net(x * (1 - m), m, guide) - same).abs().max() > 1e-3
        assert net(x * (1 - m), m).shape == (1, 3, 64, 48)


def test_init_from_refuses_what_does_not_fit(tmp_path):
    with pytest.raises(UnveilError, match="not found"):
        init_from(build_network("lgface"), str(tmp_path / "nope.safetensors"))
    with pytest.raises(UnveilError, match="no tensor fits"):
        init_from(build_network("lgface"), "shipped:soclnet")


def test_facemask_training_holes_sit_on_the_lower_face():
    s = MaskSampler(MaskMix(weights={"facemask": 1.0}), 128, progress=False)
    rng = np.random.default_rng(0)
    for _ in range(8):
        m = s(rng)
        assert 0.15 < m.mean() < 0.5
        assert m[:50].mean() < 0.05 and m[80:].mean() > 0.4  # below the eyes, over mouth and chin


def test_guided_training_lowers_the_loss_on_real_faces(tmp_path, data_root):
    torch.set_num_threads(2)
    cfg = load_config(
        "lgface", size=64, batch=4, steps=30, lr=3e-3, warmup=5, train_limit=24, val_every=0,
        ckpt_every=30, init="", out=str(tmp_path / "lg"), data=str(data_root),  # from scratch
        model={"width": 8, "scale_width": 8, "branch_width": 8, "decoder_width": 8, "prefill": False},
        masks={"weights": {"facemask": 1.0}}, loss={"adversarial": 0.0, "tv": 0.0})
    r = fit(cfg, progress=False)
    log = [json.loads(line) for line in open(tmp_path / "lg" / "log.jsonl")]
    losses = [e["loss"] for e in log if "loss" in e]
    assert r["steps"] == 30 and losses[-1] < 0.9 * losses[0], losses


def test_shipped_lgface_keeps_pixels_outside_the_hole():
    from skimage import data

    from unveil import models
    from unveil.masks.shapes import facemask_shape

    inp = models.load("lgface")
    assert isinstance(inp.model, LGFaceNet) and inp.backend == "onnx"  # tests/test_onnx.py: agrees with torch
    face = np.ascontiguousarray(data.astronaut()[20:240, 130:350])
    hole = facemask_shape(220, 0)
    out = inp.inpaint(face, hole)
    assert np.array_equal(out[~hole], face[~hole]) and (out[hole] != face[hole]).any()


def test_shipped_lgface_beats_telea_on_face_mask_holes(facemask_hole_gains):
    """On 16 UTKFace test faces with the lower-face hole of a face mask, inside the hole."""
    from unveil import models

    gains = facemask_hole_gains(models.load("lgface"), models.load("telea"), 16, 128)
    assert np.mean(gains) > 1.0, gains


def test_shipped_lgface_paints_eyes_closer_than_ifacenet(data_root, tmp_path):
    """The pipeline fills holes over the eyes with lgface (``BY_KIND``) because it measured closer
    to the truth there than IFACENET, which paints dark smudges: LPIPS, LPIPS-VGG on the hole's box,
    PSNR and the fine detail inside the hole, on 16 test faces with the sunglasses hole. Measured
    (IFACENET with its refiner, 2026-12-07): LPIPS 0.055 against 0.068, LPIPS-VGG 0.249 against
    0.278, detail 0.82 against 0.52, PSNR 28.39 against 27.10 dB (before IFACENET's realism
    fine-tune and refiner the LPIPS gap was over 0.02 and the detail more than twice)."""
    from unveil.eval.harness import EvalConfig, run_eval
    from unveil.pipeline import BY_KIND

    s = {m: run_eval(EvalConfig(model=m, masks="eyes", size=256, limit=16, identity=False, grid=0,
                                data=str(data_root), out=str(tmp_path / m)), progress=False)["summary"]["all"]
         for m in ("lgface", "ifacenet")}
    assert BY_KIND["eyes"] == "lgface"
    assert s["lgface"]["lpips"] < s["ifacenet"]["lpips"] - 0.005, s
    assert s["lgface"]["lpips_vgg_box"] < s["ifacenet"]["lpips_vgg_box"] - 0.01, s
    assert s["lgface"]["psnr"] > s["ifacenet"]["psnr"] + 0.5, s
    assert s["lgface"]["detail"] > 1.3 * s["ifacenet"]["detail"], s


def test_landmark_drift_is_measured_on_masked_faces(data_root):
    from unveil.eval.landmarks import landmark_drift

    r = landmark_drift(n=6, size=192, data=data_root, progress=False)
    assert r["n"] >= 4 and 0 < r["nme_all"] < 0.5 and r["nme_nose_lips"] > 0


def _centre(heat: torch.Tensor) -> np.ndarray:
    h = heat.numpy()
    ys, xs = np.mgrid[: h.shape[0], : h.shape[1]]
    return np.array([(h * ys).sum(), (h * xs).sum()]) / h.sum()


def test_training_guides_can_come_from_the_occluded_face(data_root, tmp_path, monkeypatch):
    """``guide_occluded``: the landmarks are predicted on the face with its hole greyed out (as at
    inference), so they differ from the clean face's but the visible ones stay on the same face."""
    from unveil.train.inpaintdata import InpaintData

    monkeypatch.chdir(tmp_path)  # the landmark cache goes to runs/cache here
    mix = MaskMix(weights={"facemask": 1.0})
    clean = InpaintData(128, mix, data=str(data_root), limit=3, progress=False, guided=True, guide_dropout=0.0)
    occl = InpaintData(128, mix, data=str(data_root), limit=3, progress=False, guided=True, guide_dropout=0.0,
                       guide_occluded=1.0)
    diffs = []
    for i in range(3):
        torch.manual_seed(i)
        x, m, g = clean[i]
        torch.manual_seed(i)
        x2, m2, g2 = occl[i]
        assert torch.equal(m, m2) and torch.equal(x, x2)
        assert torch.equal(g[2], g2[2])  # the gender code is the label either way
        # outline, brows and eyes (mostly visible) stay within a few pixels; nose and lips, under
        # the hole, drift (upwards by 5-12 px at 128 px on these faces)
        assert np.linalg.norm(_centre(g[0]) - _centre(g2[0])) < 6
        diffs.append(float((g[:2] - g2[:2]).abs().max()))
    assert max(diffs) > 0.1  # but not the clean face's mesh
    with pytest.raises(UnveilError, match="guide_occluded"):
        InpaintData(128, mix, data=str(data_root), limit=3, progress=False, guided=True, guide_occluded=2.0)


def test_move_points_follows_the_augmentation_s_flip_and_warp():
    """A bright dot at a known place of a 64 px crop, flipped and warped by ``Augment``: the moved
    point lands on the dot's new centre (within a pixel), so the cached mesh stays on the face."""
    from unveil.data.dataset import Augment
    from unveil.train.inpaintdata import move_points

    img = np.zeros((64, 64, 3), np.uint8)
    img[9:12, 19:22] = 255  # centre at pixel index (x 20, y 10)
    aug = Augment(flip=1.0, max_scale=0.08, max_shift=0.04, max_rotate_deg=5.0, brightness=0, contrast=0,
                  saturation=0)
    for seed in range(4):
        out, m = aug(img, np.random.default_rng(seed), matrix=True)
        w = out[..., 0].astype(np.float64)
        ys, xs = np.mgrid[:64, :64]
        found = np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()
        moved = move_points(np.array([[20 / 64, 10 / 64]]), m, 64)[0] * 64
        assert found[0] > 32 and np.abs(moved - found).max() < 1.0, (seed, moved, found)  # mirrored


def test_guided_geometry_flips_and_warps_faces_with_their_mesh(data_root, tmp_path, monkeypatch):
    """``guided_geometry``: guided training faces are flipped and warped, and the guide drawn from
    the cached (clean) mesh sits where the face mesh finds the augmented face's landmarks."""
    from unveil.models.lgface import mesh_points
    from unveil.models.tensors import to_uint8
    from unveil.train.inpaintdata import InpaintData

    monkeypatch.chdir(tmp_path)
    mix = MaskMix(weights={"facemask": 1.0})
    kw = dict(data=str(data_root), limit=3, progress=False, guided=True, guide_dropout=0.0)
    fixed = InpaintData(128, mix, **kw)
    moved = InpaintData(128, mix, guided_geometry=True, **kw)
    far = []
    for i in range(3):
        torch.manual_seed(10 + i)
        x, _, g = moved[i]
        torch.manual_seed(10 + i)
        x0, _, _ = fixed[i]
        far.append(float((x - x0).abs().mean()))
        truth = torch.from_numpy(render_guide(mesh_points(to_uint8(x[None])[0]), 0.0, (128, 128)))[:2]
        left = torch.from_numpy(render_guide(moved.points[i], 0.0, (128, 128)))[:2]  # the mesh not moved
        for c in (0, 1):  # the upper and the lower heatmap: within a couple of pixels
            assert np.linalg.norm(_centre(g[c]) - _centre(truth[c])) < 2.5, (i, c)
        # and the heatmaps themselves overlap the augmented face's better than the unmoved mesh's (0.4-0.64
        # of its error on these faces: the face mesh itself moves by a pixel between looks)
        assert float((g[:2] - truth).abs().mean()) < 0.8 * float((left - truth).abs().mean()), i
    assert min(far) > 0.01  # the faces moved (the fixed dataset keeps them where they were)


def test_turned_heads_are_found_by_their_yaw_and_drawn_more_often(astronaut_mesh):
    """``turned_weight``: the yaw proxy on hand-made meshes and the astronaut's (frontal, and its
    mirror image the other way), and the sampling weights it gives."""
    from unveil.face.detect import EYE_OUTER, NOSE_TIP, TURNED, head_yaw
    from unveil.train.inpaintdata import face_weights

    mesh = np.full((3, 478, 2), 0.5, np.float32)
    mesh[:, EYE_OUTER[0]] = (0.3, 0.3)
    mesh[:, EYE_OUTER[1]] = (0.7, 0.3)  # eye distance 0.4
    mesh[0, NOSE_TIP] = (0.5, 0.55)  # frontal
    mesh[1, NOSE_TIP] = (0.42, 0.55)  # 0.08 to the left: yaw -0.2
    mesh[2] = np.nan  # no mesh found
    yaw = head_yaw(mesh)
    assert yaw[0] == pytest.approx(0.0, abs=1e-6) and yaw[1] == pytest.approx(-0.2, abs=1e-6)
    assert np.isnan(yaw[2]) and TURNED < 0.2
    assert face_weights(mesh, 3.0).tolist() == [1.0, 3.0, 1.0]
    with pytest.raises(UnveilError, match="turned_weight must be above 0"):
        face_weights(mesh, 0.0)
    _, pts = astronaut_mesh
    mirrored = np.stack([pts, np.c_[1 - pts[:, 0], pts[:, 1]]])
    mirrored[1, [EYE_OUTER[0], EYE_OUTER[1]]] = mirrored[1, [EYE_OUTER[1], EYE_OUTER[0]]]
    y = head_yaw(mirrored)
    assert abs(y[0]) < TURNED and y[1] == pytest.approx(-y[0], abs=1e-6)


def test_training_with_turned_heads_drawn_more_often(tmp_path, data_root):
    """A tiny guided run that draws turned heads five times as often still learns; an unguided
    network has no meshes to weigh its faces by and is refused."""
    torch.set_num_threads(2)
    tiny = {"width": 8, "scale_width": 8, "branch_width": 8, "decoder_width": 8, "prefill": False}
    cfg = load_config(
        "lgface", size=64, batch=4, steps=30, lr=3e-3, warmup=5, train_limit=24, val_every=0,
        ckpt_every=30, init="", out=str(tmp_path / "lg"), data=str(data_root), turned_weight=5.0,
        model=tiny, masks={"weights": {"facemask": 1.0}}, loss={"adversarial": 0.0, "tv": 0.0})
    r = fit(cfg, progress=False)
    log = [json.loads(line) for line in open(tmp_path / "lg" / "log.jsonl")]
    losses = [e["loss"] for e in log if "loss" in e]
    assert r["steps"] == 30 and losses[-1] < 0.9 * losses[0], losses
    cfg = load_config("ifacenet", size=64, batch=4, steps=2, train_limit=8, val_every=0, init="",
                      out=str(tmp_path / "if"), data=str(data_root), turned_weight=5.0, model=tiny,
                      masks={"weights": {"freeform": 1.0}})
    with pytest.raises(UnveilError, match="turned_weight needs a guided network"):
        fit(cfg, progress=False)
