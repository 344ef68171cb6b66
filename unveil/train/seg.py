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


#: the kind name of the real photos' pseudo-labelled crops in a training pool
REAL = "real"


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
    #: pseudo-labels of the real masked photos (:mod:`unveil.train.realpool`, ``teacher``; the
    #: held-out photos never): each sure face crop and its wide crop added ``real`` times (0: none)
    real: int = 0
    #: a real photo is sure when at most this share of its found mask is unsure (0.2 < p < 0.8)
    real_unsure: float = 0.3
    #: its wide crop is used when the wide hole is at most this many times the face crop's (more is
    #: mostly dark clothing joined to a dark mask)
    real_wide_grow: float = 1.7
    #: the real photos used (the first N: a quick run) and how many of them are held out
    real_limit: int | None = None
    real_holdout: int = 100


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

        train = pool("train", cfg.train_pool, cfg.clean_pool)
        self.real_counts = None
        if cfg.real:
            train = merge_pools(train, self._real_pool(train["kind_names"]))
        self.train_ds = SegPool(train, augment=True, zoom_out=cfg.zoom_out)
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

    def _real_pool(self, names) -> dict:
        """The sure real photos' face and wide crops with their pseudo-labels, ``real`` times."""
        from unveil.train.realpool import RealPoolSpec, load_real_pool

        cfg = self.cfg
        p = load_real_pool(RealPoolSpec(cfg.size, holdout=cfg.real_holdout, limit=cfg.real_limit, teacher=True),
                           cfg.data, self.ctx.progress)
        sure = p["train_unsure"] <= cfg.real_unsure
        wide = sure & (p["wide_grow"] <= cfg.real_wide_grow)
        images = np.concatenate([p["train_images"][sure], p["wide_images"][wide]])
        masks = np.concatenate([p["train_masks"][sure], p["wide_masks"][wide]])
        self.real_counts = dict(p["counts"], sure=int(sure.sum()), wide=int(wide.sum()))
        kind_names = np.array(list(names) + [REAL])
        reps = int(cfg.real)
        return {"images": np.tile(images, (reps, 1, 1, 1)), "masks": np.tile(masks, (reps, 1, 1)),
                "kinds": np.full(len(images) * reps, len(kind_names) - 1, np.int8), "kind_names": kind_names}

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
        out = {"train_pool": len(self.train_ds)}
        if self.real_counts:
            out["real_pool"] = self.real_counts
        return out
