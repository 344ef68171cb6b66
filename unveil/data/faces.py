"""Face sources: UTKFace (with its split files and labels) and LFW (with pairs.txt folds).

Both are turned into *aligned* square crops of the same framing: UTKFace files already are
(200x200, eyes level and centred), LFW deep-funneled 250x250 images are cropped with a fixed box
that frames the face like UTKFace does. Any other folder of images is taken as already aligned.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from unveil.data.paths import data_root
from unveil.errors import UnveilError
from unveil.io import read_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
#: Crop (left, top, right, bottom) of a 250x250 LFW deep-funneled image framing the face like UTKFace.
LFW_CROP = (64, 62, 186, 184)
SPLITS = ("train", "val", "test")
#: Tag of the record order (:func:`mixed_order`), part of the name of every cache that stores
#: UTKFace record indices, so a cache made under another order is never read as this one's.
RECORD_ORDER = "h1"
_UTK_RE = re.compile(r"^(\d+)_(\d)_(\d)_")


@dataclass(frozen=True)
class FaceRecord:
    path: Path
    source: str  # "utkface", "lfw" or "folder"
    age: int | None = None
    gender: int | None = None  # UTKFace: 0 male, 1 female
    race: int | None = None

    @property
    def crop(self) -> tuple[int, int, int, int] | None:
        return LFW_CROP if self.source == "lfw" else None


@dataclass(frozen=True)
class LFWPair:
    fold: int
    same: bool
    a: Path
    b: Path


def _utk_record(path: Path) -> FaceRecord:
    m = _UTK_RE.match(path.name)
    if not m:
        return FaceRecord(path, "utkface")
    return FaceRecord(path, "utkface", int(m[1]), int(m[2]), int(m[3]))


def mixed_order(names: list[str]) -> list[str]:
    """``names`` in a fixed order that does not follow the names: sorted by a hash of each name
    (the same on every machine, and a name keeps its place among the others when a list gains or
    loses entries). UTKFace file names begin with the age, so a name-sorted split's first 100 test
    faces were all aged 1, 10-19 or 100+, and its first 4,000 train faces had no one aged 27-99;
    in this order the first N of a split are a fair sample of it."""
    return sorted(names, key=lambda n: hashlib.blake2b(n.encode(), digest_size=8).digest())


@lru_cache(maxsize=16)
def _utk_split(root: Path, split: str) -> tuple[FaceRecord, ...]:
    """A split's records in :func:`mixed_order` (so ``[:limit]`` is a fair sample)."""
    if split not in SPLITS:
        raise UnveilError(f"unknown split '{split}': choose one of {', '.join(SPLITS)}")
    base = root / "faces" / "utkface"
    names = (base / "splits" / f"{split}.txt").read_text().split()
    return tuple(_utk_record(base / n) for n in mixed_order(names))


def _lfw_all(root: Path) -> tuple[FaceRecord, ...]:
    base = root / "faces" / "lfw"
    return tuple(FaceRecord(p, "lfw") for p in sorted(base.glob("*/*.jpg")))


def face_records(
    source: str = "utkface", split: str = "test", data: str | Path | None = None
) -> list[FaceRecord]:
    """Face records of a source: ``utkface`` (by split), ``lfw`` (all images) or a folder path."""
    if source == "utkface":
        return list(_utk_split(data_root(data, need="faces/utkface/splits"), split))
    if source == "lfw":
        return list(_lfw_all(data_root(data, need="faces/lfw")))
    folder = Path(source)
    if not folder.is_dir():
        raise UnveilError(f"face source '{source}' is neither 'utkface', 'lfw' nor a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UnveilError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    return [FaceRecord(p, "folder") for p in files]


def load_face(record: FaceRecord | Path | str, size: int | None = None) -> np.ndarray:
    """Aligned face crop as uint8 size x size x 3 RGB (``size=None`` keeps the crop's own size)."""
    if not isinstance(record, FaceRecord):
        p = Path(record)
        record = FaceRecord(p, "lfw" if "lfw" in p.parts else "folder")
    img = read_image(record.path)
    if record.crop is not None and img.shape[:2] == (250, 250):
        l, t, r, b = record.crop
        img = img[t:b, l:r]
    if size is not None:
        img = resize(img, size)
    return img


def load_face_shaped(record: FaceRecord | Path | str, shape: tuple[int, int]) -> np.ndarray:
    """A face crop of aspect ``W/H`` resized to ``shape = (H, W)``: the square face crop is widened
    (or made taller) about its centre with the same area, taking in more of the photo, so the face
    keeps its scale. For the arbitrary-shape evaluation (non-square crops)."""
    if not isinstance(record, FaceRecord):
        p = Path(record)
        record = FaceRecord(p, "lfw" if "lfw" in p.parts else "folder")
    img = read_image(record.path)
    H, W = img.shape[:2]
    if record.crop is not None and (H, W) == (250, 250):
        l, t, r, b = record.crop
        cx, cy, side = (l + r) / 2, (t + b) / 2, r - l
    else:
        cx, cy, side = W / 2, H / 2, 0.8 * min(H, W)
    h, w = shape
    bw, bh = side * (w / h) ** 0.5, side * (h / w) ** 0.5
    s = min(1.0, W / bw, H / bh)  # shrink the box (keeping its aspect) if the photo is too small
    bw, bh = bw * s, bh * s
    x0 = int(round(min(max(cx - bw / 2, 0), W - bw)))
    y0 = int(round(min(max(cy - bh / 2, 0), H - bh)))
    return resize(img[y0:y0 + int(round(bh)), x0:x0 + int(round(bw))], (h, w))


def resize(img: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize to size x size (or (H, W)); area filter when shrinking, bicubic when growing."""
    h, w = (size, size) if isinstance(size, int) else size
    if img.shape[:2] == (h, w):
        return img
    interp = cv2.INTER_AREA if h * w < img.shape[0] * img.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(img, (w, h), interpolation=interp)


#: the folders of ``real_masked/`` (in-the-wild photos of people wearing masks)
REAL_FOLDERS = ("rmfd", "facemask_detection")
#: photos of them kept aside (a seeded random choice), never trained on: real-photo contact sheets
REAL_HOLDOUT = 100


def real_photos(data=None) -> list[Path]:
    """Every photo of the real masked folders, sorted (folder, name)."""
    root = data_root(data, need="real_masked")
    out = []
    for f in REAL_FOLDERS:
        d = root / "real_masked" / f
        if not d.is_dir():
            raise UnveilError(f"{d} is missing: the real masked photos are needed (see the data README)")
        out += sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return out


def holdout_split(n: int, holdout: int = REAL_HOLDOUT, seed: int = 0) -> np.ndarray:
    """bool (n,): True for the photos kept aside for evaluation (a seeded random choice)."""
    keep = np.zeros(n, bool)
    keep[np.random.default_rng((seed, 11)).permutation(n)[: min(holdout, n)]] = True
    return keep


def lfw_pairs(data: str | Path | None = None, pairs_file: str | Path | None = None) -> list[LFWPair]:
    """Parse an LFW pairs file (header ``folds n``, then per fold n matched and n mismatched)."""
    root = data_root(data, need="faces/lfw")
    base = root / "faces" / "lfw"
    pf = Path(pairs_file) if pairs_file else base / "pairs.txt"
    if not pf.exists():
        raise UnveilError(f"{pf}: pairs file not found")
    lines = [ln.split() for ln in pf.read_text().splitlines() if ln.strip()]
    try:
        folds, n = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError):
        raise UnveilError(f"{pf}: first line must be '<folds> <pairs per half-fold>'") from None
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise UnveilError(f"{pf}: header says {folds}x2x{n} pairs but the file has {len(body)}")

    def img(name: str, idx: str) -> Path:
        return base / name / f"{name}_{int(idx):04d}.jpg"

    pairs = []
    for i, row in enumerate(body):
        fold = i // (2 * n)
        if len(row) == 3:
            pairs.append(LFWPair(fold, True, img(row[0], row[1]), img(row[0], row[2])))
        elif len(row) == 4:
            pairs.append(LFWPair(fold, False, img(row[0], row[1]), img(row[2], row[3])))
        else:
            raise UnveilError(f"{pf}: line {i + 2} is not a pair: {' '.join(row)}")
    return pairs
