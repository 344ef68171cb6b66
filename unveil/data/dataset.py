"""A torch Dataset of aligned face crops, with augmentation for training only."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from unveil.data.faces import FaceRecord, face_records, load_face


@dataclass
class Augment:
    """Training augmentation: flip, small scale/shift/rotation, colour jitter."""

    flip: float = 0.5
    max_scale: float = 0.08
    max_shift: float = 0.04
    max_rotate_deg: float = 5.0
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1

    def __call__(self, img: np.ndarray, rng: np.random.Generator, matrix: bool = False):
        """The augmented image; with ``matrix``, also the 2x3 float64 map of its geometry (flip,
        scale, rotation, shift), pixel indices of ``img`` to those of the result, for points that
        have to follow the face (landmarks)."""
        h, w = img.shape[:2]
        flip = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        if rng.random() < self.flip:
            img = img[:, ::-1]
            flip = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0]])
        s = 1 + rng.uniform(-self.max_scale, self.max_scale)
        a = rng.uniform(-self.max_rotate_deg, self.max_rotate_deg)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), a, s)
        m[:, 2] += rng.uniform(-self.max_shift, self.max_shift, 2) * (w, h)
        img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT101)
        x = img.astype(np.float32) / 255
        x = x * (1 + rng.uniform(-self.contrast, self.contrast)) + rng.uniform(
            -self.brightness, self.brightness)
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * (1 + rng.uniform(-self.saturation, self.saturation))
        out = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
        if not matrix:
            return out
        return out, m @ np.vstack([flip, [0.0, 0.0, 1.0]])


class FaceDataset(Dataset):
    """Aligned faces as float tensors 3xSxS in [0, 1].

    ``FaceDataset("utkface", "train", size=128, augment=True)``; augmentation is refused for the
    val/test splits so evaluation data never changes. Items: ``{"image", "index", "path"}`` plus
    ``"gender"``/``"age"`` where the source labels them (-1 otherwise), and with augmentation
    ``"matrix"``: the 2x3 map of its geometry (:class:`Augment`). Augmentation draws from
    torch's RNG, which DataLoader seeds per worker, so runs repeat under ``torch.manual_seed``.
    """

    def __init__(self, source: str = "utkface", split: str = "train", size: int = 128,
                 augment: bool | Augment = False, data=None, limit: int | None = None):
        if augment and split != "train":
            raise ValueError("augmentation is for the train split only")
        self.records: list[FaceRecord] = face_records(source, split, data)[:limit]
        self.size = size
        self.augment = Augment() if augment is True else (augment or None)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        rec = self.records[i]
        img = load_face(rec, self.size)
        extra = {}
        if self.augment is not None:
            img, m = self.augment(img, np.random.default_rng(int(torch.randint(0, 2**62, ()))), matrix=True)
            extra["matrix"] = torch.from_numpy(m)  # the crop's pixel indices -> the augmented image's
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255)
        return {
            **extra,
            "image": t,
            "index": i,
            "path": str(rec.path),
            "gender": -1 if rec.gender is None else rec.gender,
            "age": -1 if rec.age is None else rec.age,
        }
