"""End to end: any photo in, the faces beneath their occluders out.

``Restorer`` runs, for every selected face: detect → align to a ``work_size`` crop (unveil's
template) → segment the occluder in the crop (or take the user's mask) → dilate slightly →
inpaint the crop → shift the fill to meet its border → paste back the hole in full, feathered
outward by a few pixels; a wide crop of the same face (chin, neck, ears) finds the rest of the
occluder (and the thin ear loops leaving it sideways that the segmenter missed), and what lies
beyond the face crop is filled on the wide crop (IFACENET's fidelity variant). Everything learned runs on the
aligned crops, never on the full-resolution photo, so a 6000x4000 photo costs about what a small
one does.

Every hole pixel is replaced. With an automatic mask the blend feathers outward over a band of
about 3 crop pixels (1.2 % of the crop side) around the hole; with a user's mask nothing outside
the mask changes. Every other pixel is returned byte-identical, and ``Restoration.mask`` is exactly
the set of changed pixels. With an automatic mask, an occluder is removed where it touches
the face: on the face crop, and on the wide crop where it is connected to what the face crop
found (an occluder elsewhere in the photo is left alone). With a user mask, every masked pixel is filled: on a face through the crop, elsewhere
with a local classical fill (Telea) on a window around it.

    from unveil.pipeline import Restorer
    r = Restorer()                       # SOCLNET finds the occluder, the best inpainter fills it
    result = r.restore(image)            # Restoration: .image, .mask, .faces (per-face report)
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from unveil.errors import UnveilError
from unveil.face import (TEMPLATE, WIDE_TEMPLATE, AlignedFace, Face, align_face, get_detector, image_window,
                         mask_to_window, paste_window, replaced_in_full)
from unveil.face.align import framed_template

#: Width of the outward blend at the hole's edge, as a share of the crop side (3 px at 256): the
#: hole itself is replaced in full, :func:`match_border` has already made the fill meet the photo.
SEAM = 0.012
#: the most a fill's tone is moved to meet its border (grey levels): a border pixel that is still
#: part of the occluder (a rim the segmenter missed) must not drag its colour into the fill
MAX_TONE_SHIFT = 24.0

#: Faces smaller than this (box side in pixels) are reported and skipped: too small to restore.
#: Until 2026-12-08 24 px; at 16 the held-out real masked photos with a face restored went from 91
#: to 95 of 100 (thumbnails of crowds whose masked faces are 16-21 px), clean LFW photos touched
#: stayed at 3 %. Below about 20 px the hole may reach the eyes and the fill is coarse.
MIN_FACE = 16
#: ``inpainter="auto"`` (the default): the inpainter for each kind of hole (:func:`occluder_kind`),
#: chosen by measured realism and fidelity (docs/benchmarks.md). On face-mask holes (100 UTKFace
#: test faces, 256 px, ``make bench``, 2026-12-08) lgface (stage 6e4 of its realism fine-tune, its
#: 256 px detail refiner, the mirror look) leads on LPIPS (0.104), LPIPS-VGG on the hole's box
#: (0.322) and PSNR (25.03 dB, its fidelity variant ``lgface-fidelity`` 24.63, smoother, detail
#: 0.20); detail 0.86 of the truth's, identity distance 0.431, dlib finds a face on 100 %; ifacenet
#: there: 23.57 dB, LPIPS-VGG 0.345, identity 0.457. Over the eyes (the
#: sunglasses hole, ``--masks eyes``, ``make bench`` on 100 test faces) lgface (stage 6e4, trained
#: on such holes too) paints eyelids and eyes where ifacenet (with its refiner) paints dark smudges:
#: LPIPS 0.055 against 0.063, LPIPS-VGG box 0.255 against 0.277, identity distance 0.368 against
#: 0.405, detail 0.95 against 0.64, dlib finds a face on 99 % against 96 %, PSNR 28.93 against
#: 27.75 dB (ifacenet-fidelity: 0.101, 0.351, 0.414, 0.14, 94 %, 28.21; lgface stage 6f, before
#: it: 0.064, 0.284, 0.397, 0.87, 97 %, 28.05). Other holes (hands, objects, hair; the NVIDIA bins
#: as their proxy, 200 test faces) get the best-ranked model, ifacenet (its realism fine-tune and
#: its 256 px refiner since 2026-12-07; both with the mirror look since 2026-12-08): it is nearer
#: the person (identity distance 0.390 against lgface stage 6e4's 0.401) and the truth (PSNR 28.46
#: against 28.19 dB), and ahead on LPIPS-VGG box (0.205 against 0.228), LPIPS (0.096 against 0.105)
#: and FD on the hole boxes (5.4 against 6.0); lgface paints more detail (0.81 against 0.63). Before the fine-tune
#: (``ifacenet-fidelity``: 0.377, 28.88 dB, 0.237, 0.121, 9.8, 0.17) it was nearer still but a blur.
AUTO = "auto"
BY_KIND = {"lower face": "lgface", "eyes": "lgface"}


def by_kind_text(article: str = "") -> str:
    """:data:`BY_KIND` in words, kinds grouped by model: "lgface for lower face and eyes"."""
    kinds: dict[str, list[str]] = {}
    for k, m in BY_KIND.items():
        kinds.setdefault(m, []).append(k)
    return ", ".join(f"{m} for {article}{' and '.join(ks)}" for m, ks in kinds.items())

#: what fills the part of an occluder beyond the face crop (neck, jaw, ears, hair and background
#: behind a loop; the face itself is the face inpainter's), on the wide crop. The PSNR-optimal
#: IFACENET, not a smooth membrane: on 100 LFW photos with a drawn mask and its loops (two draws,
#: ``unveil eval-coverage --beyond NAME``) it left no seam at the face crop's edge (0.98 / 1.01
#: against the clean photos' 0.99 / 1.01; pull-push 0.84 / 0.86), at the membrane's PSNR there
#: (16.44 / 15.94 dB against 16.32 / 16.01) with a little more detail, and continued hair past a
#: loop where the membrane smeared a grey blot (docs/coverage.md)
BEYOND = "ifacenet-fidelity"
#: the wider crop in which the thin lines that leave the wide crop are followed (:meth:`Restorer.loops_beyond`)
LOOP_SCALE, LOOP_LIFT = 0.45, 0.04
LOOP_TEMPLATE = framed_template(LOOP_SCALE, LOOP_LIFT)
#: the wide crop keeps pixels down to this share of the threshold when connected to the hole
WIDE_LOW = 0.6


@dataclass
class RestoreOptions:
    """How a photo is restored (the pipeline's knobs; the CLI and the web page set these)."""

    faces: str = "all"  #: "all", "largest", or face indices "0,2" (largest first)
    work_size: int = 256  #: side of the aligned crop the models run on
    threshold: float = 0.5  #: occluder where the segmenter's probability is at least this
    dilate: int = 6  #: grow the automatic mask by this many crop pixels (user masks are not grown)
    #: a face counts as occluded when at least ``min_area`` of its crop has an occluder probability
    #: of at least ``presence_threshold`` (specks dropped). Chosen on the synthetic test set and
    #: 200 clean UTKFace test faces: 5 % of clean faces touched, 1.2 % of occluded faces missed.
    presence_threshold: float = 0.7
    min_area: float = 0.02
    #: segmented specks smaller than this share of the crop are dropped
    min_component: float = 0.001
    #: also segment a wide crop round each occluded face (chin, jaw, neck, ears: ``WIDE_TEMPLATE``)
    #: and fill what lies beyond the face crop
    wide: bool = True
    #: the inpainter (a registered name) of what lies beyond the face crop (:data:`BEYOND`)
    beyond: str = BEYOND
    #: complete a lower-face occluder found in part (a printed mask whose pattern SOCLNET half
    #: recognises) by its colours: GrabCut on the face crop, seeded with the found hole
    #: (:func:`complete_occluder`)
    complete: bool = True
    #: follow the thin lines that leave the wide crop's hole sideways (ear loops and straps the
    #: segmenter missed) and fill them too (:func:`loop_traces`), on past the wide crop's edge
    #: too (:meth:`Restorer.loops_beyond`), and join the loops found apart from the hole
    #: (:func:`near_finds`)
    loops: bool = True
    identity: bool = False  #: dlib identity distance input vs output (about 0.4 s per face)
    #: the identity distance is only measured when at most this share of the face crop is hidden
    identity_max_area: float = 0.35

    def __post_init__(self):
        if self.work_size < 64 or self.work_size > 1024:
            raise UnveilError(f"work_size must be 64..1024, got {self.work_size}")
        if not 0 < self.threshold < 1:
            raise UnveilError(f"threshold must be between 0 and 1, got {self.threshold}")
        if isinstance(self.dilate, bool) or not isinstance(self.dilate, (int, np.integer)):
            raise UnveilError(f"dilate must be a whole number of pixels (0..32), got {self.dilate!r}")
        self.dilate = int(self.dilate)
        if not isinstance(self.threshold, (int, float, np.floating)) or not np.isfinite(self.threshold):
            raise UnveilError(f"threshold must be a number between 0 and 1, got {self.threshold!r}")
        if self.dilate < 0 or self.dilate > 32:
            raise UnveilError(f"dilate must be 0..32 pixels, got {self.dilate}")
        parse_faces(self.faces)  # raises on a bad selection
        if self.beyond != BEYOND:  # another name is checked here, not mid-photo (the default loads nothing)
            from unveil.models.registry import require

            require(self.beyond, "inpainter")


def parse_faces(which: str | int | list[int]) -> str | list[int]:
    """"all" | "largest" | an index | "0,2" -> "all", "largest" or a list of indices."""
    if isinstance(which, bool):
        raise UnveilError(f"faces must be 'all', 'largest' or indices like '0,2', got {which!r}")
    if isinstance(which, (int, np.integer)):
        which = [int(which)]
    if isinstance(which, (list, tuple)):
        try:
            idx = [int(i) for i in which if float(i) == int(i)]
        except (TypeError, ValueError):
            idx = []
        if not idx or len(idx) != len(which) or min(idx) < 0:
            raise UnveilError(f"faces must be 'all', 'largest' or indices from 0 (largest first), got {which!r}")
        return idx
    w = str(which).strip().lower()
    if w in ("all", "largest"):
        return w
    try:
        idx = [int(p) for p in w.split(",") if p.strip()]
    except ValueError:
        idx = []
    if not idx or min(idx) < 0:
        raise UnveilError(f"faces must be 'all', 'largest' or indices like '0,2', got '{which}'")
    return idx


@dataclass
class FaceReport:
    """What happened to one face. ``area``: share of the face crop that was filled."""

    index: int
    box: list[float]
    score: float
    restored: bool = False
    occluder: str = "none"  #: "lower face", "eyes", "other" (from where the hole lies), or "none"
    area: float = 0.0
    mask_source: str = "auto"  #: "auto" (segmenter) or "user"
    model: str = ""  #: the inpainter that filled this face
    identity_distance: float | None = None  #: dlib distance input vs output crop (same person < 0.6)
    note: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["box"] = [round(float(v), 1) for v in self.box]
        d["score"] = round(float(self.score), 3)
        d["area"] = round(float(self.area), 4)
        d["seconds"] = round(float(self.seconds), 3)
        if d["identity_distance"] is not None:
            d["identity_distance"] = round(float(d["identity_distance"]), 3)
        return d


@dataclass
class FaceCrop:
    """The aligned crop of one face and its masks, in crop pixels (what ``compare`` shows)."""

    face: Face
    aligned: AlignedFace
    probability: np.ndarray | None  #: float32 occluder probability (None with a user mask)
    hole: np.ndarray  #: bool hole that is filled (dilated automatic mask, or the user's)
    restored: np.ndarray | None = None


@dataclass
class Restoration:
    image: np.ndarray  #: uint8 HxWx3, the input's size
    mask: np.ndarray  #: bool HxW, the pixels that were filled (nothing else changed)
    faces: list[FaceReport]
    model: str
    segmenter: str | None
    seconds: float
    crops: list[FaceCrop] = field(default_factory=list, repr=False)

    def report(self) -> dict:
        return {"model": self.model, "segmenter": self.segmenter, "seconds": round(self.seconds, 3),
                "width": int(self.image.shape[1]), "height": int(self.image.shape[0]),
                "filled_share": round(float(self.mask.mean()), 5),
                "faces": [f.to_dict() for f in self.faces]}


class Hooks:
    """Where a caller steers :meth:`Restorer.restore` from outside; the defaults change nothing.
    The video path (:mod:`unveil.video`) uses them to keep faces, occluder maps and fills steady
    from frame to frame. ``i`` is the face's index in the list :meth:`faces` returned."""

    def faces(self, image: np.ndarray, detector) -> list[Face]:
        """The faces of ``image``, largest first (default: detect them)."""
        return detector.detect(image)

    def probability(self, i: int, where: str, prob: np.ndarray) -> np.ndarray:
        """The occluder probability to decide on, for face ``i``'s crop (``where``: "face" or
        "wide"), given the segmenter's."""
        return prob

    def kind(self, i: int, kind: str) -> str:
        """The kind of face ``i``'s hole that picks the inpainter, given :func:`occluder_kind`'s."""
        return kind

    def fill(self, i: int, restored: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """The crop to paste for face ``i``, given the inpainter's (border-matched) result."""
        return restored


def occluder_kind(hole: np.ndarray) -> str:
    """Where on the face the hole lies, from unveil's template: "lower face" (a face mask, a
    scarf), "eyes" (glasses, sunglasses), or "other" (a hand, a microphone, hair...)."""
    n = hole.shape[0]
    area = hole.sum()
    if not area:
        return "none"

    def cover(cx, cy, rx, ry):
        y0, y1 = int((cy - ry) * n), int((cy + ry) * n)
        x0, x1 = int((cx - rx) * n), int((cx + rx) * n)
        return float(hole[max(y0, 0):y1, max(x0, 0):x1].mean())

    (lx, ly), (rx_, ry_), (nx, ny), _, _ = TEMPLATE
    mouth = cover(0.5, TEMPLATE[3, 1], 0.2, 0.06)
    nose_to_chin = cover(0.5, (ny + 1.0) / 2, 0.22, (1.0 - ny) / 2 * 0.8)
    eyes = (cover(lx, ly, 0.09, 0.05) + cover(rx_, ry_, 0.09, 0.05)) / 2
    rows = np.nonzero(hole.any(1))[0]
    below_nose = hole[int(ny * n * 0.92):].sum() / area
    eye_band = hole[int((ly - 0.12) * n):int((ly + 0.12) * n)].sum() / area
    # a face mask that reaches the bridge of the nose still has about 0.7 of its area below the
    # nose tip (0.6 to 0.7 when the mouth key points come out low under the mask)
    if mouth > 0.6 and nose_to_chin > 0.5 and below_nose > 0.6 and eyes < 0.3:
        return "lower face"
    if eyes > 0.4 and eye_band > 0.6 and rows.size:
        return "eyes"
    return "other"


class Restorer:
    """Detect, segment, inpaint and paste back every selected face of a photo.

    ``segmenter``: a registered segmenter name, a Segmenter, or None (then every call needs a
    mask). ``inpainter``: a registered inpainter name, an Inpainter, or ``"auto"`` / None (the
    default): per face, the inpainter measured best for where its hole lies (:data:`BY_KIND`),
    else the best-ranked one.
    """

    def __init__(self, segmenter="soclnet", inpainter=None, device: str = "cpu",
                 options: RestoreOptions | None = None):
        from unveil import models

        self.options = options or RestoreOptions()
        self.device = device
        self.auto = inpainter is None or inpainter == AUTO
        if self.auto:
            self.inpainter = models.shared(models.best(), "inpainter", device)
        elif isinstance(inpainter, str):
            self.inpainter = models.shared(inpainter, "inpainter", device)
        else:
            self.inpainter = inpainter
        if isinstance(segmenter, str):
            self.segmenter = models.shared(segmenter, "segmenter", device)
        else:
            self.segmenter = segmenter
        self.detector = get_detector()

    @property
    def model_name(self) -> str:
        name = getattr(self.inpainter, "name", type(self.inpainter).__name__)
        if not self.auto:
            return name
        return f"{AUTO} ({by_kind_text()}, {name} otherwise)"

    def inpainter_for(self, kind: str):
        """The inpainter that fills a hole of this kind (``occluder_kind``)."""
        if self.auto and kind in BY_KIND:
            from unveil import models

            return models.shared(BY_KIND[kind], "inpainter", self.device)
        return self.inpainter

    @property
    def segmenter_name(self) -> str | None:
        return None if self.segmenter is None else getattr(self.segmenter, "name", "segmenter")

    # -- steps ---------------------------------------------------------------------------------
    def select(self, faces: list[Face], which=None) -> list[tuple[int, Face]]:
        sel = parse_faces(self.options.faces if which is None else which)
        if sel == "all":
            return list(enumerate(faces))
        if sel == "largest":
            return [(0, faces[0])] if faces else []
        bad = [i for i in sel if i >= len(faces)]
        if bad:
            raise UnveilError(f"face {bad[0]} requested but {len(faces)} found (indices start at 0, "
                              f"largest first)")
        return [(i, faces[i]) for i in sel]

    def auto_hole(self, crop: np.ndarray, options: RestoreOptions | None = None,
                  smooth=None) -> tuple[np.ndarray, np.ndarray]:
        """(occluder probability, bool hole) of an aligned crop: thresholded, specks dropped,
        dilated; empty when less than ``min_area`` of the crop is confidently occluded.
        ``smooth``: what to make of the segmenter's probability first (:meth:`Hooks.probability`)."""
        if self.segmenter is None:
            raise UnveilError("no segmenter: give a mask (--mask) or choose a segmenter")
        o = options or self.options
        prob = self.segmenter.segment(crop)
        if smooth is not None:
            prob = smooth(prob)
        hole = occluder_mask(prob, o)
        if o.complete and hole.any():
            hole = complete_occluder(crop, prob, hole)
        return prob, grow(hole, o.dilate)

    def uses_wide(self, options: RestoreOptions | None = None) -> bool:
        o = options or self.options
        return bool(o.wide and self.segmenter is not None)

    def wide_hole(self, image: np.ndarray, kps5: np.ndarray, aligned: AlignedFace, hole: np.ndarray,
                  options: RestoreOptions | None = None, smooth=None) -> tuple[AlignedFace, np.ndarray]:
        """(wide alignment, bool hole in the wide crop): the occluder segmented on the wide crop,
        only the parts connected to the face crop's ``hole`` (so nothing new is found on a face
        that had no occluder), with that hole itself included; with ``loops``, also the loops
        found apart from it (:func:`near_finds`) and the thin lines leaving it (:func:`loop_traces`)."""
        o = options or self.options
        alw = align_face(image, kps5, o.work_size, WIDE_TEMPLATE)
        prob = self.segmenter.segment_fine(alw.crop)  # loops: a second look at twice the resolution
        if smooth is not None:
            prob = smooth(prob)
        # hysteresis: on the wide crop, weaker pixels count when connected to the occluder (thin
        # loops and straps come out at 0.3-0.5 even at the finer look)
        found = grow(drop_specks(prob >= WIDE_LOW * o.threshold, o.min_component), o.dilate)
        tight = aligned.mask_onto(hole, alw)
        both = (found & alw.valid) | tight
        _, labels = cv2.connectedComponents(both.astype(np.uint8), connectivity=8)
        keep = np.unique(labels[tight])
        found = np.isin(labels, keep[keep > 0])
        if o.loops and found.any():
            found |= near_finds(labels, found, prob, o.dilate) & alw.valid
            found |= loop_traces(alw.crop, found, alw.valid)
        return alw, found

    def loops_beyond(self, image: np.ndarray, kps5: np.ndarray, alw: AlignedFace, hole_w: np.ndarray,
                     options: RestoreOptions | None = None) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """(window, bool mask of the photo's window): the thin lines that run on from the wide
        hole ``hole_w`` past the wide crop ``alw`` (an N95's head straps, a loop round an ear at the
        wide crop's edge), followed by :func:`loop_traces` on a wider crop (:data:`LOOP_TEMPLATE`, at
        twice the working size so a line keeps its width); None when there are none."""
        o = options or self.options
        # most holes stay clear of the wide crop's edge: then there is nothing to follow past it
        # (a margin wider than the one ``ends`` takes below, in the wide crop's pixels)
        valid = np.pad(alw.valid, 1).astype(np.uint8)
        if not (hole_w & ~(cv2.erode(valid, np.ones((3, 3), np.uint8), iterations=6)[1:-1, 1:-1] > 0)).any():
            return None
        wider = align_face(image, kps5, 2 * o.work_size, LOOP_TEMPLATE)
        hole = alw.mask_onto(hole_w & alw.valid, wider)
        if not hole.any():
            return None
        inside = alw.mask_onto(alw.valid, wider)
        # a line is followed on only from where the wide hole meets the wide crop's edge
        ends = hole & ~(cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=4) > 0)
        if not ends.any():
            return None
        traces = loop_traces(wider.crop, hole, wider.valid, ends) & ~inside & wider.valid
        if not traces.any():
            return None
        win = image_window(image.shape, wider)
        return None if win is None else (win, mask_to_window(traces, wider, win))

    def analyze(self, image: np.ndarray, faces=None) -> tuple[list[Face], list[FaceCrop]]:
        """Detect faces and find each selected face's occluder without inpainting (the web page's
        first step). Returns (all faces, crops of the selected faces)."""
        image = as_rgb(image)
        found = self.detector.detect(image)
        crops = []
        for _, f in self.select(found, faces):
            al = align_face(image, f.kps5, self.options.work_size)
            prob, hole = self.auto_hole(al.crop)
            crops.append(FaceCrop(f, al, prob, hole & al.valid))
        return found, crops

    def auto_mask(self, image: np.ndarray, faces=None) -> tuple[np.ndarray, list[Face]]:
        """bool HxW: the automatic hole of every selected face, in photo pixels: the face crop's
        and, as :meth:`restore` fills it, the wide crop's (chin, neck, ear loops)."""
        image = as_rgb(image)
        found, crops = self.analyze(image, faces)
        mask = np.zeros(image.shape[:2], bool)

        def add(hole, aligned):
            win = image_window(image.shape, aligned)
            if win is not None:
                x0, y0, x1, y1 = win
                mask[y0:y1, x0:x1] |= mask_to_window(hole, aligned, win)

        for c in crops:
            add(c.hole, c.aligned)
            if c.hole.any() and self.uses_wide():
                alw, hole_w = self.wide_hole(image, c.face.kps5, c.aligned, c.hole)
                add(hole_w & alw.valid, alw)
        return mask, found

    # -- the whole thing -----------------------------------------------------------------------
    def restore(self, image, mask=None, faces=None, keep_crops: bool = False,
                options: RestoreOptions | None = None, hooks: Hooks | None = None) -> Restoration:
        """Restore ``image`` (uint8 RGB array, PIL image or path). ``mask``: optional bool HxW
        (or a path) of the pixels to fill; without it the segmenter finds the occluders.
        ``options``: this call's options instead of the restorer's. ``hooks``: see :class:`Hooks`."""
        t0 = time.perf_counter()
        image = as_rgb(image)
        user = None
        if mask is not None:
            user = as_mask(mask, image.shape[:2])
            if not user.any():
                raise UnveilError("the mask is empty (no white pixel): nothing to restore")
        opts = options or self.options
        hooks = hooks or Hooks()
        found = hooks.faces(image, self.detector)
        if not found and user is None:
            raise UnveilError("no face found in the photo (give a mask to fill a region anyway)")
        out = image.copy()
        filled = np.zeros(image.shape[:2], bool)  # every changed pixel (reported)
        # the pixels that must be replaced (the holes in the photo) and those replaced in full:
        # what a crop's fading edge or the photo's border left half blended is filled in place
        need = np.zeros(image.shape[:2], bool)
        full = np.zeros(image.shape[:2], bool)
        reports, crops = [], []
        selected = self.select(found, opts.faces if faces is None else faces)
        chosen = {i for i, _ in selected}
        for i, f in enumerate(found):
            if i not in chosen:
                continue
            t = time.perf_counter()
            rep = FaceReport(i, [float(v) for v in f.box], float(f.score),
                             mask_source="user" if user is not None else "auto")
            reports.append(rep)
            if min(f.width, f.height) < MIN_FACE:
                rep.note = f"face smaller than {MIN_FACE} px, left as it is"
                continue
            al = align_face(out, f.kps5, opts.work_size)
            win = image_window(image.shape, al)
            if win is None:
                rep.note = "face outside the photo"
                continue
            x0, y0, x1, y1 = win
            wide = None
            if user is None:
                prob, hole = self.auto_hole(al.crop, opts, smooth=lambda p, i=i: hooks.probability(i, "face", p))
                # the kind of occluder is read from the face crop's own hole: what the wide crop adds
                # on the face (loops by the cheeks, the mask's sides) turned 34 of 100 LFW photos
                # with a drawn face mask into "other" (IFACENET's smooth patch instead of LGFace)
                own = hole & al.valid
                if hole.any() and self.uses_wide(opts):
                    wide = self.wide_hole(image, f.kps5, al, hole, opts,
                                          smooth=lambda p, i=i: hooks.probability(i, "wide", p))
                    hole |= wide[0].mask_onto(wide[1], al)  # what the wide crop found on the face too
            else:
                prob = None
                hole = user_hole(user, al, win, opts.work_size)
                own = None
                if opts.wide:
                    # the user's mask past the face crop's fading edge (below the chin, by the
                    # ears) is filled from the wide crop, as an automatic hole is
                    alw = align_face(image, f.kps5, opts.work_size, WIDE_TEMPLATE)
                    wwin = image_window(image.shape, alw)
                    if wwin is not None:
                        wide = (alw, user_hole(user, alw, wwin, opts.work_size) & alw.valid)
            hole &= al.valid
            rep.area = float(hole.mean())
            rep.occluder = hooks.kind(i, occluder_kind(hole if own is None else own))
            if not hole.any():
                rep.occluder = "none"
                rep.note = "no occluder found on this face" if user is None else "the mask does not touch this face"
                rep.seconds = time.perf_counter() - t
                continue
            inpainter = self.inpainter_for(rep.occluder)
            rep.model = getattr(inpainter, "name", type(inpainter).__name__)
            restored = hooks.fill(i, match_border(inpainter.inpaint(al.crop, hole), al.crop, hole), hole)
            # every hole pixel is replaced; the blend feathers outward over SEAM of the crop
            pasted = paste_window(out, restored, al, win, region=hole, feather=SEAM)
            hole_img = mask_to_window(hole, al, win)
            region = out[y0:y1, x0:x1]
            if user is not None:
                # a user's mask is exact (nothing outside it changes); what the crop does not
                # replace in full (its fading edge, beyond it) is filled from the wide crop or in
                # place, never left half occluded
                hole_img &= user[y0:y1, x0:x1]
                changed = hole_img
            else:  # an automatic hole takes the band
                changed = np.any(pasted != region, axis=2) | hole_img
            region[changed] = pasted[changed]
            filled[y0:y1, x0:x1] |= changed
            need[y0:y1, x0:x1] |= hole_img
            full[y0:y1, x0:x1] |= hole_img & replaced_in_full(al, win, hole, SEAM)
            if wide is not None and wide[1].any():
                self._fill_beyond(out, filled, need, full, f.kps5, al, *wide, opts, user=user)
                if user is None and opts.loops:
                    more = self.loops_beyond(image, f.kps5, *wide, opts)
                    if more is not None:  # thin lines: filled in place below, with what the blends left
                        (a0, b0, a1, b1), lines = more
                        need[b0:b1, a0:a1] |= lines
            if user is None:
                left = need & ~full
                if left.any():  # e.g. an occluder at the photo's border, where the blend fades
                    out = fill_locally(out, left)
                    filled |= left
                    full |= left
            rep.restored = True
            if opts.identity:
                rep.identity_distance, why = self._identity(al.crop, restored, rep.area, opts)
                rep.note = why
            if keep_crops:
                crops.append(FaceCrop(f, al, prob, hole, restored))
            rep.seconds = time.perf_counter() - t
        if user is not None:
            # what the faces' crops did not fully cover is filled in place (Telea, local window)
            rest = user & ~full
            if rest.any():
                out = fill_locally(out, rest)
                filled |= rest
        return Restoration(out, filled, reports, self.model_name,
                           self.segmenter_name if user is None else None, time.perf_counter() - t0, crops)

    def _fill_beyond(self, out: np.ndarray, filled: np.ndarray, need: np.ndarray, full: np.ndarray,
                     kps5: np.ndarray, al: AlignedFace, alw: AlignedFace, hole_w: np.ndarray,
                     opts: RestoreOptions, user: np.ndarray | None = None) -> None:
        """Fill, in place in ``out``, the part of the wide hole the face crop did not replace in
        full (below the chin, the ears, the crop's fading edge), from the wide crop of the photo
        as restored so far; the changed pixels are added to ``filled``, the hole's to ``need``,
        those replaced in full to ``full`` (window only). With a ``user`` mask (bool, the photo's
        size) no pixel outside it changes."""
        from unveil import models

        size = opts.work_size
        rest = hole_w & ~al.mask_onto(full_weight_mask(size) & al.valid, alw) & alw.valid
        if not rest.any():
            return
        alw2 = align_face(out, kps5, size, WIDE_TEMPLATE)  # the photo as restored so far
        win = image_window(out.shape, alw2)
        if win is None:
            return
        # what lies outside the photo is unknown too (the crop's replicated border is no content)
        fill = models.shared(opts.beyond, "inpainter", self.device).inpaint(alw2.crop, rest | ~alw2.valid)
        x0, y0, x1, y1 = win
        pasted = paste_window(out, fill, alw2, win, region=rest, feather=SEAM)
        region = out[y0:y1, x0:x1]
        rest_img = mask_to_window(rest, alw2, win)
        changed = np.any(pasted != region, axis=2) | rest_img
        if user is not None:
            changed &= user[y0:y1, x0:x1]
            rest_img &= user[y0:y1, x0:x1]
        region[changed] = pasted[changed]
        filled[y0:y1, x0:x1] |= changed
        need[y0:y1, x0:x1] |= rest_img
        full[y0:y1, x0:x1] |= rest_img & replaced_in_full(alw2, win, rest, SEAM)

    def _identity(self, before: np.ndarray, after: np.ndarray, area: float,
                  opts: RestoreOptions) -> tuple[float | None, str]:
        if area > opts.identity_max_area:
            return None, "identity not measured: too much of the face was hidden"
        from unveil.face.identity import get_embedder

        emb = get_embedder()
        box = emb.fallback_box(before)
        d = emb.distance(emb.embed(before, box), emb.embed(after, box))
        return d, ""


def full_weight_inset(size: int) -> int:
    """Crop pixels from the border of a ``size`` px face crop to where its paste weight is 1 (three
    times the feather, :data:`SEAM`): the line where the face crop's fill meets the fill beyond it."""
    return 3 * max(1, round(SEAM * size))


def full_weight_mask(size: int) -> np.ndarray:
    """bool ``size`` x ``size``: the face crop's pixels whose paste weight is 1 (inside
    :func:`full_weight_inset`), the ones its fill replaces in full."""
    k = full_weight_inset(size)
    full = np.zeros((size, size), bool)
    full[k:size - k, k:size - k] = True
    return full


def occluder_mask(prob: np.ndarray, options: RestoreOptions | None = None) -> np.ndarray:
    """The pipeline's decision on a crop's occluder probabilities (before dilation): empty unless
    at least ``min_area`` of the crop is confidently occluded (``presence_threshold``), else the
    pixels at ``threshold`` or more, specks dropped."""
    o = options or RestoreOptions()
    sure = drop_specks(prob >= max(o.presence_threshold, o.threshold), o.min_component)
    if sure.mean() < o.min_area:
        return np.zeros(prob.shape, bool)
    return drop_specks(prob >= o.threshold, o.min_component)


#: Where :func:`complete_occluder` may add to a hole: an ellipse over the lower face of the aligned
#: crop (centre and radii as shares of its side) below the eyes, where a face mask or a scarf lies.
COMPLETE_REGION = ((0.5, 0.62), (0.47, 0.45))
COMPLETE_SIZE = 128  #: side at which GrabCut runs (about 4x faster than at 256 px)
#: GrabCut's addition is kept only when it adds at least this share of the found hole: a mask found
#: in part gains 30-300 % (a flag, florals, a dark teal mask on the held-out real photos), while on
#: a mask found whole it only nibbles at the edge or creeps onto a background of the mask's colour
#: (1-7 %).
COMPLETE_MIN_GAIN = 0.15


def complete_region(n: int) -> np.ndarray:
    """bool n x n: the lower-face ellipse of :data:`COMPLETE_REGION`, from 6 % below the eyes down."""
    (cx, cy), (rx, ry) = COMPLETE_REGION
    yy, xx = (np.mgrid[0:n, 0:n] + 0.5) / n
    return (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1) & (yy >= TEMPLATE[0, 1] + 0.06)


def complete_occluder(crop: np.ndarray, prob: np.ndarray, hole: np.ndarray, iters: int = 4) -> np.ndarray:
    """``hole`` plus the pixels of the lower face that GrabCut gives to it by colour.

    SOCLNET finds a patterned mask (a flag, a paisley or floral print) only in part, and the fill
    then leaves the rest. GrabCut (Rother et al. 2004, OpenCV's) models the colours of the found hole
    (probable occluder; sure where SOCLNET's probability is at least 0.8) against the rest of the
    crop (sure background above the eyes and outside :func:`complete_region`) and gives each pixel
    of the region to one side, with a smoothness term. Only what it adds inside the region and
    connected to the hole is kept, and only when it is a real gain (:data:`COMPLETE_MIN_GAIN`);
    nothing found is taken away. A hole mostly outside the region (a hand on an eye, glasses) is
    returned as it is."""
    n = hole.shape[0]
    region = complete_region(n)
    if (hole & region).sum() < 0.5 * hole.sum():
        return hole
    s = COMPLETE_SIZE if n > COMPLETE_SIZE else n
    small = lambda a, interp: cv2.resize(a, (s, s), interpolation=interp) if s != n else a  # noqa: E731
    img = np.ascontiguousarray(small(crop, cv2.INTER_AREA))
    p = small(prob.astype(np.float32), cv2.INTER_AREA)
    h = small(hole.astype(np.float32), cv2.INTER_AREA) >= 0.5
    reg = complete_region(s)
    gc = np.where(reg, cv2.GC_PR_BGD, cv2.GC_BGD).astype(np.uint8)
    gc[reg & (p >= 0.3)] = cv2.GC_PR_FGD
    gc[h] = cv2.GC_PR_FGD
    gc[h & (p >= 0.8)] = cv2.GC_FGD
    if not h.any() or not (gc == cv2.GC_BGD).any():
        return hole
    try:
        cv2.setRNGSeed(0)  # GrabCut seeds its colour models by k-means on OpenCV's global RNG
        cv2.grabCut(img, gc, None, np.zeros((1, 65)), np.zeros((1, 65)), iters, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # a degenerate colour model: keep what was found
        return hole
    fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    if s != n:
        fg = cv2.resize(fg.astype(np.float32), (n, n), interpolation=cv2.INTER_LINEAR) >= 0.5
    both = (fg & region) | hole
    _, labels = cv2.connectedComponents(both.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[hole])
    done = np.isin(labels, keep[keep > 0])
    return done if done.sum() >= (1 + COMPLETE_MIN_GAIN) * hole.sum() else hole


#: :func:`loop_traces`, at a 256 px crop (scaled with the side): the thin lines are the grey
#: morphological top-hats (bright lines) and black-hats (dark lines) of this radius, at least
#: ``LOOP_LOW`` grey levels above / below their surroundings; a line is followed at most
#: ``LOOP_REACH`` of the side from the hole, must leave it by at least ``LOOP_MIN_REACH`` px and have
#: at most ``LOOP_WIDTH`` pixels per pixel of reach (a strap, not a patch of hair or cloth).
LOOP_RADIUS = 4
LOOP_LOW = 10.0
LOOP_REACH = 0.25
LOOP_MIN_REACH = 6
LOOP_WIDTH = 12.0
#: ... and be a line: its length at least ``LOOP_ELONGATION`` times its width (the standard
#: deviations of its pixels along and across its main axis), heading sideways (a rise of at most
#: ``LOOP_SLOPE`` per unit across: about 55 degrees from the horizontal, loops run to the ears).
LOOP_ELONGATION = 3.0
LOOP_SLOPE = 1.4


#: "beside" the hole (:func:`loop_traces`, :func:`near_finds`): left or right of the middle of its
#: width, this share of the width in from either side
BESIDE = 0.2


def beside_columns(hole: np.ndarray) -> tuple[float, float]:
    """(x, x): a column left of the first or right of the second lies beside ``hole``'s middle
    (:data:`BESIDE`); ``hole`` must not be empty."""
    xs = np.nonzero(hole.any(0))[0]
    inset = BESIDE * (xs[-1] - xs[0])
    return xs[0] + inset, xs[-1] - inset


def line_shape(ys: np.ndarray, xs: np.ndarray) -> tuple[float, np.ndarray]:
    """(elongation, direction) of a set of pixels: the ratio of the variances along and across
    its main axis (across at least a quarter pixel squared) and that axis as a unit (x, y)."""
    evals, evecs = np.linalg.eigh(np.cov(np.stack([xs, ys]).astype(np.float64)))
    return float(evals[1] / max(evals[0], 0.25)), evecs[:, 1]


def loop_traces(crop: np.ndarray, hole: np.ndarray, valid: np.ndarray | None = None,
                ends: np.ndarray | None = None) -> np.ndarray:
    """bool: the thin lines that leave ``hole`` sideways in ``crop``: a face mask's ear loops and
    straps the segmenter missed (a white loop on a light background or on skin comes out of SOCLNET
    at a probability near zero, and the paste-back then leaves its stubs beside the cheeks).

    A line is a connected run of the crop's grey top-hat (or black-hat) of radius
    :data:`LOOP_RADIUS`, at least :data:`LOOP_LOW` levels strong, that touches the hole, lies beside
    it (not above its middle, where the nose and eyes are, nor below it; above its top only
    outside its width, where the ears are, not the brows), reaches out of it, is thin
    (:data:`LOOP_WIDTH`) and heads sideways (:data:`LOOP_SLOPE`). ``valid``: the crop's pixels
    that lie in the photo; a line is looked for only a top-hat's width inside them (the photo's
    edge is not a line). ``ends``: only lines that touch these pixels of the hole are followed
    (default: the whole hole). The lines come back grown by 2 px (their soft edges)."""
    n = hole.shape[0]
    out = np.zeros(hole.shape, bool)
    ys, xs = np.nonzero(hole)
    if not len(ys):
        return out
    s = n / 256
    r = max(2, int(round(LOOP_RADIUS * s)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY).astype(np.float32)
    left, right = xs.min(), xs.max()
    inner_left, inner_right = beside_columns(hole)
    yy, xx = np.mgrid[0:hole.shape[0], 0:hole.shape[1]]
    dist = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 5)
    beside = ((xx < inner_left) | (xx > inner_right)) & (yy >= ys.min())
    past = ((xx < left) | (xx > right)) & (yy >= ys.min() - 0.1 * n)
    zone = (beside | past) & (yy <= ys.max()) & (dist <= LOOP_REACH * n) & ~hole
    if valid is not None:
        zone &= cv2.erode(valid.astype(np.uint8), kernel, iterations=2) > 0
    touch = grow(hole if ends is None else ends, 2) & ~hole
    for op in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):
        cand = (cv2.morphologyEx(grey, op, kernel) >= LOOP_LOW) & zone
        if not (cand & touch).any():
            continue
        _, labels, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
        for lab in np.unique(labels[cand & touch]):
            part = labels == lab
            reach = float(dist[part].max())
            if reach < LOOP_MIN_REACH * s or stats[lab, cv2.CC_STAT_AREA] > LOOP_WIDTH * reach:
                continue
            elongation, along = line_shape(*np.nonzero(part))
            if elongation < LOOP_ELONGATION ** 2 or abs(along[1]) > LOOP_SLOPE * abs(along[0]):
                continue  # a blob, or a line along the face (its contour, an ear's rim), not away from it
            out |= part
    return grow(out, max(1, int(round(2 * s))))


#: :func:`near_finds`: a part of the occluder the wide crop's segmenter found apart from the hole
#: joins it when it lies at most ``NEAR_GAP`` of the crop's side from it, below the eyes, is
#: beside it (not under its middle 60 %), found with a probability of at least ``NEAR_SURE``
#: somewhere, and is at least ``NEAR_ELONGATION`` times as long as it is wide (a loop round an
#: ear, not a collar under the chin or a hand beside the face)
NEAR_GAP = 0.06
NEAR_SURE = 0.5
NEAR_ELONGATION = 2.0


def near_finds(labels: np.ndarray, found: np.ndarray, prob: np.ndarray, dilate: int) -> np.ndarray:
    """bool: the parts of ``labels`` (connected regions of the wide crop's found occluder, grown by
    ``dilate``) that are not in ``found`` but lie near it as a loop does (:data:`NEAR_GAP`), each
    joined to ``found`` by a straight band as wide as the growth. A loop round the ear of a turned
    face often leaves the mask where the segmenter is unsure, so what it found of the loop is not
    connected to the hole and was dropped (the loop then stayed in the photo)."""
    n = found.shape[0]
    eye_y = WIDE_TEMPLATE[0, 1] * n
    dist = cv2.distanceTransform((~found).astype(np.uint8), cv2.DIST_L2, 5)
    out = np.zeros_like(found)
    fy, fx = np.nonzero(found)
    if not len(fy):
        return out
    inner_left, inner_right = beside_columns(found)
    for lab in np.unique(labels[~found]):
        if lab == 0:
            continue
        part = labels == lab
        py, px = np.nonzero(part)
        if (len(py) < 10 or dist[part].min() > NEAR_GAP * n or prob[part].max() < NEAR_SURE
                or py.mean() < eye_y or inner_left <= px.mean() <= inner_right):
            continue  # not near, not sure, above the eyes, or under the hole (a collar), not beside it
        if line_shape(py, px)[0] < NEAR_ELONGATION ** 2:
            continue
        out |= part
        k = int(np.argmin(dist[part]))
        j = int(np.argmin((fy - py[k]) ** 2 + (fx - px[k]) ** 2))
        band = np.zeros(found.shape, np.uint8)
        cv2.line(band, (int(px[k]), int(py[k])), (int(fx[j]), int(fy[j])), 1, 2 * dilate + 1)
        out |= band > 0
    return out


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` grown by ``px`` pixels (a round structuring element)."""
    if not px or not mask.any():
        return mask
    k = 2 * px + 1
    return cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0


def drop_specks(mask: np.ndarray, min_share: float) -> np.ndarray:
    """``mask`` without connected regions smaller than ``min_share`` of its pixels."""
    if not mask.any() or min_share <= 0:
        return mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_share * mask.size
    keep[0] = False
    return keep[labels]


def match_border(restored: np.ndarray, original: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``restored`` with its fill shifted in tone so it meets the pixels around the hole.

    The offset between each hole pixel on the border and the mean of its known 4-neighbours (at
    most :data:`MAX_TONE_SHIFT` levels) is spread over the hole by pull-push interpolation with
    Laplace relaxation (:func:`unveil.models.blocks.prefill`, an approximation of the harmonic
    membrane of Poisson blending), so the hole can be replaced in full without a seam: no feather
    has to fade into the hole, where it would let the occluder's rim show through.
    """
    import torch

    from unveil.models.blocks import prefill

    h = hole.astype(bool)
    if not h.any() or h.all():
        return restored
    known = (~h).astype(np.float32)
    cross = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32)
    count = cv2.filter2D(known, -1, cross, borderType=cv2.BORDER_CONSTANT)
    border = h & (count > 0)
    orig = original.astype(np.float32)
    near = cv2.filter2D(orig * known[..., None], -1, cross, borderType=cv2.BORDER_CONSTANT)
    offset = near / np.maximum(count, 1)[..., None] - restored.astype(np.float32)
    offset = np.clip(offset, -MAX_TONE_SHIFT, MAX_TONE_SHIFT) * border[..., None]
    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(offset.transpose(2, 0, 1)))[None]
        unknown = torch.from_numpy((~border).astype(np.float32))[None, None]
        spread = prefill(t, unknown)[0].numpy().transpose(1, 2, 0)
    out = restored.astype(np.float32)
    out[h] += spread[h]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def user_hole(user: np.ndarray, al: AlignedFace, window: tuple[int, int, int, int], size: int) -> np.ndarray:
    """A user's bool photo mask in an aligned crop: every crop pixel the mask's pixels reach when
    the photo is resampled into the crop (bilinear), so no occluder pixel the user marked bleeds
    into the crop's known pixels (a rim of it would tint the fill's edge: a seam)."""
    x0, y0, x1, y1 = window
    soft = cv2.warpAffine(user[y0:y1, x0:x1].astype(np.float32), _shift(al.matrix, x0, y0), (size, size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return soft > 1e-3


def _shift(m: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """The photo->crop matrix ``m`` for coordinates relative to the window at (x0, y0)."""
    s = np.asarray(m, np.float64).copy()
    s[:, 2] += s[:, :2] @ np.array([x0, y0], np.float64)
    return s


#: a region's window larger than this many pixels is filled at a reduced scale first
LOCAL_MAX_PIXELS = 1 << 20


def fill_locally(image: np.ndarray, mask: np.ndarray, pad: int = 16) -> np.ndarray:
    """Fill ``mask`` with Telea, one padded bounding window per connected region (any photo size).
    A window over :data:`LOCAL_MAX_PIXELS` is filled at a scale that fits it, upscaled, and only a
    band along the region's edge is filled again at full resolution from what surrounds it, so a
    mask over a whole 48-megapixel photo takes seconds, not minutes (Telea's fill of a wide
    region is smooth, so the reduced scale loses nothing visible)."""
    out = image.copy()
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    h, w = mask.shape
    for k in range(1, n):
        x, y, bw, bh = stats[k, :4]
        x0, y0 = max(x - pad, 0), max(y - pad, 0)
        x1, y1 = min(x + bw + pad, w), min(y + bh + pad, h)
        m = (labels[y0:y1, x0:x1] == k).astype(np.uint8)
        win = np.ascontiguousarray(out[y0:y1, x0:x1])
        area = m.shape[0] * m.shape[1]
        if area > LOCAL_MAX_PIXELS:
            s = (LOCAL_MAX_PIXELS / area) ** 0.5
            size = (max(1, round(m.shape[1] * s)), max(1, round(m.shape[0] * s)))
            small = cv2.inpaint(cv2.resize(win, size, interpolation=cv2.INTER_AREA),
                                (cv2.resize(m, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8),
                                3, cv2.INPAINT_TELEA)
            big = cv2.resize(small, (m.shape[1], m.shape[0]), interpolation=cv2.INTER_LINEAR)
            win[m > 0] = big[m > 0]
            band = int(np.ceil(2 / s)) + 2  # the edge, where the coarse fill meets the photo
            m = m & (cv2.distanceTransform(m, cv2.DIST_L2, 3) <= band).astype(np.uint8)
        res = cv2.inpaint(win, m, 3, cv2.INPAINT_TELEA)
        out[y0:y1, x0:x1][m > 0] = res[m > 0]
    return out


# -- inputs -------------------------------------------------------------------------------------
def as_rgb(image) -> np.ndarray:
    """uint8 HxWx3 RGB from a numpy array (RGB, grayscale HxW, RGBA over white), a PIL image or a
    path; anything else gets a clear UnveilError."""
    from PIL import Image

    from unveil.io import MAX_PIXELS, read_image, to_rgb

    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        w, h = image.size
        if w * h > MAX_PIXELS:  # checked before converting, as for files
            raise UnveilError(f"image is too large ({w}x{h}; limit {MAX_PIXELS:,} pixels)")
        if min(w, h) < 16:
            raise UnveilError(f"image is too small ({w}x{h})")
        image = to_rgb(image)
    if not isinstance(image, np.ndarray):
        raise UnveilError(f"expected an image (numpy array, PIL image or path), got {type(image).__name__}")
    a = image
    if a.dtype != np.uint8:
        raise UnveilError(f"image arrays must be uint8 (0..255), got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, 2)
    elif a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3:].astype(np.float32) / 255
        a = np.clip(a[..., :3] * alpha + 255 * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, 2)
    elif not (a.ndim == 3 and a.shape[2] == 3):
        raise UnveilError(f"image must be HxW, HxWx3 or HxWx4, got shape {a.shape}")
    if min(a.shape[:2]) < 16:
        raise UnveilError(f"image is too small ({a.shape[1]}x{a.shape[0]})")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise UnveilError(f"image is too large ({a.shape[1]}x{a.shape[0]}; limit {MAX_PIXELS:,} pixels)")
    return np.ascontiguousarray(a)


def as_mask(mask, shape: tuple[int, int]) -> np.ndarray:
    """bool HxW (True = hole) from an array, a PIL image or a path. Bool arrays as they are;
    integer arrays: 0/1 masks non-zero, 8-bit masks (values above 1) at 128 or more, as image
    files and PIL images (white = hole); float arrays (0..1, finite) at 0.5 or more."""
    from PIL import Image

    from unveil.io import read_mask

    if isinstance(mask, (str, os.PathLike)):
        return read_mask(mask, shape)
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L")) > 127
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., -1] if m.shape[2] == 4 else m.max(2)
    if m.ndim != 2 or m.shape != tuple(shape):
        got = f"{m.shape[1]}x{m.shape[0]}" if m.ndim == 2 else f"of shape {m.shape}"
        raise UnveilError(f"mask is {got} but the image is {shape[1]}x{shape[0]}; give a mask of the same size")
    if m.dtype == bool:
        return m
    if np.issubdtype(m.dtype, np.integer):
        if m.size and (m.min() < 0 or m.max() > 255):
            raise UnveilError(f"an integer mask must hold 0..255 (or 0/1), got {m.min()}..{m.max()}")
        return m >= 128 if m.size and m.max() > 1 else m > 0
    if np.issubdtype(m.dtype, np.floating):
        if not np.isfinite(m).all():
            raise UnveilError("the mask holds NaN or infinite values")
        if m.size and (m.min() < 0 or m.max() > 1):
            raise UnveilError(f"a float mask must hold 0..1, got {m.min():g}..{m.max():g}")
        return m >= 0.5
    raise UnveilError(f"a mask must be a bool, integer or float array, got {m.dtype}")


def remove(image, *, model: str | None = None, segmenter: str | None = "soclnet", mask=None,
           faces: str | int | list[int] = "all", dilate: int | None = None, device: str = "cpu",
           return_details: bool = False):
    """Restore the faces of ``image`` (uint8 RGB numpy array, PIL image or path).

    Returns the restored photo as uint8 HxWx3 RGB of the input's size, or with
    ``return_details=True`` a :class:`Restoration` (``.image``, ``.mask``, ``.faces``, ``.report()``).
    """
    r = Restorer(segmenter=segmenter if mask is None else None, inpainter=model, device=device)
    opts = RestoreOptions(faces=faces, **({} if dilate is None else {"dilate": dilate}))
    res = r.restore(image, mask=mask, options=opts)
    return res if return_details else res.image


def default_inpainter() -> str:
    """The inpainter the pipeline uses for holes :data:`BY_KIND` does not name: the best-ranked
    registered one."""
    from unveil import models

    return models.best()


def tint(crop: np.ndarray, hole: np.ndarray, color=(255, 40, 40), alpha: float = 0.55) -> np.ndarray:
    """The crop with the hole tinted (how the masks are shown to a person)."""
    out = crop.astype(np.float32)
    out[hole] = (1 - alpha) * out[hole] + alpha * np.asarray(color, np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def compare(photo, output: str | os.PathLike, models: list[str] | None = None, segmenter: str = "soclnet",
            mask=None, faces="all", size: int = 256, truth=None) -> list[str]:
    """Write one grid (input crop, mask, every inpainter's result; one row per restored face; with
    ``truth``, the same photo without the occluder, its crop last) and return the lines to print
    (per-model time)."""
    from unveil import models as registry
    from unveil.viz import image_grid
    from unveil.io import write_image

    names = models or registry.available()
    for n in names:
        registry.require(n, "inpainter")
    image = as_rgb(photo)
    first = Restorer(segmenter=None if mask is not None else segmenter, inpainter=names[0],
                     options=RestoreOptions(faces=faces))
    res = first.restore(image, mask=mask, keep_crops=True)
    crops = [c for c in res.crops if c.hole.any()]
    if not crops:
        raise UnveilError("no occluder found on any face: nothing to compare (give --mask)")
    outputs = {names[0]: [c.restored for c in crops]}
    times = {names[0]: sum(f.seconds for f in res.faces)}
    for n in names[1:]:
        model = registry.shared(n, "inpainter")
        t = time.perf_counter()
        outputs[n] = [model.inpaint(c.aligned.crop, c.hole) for c in crops]
        times[n] = time.perf_counter() - t

    def cell(a):
        return cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA if a.shape[0] > size else cv2.INTER_CUBIC)

    rows = [[cell(c.aligned.crop), cell(tint(c.aligned.crop, c.hole))] + [cell(outputs[n][k]) for n in names]
            for k, c in enumerate(crops)]
    if truth is not None:
        clean = as_rgb(truth)
        for row, c in zip(rows, crops):
            s = c.aligned.size
            row.append(cell(cv2.warpAffine(clean, c.aligned.matrix, (s, s), flags=cv2.INTER_AREA,
                                           borderMode=cv2.BORDER_REFLECT101)))
    src = "user mask" if mask is not None else f"mask ({segmenter})"
    write_image(output, image_grid(rows, ["input", src] + names + (["original"] if truth is not None else [])),
                protect=tuple(p for p in (photo, mask) if isinstance(p, (str, os.PathLike))))
    lines = [f"{len(crops)} face(s) with an occluder; per model, seconds for all faces:"]
    lines += [f"  {n:<14} {times[n]:.2f} s" for n in names]
    return lines + [f"wrote {output}"]
