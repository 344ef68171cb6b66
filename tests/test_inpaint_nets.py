"""IFACENET and IN2 networks, the inference wrapper, losses, discriminator and checkpoints
(no shared data needed: random weights, drawn images and scikit-image's astronaut)."""
import numpy as np
import pytest
import torch

from unveil import models
from unveil.errors import UnveilError
from unveil.models.ifacenet import IFACENetConfig, IFACENetInpainter
from unveil.models.in2 import IN2Inpainter, pixel_coords
from unveil.models.registry import build_network, make_config
from unveil.models.weights import save_weights
from unveil.train import losses as L
from unveil.train.checkpoint import load_checkpoint, save_checkpoint
from unveil.train.discriminator import PatchDiscriminator

NETS = ["ifacenet", "in2"]


def _batch(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    m = (torch.rand(n, 1, h, w, generator=g) > 0.6).float()
    return x * (1 - m), m


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("hw", [(128, 128), (256, 192), (200, 320), (37, 53)])
def test_forward_keeps_any_shape_without_padding(net, hw):
    torch.manual_seed(0)
    model = build_network(net).eval()
    x, m = _batch(2, *hw)
    with torch.no_grad():
        y = model(x, m)
    assert y.shape == (2, 3, *hw)
    assert torch.isfinite(y).all() and y.abs().max() <= 1


@pytest.mark.parametrize("net", NETS)
def test_parameter_budget(net):
    n = sum(p.numel() for p in build_network(net).parameters())
    assert 0.2e6 < n <= 15e6


def test_ifacenet_has_an_ensemble_and_the_ablation_has_one_branch_of_similar_size():
    full = build_network("ifacenet")
    single = build_network("ifacenet", {"branches": ["plain"], "branch_width": 40})
    assert len(full.branches) == 3 and len(single.branches) == 1
    nf = sum(p.numel() for p in full.parameters())
    ns = sum(p.numel() for p in single.parameters())
    assert abs(nf - ns) / nf < 0.15
    assert IFACENetConfig.single_branch().branches == ["plain"]
    with pytest.raises(ValueError, match="unknown IFACENET branch"):
        build_network("ifacenet", {"branches": ["nope"]})
    with pytest.raises(UnveilError, match="unknown ifacenet setting"):
        make_config("ifacenet", {"colour": 1})


def test_prefill_keeps_known_pixels_and_fills_smooth_images_almost_exactly():
    from unveil.models.blocks import prefill

    m = torch.zeros(1, 1, 64, 80)
    m[..., 10:50, 20:70] = 1
    # a constant image is filled with its constant, exactly
    const = torch.full((1, 3, 64, 80), 0.3)
    assert torch.allclose(prefill(const * (1 - m), m), const, atol=1e-6)
    # a linear ramp is harmonic: the fill stays close to it (far closer than a blank hole)
    yy, xx = torch.meshgrid(torch.linspace(-0.8, 0.8, 64), torch.linspace(-0.5, 0.9, 80), indexing="ij")
    ramp = torch.stack([xx, yy, (xx + yy) / 2])[None]
    fill = prefill(ramp * (1 - m), m)
    hole = m.expand_as(ramp) > 0
    assert torch.equal(fill[~hole], ramp[~hole])
    err = (fill - ramp)[hole].abs().mean()
    assert err < 0.1 * ramp[hole].abs().mean()
    # no known pixel at all: a neutral fill, not NaN
    assert torch.isfinite(prefill(ramp, torch.ones(1, 1, 64, 80))).all()


@pytest.mark.parametrize("net", NETS)
def test_prefilled_network_starts_as_the_smooth_fill_and_then_learns_a_residual(net, astronaut_face):
    from unveil.masks import freeform_mask
    from unveil.models.blocks import prefill
    from unveil.models.tensors import to_tensor

    torch.manual_seed(0)
    net = build_network(net, {"prefill": True})
    face = to_tensor(astronaut_face[None, ::4, ::4].copy())  # 64 px
    m = torch.from_numpy(freeform_mask((64, 64), 1, "thick", bin="30-40")[None, None].astype(np.float32))
    x = face * (1 - m)
    net.eval()
    with torch.no_grad():
        assert torch.allclose(net(x, m), prefill(x, m).clamp(-1, 1), atol=1e-5)
    net.train()
    opt = torch.optim.Adam(net.parameters(), 5e-4)
    losses = []
    for _ in range(30):
        loss = ((net(x, m) - face).abs() * m).sum() / (3 * m.sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # the first loss is the pull-push fill's error in the hole; the residual lowers it
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("net", NETS)
def test_prefilled_inpainter_keeps_the_smooth_fill_at_the_crops_own_resolution(net, astronaut_face):
    """Working at 128 px on a 256 px crop, an untrained prefilled network (zero residual) returns
    the pull-push fill computed on the 256 px crop, not an upsampled 128 px one."""
    from unveil.masks import freeform_mask

    torch.manual_seed(0)
    model = build_network(net, {"prefill": True}).eval()
    wrapper = {"ifacenet": IFACENetInpainter, "in2": IN2Inpainter}[net].from_module(model, 128)
    img = astronaut_face
    mask = freeform_mask(img.shape[:2], 5, "thin", bin="10-20")
    out = wrapper.inpaint(img, mask)
    direct = models.load("pullpush").inpaint(img, mask)
    assert np.abs(out.astype(int) - direct).max() <= 1


def test_in2_renders_at_any_requested_size_and_points_agree_with_the_grid():
    torch.manual_seed(0)
    model = build_network("in2").eval()
    x, m = _batch(1, 64, 48)
    with torch.no_grad():
        big = model(x, m, size=(160, 120))
        assert big.shape == (1, 3, 160, 120)
        # querying pixel centres one by one gives the same values as the full grid
        grid = model(x, m)
        coords = pixel_coords(64, 48)[[0, 100, 2000, 3071]][None]
        pts = model.render(x, m, coords, (2 / 48, 2 / 64))
        flat = grid.view(3, -1)[:, [0, 100, 2000, 3071]].T
    assert torch.allclose(pts[0], flat, atol=1e-5)


def test_neighbourhood_attention_only_looks_at_neighbours():
    from unveil.models.in2 import NeighbourhoodAttention

    torch.manual_seed(0)
    na = NeighbourhoodAttention(16, 4, 3).eval()
    x = torch.randn(1, 16, 9, 11)
    y0 = na(x)
    x2 = x.clone()
    x2[:, :, 0, 0] += 5  # changes only positions within one step of (0, 0)
    diff = (na(x2) - y0).abs().sum(1)[0] > 1e-6
    assert diff[:2, :2].all() and diff.sum() == 4


@pytest.fixture(scope="module", params=["ifacenet", "in2"])
def random_inpainter(request, tmp_path_factory):
    torch.manual_seed(0)
    net = request.param
    path = tmp_path_factory.mktemp("w") / f"{net}.safetensors"
    save_weights(path, build_network(net), make_config(net), {"size": 64})
    cls = IFACENetInpainter if net == "ifacenet" else IN2Inpainter
    return cls(weights=path)


@pytest.mark.parametrize("hw", [(96, 96), (150, 110)])
def test_inpaint_keeps_pixels_outside_the_hole(random_inpainter, astronaut_face, hw):
    import cv2

    img = cv2.resize(astronaut_face, hw[::-1], interpolation=cv2.INTER_AREA)
    mask = np.zeros(hw, bool)
    mask[hw[0] // 3: hw[0] // 2, 10: hw[1] - 20] = True
    out = random_inpainter.inpaint(img, mask)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], img[~mask])
    assert not np.array_equal(out[mask], img[mask])
    # the batch path agrees, an empty mask is a copy, and the hole's content never leaks in
    outs = random_inpainter.inpaint_batch([img, img], [mask, np.zeros(hw, bool)])
    assert np.array_equal(outs[0], out) and np.array_equal(outs[1], img)
    other = img.copy()
    other[mask] = 255
    assert np.array_equal(random_inpainter.inpaint(other, mask), out)


def test_inpainter_errors_are_clear(tmp_path):
    with pytest.raises(UnveilError, match="no weights"):
        IFACENetInpainter(weights=tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a weight file")
    with pytest.raises(UnveilError, match="not a readable safetensors"):
        IN2Inpainter(weights=bad)
    save_weights(tmp_path / "if.safetensors", build_network("ifacenet"), make_config("ifacenet"),
                 {"network": "ifacenet"})
    with pytest.raises(UnveilError, match="weights of network 'ifacenet', not 'in2'"):
        IN2Inpainter(weights=tmp_path / "if.safetensors")
    save_weights(tmp_path / "small.safetensors", build_network("in2", {"width": 8}), {"width": 16})
    with pytest.raises(UnveilError, match="do not fit"):
        IN2Inpainter(weights=tmp_path / "small.safetensors")


def test_learned_models_are_registered():
    for name in NETS:
        assert models.info(name).kind == "inpainter"
        assert "learned" in models.info(name).tags


# --- losses ------------------------------------------------------------------------------------

def test_masked_l1_equals_the_hand_computed_value():
    pred = torch.zeros(1, 3, 2, 2)
    target = torch.ones(1, 3, 2, 2)
    target[..., 0, 0] = 3.0  # |diff| 3 at the one hole pixel, 1 elsewhere
    mask = torch.zeros(1, 1, 2, 2)
    mask[..., 0, 0] = 1
    # hole: 6 * (3*3 / 12), valid: 1 * (3*3*1 / 12)
    assert L.masked_l1(pred, target, mask).item() == pytest.approx(6 * 9 / 12 + 9 / 12)


def test_ssim_loss_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.random((48, 40, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    ref = structural_similarity(a, b, channel_axis=2, data_range=1, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    ta = torch.tensor(a).permute(2, 0, 1)[None].float() * 2 - 1
    tb = torch.tensor(b).permute(2, 0, 1)[None].float() * 2 - 1
    assert L.ssim_map(ta, tb)[..., 5:-5, 5:-5].mean().item() == pytest.approx(ref, abs=1e-4)
    assert L.ssim_loss(ta, ta).item() == pytest.approx(0, abs=1e-5)


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_feature_loss_is_zero_for_identical_images_and_grows_with_noise(net):
    fl = L.FeatureLoss(net)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    p0, s0 = fl(x, x)
    p1, s1 = fl(x + 0.2 * torch.randn_like(x), x)
    p2, _ = fl(x + 0.4 * torch.randn_like(x), x)
    assert p0.item() == 0 and s0.item() == 0
    assert p1.item() > 0.01 and s1.item() > 0 and p2.item() > p1.item()


def test_gan_losses_have_their_textbook_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert L.d_hinge_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert L.g_hinge_loss(fake).item() == pytest.approx(1.0)
    assert L.d_lsgan_loss(torch.ones(2), torch.zeros(2)).item() == 0
    assert L.g_lsgan_loss(torch.ones(2)).item() == 0
    f = [torch.ones(1, 2, 2, 2)]
    assert L.feature_matching_loss(f, [torch.zeros(1, 2, 2, 2)]).item() == 1


def test_patchgan_has_spectral_norm_and_one_logit_per_patch():
    d = PatchDiscriminator()
    logits, feats = d(torch.randn(2, 4, 128, 96))
    assert logits.shape == (2, 1, 8, 6) and len(feats) == 4
    assert sum(1 for n, _ in d.named_parameters() if n.endswith("weight_orig")) == 5


def test_checkpoint_round_trips_extra_modules_and_optimizers(tmp_path):
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    oa, ob = torch.optim.AdamW(a.parameters()), torch.optim.AdamW(b.parameters(), lr=0.5)
    for o, mod in ((oa, a), (ob, b)):
        mod(torch.randn(4, mod.in_features)).sum().backward()
        o.step()
    save_checkpoint(tmp_path / "c.safetensors", a, oa, 7, {"x": 1}, {"disc": b, "opt_d": ob})
    a2, b2 = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)
    oa2, ob2 = torch.optim.AdamW(a2.parameters()), torch.optim.AdamW(b2.parameters())
    step, extra = load_checkpoint(tmp_path / "c.safetensors", a2, oa2, {"disc": b2, "opt_d": ob2})
    assert step == 7 and extra == {"x": 1}
    assert torch.equal(b2.weight, b.weight) and torch.equal(a2.bias, a.bias)
    assert ob2.param_groups[0]["lr"] == 0.5
    assert torch.equal(ob2.state_dict()["state"][0]["exp_avg"], ob.state_dict()["state"][0]["exp_avg"])
