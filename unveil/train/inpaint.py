"""``unveil train ifacenet|in2``: the one trainer for every learned inpainter.

A run is described by :class:`InpaintTrainConfig` (a dataclass; ``from_yaml`` reads the shipped
per-model YAML in ``unveil/train/configs/`` and applies overrides). It trains the registered network
``network`` on UTKFace train faces with holes from :class:`~unveil.train.inpaintdata.MaskMix`:

* losses as weighted pieces from :mod:`unveil.train.losses`: hole/valid L1, SSIM, VGG16 perceptual
  and style, total variation, and - when ``adversarial > 0`` - an SN-PatchGAN discriminator with a
  hinge (or LSGAN) loss and feature matching;
* AdamW, warm-up + cosine schedule, an EMA of the generator (the weights that ship), bf16 autocast
  on CUDA, fixed seeds;
* a progress bar with the losses and it/s, a safetensors checkpoint (generator, EMA,
  discriminator, both optimizers) every ``ckpt_every`` steps that a new run resumes from;
* validation with the evaluation harness on UTKFace *val* faces every ``val_every`` steps
  (PSNR/SSIM per bin, and a PNG grid of samples in ``<out>/val/step-N/``);
* at the end ``<out>/<name>.safetensors``: the EMA weights in fp16 with their config, the training
  facts and the last validation in the metadata, ready to ship in ``unveil/weights/``.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from unveil.errors import UnveilError
from unveil.train import losses as L
from unveil.train.checkpoint import load_checkpoint, save_checkpoint
from unveil.train.inpaintdata import InpaintData, MaskMix
from unveil.train.schedule import scheduler

CONFIGS = Path(__file__).resolve().parent / "configs"


@dataclass
class LossWeights:
    l1_hole: float = 6.0
    l1_valid: float = 1.0
    ssim: float = 1.0
    perceptual: float = 0.0  # VGG16 relu1_2..relu3_3
    style: float = 0.0
    tv: float = 0.0
    adversarial: float = 0.0  # > 0 turns the SN-PatchGAN discriminator on
    feature_matching: float = 0.0
    gan: str = "hinge"  # hinge or lsgan


@dataclass
class InpaintTrainConfig:
    network: str = "ifacenet"
    name: str = ""  # weight file name (default: the network's)
    model: dict = field(default_factory=dict)  # network config overrides
    size: int = 128
    batch: int = 8
    steps: int = 2000
    lr: float = 1e-3
    d_lr: float = 4e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    warmup: int = 200
    ema: float = 0.999
    seed: int = 0
    loss: LossWeights = field(default_factory=LossWeights)
    masks: MaskMix = field(default_factory=MaskMix)
    train_limit: int | None = None  # use only the first N train faces
    #: start from these weights ("shipped:NAME" or a file): tensors of the same shape are copied,
    #: a convolution with more input channels gets the old ones and zeros for the new
    init: str | None = None
    guide_dropout: float = 0.1  # guided networks: drop landmarks / gender code this often
    #: guided networks: share of training guides whose landmarks are predicted on the occluded face
    #: (the hole greyed out, as at inference) instead of the clean face's cached mesh
    guide_occluded: float = 0.0
    val_every: int = 500
    val_faces: int = 48
    val_masks: str = "nvidia"
    ckpt_every: int = 250
    resume: bool = True
    out: str = ""  # default runs/train/<name>
    data: str | None = None
    device: str = "cpu"
    workers: int = 0
    channels_last: bool = True

    def __post_init__(self):
        if isinstance(self.loss, dict):
            self.loss = LossWeights(**self.loss)
        if isinstance(self.masks, dict):
            self.masks = MaskMix(**self.masks)
        self.betas = tuple(self.betas)
        self.name = self.name or self.network
        self.out = self.out or f"runs/train/{self.name}"

    @classmethod
    def from_yaml(cls, path: str | Path | None = None, network: str | None = None,
                  **overrides) -> "InpaintTrainConfig":
        """Config from a YAML file (default: the shipped one for ``network``), then overrides."""
        if path is None:
            path = CONFIGS / f"{network}.yaml"
        path = Path(path)
        if not path.exists():
            raise UnveilError(f"no training config at {path}")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise UnveilError(f"{path}: a training config must be a mapping")
        for k, v in overrides.items():
            if v is None:
                continue
            # nested settings (loss, masks, model) update the file's mapping instead of replacing it
            raw[k] = {**raw[k], **v} if isinstance(v, dict) and isinstance(raw.get(k), dict) else v
        if network:
            raw["network"] = network
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(raw) - known
        if bad:
            raise UnveilError(f"{path}: unknown setting(s) {sorted(bad)}")
        return cls(**raw)


def apply_sets(over: dict, sets: list[str]) -> dict:
    """``--set KEY=VALUE`` items (``loss.perceptual=0.05``; values parsed as YAML) into the override
    dict of ``from_yaml`` (dotted keys become nested mappings). Returns ``over``."""
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise UnveilError(f"--set wants KEY=VALUE (e.g. loss.perceptual=0.05), got '{item}'")
        head, _, tail = key.partition(".")
        v = yaml.safe_load(value)
        if tail:
            over.setdefault(head, {})[tail] = v
        else:
            over[head] = v
    return over


def inpainter_class(network: str):
    """The registered :class:`NeuralInpainter` subclass that runs ``network``."""
    from unveil.models.neural import NeuralInpainter

    stack = list(NeuralInpainter.__subclasses__())
    while stack:
        c = stack.pop(0)
        if c.network_name == network:
            return c
        stack.extend(c.__subclasses__())
    raise UnveilError(f"no inpainter runs network '{network}'")


class EMA:
    """Exponential moving average of a model's parameters (buffers copied)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # warm start: follow closely at first
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1 - d)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)


class Losses(torch.nn.Module):
    """The weighted generator losses of a config; returns (total, {name: value})."""

    def __init__(self, w: LossWeights):
        super().__init__()
        self.w = w
        self.vgg = L.VGGLoss() if (w.perceptual or w.style) else None

    def forward(self, pred, comp, target, mask, d_fake=None, d_feats=None) -> tuple[torch.Tensor, dict]:
        w, parts = self.w, {}
        parts["l1"] = L.masked_l1(pred, target, mask, w.l1_hole, w.l1_valid)
        if w.ssim:
            parts["ssim"] = w.ssim * L.ssim_loss(comp, target)
        if self.vgg is not None:
            perc, style = self.vgg(comp, target)
            if w.perceptual:
                parts["perc"] = w.perceptual * perc
            if w.style:
                parts["style"] = w.style * style
        if w.tv:
            parts["tv"] = w.tv * L.tv_loss(comp)
        if d_fake is not None:
            g = L.g_hinge_loss if w.gan == "hinge" else L.g_lsgan_loss
            parts["adv"] = w.adversarial * g(d_fake)
            if w.feature_matching and d_feats is not None:
                parts["fm"] = w.feature_matching * L.feature_matching_loss(*d_feats)
        total = sum(parts.values())
        return total, {k: float(v.detach()) for k, v in parts.items()}


def validate(model: torch.nn.Module, cfg: InpaintTrainConfig, step: int, progress: bool = False) -> dict:
    """PSNR/SSIM of ``model`` on UTKFace val faces, through the evaluation harness."""
    from unveil.eval.harness import MID_LABEL, EvalConfig, run_eval

    inp = inpainter_class(cfg.network).from_module(model, cfg.size, name=cfg.name)
    ecfg = EvalConfig(model=cfg.name, faces="utkface", split="val", masks=cfg.val_masks, size=cfg.size,
                      limit=cfg.val_faces, lpips=False, identity=False, grid=6, data=cfg.data,
                      out=str(Path(cfg.out) / "val" / f"step-{step}"))
    r = run_eval(ecfg, progress=progress, model=inp)
    s = r["summary"].get(MID_LABEL) or r["summary"]["all"]
    return {"psnr": s["psnr"], "ssim": s["ssim"], "psnr_hole": s["psnr_hole"], "l1": s["l1"]}


def init_from(net: torch.nn.Module, source: str) -> dict:
    """Copy weights into ``net`` from ``source`` ("shipped:NAME" or a safetensors file of ours):
    same-shape tensors as they are; a weight with more input channels (dim 1) than the source gets
    the source's channels and zeros for the extra ones (new inputs start ignored). Returns counts."""
    from safetensors.torch import load_file

    from unveil.models.weights import shipped

    path = shipped(source.split(":", 1)[1]) if source.startswith("shipped:") else Path(source)
    if not path.exists():
        raise UnveilError(f"init weights not found: {path}")
    from unveil.models.weights import read_metadata

    theirs = bool((read_metadata(path).get("config") or {}).get("prefill", False))
    ours = bool(getattr(getattr(net, "cfg", None), "prefill", False))
    if theirs != ours:
        raise UnveilError(f"{path} was trained with prefill={str(theirs).lower()} but the network has "
                          f"prefill={str(ours).lower()}; set model.prefill={str(theirs).lower()} to start from it")
    src = load_file(str(path))
    own = net.state_dict()
    copied = widened = 0
    with torch.no_grad():
        for k, v in own.items():
            if k not in src:
                continue
            t = src[k].to(v.dtype)
            if t.shape == v.shape:
                v.copy_(t)
                copied += 1
            elif t.dim() == v.dim() == 4 and t.shape[0] == v.shape[0] and t.shape[2:] == v.shape[2:] \
                    and t.shape[1] < v.shape[1]:
                v.zero_()
                v[:, :t.shape[1]] = t
                widened += 1
    if not copied:
        raise UnveilError(f"{path}: no tensor fits the network '{type(net).__name__}'")
    return {"copied": copied, "widened": widened, "of": len(own)}


def train_inpainter(cfg: InpaintTrainConfig, progress: bool = True) -> dict:
    from unveil.models.neural import build_network, make_config
    from unveil.models.weights import save_weights
    from unveil.train.discriminator import PatchDiscriminator

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UnveilError("--device cuda asked for, but no CUDA device is available")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    mcfg = make_config(cfg.network, cfg.model)
    net = build_network(cfg.network, cfg.model).to(dev).train()
    guided = bool(getattr(net, "guided", False))
    ds = InpaintData(cfg.size, cfg.masks, "train", cfg.data, cfg.train_limit, progress, guided=guided,
                     guide_dropout=cfg.guide_dropout, guide_occluded=cfg.guide_occluded)
    if cfg.init and not (cfg.resume and (out / "last.safetensors").exists()):
        init_from(net, cfg.init)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    ema = EMA(net, cfg.ema)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    disc = opt_d = None
    others = {"ema": ema.model}
    if cfg.loss.adversarial > 0:
        disc = PatchDiscriminator().to(dev).train()
        opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.d_lr, betas=(0.5, 0.99))
        others.update(disc=disc, opt_d=opt_d)
    losses = Losses(cfg.loss).to(dev)
    step, ckpt = 0, out / "last.safetensors"
    if cfg.resume and ckpt.exists():
        step, _ = load_checkpoint(ckpt, net, opt, others)
    sched = scheduler(opt, cfg.steps, cfg.warmup, step)
    gen = torch.Generator().manual_seed(cfg.seed + step)
    loader = DataLoader(ds, batch_size=cfg.batch, shuffle=True, drop_last=True, num_workers=cfg.workers,
                        generator=gen, persistent_workers=cfg.workers > 0)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast(
        "cpu", enabled=False)
    params = sum(p.numel() for p in net.parameters())
    log = open(out / "log.jsonl", "a")
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.name}", unit="step",
               disable=not progress, file=sys.stderr)
    t0, hist, val = time.time(), [], {}
    first_loss = None
    while step < cfg.steps:
        for x, m, *guide in loader:
            x = x.to(dev).contiguous(memory_format=fmt)
            m = m.to(dev).contiguous(memory_format=fmt)
            guide = [g.to(dev).contiguous(memory_format=fmt) for g in guide]
            with amp:
                pred = net(x * (1 - m), m, *guide).float()
            comp = pred * m + x * (1 - m)
            d_fake = d_feats = None
            if disc is not None:
                # discriminator step on the composited output (detached) vs the real face
                with amp:
                    real_logits, real_feats = disc(torch.cat([x, m], 1))
                    fake_logits, _ = disc(torch.cat([comp.detach(), m], 1))
                dl = (L.d_hinge_loss if cfg.loss.gan == "hinge" else L.d_lsgan_loss)(
                    real_logits.float(), fake_logits.float())
                opt_d.zero_grad(set_to_none=True)
                dl.backward()
                opt_d.step()
                with amp:
                    d_fake, fake_feats = disc(torch.cat([comp, m], 1))
                d_fake = d_fake.float()
                d_feats = (fake_feats, real_feats)
            loss, parts = losses(pred, comp, x, m, d_fake, d_feats)
            if disc is not None:
                parts["d"] = float(dl.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            ema.update(net, step)
            hist.append(float(loss.detach()))
            first_loss = first_loss if first_loss is not None else hist[-1]
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(hist[-50:]):.4f}", **{k: f"{v:.3f}" for k, v in parts.items()})
            if step % 10 == 0 or step == cfg.steps:
                log.write(json.dumps({"step": step, "loss": float(np.mean(hist[-10:])), **parts}) + "\n")
            if cfg.val_every and (step % cfg.val_every == 0 or step == cfg.steps):
                val = validate(ema.model, cfg, step)
                log.write(json.dumps({"step": step, **{f"val_{k}": v for k, v in val.items()}}) + "\n")
                bar.write(f"step {step}: loss {np.mean(hist[-50:]):.4f}  val PSNR {val['psnr']:.2f} "
                          f"SSIM {val['ssim']:.4f} (EMA, {cfg.val_faces} val faces, {cfg.val_masks})")
            log.flush()
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                save_checkpoint(ckpt, net, opt, step, {"loss": float(np.mean(hist[-50:]))}, others)
            if step >= cfg.steps:
                break
    bar.close()
    log.close()
    elapsed = time.time() - t0
    meta = {"trained_steps": step, "batch": cfg.batch, "size": cfg.size, "val": val, "params": params,
            "train_config": asdict(cfg), "network": cfg.network,
            "hardware": (f"{torch.get_num_threads()} CPU threads" if dev.type == "cpu"
                         else torch.cuda.get_device_name(dev)),
            "seconds_this_run": round(elapsed, 1)}
    path = save_weights(out / f"{cfg.name}.safetensors", ema.model, mcfg, meta)
    return {"weights": str(path), "steps": step, "val": val, "params": params,
            "seconds": round(elapsed, 1), "first_loss": first_loss,
            "last_loss": float(np.mean(hist[-10:])) if hist else None}
