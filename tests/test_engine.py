"""The training engine: configs (YAML, overrides, --set), the EMA, and every family through fit()."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from unveil.errors import UnveilError
from unveil.train import config_names, fit, load_config
from unveil.train.config import parse_sets


def test_every_shipped_config_reads_and_names_a_registered_model():
    from unveil import models

    names = config_names()
    assert set(names) >= {"ifacenet", "ifacenet_single", "in2", "lgface", "cutface", "soclnet", "soclnet_noattn",
                          "gender"}
    for n in names:
        cfg = load_config(n)
        # a config names a registered model, or trains the refiner of one (``coarse``)
        assert n.replace("_", "-") in models.available(None) or getattr(cfg, "coarse", None) in models.available(), n
        assert cfg.out == f"runs/train/{cfg.name}"
    single = load_config("ifacenet-single")
    assert single.name == "ifacenet_single" and single.model["branches"] == ["plain"]
    assert load_config("soclnet-noattn").model == {"attention": False}


def test_overrides_and_sets_merge_at_any_depth():
    cfg = load_config("ifacenet-fidelity", sets=["loss.perceptual=0.05", "masks.weights.box=0.4", "betas=[0.5, 0.9]"],
                      steps=7, model={"width": 16})
    assert cfg.steps == 7 and cfg.loss.perceptual == 0.05 and cfg.loss.l1_hole == 6.0  # the YAML's value kept
    assert cfg.masks.weights == {"freeform": 0.5, "box": 0.4, "occluder": 0.35}
    assert cfg.model == {"prefill": True, "width": 16} and cfg.betas == (0.5, 0.9)
    assert parse_sets(["a.b.c=1", "a.d=x"]) == {"a": {"b": {"c": 1}, "d": "x"}}
    with pytest.raises(UnveilError, match="unknown setting.*colour"):
        load_config("gender", sets=["colour=red"])
    with pytest.raises(UnveilError, match="loss: unknown setting.*nce"):
        load_config("ifacenet", sets=["loss.nce=2"])  # a CUTFACE loss is not an inpainting loss
    with pytest.raises(UnveilError, match="KEY=VALUE"):
        parse_sets(["steps"])
    # YAML 1.1 reads 4e-4 as a string; the field's type decides
    assert load_config("ifacenet", sets=["d_lr=4e-4", "warmup=5.0"]).d_lr == 4e-4
    with pytest.raises(UnveilError, match="steps: expected a number"):
        load_config("ifacenet", sets=["steps=many"])
    with pytest.raises(UnveilError, match="resume: expected bool"):
        load_config("ifacenet", sets=["resume=maybe"])


def test_a_config_without_a_known_task_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps: 3\n")
    with pytest.raises(UnveilError, match="'task' must be one of"):
        load_config(path=bad)


def test_ema_follows_closely_at_first_then_at_its_decay():
    from unveil.train.engine import _ema

    net = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    ema = _ema(net, 0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update_parameters(net)  # the first update copies
    assert float(ema.module.weight) == 1.0
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema.update_parameters(net)  # second update: decay min(0.9, 3/12) = 0.25
    assert float(ema.module.weight) == pytest.approx(0.25)
    for _ in range(200):
        ema.update_parameters(net)
    assert float(ema.module.weight) < 1e-6


def test_bad_device_is_one_clear_error(tmp_path):
    cfg = load_config("gender", out=str(tmp_path / "g"), device="tpu9")
    with pytest.raises(UnveilError, match="unknown device"):
        fit(cfg, progress=False)


def test_unpaired_cutface_trains_through_fit_on_real_masked_photos(data_root, tmp_path, monkeypatch):
    """CUTFACE's task end to end on 12 real masked photos (aligned, masks found by SOCLNET), a tiny
    generator at 64 px: PatchNCE falls, EMA weights ship with the unpaired metadata, resume works."""
    if not (data_root / "real_masked").is_dir():
        pytest.skip(f"real masked photos not found at {data_root / 'real_masked'}")
    monkeypatch.chdir(tmp_path)  # the real-photo pool is cached in ./runs/cache
    torch.set_num_threads(2)
    tiny = {"width": 8, "bottleneck": 16, "qk": 8, "decoder_width": 8, "prefill": True}
    cfg = load_config("cutface", size=64, batch=3, batch_b=1, steps=24, lr=2e-3, d_lr=2e-3, warmup=2,
                      real_limit=12, holdout=2, train_limit=16, val_faces=4, val_every=0, log_every=6,
                      ckpt_every=12, model=tiny, loss={"num_patches": 64}, out=str(tmp_path / "cut"),
                      data=str(data_root))
    r = fit(cfg, progress=False)
    log = [json.loads(line) for line in open(tmp_path / "cut" / "log.jsonl")]
    assert [e["step"] for e in log] == [6, 12, 18, 24] and "val_psnr" in log[-1]
    nce = [e["nce"] + e["nce_idt"] for e in log]
    assert nce[-1] < 0.9 * nce[0], nce
    from unveil.models.weights import read_metadata

    meta = read_metadata(r["weights"])
    assert meta["unpaired"] is True and meta["network"] == "cutface" and meta["real_pool"]["train"] >= 6
    from safetensors import safe_open

    with safe_open(str(tmp_path / "cut" / "last.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert {k.split(".")[0] for k in keys} >= {"model", "ema", "head", "disc", "opt", "opt_d"}
    r2 = fit(dataclasses.replace(cfg, steps=26), progress=False)  # continues from the checkpoint
    assert r2["steps"] == 26 and len(r2["losses"]) == 2
    assert np.isfinite(r2["losses"]).all()


def test_several_processes_without_a_launcher_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(UnveilError, match="--nproc N` or torchrun"):
        fit(load_config("gender", out=str(tmp_path / "g")), progress=False)
