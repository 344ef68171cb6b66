"""The shared inpainting trainer on real faces (UTKFace from ../shared/data), and the shipped
IFACENET / IN2 weights against Telea on real test faces."""
import json

import numpy as np
import pytest
import torch

from unveil.errors import UnveilError
from unveil.train import fit, load_config
from unveil.train.inpaintdata import InpaintData, MaskMix, MaskSampler, box_mask

NO_OCCLUDERS = {"weights": {"freeform": 0.7, "box": 0.3}}


def _tiny(network, tmp_path, data_root, **kw):
    # from scratch, without the pull-push prefill (which starts the loss low already): these tests
    # check that the trainer learns; test_inpaint_nets checks that a prefilled network improves on
    # its starting fill
    model = {"ifacenet": {"width": 8, "scale_width": 8, "branch_width": 8, "decoder_width": 8, "prefill": False},
             "in2": {"width": 8, "stage_width": 8, "attention_blocks": 1, "decoder_features": 8,
                     "decoder_hidden": 16, "prefill": False}}[network]
    base = dict(size=64, batch=4, steps=40, lr=3e-3, warmup=5, train_limit=64, val_every=0,
                ckpt_every=10, masks=NO_OCCLUDERS, out=str(tmp_path / network), data=str(data_root),
                model=model, name=network)
    base.update(kw)
    # IFACENET's pixel-loss recipe (ifacenet.yaml is its realism fine-tune of the shipped weights)
    return load_config({"ifacenet": "ifacenet-fidelity"}.get(network, network), **base)


@pytest.mark.parametrize("network", ["ifacenet", "in2"])
def test_a_few_steps_on_real_faces_lower_the_loss(network, tmp_path, data_root):
    torch.set_num_threads(2)
    cfg = _tiny(network, tmp_path, data_root)
    r = fit(cfg, progress=False)
    log = [json.loads(line) for line in open(tmp_path / network / "log.jsonl")]
    losses = [e["loss"] for e in log if "loss" in e]
    assert r["steps"] == 40 and len(losses) == 4
    assert losses[-1] < 0.9 * losses[0], losses
    assert (tmp_path / network / f"{network}.safetensors").exists()


def test_resume_continues_the_run_and_validation_writes_a_grid(tmp_path, data_root):
    cfg = _tiny("ifacenet", tmp_path, data_root, steps=4, ckpt_every=2, val_every=4, val_faces=4)
    fit(cfg, progress=False)
    assert (tmp_path / "ifacenet" / "val" / "step-4" / "grid.png").exists()
    cfg = _tiny("ifacenet", tmp_path, data_root, steps=6, ckpt_every=2, val_every=0)
    r = fit(cfg, progress=False)
    assert r["steps"] == 6
    steps = [json.loads(line)["step"] for line in open(tmp_path / "ifacenet" / "log.jsonl")]
    assert steps[-1] == 6


def test_gan_losses_train_with_the_discriminator(tmp_path, data_root):
    cfg = _tiny("ifacenet", tmp_path, data_root, steps=3, ckpt_every=3,
                loss={"perceptual": 0.05, "style": 100.0, "adversarial": 0.01, "feature_matching": 1.0})
    fit(cfg, progress=False)
    log = [json.loads(line) for line in open(tmp_path / "ifacenet" / "log.jsonl")]
    assert {"adv", "fm", "d", "perc", "style"} <= set(log[-1])
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ifacenet" / "last.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any(k.startswith("disc.") for k in keys) and any(k.startswith("ema.") for k in keys)


def test_training_masks_always_have_a_hole(data_root):
    sampler = MaskSampler(MaskMix(NO_OCCLUDERS["weights"]), 64)
    rng = np.random.default_rng(0)
    ratios = [sampler(rng).mean() for _ in range(60)]
    assert min(ratios) > 0 and max(ratios) < 0.9
    assert box_mask(64, rng).dtype == bool
    ds = InpaintData(64, MaskMix(NO_OCCLUDERS["weights"]), data=data_root, limit=8)
    x, m = ds[3]
    assert x.shape == (3, 64, 64) and m.shape == (1, 64, 64)
    assert -1 <= x.min() and x.max() <= 1 and m.sum() > 0
    with pytest.raises(ValueError, match="unknown mask kinds"):
        MaskSampler(MaskMix({"nvidia": 1.0}), 64)


def test_bad_training_configs_are_refused(tmp_path, run_cli):
    with pytest.raises(UnveilError, match="unknown setting"):
        load_config("ifacenet", colour="red")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    code, _, err = run_cli("train", "in2", "--config", bad)
    assert code == 2 and "must be a mapping" in err
    code, _, err = run_cli("train", "in2", "--set", "steps")
    assert code == 2 and "KEY=VALUE" in err
    code, _, err = run_cli("train", "ifacenet", "--config", tmp_path / "missing.yaml")
    assert code == 2 and "no such config" in err


@pytest.fixture(scope="module")
def test_faces(data_root):
    from unveil.data import face_records, load_face
    from unveil.masks import mask_source

    recs = face_records("utkface", "test", data_root)[:16]
    src = mask_source("nvidia", data_root)
    # bins 10-20 .. 50-60 (index 1..5 of the six), so no near-empty holes
    masks = [src(1 + (i % 5) + 6 * (i // 5), 256)[0] for i in range(16)]
    faces = [load_face(r, 256) for r in recs]
    return faces, masks


def _hole_psnr(name, test_faces):
    from unveil import models
    from unveil.eval.harness import blank_hole
    from unveil.eval.metrics import psnr

    faces, masks = test_faces
    inputs = [blank_hole(f, m) for f, m in zip(faces, masks)]
    outs = models.load(name).inpaint_batch(inputs, masks)
    for o, i, m in zip(outs, inputs, masks):
        assert np.array_equal(o[~m], i[~m])
    return float(np.mean([psnr(o, f, m) for o, f, m in zip(outs, faces, masks)]))


@pytest.mark.parametrize("name,over_telea,over_start", [("ifacenet", 1.0, 0.75),
                                                         ("ifacenet-fidelity", 1.0, 0.75),
                                                         ("ifacenet-single", 1.0, 0.75),
                                                         ("in2", 0.25, 0.0)])
def test_shipped_weights_beat_telea_and_their_own_starting_fill_inside_the_hole(name, over_telea, over_start,
                                                                                  test_faces):
    """Measured on these 16 faces: IFACENET 23.76 dB in the hole, its single-branch ablation 23.69,
    IN2 22.20, the pull-push fill an untrained prefilled network returns 22.06, Telea 21.70. The
    margins over pull-push guard the training itself (an untrained network scores exactly
    pull-push); IN2's short run (800 steps) is only just above its start here (+0.7 dB on 48 val
    faces), so its guard is the weakest."""
    p_ours = _hole_psnr(name, test_faces)
    assert p_ours > _hole_psnr("telea", test_faces) + over_telea
    assert p_ours > _hole_psnr("pullpush", test_faces) + over_start


def test_eval_harness_scores_non_square_crops(tmp_path, data_root):
    from unveil.data import face_records
    from unveil.data.faces import load_face_shaped
    from unveil.eval.harness import EvalConfig, run_eval

    rec = face_records("lfw", data=data_root)[0]
    tall, wide = load_face_shaped(rec, (256, 192)), load_face_shaped(rec, (200, 320))
    assert tall.shape == (256, 192, 3) and wide.shape == (200, 320, 3)
    r = run_eval(EvalConfig(model="telea", faces="lfw", masks="nvidia", shape="256x192", limit=4,
                            lpips=False, identity=False, data=str(data_root), out=str(tmp_path / "e")),
                 progress=False)
    assert r["summary"]["all"]["n"] == 4 and 15 < r["summary"]["all"]["psnr"] < 60
    from unveil.io import read_image

    grid = read_image(tmp_path / "e" / "grid.png")
    assert grid.shape[0] > grid.shape[1] * 1.2  # 4 rows of tall cells, 4 columns
    with pytest.raises(UnveilError, match="HxW"):
        run_eval(EvalConfig(model="telea", shape="tall", data=str(data_root)))


def test_real_holes_come_from_the_real_pool_and_cover_more_than_the_procedural_shape(data_root):
    """``real`` draws the holes the pipeline found on real masked photos (the pool's training part),
    flipped and jittered; they reach higher and wider than the procedural face-mask shape."""
    from unveil.train.realpool import RealPoolSpec, load_real_pool

    real = MaskSampler(MaskMix({"real": 1.0}, real_limit=12), 64, data_root, progress=False)
    pool = load_real_pool(RealPoolSpec(64, limit=12, holdout=2), data_root, progress=False)["train_masks"]
    assert len(real.real) == len(pool) >= 6
    rng = np.random.default_rng(1)
    drawn = [real(rng) for _ in range(40)]
    assert all(m.dtype == bool and m.shape == (64, 64) and m.any() for m in drawn)

    def best_iou(m):
        return max((m & q).sum() / max((m | q).sum(), 1) for p in pool for q in (p, p[:, ::-1]))

    assert min(best_iou(m) for m in drawn) > 0.6
    shape = MaskSampler(MaskMix({"facemask": 1.0}), 64)
    assert np.mean([m.mean() for m in drawn]) > np.mean([shape(rng).mean() for _ in range(40)]) + 0.05


def test_written_holes_read_back_as_a_mask_source(tmp_path):
    """``eval-real --holes-out`` writes the held-out holes; ``eval --masks DIR`` reads them back."""
    from unveil.masks import mask_source
    from unveil.train.unpaired import write_holes

    rng = np.random.default_rng(3)
    holes = [box_mask(64, rng) for _ in range(3)]
    write_holes(holes, tmp_path / "holes")
    src = mask_source(str(tmp_path / "holes"))
    for i, h in enumerate(holes):
        m, _ = src(i, 64)
        assert np.array_equal(m, h)
    assert np.array_equal(src(1, 32)[0].shape, (32, 32))


def test_eyes_holes_are_drawn_over_the_eyes_and_vary():
    """``eyes`` draws the sunglasses shape, jittered: every hole covers both eyes of the template
    and none reaches the mouth; no two draws are the same."""
    from unveil.face.align import TEMPLATE

    eyes = MaskSampler(MaskMix({"eyes": 1.0}), 128)
    rng = np.random.default_rng(0)
    drawn = [eyes(rng) for _ in range(30)]
    for m in drawn:
        assert m.dtype == bool and m.shape == (128, 128)
        assert all(m[int(y * 128), int(x * 128)] for x, y in TEMPLATE[:2])
        assert not m[int(TEMPLATE[3, 1] * 128):].any()
    assert len({m.tobytes() for m in drawn}) == 30
