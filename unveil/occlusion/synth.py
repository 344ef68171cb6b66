"""Realistic occlusion synthesis: (occluded face, exact occluder mask, clean face, occluder type).

From a clean aligned face and its landmarks (MediaPipe face mesh, see :mod:`unveil.face.detect`)
the :class:`Synthesizer` draws one occluder of a kind:

``facemask``
    A MaskTheFace template (``occluders/facemask_templates``) warped piecewise-affinely onto the
    lower face: the six anchors of ``masks.cfg`` (``mask_a``..``mask_f``: left cheek, nose bridge,
    right cheek, left jaw, chin, right jaw) go to the matching mesh points, and the plane is cut
    into four triangles fanning out of the nose bridge (``b``-``a``-``d``, ``b``-``d``-``e``,
    ``b``-``e``-``f``, ``b``-``f``-``c``), each extended outwards, so straps and edges outside the
    anchors follow too and the map stays continuous. The ``_left``/``_right`` variant whose nose
    position between the cheeks matches the face's is used. Light masks are sometimes patterned
    with a texture from ``textures/`` or tinted.
``glasses`` / ``sunglasses``
    Clear-lens glasses are ``objects/eyeglasses/*`` and ``objects/misc/glass.png`` (their lenses
    are transparent, so the mask is the frame only); sunglasses (tinted or mirrored lenses, which
    hide the eyes) are ``objects/glasses/*`` and ``objects/misc/sunglass.png``: that folder holds
    sunglasses and sports shades, checked by eye. Both are scaled to the outer eye corners (with
    a random margin), rotated with the eye line and centred on the eyes.
``scarf``
    A cut-out from ``objects/scarf`` whose top edge (gently curved) sits between the nose and the
    upper lip and which reaches below the chin.
``object``
    A cut-out from ``objects/object_train`` (train split) or ``objects/object_test`` (val/test),
    15-45 % of the face size, randomly rotated, centred anywhere in the face box.
``shape``
    RandOcc: a random ellipse, rectangle or polygon filled with a random patch of another image
    (a mask texture, or another face of the split), placed in the face box.

Compositing is the same for every kind: the occluder's colour is pulled part of the way towards
the scene (colour cast, brightness, a little mean shift, random gain), its alpha is blurred only
in the band ``dilate - erode`` of its edge, alphas below 1/255 become 0, ``mask = alpha > 0`` and
``occluded = round(clean * (1 - alpha) + occluder * alpha)``: every pixel outside the mask is
byte-identical to the clean face. Everything is drawn from ``np.random.default_rng(seed)``: the
same face, seed and kind give the same sample.
"""
from __future__ import annotations

import configparser
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from unveil.errors import UnveilError

KINDS = ("facemask", "glasses", "sunglasses", "scarf", "object", "shape")

#: Occluder area bounds (fraction of the image). Thin clear-glasses frames get a lower floor.
MAX_AREA = 0.70
MIN_AREA = 0.02
MIN_AREA_BY_KIND = {"glasses": 0.008}
MAX_TRIES = 12
ASSET_MAX_SIDE = 640  # decoded assets are shrunk to this longest side (some are 5000+ px wide)

SPLITS = ("train", "val", "test")
#: Relative odds of the face-mask template families (the bulky gas mask is rarer).
FAMILY_WEIGHTS = {"gas": 0.4}
#: The solid colours a face mask is recoloured to (``Synthesizer(recolor=...)``), as RGB at the
#: mask's brightest shading: black and dark masks, greys (grey N95/KN95s), navy, white, pastels.
RECOLORS = ((28, 28, 30), (52, 50, 55), (95, 95, 100), (140, 142, 145), (190, 192, 195),
            (35, 45, 80), (245, 245, 245), (170, 200, 230), (230, 180, 190), (60, 90, 60))
EXTRA_STREAM = 0x100F  # the seed suffix of the loops/recolouring random stream


def min_area(kind: str) -> float:
    return MIN_AREA_BY_KIND.get(kind, MIN_AREA)


@dataclass
class SynthSample:
    occluded: np.ndarray  # uint8 HxWx3
    mask: np.ndarray  # bool HxW, True = occluder
    clean: np.ndarray  # uint8 HxWx3
    kind: str
    meta: dict = field(default_factory=dict)
    #: bool HxW: the face mask's ear loops or straps (part of ``mask``), when drawn
    loops: np.ndarray | None = None

    @property
    def hole_ratio(self) -> float:
        return float(self.mask.mean())


# -- face geometry ------------------------------------------------------------------------------
@dataclass
class FacePoints:
    """The few face points the occluders are fitted to, in image pixels."""

    eye_l: np.ndarray  # iris centres: image-left, image-right
    eye_r: np.ndarray
    corner_l: np.ndarray  # outer eye corners
    corner_r: np.ndarray
    bridge: np.ndarray  # middle of the nose bridge
    nose_tip: np.ndarray
    subnasal: np.ndarray
    upper_lip: np.ndarray
    mouth_l: np.ndarray
    mouth_r: np.ndarray
    chin: np.ndarray
    cheek_l: np.ndarray  # face contour at the nose-bridge height
    cheek_r: np.ndarray
    jaw_l: np.ndarray
    jaw_r: np.ndarray
    box: np.ndarray  # l, t, r, b

    @property
    def ux(self) -> np.ndarray:
        v = self.eye_r - self.eye_l
        return v / max(np.linalg.norm(v), 1e-6)

    @property
    def uy(self) -> np.ndarray:
        ux = self.ux
        return np.array([-ux[1], ux[0]])

    @property
    def roll(self) -> float:
        """Eye-line angle in degrees (image coordinates, y down)."""
        v = self.eye_r - self.eye_l
        return math.degrees(math.atan2(v[1], v[0]))

    @property
    def eye_dist(self) -> float:
        return float(np.linalg.norm(self.eye_r - self.eye_l))

    @property
    def face_width(self) -> float:
        return float(abs(np.dot(self.cheek_r - self.cheek_l, self.ux)))

    def ear(self, side: int) -> np.ndarray:
        """Where a face mask's ear loop wraps round the ear: just outside the face contour, a
        little above the cheek point (side -1: image-left, +1: image-right)."""
        cheek = self.cheek_l if side < 0 else self.cheek_r
        return cheek + side * 0.05 * self.face_width * self.ux - 0.07 * self.face_width * self.uy

    @classmethod
    def from_mesh(cls, mesh: np.ndarray, box=None) -> "FacePoints":
        m = np.asarray(mesh, np.float64)
        if m.shape != (478, 2):
            raise UnveilError(f"landmarks must be the 478-point face mesh, got shape {m.shape}")
        lerp = lambda i, j, t: m[i] * (1 - t) + m[j] * t  # noqa: E731
        if box is None:
            box = np.r_[m.min(0), m.max(0)]
        return cls(eye_l=m[468], eye_r=m[473], corner_l=m[33], corner_r=m[263],
                   bridge=lerp(6, 197, 0.5), nose_tip=m[1], subnasal=m[2], upper_lip=m[0],
                   mouth_l=m[61], mouth_r=m[291], chin=m[152],
                   cheek_l=lerp(234, 93, 0.3), cheek_r=lerp(454, 323, 0.3),
                   jaw_l=lerp(172, 136, 0.3), jaw_r=lerp(397, 365, 0.3),
                   box=np.asarray(box, np.float64))

    @classmethod
    def from_kps5(cls, kps5: np.ndarray, box) -> "FacePoints":
        """Rough points from the detector's five key points, when the mesh failed."""
        k = np.asarray(kps5, np.float64)
        el, er = (k[0], k[1]) if k[0][0] <= k[1][0] else (k[1], k[0])
        d = np.linalg.norm(er - el)
        ux = (er - el) / max(d, 1e-6)
        uy = np.array([-ux[1], ux[0]])
        mid, nose, mouth = (el + er) / 2, k[2], (k[3] + k[4]) / 2
        h = max(np.dot(mouth - mid, uy), 0.6 * d)
        return cls(eye_l=el, eye_r=er, corner_l=el - 0.25 * d * ux, corner_r=er + 0.25 * d * ux,
                   bridge=mid + 0.3 * h * uy, nose_tip=nose, subnasal=nose + 0.12 * h * uy,
                   upper_lip=mouth - 0.12 * h * uy, mouth_l=k[3], mouth_r=k[4],
                   chin=mouth + 0.75 * h * uy,
                   cheek_l=mid - 1.0 * d * ux + 0.45 * h * uy, cheek_r=mid + 1.0 * d * ux + 0.45 * h * uy,
                   jaw_l=mouth - 0.8 * d * ux + 0.35 * h * uy, jaw_r=mouth + 0.8 * d * ux + 0.35 * h * uy,
                   box=np.asarray(box, np.float64))


def _face_points(face: np.ndarray, landmarks) -> FacePoints:
    if landmarks is None:
        from unveil.face.detect import get_detector

        faces = get_detector().detect(face)
        if not faces:
            raise UnveilError("no face found in the image: cannot place an occluder")
        landmarks = faces[0]
    if isinstance(landmarks, FacePoints):
        return landmarks
    if hasattr(landmarks, "kps5"):  # a detect.Face
        if landmarks.mesh is not None:
            return FacePoints.from_mesh(landmarks.mesh, landmarks.box)
        return FacePoints.from_kps5(landmarks.kps5, landmarks.box)
    return FacePoints.from_mesh(landmarks)


# -- assets -------------------------------------------------------------------------------------
@dataclass
class MaskTemplate:
    name: str
    path: Path
    anchors: np.ndarray  # (6, 2) a..f in template pixels

    @property
    def family(self) -> str:
        for suffix in ("_left", "_right"):
            if self.name.endswith(suffix):
                return self.name[: -len(suffix)]
        return self.name

    @property
    def nose_ratio(self) -> float:
        a, b, c = self.anchors[:3]
        return float((b[0] - a[0]) / max(c[0] - a[0], 1e-6))


def parse_masks_cfg(path: Path) -> list[MaskTemplate]:
    """Templates of MaskTheFace's ``masks.cfg`` whose PNG sits next to it (by base name)."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    cp.read(path, encoding="utf-8")
    out = []
    for sec in cp.sections():
        s = cp[sec]
        if "template" not in s:
            continue
        try:
            anchors = np.array([[float(v) for v in s[f"mask_{k}"].split(",")] for k in "abcdef"])
        except (KeyError, ValueError):
            continue
        png = path.parent / Path(s["template"].strip()).name
        if png.exists():
            out.append(MaskTemplate(sec, png, anchors))
    return out


class _Assets:
    """Asset lists per kind and a cache of decoded (and shrunk) RGBA images."""

    def __init__(self, root: Path, split: str):
        self.root, self.split = root, split
        occ = root / "occluders"
        obj = occ / "objects"
        fm = occ / "facemask_templates"
        if not (fm / "masks.cfg").exists():
            raise UnveilError(f"{fm / 'masks.cfg'} is missing: the occluder data is incomplete")
        self.templates = parse_masks_cfg(fm / "masks.cfg")
        pngs = lambda p: sorted(p.glob("*.png")) if p.is_dir() else []  # noqa: E731
        self.files = {
            "glasses": pngs(obj / "eyeglasses") + [p for p in [obj / "misc" / "glass.png"] if p.exists()],
            "sunglasses": pngs(obj / "glasses") + [p for p in [obj / "misc" / "sunglass.png"] if p.exists()],
            "scarf": pngs(obj / "scarf"),
            "object": pngs(obj / ("object_train" if split == "train" else "object_test")),
        }
        self.textures = sorted((fm / "textures").rglob("*.jpg"))
        self._cache: dict[Path, tuple[np.ndarray, float]] = {}
        self._faces = None

    def need(self, kind: str) -> None:
        if kind == "facemask" and not self.templates:
            raise UnveilError(f"no face-mask templates under {self.root / 'occluders/facemask_templates'}")
        if kind in self.files and not self.files[kind]:
            raise UnveilError(f"no '{kind}' occluder images under {self.root / 'occluders/objects'}")

    def rgba(self, path: Path) -> tuple[np.ndarray, float]:
        """(RGBA uint8, scale applied to the file): decoded once, shrunk to ASSET_MAX_SIDE."""
        if path not in self._cache:
            from unveil.io import read_rgba

            a = read_rgba(path)
            s = min(1.0, ASSET_MAX_SIDE / max(a.shape[:2]))
            if s < 1:
                a = cv2.resize(a, (max(1, round(a.shape[1] * s)), max(1, round(a.shape[0] * s))),
                               interpolation=cv2.INTER_AREA)
            self._cache[path] = (a, s)
        return self._cache[path]

    def texture_image(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        p = self.textures[rng.integers(len(self.textures))]
        if p not in self._cache:
            from unveil.io import read_image

            self._cache[p] = (read_image(p), 1.0)
        return self._cache[p][0], p.name

    def other_face(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
        from unveil.data import face_records, load_face

        if self._faces is None:
            self._faces = face_records("utkface", self.split, self.root)
        r = self._faces[rng.integers(len(self._faces))]
        return load_face(r, size), r.path.name


# -- image helpers ------------------------------------------------------------------------------
def _crop_alpha(a: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(a[..., 3] > 8)
    if len(ys) == 0:
        return a
    return a[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def _unpremultiply(rgbp: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.where(alpha[..., None] > 1e-4, rgbp / np.maximum(alpha[..., None], 1e-4), 0.0)


def _place(asset: np.ndarray, src_center, scale: tuple[float, float] | float, angle: float,
           dst_center, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale (sx, sy), rotate (degrees, image coordinates) and move an RGBA uint8 asset so that
    ``src_center`` lands on ``dst_center``. Returns (rgb float 0..255, alpha float 0..1), size²."""
    sx, sy = (scale, scale) if np.isscalar(scale) else scale
    a = asset.astype(np.float32)
    cx, cy = float(src_center[0]), float(src_center[1])
    if sx < 1 or sy < 1:  # shrink with an area filter first, so the warp does not alias
        fx, fy = min(sx, 1.0), min(sy, 1.0)
        w, h = max(1, round(a.shape[1] * fx)), max(1, round(a.shape[0] * fy))
        fx, fy = w / a.shape[1], h / a.shape[0]
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)
        cx, cy, sx, sy = cx * fx, cy * fy, sx / fx, sy / fy
    alpha = a[..., 3] / 255.0
    rgbp = np.concatenate([a[..., :3] * alpha[..., None], alpha[..., None]], -1)
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    lin = rot @ np.diag([sx, sy])
    off = np.asarray(dst_center, np.float64) - lin @ np.array([cx, cy])
    m = np.hstack([lin, off[:, None]])
    out = cv2.warpAffine(rgbp.astype(np.float32), m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    al = np.clip(out[..., 3], 0, 1)
    return _unpremultiply(out[..., :3], al), al


def _fan_warp(src: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, size: int):
    """Piecewise-affine warp of an RGBA image by six anchors a..f (2 x 3 grid, b = top middle):
    four triangles fanning out of b, each affine map extended over its angular sector, so the
    whole template moves continuously. Returns (rgb float, alpha float 0..1)."""
    a = src.astype(np.float32)
    alpha = a[..., 3] / 255.0
    rgbp = np.concatenate([a[..., :3] * alpha[..., None], alpha[..., None]], -1).astype(np.float32)
    A, B, C, D, E, F = range(6)
    tris = [(B, A, D), (B, D, E), (B, E, F), (B, F, C)]
    inv = [cv2.getAffineTransform(dst_pts[list(t)].astype(np.float32),
                                  src_pts[list(t)].astype(np.float32)) for t in tris]
    b = dst_pts[B]
    down = dst_pts[E] - b
    base = math.atan2(down[1], down[0])

    def ang(v):
        return (np.arctan2(v[..., 1], v[..., 0]) - base + np.pi) % (2 * np.pi) - np.pi

    phi_d, phi_f = float(ang(dst_pts[D] - b)), float(ang(dst_pts[F] - b))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    phi = ang(np.stack([xx - b[0], yy - b[1]], -1))
    sd = np.sign(phi_d) if phi_d != 0 else -np.sign(phi_f)
    on_d = phi * sd >= 0
    idx = np.where(on_d, np.where(np.abs(phi) <= abs(phi_d), 1, 0),
                   np.where(np.abs(phi) <= abs(phi_f), 2, 3))
    mapx = np.zeros((size, size), np.float32)
    mapy = np.zeros((size, size), np.float32)
    for k, m in enumerate(inv):
        sel = idx == k
        mapx[sel] = m[0, 0] * xx[sel] + m[0, 1] * yy[sel] + m[0, 2]
        mapy[sel] = m[1, 0] * xx[sel] + m[1, 1] * yy[sel] + m[1, 2]
    out = cv2.remap(rgbp, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=(0, 0, 0, 0))
    al = np.clip(out[..., 3], 0, 1)
    return _unpremultiply(out[..., :3], al), al


#: a gas mask's filters reach far beyond its anchors; when an outer sector of the fan warp is
#: stretched more than this (its area ratio over the median sector's), the filter is thrown off the
#: face as a long "wing": the anchors' jitter is drawn again, at most GAS_REDRAWS times, then
#: another family of mask is drawn
GAS_STRETCH = 2.0
GAS_REDRAWS = 4


def _fan_stretch(src_pts: np.ndarray, dst_pts: np.ndarray) -> float:
    """How much more :func:`_fan_warp` stretches its outer sectors (b-a-d, b-f-c) than its median
    sector (area ratios dst / src); inf when a sector is folded over."""
    def area(p):
        return 0.5 * ((p[1, 0] - p[0, 0]) * (p[2, 1] - p[0, 1]) - (p[2, 0] - p[0, 0]) * (p[1, 1] - p[0, 1]))

    tris = [(1, 0, 3), (1, 3, 4), (1, 4, 5), (1, 5, 2)]
    r = np.array([area(dst_pts[list(t)]) / (area(src_pts[list(t)]) or 1e-9) for t in tris])
    if (r <= 0).any():
        return float("inf")
    return float(max(r[0], r[3]) / np.median(r))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _color_match(occ: np.ndarray, alpha: np.ndarray, clean: np.ndarray, box: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Pull the occluder's colour part of the way towards the scene: the scene's colour cast,
    its brightness, a little of its mean colour, and a random gain."""
    h, w = clean.shape[:2]
    l, t, r, b = [int(v) for v in np.round(box)]
    l, t, r, b = max(l, 0), max(t, 0), min(r, w), min(b, h)
    scene = clean[t:b, l:r] if (r - l > 4 and b - t > 4) else clean
    scene = scene.reshape(-1, 3).astype(np.float32)
    s_mean = scene.mean(0) + 1.0
    sel = alpha > 0.5
    if not sel.any():
        return occ, {}
    o_mean = occ[sel].mean(0)
    t_cast, t_bright, t_shift = rng.uniform(0.15, 0.45), rng.uniform(0.1, 0.35), rng.uniform(0.0, 0.15)
    gain = rng.uniform(0.9, 1.08)
    cast = (s_mean / s_mean.mean()) ** t_cast
    bright = float(np.clip((_luma(s_mean) / 140.0) ** t_bright, 0.7, 1.25))
    out = occ * (cast * bright * gain)[None, None, :]
    out = out + t_shift * (s_mean - o_mean)[None, None, :]
    return np.clip(out, 0, 255), {"gain": round(float(gain * bright), 3)}


def _recolor(occ: np.ndarray, alpha: np.ndarray, rng: np.random.Generator, meta: dict) -> np.ndarray:
    """A face mask in one of :data:`RECOLORS`, keeping its shading (luminance over the mask's
    75th percentile) and a little of its texture."""
    base = np.asarray(RECOLORS[int(rng.integers(len(RECOLORS)))], np.float32) * rng.uniform(0.9, 1.1, 3)
    lum = _luma(occ)
    sel = alpha > 0.5
    ref = float(np.percentile(lum[sel], 75)) if sel.any() else 200.0
    shade = np.clip(lum / max(ref, 1.0), 0.0, 1.2)[..., None]
    meta["recolor"] = [int(v) for v in np.clip(base, 0, 255)]
    return np.clip(base[None, None, :] * (0.35 + 0.65 * shade), 0, 255)


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _draw_loops(occluded: np.ndarray, mask: np.ndarray, pts: FacePoints, anchors: np.ndarray,
                rng: np.random.Generator, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Ear loops from the face mask's side corners (anchors a, d and c, f) round the ears, or, on
    an N95, two head straps from the same corners running back past the ears. Antialiased, in the
    mask's own colour (or white or black), 1-2.2 % of the face width thick. Returns (occluded,
    bool loop mask)."""
    size = occluded.shape[0]
    fw, ux, uy = pts.face_width, pts.ux, pts.uy
    sel = mask
    own = occluded[sel].reshape(-1, 3).astype(np.float32).mean(0) if sel.any() else np.full(3, 220.0)
    pick = rng.random()
    color = own * rng.uniform(0.9, 1.1) if pick < 0.6 else (np.full(3, 235.0) if pick < 0.85 else np.full(3, 30.0))
    thick = max(1.0, fw * rng.uniform(0.010, 0.022))
    strap = meta.get("family") == "N95"
    ss = 4  # drawn at 4x and area-averaged down: thin loops get soft, honest edges
    canvas = np.zeros((size * ss, size * ss), np.uint8)
    for side, top, bottom in ((-1, anchors[0], anchors[3]), (1, anchors[2], anchors[5])):
        ear = pts.ear(side) + rng.normal(0, 0.02 * fw, 2)
        if strap:  # head straps run from the corners back past the ear, out of the face
            far = ear + side * rng.uniform(0.25, 0.4) * fw * ux
            curves = [_bezier(top, (top + far) / 2 - 0.05 * fw * uy, far - 0.08 * fw * uy),
                      _bezier(bottom, (bottom + far) / 2 + 0.03 * fw * uy, far + 0.12 * fw * uy)]
        else:  # a loop: corner -> top of the ear root, corner -> below the ear, joined behind it
            top_ear = ear - 0.05 * fw * uy
            low_ear = ear + rng.uniform(0.10, 0.16) * fw * uy
            back = ear + side * 0.05 * fw * ux + 0.04 * fw * uy
            curves = [_bezier(top, (top + top_ear) / 2 - 0.04 * fw * uy, top_ear),
                      _bezier(bottom, (bottom + low_ear) / 2 + side * 0.03 * fw * ux, low_ear),
                      _bezier(top_ear, back - 0.06 * fw * uy, low_ear)]
        for c in curves:
            pl = np.round(c * ss).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(canvas, [pl], False, 255, thickness=max(1, round(thick * ss)), lineType=cv2.LINE_AA)
    a = cv2.resize(canvas.astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_AREA)
    a[mask] = 0  # the mask's body already covers it there
    a[a < 1.0 / 255] = 0
    loops = a > 0
    out = occluded.astype(np.float32) * (1 - a[..., None]) + color[None, None, :] * a[..., None]
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    out[~loops] = occluded[~loops]
    meta["loops"] = "straps" if strap else "ear loops"
    return out, loops


def composite(clean: np.ndarray, occ: np.ndarray, alpha: np.ndarray,
              soften: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(occluded uint8, exact bool mask). The alpha is blurred only in the band dilate - erode of
    its edge; alphas under 1/255 are dropped; outside the mask the clean pixels are kept as is."""
    a = np.clip(alpha.astype(np.float32), 0, 1)
    if soften > 0:
        hard = (a > 0.5).astype(np.uint8)
        k = np.ones((3, 3), np.uint8)
        band = (cv2.dilate(hard, k, iterations=2) > 0) & ~(cv2.erode(hard, k, iterations=1) > 0)
        blurred = cv2.GaussianBlur(a, (0, 0), soften)
        a = np.where(band, blurred, a)
    a[a < 1.0 / 255] = 0
    mask = a > 0
    out = clean.astype(np.float32) * (1 - a[..., None]) + occ.astype(np.float32) * a[..., None]
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    out[~mask] = clean[~mask]
    return out, mask


# -- the synthesizer ----------------------------------------------------------------------------
class Synthesizer:
    """Draw occluders on aligned faces. ``data``: the data root (``--data`` / ``$UNVEIL_DATA``);
    ``split`` picks the object set (object_train for train, object_test for val and test) and the
    faces that RandOcc shapes may borrow a patch from."""

    def __init__(self, data=None, split: str = "train", size: int = 256, loops: float = 0.0,
                 recolor: float = 0.0):
        if split not in SPLITS:
            raise UnveilError(f"unknown split '{split}' (use one of {', '.join(SPLITS)})")
        if not (0 <= loops <= 1 and 0 <= recolor <= 1):
            raise UnveilError("loops and recolor are probabilities (0..1)")
        self.data, self.split, self.size = data, split, size
        #: face masks: the share drawn with ear loops (head straps on N95s), and the share recoloured
        #: to a solid colour (black, grey, navy, ...). Both draw from their own random stream, so
        #: with 0 (the default) every seeded sample is exactly what it was before they existed.
        self.loops, self.recolor = loops, recolor
        self._assets: _Assets | None = None

    @property
    def assets(self) -> _Assets:
        if self._assets is None:
            from unveil.data.paths import data_root

            self._assets = _Assets(data_root(self.data, need="occluders"), self.split)
        return self._assets

    # public ------------------------------------------------------------------------------------
    def sample(self, face: np.ndarray, seed: int | Sequence[int] = 0, kind: str | None = None,
               landmarks=None) -> SynthSample:
        """One occluded version of ``face`` (uint8 HxWx3, square). ``landmarks``: a detect.Face,
        a (478, 2) mesh or FacePoints; None runs the detector."""
        face = np.asarray(face)
        if face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8 or face.shape[0] != face.shape[1]:
            raise UnveilError(f"face must be a square uint8 HxWx3 image, got {face.dtype} {face.shape}")
        if kind is not None and kind not in KINDS:
            raise UnveilError(f"unknown occluder kind '{kind}' (use one of {', '.join(KINDS)})")
        seed_list = [int(seed)] if np.isscalar(seed) else [int(s) for s in seed]
        rng = np.random.default_rng(seed_list)
        if kind is None:
            kind = KINDS[int(rng.integers(len(KINDS)))]
        self.assets.need(kind)
        pts = _face_points(face, landmarks)
        size = face.shape[0]
        lo, hi = min_area(kind), MAX_AREA
        extra = np.random.default_rng(seed_list + [EXTRA_STREAM])  # loops and recolouring only
        best = None
        for attempt in range(MAX_TRIES):
            occ, alpha, meta = getattr(self, f"_draw_{kind}")(face, pts, rng)
            if kind == "facemask" and self.recolor and extra.random() < self.recolor:
                occ = _recolor(occ, alpha, extra, meta)
            occ, cm = _color_match(occ, alpha, face, pts.box, rng)
            occluded, mask = composite(face, occ, alpha, soften=rng.uniform(0.6, 1.2) * size / 256)
            ratio = float(mask.mean())
            meta.update(cm)
            cand = (occluded, mask, meta, ratio)
            if lo <= ratio <= hi:
                best = cand
                break
            if best is None or abs(np.clip(ratio, lo, hi) - ratio) < abs(np.clip(best[3], lo, hi) - best[3]):
                best = cand
        occluded, mask, meta, ratio = best
        if not mask.any():
            raise UnveilError(f"could not place a '{kind}' occluder on this face")
        loops = None
        if kind == "facemask" and self.loops and extra.random() < self.loops:
            occluded, loops = _draw_loops(occluded, mask, pts, np.asarray(meta["anchors"]), extra, meta)
            mask = mask | loops
            ratio = float(mask.mean())
        meta.pop("anchors", None)
        meta.update(seed=seed_list, attempts=attempt + 1, hole_ratio=round(ratio, 4))
        return SynthSample(occluded, mask, face.copy(), kind, meta, loops)

    # kinds -------------------------------------------------------------------------------------
    def _draw_facemask(self, face, pts: FacePoints, rng):
        size = face.shape[0]
        A = self.assets
        families = sorted({t.family for t in A.templates})
        weights = np.array([FAMILY_WEIGHTS.get(f, 1.0) for f in families])
        fam = families[int(rng.choice(len(families), p=weights / weights.sum()))]
        ux, uy = pts.ux, pts.uy
        dst = np.array([pts.cheek_l, pts.bridge, pts.cheek_r, pts.jaw_l,
                        pts.chin + 0.04 * np.dot(pts.chin - pts.subnasal, uy) * uy, pts.jaw_r])
        anchors = dst
        for k in range(2 + GAS_REDRAWS):
            if k == 1 + GAS_REDRAWS:  # this face's shape throws every gas mask off it: another kind
                others = [f for f in families if f != "gas"]
                fam = others[int(rng.integers(len(others)))]
            dst = anchors + rng.normal(0, 0.012 * pts.face_width, anchors.shape)
            r_face = float(np.dot(dst[1] - dst[0], ux) / max(np.dot(dst[2] - dst[0], ux), 1e-6))
            # the frontal template unless the face is clearly turned (nose near one cheek)
            want = 0.5 if 0.33 <= r_face <= 0.67 else r_face
            tpl = min((t for t in A.templates if t.family == fam), key=lambda t: abs(t.nose_ratio - want))
            img, s = A.rgba(tpl.path)
            src = tpl.anchors * s
            if fam != "gas" or _fan_stretch(src, dst) <= GAS_STRETCH:
                break
        # shrink the template to about its final size first (area filter, no aliasing)
        f = min(1.0, 1.3 * np.linalg.norm(dst[2] - dst[0]) / max(np.linalg.norm(src[2] - src[0]), 1e-6))
        if f < 1:
            w, h = max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f))
            src = src * np.array([w / img.shape[1], h / img.shape[0]])
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        meta = {"asset": tpl.path.name, "template": tpl.name, "family": tpl.family, "anchors": dst.tolist()}
        light = tpl.family in ("surgical", "cloth", "KN95", "N95")
        if light and rng.random() < 0.35:
            tex, tname = A.texture_image(rng)
            img = self._pattern(img, tex, rng)
            meta["texture"] = tname
        elif tpl.family == "surgical" and rng.random() < 0.3:
            tint = rng.uniform(0.55, 1.0, 3)
            img = img.copy()
            img[..., :3] = np.clip(img[..., :3] * tint, 0, 255).astype(np.uint8)
            meta["tint"] = np.round(tint, 3).tolist()
        occ, alpha = _fan_warp(img, src, dst, size)
        return occ, alpha, meta

    @staticmethod
    def _pattern(img: np.ndarray, tex: np.ndarray, rng) -> np.ndarray:
        """Print a tiled texture on a template, keeping its shading (luminance relative to the
        mask's mean) and its alpha."""
        h, w = img.shape[:2]
        tile_w = max(8, int(w / rng.uniform(2.0, 4.0)))
        tile = cv2.resize(tex, (tile_w, max(8, round(tex.shape[0] * tile_w / tex.shape[1]))),
                          interpolation=cv2.INTER_AREA)
        reps = (h // tile.shape[0] + 1, w // tile.shape[1] + 1, 1)
        tiled = np.tile(tile, reps)[:h, :w].astype(np.float32)
        rgb = img[..., :3].astype(np.float32)
        lum = _luma(rgb)
        sel = img[..., 3] > 128
        ref = float(np.percentile(lum[sel], 75)) if sel.any() else 200.0
        shade = np.clip(lum / max(ref, 1.0), 0.0, 1.15)[..., None]
        out = img.copy()
        out[..., :3] = np.clip(tiled * shade, 0, 255).astype(np.uint8)
        return out

    def _glasses_like(self, files, face, pts: FacePoints, rng):
        size = face.shape[0]
        p = files[int(rng.integers(len(files)))]
        img = _crop_alpha(self.assets.rgba(p)[0])
        if rng.random() < 0.5:
            img = img[:, ::-1]
        corner_d = float(np.linalg.norm(pts.corner_r - pts.corner_l))
        width = corner_d * rng.uniform(1.4, 1.65)
        scale = width / img.shape[1]
        center = (pts.eye_l + pts.eye_r) / 2 + pts.uy * pts.eye_dist * rng.uniform(0.0, 0.1)
        angle = pts.roll + rng.uniform(-3, 3)
        src_c = (img.shape[1] / 2, img.shape[0] * 0.45)
        occ, alpha = _place(img, src_c, scale, angle, center, size)
        return occ, alpha, {"asset": p.name}

    def _draw_glasses(self, face, pts, rng):
        return self._glasses_like(self.assets.files["glasses"], face, pts, rng)

    def _draw_sunglasses(self, face, pts, rng):
        return self._glasses_like(self.assets.files["sunglasses"], face, pts, rng)

    def _draw_scarf(self, face, pts: FacePoints, rng):
        size = face.shape[0]
        files = self.assets.files["scarf"]
        p = files[int(rng.integers(len(files)))]
        img = _crop_alpha(self.assets.rgba(p)[0])
        if rng.random() < 0.5:
            img = img[:, ::-1]
        # start at the first row that is mostly solid, so the top edge is a real edge
        cover = (img[..., 3] > 128).mean(1)
        rows = np.nonzero(cover >= 0.6)[0]
        if len(rows):
            img = img[rows[0]:]
        ux, uy = pts.ux, pts.uy
        width = pts.face_width * rng.uniform(1.05, 1.35)
        top = pts.subnasal + (pts.upper_lip - pts.subnasal) * rng.uniform(-0.2, 0.6)
        centre_x = (pts.cheek_l + pts.cheek_r) / 2
        top = top + ux * (np.dot(centre_x - top, ux) + rng.normal(0, 0.03 * pts.face_width))
        need_h = (np.dot(pts.chin - top, uy) + 0.25 * pts.eye_dist) * 1.15
        sx = width / img.shape[1]
        sy = max(sx, need_h / img.shape[0])
        angle = pts.roll + rng.uniform(-8, 8)
        occ, alpha = _place(img, (img.shape[1] / 2, 0.0), (sx, sy), angle, top, size)
        # a gently curved top edge (higher or lower at the cheeks), anti-aliased
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        rel = np.stack([xx - top[0], yy - top[1]], -1)
        u, v = rel @ ux, rel @ uy
        curve = rng.uniform(-0.35, 0.2) * pts.eye_dist * (u / (width / 2)) ** 2
        curve = curve + rng.uniform(0, 0.04) * pts.eye_dist * np.sin(u / width * rng.uniform(6, 14)
                                                                     + rng.uniform(0, 6.3))
        alpha = alpha * np.clip(v - curve + 0.5, 0, 1)
        return occ, alpha, {"asset": p.name}

    def _draw_object(self, face, pts: FacePoints, rng):
        size = face.shape[0]
        files = self.assets.files["object"]
        p = files[int(rng.integers(len(files)))]
        img = _crop_alpha(self.assets.rgba(p)[0])
        if rng.random() < 0.5:
            img = img[:, ::-1]
        l, t, r, b = self._face_box(pts, size)
        face_side = max(r - l, b - t)
        scale = rng.uniform(0.15, 0.45) * face_side / max(img.shape[:2])
        centre = np.array([rng.uniform(l, r), rng.uniform(t, b)])
        occ, alpha = _place(img, (img.shape[1] / 2, img.shape[0] / 2), scale, rng.uniform(-45, 45),
                            centre, size)
        return occ, alpha, {"asset": p.name}

    def _draw_shape(self, face, pts: FacePoints, rng):
        size = face.shape[0]
        l, t, r, b = self._face_box(pts, size)
        face_side = max(r - l, b - t)
        centre = np.array([rng.uniform(l, r), rng.uniform(t, b)])
        rad = rng.uniform(0.12, 0.3) * face_side
        aspect = rng.uniform(0.5, 1.6)
        rot = rng.uniform(0, np.pi)
        form = ("ellipse", "rectangle", "polygon")[int(rng.integers(3))]
        if form == "ellipse":
            th = np.linspace(0, 2 * np.pi, 64, endpoint=False)
            pts_ = np.stack([np.cos(th) * rad * aspect, np.sin(th) * rad], -1)
        elif form == "rectangle":
            pts_ = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * np.array([rad * aspect, rad])
        else:
            nv = int(rng.integers(5, 10))
            th = np.sort(rng.uniform(0, 2 * np.pi, nv))
            rr = rad * rng.uniform(0.45, 1.15, nv)
            pts_ = np.stack([np.cos(th) * rr * aspect, np.sin(th) * rr], -1)
        rm = np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
        poly = pts_ @ rm.T + centre
        canvas = np.zeros((size, size), np.uint8)
        cv2.fillPoly(canvas, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        alpha = canvas.astype(np.float32) / 255
        if rng.random() < 0.5:
            src, name = self.assets.texture_image(rng)
        else:
            src, name = self.assets.other_face(rng, size)
        side = min(src.shape[:2]) * rng.uniform(0.35, 1.0)
        y0 = rng.uniform(0, src.shape[0] - side)
        x0 = rng.uniform(0, src.shape[1] - side)
        crop = src[int(y0): int(y0 + side), int(x0): int(x0 + side)]
        occ = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        return occ, alpha, {"asset": name, "shape": form}

    @staticmethod
    def _face_box(pts: FacePoints, size: int) -> tuple[float, float, float, float]:
        l, t, r, b = pts.box
        return max(l, 0.0), max(t, 0.0), min(r, size - 1.0), min(b, size - 1.0)


# -- the `unveil synth` command -----------------------------------------------------------------
@dataclass
class SynthConfig:
    out: str = "runs/synth"
    n: int = 24
    split: str = "train"
    size: int = 256
    seed: int = 0
    kinds: tuple | None = None
    data: str | None = None


def contact_sheet(samples: list[SynthSample], per_row: int = 3) -> np.ndarray:
    """Rows of occluded | mask | clean, ``per_row`` triplets per row, the occluded one labelled."""
    from unveil.viz import image_grid, label

    cells = []
    for s in samples:
        name = str(s.meta.get("asset", ""))[:18]
        mask = np.repeat(s.mask[..., None].astype(np.uint8) * 255, 3, 2)
        cells.append([label(s.occluded, f"{s.kind} {name}"), mask, s.clean])
    blank = np.full_like(cells[0][0], 255)
    rows = []
    for i in range(0, len(cells), per_row):
        group = cells[i: i + per_row]
        group += [[blank, blank, blank]] * (per_row - len(group))
        rows.append([im for trip in group for im in trip])
    return image_grid(rows)


def run_synth(cfg: SynthConfig) -> str:
    from tqdm import tqdm

    from unveil.data import face_records, load_face
    from unveil.io import write_image, write_json

    kinds = tuple(cfg.kinds) if cfg.kinds else KINDS
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise UnveilError(f"unknown occluder kind(s) {', '.join(bad)} (use {', '.join(KINDS)})")
    if cfg.n < 1:
        raise UnveilError("--n must be at least 1")
    if cfg.size < 64:
        raise UnveilError("--size must be at least 64")
    synth = Synthesizer(cfg.data, cfg.split, cfg.size)
    for k in kinds:
        synth.assets.need(k)
    records = face_records("utkface", cfg.split, cfg.data)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    items, samples, skipped = [], [], 0
    t0 = time.perf_counter()
    j = 0  # index into the records; faces with no detection are skipped
    for i in tqdm(range(cfg.n), desc="synth", unit="img"):
        kind = kinds[i % len(kinds)]
        while True:
            rec = records[j % len(records)]
            j += 1
            face = load_face(rec, cfg.size)
            try:
                s = synth.sample(face, seed=(cfg.seed, i), kind=kind)
                break
            except UnveilError as e:
                if "no face" not in str(e) or skipped > 50:
                    raise
                skipped += 1
        stem = f"{i:05d}"
        files = {"occluded": f"{stem}_occluded.png", "mask": f"{stem}_mask.png", "clean": f"{stem}_clean.png"}
        write_image(out / files["occluded"], s.occluded)
        write_image(out / files["mask"], s.mask)
        write_image(out / files["clean"], s.clean)
        items.append({"index": i, "files": files, "kind": s.kind, "asset": s.meta.get("asset"),
                      "hole_ratio": round(s.hole_ratio, 4), "source": str(rec.path),
                      "seed": [cfg.seed, i], "meta": s.meta})
        samples.append(s)
    elapsed = time.perf_counter() - t0
    write_json(out / "manifest.json", {
        "split": cfg.split, "size": cfg.size, "seed": cfg.seed, "kinds": list(kinds), "n": cfg.n,
        "skipped_no_face": skipped, "items": items})
    write_image(out / "sheet.png", contact_sheet(samples))
    counts = {k: sum(it["kind"] == k for it in items) for k in kinds}
    return (f"wrote {cfg.n} triplets to {out} ({', '.join(f'{k} {c}' for k, c in counts.items())}; "
            f"{1000 * elapsed / cfg.n:.0f} ms each); manifest.json, sheet.png")
