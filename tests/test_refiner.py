"""The detail refiner after a coarse inpainter: the network, the detail-energy loss, its training
through the inpainting task (``coarse:``), and how the inpainters run it."""
import json

import numpy as np
import pytest
import torch

from unveil.models.registry import build_network
from unveil.train import fit, load_config
from unveil.train.inpaint import windows
from unveil.train.losses import detail_energy_loss


@pytest.mark.parametrize("cfg", [{}, {"unshuffle": 2, "stem": 8, "width": 8}])
def test_an_untrained_refiner_returns_its_input_and_only_ever_changes_the_hole(cfg):
    net = build_network("refiner", cfg).eval()
    torch.manual_seed(0)
    y = torch.rand(2, 3, 37, 53) * 2 - 1  # odd sizes: the half-resolution (and unshuffled) paths come back
    m = torch.zeros(2, 1, 37, 53)
    m[:, :, 10:30, 5:40] = 1
    with torch.no_grad():
        assert torch.equal(net(y, m), y)
        for p in net.out.parameters():  # a refiner that has learnt something
            p.normal_(0, 0.1)
        out = net(y, m)
    assert out.shape == y.shape
    assert torch.equal(out * (1 - m), y * (1 - m)) and (out - y).abs().amax() > 0.01


def test_a_refiner_widened_from_shipped_weights_computes_what_they_did_and_its_new_channels_learn():
    """init_from into a wider refiner (model.width 64 from the shipped 32): the same output, and one
    gradient step reaches the new channels (their inputs were copied in, not left at zero)."""
    from unveil.train.inpaint import init_from

    small = build_network("refiner", {"stem": 24, "width": 32, "unshuffle": 2})
    init_from(small, "shipped:lgface_refiner")
    wide = build_network("refiner", {"stem": 24, "width": 64, "unshuffle": 2})
    counts = init_from(wide, "shipped:lgface_refiner")
    assert counts["widened"] > 0 and counts["copied"] + counts["widened"] == counts["of"]
    torch.manual_seed(0)
    y = torch.rand(1, 3, 64, 72) * 2 - 1
    m = torch.zeros(1, 1, 64, 72)
    m[:, :, 20:50, 10:60] = 1
    with torch.no_grad():
        ref = small(y, m)
        assert (ref - y).abs().amax() > 0.01  # the shipped refiner does change the hole
    out = wide(y, m)
    assert torch.allclose(out, ref, atol=1e-5)
    out.square().sum().backward()
    g = wide.up[0].weight.grad  # the convolution reading the body's channels
    assert g[:, 32:].abs().sum() > 0  # the new channels carry a signal to the output


def test_detail_energy_loss_is_zero_on_the_truth_and_the_checkerboard_amplitude_on_a_flat_fill():
    a = 0.1
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    board = (a * (1 - 2 * ((yy + xx) % 2))).float().expand(1, 3, 64, 64)  # grey = a, -a, a, ...
    m = torch.zeros(1, 1, 64, 64)
    m[:, :, 16:48, 16:48] = 1  # away from the edges the blur's padding reaches
    assert float(detail_energy_loss(board, board, m)) == pytest.approx(0.0, abs=1e-6)
    # the Laplacian of the board is -8a (or 8a) everywhere: energy sqrt(64 a^2 + eps); a flat
    # fill has sqrt(eps)
    flat = torch.zeros(1, 3, 64, 64, requires_grad=True)
    loss = detail_energy_loss(flat, board, m)
    eps = 1e-4
    assert float(loss.detach()) == pytest.approx(np.sqrt(64 * a * a + eps) - np.sqrt(eps), rel=1e-4)
    blurred = torch.nn.functional.avg_pool2d(board, 3, 1, 1, count_include_pad=False)
    assert 0 < float(detail_energy_loss(blurred, board, m)) < float(loss.detach())
    noisy = (flat + 0.05 * torch.randn(1, 3, 64, 64)).detach().requires_grad_(True)
    detail_energy_loss(noisy, board, m).backward()
    assert noisy.grad.abs().sum() > 0  # (the flat fill's own gradient is 0: a Laplacian of 0)


def test_windows_are_cut_around_the_hole_and_stay_inside_the_crop():
    x = torch.arange(2 * 3 * 40 * 50, dtype=torch.float32).view(2, 3, 40, 50)
    m = torch.zeros(2, 1, 40, 50)
    m[0, :, 0:3, 45:50] = 1  # a corner
    m[1, :, 20:22, 20:22] = 1
    torch.manual_seed(0)
    xw, mw = windows(16, x, m)
    assert xw.shape == (2, 3, 16, 16) and mw.shape == (2, 1, 16, 16)
    assert (mw.flatten(1).sum(1) > 0).all()
    assert torch.equal(xw[0], x[0, :, 0:16, 34:50])  # pushed back inside the crop
    assert windows(64, x, m)[0].shape == (2, 3, 40, 40)  # never bigger than the crop


def test_a_refiner_trains_on_the_frozen_coarse_fill_and_adds_the_detail_it_lacks(tmp_path, data_root, monkeypatch):
    """After LGFace's shipped network (frozen, at 128 px), a small refiner at 160 px for 40 steps
    on real faces with face-mask holes: on a fixed batch, the refined fill's detail energy is closer
    to the truth's than the coarse fill's; LGFace's own weights do not move."""
    from safetensors.torch import load_file

    from unveil.models.weights import load_weights, read_metadata, shipped
    from unveil.train.engine import TASKS, Context

    monkeypatch.chdir(tmp_path)  # the landmark cache goes to runs/cache here
    torch.set_num_threads(2)
    before = load_file(str(shipped("lgface")))
    cfg = load_config("lgface-refiner", size=160, patch=96, batch=4, steps=40, lr=5e-3, warmup=3, train_limit=12,
                      val_every=0, val_faces=4, ckpt_every=40, out=str(tmp_path / "ref"), data=str(data_root),
                      model={"stem": 8, "width": 8, "blocks": 2},
                      loss={"perceptual": 0.0, "adversarial": 0.0, "feature_matching": 0.0, "detail": 1.0,
                            "l1_hole": 0.2})
    r = fit(cfg, progress=False)
    log = [json.loads(line) for line in open(tmp_path / "ref" / "log.jsonl")]
    assert r["steps"] == 40 and {"l1", "detail"} <= set(log[0])
    assert "val_detail" in log[-1] and log[-1]["val_psnr"] > 15
    assert read_metadata(r["weights"])["network"] == "refiner"
    after = load_file(str(shipped("lgface")))
    assert all(torch.equal(before[k], after[k]) for k in before)

    task = TASKS["inpaint"](cfg, Context(torch.device("cpu"), progress=False))
    task.build()
    torch.manual_seed(5)
    x, m, g = (torch.stack(t) for t in zip(*[task.data[i] for i in range(8)]))
    y = task.coarse_fill(x, m, [g])
    assert torch.equal(y * (1 - m), x * (1 - m))
    refiner, _ = load_weights(r["weights"], lambda c: build_network("refiner", c), network="refiner")
    with torch.no_grad():
        refined = refiner(y, m)
    coarse_gap, refined_gap = float(detail_energy_loss(y, x, m)), float(detail_energy_loss(refined, x, m))
    assert refined_gap < 0.95 * coarse_gap, (coarse_gap, refined_gap)


@pytest.mark.parametrize("name", ["lgface", "ifacenet"])
def test_a_model_runs_its_refiner_on_the_hole_only_and_the_fidelity_variant_has_none(name):
    from skimage import data

    from unveil import models
    from unveil.masks.shapes import facemask_shape

    face = np.ascontiguousarray(data.astronaut()[10:266, 120:376])
    hole = facemask_shape(256, 0)
    plain = models.load(name, refine=False)
    refined = models.load(name)
    assert plain.refiner is None and refined.refiner is not None
    assert models.load(f"{name}-fidelity").refiner is None
    a, b = plain.inpaint(face, hole), refined.inpaint(face, hole)
    assert np.array_equal(b[~hole], face[~hole])
    diff = np.abs(a.astype(int) - b.astype(int)).max(-1)
    assert diff[hole].mean() > 0.5  # the refiner adds detail in the hole
    # a crop the network already works at (128 px): nothing to refine
    small = np.ascontiguousarray(face[::2, ::2])
    assert np.array_equal(plain.inpaint(small, hole[::2, ::2]), refined.inpaint(small, hole[::2, ::2]))


def test_a_refiner_can_train_on_candidate_coarse_weights(tmp_path, data_root, monkeypatch):
    """``coarse_weights`` loads the coarse inpainter from a run's file instead of its shipped one;
    a missing file is one clear error."""
    from safetensors.torch import load_file

    from unveil.errors import UnveilError
    from unveil.models.weights import shipped
    from unveil.train.engine import TASKS, Context

    monkeypatch.chdir(tmp_path)  # the landmark cache goes to runs/cache here
    ctx = Context(torch.device("cpu"), progress=False)
    bad = load_config("lgface-refiner", coarse_weights=str(tmp_path / "nope.safetensors"), train_limit=4,
                      data=str(data_root))
    with pytest.raises(UnveilError, match="coarse weights not found"):
        TASKS["inpaint"](bad, ctx).build()
    # lgface's architecture with the fidelity variant's file: the frozen coarse net holds its tensors
    cfg = load_config("lgface-refiner", coarse_weights=str(shipped("lgface_fidelity")), train_limit=4,
                      data=str(data_root))
    task = TASKS["inpaint"](cfg, ctx)
    task.build()
    want, got = load_file(str(shipped("lgface_fidelity"))), task.coarse.model.state_dict()
    mine = load_file(str(shipped("lgface")))
    k = next(k for k in want if k in got and not torch.equal(want[k], mine[k]))
    assert torch.allclose(got[k].float(), want[k].float())


def test_the_ifacenet_refiner_trains_behind_its_unguided_coarse_net(tmp_path, data_root, monkeypatch):
    """IFACENET takes no guide: the refiner's batches hold a face and its hole only, the frozen
    coarse fill keeps every pixel outside the hole and changes the hole, and a training step runs
    on it with every loss of the recipe."""
    from unveil.train.engine import TASKS, Context

    monkeypatch.chdir(tmp_path)
    cfg = load_config("ifacenet-refiner", size=160, patch=96, batch=2, train_limit=4, data=str(data_root),
                      masks={"weights": {"freeform": 1.0, "box": 0.0, "real": 0.0}})
    assert cfg.coarse == "ifacenet"
    task = TASKS["inpaint"](cfg, Context(torch.device("cpu"), progress=False))
    task.build()
    assert not task.data.guided and len(task.data[0]) == 2
    x, m = (torch.stack(t) for t in zip(*[task.data[i] for i in range(2)]))
    y = task.coarse_fill(x, m, [])
    assert torch.equal(y * (1 - m), x * (1 - m))
    assert float(((y - x).abs() * m).sum() / m.sum()) > 0.01
    task.start(0)
    parts = task.step(0)
    assert np.isfinite(parts["loss"]) and {"l1", "perc", "detail", "adv", "fm", "d"} <= set(parts)
