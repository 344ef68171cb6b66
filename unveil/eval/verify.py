"""Face verification on LFW pairs (``unveil eval-verify``): original, masked and restored probes.

For every pair (A, B) of the pairs file, B is the probe: it is covered by a hole from a mask source
(a lower-face ``facemask`` shape by default), filled with grey for the *masked* condition and
inpainted by the model for the *restored* one. Each face is embedded by dlib in the box found on its
clean version, and a pair is called "same" when the distance is below the threshold (0.6). Accuracy
is computed per fold of the pairs file (10-fold style; the shared file has 3) and reported as
mean and standard deviation over folds. Beside it, LFW's own protocol (the threshold that is best on
the other folds, applied to each fold) and the ROC AUC: whether restoring only shifts the distances
(a user could move the threshold) or mixes matched and mismatched pairs.

Two frames for the hole (``frame``). ``photo`` (the default) is what a user of ``unveil remove
--mask`` gets: the hole is drawn in the face's aligned crop, where the mask shapes are defined (so it
covers the nose, mouth and chin of a tilted or turned head as a worn mask would), warped onto the
LFW photo, and the probe is restored by the photo pipeline (detect, align, inpaint, paste back).
``crop`` is the older protocol: the hole at a fixed place of the LFW crop and the model run on that
crop unaligned, which is not what the product does (LFW crops are not aligned like the faces the
models train on).
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from unveil.data import lfw_pairs, load_face
from unveil.errors import UnveilError
from unveil.eval.harness import blank_hole, command_line, resize_mask
from unveil.face.align import align_face
from unveil.face.paste import image_window, mask_to_window
from unveil.face.identity import THRESHOLD, get_embedder
from unveil.viz import image_grid
from unveil.io import write_image, write_json, write_text
from unveil.masks import mask_source
from unveil.models import load as load_model

CONDITIONS = ("original", "masked", "restored")
MASK_GREY = 128
FRAMES = ("photo", "crop")


@dataclass
class VerifyConfig:
    model: str = "telea"
    masks: str = "facemask"
    size: int = 256
    pairs: str | None = None  # pairs file; default faces/lfw/pairs.txt
    limit: int | None = None  # pairs per fold (half matched, half mismatched)
    threshold: float = THRESHOLD
    seed: int = 0
    frame: str = "photo"  # "photo": aligned hole, pipeline restores; "crop": the older protocol
    data: str | None = None
    out: str | None = None

    def __post_init__(self):
        if self.frame not in FRAMES:
            raise UnveilError(f"--frame must be one of {', '.join(FRAMES)}, not {self.frame!r}")

    def out_dir(self) -> Path:
        suffix = "" if self.frame == "photo" else f"-{self.frame}"
        return Path(self.out) if self.out else Path("runs") / "verify" / (
            f"{self.model}-{self.masks.replace(':', '-')}-{self.size}{suffix}")


def photo_hole(image: np.ndarray, crop_mask: np.ndarray, detector) -> np.ndarray:
    """A hole drawn in the aligned crop of ``image``'s largest face, as a bool mask of the photo.

    The mask shapes are defined in unveil's aligned framing; warped through the face's alignment
    they sit on the face as a worn mask would, whatever the head's tilt or scale in the photo.
    Without a face found the crop mask is only resized onto the photo."""
    h, w = image.shape[:2]
    faces = detector.detect(image)
    if not faces:
        return resize_mask(crop_mask, (h, w))
    al = align_face(image, faces[0].kps5, crop_mask.shape[0])
    hole = np.zeros((h, w), bool)
    win = image_window(image.shape, al)
    if win is not None:
        x0, y0, x1, y1 = win
        hole[y0:y1, x0:x1] = mask_to_window(crop_mask, al, win)
    return hole


def _select(pairs, limit):
    if limit is None:
        return pairs
    if limit < 2:
        raise UnveilError("--limit must be at least 2 pairs per fold")
    keep = []
    for f in sorted({p.fold for p in pairs}):
        fold = [p for p in pairs if p.fold == f]
        keep += [p for p in fold if p.same][: limit // 2] + [p for p in fold if not p.same][: limit // 2]
    return keep


def fold_accuracy(dist: np.ndarray, same: np.ndarray, folds: np.ndarray, thr: float) -> list[float]:
    """Accuracy of ``dist < thr`` against ``same``, one value per fold."""
    return [float(np.mean((dist[folds == f] < thr) == same[folds == f])) for f in np.unique(folds)]


def best_threshold(dist: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy of ``dist < thr`` on these pairs: the midpoint
    between two neighbouring distances (the smallest such threshold on ties)."""
    d = np.sort(np.unique(dist))
    cands = np.concatenate([[d[0] - 1e-6], (d[:-1] + d[1:]) / 2, [d[-1] + 1e-6]])
    accs = [np.mean((dist < t) == same) for t in cands]
    return float(cands[int(np.argmax(accs))])


def tuned_fold_accuracy(dist: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[list[float], list[float]]:
    """LFW's protocol: for each fold, the threshold that is best on the other folds, and the
    accuracy it gives on this one. Returns (accuracies, thresholds), one per fold."""
    accs, thrs = [], []
    for f in np.unique(folds):
        t = best_threshold(dist[folds != f], same[folds != f])
        thrs.append(t)
        accs.append(float(np.mean((dist[folds == f] < t) == same[folds == f])))
    return accs, thrs


def roc_auc(dist: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve of ``-dist`` as the score of "same": the chance that a matched pair
    is closer than a mismatched one (ties count one half)."""
    pos, neg = dist[same], dist[~same]
    if not len(pos) or not len(neg):
        raise UnveilError("the ROC AUC needs matched and mismatched pairs")
    closer = (pos[:, None] < neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(closer / (len(pos) * len(neg)))


def run_verify(cfg: VerifyConfig, progress: bool = True) -> dict:
    pairs = _select(lfw_pairs(cfg.data, cfg.pairs), cfg.limit)
    masks = mask_source(cfg.masks, cfg.data, cfg.seed)
    model = load_model(cfg.model)
    emb = get_embedder()
    if cfg.frame == "photo":
        from unveil.face.detect import get_detector
        from unveil.pipeline import Restorer

        detector = get_detector()
        restorer = Restorer(segmenter=None, inpainter=model)
    clean_cache: dict[Path, tuple] = {}

    def clean(path: Path):
        if path not in clean_cache:
            img = load_face(path, cfg.size)
            e = emb.embed(img)
            clean_cache[path] = (img, e)
        return clean_cache[path]

    dist = {c: [] for c in CONDITIONS}
    found, grid, by_model = [], [], []
    for i, p in enumerate(tqdm(pairs, desc=f"verify {cfg.model}", unit="pair",
                               disable=not progress, file=sys.stderr)):
        _, ea = clean(p.a)
        img_b, eb = clean(p.b)
        found += [ea.detected, eb.detected]
        mask, _ = masks(i, cfg.size)
        if cfg.frame == "photo":
            mask = photo_hole(img_b, mask, detector)
            masked = blank_hole(img_b, mask, MASK_GREY)
            res = restorer.restore(masked, mask=mask, faces="largest")
            restored = res.image
            by_model.append(any(f.restored for f in res.faces))
        else:
            masked = blank_hole(img_b, mask, MASK_GREY)
            restored = model.inpaint(blank_hole(img_b, mask), mask)
        dist["original"].append(emb.distance(ea, eb))
        dist["masked"].append(emb.distance(ea, emb.embed(masked, eb.box)))
        dist["restored"].append(emb.distance(ea, emb.embed(restored, eb.box)))
        if len(grid) < 6:
            grid.append([clean(p.a)[0], img_b, masked, restored])

    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    results = {}
    for c in CONDITIONS:
        d = np.array(dist[c])
        acc = fold_accuracy(d, same, folds, cfg.threshold)
        results[c] = {"accuracy": float(np.mean(acc)), "accuracy_std": float(np.std(acc)),
                      "fold_accuracy": acc, "mean_distance_same": float(d[same].mean()),
                      "mean_distance_different": float(d[~same].mean())}
        if len(np.unique(folds)) > 1:
            tacc, thr = tuned_fold_accuracy(d, same, folds)
            results[c].update(accuracy_tuned=float(np.mean(tacc)), fold_accuracy_tuned=tacc,
                              fold_threshold_tuned=thr)
        if same.any() and (~same).any():
            results[c]["auc"] = roc_auc(d, same)
    out = cfg.out_dir()
    result = {"command": command_line(), "config": asdict(cfg), "pairs": len(pairs),
              "folds": int(len(np.unique(folds))),
              "face_found_on_clean": float(np.mean(found)), "conditions": results,
              # photo frame: the share of probes the pipeline found a face on and restored with the
              # model (the rest of a hole is filled locally, as `unveil remove --mask` does)
              "restored_by_model": float(np.mean(by_model)) if by_model else None,
              "distances": {c: [float(x) for x in v] for c, v in dist.items()},
              "same": same.tolist(), "fold": folds.tolist()}
    lines = [f"**{cfg.model}**: LFW verification, {len(pairs)} pairs in {result['folds']} folds, "
             f"probe covered by `{cfg.masks}` at {cfg.size} px ({cfg.frame} frame), threshold {cfg.threshold}\n",
             "| probe | accuracy | ± (folds) | accuracy, threshold tuned on the other folds | ROC AUC "
             "| dist same | dist different |", "|---|---|---|---|---|---|---|"]
    for c in CONDITIONS:
        r = results[c]
        tuned = f"{r['accuracy_tuned']:.4f}" if "accuracy_tuned" in r else "-"
        auc = f"{r['auc']:.4f}" if "auc" in r else "-"
        lines.append(f"| {c} | {r['accuracy']:.4f} | {r['accuracy_std']:.4f} | {tuned} | {auc} | "
                     f"{r['mean_distance_same']:.3f} | {r['mean_distance_different']:.3f} |")
    table = "\n".join(lines) + "\n"
    write_json(out / "verify.json", result)
    write_text(out / "table.md", table)
    if grid:
        write_image(out / "grid.png", image_grid(grid, ["A", "B", "B masked", "B restored"]))
    result["table"], result["out_dir"] = table, str(out)
    return result
