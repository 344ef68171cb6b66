"""The evaluation harness behind ``unveil eval``.

For a model, a face source and a mask source, every face is cropped (aligned) at ``size``, its hole
blanked, inpainted, and scored against the truth: PSNR/SSIM/L1 on the whole image and inside the
hole, LPIPS (AlexNet), and the dlib identity distance; per hole-ratio bin, as the mean over the
10-60 % bins, and overall; plus a Frechet distance on AlexNet features (``fd_alexnet``, not FID).
Realism (``realism``): the detail ratio inside the hole (output over truth, see
:mod:`unveil.eval.metrics`), LPIPS-VGG on the hole's box, whether dlib's detector finds a face on
the output (``face_found``), and the AlexNet Frechet distance on the hole's boxes
(``fd_alexnet_hole``, 96 px crops).
Writes ``metrics.json``, ``table.md`` and ``grid.png`` (input, mask, output, truth).
"""
from __future__ import annotations

import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from unveil.version import __version__
from unveil.data import face_records, load_face
from unveil.data.faces import load_face_shaped, resize
from unveil.errors import UnveilError
from unveil.face.detect import TURNED
from unveil.eval import metrics as M
from unveil.eval.report import metrics_table
from unveil.viz import image_grid
from unveil.io import write_image, write_json, write_text
from unveil.masks import BINS, bin_of, hole_ratio, mask_source
from unveil.models import load as load_model

PER_IMAGE_KEYS = ("psnr", "ssim", "l1", "psnr_hole", "ssim_hole", "l1_hole", "lpips", "identity", "gender",
                  "detail", "lpips_vgg_box", "face_found", "ms")
BOX_SIDE = 96  # hole boxes are resized to this for the Frechet distance
MID_BINS = ("10-20", "20-30", "30-40", "40-50", "50-60")
MID_LABEL = "10-60 (mean of bins)"


@dataclass
class EvalConfig:
    model: str = "telea"
    faces: str = "utkface"  # utkface, lfw, or a folder of aligned faces
    split: str = "test"
    masks: str = "nvidia"  # see unveil.masks.mask_source
    size: int = 256
    limit: int | None = 200
    seed: int = 0
    lpips: bool = True
    identity: bool = True
    #: realism: detail ratio (always cheap), LPIPS-VGG on the hole's box, dlib face found, FD on boxes
    realism: bool = True
    #: gender consistency: 1 when the gender classifier gives the output the truth's label, else 0
    gender: bool = False
    grid: int = 8
    batch: int = 8
    data: str | None = None
    out: str | None = None
    model_kwargs: dict = field(default_factory=dict)
    #: "HxW" for non-square crops (e.g. "256x192"): faces are cropped at that aspect and the masks
    #: resized to it, for models that take any shape; ``size`` is then ignored.
    shape: str | None = None

    def hw(self) -> tuple[int, int]:
        if not self.shape:
            return self.size, self.size
        try:
            h, w = (int(v) for v in self.shape.lower().split("x"))
        except ValueError:
            raise UnveilError(f"--shape must be HxW, e.g. 256x192, got '{self.shape}'") from None
        if not (32 <= h <= 2048 and 32 <= w <= 2048):
            raise UnveilError(f"--shape {self.shape} is out of range (32-2048 per side)")
        return h, w

    def run_name(self) -> str:
        faces = Path(self.faces).name if self.faces not in ("utkface", "lfw") else self.faces
        split = f"-{self.split}" if self.faces == "utkface" else ""
        masks = Path(self.masks).name if Path(self.masks).is_dir() else self.masks.replace(":", "-")
        return f"{self.model}-{faces}{split}-{masks}-{self.shape or self.size}"

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / "eval" / self.run_name()


def command_line() -> str:
    """The command that produced a result, for the record in its JSON."""
    prog = "unveil" if Path(sys.argv[0]).name in ("unveil", "__main__.py") else sys.argv[0]
    return " ".join([prog, *sys.argv[1:]])


def blank_hole(image: np.ndarray, mask: np.ndarray, value: int = 0) -> np.ndarray:
    """What a model sees: the hole's pixels replaced, so no truth leaks into the input."""
    out = image.copy()
    out[mask] = value
    return out


def resize_mask(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    import cv2

    if mask.shape == hw:
        return mask
    return cv2.resize(mask.astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST) > 0


def _mean(rows: list[dict], key: str):
    vals = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
    return float(np.mean(vals)) if vals else None


def aggregate(per_image: list[dict]) -> dict[str, dict]:
    """Per-bin means, the mean over the 10-60 % bins, and the overall mean."""
    out: dict[str, dict] = {}
    bins = [b for b in list(BINS) + ["60-100"] if any(r["bin"] == b for r in per_image)]
    for b in bins:
        rows = [r for r in per_image if r["bin"] == b]
        out[b] = {"n": len(rows), **{k: _mean(rows, k) for k in PER_IMAGE_KEYS}}
    mids = [out[b] for b in MID_BINS if b in out]
    if len(mids) > 1:
        out[MID_LABEL] = {"n": sum(m["n"] for m in mids),
                          **{k: _mean(mids, k) for k in PER_IMAGE_KEYS}}
    out["all"] = {"n": len(per_image), **{k: _mean(per_image, k) for k in PER_IMAGE_KEYS}}
    return out


def _turned(r: dict) -> bool | None:
    y = r.get("yaw")
    return None if y is None or not np.isfinite(y) else abs(y) >= TURNED


#: Groups of faces in :func:`by_group`: (name, test on a per-image row). UTKFace labels give the
#: age and gender (0 man, 1 woman); the pose is the truth's yaw (:func:`unveil.face.detect.head_yaw`,
#: measured with the realism numbers): turned from ``TURNED`` (0.15) eye distances.
GROUPS = (("women", lambda r: r.get("sex") == 1), ("men", lambda r: r.get("sex") == 0),
          ("age 0-19", lambda r: r.get("age") is not None and r["age"] < 20),
          ("age 20-34", lambda r: r.get("age") is not None and 20 <= r["age"] < 35),
          ("age 35-59", lambda r: r.get("age") is not None and 35 <= r["age"] < 60),
          ("age 60+", lambda r: r.get("age") is not None and r["age"] >= 60),
          ("men 35-65", lambda r: r.get("sex") == 0 and r.get("age") is not None and 35 <= r["age"] <= 65),
          ("frontal", lambda r: _turned(r) is False), ("turned head", lambda r: _turned(r) is True))


def by_group(per_image: list[dict]) -> dict[str, dict]:
    """Means over the faces of each of :data:`GROUPS` (faces with ``age`` / ``sex`` labels or a
    measured pose; empty groups left out): who the numbers are good for, not only how good they
    are on average."""
    out = {}
    for name, test in GROUPS:
        rows = [r for r in per_image if test(r)]
        if rows:
            out[name] = {"n": len(rows), **{k: _mean(rows, k) for k in PER_IMAGE_KEYS}}
    return out


def run_eval(cfg: EvalConfig, progress: bool = True, model=None) -> dict:
    """Evaluate ``cfg.model`` (or an :class:`~unveil.models.Inpainter` instance passed as
    ``model``, e.g. a network being trained; ``cfg.model`` then only names it)."""
    if cfg.size < 32 or cfg.size > 2048:
        raise UnveilError(f"--size {cfg.size} is out of range (32-2048)")
    hw = cfg.hw()
    records = face_records(cfg.faces, cfg.split, cfg.data)
    if cfg.limit is not None:
        records = records[: cfg.limit]
    if not records:
        raise UnveilError("no faces to evaluate")
    masks = mask_source(cfg.masks, cfg.data, cfg.seed)
    model = model if model is not None else load_model(cfg.model, **cfg.model_kwargs)
    lp = embedder = None
    if cfg.lpips:
        from unveil.eval.lpips import get_lpips
        lp = get_lpips("alex")
    if cfg.identity:
        from unveil.face.identity import get_embedder
        embedder = get_embedder()
    vgg = None
    if cfg.realism:
        from unveil.eval.lpips import get_lpips
        from unveil.face.identity import get_embedder
        from unveil.face.detect import head_yaw
        from unveil.models.lgface import mesh_points
        vgg, finder = get_lpips("vgg"), get_embedder()
        lp_alex = get_lpips("alex")
    clf = None
    if cfg.gender:
        from unveil.models.gender import load_gender_classifier
        clf = load_gender_classifier()

    out_dir = cfg.out_dir()
    per_image, grid_rows, feats_out, feats_true, box_out, box_true = [], [], [], [], [], []
    bar = tqdm(total=len(records), desc=f"eval {cfg.model}", unit="img", disable=not progress,
               file=sys.stderr)
    for start in range(0, len(records), cfg.batch):
        chunk = records[start:start + cfg.batch]
        if cfg.shape:
            truths = [load_face_shaped(r, hw) for r in chunk]
            mbs = []
            for j in range(len(chunk)):
                m = resize_mask(masks(start + j, max(hw))[0], hw)
                mbs.append((m, bin_of(hole_ratio(m))))
        else:
            truths = [load_face(r, cfg.size) for r in chunk]
            mbs = [masks(start + j, cfg.size) for j in range(len(chunk))]
        inputs = [blank_hole(t, m) for t, (m, _) in zip(truths, mbs)]
        t0 = time.perf_counter()
        outputs = model.inpaint_batch(inputs, [m for m, _ in mbs])
        ms = (time.perf_counter() - t0) * 1000 / len(chunk)
        lps = lp.distance(np.stack(outputs), np.stack(truths)) if lp is not None else [None] * len(chunk)
        agree = [None] * len(chunk)
        if clf is not None:
            p_out, p_true = clf.predict(outputs), clf.predict(truths)
            agree = [float((a >= 0.5) == (b >= 0.5)) for a, b in zip(p_out, p_true)]
        if lp is not None:
            feats_out.append(lp.pooled_features(np.stack(outputs)))
            feats_true.append(lp.pooled_features(np.stack(truths)))
        for j, (rec, truth, out, (mask, b)) in enumerate(zip(chunk, truths, outputs, mbs)):
            row = {
                "index": start + j, "path": str(rec.path), "bin": b, "hole_ratio": hole_ratio(mask),
                "psnr": M.psnr(out, truth), "ssim": M.ssim(out, truth), "l1": M.l1(out, truth),
                "ms": ms, "lpips": None if lps[j] is None else float(lps[j]),
                "identity": None, "identity_detected": None, "gender": agree[j],
                "age": rec.age, "sex": rec.gender,
            }
            if mask.any():
                row.update(psnr_hole=M.psnr(out, truth, mask), ssim_hole=M.ssim(out, truth, mask),
                           l1_hole=M.l1(out, truth, mask), detail=M.detail_ratio(out, truth, mask))
                if vgg is not None:
                    ys, xs = M.hole_box(mask)
                    row["lpips_vgg_box"] = float(vgg.distance(out[ys, xs], truth[ys, xs])[0])
                    box_out.append(resize(out[ys, xs], BOX_SIDE))
                    box_true.append(resize(truth[ys, xs], BOX_SIDE))
            if vgg is not None:
                row["face_found"] = float(finder.detect(out) is not None)
                pts = mesh_points(truth)
                row["yaw"] = None if pts is None else float(head_yaw(pts[None])[0])
            if embedder is not None:
                row["identity"], row["identity_detected"] = embedder.identity_distance(out, truth)
            per_image.append(row)
            if len(grid_rows) < cfg.grid:
                grid_rows.append([blank_hole(truth, mask, 255), mask, out, truth])
        bar.update(len(chunk))
    bar.close()

    summary = aggregate(per_image)
    fd = None
    if feats_out:
        from unveil.eval.lpips import frechet_distance
        fd = frechet_distance(np.concatenate(feats_out), np.concatenate(feats_true))
    fd_hole = None
    if len(box_out) > 1:
        from unveil.eval.lpips import frechet_distance
        fd_hole = frechet_distance(lp_alex.pooled_features(np.stack(box_out)),
                                   lp_alex.pooled_features(np.stack(box_true)))
    detected = [r["identity_detected"] for r in per_image if r["identity_detected"] is not None]
    result = {
        "command": command_line(),
        "config": asdict(cfg),
        "model": cfg.model,
        "summary": summary,
        "groups": by_group(per_image),
        "fd_alexnet": fd,
        "fd_alexnet_hole": fd_hole,
        "fd_alexnet_note": "Frechet distance on AlexNet conv5 pooled features (ImageNet weights); "
                           "NOT Inception FID, not comparable with published FID numbers",
        "identity_face_found": (float(np.mean(detected)) if detected else None),
        "metrics_note": M.__doc__.split("Conventions", 1)[-1].strip(),
        "environment": {"unveil": __version__, "python": platform.python_version(),
                        "machine": platform.machine(), "processor": platform.processor()},
        "per_image": per_image,
    }
    table = metrics_table(summary)
    if result["groups"]:
        table += "\n\nBy group (the faces' UTKFace age and gender labels):\n\n" \
            + metrics_table(result["groups"], first="group")
    header = (f"**{cfg.model}** on {cfg.faces}{'/' + cfg.split if cfg.faces == 'utkface' else ''}, "
              f"masks `{cfg.masks}`, {cfg.shape or cfg.size} px, {len(per_image)} faces"
              + (f"; FD-AlexNet (not FID) {fd:.2f}" if fd is not None and np.isfinite(fd) else "")
              + (f", on the hole's boxes {fd_hole:.2f}" if fd_hole is not None and np.isfinite(fd_hole) else "")
              + "\n\n")
    write_json(out_dir / "metrics.json", result)
    write_text(out_dir / "table.md", header + table)
    if grid_rows:
        write_image(out_dir / "grid.png", image_grid(grid_rows, ["input", "mask", "output", "truth"]))
    result["table"] = header + table
    result["out_dir"] = str(out_dir)
    return result
