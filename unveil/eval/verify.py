"""Face verification on LFW pairs (``unveil eval-verify``): original, masked and restored probes.

For every pair (A, B) of the pairs file, B is the probe: it is covered by a hole from a mask source
(a lower-face ``facemask`` shape by default), filled with grey for the *masked* condition and
inpainted by the model for the *restored* one. Each face is embedded by dlib in the box found on its
clean version, and a pair is called "same" when the distance is below the threshold (0.6). Accuracy
is computed per fold of the pairs file (10-fold style; the shared file has 3) and reported as
mean and standard deviation over folds.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from unveil.data import lfw_pairs, load_face
from unveil.errors import UnveilError
from unveil.eval.harness import blank_hole, command_line
from unveil.face.identity import THRESHOLD, get_embedder
from unveil.viz import image_grid
from unveil.io import write_image, write_json, write_text
from unveil.masks import mask_source
from unveil.models import load as load_model

CONDITIONS = ("original", "masked", "restored")
MASK_GREY = 128


@dataclass
class VerifyConfig:
    model: str = "telea"
    masks: str = "facemask"
    size: int = 256
    pairs: str | None = None  # pairs file; default faces/lfw/pairs.txt
    limit: int | None = None  # pairs per fold (half matched, half mismatched)
    threshold: float = THRESHOLD
    seed: int = 0
    data: str | None = None
    out: str | None = None

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / "verify" / (
            f"{self.model}-{self.masks.replace(':', '-')}-{self.size}")


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


def run_verify(cfg: VerifyConfig, progress: bool = True) -> dict:
    pairs = _select(lfw_pairs(cfg.data, cfg.pairs), cfg.limit)
    masks = mask_source(cfg.masks, cfg.data, cfg.seed)
    model = load_model(cfg.model)
    emb = get_embedder()
    clean_cache: dict[Path, tuple] = {}

    def clean(path: Path):
        if path not in clean_cache:
            img = load_face(path, cfg.size)
            e = emb.embed(img)
            clean_cache[path] = (img, e)
        return clean_cache[path]

    dist = {c: [] for c in CONDITIONS}
    found, grid = [], []
    for i, p in enumerate(tqdm(pairs, desc=f"verify {cfg.model}", unit="pair",
                               disable=not progress, file=sys.stderr)):
        _, ea = clean(p.a)
        img_b, eb = clean(p.b)
        found += [ea.detected, eb.detected]
        mask, _ = masks(i, cfg.size)
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
    out = cfg.out_dir()
    result = {"command": command_line(), "config": asdict(cfg), "pairs": len(pairs),
              "folds": int(len(np.unique(folds))),
              "face_found_on_clean": float(np.mean(found)), "conditions": results,
              "distances": {c: [float(x) for x in v] for c, v in dist.items()},
              "same": same.tolist(), "fold": folds.tolist()}
    lines = [f"**{cfg.model}**: LFW verification, {len(pairs)} pairs in {result['folds']} folds, "
             f"probe covered by `{cfg.masks}` at {cfg.size} px, threshold {cfg.threshold}\n",
             "| probe | accuracy | ± (folds) | dist same | dist different |", "|---|---|---|---|---|"]
    for c in CONDITIONS:
        r = results[c]
        lines.append(f"| {c} | {r['accuracy']:.4f} | {r['accuracy_std']:.4f} | "
                     f"{r['mean_distance_same']:.3f} | {r['mean_distance_different']:.3f} |")
    table = "\n".join(lines) + "\n"
    write_json(out / "verify.json", result)
    write_text(out / "table.md", table)
    if grid:
        write_image(out / "grid.png", image_grid(grid, ["A", "B", "B masked", "B restored"]))
    result["table"], result["out_dir"] = table, str(out)
    return result
