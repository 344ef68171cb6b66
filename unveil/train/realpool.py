"""The real masked photos as training data, cached once in ``runs/cache/`` (git-ignored).

Every photo of ``real_masked/`` is aligned by the face front end (its largest face) and its mask is
found by SOCLNET through the pipeline (:class:`unveil.pipeline.Restorer`). A fixed, seeded set of
photos (:func:`unveil.data.faces.holdout_split`) is kept aside for contact sheets and
:func:`unveil.train.unpaired.evaluate_real`, and never trained on. Two kinds of pool:

* ``teacher=False`` (CUTFACE's domain A): the pipeline's hole as it is filled (thresholded, specks
  dropped, dilated);
* ``teacher=True`` (pseudo-labels for SOCLNET, ``unveil train soclnet --set real=...``): the
  undilated decision on the face crop, how sure it is (the share of the found mask whose
  probability is between 0.2 and 0.8), and the wide crop (chin, neck, ears) with the pipeline's
  wide hole: SOCLNET's finer look and hysteresis, only what connects to the face crop's mask (and
  how much it grew beyond that mask, ``wide_grow``: dark clothing joined to a dark mask). The
  pipeline's looks (the mirror, the finer look, the wide crop) are more than one pass of the
  network sees, so the labels teach the network what the whole pipeline finds on real photos.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from unveil.data.faces import holdout_split, real_photos
from unveil.errors import UnveilError
from unveil.occlusion.segpool import CACHE

#: probabilities between these count as unsure (``train_unsure`` of a teacher pool)
UNSURE = (0.2, 0.8)


@dataclass(frozen=True)
class RealPoolSpec:
    size: int = 128  # training crop side
    crop: int = 256  # the pipeline's working size: held-out crops are kept at this size
    holdout: int = 100  # photos kept aside for evaluation (drawn at random, seeded)
    seed: int = 0
    limit: int | None = None  # only the first N photos (a quick run)
    #: pseudo-labels for the segmenter: undilated holes, their sureness and the wide crops
    teacher: bool = False

    def path(self, root: Path = CACHE) -> Path:
        n = f"-n{self.limit}" if self.limit else ""
        t = "-teacher" if self.teacher else ""
        return Path(root) / f"real-masked-{self.size}-c{self.crop}-h{self.holdout}-s{self.seed}{n}{t}.npz"


#: structures an opening with a square this wide (crop pixels) removes count as thin (loops, straps)
THIN = 7


def _small(a: np.ndarray, s: int) -> np.ndarray:
    return cv2.resize(a, (s, s), interpolation=cv2.INTER_AREA)


def _label(mask: np.ndarray, s: int) -> np.ndarray:
    """A crop's bool mask as a segmenter's label at ``s`` px: occluder where most of a pixel is,
    and where a fifth of it is thin occluder (an ear loop two pixels wide at 256 px is not half of
    any 128 px pixel, and a label without it would teach the network that loops are background)."""
    mask = mask.astype(bool)
    opened = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((THIN, THIN), np.uint8))
    thin = mask & ~opened.astype(bool)
    return (_small(mask.astype(np.float32), s) >= 0.5) | (_small(thin.astype(np.float32), s) >= 0.2)


def build_real_pool(spec: RealPoolSpec = RealPoolSpec(), data=None, progress: bool = True,
                    root: Path = CACHE) -> Path:
    """Align every real masked photo's largest face, find its mask with SOCLNET (the pipeline's
    threshold, presence test and, unless ``teacher``, dilation at ``crop`` px) and cache: train
    crops at ``size`` px with their holes, held-out crops at ``crop`` px with their holes, and counts
    of photos without a face or without a found mask. Reused when the file exists."""
    from unveil.io import read_image
    from unveil.pipeline import Restorer, RestoreOptions

    path = spec.path(root)
    if path.exists():
        return path
    photos = real_photos(data)[:spec.limit]
    held = holdout_split(len(photos), spec.holdout, spec.seed)
    opts = RestoreOptions(work_size=spec.crop, faces="largest", **({"dilate": 0} if spec.teacher else {}))
    rest = Restorer(segmenter="soclnet", inpainter="telea", options=opts)
    keys = ["train_images", "train_masks", "train_names", "hold_images", "hold_masks", "hold_names"]
    if spec.teacher:
        keys += ["train_unsure", "wide_images", "wide_masks", "wide_grow"]
    parts = {k: [] for k in keys}
    counts = {"photos": len(photos), "no_face": 0, "no_mask": 0, "train": 0, "holdout": 0,
              "holdout_photos": int(held.sum())}
    s = spec.size
    for p, h in tqdm(list(zip(photos, held)), desc="aligning real masked photos", disable=not progress,
                     file=sys.stderr):
        try:
            image = read_image(p)
            _, crops = rest.analyze(image, faces="largest")
        except UnveilError:
            crops = []
        if not crops:
            counts["no_face"] += 1
            continue
        c = crops[0]
        if not c.hole.any():
            counts["no_mask"] += 1
            continue
        name = f"{p.parent.name}/{p.name}"
        if h:
            parts["hold_images"].append(c.aligned.crop)
            parts["hold_masks"].append(c.hole)
            parts["hold_names"].append(name)
            counts["holdout"] += 1
            continue
        parts["train_images"].append(_small(c.aligned.crop, s))
        parts["train_names"].append(name)
        counts["train"] += 1
        if not spec.teacher:
            # a training pixel is a hole if any part of it is (no mask fabric left visible)
            parts["train_masks"].append(_small(c.hole.astype(np.float32), s) > 1e-3)
            continue
        parts["train_masks"].append(_label(c.hole, s))
        unsure = (c.probability > UNSURE[0]) & (c.probability < UNSURE[1])
        parts["train_unsure"].append(float(unsure.sum()) / max(int(c.hole.sum()), 1))
        alw, hole_w = rest.wide_hole(image, c.face.kps5, c.aligned, c.hole)
        parts["wide_images"].append(_small(alw.crop, s))
        parts["wide_masks"].append(_label(hole_w & alw.valid, s))
        tight = c.aligned.mask_onto(c.hole, alw)
        parts["wide_grow"].append(float((hole_w & alw.valid).sum()) / max(int(tight.sum()), 1))
    if not parts["train_images"]:
        raise UnveilError(f"no real masked photo gave an aligned face with a found mask ({counts})")
    arrays = {}
    for k, v in parts.items():
        if k.endswith("names"):
            arrays[k] = np.array(v)
        elif k in ("train_unsure", "wide_grow"):
            arrays[k] = np.array(v, np.float32)
        else:
            arrays[k] = np.stack(v) if v else np.zeros((0,), np.uint8)
    arrays["counts"] = np.array(json.dumps(counts))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


def load_real_pool(spec: RealPoolSpec = RealPoolSpec(), data=None, progress: bool = True) -> dict:
    with np.load(build_real_pool(spec, data, progress)) as z:
        pool = {k: z[k] for k in z.files}
    pool["counts"] = json.loads(str(pool["counts"]))
    return pool
