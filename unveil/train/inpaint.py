"""The inpainting task of the training engine (``unveil train ifacenet|ifacenet-single|in2|lgface``).

A run is an :class:`InpaintTrainConfig` (read by :func:`unveil.train.engine.load_config` from the
shipped per-model YAML in ``unveil/train/configs/``, overridden by ``--set``). It trains the
registered network ``network`` on UTKFace train faces with holes from
:class:`~unveil.train.inpaintdata.MaskMix`:

* losses as weighted pieces from :mod:`unveil.train.losses`: hole/valid L1, SSIM, VGG16 perceptual
  and style, total variation, and - when ``adversarial > 0`` - an SN-PatchGAN discriminator with a
  hinge (or LSGAN) loss and feature matching;
* AdamW on the generator (warm-up + cosine, from the engine), the discriminator at ``d_lr``;
* validation with the evaluation harness on UTKFace *val* faces (PSNR/SSIM per bin, and a PNG grid
  of samples in ``<out>/val/step-N/``).

Everything else (seeding, EMA, resume, the progress bar, logs, checkpoints, the shipped weights) is
the engine's (:mod:`unveil.train.engine`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from unveil.errors import UnveilError
from unveil.train import losses as L
from unveil.train.config import TrainConfig
from unveil.train.engine import Task, batches, init_path, task
from unveil.train.inpaintdata import InpaintData, MaskMix, face_weights


@dataclass
class LossWeights:
    l1_hole: float = 6.0
    l1_valid: float = 1.0
    ssim: float = 1.0
    perceptual: float = 0.0  # on `features`' taps
    style: float = 0.0
    features: str = "vgg"  # perceptual/style net: vgg (VGG16 relu1_2..relu3_3) or alex (AlexNet, LPIPS-style)
    tv: float = 0.0
    detail: float = 0.0  # local high-frequency energy in the hole matched to the truth's
    adversarial: float = 0.0  # > 0 turns the SN-PatchGAN discriminator on
    feature_matching: float = 0.0
    gan: str = "hinge"  # hinge or lsgan


@dataclass
class InpaintTrainConfig(TrainConfig):
    task: str = "inpaint"
    network: str = "ifacenet"
    steps: int = 2000
    d_lr: float = 4e-4
    betas: tuple[float, float] = (0.9, 0.99)
    warmup: int = 200
    ema: float = 0.999
    loss: LossWeights = field(default_factory=LossWeights)
    masks: MaskMix = field(default_factory=MaskMix)
    train_limit: int | None = None  # use only the first N train faces
    guide_dropout: float = 0.1  # guided networks: drop landmarks / gender code this often
    #: guided networks: share of training guides whose landmarks are predicted on the occluded face
    #: (the hole greyed out, as at inference) instead of the clean face's cached mesh
    guide_occluded: float = 0.0
    #: guided networks with an age channel: noise added to the labelled age code (20 years a unit)
    age_noise: float = 0.3
    #: guided networks: draw turned heads (|yaw| of the cached mesh at least ``TURNED``, 12 % of
    #: the train faces) this many times as often as other faces (1: uniform). Real masked photos
    #: of turned heads get a frontal mouth (docs/benchmarks.md); UTKFace has few of them.
    turned_weight: float = 1.0
    #: guided networks: flip, scale, rotate and shift the faces as for unguided ones, the cached mesh
    #: moved with them (otherwise photometric augmentation only, the recipe of every shipped LGFace
    #: stage): twice the faces by mirroring, and faces off the template's alignment, as the key
    #: points found on a masked face at inference put them
    guided_geometry: bool = False
    val_faces: int = 48
    val_masks: str = "nvidia"
    #: train a refiner (``network: refiner``) after this registered inpainter, whose shipped weights
    #: make the coarse fill (frozen; at its own training size, upsampled to ``size``)
    coarse: str | None = None
    #: the coarse inpainter's weights instead of its shipped ones (a run's file, to train a refiner
    #: for candidate weights before they ship)
    coarse_weights: str | None = None
    #: train on square windows of this side around the hole (0: the whole crop)
    patch: int = 0


class Losses(torch.nn.Module):
    """The weighted generator losses of a config; returns (total, {name: value})."""

    def __init__(self, w: LossWeights):
        super().__init__()
        self.w = w
        if w.features not in ("vgg", "alex"):
            raise UnveilError(f"loss.features must be 'vgg' or 'alex', not '{w.features}'")
        self.feat = L.FeatureLoss(w.features) if (w.perceptual or w.style) else None

    def forward(self, pred, comp, target, mask, d_fake=None, d_feats=None) -> tuple[torch.Tensor, dict]:
        w, parts = self.w, {}
        parts["l1"] = L.masked_l1(pred, target, mask, w.l1_hole, w.l1_valid)
        if w.ssim:
            parts["ssim"] = w.ssim * L.ssim_loss(comp, target)
        if self.feat is not None:
            perc, style = self.feat(comp, target)
            if w.perceptual:
                parts["perc"] = w.perceptual * perc
            if w.style:
                parts["style"] = w.style * style
        if w.tv:
            parts["tv"] = w.tv * L.tv_loss(comp)
        if w.detail:
            parts["detail"] = w.detail * L.detail_energy_loss(comp, target, mask)
        if d_fake is not None:
            g = L.g_hinge_loss if w.gan == "hinge" else L.g_lsgan_loss
            parts["adv"] = w.adversarial * g(d_fake)
            if w.feature_matching and d_feats is not None:
                parts["fm"] = w.feature_matching * L.feature_matching_loss(*d_feats)
        total = sum(parts.values())
        return total, {k: float(v.detach()) for k, v in parts.items()}


def validate(model: torch.nn.Module, cfg: InpaintTrainConfig, step: int, progress: bool = False,
             coarse=None) -> dict:
    """PSNR/SSIM (and the detail ratio) of ``model`` on UTKFace val faces, through the evaluation
    harness. A refiner is measured inside ``coarse``, the loaded inpainter it refines."""
    from unveil.eval.harness import MID_LABEL, EvalConfig, run_eval

    from unveil.models.registry import runs

    if coarse is not None:
        inp = coarse
        inp.refiner, inp.name = model, cfg.name
    else:
        inp = runs(cfg.network).factory.from_module(model, cfg.size, name=cfg.name)
    ecfg = EvalConfig(model=cfg.name, faces="utkface", split="val", masks=cfg.val_masks, size=cfg.size,
                      limit=cfg.val_faces, lpips=False, identity=False, realism=False, grid=6, data=cfg.data,
                      out=str(Path(cfg.out) / "val" / f"step-{step}"))
    r = run_eval(ecfg, progress=progress, model=inp)
    s = r["summary"].get(MID_LABEL) or r["summary"]["all"]
    out = {"psnr": s["psnr"], "ssim": s["ssim"], "psnr_hole": s["psnr_hole"], "l1": s["l1"]}
    if "detail" in s:
        out["detail"] = s["detail"]
    return out


def windows(side: int, *maps: torch.Tensor) -> list[torch.Tensor]:
    """Square windows of ``side`` px cut from each sample of every map, centred on a random hole
    pixel of the sample's mask (the second map), kept inside the image."""
    m = maps[1]
    h, w = m.shape[2:]
    side = min(side, h, w)
    cuts = []
    for i in range(m.shape[0]):
        ys, xs = torch.nonzero(m[i, 0] > 0.5, as_tuple=True)
        k = int(torch.randint(0, len(ys), ())) if len(ys) else 0
        cy, cx = (int(ys[k]), int(xs[k])) if len(ys) else (h // 2, w // 2)
        y0 = min(max(cy - side // 2, 0), h - side)
        x0 = min(max(cx - side // 2, 0), w - side)
        cuts.append((y0, x0))
    return [torch.stack([t[i, :, y0:y0 + side, x0:x0 + side] for i, (y0, x0) in enumerate(cuts)])
            for t in maps]


def init_from(net: torch.nn.Module, source: str) -> dict:
    """Copy weights into ``net`` from ``source`` ("shipped:NAME" or a safetensors file of ours,
    see :func:`unveil.train.engine.init_path`):
    same-shape tensors as they are; a tensor larger than the source's in its channel dimensions
    (a network widened: more inputs, dim 1, or more outputs, dim 0) gets the source's values in its
    leading corner, zeros where an old output would read a new input (new inputs start ignored),
    and keeps its fresh initialisation for the new outputs, so the widened network computes what
    the source did and the new channels can still learn. Returns counts."""
    from safetensors.torch import load_file

    from unveil.models.weights import read_metadata

    path = init_path(source)

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
            elif t.dim() == v.dim() and t.dim() in (1, 4) and t.shape[2:] == v.shape[2:] \
                    and all(a <= b for a, b in zip(t.shape[:2], v.shape[:2])):
                if t.dim() == 4:
                    v[:t.shape[0], t.shape[1]:] = 0
                    v[:t.shape[0], :t.shape[1]] = t
                else:
                    v[:t.shape[0]] = t
                widened += 1
    if not copied:
        raise UnveilError(f"{path}: no tensor fits the network '{type(net).__name__}'")
    return {"copied": copied, "widened": widened, "of": len(own)}


@task("inpaint")
class InpaintTask(Task):
    """Paired inpainting: a generator (and optionally an SN-PatchGAN) on faces with holes."""

    config_cls = InpaintTrainConfig
    #: a refiner's coarse inpainter (``coarse:``), loaded once in :meth:`build`; None otherwise
    coarse = None

    def build(self) -> None:
        from unveil.models.registry import build_network
        from unveil.train.discriminator import PatchDiscriminator

        cfg, dev = self.cfg, self.ctx.device
        net = build_network(cfg.network, cfg.model).to(dev).train()
        if cfg.coarse:
            from unveil.models.registry import load

            extra = {}
            if cfg.coarse_weights:
                if not Path(cfg.coarse_weights).is_file():
                    raise UnveilError(f"coarse weights not found: {cfg.coarse_weights}")
                extra["weights"] = str(cfg.coarse_weights)
            self.coarse = load(cfg.coarse, device=str(dev), backend="torch", refine=False, **extra)
            self.coarse.model.requires_grad_(False)
        guider = self.coarse.model if self.coarse is not None else net
        guided = getattr(guider, "guided", False)
        self.data = InpaintData(cfg.size, cfg.masks, "train", cfg.data, cfg.train_limit, self.ctx.progress,
                                guided=bool(guided), guide_dropout=cfg.guide_dropout,
                                guide_occluded=cfg.guide_occluded,
                                guide_channels=int(getattr(getattr(guider, "cfg", None), "guide_channels", 3)),
                                age_noise=cfg.age_noise, guided_geometry=cfg.guided_geometry)
        if cfg.init and not (cfg.resume and (Path(cfg.out) / "last.safetensors").exists()):
            init_from(net, cfg.init)
        self.fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model = net.to(memory_format=self.fmt)
        self.opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.disc = self.opt_d = None
        if cfg.loss.adversarial > 0:
            self.disc = PatchDiscriminator().to(dev).train()
            self.opt_d = torch.optim.AdamW(self.disc.parameters(), lr=cfg.d_lr, betas=(0.5, 0.99))
            self.state = {"disc": self.disc, "opt_d": self.opt_d}
        self.losses = Losses(cfg.loss).to(dev)
        self.net = self.ctx.wrap(self.model)

    def start(self, step: int) -> None:
        cfg = self.cfg
        gen = torch.Generator().manual_seed(cfg.seed + step)
        items = self.ctx.shard(self.data)
        order = {"shuffle": True}
        if cfg.turned_weight != 1.0:
            from torch.utils.data import WeightedRandomSampler

            if not getattr(self.data, "guided", False):
                raise UnveilError("turned_weight needs a guided network (its faces' cached meshes)")
            w = face_weights(self.data.points, cfg.turned_weight)
            if items is not self.data:  # this rank's share
                w = w[list(items.indices)]
            order = {"sampler": WeightedRandomSampler(torch.from_numpy(w), len(w), replacement=True,
                                                      generator=gen)}
        self.batches = batches(DataLoader(items, batch_size=cfg.batch, drop_last=True, num_workers=cfg.workers,
                                          generator=gen, persistent_workers=cfg.workers > 0, **order))

    def step(self, step: int) -> dict[str, float]:
        cfg, dev, fmt = self.cfg, self.ctx.device, self.fmt
        x, m, *guide = next(self.batches)
        x = x.to(dev).contiguous(memory_format=fmt)
        m = m.to(dev).contiguous(memory_format=fmt)
        guide = [g.to(dev).contiguous(memory_format=fmt) for g in guide]
        if self.coarse is not None:  # a refiner: it gets the coarse fill, composited
            y = self.coarse_fill(x, m, guide)
            if cfg.patch:
                x, m, y = windows(cfg.patch, x, m, y)
            with self.ctx.autocast():
                pred = self.net(y, m).float()
        else:
            with self.ctx.autocast():
                pred = self.net(x * (1 - m), m, *guide).float()
        comp = pred * m + x * (1 - m)
        d_fake = d_feats = None
        disc = self.disc
        if disc is not None:
            # discriminator step on the composited output (detached) vs the real face
            with self.ctx.autocast():
                real_logits, real_feats = disc(torch.cat([x, m], 1))
                fake_logits, _ = disc(torch.cat([comp.detach(), m], 1))
            dl = (L.d_hinge_loss if cfg.loss.gan == "hinge" else L.d_lsgan_loss)(
                real_logits.float(), fake_logits.float())
            self.opt_d.zero_grad(set_to_none=True)
            dl.backward()
            self.opt_d.step()
            with self.ctx.autocast():
                d_fake, fake_feats = disc(torch.cat([comp, m], 1))
            d_fake = d_fake.float()
            d_feats = (fake_feats, real_feats)
        loss, parts = self.losses(pred, comp, x, m, d_fake, d_feats)
        if disc is not None:
            parts["d"] = float(dl.detach())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach()), **parts}

    @torch.no_grad()
    def coarse_fill(self, x: torch.Tensor, m: torch.Tensor, guide: list[torch.Tensor]) -> torch.Tensor:
        """The frozen coarse network's fill at its working size, upsampled and composited, as
        :class:`unveil.models.neural.NeuralInpainter` makes it at inference."""
        size = tuple(x.shape[2:])
        s = self.coarse.work_size or min(size)
        if min(size) > s:
            xs = F.interpolate(x, size=(s, s), mode="area")
            ms = (F.interpolate(m, size=(s, s), mode="area") > 1e-3).float()
            gs = [F.interpolate(g, size=(s, s), mode="area") for g in guide]
        else:
            xs, ms, gs = x, m, guide
        y = self.coarse._forward(xs * (1 - ms), ms, size, *gs).float().clamp(-1, 1)
        return y * m + x * (1 - m)

    def validate(self, model: torch.nn.Module, step: int) -> dict:
        return validate(model, self.cfg, step, coarse=self.coarse)

    def val_line(self, val: dict) -> str:
        c = self.cfg
        return f"PSNR {val['psnr']:.2f} SSIM {val['ssim']:.4f} (EMA, {c.val_faces} val faces, {c.val_masks})"

    def meta(self) -> dict:
        return {"network": self.cfg.network}
