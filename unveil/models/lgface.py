"""Landmark-guided reconstruction under a face mask (seed paper "A Deep Learning Framework to
Reconstruct Face under Mask").

The paper splits the problem in three, and so does this file:

1. **gender**: a classifier (:mod:`unveil.models.gender`) tells a male face from a female one on the
   masked face, so the inpainter does not rebuild one as the other; its answer enters as a code
   channel (+1 female, -1 male, 0 unknown);
2. **landmarks and the mask's segmentation**: the 478-point face mesh of the front end, predicted on
   the occluded face at inference (on the clean face in training), rendered as two heatmaps (outline,
   brows and eyes; nose and lips); the hole is SOCLNET's segmentation in the pipeline (or the
   synthetic ground truth in training);
3. **a GAN inpainter guided by them**: the IFACENET encoder-decoder with the guide channels added to
   its input (``LGFaceNet``), trained with hole/valid L1, SSIM and an LSGAN SN-PatchGAN loss
   (the paper's LaFIn-style setup also uses style and perceptual losses; they are wired in the
   trainer and off in the CPU config, see ``train/configs/lgface.yaml``).

:func:`unveil.eval.landmarks.landmark_drift` measures how far the mesh moves when a face wears a
mask.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from unveil.data.faces import RECORD_ORDER
from unveil.errors import UnveilError
from unveil.models.blocks import ConvAct
from unveil.models.ifacenet import IFACENet, IFACENetConfig
from unveil.models.neural import NeuralInpainter
from unveil.models.registry import network, register

GUIDE_CHANNELS = 3  # outline/brows/eyes heatmap, nose/lips heatmap, gender code
#: With ``guide_channels: 4`` a fourth channel carries the age code (:func:`unveil.models.gender.age_code`,
#: 0 unknown), estimated on the occluded face by the classifier's age output.
AGE_CHANNEL = 3


def _mesh_groups() -> tuple[np.ndarray, np.ndarray]:
    """Mesh indices of the two heatmaps, from MediaPipe's contour lists."""
    from mediapipe.python.solutions import face_mesh_connections as c

    def idx(*conns):
        return np.array(sorted({i for conn in conns for pair in conn for i in pair}), np.int64)

    upper = idx(c.FACEMESH_FACE_OVAL, c.FACEMESH_LEFT_EYE, c.FACEMESH_RIGHT_EYE,
                c.FACEMESH_LEFT_EYEBROW, c.FACEMESH_RIGHT_EYEBROW)
    lower = idx(c.FACEMESH_NOSE, c.FACEMESH_LIPS)
    return upper, lower


GROUPS = _mesh_groups()


def render_guide(points: np.ndarray | None, gender: float, shape: tuple[int, int],
                 sigma: float = 1.2, age: float | None = None, channels: int = GUIDE_CHANNELS) -> np.ndarray:
    """float32 ``channels`` x H x W guide: two landmark heatmaps (peaks 1), the gender code and,
    with ``channels=4``, the age code.

    ``points``: (478, 2) mesh in fractions of the crop (x / W, y / H), or None (no landmarks: zero
    heatmaps). ``gender``: +1 female, -1 male, 0 unknown (soft values allowed). ``age``: an age code
    (None or NaN: unknown, 0). ``sigma`` in pixels at 128 px, scaled with the crop.
    """
    if channels not in (GUIDE_CHANNELS, GUIDE_CHANNELS + 1):
        raise UnveilError(f"a guide has {GUIDE_CHANNELS} or {GUIDE_CHANNELS + 1} channels, not {channels}")
    h, w = shape
    out = np.zeros((channels, h, w), np.float32)
    out[2] = float(gender)
    if channels > AGE_CHANNEL and age is not None and np.isfinite(age):
        out[AGE_CHANNEL] = float(age)
    if points is None or not np.isfinite(points).all():
        return out
    s = sigma * min(h, w) / 128
    for c, group in enumerate(GROUPS):
        p = points[group] * (w, h)
        x = np.clip(np.round(p[:, 0]).astype(int), 0, w - 1)
        y = np.clip(np.round(p[:, 1]).astype(int), 0, h - 1)
        canvas = np.zeros((h, w), np.float32)
        canvas[y, x] = 1.0
        canvas = cv2.GaussianBlur(canvas, (0, 0), s)
        out[c] = canvas / max(canvas.max(), 1e-6)
    return out


@dataclass
class LGFaceConfig(IFACENetConfig):
    guide_channels: int = GUIDE_CHANNELS
    #: the guide's codes (gender, age: its constant channels) also scale and shift the bottleneck's
    #: features (FiLM, a linear map that starts at zero): a stronger lever than a constant input
    #: channel, which the trained networks leave unused
    film: bool = False


@network("lgface", LGFaceConfig)
class LGFaceNet(IFACENet):
    """IFACENET with landmark heatmaps, a gender code and (``guide_channels: 4``) an age code as
    extra input channels."""

    guided = True

    def __init__(self, cfg: LGFaceConfig):
        super().__init__(cfg)
        self.stem = ConvAct(4 + cfg.guide_channels, cfg.width, 3)
        self.film = None
        if cfg.film:
            c = 4 * cfg.scale_width  # the bottleneck's channels
            self.film = torch.nn.Linear(cfg.guide_channels - 2, 2 * c)
            torch.nn.init.zeros_(self.film.weight)
            torch.nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, m: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        if guide is None:
            guide = x.new_zeros(x.shape[0], self.cfg.guide_channels, *x.shape[2:])
        inp, base = self.inputs(x, m)
        film = None
        if self.film is not None:  # the codes are constant maps: read them at the centre
            codes = guide[:, 2:, guide.shape[2] // 2, guide.shape[3] // 2]
            film = self.film(codes).chunk(2, 1)
        return self.body(self.stem(torch.cat([inp, guide], 1)), base, film)


# -- landmarks ----------------------------------------------------------------------------------------
def mesh_points(image: np.ndarray) -> np.ndarray | None:
    """The 478-point mesh of the face of an aligned crop, in fractions of the crop, or None
    (:meth:`FaceDetector.crop_mesh`: the mesh graph on the crop with some context, its detectors
    where that misses)."""
    from unveil.face import get_detector

    mesh = get_detector().crop_mesh(image)
    if mesh is None:
        return None
    h, w = image.shape[:2]
    return (mesh / (w, h)).astype(np.float32)


def grey_hole(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``image`` with its hole (``mask`` True) grey: the occluded face on which landmarks
    and gender are predicted at inference (and, with ``guide_occluded``, in training)."""
    shown = image.copy()
    shown[mask] = 128
    return shown


def landmark_cache(records, split: str, root: Path = Path("runs") / "cache", progress: bool = True) -> np.ndarray:
    """(N, 478, 2) meshes of the clean faces ``records`` (NaN where none was found), cached in
    ``runs/cache/landmarks-<split>-<N>-<RECORD_ORDER>.npz``."""
    path = Path(root) / f"landmarks-{split}-{len(records)}-{RECORD_ORDER}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["points"]
    from unveil.data import load_face

    pts = np.full((len(records), 478, 2), np.nan, np.float32)
    for i, rec in enumerate(tqdm(records, desc=f"face mesh of {split} faces", disable=not progress,
                                 file=sys.stderr)):
        p = mesh_points(load_face(rec, 256))
        if p is not None:
            pts[i] = p
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, points=pts)
    tmp.replace(path)
    return pts


def gender_code(image: np.ndarray) -> float:
    """+1 female .. -1 male from the gender classifier on the (masked) crop; 0 without it."""
    return attribute_codes(image)[0]


def attribute_codes(image: np.ndarray) -> tuple[float, float]:
    """(gender code, age code) of the (masked) crop from one pass of the classifier: (0, NaN)
    without it, the age NaN when its weights have no age output."""
    clf = _gender()
    if clf is None:
        return 0.0, float("nan")
    p, age = clf.predict_both([image])
    return float(2 * p[0] - 1), float(age[0])


@lru_cache(maxsize=1)
def _gender():
    try:
        from unveil.models.gender import load_gender_classifier

        return load_gender_classifier()
    except (ImportError, UnveilError):
        return None


@register("lgface", summary="Landmark-guided face-mask reconstruction: mesh heatmaps + gender code "
                            "guide a GAN inpainter (trained, shipped)", rank=4, tags=("learned",))
class LGFaceInpainter(NeuralInpainter):
    """The landmark-guided inpainter: landmarks are predicted on the occluded face it is given
    (the face mesh of the front end), gender by the gender classifier; both guide the network."""

    network_name = "lgface"
    weight_name = "lgface"
    refiner_weight = "lgface_refiner"
    #: the mirror look (``flip``): on 300 face-mask test faces LPIPS-VGG on the hole's box 0.336 ->
    #: 0.332 and +0.19 dB, on the real masks' holes and under sunglasses -0.005 each, for one more
    #: batch entry in the network (+8 ms a face; unveil/weights/lgface.md)
    flip_default = True

    def onnx_spec(self):
        """The network with its third input, the guide (two heatmaps and the gender code)."""
        net, names, example = super().onnx_spec()

        def with_guide(n, h, w):
            x, m = example(n, h, w)
            g = torch.zeros(n, net.cfg.guide_channels, h, w)
            yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            g[:, 0] = torch.exp(-((xx - w * 0.35) ** 2 + (yy - h * 0.4) ** 2) / (2 * (0.04 * w) ** 2))
            g[:, 1] = torch.exp(-((xx - w * 0.5) ** 2 + (yy - h * 0.72) ** 2) / (2 * (0.05 * w) ** 2))
            g[:, 2] = 1.0
            return x, m, g

        return net, names + ["g"], with_guide

    def guide_for(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The guide of one crop as the network sees it: landmarks and gender predicted on the
        occluded face (the hole greyed out, as the network gets it)."""
        shown = grey_hole(image, mask)
        gender, age = attribute_codes(shown)
        return render_guide(mesh_points(shown), gender, image.shape[:2], age=age,
                            channels=self.model.cfg.guide_channels)

    def _guide(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.stack([self.guide_for(i, m) for i, m in zip(images, masks)])


@register("lgface-fidelity", summary="LGFace trained on pixel losses (L1 + SSIM, a weak LSGAN): the fidelity "
                                     "variant, best PSNR, smoothest fill", rank=3, tags=("learned", "fidelity"))
class LGFaceFidelityInpainter(LGFaceInpainter):
    """The same network with the weights of LGFace's pixel-loss training (stage 2), before the
    realism fine-tune: what to use when PSNR / SSIM against the truth matter more than a sharp,
    plausible mouth."""

    weight_name = "lgface_fidelity"
    refiner_weight = ""
    flip_default = False  # measured, shipped and pinned as trained (the mirror look: ``flip=True``)
