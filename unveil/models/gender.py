"""Gender classifier for aligned face crops, bare or wearing a face mask.

The landmark-guided reconstruction feeds a gender code to its inpainter, so that a male face is not
rebuilt as female and vice versa. The code must come from the *occluded* face, so the classifier
is trained (:mod:`unveil.train.gender`) on UTKFace train faces of which half wear a synthetic
occluder (mostly face masks, see :mod:`unveil.occlusion.synth`).

The network is a small plain CNN (conv + BatchNorm + ReLU; five stride-2 stages of one or two 3x3
convs, global average pooling, dropout, one logit), about 1.2 M parameters, a few ms per crop on a
CPU. ``GenderClassifier().predict(crops)`` gives P(female) per aligned uint8 RGB crop of any size
(resized to the training size, 96 px for the shipped weights); ``flip=True`` also averages the
mirror image (twice the work; no measurable gain with the shipped weights). Weights trained with
an age loss (``model.age``) also estimate the age from the same pass: ``predict_age`` (years) and
``predict_both`` (P(female) and the age code LGFace's guide carries). UTKFace labels are
binary (0 male, 1 female): see ``unveil/weights/gender.md`` for what the weights were trained on,
how accurate they are, and their limits.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from unveil.errors import UnveilError
from unveil.models.registry import build_network, network, register
from unveil.models.tensors import to_tensor
from unveil.models.weights import load_weights, weights_path

#: Smallest crop side accepted by :meth:`GenderClassifier.predict`.
MIN_SIDE = 16
LABELS = ("male", "female")  # UTKFace gender 0, 1


@dataclass
class GenderNetConfig:
    #: Stages ``(channels, convs)``: each halves the resolution with a stride-2 3x3 conv, then adds
    #: ``convs - 1`` 3x3 convs; a 96 px crop ends at 3x3 (global average pooling follows).
    stages: tuple = ((24, 1), (32, 2), (64, 2), (128, 2), (256, 2))
    dropout: float = 0.2
    #: Side of the square crops the network was trained on (inputs are resized to it).
    size: int = 96
    #: A second output, the age code (:func:`age_code`), beside the gender logit.
    age: bool = False


#: The age code: years mapped to ``(years - AGE_CENTRE) / AGE_SCALE``, clipped to ``AGE_RANGE``
#: (children all read as -1.5, 75 and older as 2). LGFace's guide carries it as a channel.
AGE_CENTRE, AGE_SCALE, AGE_RANGE = 35.0, 20.0, (-1.5, 2.0)


def age_code(years) -> np.ndarray:
    """The age code of ages in years (float32; an array, or a 0-d array of one age)."""
    return np.clip((np.asarray(years, np.float32) - AGE_CENTRE) / AGE_SCALE, *AGE_RANGE).astype(np.float32)


def code_age(code) -> np.ndarray:
    """Years of age codes (the inverse of :func:`age_code` inside its range)."""
    return (np.clip(np.asarray(code, np.float32), *AGE_RANGE) * AGE_SCALE + AGE_CENTRE).astype(np.float32)


def _cbr(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


@network("gender", GenderNetConfig, tuples=True)
class GenderNet(nn.Module):
    """``forward(x N x 3 x S x S in [-1, 1]) -> logits N`` (positive: female); with ``age``,
    :meth:`outputs` gives the logits and the age codes."""

    def __init__(self, config: GenderNetConfig | None = None):
        super().__init__()
        cfg = self.config = config or GenderNetConfig()
        layers, cin = [], 3
        for c, n in cfg.stages:
            layers += [_cbr(cin, int(c), 2)] + [_cbr(int(c), int(c)) for _ in range(int(n) - 1)]
            cin = int(c)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(cin, 2 if cfg.age else 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(x)[:, 0]

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """N x 1 (gender logit) or N x 2 (gender logit, age code) with ``age``."""
        return self.head(self.features(x).mean((2, 3)))


def build_gender_net(config: dict | GenderNetConfig | None = None) -> GenderNet:
    """A :class:`GenderNet` from a config dict (as stored in a weight file's metadata)."""
    return build_network("gender", config)


def prepare(crop: np.ndarray, size: int) -> np.ndarray:
    """A checked uint8 HxWx3 crop, centre-cropped to a square and resized to ``size``."""
    a = np.asarray(crop)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise UnveilError(f"a face crop must be uint8 HxWx3 RGB, got {a.dtype} {a.shape}")
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise UnveilError(f"face crop is too small to classify ({w}x{h}; at least {MIN_SIDE} px a side)")
    if h != w:  # aligned crops are square; keep the centre of any other
        s = min(h, w)
        a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    if a.shape[0] != size:
        interp = cv2.INTER_AREA if a.shape[0] > size else cv2.INTER_LINEAR
        a = cv2.resize(a, (size, size), interpolation=interp)
    return np.ascontiguousarray(a)


@register("gender", kind="classifier",
          summary="Gender of an aligned face crop, bare or masked (small CNN, UTKFace labels)", rank=10)
class GenderClassifier:
    """P(female) of aligned face crops. ``weights``: a safetensors file (default: the shipped one)."""

    network_name = "gender"
    weight_name = "gender"

    def __init__(self, weights: str | Path | None = None, device: str = "cpu", flip: bool = False):
        """``flip``: average the crop and its mirror image (twice the work; on 1,000 test faces the
        shipped weights score the same either way)."""
        path = weights_path(weights, self.weight_name, "gender", "gender")
        self.device = torch.device(device)
        self.model, self.meta = load_weights(path, build_gender_net, what="gender classifier",
                                             network="gender")
        self.model = self.model.to(self.device).eval()
        self.size = int(self.model.config.size)
        self.flip = flip
        self.weights = path

    @property
    def has_age(self) -> bool:
        """Whether the weights also estimate the age (:meth:`predict_age`)."""
        return bool(getattr(self.model.config, "age", False))

    def predict(self, crops: list[np.ndarray] | np.ndarray, batch: int = 64) -> np.ndarray:
        """P(female) (float32, one per crop) of aligned uint8 RGB crops: a list of HxWx3 arrays (any
        sizes), an N x H x W x 3 array, or a single HxWx3 crop (giving an array of one)."""
        return self._run(crops, batch)[:, 0]

    def predict_age(self, crops: list[np.ndarray] | np.ndarray, batch: int = 64) -> np.ndarray:
        """Estimated ages in years (float32, one per crop; children read as 5, 75 and older as 75)."""
        if not self.has_age:
            raise UnveilError(f"{self.weights} has no age output (weights trained without model.age)")
        return code_age(self._run(crops, batch)[:, 1])

    def predict_both(self, crops: list[np.ndarray] | np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(P(female), age code or NaN without an age output) per crop, from one pass."""
        out = self._run(crops, batch)
        age = out[:, 1] if self.has_age else np.full(len(out), np.nan, np.float32)
        return out[:, 0], age

    def _run(self, crops, batch: int) -> np.ndarray:
        """N x 1 or N x 2: P(female) and, with an age output, the age code (flip-averaged)."""
        if isinstance(crops, np.ndarray):
            if crops.ndim == 3:
                crops = [crops]
            elif crops.ndim == 4:
                crops = list(crops)
            else:
                raise UnveilError(f"expected a HxWx3 crop or an N x H x W x 3 batch, got shape {crops.shape}")
        elif not isinstance(crops, (list, tuple)):
            raise UnveilError(f"expected face crops (a list of arrays or an array), "
                              f"got {type(crops).__name__}")
        if len(crops) == 0:
            raise UnveilError("no face crops to classify")
        arr = np.stack([prepare(c, self.size) for c in crops])
        out = []
        with torch.inference_mode():
            for i in range(0, len(arr), batch):
                x = to_tensor(arr[i:i + batch]).to(self.device)
                o = self.model.outputs(x)
                if self.flip:
                    o = (o + self.model.outputs(x.flip(3))) / 2
                o = o.float().clone()
                o[:, 0] = torch.sigmoid(o[:, 0])
                out.append(o.cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    @staticmethod
    def label(p: float) -> str:
        """"female" for P(female) >= 0.5, else "male"."""
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise UnveilError(f"label() needs a probability, got {p!r}") from None
        if not 0.0 <= p <= 1.0:  # also refuses NaN
            raise UnveilError(f"label() needs a probability in [0, 1], got {p}")
        return LABELS[int(p >= 0.5)]

    def classify(self, crop: np.ndarray) -> tuple[str, float]:
        """(label, P(female)) of one crop."""
        p = float(self.predict(crop)[0])
        return self.label(p), p


@lru_cache(maxsize=1)
def load_gender_classifier() -> GenderClassifier:
    """The shipped classifier, loaded once per process."""
    return GenderClassifier()
