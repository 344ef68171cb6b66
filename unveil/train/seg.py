"""``unveil train soclnet``: train the occluder segmenter on synthetic occlusions of real faces.

AdamW with warm-up and cosine decay, BCE + Dice, a progress bar with loss and speed, a checkpoint
(model + optimizer, safetensors) every ``ckpt_every`` steps that a new run resumes from, validation
IoU/PA on a fixed val pool, and at the end the fp16 weights with their config, training facts and
measured numbers in the safetensors metadata, ready to ship in ``unveil/weights/``.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from unveil.eval.metrics import seg_counts, seg_scores
from unveil.train.checkpoint import load_checkpoint, save_checkpoint
from unveil.train.schedule import scheduler
from unveil.train.segdata import PoolSpec, SegPool, build_pool, load_pool, merge_pools


@dataclass
class SegTrainConfig:
    name: str = "soclnet"  # weight file name: <out>/<name>.safetensors
    attention: bool = True
    size: int = 128
    train_pool: int = 6000
    val_pool: int = 300
    #: clean faces (empty masks) added to the training pool, and in proportion to the val pool
    clean_pool: int = 0
    #: start from these weights ("shipped": unveil's shipped file of ``name``) instead of scratch
    init: str | None = None
    batch: int = 16
    steps: int = 3000
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    ckpt_every: int = 250
    val_every: int = 500
    resume: bool = True
    out: str = "runs/train/soclnet"
    data: str | None = None
    device: str = "cpu"
    model: dict = field(default_factory=dict)  # SOCLNetConfig overrides (widths, rates)


@torch.no_grad()
def evaluate_pool(model: torch.nn.Module, ds: SegPool, device: str = "cpu", batch: int = 32,
                  threshold: float = 0.5) -> dict:
    """Pooled PA / IoU / F1 of a model on a (non-augmented) pool."""
    model.eval()
    counts = np.zeros(4, np.int64)
    for i in range(0, len(ds), batch):
        xs, ms, _ = zip(*[ds[j] for j in range(i, min(i + batch, len(ds)))])
        prob = torch.sigmoid(model(torch.stack(xs).to(device))).cpu().numpy()[:, 0]
        for p, m in zip(prob, ms):
            counts += seg_counts(p >= threshold, m[0].numpy() >= 0.5)
    model.train()
    return seg_scores(counts)


def train_segmenter(cfg: SegTrainConfig, progress: bool = True) -> dict:
    from unveil.models.soclnet import SOCLNet, SOCLNetConfig
    from unveil.models.weights import save_weights
    from unveil.train.losses import bce_dice_loss

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    def pool(split: str, n: int, clean: int) -> dict:
        p = load_pool(build_pool(PoolSpec(split, n, cfg.size, cfg.seed), cfg.data, progress=progress))
        if clean:
            c = load_pool(build_pool(PoolSpec(split, clean, cfg.size, cfg.seed, clean=True), cfg.data,
                                     progress=progress))
            p = merge_pools(p, c)
        return p

    train_ds = SegPool(pool("train", cfg.train_pool, cfg.clean_pool), augment=True)
    val_clean = round(cfg.clean_pool * cfg.val_pool / max(cfg.train_pool, 1))
    val_ds = SegPool(pool("val", cfg.val_pool, val_clean))
    mcfg = SOCLNetConfig(**{**cfg.model, "attention": cfg.attention})
    model = SOCLNet(mcfg).to(cfg.device).train()
    if cfg.init:  # fine-tune: the network (and its configuration) come from the initial weights
        from unveil.models.soclnet import build_soclnet
        from unveil.models.weights import load_weights, shipped

        src = shipped(cfg.name) if cfg.init == "shipped" else Path(cfg.init)
        init, _ = load_weights(src, build_soclnet, what="initial weights")
        mcfg = init.config
        model = SOCLNet(mcfg).to(cfg.device).train()
        model.load_state_dict({k: v.float() for k, v in init.state_dict().items()})
    cl = torch.channels_last  # about 20 % faster convolutions on the CPU
    model = model.to(memory_format=cl)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, ckpt = 0, out / "last.safetensors"
    if cfg.resume and ckpt.exists():
        step, _ = load_checkpoint(ckpt, model, opt)
    sched = scheduler(opt, cfg.steps, cfg.warmup, step)  # continues at ``step`` after a resume
    loader = DataLoader(train_ds, batch_size=cfg.batch, shuffle=True, drop_last=True, num_workers=0)
    log = open(out / "log.jsonl", "a")
    params = sum(p.numel() for p in model.parameters())
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.name}", unit="step",
               disable=not progress, file=sys.stderr)
    t0, losses, val = time.time(), [], {}
    while step < cfg.steps:
        for x, m, _ in loader:
            x, m = x.to(cfg.device).contiguous(memory_format=cl), m.to(cfg.device)
            loss = bce_dice_loss(model(x), m)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", lr=f"{sched.get_last_lr()[0]:.1e}")
            if step % cfg.val_every == 0 or step == cfg.steps:
                val = evaluate_pool(model, val_ds, cfg.device)
                log.write(json.dumps({"step": step, "loss": float(np.mean(losses[-50:])),
                                      **{f"val_{k}": v for k, v in val.items()}}) + "\n")
                log.flush()
                bar.write(f"step {step}: loss {np.mean(losses[-50:]):.4f}  val IoU {val['iou']:.4f} "
                          f"PA {val['pa']:.4f}")
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                save_checkpoint(ckpt, model, opt, step, {"loss": float(np.mean(losses[-50:]))})
            if step >= cfg.steps:
                break
    bar.close()
    log.close()
    elapsed = time.time() - t0
    meta = {"trained_steps": step, "batch": cfg.batch, "size": cfg.size, "train_pool": len(train_ds),
            "val": val, "params": params, "train_config": asdict(cfg),
            "hardware": f"{torch.get_num_threads()} CPU threads" if cfg.device == "cpu" else cfg.device,
            "seconds_this_run": round(elapsed, 1)}
    path = save_weights(out / f"{cfg.name}.safetensors", model, mcfg, meta)
    return {"weights": str(path), "steps": step, "val": val, "params": params,
            "seconds": round(elapsed, 1)}
