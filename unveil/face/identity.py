"""Identity: dlib's 128-D ResNet face embedding (face-recognition-models), loaded by file path.

Distances: the same person about 0.03-0.4, another person about 0.7; dlib's threshold is 0.6.
Models are found with ``importlib.util.find_spec`` (no pkg_resources, no network). Only the
public-domain 5-point landmark model and the ResNet embedding model are used.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from unveil.errors import UnveilError

THRESHOLD = 0.6


def _model_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UnveilError("face-recognition-models is not installed (`make setup` installs it)")
    return Path(spec.submodule_search_locations[0]) / "models"


@dataclass
class Embedding:
    vector: np.ndarray  # (128,)
    box: tuple[int, int, int, int]  # left, top, right, bottom
    detected: bool  # False when the fallback box (central face region) was used


class FaceEmbedder:
    """``embed(image, box=None)``: detect (HOG) unless a box is given, 5-point align, embed."""

    def __init__(self, jitter: int = 0):
        import dlib

        d = _model_dir()
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(d / "shape_predictor_5_face_landmarks.dat"))
        self.net = dlib.face_recognition_model_v1(str(d / "dlib_face_recognition_resnet_model_v1.dat"))
        self.jitter = jitter

    def detect(self, image: np.ndarray, upsample: int = 1) -> tuple[int, int, int, int] | None:
        """The largest face box (left, top, right, bottom), or None."""
        rects = self.detector(np.ascontiguousarray(image), upsample)
        if not rects:
            return None
        r = max(rects, key=lambda r: r.width() * r.height())
        return (r.left(), r.top(), r.right(), r.bottom())

    @staticmethod
    def fallback_box(image: np.ndarray) -> tuple[int, int, int, int]:
        """For an aligned crop, the central face region (dlib's box covers brows to chin)."""
        h, w = image.shape[:2]
        return (int(0.12 * w), int(0.18 * h), int(0.88 * w), int(0.94 * h))

    def face_box(self, image: np.ndarray) -> tuple[tuple[int, int, int, int], bool]:
        box = self.detect(image)
        return (box, True) if box is not None else (self.fallback_box(image), False)

    def embed(self, image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> Embedding:
        image = np.ascontiguousarray(image)
        detected = True
        if box is None:
            box, detected = self.face_box(image)
        rect = self._dlib.rectangle(*[int(v) for v in box])
        shape = self.shape(image, rect)
        vec = np.asarray(self.net.compute_face_descriptor(image, shape, self.jitter), np.float64)
        return Embedding(vec, tuple(int(v) for v in box), detected)

    @staticmethod
    def distance(a: Embedding | np.ndarray, b: Embedding | np.ndarray) -> float:
        va = a.vector if isinstance(a, Embedding) else a
        vb = b.vector if isinstance(b, Embedding) else b
        return float(np.linalg.norm(va - vb))

    def identity_distance(self, output: np.ndarray, truth: np.ndarray) -> tuple[float, bool]:
        """Distance between output and truth, both embedded in the face box found on the truth."""
        t = self.embed(truth)
        o = self.embed(output, t.box)
        return self.distance(o, t), t.detected


@lru_cache(maxsize=1)
def get_embedder() -> FaceEmbedder:
    return FaceEmbedder()
