"""``unveil train gender``: train the gender classifier on bare and synthetically masked faces.

Data: UTKFace **train** faces with their gender label (in the file names: 0 male, 1 female). Every
batch is half clean faces, half faces wearing a synthetic occluder (``facemask_share`` of those
face masks, the rest glasses, sunglasses, scarves, objects and random shapes), and within each half
as many women as men. Occlusion synthesis costs 60-90 ms a sample, so the occluded faces come from
a pool made once (several processes, seeded) and cached in ``runs/cache/`` like the segmenter's
(:mod:`unveil.occlusion.segpool`); the clean faces are read once into memory. Both are augmented on
the fly (flip, small scale/shift/rotation, colour jitter).

BCE on one logit (each step's batch is drawn from ``(seed, step)``, so a resumed run sees the
batches an uninterrupted one would), validation accuracy on val faces clean and wearing a face
mask; the engine (:mod:`unveil.train.engine`) does the rest and ships the fp16 weights as
``<out>/gender.safetensors``.

:func:`evaluate_gender` measures a classifier on test faces, clean and wearing a synthetic face
mask (fixed seeds): ``unveil eval-gender`` prints it for the shipped weights (or ``--weights FILE``).
"""
from __future__ import annotations

import multiprocessing as mp
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from unveil.data.dataset import Augment
from unveil.data.faces import RECORD_ORDER
from unveil.errors import UnveilError
from unveil.models.tensors import to_tensor
from unveil.train.config import TrainConfig
from unveil.train.engine import Task, task

CACHE = Path("runs") / "cache"
#: Faces are synthesized at this size, then resized to the training size.
SYNTH_SIZE = 256
#: Seeds of the evaluation: which test faces (a seeded sample of the split) and their face masks.
EVAL_PICK_SEED = 0
EVAL_MASK_SEED = 2024


@dataclass
class GenderTrainConfig(TrainConfig):
    task: str = "gender"
    name: str = "gender"
    size: int = 96
    #: occluded training samples (cached pool of distinct train faces)
    pool: int = 6000
    #: share of face masks in the occluded pool; the rest is spread over the other occluder kinds
    facemask_share: float = 0.7
    #: clean train faces held in memory (None: every train face)
    clean: int | None = None
    #: val faces for validation (each clean and wearing a face mask)
    val: int = 300
    batch: int = 64
    steps: int = 1200
    lr: float = 3e-3
    weight_decay: float = 0.02
    warmup: int = 50
    ckpt_every: int = 100
    val_every: int = 300
    workers: int = 2  # processes that synthesize the pools (0: in this process)
    #: weight of the age loss (smooth L1 on the age code, :func:`unveil.models.gender.age_code`);
    #: above 0 the network gets its second output, the age (what LGFace's age channel reads)
    age: float = 0.0
    cache: str = str(CACHE)


# -- pools of occluded faces ----------------------------------------------------------------------
@dataclass(frozen=True)
class GenderPoolSpec:
    split: str = "train"
    n: int = 6000
    size: int = 96
    seed: int = 0
    facemask_share: float = 0.7
    #: "random": a seeded sample of the split; "all": the first n records in split order
    pick: str = "random"

    def path(self, root: Path = CACHE) -> Path:
        return Path(root) / (f"gender-{self.split}-{self.size}-{self.n}-m{round(self.facemask_share * 100)}"
                             f"-{self.pick}-s{self.seed}-{RECORD_ORDER}.npz")

    def plan(self, n_records: int) -> tuple[np.ndarray, np.ndarray]:
        """(record indices, occluder kind indices into KINDS), both seeded."""
        from unveil.occlusion.synth import KINDS

        rng = np.random.default_rng((self.seed, 11))
        n = min(self.n, n_records)
        recs = rng.choice(n_records, size=n, replace=False) if self.pick == "random" else np.arange(n)
        others = [i for i, k in enumerate(KINDS) if k != "facemask"]
        mask = rng.random(n) < self.facemask_share
        kinds = np.where(mask, KINDS.index("facemask"), rng.choice(others, size=n))
        return recs.astype(np.int64), kinds.astype(np.int64)


_worker: dict = {}


def _init(data, split):
    from unveil.data import face_records
    from unveil.occlusion.synth import Synthesizer

    _worker["synth"] = Synthesizer(data=data, split=split, size=SYNTH_SIZE)
    _worker["records"] = face_records("utkface", split, data)


def _make(args):
    """(job, occluded face at ``size`` or None when no occluder could be placed)."""
    j, rec, kind, seed, size = args
    from unveil.data import load_face
    from unveil.occlusion.synth import KINDS

    face = load_face(_worker["records"][rec], SYNTH_SIZE)
    try:
        s = _worker["synth"].sample(face, seed=(seed, int(rec)), kind=KINDS[kind])
    except UnveilError:
        return j, None
    return j, cv2.resize(s.occluded, (size, size), interpolation=cv2.INTER_AREA)


def build_pool(spec: GenderPoolSpec, data=None, workers: int = 2, progress: bool = True,
               root: str | Path | None = CACHE) -> dict:
    """The occluded-face pool of ``spec`` (made once, cached under ``root``; ``root=None``: no
    cache): ``images`` (uint8 N x S x S x 3), ``labels`` (gender), ``records`` (index into the
    split's records), ``kinds`` (index into ``kind_names``). Faces where no occluder could be
    placed are left out."""
    from unveil.data import face_records
    from unveil.occlusion.synth import KINDS

    path = spec.path(Path(root)) if root is not None else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    records = face_records("utkface", spec.split, data)
    if not records:
        raise UnveilError(f"no UTKFace {spec.split} faces")
    recs, kinds = spec.plan(len(records))
    jobs = [(j, int(r), int(k), spec.seed, spec.size) for j, (r, k) in enumerate(zip(recs, kinds))]
    images = np.zeros((len(jobs), spec.size, spec.size, 3), np.uint8)
    ok = np.zeros(len(jobs), bool)
    bar = dict(total=len(jobs), desc=f"synthesizing gender {spec.split} pool", disable=not progress,
               file=sys.stderr)
    if workers > 0:
        ctx = mp.get_context("spawn")  # MediaPipe graphs must not be shared across fork
        with ctx.Pool(workers, initializer=_init, initargs=(data, spec.split)) as pool:
            for j, img in tqdm(pool.imap_unordered(_make, jobs, chunksize=8), **bar):
                if img is not None:
                    images[j], ok[j] = img, True
    else:
        _init(data, spec.split)
        for job in tqdm(jobs, **bar):
            j, img = _make(job)
            if img is not None:
                images[j], ok[j] = img, True
    labels = np.array([records[r].gender if records[r].gender is not None else -1 for r in recs], np.int8)
    ok &= labels >= 0
    out = {"images": images[ok], "labels": labels[ok], "records": recs[ok],
           "kinds": kinds[ok].astype(np.int8), "kind_names": np.array(KINDS)}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(path)
    return out


def clean_faces(split: str, size: int, records_idx=None, limit: int | None = None, data=None,
                progress: bool = True, ages: bool = False) -> tuple[np.ndarray, ...]:
    """(uint8 N x S x S x 3 clean faces, gender labels) of a split (or of these record indices);
    ``ages``: a third item, the faces' age codes (NaN where the age is not known)."""
    from unveil.data import face_records, load_face

    records = face_records("utkface", split, data)
    idx = list(records_idx) if records_idx is not None else list(range(len(records)))[:limit]
    idx = [i for i in idx if records[i].gender is not None]
    if not idx:
        raise UnveilError(f"no labelled UTKFace {split} faces")
    images = np.stack([load_face(records[i], size) for i in tqdm(
        idx, desc=f"clean {split} faces", disable=not progress, file=sys.stderr)])
    labels = np.array([records[i].gender for i in idx], np.int8)
    return (images, labels, record_age_codes(records, idx)) if ages else (images, labels)


def record_age_codes(records, idx) -> np.ndarray:
    """Age codes of ``records[i]`` for i in ``idx`` (float32, NaN where the age is not known)."""
    from unveil.models.gender import age_code

    return np.array([np.nan if records[i].age is None else float(age_code(records[i].age)) for i in idx],
                    np.float32)


# -- training -------------------------------------------------------------------------------------
AUGMENT = Augment(flip=0.5, max_scale=0.1, max_shift=0.05, max_rotate_deg=8.0, brightness=0.15,
                  contrast=0.15, saturation=0.2)


def _batch(step: int, cfg: GenderTrainConfig, occ: dict, clean: tuple[np.ndarray, ...],
           by_class: dict, seed: tuple = ()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch ``step``: half occluded, half clean, each half with as many women as men; augmented;
    (images, gender labels, age codes: NaN where unknown). Drawn from ``(seed, step)`` only (and
    the rank, ``seed``, on several processes), so it is the same after a resume."""
    rng = np.random.default_rng((cfg.seed, 5, step) + tuple(seed))
    b = cfg.batch
    quarters = [b // 4 + (1 if i < b % 4 else 0) for i in range(4)]
    imgs, labels, ages = [], [], []
    for (src, g), q in zip([("occ", 0), ("occ", 1), ("clean", 0), ("clean", 1)], quarters):
        pick = rng.choice(by_class[src, g], size=q)
        pool = occ["images"] if src == "occ" else clean[0]
        age = occ.get("ages") if src == "occ" else (clean[2] if len(clean) > 2 else None)
        imgs += [AUGMENT(pool[i], rng) for i in pick]
        labels += [g] * q
        ages += [float(age[i]) if age is not None else float("nan") for i in pick]
    return (to_tensor(np.stack(imgs)), torch.tensor(labels, dtype=torch.float32),
            torch.tensor(ages, dtype=torch.float32))


def age_loss(pred: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Smooth L1 between predicted and true age codes, over the faces whose age is known (0 if none)."""
    known = torch.isfinite(codes)
    if not bool(known.any()):
        return pred.sum() * 0.0
    return F.smooth_l1_loss(pred[known], codes[known], beta=0.25)


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, device="cpu",
             batch: int = 100, flip: bool = True, ages: np.ndarray | None = None) -> dict:
    """Accuracy and mean BCE of a network on uint8 faces at its size (crop + mirror averaged);
    with ``ages`` (codes) and an age output, also the mean absolute age error in years."""
    from unveil.models.gender import code_age

    was = model.training
    model.eval()
    outs = []
    for i in range(0, len(images), batch):
        x = to_tensor(images[i:i + batch]).to(device)
        o = model.outputs(x)
        if flip:
            o = (o + model.outputs(x.flip(3))) / 2
        outs.append(o.float().cpu())
    model.train(was)
    o, y = torch.cat(outs), torch.from_numpy(np.asarray(labels, np.float32))
    lg = o[:, 0]
    r = {"acc": float(((lg > 0).float() == y).float().mean()),
         "bce": float(F.binary_cross_entropy_with_logits(lg, y)), "n": int(len(y))}
    if ages is not None and o.shape[1] > 1:
        a = np.asarray(ages, np.float32)
        known = np.isfinite(a)
        if known.any():
            r["age_mae"] = float(np.abs(code_age(o[:, 1].numpy()[known]) - code_age(a[known])).mean())
    return r


@task("gender")
class GenderTask(Task):
    """The gender classifier on half clean, half occluded faces, as many women as men."""

    config_cls = GenderTrainConfig

    def build(self) -> None:
        from unveil.models.registry import build_network

        cfg, progress = self.cfg, self.ctx.progress
        if cfg.batch < 4:
            raise UnveilError(f"--batch must be at least 4 (two classes x clean/occluded), got {cfg.batch}")
        root = Path(cfg.cache)
        from unveil.data import face_records

        self.occ = build_pool(GenderPoolSpec("train", cfg.pool, cfg.size, cfg.seed, cfg.facemask_share), cfg.data,
                              cfg.workers, progress, root)
        self.clean = clean_faces("train", cfg.size, limit=cfg.clean, data=cfg.data, progress=progress, ages=True)
        self.val_occ = build_pool(GenderPoolSpec("val", cfg.val, cfg.size, cfg.seed, 1.0), cfg.data, cfg.workers,
                                  progress, root)
        self.val_clean = clean_faces("val", cfg.size, records_idx=self.val_occ["records"], data=cfg.data,
                                     progress=False, ages=True)
        self.occ["ages"] = record_age_codes(face_records("utkface", "train", cfg.data), self.occ["records"])
        self.val_occ["ages"] = self.val_clean[2]
        self.by_class = {(src, g): np.flatnonzero(lab == g)
                         for src, lab in (("occ", self.occ["labels"]), ("clean", self.clean[1])) for g in (0, 1)}
        empty = [k for k, v in self.by_class.items() if not len(v)]
        if empty:
            raise UnveilError(f"no training faces for {empty}: make the pools larger")
        self.fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model = build_network("gender", {**cfg.model, "size": cfg.size, "age": cfg.age > 0}).to(self.ctx.device, memory_format=self.fmt).train()
        self.net = self.ctx.wrap(self.model)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                     weight_decay=cfg.weight_decay)

    def step(self, step: int) -> dict[str, float]:
        x, y, a = _batch(step, self.cfg, self.occ, self.clean, self.by_class, self.ctx.seed())
        x, y, a = x.to(self.ctx.device).contiguous(memory_format=self.fmt), y.to(self.ctx.device), a.to(self.ctx.device)
        out = self.net.outputs(x)
        logits = out[:, 0]
        loss = bce = F.binary_cross_entropy_with_logits(logits, y)
        logs = {}
        if self.cfg.age > 0:
            la = age_loss(out[:, 1], a)
            loss = bce + self.cfg.age * la
            logs = {"bce": float(bce.detach()), "age": float(la.detach())}
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach()), "acc": float(((logits > 0).float() == y).float().mean()), **logs}

    def validate(self, model: torch.nn.Module, step: int) -> dict:
        vc = self.val_clean
        return {"clean": accuracy(model, vc[0], vc[1], self.ctx.device, ages=vc[2]),
                "masked": accuracy(model, self.val_occ["images"], self.val_occ["labels"], self.ctx.device,
                                   ages=self.val_occ["ages"])}

    def val_line(self, val: dict) -> str:
        line = f"acc clean {val['clean']['acc']:.4f} masked {val['masked']['acc']:.4f}"
        if "age_mae" in val["clean"]:
            line += f"; age error clean {val['clean']['age_mae']:.1f} y masked {val['masked'].get('age_mae', 0):.1f} y"
        return line

    def meta(self) -> dict:
        return {"network": "gender", "train_pool": {"occluded": len(self.occ["images"]),
                                                    "clean": len(self.clean[0])}}


# -- evaluation -----------------------------------------------------------------------------------
def evaluate_gender(n: int = 200, split: str = "test", weights: str | Path | None = None,
                    classifier=None, data=None, workers: int = 0, progress: bool = False) -> dict:
    """Accuracy of a gender classifier on ``n`` UTKFace faces of ``split`` (a fixed, seeded sample:
    the split files are sorted by age), clean and wearing a synthetic face mask (fixed seeds).

    ``classifier``: an object with ``predict`` (default: a :class:`GenderClassifier` of ``weights``,
    the shipped file when None). Faces where no mask could be placed count only in ``clean``.
    Returns ``{"n", "clean": {"acc", "n", "female_acc", "male_acc"}, "masked": {...}, "seconds"}``."""
    from unveil.data import face_records
    from unveil.models.gender import GenderClassifier

    t0 = time.time()
    if classifier is None:
        classifier = GenderClassifier(weights)
    total = len(face_records("utkface", split, data))
    if n < 1:
        raise UnveilError(f"n must be at least 1, got {n}")
    # a seeded permutation of the split: n=64 and n=200 share their first 64 faces, and each face
    # gets the same mask (seeded by the face's record index) whatever n is
    pick = np.random.default_rng(EVAL_PICK_SEED).permutation(total)[:n]
    masked = _eval_masked(split, pick, data, workers, progress)
    clean, labels, ages = clean_faces(split, SYNTH_SIZE, records_idx=pick, data=data, progress=False, ages=True)
    with_age = bool(getattr(classifier, "has_age", False))

    def score(images, y, a) -> dict:
        if with_age:
            p, code = classifier.predict_both(images)
        else:
            p, code = classifier.predict(images), None
        right = (p >= 0.5) == (y == 1)
        r = {"acc": round(float(right.mean()), 4), "n": int(len(y)),
             "female_acc": round(float(right[y == 1].mean()), 4) if (y == 1).any() else None,
             "male_acc": round(float(right[y == 0].mean()), 4) if (y == 0).any() else None}
        known = np.isfinite(a)
        if code is not None and known.any():
            from unveil.models.gender import code_age

            r["age_mae"] = round(float(np.abs(code_age(code[known]) - code_age(a[known])).mean()), 2)
        return r

    return {"n": int(len(pick)), "split": split, "clean": score(clean, labels, ages),
            "masked": score(masked["images"], masked["labels"], masked["ages"]),
            "seconds": round(time.time() - t0, 1)}


def _eval_masked(split: str, pick: np.ndarray, data, workers: int, progress: bool) -> dict:
    """Face-masked versions of the picked faces (seed ``EVAL_MASK_SEED``), at ``SYNTH_SIZE``; not
    cached (about 80 ms a face)."""
    from unveil.data import face_records
    from unveil.occlusion.synth import KINDS

    records = face_records("utkface", split, data)
    k = KINDS.index("facemask")
    jobs = [(j, int(r), k, EVAL_MASK_SEED, SYNTH_SIZE) for j, r in enumerate(pick)]
    images = np.zeros((len(jobs), SYNTH_SIZE, SYNTH_SIZE, 3), np.uint8)
    ok = np.zeros(len(jobs), bool)
    if workers > 0:
        with mp.get_context("spawn").Pool(workers, initializer=_init, initargs=(data, split)) as pool:
            results = list(pool.imap_unordered(_make, jobs, chunksize=4))
    else:
        _init(data, split)
        results = [_make(j) for j in tqdm(jobs, desc="masking test faces", disable=not progress,
                                         file=sys.stderr)]
    for j, img in results:
        if img is not None:
            images[j], ok[j] = img, True
    labels = np.array([records[r].gender for r in pick], np.int8)
    return {"images": images[ok], "labels": labels[ok], "ages": record_age_codes(records, pick)[ok]}


def format_eval(r: dict) -> str:
    def pct(v):
        return "-" if v is None else f"{v * 100:.1f} %"

    def one(s):
        age = f", age error {s['age_mae']:.1f} years" if "age_mae" in s else ""
        return (f"{pct(s['acc'])} of {s['n']} (women {pct(s['female_acc'])}, men {pct(s['male_acc'])}{age})"
                if s["n"] else "no faces")

    return (f"gender accuracy on {r['n']} UTKFace {r['split']} faces: clean {one(r['clean'])}; "
            f"wearing a synthetic face mask {one(r['masked'])}  [{r['seconds']} s]")
