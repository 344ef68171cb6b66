"""``unveil eval-seg``: occluder segmentation scored on a fixed synthetic test set, per occluder kind,
and shown on real masked photos.

The test set is a seeded pool of synthetic occlusions of UTKFace *test* faces (``object_test``
assets), every kind in equal share. Scores are pooled over all pixels of a kind (and overall):
pixel accuracy, IoU and F1 of the occluder class, plus the mean per-image IoU. A trivial
``all-background`` row (predicts no occluder) shows what the numbers mean. The real-photo sheet
aligns faces of ``real_masked/`` with the front end and overlays the predicted mask.
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from unveil.eval.harness import command_line
from unveil.eval.metrics import seg_counts, seg_scores
from unveil.viz import image_grid
from unveil.io import write_image, write_json, write_text
from unveil.occlusion.segpool import PoolSpec, build_pool, load_pool

TRIVIAL = "all-background"


@dataclass
class SegEvalConfig:
    model: str = "soclnet"
    n: int = 600
    size: int = 256
    seed: int = 0
    threshold: float = 0.5
    real: int = 24
    #: clean UTKFace test faces (no occluder): how often a bare face is "found" occluded
    clean: int = 200
    weights: str | None = None  #: a segmenter weight file (a training run's) instead of the shipped one
    data: str | None = None
    out: str | None = None

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / "eval-seg" / f"{self.model}-{self.size}"


def overlay(image: np.ndarray, mask: np.ndarray, colour=(255, 40, 40)) -> np.ndarray:
    out = image.astype(np.float32)
    out[mask] = out[mask] * 0.45 + np.array(colour, np.float32) * 0.55
    edge = mask ^ (cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    out[edge] = colour
    return out.astype(np.uint8)


def _predictor(name: str, weights: str | None = None):
    if name == TRIVIAL:
        return lambda img: np.zeros(img.shape[:2], np.float32)
    from unveil import models

    return models.load(name, "segmenter", **({"weights": weights} if weights else {})).segment


def real_sheet(predict, n: int, data=None, threshold: float = 0.5, size: int = 256) -> np.ndarray | None:
    from unveil.data.paths import data_root
    from unveil.face import align_face, get_detector
    from unveil.io import read_image

    root = data_root(data, need="real_masked")
    files = sorted((root / "real_masked" / "rmfd").glob("*.jpg"))[::7] + \
        sorted((root / "real_masked" / "facemask_detection").glob("*.jpg"))[::11]
    det, cells = get_detector(), []
    for f in files:
        if len(cells) >= n:
            break
        faces = det.detect(read_image(f))
        if not faces:
            continue
        crop = align_face(read_image(f), faces[0].kps5, size).crop
        cells.append(overlay(crop, predict(crop) >= threshold))
    if not cells:
        return None
    per_row = 6
    rows = [cells[i:i + per_row] for i in range(0, len(cells), per_row)]
    rows[-1] += [np.full_like(cells[0], 255)] * (per_row - len(rows[-1]))
    return image_grid(rows)


def clean_faces_score(predict, cfg: SegEvalConfig, progress: bool = True) -> dict:
    """False alarms on clean faces: pixel accuracy and mean wrongly marked share (raw threshold),
    and the share of faces the pipeline would touch (its own decision: specks dropped, at least
    ``min_area`` of the face left; :func:`unveil.pipeline.occluder_mask`)."""
    from unveil.pipeline import RestoreOptions, occluder_mask

    opts = RestoreOptions(threshold=cfg.threshold)
    pool = load_pool(build_pool(PoolSpec("test", cfg.clean, cfg.size, cfg.seed, clean=True), cfg.data,
                                progress=progress))
    shares, flagged = [], []
    for img in tqdm(pool["images"], desc="eval-seg clean faces", disable=not progress, file=sys.stderr):
        prob = predict(img)
        shares.append(float((prob >= cfg.threshold).mean()))
        flagged.append(bool(occluder_mask(prob, opts).any()))
    shares = np.asarray(shares)
    return {"n": len(shares), "pa": float(1 - shares.mean()), "fp_share": float(shares.mean()),
            "flagged": float(np.mean(flagged)), "min_area": opts.min_area,
            "presence_threshold": opts.presence_threshold}


def run_seg_eval(cfg: SegEvalConfig, progress: bool = True) -> dict:
    pool = load_pool(build_pool(PoolSpec("test", cfg.n, cfg.size, cfg.seed), cfg.data, progress=progress))
    kinds = [str(k) for k in pool["kind_names"]]
    predict = _predictor(cfg.model, cfg.weights)
    counts = {k: np.zeros(4, np.int64) for k in kinds}
    ious = {k: [] for k in kinds}
    times, sheet = [], []
    for i in tqdm(range(len(pool["images"])), desc=f"eval-seg {cfg.model}", disable=not progress,
                  file=sys.stderr):
        img, truth, kind = pool["images"][i], pool["masks"][i], kinds[pool["kinds"][i]]
        t0 = time.perf_counter()
        prob = predict(img)
        times.append((time.perf_counter() - t0) * 1000)
        pred = prob >= cfg.threshold
        c = seg_counts(pred, truth)
        counts[kind] += c
        ious[kind].append(seg_scores(c)["iou"])
        if len(sheet) < 12:
            sheet.append([img, truth, overlay(img, pred)])
    rows = {}
    for k in kinds:
        if ious[k]:
            rows[k] = {"n": len(ious[k]), **seg_scores(counts[k]), "mean_image_iou": float(np.mean(ious[k]))}
    total = sum(counts.values())
    rows["all"] = {"n": sum(len(v) for v in ious.values()), **seg_scores(total),
                   "mean_image_iou": float(np.mean([x for v in ious.values() for x in v]))}
    ms = statistics.median(times[1:]) if len(times) > 1 else times[0]
    if cfg.clean:
        rows["clean"] = clean_faces_score(predict, cfg, progress)
    lines = [f"**{cfg.model}** on the synthetic occlusion test set ({rows['all']['n']} UTKFace test faces, "
             f"{cfg.size} px, threshold {cfg.threshold}); median {ms:.1f} ms per crop\n",
             "| occluder | n | pixel acc. | IoU | F1 | mean image IoU |", "|---|---|---|---|---|---|"]
    for k, r in rows.items():
        if k == "clean":
            continue
        lines.append(f"| {k} | {r['n']} | {r['pa']:.4f} | {r['iou']:.4f} | {r['f1']:.4f} | "
                     f"{r['mean_image_iou']:.4f} |")
    if "clean" in rows:
        c = rows["clean"]
        lines += ["", f"On {c['n']} clean UTKFace test faces (no occluder): pixel accuracy {c['pa']:.4f}, "
                      f"{c['fp_share'] * 100:.2f} % of each face wrongly marked on average, "
                      f"{c['flagged'] * 100:.1f} % of the faces would be touched by the pipeline (at least "
                      f"{c['min_area'] * 100:.1f} % of the face at probability {c['presence_threshold']} or "
                      f"more, specks dropped)."]
    table = "\n".join(lines) + "\n"
    out = cfg.out_dir()
    result = {"command": command_line(), "config": asdict(cfg), "ms_per_crop": ms, "scores": rows}
    write_json(out / "seg_metrics.json", result)
    write_text(out / "table.md", table)
    write_image(out / "sheet_synthetic.png", image_grid(
        [sum(sheet[i:i + 3], []) for i in range(0, len(sheet), 3)],
        ["input", "truth", "prediction"] * 3))
    if cfg.real and cfg.model != TRIVIAL:
        real = real_sheet(predict, cfg.real, cfg.data, cfg.threshold)
        if real is not None:
            write_image(out / "sheet_real.png", real)
    result["table"], result["out_dir"] = table, str(out)
    return result
