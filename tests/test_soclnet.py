import numpy as np
import pytest
import torch

from unveil import models
from unveil.errors import UnveilError
from unveil.models.soclnet import (SOCLNet, SOCLNetConfig, SOCLNetNoAttnSegmenter, SOCLNetSegmenter,
                                   build_soclnet, count_params)
from unveil.models.weights import save_weights
from unveil.train.losses import bce_dice_loss, dice_loss

#: A narrow SOCLNET for quick tests (same architecture, fewer channels).
TINY = dict(width=0.35, aspp_channels=32, low_level_channels=16, decoder_channels=32)


@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("hw", [(128, 128), (256, 192), (160, 320)])
def test_soclnet_gives_logits_at_the_input_size(hw, attention):
    torch.manual_seed(0)
    net = SOCLNet(SOCLNetConfig(attention=attention, **TINY)).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, *hw))
    assert out.shape == (2, 1, *hw)
    assert torch.isfinite(out).all()


def test_attention_block_is_there_only_when_asked_for():
    with_attn = dict(SOCLNet(SOCLNetConfig()).named_parameters())
    without = dict(SOCLNet(SOCLNetConfig(attention=False)).named_parameters())
    attn_names = [n for n in with_attn if n.startswith("attention.")]
    assert {"attention.gamma_position", "attention.gamma_channel", "attention.position.query.weight",
            "attention.position.key.weight", "attention.position.value.weight"} <= set(attn_names)
    assert not [n for n in without if n.startswith("attention.")]
    assert set(with_attn) - set(without) == set(attn_names)
    # query/key are reduced to C/8; gammas start at 0, so the block starts as the identity
    c = SOCLNetConfig().aspp_channels
    assert with_attn["attention.position.query.weight"].shape[0] == c // 8
    assert with_attn["attention.gamma_position"].item() == 0 == with_attn["attention.gamma_channel"].item()


def test_attention_changes_the_output_once_its_gammas_move():
    torch.manual_seed(0)
    net = SOCLNet(SOCLNetConfig(**TINY)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        net.attention.gamma_position.fill_(1.0)
        net.attention.gamma_channel.fill_(0.5)
        after = net(x)
    assert not torch.allclose(before, after)


def test_soclnet_size_is_small():
    n = count_params(SOCLNet(SOCLNetConfig()))
    assert 0.5e6 <= n <= 5e6
    assert count_params(SOCLNet(SOCLNetConfig(attention=False))) < n


def test_fusing_batchnorm_keeps_the_output():
    torch.manual_seed(0)
    net = SOCLNet(SOCLNetConfig(**TINY))
    for m in net.modules():  # non-trivial running statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        ref = net(x)
        fused = net.fuse()(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    torch.testing.assert_close(fused, ref, atol=1e-4, rtol=1e-4)


def test_soclnet_rejects_sides_that_are_not_multiples_of_16():
    with pytest.raises(UnveilError, match="multiples of 16"):
        SOCLNet(SOCLNetConfig(**TINY))(torch.randn(1, 3, 100, 128))


def test_build_soclnet_reads_json_configs_and_refuses_unknown_keys():
    cfg = {**TINY, "aspp_rates": [1, 2, 3], "stages": [list(s) for s in SOCLNetConfig().stages]}
    net = build_soclnet(cfg)
    assert net.config.aspp_rates == (1, 2, 3)
    with pytest.raises(UnveilError, match="nope"):
        build_soclnet({"nope": 1})


@pytest.fixture
def tiny_weights(tmp_path):
    torch.manual_seed(0)
    cfg = SOCLNetConfig(**TINY)
    return save_weights(tmp_path / "soclnet.safetensors", SOCLNet(cfg), cfg, {"note": "random init"})


def test_segmenter_gives_probabilities_at_any_size(tiny_weights):
    seg = models.load_segmenter("soclnet", weights=tiny_weights)
    assert isinstance(seg, SOCLNetSegmenter)
    img = np.random.default_rng(0).integers(0, 256, (250, 190, 3), dtype=np.uint8)
    prob = seg.segment(img)
    assert prob.dtype == np.float32 and prob.shape == (250, 190)
    assert 0 <= prob.min() and prob.max() <= 1
    assert seg.mask(img).shape == (250, 190)
    # a batch of equal-size crops gives the same answers as one at a time
    batch = seg.segment_batch([img, img[::-1].copy()])
    assert len(batch) == 2 and batch[0].shape == (250, 190)
    np.testing.assert_allclose(batch[0], prob, atol=1e-5)
    with pytest.raises(UnveilError, match="equal-size"):
        seg.segment_batch([img, img[:200]])


def test_the_mirror_look_is_the_mean_of_the_crop_and_its_mirror(tiny_weights):
    img = np.random.default_rng(1).integers(0, 256, (250, 190, 3), dtype=np.uint8)  # padded sides
    plain = models.load_segmenter("soclnet", weights=tiny_weights, flip=False)
    both = models.load_segmenter("soclnet", weights=tiny_weights)
    assert both.flip and not plain.flip
    a, b = plain.segment(img), plain.segment(np.ascontiguousarray(img[:, ::-1]))[:, ::-1]
    assert np.abs(a - b).max() > 1e-3  # a random network is not symmetric: the test means something
    np.testing.assert_allclose(both.segment(img), 0.5 * (a + b), atol=1e-5)
    np.testing.assert_allclose(both.segment(img[:, ::-1].copy()), both.segment(img)[:, ::-1], atol=1e-5)


def test_segmenter_needs_weights(tmp_path, monkeypatch):
    with pytest.raises(UnveilError, match="no weights"):
        SOCLNetSegmenter(weights=tmp_path / "missing.safetensors")
    import unveil.models.weights as mod

    monkeypatch.setattr(mod, "shipped", lambda name: tmp_path / f"{name}.safetensors")
    for name in ("soclnet", "soclnet-noattn"):
        with pytest.raises(UnveilError, match="unveil train soclnet"):
            models.load_segmenter(name)


def test_both_segmenters_are_registered():
    assert {"soclnet", "soclnet-noattn"} <= set(models.available("segmenter"))
    assert models.info("soclnet").rank > models.info("soclnet-noattn").rank
    assert models.info("soclnet-noattn").factory is SOCLNetNoAttnSegmenter
    assert SOCLNetNoAttnSegmenter.weight_name == "soclnet_noattn"


def test_dice_and_bce_dice_losses():
    target = torch.zeros(2, 1, 32, 32)
    target[0, :, 8:24, 4:20] = 1
    target[1, :, :, :12] = 1
    perfect = torch.where(target > 0, 20.0, -20.0)
    assert dice_loss(perfect, target).item() < 1e-3
    assert bce_dice_loss(perfect, target).item() < 1e-3
    assert dice_loss(-perfect, target).item() > 0.99
    # hand-checked: p = 0.5 everywhere on a 2x2 map with one positive pixel, eps = 1
    # dice = (2 * 0.5 + 1) / (2 + 1 + 1) = 0.5; bce = ln 2
    logits = torch.zeros(1, 1, 2, 2)
    t = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    assert dice_loss(logits, t).item() == pytest.approx(0.5)
    assert bce_dice_loss(logits, t).item() == pytest.approx(np.log(2) + 0.5)
    assert bce_dice_loss(logits, t, bce_weight=0.0, dice_weight=2.0).item() == pytest.approx(1.0)
    # per-sample mean: a perfect sample and a hopeless one average to ~0.5
    mixed = torch.stack([perfect[0], -perfect[1]])
    assert dice_loss(mixed, target).item() == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError):
        dice_loss(logits, torch.zeros(1, 1, 3, 3))


def test_clean_faces_are_taught_by_bce_alone():
    """An empty target (a clean face) adds no Dice term: a confident empty prediction costs ~0,
    and in a batch with one occluded sample the Dice term is weighted by the occluded share."""
    empty = torch.zeros(1, 1, 8, 8)
    assert bce_dice_loss(torch.full((1, 1, 8, 8), -20.0), empty).item() < 1e-6
    assert bce_dice_loss(torch.zeros(1, 1, 8, 8), empty).item() == pytest.approx(np.log(2))
    t = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    batch_t = torch.cat([t, torch.zeros_like(t)])
    logits = torch.zeros(2, 1, 2, 2)
    # bce ln 2 over all pixels; dice 0.5 on the occluded sample, times its share 1/2
    assert bce_dice_loss(logits, batch_t).item() == pytest.approx(np.log(2) + 0.25)


def test_tiny_soclnet_learns_occluders_on_real_faces(data_root):
    """A tiny SOCLNET trains a few steps on real faces and its loss falls."""
    from unveil.data import face_records, load_face
    from unveil.occlusion.synth import Synthesizer

    recs = face_records("utkface", "train", data_root)[:8]
    synth = Synthesizer(data=data_root, split="train", size=128)
    samples = [synth.sample(load_face(r, 128), seed=i) for i, r in enumerate(recs)]
    x = torch.from_numpy(np.stack([s.occluded for s in samples])).permute(0, 3, 1, 2).float()
    x = (x / 255 - 0.5) / 0.5
    y = torch.from_numpy(np.stack([s.mask for s in samples])).float()[:, None]

    torch.manual_seed(0)
    net = SOCLNet(SOCLNetConfig(**TINY, dropout=0.0))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy shared CPU, two spinning OpenMP threads run ~20x slower
    try:
        for _ in range(30):
            opt.zero_grad()
            loss = bce_dice_loss(net(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.6 * losses[0], losses
