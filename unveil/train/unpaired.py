"""``unveil train cutface``: masked-face inpainting trained WITHOUT paired data (CUTFACE).

Two unpaired domains:

* **A** - real photos of people wearing masks (``real_masked/rmfd`` and
  ``real_masked/facemask_detection``), aligned by the face front end (MediaPipe key points ->
  unveil's template) with the mask found by SOCLNET and the pipeline's decision
  (:func:`unveil.pipeline.occluder_mask`, dilated): :func:`build_real_pool` caches them once in
  ``runs/cache/`` (git-ignored). A fixed set of photos (``holdout``) is kept aside for
  :func:`evaluate_real` and never trained on.
* **B** - clean UTKFace *train* faces (augmented).

A training step (CUT, Park et al. 2020, with the seed paper's attention generator):

* generator G fills the blanked hole of A photos; the composite (G's fill in the hole, the photo
  elsewhere) must fool an SN-PatchGAN D that sees clean B faces as real (LSGAN or hinge);
* multilayer PatchNCE between the A photo (its mask visible: CUT's x_A; ``nce_key: input`` uses the
  blanked input instead, visible positions only; ``nce_key: fill`` G's own input at every position,
  which with a prefilled generator is the pull-push fill of the hole) and G's raw output on the
  encoder layers ``nce_layers`` (256 patches per layer, temperature 0.07);
* CUT's identity term: PatchNCE between a B face with a synthetic hole blanked and G's output on it,
  patches from the visible region only and no gradient through the hole's pixels (the blank input
  would pull the fill flat); the holes: face-mask holes SOCLNET found on A photos, free-form
  strokes, boxes. With ``fake_b`` its composite is also shown to D as fake (still unpaired: no loss
  compares G's output with the face under the hole);
* optionally (``hole_gan``) D's fake terms only count patches that overlap the hole, the only
  place G can change.

No L1, SSIM or perceptual loss against any ground truth is used. The config extends the paired
one (:mod:`unveil.train.inpaint`), validation is the paired task's (the evaluation harness on
UTKFace *val* faces with face-mask holes: evaluation, not training), and everything else - EMA
(the weights that ship), checkpoint/resume, warm-up + cosine schedule, progress bar - is the
engine's (:mod:`unveil.train.engine`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from unveil.errors import UnveilError
from unveil.train import losses as L
from unveil.train.engine import batches, task
from unveil.train.inpaint import InpaintTask, InpaintTrainConfig
from unveil.train.inpaintdata import MaskMix, MaskSampler

from unveil.train.realpool import (RealPoolSpec, build_real_pool, holdout_split,  # noqa: F401 (re-exported)
                                   load_real_pool, real_photos)


# --- domain A: real masked photos, aligned, with their mask -----------------------------------

# --- config -----------------------------------------------------------------------------------

@dataclass
class UnpairedLoss:
    gan: float = 1.0  # adversarial weight (CUT: 1)
    nce: float = 1.0  # PatchNCE(x_A, G(x_A)) weight (CUT: 1)
    nce_idt: float = 1.0  # identity PatchNCE(y_B, G(y_B)) weight (CUT: 1, with nce_idt on)
    gan_mode: str = "lsgan"  # lsgan (CUT's default) or hinge
    nce_layers: list[int] = field(default_factory=lambda: [0, 4, 8, 12, 16])
    num_patches: int = 256
    tau: float = 0.07
    mlp_dim: int = 256
    hole_weight: float = 0.0  # sampling weight of a hole position relative to a visible one (0: never)
    #: keys of PatchNCE on A: "photo" (the real photo with its mask, as CUT translates it: it pulls
    #: the fill towards the mask's own structure), "input" (the blanked input, visible positions only:
    #: it pulls the fill towards a flat blank) or "fill" (the generator's input at every position:
    #: with ``model.prefill`` the pull-push fill of the hole, so the output keeps the colour and shading
    #: of the face around the hole while the GAN adds what a face has there)
    nce_key: str = "photo"
    fake_b: bool = True  # D also sees composites of B faces with synthetic holes as fake
    hole_gan: bool = True  # D's fake terms count only patches that overlap the hole


@dataclass
class UnpairedTrainConfig(InpaintTrainConfig):
    """The paired trainer's config with unpaired losses; ``batch`` A photos, ``batch_b`` B faces
    with holes (identity term) and ``batch`` clean B faces (D's reals) per step."""

    task: str = "unpaired"
    network: str = "cutface"
    loss: UnpairedLoss = field(default_factory=UnpairedLoss)
    masks: MaskMix = field(default_factory=lambda: MaskMix(weights={"freeform": 0.5, "box": 0.5}))
    batch: int = 4
    batch_b: int = 2
    real_masks: float = 0.7  # share of B holes that are face-mask holes found on A photos
    lr: float = 2e-4
    d_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    warmup: int = 100
    holdout: int = 100
    real_limit: int | None = None  # use only the first N real masked photos (a quick run)
    val_masks: str = "facemask"
    val_faces: int = 32

    def __post_init__(self):
        super().__post_init__()
        if self.loss.gan_mode not in ("lsgan", "hinge"):
            raise UnveilError(f"gan_mode must be lsgan or hinge, got '{self.loss.gan_mode}'")
        if self.loss.nce_key not in ("photo", "input", "fill"):
            raise UnveilError(f"nce_key must be photo, input or fill, got '{self.loss.nce_key}'")


# --- the adversarial pieces -------------------------------------------------------------------

def hole_patches(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """N x 1 x h x w float: 1 for discriminator patches that overlap the hole."""
    return (F.adaptive_avg_pool2d(mask, size) > 0.01).float()


def _weighted_mean(x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    if w is None:
        return x.mean()
    return (x * w).sum() / w.sum().clamp_min(1.0)


def d_loss(real: torch.Tensor, fake: torch.Tensor, mode: str, w: torch.Tensor | None = None) -> torch.Tensor:
    """Discriminator loss; ``w`` weights the fake patches (None: all)."""
    if mode == "hinge":
        return F.relu(1 - real).mean() + _weighted_mean(F.relu(1 + fake), w)
    return 0.5 * ((real - 1) ** 2).mean() + 0.5 * _weighted_mean(fake ** 2, w)


def g_loss(fake: torch.Tensor, mode: str, w: torch.Tensor | None = None) -> torch.Tensor:
    if mode == "hinge":
        return _weighted_mean(-fake, w)
    return 0.5 * _weighted_mean((fake - 1) ** 2, w)


# --- one step ---------------------------------------------------------------------------------

class UnpairedStep:
    """Generator G, PatchNCE head and discriminator D of one unpaired run, and the step that trains
    them (also used by the tests on a tiny network)."""

    def __init__(self, net: torch.nn.Module, cfg: UnpairedTrainConfig, disc: torch.nn.Module | None = None):
        from unveil.train.discriminator import PatchDiscriminator, PatchGANConfig

        self.net, self.cfg, w = net, cfg, cfg.loss
        chans = net.layer_channels
        self.layers = tuple(w.nce_layers)
        self.head = L.PatchSampleMLP([chans[i] for i in self.layers], w.mlp_dim, w.hole_weight)
        dev = next(net.parameters()).device
        self.head.to(dev)
        self.disc = (disc or PatchDiscriminator(PatchGANConfig(in_channels=3))).to(dev).train()
        self.opt = torch.optim.AdamW(list(net.parameters()) + list(self.head.parameters()), lr=cfg.lr,
                                     betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.opt_d = torch.optim.AdamW(self.disc.parameters(), lr=cfg.d_lr, betas=cfg.betas)

    def nce(self, feats_k: list[torch.Tensor], out: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        """PatchNCE between key maps ``feats_k`` (of an input, detached) and G's output ``out``
        (encoded as a whole image: all-zero mask); positions drawn by ``m`` (None: anywhere)."""
        feats_q = self.net.encode_features(out, torch.zeros_like(out[:, :1]), self.layers)
        w = self.cfg.loss
        return L.multilayer_patch_nce(self.head, feats_q, [f.detach() for f in feats_k],
                                      w.num_patches, w.tau, mask=m)

    def __call__(self, xa: torch.Tensor, ma: torch.Tensor, yb: torch.Tensor, xb: torch.Tensor | None = None,
                 mb: torch.Tensor | None = None) -> dict:
        """One step. ``xa``/``ma``: A photos in [-1, 1] and their holes; ``yb``: clean B faces (D's
        reals); ``xb``/``mb``: B faces and synthetic holes for the identity term (optional)."""
        w, mode = self.cfg.loss, self.cfg.loss.gan_mode
        ia = xa * (1 - ma)
        pred_a, fa = self.net(ia, ma, self.layers)
        comp_a = pred_a * ma + xa * (1 - ma)
        fakes, fmasks = [comp_a], [ma]
        pred_b = fb = ib = None
        if xb is not None and (w.nce_idt or w.fake_b):
            ib = xb * (1 - mb)
            pred_b, fb = self.net(ib, mb, self.layers)
            if w.fake_b:
                fakes.append(pred_b * mb + xb * (1 - mb))
                fmasks.append(mb)
        fake, fmask = torch.cat(fakes), torch.cat(fmasks)
        # discriminator: clean B faces real, composites fake
        real_logits, _ = self.disc(yb)
        fake_logits, _ = self.disc(fake.detach())
        wd = hole_patches(fmask, fake_logits.shape[2:]) if w.hole_gan else None
        dl = d_loss(real_logits, fake_logits, mode, wd)
        self.opt_d.zero_grad(set_to_none=True)
        dl.backward()
        self.opt_d.step()
        # generator (and the PatchNCE head)
        parts = {}
        self.disc.requires_grad_(False)
        g_logits, _ = self.disc(fake)
        self.disc.requires_grad_(True)
        parts["gan"] = w.gan * g_loss(g_logits, mode, wd)
        if w.nce:
            if w.nce_key == "photo":  # the A photo itself, its mask visible: every position has content
                with torch.no_grad():
                    keys = self.net.encode_features(xa, torch.zeros_like(ma), self.layers)
                parts["nce"] = w.nce * self.nce(keys, pred_a, None)
            else:  # G's own input: "input" only its visible positions, "fill" every position
                parts["nce"] = w.nce * self.nce(fa, pred_a, ma if w.nce_key == "input" else None)
        if w.nce_idt and pred_b is not None:
            # G should leave a B face as it is where it is visible; the fill is not pulled towards
            # the blank input (no gradient through the hole's pixels here)
            q = pred_b * (1 - mb) + pred_b.detach() * mb
            parts["nce_idt"] = w.nce_idt * self.nce(fb, q, mb)
        total = sum(parts.values())
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        out = {k: float(v.detach()) for k, v in parts.items()}
        out.update(g=float(total.detach()), d=float(dl.detach()))
        return out


# --- training ---------------------------------------------------------------------------------

class RealPoolData:
    """Batches of A (augmented: flip, small brightness/contrast change) from the cached pool, and
    face-mask holes from it for the B faces."""

    def __init__(self, pool: dict, size: int):
        self.images, self.masks = pool["train_images"], pool["train_masks"]
        if self.images.shape[1] != size:
            raise UnveilError(f"the real pool is at {self.images.shape[1]} px, training at {size}")

    def batch(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = rng.integers(0, len(self.images), n)
        imgs, ms = self.images[idx].astype(np.float32) / 127.5 - 1, self.masks[idx].astype(np.float32)
        flip = rng.random(n) < 0.5
        imgs[flip], ms[flip] = imgs[flip, :, ::-1], ms[flip, :, ::-1]
        imgs = imgs * rng.uniform(0.9, 1.1, (n, 1, 1, 1)) + rng.uniform(-0.08, 0.08, (n, 1, 1, 1))
        x = torch.from_numpy(np.clip(imgs, -1, 1)).permute(0, 3, 1, 2).float().contiguous()
        return x, torch.from_numpy(np.ascontiguousarray(ms))[:, None]

    def hole(self, rng: np.random.Generator) -> np.ndarray:
        m = self.masks[rng.integers(0, len(self.masks))]
        return m[:, ::-1] if rng.random() < 0.5 else m


@task("unpaired")
class UnpairedTask(InpaintTask):
    """CUT-style unpaired training: G, its PatchNCE head and D in :class:`UnpairedStep`; the
    validation and the shipped config are the paired task's."""

    config_cls = UnpairedTrainConfig

    def build(self) -> None:
        from unveil.data.dataset import FaceDataset
        from unveil.models.registry import build_network

        cfg, dev, progress = self.cfg, self.ctx.device, self.ctx.progress
        self.pool = load_real_pool(RealPoolSpec(cfg.size, holdout=cfg.holdout, seed=0, limit=cfg.real_limit),
                                   cfg.data, progress)
        self.domain_a = RealPoolData(self.pool, cfg.size)
        self.holes = MaskSampler(cfg.masks, cfg.size, cfg.data, progress)
        self.faces = FaceDataset("utkface", "train", cfg.size, augment=True, data=cfg.data, limit=cfg.train_limit)
        self.model = build_network(cfg.network, cfg.model).to(dev).train()
        if not hasattr(self.model, "encode_features"):
            raise UnveilError(f"network '{cfg.network}' has no encode_features(): PatchNCE cannot tap it")
        self.st = UnpairedStep(self.model, cfg)  # it calls the network itself (no ctx.wrap yet)
        self.opt = self.st.opt
        self.state = {"head": self.st.head, "disc": self.st.disc, "opt_d": self.st.opt_d}

    def start(self, step: int) -> None:
        cfg = self.cfg
        self.rng = np.random.default_rng(self.ctx.seed(cfg.seed, step) if step or self.ctx.world > 1 else cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed + step)
        self.batches = batches(DataLoader(self.ctx.shard(self.faces), batch_size=cfg.batch + cfg.batch_b,
                                          shuffle=True, drop_last=True, num_workers=cfg.workers, generator=gen,
                                          persistent_workers=cfg.workers > 0))

    def step(self, step: int) -> dict[str, float]:
        cfg, dev, rng = self.cfg, self.ctx.device, self.rng
        yb_all = next(self.batches)["image"].to(dev) * 2 - 1
        yb, xb = yb_all[: cfg.batch], yb_all[cfg.batch:]
        mb = None
        if cfg.batch_b:
            mb = np.stack([self.domain_a.hole(rng) if rng.random() < cfg.real_masks else self.holes(rng)
                           for _ in range(cfg.batch_b)])
            mb = torch.from_numpy(mb.astype(np.float32))[:, None].to(dev)
        xa, ma = self.domain_a.batch(cfg.batch, rng)
        parts = self.st(xa.to(dev), ma.to(dev), yb, xb if cfg.batch_b else None, mb)
        return {"loss": parts["g"], **parts}

    def meta(self) -> dict:
        return {**super().meta(), "unpaired": True, "batch_b": self.cfg.batch_b,
                "real_pool": self.pool["counts"]}


# --- evaluation on held-out real photos -------------------------------------------------------

def _overlay(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = crop.astype(np.float32)
    out[mask] = 0.45 * out[mask] + 0.55 * np.array([255, 40, 40], np.float32)
    return (out + 0.5).astype(np.uint8)


def face_found(image: np.ndarray) -> dict:
    """Whether the MediaPipe front end finds a face with a complete face mesh, and whether dlib's
    HOG detector finds a face, on an aligned crop."""
    from unveil.face.identity import get_embedder
    from unveil.face import get_detector

    faces = get_detector().detect(image)
    return {"mesh": bool(any(f.mesh is not None for f in faces)),
            "dlib": get_embedder().detect(image) is not None}


def evaluate_real(model="cutface", compare: tuple[str, ...] = ("telea", "ifacenet"), out="runs/eval/real-masked",
                  sheet: int = 24, data=None, weights=None, progress: bool = True, limit: int | None = None,
                  holes_out=None) -> dict:
    """Restore the held-out real masked photos (aligned 256 px crops, SOCLNET's dilated mask) with
    ``model`` and the ``compare`` models; write ``sheet.png`` (photo crop, found mask, each model's
    output; ``sheet`` rows) and ``real.json`` with, per model, the share of restored crops on which
    the face mesh and dlib's HOG detector find a face, next to the share on the masked inputs.
    ``holes_out``: also write the held-out holes there as PNG masks (``000.png`` ...), for
    ``unveil eval --masks DIR``: paired metrics on test faces with the holes real masks leave."""
    from unveil import models
    from unveil.viz import image_grid
    from unveil.io import write_image, write_json

    pool = load_real_pool(RealPoolSpec(), data, progress)
    crops, holes, names = pool["hold_images"], pool["hold_masks"], pool["hold_names"]
    if limit:
        crops, holes, names = crops[:limit], holes[:limit], names[:limit]
    if not len(crops):
        raise UnveilError("no held-out real masked photo with a face and a found mask")
    if holes_out:
        write_holes(holes, holes_out)
    main = model if not isinstance(model, str) else models.load(
        model, **({"weights": weights} if weights else {}))
    name = getattr(main, "name", "model")
    runs = {name: main}
    for c in compare:
        if c != name:
            runs[c] = models.load(c)
    outputs = {k: [] for k in runs}
    found = {k: [] for k in ["input", *runs]}
    items = list(zip(crops, holes))
    for crop, hole in tqdm(items, desc="real masked photos", disable=not progress, file=sys.stderr):
        found["input"].append(face_found(crop))
        for k, mdl in runs.items():
            r = mdl.inpaint(crop, hole)
            outputs[k].append(r)
            found[k].append(face_found(r))
    shares = {k: {"mesh": float(np.mean([f["mesh"] for f in v])), "dlib": float(np.mean([f["dlib"] for f in v])),
                  "both": float(np.mean([f["mesh"] and f["dlib"] for f in v]))} for k, v in found.items()}
    out = Path(out)
    rows = [[crops[i], _overlay(crops[i], holes[i])] + [outputs[k][i] for k in runs]
            for i in range(min(sheet, len(crops)))]
    write_image(out / "sheet.png", image_grid(rows, ["photo", "found mask", *runs]))
    result = {"model": name, "photos": len(crops), "pool_counts": pool["counts"], "shares": shares,
              "per_photo": [{"name": str(n), "hole_share": float(h.mean()),
                             **{f"{k}_{d}": found[k][i][d] for k in found for d in ("mesh", "dlib")}}
                            for i, (n, h) in enumerate(zip(names, holes))],
              "note": "held-out real masked photos (never trained on), largest face aligned at 256 px, "
                      "SOCLNET mask (pipeline threshold, presence test, 6 px dilation); 'input' is the "
                      "masked photo crop itself"}
    write_json(out / "real.json", result)
    result["out_dir"] = str(out)
    return result


def write_holes(holes, folder) -> Path:
    """Write bool masks as ``000.png``, ``001.png``, ... (255 = hole) into ``folder``."""
    from unveil.io import write_image

    folder = Path(folder)
    for i, m in enumerate(holes):
        write_image(folder / f"{i:03d}.png", np.asarray(m, bool).astype(np.uint8) * 255)
    return folder


def real_table(result: dict) -> str:
    lines = ["| crops | face mesh found | dlib HOG found | both |", "|---|---|---|---|"]
    for k, s in result["shares"].items():
        label = "masked input" if k == "input" else k
        lines.append(f"| {label} | {s['mesh']:.1%} | {s['dlib']:.1%} | {s['both']:.1%} |")
    return "\n".join(lines)
