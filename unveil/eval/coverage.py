"""``unveil eval-coverage``: how much of an occluder survives ``unveil remove``, on whole photos.

Clean photos get a face mask with ear loops (or an N95's head straps) drawn by the synthesizer
(:class:`unveil.occlusion.synth.Synthesizer` with ``loops=1``, a third recoloured), the full
pipeline restores them (SOCLNET's automatic mask, the chosen inpainter, paste-back), and the output
is compared with the masked input pixel by pixel. A pixel is *left* when it comes back
byte-identical to the masked input. Pooled over all photos:

* ``body left``: the share of the mask's body pixels left (the loops apart);
* ``loops left``: the share of the loop / strap pixels left;
* ``far``: the share of changed pixels farther than ``far`` px from the occluder (work spilled
  onto the face or the background);
* ``missed``: photos where no face was restored (no face found, or no occluder found on it);
* ``seam``: the mean gradient of the output on the line where the face crop's fill meets the fill
  beyond it (the face crop's edge, in the changed pixels), over the mean gradient 3-8 px from that
  line; about 1 when nothing shows there. The same ratio on the clean photo (``seam_truth``) says
  what the picture itself has there.
* ``beyond``: how the fill *beyond* the face crop (what :data:`unveil.pipeline.BEYOND` paints over
  ears, hair, jaw, neck and background behind a loop) compares with the clean photo, on the changed
  pixels outside every face crop's fully pasted square (what is left of the occluder is in the
  columns above, not here): PSNR (pooled squared error)
  and the detail ratio (variance of the Laplacian, output over clean photo, pooled). A smooth
  membrane scores a fair PSNR and a low detail ratio; a texture-blind fill over hair shows as both.

Faces: ``lfw`` uses whole LFW deep-funneled photos (250 px, the head with its shoulders, so chin,
neck and ears are in view: the real-photo case); ``utkface`` the aligned UTKFace *test* crops
(the synthetic test set's framing, where the crop ends at the chin). Clean photos of the same
source, without any occluder, measure how often a bare face is touched.

``sheet.png`` shows masked input, output and what was left (red) for the first photos,
``worst.png`` the same for the photos with the most of the body left (``photos`` in the JSON: one
row per photo, with why a missed one was missed), and
``real_before.png`` / ``real_after.png`` are contact sheets of the real masked photos kept aside
(:data:`unveil.data.faces.REAL_HOLDOUT`) before and after. All of it is derived from the research
data: it stays in the run folder, never in the repository.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from unveil.errors import UnveilError
from unveil.eval.harness import command_line
from unveil.io import read_image, write_image, write_json, write_text
from unveil.viz import image_grid

SOURCES = ("lfw", "utkface")


@dataclass
class CoverageConfig:
    model: str = "auto"  #: inpainter (auto: the pipeline's choice per kind of hole)
    segmenter: str = "soclnet"
    faces: str = "lfw"
    n: int = 100
    clean: int = 100  #: clean photos of the same source (no occluder): how often one is touched
    seed: int = 0
    far: int = 25  #: changed pixels farther than this (px) from the occluder count as "far"
    real: bool = True  #: contact sheets of the held-out real masked photos
    wide: bool = True  #: the pipeline's wide crop (RestoreOptions.wide)
    beyond: str = ""  #: what fills beyond the face crop (RestoreOptions.beyond; "": the pipeline's)
    complete: bool = True  #: the colour completion of a mask found in part (RestoreOptions.complete)
    loops: bool = True  #: the thin lines followed out of the wide crop's hole (RestoreOptions.loops)
    seg_weights: str | None = None  #: a segmenter weight file (a training run's) instead of the shipped one
    sheet: int = 12
    data: str | None = None
    out: str | None = None

    def out_dir(self) -> Path:
        tag = (("" if self.wide else "-nowide") + ("" if self.complete else "-nocomplete")
               + ("" if self.loops else "-noloops")
               + (f"-beyond-{self.beyond}" if self.beyond else ""))
        return Path(self.out) if self.out else Path("runs") / "eval-coverage" / f"{self.model}-{self.faces}{tag}"


def _photos(source: str, n: int, seed: int, data) -> list[np.ndarray]:
    from unveil.data import face_records, load_face

    if source == "lfw":
        recs = face_records("lfw", data=data)
        order = np.random.default_rng((seed, 5)).permutation(len(recs))[:n]
        return [read_image(recs[i].path) for i in order]  # the whole photo, not the face box
    recs = face_records("utkface", "test", data)
    return [load_face(r, 256) for r in recs[:n]]


def coverage_counts(masked: np.ndarray, output: np.ndarray, occluder: np.ndarray,
                    loops: np.ndarray | None, far: int) -> dict:
    """Pixel counts of one photo: occluder body / loop pixels and how many came back unchanged;
    changed pixels, and how many lie farther than ``far`` px from the occluder."""
    same = ~(output != masked).any(-1)
    loops = np.zeros_like(occluder) if loops is None else loops
    body = occluder & ~loops
    changed = ~same
    dist = cv2.distanceTransform((~occluder).astype(np.uint8), cv2.DIST_L2, 5)
    return {"body": int(body.sum()), "body_left": int((body & same).sum()),
            "loops": int(loops.sum()), "loops_left": int((loops & same).sum()),
            "changed": int(changed.sum()), "far": int((changed & (dist > far)).sum())}


SEAM_EDGE, SEAM_NEAR = 1.5, (3.0, 8.0)  #: px from the face crop's edge: on it, and its neighbourhood


def seam_sums(output: np.ndarray, truth: np.ndarray, changed: np.ndarray, aligned, inset: int) -> dict:
    """Gradient sums on and near the edge of a face crop's fully pasted square (``inset`` crop px in
    from the border of ``aligned``, an :class:`~unveil.face.AlignedFace`, where the face inpainter's
    fill meets the fill beyond the crop), in the changed pixels of a photo: for the output and for
    the clean photo at the same pixels."""
    matrix, size = aligned.matrix, aligned.size
    h, w = changed.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u = matrix[0, 0] * xx + matrix[0, 1] * yy + matrix[0, 2]
    v = matrix[1, 0] * xx + matrix[1, 1] * yy + matrix[1, 2]
    lo, hi = inset, size - inset
    inside = (u >= lo) & (u <= hi) & (v >= lo) & (v <= hi)
    d_in = np.minimum.reduce([u - lo, hi - u, v - lo, hi - v])  # > 0 inside the square
    d_out = np.hypot(np.maximum.reduce([lo - u, u - hi, 0 * u]), np.maximum.reduce([lo - v, v - hi, 0 * v]))
    d = np.where(inside, d_in, d_out) / aligned.scale  # photo px from the square's edge
    on, near = changed & (d <= SEAM_EDGE), changed & (d >= SEAM_NEAR[0]) & (d <= SEAM_NEAR[1])

    def grad(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))

    go, gt = grad(output), grad(truth)
    return {"seam_on": float(go[on].sum()), "seam_near": float(go[near].sum()),
            "truth_on": float(gt[on].sum()), "truth_near": float(gt[near].sum()),
            "n_on": int(on.sum()), "n_near": int(near.sum())}


def beyond_sums(output: np.ndarray, truth: np.ndarray, region: np.ndarray) -> dict:
    """Sums over ``region`` (bool, the photo's changed pixels beyond the face crops) for the beyond
    fill's PSNR and detail ratio: squared error against the clean photo (over the 3 channels) and
    the Laplacian's first two moments of output and clean photo (grey)."""
    if not region.any():
        return {"n": 0, "sq": 0.0, "lap_o": 0.0, "lap_o2": 0.0, "lap_t": 0.0, "lap_t2": 0.0}
    err = (output.astype(np.float64) - truth.astype(np.float64))[region]

    def lap(img):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
        return cv2.Laplacian(g, cv2.CV_64F)[region]

    lo, lt = lap(output), lap(truth)
    return {"n": int(region.sum()), "sq": float((err ** 2).sum()), "lap_o": float(lo.sum()),
            "lap_o2": float((lo ** 2).sum()), "lap_t": float(lt.sum()), "lap_t2": float((lt ** 2).sum())}


def crop_square(shape: tuple[int, ...], aligned) -> np.ndarray:
    """bool HxW: the photo pixels inside a face crop's fully pasted square
    (:func:`unveil.pipeline.full_weight_mask`), the ones the face inpainter's fill replaces in full."""
    from unveil.face.paste import image_window, mask_to_window
    from unveil.pipeline import full_weight_mask

    inside = np.zeros(shape[:2], bool)
    win = image_window(shape, aligned)
    if win is None:
        return inside
    x0, y0, x1, y1 = win
    inside[y0:y1, x0:x1] = mask_to_window(full_weight_mask(aligned.size), aligned, win)
    return inside


def summarize(counts: list[dict]) -> dict:
    tot = {k: sum(c[k] for c in counts) for k in ("body", "body_left", "loops", "loops_left", "changed", "far")}
    share = lambda a, b: tot[a] / tot[b] if tot[b] else float("nan")  # noqa: E731
    out = {"photos": len(counts), "body_left": share("body_left", "body"), "loops_left": share("loops_left", "loops"),
           "far": share("far", "changed"), "pixels": tot}
    seams = [c["seam"] for c in counts if c.get("seam")]
    if seams:
        t = {k: sum(x[k] for x in seams) for k in seams[0]}
        ratio = lambda a, b: (t[a] / t["n_on"]) / (t[b] / t["n_near"]) if t["n_on"] and t[b] else float("nan")  # noqa: E731
        out.update(seam=ratio("seam_on", "seam_near"), seam_truth=ratio("truth_on", "truth_near"),
                   seam_pixels=t["n_on"])
    beyond = [c["beyond"] for c in counts if c.get("beyond")]
    t = {k: sum(b[k] for b in beyond) for k in beyond[0]} if beyond else {"n": 0}
    if t["n"]:
        mse = t["sq"] / (3 * t["n"])
        var = lambda a, a2: a2 / t["n"] - (a / t["n"]) ** 2  # noqa: E731
        out.update(beyond_psnr=float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse),
                   beyond_detail=var(t["lap_o"], t["lap_o2"]) / max(var(t["lap_t"], t["lap_t2"]), 1e-9),
                   beyond_pixels=t["n"])
    return out


def _photo_row(i: int, meta: dict, c: dict, restored: bool, why: str) -> dict:
    """One photo of the run: what was drawn, what was left, and why a missed one was missed."""
    share = lambda a, b: round(c[a] / c[b], 4) if c[b] else None  # noqa: E731
    return {"index": i, "template": meta.get("template"), "family": meta.get("family"),
            "recolor": meta.get("recolor"), "texture": meta.get("texture"),
            "body_left": share("body_left", "body"), "loops_left": share("loops_left", "loops"),
            "restored": restored, "missed_why": why, "pixels": c}


def _left_overlay(masked: np.ndarray, output: np.ndarray, occluder: np.ndarray) -> np.ndarray:
    left = occluder & ~(output != masked).any(-1)
    out = output.copy()
    out[left] = (255, 0, 0)
    return out


def run_coverage(cfg: CoverageConfig, progress: bool = True) -> dict:
    from unveil.occlusion.synth import Synthesizer
    from unveil.pipeline import Restorer, full_weight_inset

    if cfg.faces not in SOURCES:
        raise UnveilError(f"--faces must be one of {', '.join(SOURCES)}, got '{cfg.faces}'")
    out = cfg.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    from unveil import models
    from unveil.pipeline import RestoreOptions

    seg = models.load(cfg.segmenter, "segmenter", weights=cfg.seg_weights) if cfg.seg_weights else cfg.segmenter
    restorer = Restorer(segmenter=seg, inpainter=None if cfg.model == "auto" else cfg.model,
                        options=RestoreOptions(wide=cfg.wide, complete=cfg.complete, loops=cfg.loops,
                                               **({"beyond": cfg.beyond} if cfg.beyond else {})))
    photos = _photos(cfg.faces, cfg.n + cfg.clean, cfg.seed, cfg.data)
    occluded_photos, clean_photos = photos[:cfg.n], photos[cfg.n:]
    counts, missed, sheet, seconds, rows, views = [], 0, [], [], [], []
    synths: dict[int, Synthesizer] = {}  # one per photo size: its assets are read once
    for i, photo in enumerate(tqdm(occluded_photos, desc="coverage", unit="photo", disable=not progress)):
        side = photo.shape[0]
        synth = synths.setdefault(side, Synthesizer(cfg.data, "test", side, loops=1.0, recolor=0.33))
        try:
            s = synth.sample(photo, seed=(cfg.seed, i), kind="facemask")
        except UnveilError:
            continue  # no face to draw on
        t = time.perf_counter()
        crops = []
        try:
            res = restorer.restore(s.occluded, keep_crops=True)
            output, restored, crops = res.image, any(f.restored for f in res.faces), res.crops
            why = "" if restored else "; ".join(f.note for f in res.faces if f.note) or "no face found"
        except UnveilError as e:
            output, restored, why = s.occluded, False, str(e)
        seconds.append(time.perf_counter() - t)
        missed += not restored
        c = coverage_counts(s.occluded, output, s.mask, s.loops, cfg.far)
        if crops:
            changed = (output != s.occluded).any(-1)
            parts = [seam_sums(output, s.clean, changed, fc.aligned, full_weight_inset(fc.aligned.size))
                     for fc in crops]
            c["seam"] = {k: sum(q[k] for q in parts) for k in parts[0]}
            inside = np.zeros(changed.shape, bool)
            for fc in crops:
                inside |= crop_square(output.shape, fc.aligned)
            c["beyond"] = beyond_sums(output, s.clean, changed & ~inside)
        counts.append(c)
        rows.append(_photo_row(i, s.meta, c, restored, why))
        view = [s.occluded, output, _left_overlay(s.occluded, output, s.mask)]
        if len(sheet) < cfg.sheet:
            sheet.append(view)
        views.append((c["body_left"], i, view))
        views = sorted(views, key=lambda v: (-v[0], v[1]))[:cfg.sheet]  # the worst so far
    if not counts:
        raise UnveilError("no photo could be given a face mask (no face found)")
    touched, touched_px = 0, []
    for photo in tqdm(clean_photos, desc="clean photos", unit="photo", disable=not progress):
        try:
            res = restorer.restore(photo)
            changed = (res.image != photo).any(-1)
        except UnveilError:
            changed = np.zeros(photo.shape[:2], bool)
        touched += bool(changed.any())
        touched_px.append(float(changed.mean()))
    summary = summarize(counts)
    summary.update(missed=missed, clean=len(clean_photos),
                   clean_touched=touched / len(clean_photos) if clean_photos else float("nan"),
                   clean_changed_px=float(np.mean(touched_px)) if touched_px else float("nan"),
                   seconds_per_photo=float(np.mean(seconds)) if seconds else float("nan"))
    if sheet:
        write_image(out / "sheet.png", image_grid(sheet, ["masked", "output", "left (red)"]))
        write_image(out / "worst.png", image_grid([v for _, _, v in views], ["masked", "output", "left (red)"]))
    real = real_sheets(restorer, out, cfg.data, progress) if cfg.real else {}
    table = coverage_table(cfg, summary, real)
    result = {"config": asdict(cfg), "command": command_line(), "summary": summary, "real": real,
              "photos": rows, "table": table, "out_dir": str(out)}
    write_json(out / "coverage.json", result)
    write_text(out / "table.md", table + "\n")
    return result


def real_sheets(restorer, out: Path, data=None, progress: bool = True, height: int = 160,
                per_row: int = 10) -> dict:
    """Contact sheets (before / after) of the held-out real masked photos; counts of what happened."""
    from unveil.data.faces import REAL_HOLDOUT, holdout_split, real_photos

    try:
        photos = real_photos(data)
    except UnveilError as e:
        return {"skipped": str(e)}
    held = [p for p, k in zip(photos, holdout_split(len(photos), REAL_HOLDOUT)) if k]
    before, after, restored, no_face = [], [], 0, 0
    for p in tqdm(held, desc="real photos", unit="photo", disable=not progress):
        img = read_image(p)
        try:
            res = restorer.restore(img)
            outp = res.image
            restored += any(f.restored for f in res.faces)
        except UnveilError:
            outp = img
            no_face += 1
        w = max(1, round(img.shape[1] * height / img.shape[0]))
        before.append(cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA))
        after.append(cv2.resize(outp, (w, height), interpolation=cv2.INTER_AREA))
    for name, cells in (("real_before.png", before), ("real_after.png", after)):
        write_image(out / name, _contact(cells, per_row))
    return {"photos": len(held), "restored": restored, "no_face": no_face}


def _contact(cells: list[np.ndarray], per_row: int) -> np.ndarray:
    h = cells[0].shape[0]
    rows = []
    for i in range(0, len(cells), per_row):
        row = np.concatenate(cells[i:i + per_row], 1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    canvas = np.full((h * len(rows), width, 3), 255, np.uint8)
    for k, r in enumerate(rows):
        canvas[k * h:(k + 1) * h, :r.shape[1]] = r
    return canvas


def coverage_table(cfg: CoverageConfig, s: dict, real: dict) -> str:
    from unveil.pipeline import RestoreOptions

    pct = lambda v: "n/a" if v != v else f"{100 * v:.1f} %"  # noqa: E731
    seg = cfg.segmenter + (f" ({Path(cfg.seg_weights).name})" if cfg.seg_weights else "")
    beyond = cfg.beyond or RestoreOptions().beyond
    lines = [f"**eval-coverage** (inpainter {cfg.model}, segmenter {seg}, wide crop {'on' if cfg.wide else 'off'}, "
             f"beyond the face crop {beyond}) on {s['photos']} {cfg.faces} photos with a drawn face mask and its loops",
             "", "| body left | loops left | changed > %d px away | crop-edge seam (clean photo) | beyond: PSNR, "
             "detail | missed | clean touched | s/photo |" % cfg.far,
             "|---|---|---|---|---|---|---|---|",
             f"| {pct(s['body_left'])} | {pct(s['loops_left'])} | {pct(s['far'])} | "
             f"{s.get('seam', float('nan')):.2f} ({s.get('seam_truth', float('nan')):.2f}) | "
             f"{s.get('beyond_psnr', float('nan')):.2f} dB, {s.get('beyond_detail', float('nan')):.2f} | "
             f"{s['missed']} | "
             f"{pct(s['clean_touched'])} of {s['clean']} | {s['seconds_per_photo']:.2f} |"]
    if real.get("photos"):
        lines += ["", f"Held-out real masked photos: {real['restored']} of {real['photos']} restored, "
                      f"{real['no_face']} without a face found (real_before.png, real_after.png)."]
    return "\n".join(lines)
