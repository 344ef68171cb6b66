"""Training data for inpainting: UTKFace train faces (augmented) with holes from a mix of sources.

The mix (:class:`MaskMix`) draws, per sample, one of
  * ``freeform`` - procedural brush strokes and boxes (thin/medium/thick), hole ratio uniform over
    the 0-60 % bins,
  * ``box``      - one to three rectangles,
  * ``occluder`` - the exact mask of a synthetic occluder (face masks, glasses, sunglasses, scarves,
    objects, shapes) taken from the cached SOCLNET training pool, so the models learn the holes they
    meet in use; flipped and jittered;
  * ``facemask`` - the procedural lower-face shape where a face mask sits, jittered (the
    landmark-guided model trains mostly on these),
  * ``eyes``     - the procedural shape of sunglasses over the eyes, jittered (lens size and
    shape, a bridge, temple arms on half the draws),
  * ``real``     - the holes SOCLNET and the pipeline find on the real masked photos' aligned crops
    (the training part of the real pool, :mod:`unveil.train.realpool`; the held-out photos are
    never drawn), flipped and jittered. Real masks reach the nose bridge and the crop's sides,
    which the procedural shape does not (median hole 48 % of the crop against 34 %).
NVIDIA masks are never used in training: they are the evaluation masks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from unveil.data.dataset import FaceDataset
from unveil.errors import UnveilError
from unveil.face.detect import TURNED, head_yaw
from unveil.masks.bins import BINS
from unveil.masks.freeform import freeform_mask

STYLES = ("thin", "medium", "thick")
KINDS = ("freeform", "box", "occluder", "facemask", "eyes", "real")


@dataclass
class MaskMix:
    weights: dict[str, float] = field(
        default_factory=lambda: {"freeform": 0.5, "box": 0.15, "occluder": 0.35})
    occluder_pool: int = 6000  # size of the cached synthetic-occlusion pool to draw masks from
    real_limit: int | None = None  # ``real`` holes from the first N real photos only (a quick run)

    def kinds(self) -> list[str]:
        return [k for k, w in self.weights.items() if w > 0]


def box_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    m = np.zeros((size, size), bool)
    for _ in range(rng.integers(1, 4)):
        w, h = (rng.uniform(0.15, 0.5, 2) * size).astype(int)
        x, y = rng.integers(0, size - w), rng.integers(0, size - h)
        m[y:y + h, x:x + w] = True
    return m


class MaskSampler:
    """Draws training masks (bool size x size) from a :class:`MaskMix`."""

    def __init__(self, mix: MaskMix, size: int, data=None, progress: bool = True):
        unknown = set(mix.weights) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown mask kinds {sorted(unknown)}; use {', '.join(KINDS)}")
        self.mix, self.size = mix, size
        kinds = mix.kinds()
        if not kinds:
            raise ValueError("the mask mix has no kind with a positive weight")
        p = np.array([mix.weights[k] for k in kinds], float)
        self.kinds, self.p = kinds, p / p.sum()
        self.occluders = None
        if "occluder" in kinds:
            from unveil.occlusion.segpool import PoolSpec, build_pool, load_pool

            pool = load_pool(build_pool(PoolSpec("train", mix.occluder_pool, size), data,
                                        progress=progress))
            self.occluders = pool["masks"]
        self.real = None
        if "real" in kinds:
            from unveil.train.realpool import RealPoolSpec, load_real_pool

            n = mix.real_limit
            spec = RealPoolSpec(size, **({"limit": n, "holdout": max(1, n // 5)} if n else {}))
            self.real = load_real_pool(spec, data, progress)["train_masks"]

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        kind = self.kinds[rng.choice(len(self.kinds), p=self.p)]
        s = self.size
        if kind == "freeform":
            b = list(BINS)[rng.integers(0, len(BINS))]
            m = freeform_mask(s, int(rng.integers(0, 2**31)), STYLES[rng.integers(0, 3)], bin=b)
        elif kind == "box":
            m = box_mask(s, rng)
        elif kind == "facemask":
            from unveil.masks.shapes import facemask_shape

            m = facemask_shape(s, int(rng.integers(0, 2**31)), jitter=0.05).astype(np.float32)
            a = cv2.getRotationMatrix2D((s / 2, s / 2), rng.uniform(-6, 6), rng.uniform(0.92, 1.08))
            a[:, 2] += rng.uniform(-0.04, 0.04, 2) * s
            m = cv2.warpAffine(m, a, (s, s), flags=cv2.INTER_LINEAR) >= 0.5
        elif kind == "eyes":
            from unveil.masks.shapes import eyes_shape

            m = eyes_shape(s, int(rng.integers(0, 2**31)), jitter=0.04)
        elif kind == "real":
            m = self.real[rng.integers(0, len(self.real))].astype(np.float32)
            if rng.random() < 0.5:
                m = m[:, ::-1]
            a = cv2.getRotationMatrix2D((s / 2, s / 2), rng.uniform(-5, 5), rng.uniform(0.95, 1.05))
            a[:, 2] += rng.uniform(-0.03, 0.03, 2) * s
            # a hole that reaches the crop's edge keeps reaching it
            m = cv2.warpAffine(np.ascontiguousarray(m), a, (s, s), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE) >= 0.5
        else:
            m = self.occluders[rng.integers(0, len(self.occluders))].astype(np.float32)
            if rng.random() < 0.5:
                m = m[:, ::-1]
            a = cv2.getRotationMatrix2D((s / 2, s / 2), rng.uniform(-8, 8), rng.uniform(0.9, 1.1))
            a[:, 2] += rng.uniform(-0.05, 0.05, 2) * s
            m = cv2.warpAffine(np.ascontiguousarray(m), a, (s, s), flags=cv2.INTER_LINEAR) >= 0.5
        if not m.any():  # every sample has a hole
            m = box_mask(s, rng)
        return m


class InpaintData(Dataset):
    """Items: (image 3xSxS in [-1, 1], mask 1xSxS float, 1 = hole). Faces are augmented; the mask
    is drawn fresh each time from torch's RNG (seeded per DataLoader worker).

    ``guided=True`` (networks that take landmark guidance, :mod:`unveil.models.lgface`) adds a
    third item, the guide (landmark heatmaps of the clean face and the gender code from the
    UTKFace label), each dropped with probability ``guide_dropout`` so the network also works when
    the mesh or the classifier fails; the augmentation is then photometric only, unless
    ``guided_geometry``: then faces are flipped and warped as for unguided networks and the cached
    mesh is moved with them (:func:`move_points`). With ``guide_occluded`` that share of the
    landmarks is instead predicted on the face with its hole greyed out, as
    :class:`unveil.models.lgface.LGFaceInpainter` does at inference (where the mesh is not found
    there, the clean face's is used). ``guide_channels=4`` adds the age code of the UTKFace label
    plus Gaussian noise of ``age_noise`` (in code units, 20 years each: the error of the estimate
    made on the occluded face at inference)."""

    def __init__(self, size: int = 128, mix: MaskMix | None = None, split: str = "train", data=None,
                 limit: int | None = None, progress: bool = True, guided: bool = False,
                 guide_dropout: float = 0.1, guide_occluded: float = 0.0, guide_channels: int = 3,
                 age_noise: float = 0.3, guided_geometry: bool = False):
        from unveil.data.dataset import Augment

        augment = split == "train"
        if guided and augment and not guided_geometry:
            augment = Augment(flip=0.0, max_scale=0.0, max_shift=0.0, max_rotate_deg=0.0)
        self.faces = FaceDataset("utkface", split, size, augment=augment, data=data, limit=limit)
        self.masks = MaskSampler(mix or MaskMix(), size, data, progress)
        if not 0.0 <= guide_occluded <= 1.0:
            raise UnveilError(f"guide_occluded must be between 0 and 1, got {guide_occluded}")
        self.guided, self.guide_dropout, self.size = guided, guide_dropout, size
        self.guide_occluded = guide_occluded
        self.guide_channels, self.age_noise = guide_channels, age_noise
        if guided:
            from unveil.models.lgface import landmark_cache

            self.points = landmark_cache(self.faces.records, split, progress=progress)

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int):
        item = self.faces[i]
        img = item["image"] * 2 - 1
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        m = torch.from_numpy(self.masks(rng).astype(np.float32))[None]
        if not self.guided:
            return img, m
        from unveil.models.lgface import grey_hole, mesh_points, render_guide
        from unveil.models.tensors import to_uint8

        pts = self.points[i] if rng.random() >= self.guide_dropout else None
        if pts is not None and "matrix" in item:  # the cached mesh follows the face's flip and warp
            pts = move_points(pts, item["matrix"].numpy(), self.size)
        if pts is not None and rng.random() < self.guide_occluded:
            occluded = mesh_points(grey_hole(to_uint8(img[None])[0], m[0].numpy() > 0.5))
            pts = pts if occluded is None else occluded
        g = item["gender"]
        code = 0.0 if g < 0 or rng.random() < self.guide_dropout else (1.0 if g == 1 else -1.0)
        age = None
        if self.guide_channels > 3 and item["age"] >= 0 and rng.random() >= self.guide_dropout:
            from unveil.models.gender import age_code

            # the label with the noise of an estimate made on the occluded face
            age = float(age_code(item["age"])) + float(rng.normal(0.0, self.age_noise))
        return img, m, torch.from_numpy(render_guide(pts, code, (self.size, self.size), age=age,
                                                     channels=self.guide_channels))


def move_points(points: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """(N, 2) mesh points in fractions of a ``size`` px crop (as :func:`render_guide
    <unveil.models.lgface.render_guide>` reads them: ``x * size`` a pixel index) moved by a 2x3
    map of pixel indices (:class:`unveil.data.dataset.Augment`'s)."""
    p = np.asarray(points, np.float64) * size
    q = p @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]
    return (q / size).astype(np.float32)


def face_weights(points: np.ndarray, turned_weight: float) -> np.ndarray:
    """Sampling weight per face: ``turned_weight`` for a turned head (|yaw| at least ``TURNED``,
    :func:`unveil.face.detect.head_yaw`), 1 for the others and for faces without a mesh."""
    if not turned_weight > 0:
        raise UnveilError(f"turned_weight must be above 0, got {turned_weight}")
    yaw = np.abs(head_yaw(points))
    return np.where(np.nan_to_num(yaw, nan=0.0) >= TURNED, float(turned_weight), 1.0)
