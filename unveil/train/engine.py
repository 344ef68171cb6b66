"""The one training loop: ``fit(cfg)`` trains any model family through its :class:`Task`.

``fit`` owns everything a family shares: seeding, resume from the run folder's
``last.safetensors`` (:mod:`unveil.train.checkpoint`, no pickle), the warm-up + cosine schedule of
the task's main optimizer (:mod:`unveil.train.schedule`, a ``torch.optim.lr_scheduler.LambdaLR``),
an EMA of the trained network (``torch.optim.swa_utils.AveragedModel``; its weights ship), bf16
autocast on CUDA, the progress bar, ``log.jsonl`` (one line every ``log_every`` steps and at every
validation), validation every ``val_every`` steps (the task measures, through the evaluation
harness), checkpoints every ``ckpt_every`` steps, and at the end ``<out>/<name>.safetensors``: the
shipped network in fp16 with its config and the training facts in the metadata.

A family is a small :class:`Task` in its own file (``inpaint``, ``unpaired``, ``seg``, ``gender``)
registered with :func:`task`: it builds its networks, optimizers and data, runs one step, and
validates. Its config is a :class:`~unveil.train.config.TrainConfig` subclass read from a YAML file
shipped in ``unveil/train/configs/`` (:func:`load_config`) and overridden by ``--set key=value``.

Several processes (:mod:`unveil.train.distributed`, ``unveil train NAME --nproc N`` or ``torchrun``):
:class:`Context` carries ``rank`` and ``world`` (from the ``RANK`` / ``WORLD_SIZE`` environment of
the launcher), ``is_main`` guards every write (logs, checkpoints, weights, validation), ``shard``
gives each rank its share of a dataset and ``seed`` its own random stream; once a task is built, the
engine broadcasts rank 0's weights and makes every optimizer average the gradients before it steps,
so a task needs nothing else to run data-parallel.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from unveil.errors import UnveilError
from unveil.models.tensors import torch_device
from unveil.train.checkpoint import load_checkpoint, save_checkpoint
from unveil.train.config import CONFIGS, TrainConfig, build_config, merge, parse_sets, read_yaml
from unveil.train.schedule import scheduler


def load_config(which: str | None = None, path: str | os.PathLike | None = None, sets: list[str] = (),
                **overrides):
    """The config of a run: the YAML ``path`` (default the shipped ``configs/<name>.yaml``), its
    ``task`` choosing the config class (of the registered tasks: :func:`unveil.train.load_config`
    registers them all), then ``overrides`` (None values ignored; nested mappings merged), then
    ``--set`` items."""
    if path is None:
        if which is None:
            raise UnveilError("load_config needs a config name or a path")
        path = CONFIGS / f"{which.replace('-', '_')}.yaml"
    raw = read_yaml(path)
    raw = merge(raw, {k: v for k, v in overrides.items() if v is not None})
    raw = merge(raw, parse_sets(list(sets)))
    family = raw.get("task")
    if family not in TASKS:
        raise UnveilError(f"{path}: 'task' must be one of {sorted(TASKS)}, got {family!r}")
    return build_config(TASKS[family].config_cls, raw, str(path))


# -- tasks -----------------------------------------------------------------------------------------

TASKS: dict[str, type["Task"]] = {}


def task(family: str):
    """Class decorator: register a :class:`Task` for the configs whose ``task`` is ``family``."""

    def deco(cls):
        if family in TASKS:
            raise ValueError(f"training task '{family}' is registered twice")
        TASKS[family] = cls
        cls.family = family
        return cls

    return deco


@dataclass
class Context:
    """What a task gets from the engine: the device, autocast, and the distributed hooks."""

    device: torch.device
    progress: bool = True
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module a task calls in its step. The same module on every process count: the ranks
        are kept in step by averaging gradients at each optimizer step (no wrapper needed)."""
        return module

    def shard(self, items):
        """This rank's share of a dataset (every ``world``-th item from ``rank``; all of it on one
        process)."""
        if self.world == 1:
            return items
        from torch.utils.data import Subset

        return Subset(items, range(self.rank, len(items), self.world))

    def seed(self, *parts) -> tuple:
        """A seed for a task's own random stream: ``parts`` on one process (so single-process runs
        draw what they always drew), ``parts`` plus the rank on several."""
        return parts + ((self.rank,) if self.world > 1 else ())


class Task:
    """One model family's training. Subclasses set ``config_cls`` and implement the methods."""

    config_cls: type[TrainConfig] = TrainConfig
    family: str = ""

    #: set by :meth:`build`: the network that trains (and ships, or its EMA does), its scheduled
    #: optimizer, and further modules / optimizers to checkpoint by name
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    state: dict

    def __init__(self, cfg: TrainConfig, ctx: Context):
        self.cfg, self.ctx, self.state = cfg, ctx, {}

    def build(self) -> None:
        """Data, networks and optimizers (before a resume loads the checkpoint into them)."""
        raise NotImplementedError

    def start(self, step: int) -> None:
        """Called once the start step is known (after a resume): data iterators, generators."""

    def step(self, step: int) -> dict[str, float]:
        """One optimizer step; returns its losses as floats, the total under ``loss``."""
        raise NotImplementedError

    def validate(self, model: torch.nn.Module, step: int) -> dict:
        """Measure ``model`` (the EMA when there is one) on validation data."""
        return {}

    def val_line(self, val: dict) -> str:
        return " ".join(f"{k} {v:.4f}" for k, v in val.items() if isinstance(v, float))

    def network_config(self):
        """The config that rebuilds the shipped network (saved in its metadata)."""
        return getattr(self.model, "cfg", None) or getattr(self.model, "config", None)

    def meta(self) -> dict:
        """Extra metadata of the shipped weights."""
        return {}


def init_path(source: str, name: str = "") -> Path:
    """The file of an ``init`` setting: "shipped" (the shipped weights of ``name``), "shipped:NAME",
    or a path; a clear error when it is not there."""
    from unveil.models.weights import shipped

    if source == "shipped":
        path = shipped(name)
    elif source.startswith("shipped:"):
        path = shipped(source.split(":", 1)[1])
    else:
        path = Path(source)
    if not path.exists():
        raise UnveilError(f"init weights not found: {path}")
    return path


def batches(loader):
    """Batches of a data loader, epoch after epoch."""
    while True:
        yield from loader


# -- the loop --------------------------------------------------------------------------------------

def _ema(model: torch.nn.Module, decay: float) -> AveragedModel:
    """An EMA that follows closely at first: decay min(``decay``, (1 + n) / (10 + n)) at update n."""

    def avg(e: torch.Tensor, p: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        d = min(decay, (2 + float(n)) / (11 + float(n)))
        return e + (p - e) * (1 - d)

    return AveragedModel(model, avg_fn=avg).eval().requires_grad_(False)


def fit(cfg: TrainConfig, progress: bool = True) -> dict:
    """Train ``cfg``'s family through its task; returns weights path, steps, val, params, seconds,
    the per-step losses of this run, the first and last losses and the last parts."""
    if cfg.task not in TASKS:
        raise UnveilError(f"no training task '{cfg.task}'; tasks: {', '.join(sorted(TASKS))}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ctx = Context(torch_device(cfg.device), progress, int(os.environ.get("RANK", 0)),
                  int(os.environ.get("WORLD_SIZE", 1)))
    if ctx.world > 1:
        from unveil.train import distributed

        ctx.device = distributed.join(ctx.device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    out = Path(cfg.out)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
    t = TASKS[cfg.task](cfg, ctx)
    t.build()
    if ctx.world > 1:
        distributed.sync_task(t)
    ema = _ema(t.model, cfg.ema) if cfg.ema else None
    parts_to_save = {**({"ema": ema} if ema is not None else {}), **t.state}
    step, ckpt = 0, out / "last.safetensors"
    if cfg.resume and ckpt.exists():
        step, _ = load_checkpoint(ckpt, t.model, t.opt, parts_to_save)
    sched = scheduler(t.opt, cfg.steps, cfg.warmup, step)
    t.start(step)
    shipped = ema.module if ema is not None else t.model
    params = sum(p.numel() for p in t.model.parameters())
    log = open(out / "log.jsonl", "a") if ctx.is_main else None
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.name}", unit="step",
               disable=not (progress and ctx.is_main), file=sys.stderr)
    t0, hist, val = time.time(), [], {}

    def recent(n: int) -> dict:
        keys = hist[-1].keys()
        return {k: float(np.mean([h[k] for h in hist[-n:] if k in h])) for k in keys}

    def validate() -> dict:
        v = t.validate(shipped, step) if ctx.is_main else {}
        if v:
            bar.write(f"step {step}: loss {recent(50)['loss']:.4f}  val {t.val_line(v)}" if hist
                      else f"step {step}: val {t.val_line(v)}")
        return v

    try:
        while step < cfg.steps:
            parts = t.step(step)
            sched.step()
            step += 1
            if ema is not None:
                ema.update_parameters(t.model)
                for e, b in zip(ema.module.buffers(), t.model.buffers()):
                    e.copy_(b)
            hist.append(parts)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in recent(50).items()})
            entry = {}
            if step % cfg.log_every == 0 or step == cfg.steps:
                entry = recent(cfg.log_every)
            if step == cfg.steps or (cfg.val_every and step % cfg.val_every == 0):
                val = validate()
                entry = {**(entry or recent(cfg.log_every)), **{f"val_{k}": v for k, v in val.items()}}
            if entry and log is not None:
                log.write(json.dumps({"step": step, **entry}) + "\n")
                log.flush()
            if ctx.is_main and (step % cfg.ckpt_every == 0 or step == cfg.steps):
                save_checkpoint(ckpt, t.model, t.opt, step, recent(50), parts_to_save)
    finally:
        bar.close()
        if log is not None:
            log.close()
    if not hist:  # a finished run resumed: measure what ships
        val = validate()
    elapsed = time.time() - t0
    result = {"weights": None, "steps": step, "val": val, "params": params, "seconds": round(elapsed, 1),
              "losses": [h["loss"] for h in hist], "first_loss": hist[0]["loss"] if hist else None,
              "last_loss": recent(10)["loss"] if hist else None, "first": hist[0] if hist else {},
              "last": recent(50) if hist else {}, "val_line": t.val_line(val) if val else "not validated"}
    if ctx.is_main:
        from unveil.models.weights import save_weights

        meta = {"trained_steps": step, "batch": cfg.batch, "size": cfg.size, "val": val, "params": params,
                "train_config": asdict(cfg), "task": cfg.task,
                "hardware": (f"{torch.get_num_threads()} CPU threads" if ctx.device.type == "cpu"
                             else torch.cuda.get_device_name(ctx.device)) + (f" x {ctx.world} processes"
                                                                              if ctx.world > 1 else ""),
                "seconds_this_run": round(elapsed, 1), **t.meta()}
        result["weights"] = str(save_weights(out / f"{cfg.name}.safetensors", shipped, t.network_config(), meta))
    return result
