"""Training data for occluder segmentation: pools of synthetic occlusions, augmented on the fly.

Synthesis with face detection costs 60-90 ms a sample, too slow to feed CPU training live, so a
pool of samples is made once with the synthesizer (every occluder kind, seeded, several processes)
and cached in ``runs/cache/`` (git-ignored); training then draws from the pool with cheap random
augmentation (flip, colour jitter, scale/shift). The test pool comes from the UTKFace *test* split
and the ``object_test`` assets, the training pool from the *train* split and ``object_train``.
"""
from __future__ import annotations

import multiprocessing as mp
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from unveil.data.faces import RECORD_ORDER
from unveil.errors import UnveilError

CACHE = Path("runs") / "cache"


@dataclass(frozen=True)
class PoolSpec:
    split: str = "train"
    n: int = 4000
    size: int = 128
    seed: int = 0
    synth_size: int = 256  # faces are synthesized at this size, then resized to ``size``
    #: clean faces (no occluder, empty mask): negatives, so a bare face is not "found" occluded
    clean: bool = False
    #: face masks drawn with ear loops / straps, and recoloured (see ``Synthesizer``); 0 keeps the
    #: pool exactly as it was before these existed
    loops: float = 0.0
    recolor: float = 0.0

    def path(self, root: Path = CACHE) -> Path:
        tag = "clean-" if self.clean else ""
        extra = (f"-l{self.loops:g}" if self.loops else "") + (f"-r{self.recolor:g}" if self.recolor else "")
        return Path(root) / f"seg-{tag}{self.split}-{self.size}-{self.n}-s{self.seed}{extra}-{RECORD_ORDER}.npz"


_worker = {}


def _init(data, split, synth_size, loops=0.0, recolor=0.0):
    from unveil.data import face_records
    from unveil.occlusion.synth import Synthesizer

    _worker["synth"] = Synthesizer(data=data, split=split, size=synth_size, loops=loops, recolor=recolor)
    _worker["records"] = face_records("utkface", split, data)


def _make(args):
    i, seed, size, kinds = args
    from unveil.data import load_face

    synth, records = _worker["synth"], _worker["records"]
    face = load_face(records[i % len(records)], synth.size)
    try:
        s = synth.sample(face, seed=(seed, i), kind=kinds[i % len(kinds)])
    except UnveilError:
        return i, None
    img = cv2.resize(s.occluded, (size, size), interpolation=cv2.INTER_AREA)
    m = cv2.resize(s.mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) >= 0.5
    return i, (img, m, s.kind)


def build_pool(spec: PoolSpec, data=None, workers: int = 2, progress: bool = True,
               root: Path = CACHE) -> Path:
    """Make (or reuse) the cached pool for ``spec``; returns its path."""
    from unveil.occlusion.synth import KINDS

    path = spec.path(root)
    if path.exists():
        return path
    if spec.clean:
        return _build_clean_pool(spec, data, progress, path)
    images = np.zeros((spec.n, spec.size, spec.size, 3), np.uint8)
    masks = np.zeros((spec.n, spec.size, spec.size), bool)
    kinds = np.full(spec.n, -1, np.int8)
    jobs = [(i, spec.seed, spec.size, KINDS) for i in range(spec.n)]
    ctx = mp.get_context("spawn")  # MediaPipe graphs must not be shared across fork
    with ctx.Pool(workers, initializer=_init, initargs=(data, spec.split, spec.synth_size, spec.loops, spec.recolor)) as pool:
        for i, r in tqdm(pool.imap_unordered(_make, jobs, chunksize=8), total=spec.n,
                         desc=f"synthesizing {spec.split} pool", disable=not progress, file=sys.stderr):
            if r is not None:
                images[i], masks[i], kinds[i] = r[0], r[1], KINDS.index(r[2])
    ok = kinds >= 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=images[ok], masks=masks[ok], kinds=kinds[ok], kind_names=np.array(KINDS))
    tmp.replace(path)
    return path


CLEAN = "clean"


def _build_clean_pool(spec: PoolSpec, data, progress: bool, path: Path) -> Path:
    """Clean faces of the split (every k-th record, seeded offset) with empty masks."""
    from unveil.data import face_records, load_face
    from unveil.occlusion.synth import KINDS

    records = face_records("utkface", spec.split, data)
    if not records:
        raise UnveilError(f"no UTKFace {spec.split} faces for the clean pool")
    rng = np.random.default_rng((spec.seed, 7))
    pick = rng.choice(len(records), size=min(spec.n, len(records)), replace=False)
    images = np.stack([cv2.resize(load_face(records[i], spec.synth_size), (spec.size, spec.size),
                                  interpolation=cv2.INTER_AREA)
                       for i in tqdm(pick, desc=f"clean {spec.split} pool", disable=not progress,
                                     file=sys.stderr)])
    masks = np.zeros(images.shape[:3], bool)
    kinds = np.full(len(images), len(KINDS), np.int8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=images, masks=masks, kinds=kinds, kind_names=np.array(list(KINDS) + [CLEAN]))
    tmp.replace(path)
    return path


def merge_pools(a: dict, b: dict) -> dict:
    """One pool from two (kind names of the longer list; kinds index into it)."""
    names = a["kind_names"] if len(a["kind_names"]) >= len(b["kind_names"]) else b["kind_names"]
    return {"images": np.concatenate([a["images"], b["images"]]),
            "masks": np.concatenate([a["masks"], b["masks"]]),
            "kinds": np.concatenate([a["kinds"], b["kinds"]]), "kind_names": names}


def load_pool(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


class SegPool(Dataset):
    """Samples of a pool as (image float 3xSxS in [-1, 1], mask float 1xSxS), augmented if asked.
    Augmentation draws from torch's RNG (seeded per DataLoader worker)."""

    def __init__(self, pool: dict, augment: bool = False, zoom_out: float = 0.0):
        self.images, self.masks, self.kinds = pool["images"], pool["masks"], pool["kinds"]
        self.augment = augment
        #: share of samples shown zoomed out (face 0.55-0.9 of its size, moved up to 15 % up), the
        #: border reflected in image and mask alike: the framing of the pipeline's wide crop
        self.zoom_out = zoom_out

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        img, m = self.images[i], self.masks[i].astype(np.float32)
        if self.augment:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
            if rng.random() < 0.5:
                img, m = img[:, ::-1], m[:, ::-1]
            s = img.shape[0]
            wide = self.zoom_out and rng.random() < self.zoom_out
            a = cv2.getRotationMatrix2D((s / 2, s / 2), rng.uniform(-10, 10),
                                        rng.uniform(0.55, 0.9) if wide else rng.uniform(0.9, 1.15))
            a[:, 2] += rng.uniform(-0.06, 0.06, 2) * s
            if wide:
                a[1, 2] -= rng.uniform(0.0, 0.15) * s
            img = cv2.warpAffine(np.ascontiguousarray(img), a, (s, s), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT101)
            m = cv2.warpAffine(np.ascontiguousarray(m), a, (s, s), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT101)
            x = img.astype(np.float32) / 255
            x = x * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1)
            x = x * (1 + rng.uniform(-0.1, 0.1, 3)).astype(np.float32)
            img = np.clip(x, 0, 1)
            m = (m >= 0.5).astype(np.float32)
        else:
            img = img.astype(np.float32) / 255
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1) * 2 - 1
        return t, torch.from_numpy(np.ascontiguousarray(m))[None], int(self.kinds[i])
