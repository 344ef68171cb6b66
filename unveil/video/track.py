"""Faces followed across frames, and the temporal smoothing the video path gives the pipeline.

:class:`Tracker` is a :class:`~unveil.pipeline.Hooks`: per frame it returns the faces (detected
every ``detect_every`` frames, their five key points carried between detections by pyramidal
Lucas-Kanade optical flow and smoothed by a One-Euro filter, so the aligned crop does not jitter),
smooths each face's occluder probability in its own crop coordinates (so the mask neither jumps nor
blinks), and blends each fill with the previous frame's fill of the same face (so the fill holds
still when the face barely moves). A cut (the frame changes at once) or a face lost by the flow
brings a fresh detection; faces that enter get a track, faces that leave lose theirs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from unveil.face import Face
from unveil.pipeline import Hooks


class OneEuro:
    """The One-Euro filter (Casiez et al. 2012) on an array: smooths hard when the signal is still,
    follows at once when it moves. ``scale`` divides the signal (a face's size) so the cut-off
    speeds mean the same at any resolution."""

    def __init__(self, rate: float, min_cutoff: float = 0.8, beta: float = 1.0, d_cutoff: float = 1.0):
        self.rate, self.min_cutoff, self.beta, self.d_cutoff = rate, min_cutoff, beta, d_cutoff
        self.x = self.dx = None

    def _alpha(self, cutoff: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.rate)

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.x is None:
            self.x, self.dx = x.copy(), np.zeros_like(x)
            return x
        dx = (x - self.x) * self.rate
        a_d = self._alpha(self.d_cutoff)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        speed = float(np.abs(self.dx).mean()) / max(scale, 1e-6)
        a = self._alpha(self.min_cutoff + self.beta * speed)
        self.x = a * x + (1 - a) * self.x
        return self.x.copy()


@dataclass
class Track:
    id: int
    raw: np.ndarray  #: (5, 2) the key points as detected or flowed, photo pixels
    box: np.ndarray
    score: float
    filt: OneEuro
    kps: np.ndarray = None  #: (5, 2) smoothed
    prob: dict = field(default_factory=dict)  #: where -> smoothed occluder probability (crop)
    fill: np.ndarray | None = None  #: the last pasted crop
    hole: np.ndarray | None = None
    moved: float = 0.0  #: how far the smoothed key points moved since the last frame, in crop px
    kinds: list = field(default_factory=list)  #: the hole's kind on the last frames


def _scale(kps: np.ndarray) -> float:
    return float(np.linalg.norm(kps[1] - kps[0])) + 1e-6  # eye distance


class Tracker(Hooks):
    """See the module. ``fps``: the clip's frame rate. ``prob_keep`` / ``fill_keep``: the share of
    the previous frame's probability / fill kept (the fill's share falls as the face moves)."""

    def __init__(self, fps: float = 25.0, detect_every: int = 5, prob_keep: float = 0.6, fill_keep: float = 0.7,
                 cut_diff: float = 40.0, work_size: int = 256):
        self.fps, self.every, self.prob_keep, self.fill_keep = fps, max(1, detect_every), prob_keep, fill_keep
        self.cut_diff, self.work_size = cut_diff, work_size
        self.tracks: list[Track] = []
        self.current: list[Track] = []
        self.frame = -1
        self.since_detect = 0
        self.prev_gray = self.prev_small = None
        self.next_id = 0
        self.cuts = 0

    def reset(self) -> None:
        self.tracks, self.current = [], []

    # -- faces -------------------------------------------------------------------------------------
    def _new(self, f: Face) -> Track:
        t = Track(self.next_id, f.kps5.astype(np.float64), np.asarray(f.box, np.float64), float(f.score),
                  OneEuro(self.fps))
        self.next_id += 1
        return t

    def _detect(self, image: np.ndarray, detector) -> None:
        found = detector.detect(image)
        kept, free = [], list(self.tracks)
        for f in found:
            best, dist = None, np.inf
            for t in free:
                d = float(np.linalg.norm(t.raw - f.kps5, axis=1).mean()) / _scale(f.kps5)
                if d < dist:
                    best, dist = t, d
            if best is not None and dist < 0.5:
                free.remove(best)
                best.raw, best.box, best.score = f.kps5.astype(np.float64), np.asarray(f.box, np.float64), float(f.score)
                kept.append(best)
            else:
                kept.append(self._new(f))
        self.tracks = kept  # tracks with no face any more are dropped (the face left)
        self.since_detect = 0

    def _flow(self, gray: np.ndarray) -> bool:
        """Carry every track's key points to ``gray``; False when one is lost."""
        if not self.tracks:
            return True
        pts = np.concatenate([t.raw for t in self.tracks]).astype(np.float32)[:, None]
        lk = dict(winSize=(21, 21), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(self.prev_gray, gray, pts, None, **lk)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, self.prev_gray, nxt, None, **lk)
        err = np.linalg.norm((back - pts)[:, 0], axis=1)
        h, w = gray.shape
        ok = True
        for k, t in enumerate(self.tracks):
            sl = slice(5 * k, 5 * k + 5)
            good = (st[sl, 0] == 1) & (st2[sl, 0] == 1) & (err[sl] < 0.05 * _scale(t.raw) + 1.0)
            new = nxt[sl, 0].astype(np.float64)
            inside = (new[:, 0] >= 0).all() and (new[:, 1] >= 0).all() and (new[:, 0] < w).all() and (new[:, 1] < h).all()
            if good.sum() < 4 or not inside:
                ok = False
                continue
            shift = np.median(new[good] - t.raw[good], axis=0)
            new[~good] = t.raw[~good] + shift
            t.box = t.box + np.tile(shift, 2)
            t.raw = new
        return ok

    def faces(self, image: np.ndarray, detector) -> list[Face]:
        self.frame += 1
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        small = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
        cut = self.prev_small is not None and float(np.abs(small - self.prev_small).mean()) > self.cut_diff
        if cut:
            self.cuts += 1
            self.reset()
        if self.prev_gray is None or cut or self.since_detect + 1 >= self.every or not self.tracks \
                or gray.shape != self.prev_gray.shape or not self._flow(gray):
            self._detect(image, detector)
        else:
            self.since_detect += 1
        self.prev_gray, self.prev_small = gray, small
        out = []
        for t in self.tracks:
            before = t.kps
            t.kps = t.filt(t.raw, _scale(t.raw))
            t.moved = 0.0 if before is None else \
                float(np.linalg.norm(t.kps - before, axis=1).mean()) * self.work_size * 0.35 / _scale(t.kps)
            out.append((t, Face(t.box.copy(), t.score, t.kps.astype(np.float32), None)))
        out.sort(key=lambda tf: -(tf[1].width * tf[1].height))  # largest first, as the detector gives
        self.current = [t for t, _ in out]
        return [f for _, f in out]

    # -- what the pipeline decides on --------------------------------------------------------------
    def probability(self, i: int, where: str, prob: np.ndarray) -> np.ndarray:
        t = self.current[i]
        old = t.prob.get(where)
        if old is not None and old.shape == prob.shape:
            prob = self.prob_keep * old + (1 - self.prob_keep) * prob
        t.prob[where] = prob.astype(np.float32)
        return t.prob[where]

    def kind(self, i: int, kind: str) -> str:
        """The most frequent kind of the last 15 frames (so the inpainter does not switch back and
        forth on a hole at the edge between two kinds)."""
        t = self.current[i]
        t.kinds = (t.kinds + [kind])[-15:]
        named = [k for k in t.kinds if k != "none"]
        if kind == "none" or not named:
            return kind
        return max(set(named), key=lambda k: (named.count(k), k == kind))

    def fill(self, i: int, restored: np.ndarray, hole: np.ndarray) -> np.ndarray:
        t = self.current[i]
        out = restored
        if t.fill is not None and t.fill.shape == restored.shape:
            keep = self.fill_keep * math.exp(-t.moved / 3.0)
            both = hole & t.hole
            if keep > 0.02 and both.any():
                out = restored.copy()
                mix = keep * t.fill[both].astype(np.float32) + (1 - keep) * restored[both].astype(np.float32)
                out[both] = np.clip(mix + 0.5, 0, 255).astype(np.uint8)
        t.fill, t.hole = out, hole.copy()
        return out
