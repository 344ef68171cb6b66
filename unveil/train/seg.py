"""The segmentation task of the training engine (``unveil train soclnet|soclnet-noattn``): the
occluder segmenter on synthetic occlusions of real faces.

BCE + Dice on a cached pool of synthetic occlusions (:mod:`unveil.occlusion.segpool`, optionally with
clean faces as negatives), validation IoU/PA on a fixed val pool; the engine
(:mod:`unveil.train.engine`) does the rest and ships the fp16 weights with their config, training
facts and measured numbers in the safetensors metadata, ready for ``unveil/weights/``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from unveil.eval.metrics import seg_counts, seg_scores
from unveil.train.config import TrainConfig
from unveil.train.engine import Task, batches, init_path, task
from unveil.occlusion.segpool import PoolSpec, SegPool, build_pool, load_pool, merge_pools


@dataclass
class SegTrainConfig(TrainConfig):
    task: str = "seg"
    name: str = "soclnet"
    train_pool: int = 6000
    val_pool: int = 300
    #: clean faces (empty masks) added to the training pool, and in proportion to the val pool
    clean_pool: int = 0
    batch: int = 16
    steps: int = 3000
    lr: float = 2e-3
    weight_decay: float = 1e-4
    #: face masks of the train and val pools drawn with ear loops / straps, and recoloured
    loops: float = 0.0
    recolor: float = 0.0
    #: share of training samples zoomed out (the pipeline's wide crop, for chin, neck and ears)
    zoom_out: float = 0.0


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


@task("seg")
class SegTask(Task):
    """SOCLNET (``model`` holds its config overrides: widths, rates, ``attention``)."""

    config_cls = SegTrainConfig

    def build(self) -> None:
        from unveil.models.registry import build_network
        from unveil.models.weights import load_weights

        cfg, progress = self.cfg, self.ctx.progress

        def pool(split: str, n: int, clean: int) -> dict:
            p = load_pool(build_pool(PoolSpec(split, n, cfg.size, cfg.seed, loops=cfg.loops, recolor=cfg.recolor),
                                     cfg.data, progress=progress))
            if clean:
                c = load_pool(build_pool(PoolSpec(split, clean, cfg.size, cfg.seed, clean=True), cfg.data,
                                         progress=progress))
                p = merge_pools(p, c)
            return p

        self.train_ds = SegPool(pool("train", cfg.train_pool, cfg.clean_pool), augment=True, zoom_out=cfg.zoom_out)
        val_clean = round(cfg.clean_pool * cfg.val_pool / max(cfg.train_pool, 1))
        self.val_ds = SegPool(pool("val", cfg.val_pool, val_clean))
        if cfg.init:  # fine-tune: the network (and its configuration) come from the initial weights
            model, _ = load_weights(init_path(cfg.init, cfg.name), lambda c: build_network("soclnet", c),
                                    what="initial weights")
        else:
            model = build_network("soclnet", cfg.model)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.fmt = fmt  # about 20 % faster convolutions on the CPU
        self.model = model.to(self.ctx.device, memory_format=fmt).train()
        self.net = self.ctx.wrap(self.model)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                     weight_decay=cfg.weight_decay)

    def start(self, step: int) -> None:
        gen = torch.Generator().manual_seed(self.cfg.seed + step)
        self.batches = batches(DataLoader(self.ctx.shard(self.train_ds), batch_size=self.cfg.batch, shuffle=True,
                                          drop_last=True, num_workers=0, generator=gen))

    def step(self, step: int) -> dict[str, float]:
        from unveil.train.losses import bce_dice_loss

        x, m, _ = next(self.batches)
        x, m = x.to(self.ctx.device).contiguous(memory_format=self.fmt), m.to(self.ctx.device)
        loss = bce_dice_loss(self.net(x), m)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach()), "lr": self.opt.param_groups[0]["lr"]}

    def validate(self, model: torch.nn.Module, step: int) -> dict:
        return evaluate_pool(model, self.val_ds, self.ctx.device)

    def val_line(self, val: dict) -> str:
        return f"IoU {val['iou']:.4f} PA {val['pa']:.4f}"

    def meta(self) -> dict:
        return {"train_pool": len(self.train_ds)}
