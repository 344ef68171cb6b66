"""``make bench``: speed and quality of every registered model, as JSON, markdown and README rows.

Speed: ms per image at 128/256/512 px (median of repeated runs after a warm-up) on a face crop of
scikit-image's astronaut with a 30-40 % free-form hole; no shared data needed. Quality: the eval
harness on the UTKFace test split with NVIDIA masks at 256 px (per bin, the 10-60 % mean, all).
Segmenters: ``eval-seg`` on the synthetic occlusion test set, next to the all-background row.
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unveil.data.faces import resize
from unveil.data.paths import REPO_ROOT
from unveil.errors import UnveilError
from unveil.eval.harness import MID_LABEL, EvalConfig, command_line, run_eval
from unveil.io import write_json, write_text
from unveil.masks import freeform_mask
from unveil.models import available, info, load

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


@dataclass
class BenchConfig:
    out: str = "bench"
    sizes: tuple[int, ...] = (128, 256, 512)
    repeats: int = 7
    limit: int = 200
    quality_size: int = 256
    models: list[str] | None = None
    readme: bool = True
    data: str | None = None
    identity: bool = True
    segmenters: bool = True
    #: Arbitrary-shape rows: non-square LFW crops (HxW), for the models in ``shape_models``.
    shapes: tuple[str, ...] = ("256x192", "200x320")
    shape_models: tuple[str, ...] = ("in2", "ifacenet", "biharmonic", "telea")
    shape_limit: int = 100
    #: Keep the rows of models (and segmenters) not re-run from the existing results.json.
    merge: bool = False


def speed(model_name: str, sizes, repeats: int) -> dict[int, float]:
    from skimage import data

    face = data.astronaut()[20:240, 130:350]  # Eileen Collins' face, square
    model = load(model_name)
    res = {}
    for s in sizes:
        img, mask = resize(face, s), freeform_mask(s, 0, "medium", bin="30-40")
        model.inpaint(img, mask)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.inpaint(img, mask)
            times.append((time.perf_counter() - t0) * 1000)
        res[s] = statistics.median(times)
    return res


def _markdown(results: dict) -> str:
    sizes = results["config"]["sizes"]
    lines = [f"Measured {results['date']} on {results['machine']} with `{results['command']}`"
             + (f"; {results['merged']}" if results.get("merged") else "") + ".", "",
             "**Speed** (ms per image, median of %d runs, 30-40 %% hole):" % results["config"]["repeats"],
             "", "| model | " + " | ".join(f"{s} px" for s in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for m, sp in results["speed"].items():
        lines.append(f"| {m} | " + " | ".join(f"{sp[str(s)]:.1f}" for s in sizes) + " |")
    q = results["quality"]
    if q:
        n = next(iter(q.values()))["all"]["n"]
        lines += ["", f"**Quality** on UTKFace test ({n} faces), NVIDIA irregular masks, "
                  f"{results['config']['quality_size']} px; whole image unless marked *hole*; "
                  "mean over the 10-60 % bins:", "",
                  "| model | PSNR | SSIM | L1 | PSNR hole | SSIM hole | LPIPS | ID dist | FD-AlexNet* |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for m, r in q.items():
            s = r[MID_LABEL]
            f = lambda v, p: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
            lines.append(f"| {m} | {f(s['psnr'], 2)} | {f(s['ssim'], 4)} | {f(s['l1'], 4)} | "
                         f"{f(s['psnr_hole'], 2)} | {f(s['ssim_hole'], 4)} | {f(s['lpips'], 4)} | "
                         f"{f(s['identity'], 3)} | {f(r['fd_alexnet'], 2)} |")
        bins = [b for b in next(iter(q.values())) if b[0].isdigit() and "mean" not in b]
        lines += ["", "PSNR inside the hole per bin:", "",
                  "| model | " + " | ".join(bins) + " |", "|---|" + "---|" * len(bins)]
        for m, r in q.items():
            lines.append(f"| {m} | " + " | ".join(
                "–" if r[b]["psnr_hole"] is None else f"{r[b]['psnr_hole']:.2f}" for b in bins) + " |")
        if "telea" in q:
            learned = [m for m in q if "learned" in info(m).tags]
            if learned:
                lines += ["", "Gain over Telea inside the hole (dB) per bin:", "",
                          "| model | " + " | ".join(bins) + " |", "|---|" + "---|" * len(bins)]
                for m in learned:
                    lines.append(f"| {m} | " + " | ".join(
                        "–" if q[m][b]["psnr_hole"] is None or q["telea"][b]["psnr_hole"] is None
                        else f"{q[m][b]['psnr_hole'] - q['telea'][b]['psnr_hole']:+.2f}" for b in bins) + " |")
        lines += ["", "\\* Frechet distance on AlexNet conv5 features, not Inception FID."]
    shp = results.get("shapes") or {}
    if shp:
        lines += ["", f"**Arbitrary shape**: non-square crops of LFW faces "
                  f"({results['config'].get('shape_limit')} faces), NVIDIA masks resized to the crop, "
                  "mean over the 10-60 % bins:", "",
                  "| model | crop (HxW) | PSNR | SSIM | PSNR hole | LPIPS |", "|---|---|---|---|---|---|"]
        for key, r in shp.items():
            m, shape = key.rsplit("@", 1)
            s = r.get(MID_LABEL) or r["all"]
            f = lambda v, p: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
            lines.append(f"| {m} | {shape} | {f(s['psnr'], 2)} | {f(s['ssim'], 4)} | "
                         f"{f(s['psnr_hole'], 2)} | {f(s['lpips'], 4)} |")
    seg = {k: v for k, v in results.get("segmentation", {}).items() if "error" not in v}
    if seg:
        kinds = [k for k in next(iter(seg.values())) if k not in ("ms_per_crop", "all")]
        lines += ["", "**Occluder segmentation** on the synthetic test set (600 UTKFace test faces, "
                  "every occluder kind, 256 px crops; pooled over pixels):", "",
                  "| segmenter | pixel acc. | IoU | F1 | ms/crop | " + " | ".join(f"IoU {k}" for k in kinds) + " |",
                  "|---|---|---|---|---|" + "---|" * len(kinds)]
        for m, r in seg.items():
            a = r["all"]
            lines.append(f"| {m} | {a['pa']:.4f} | {a['iou']:.4f} | {a['f1']:.4f} | "
                         f"{r['ms_per_crop']:.1f} | " + " | ".join(f"{r[k]['iou']:.3f}" for k in kinds) + " |")
    return "\n".join(lines) + "\n"


def _update_readme(md: str, readme: Path) -> bool:
    if not readme.exists():
        return False
    text = readme.read_text()
    pat = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pat.search(text):
        return False
    write_text(readme, pat.sub(lambda _: f"{README_START}\n{md}{README_END}", text))
    return True


def run_bench(cfg: BenchConfig) -> str:
    names = cfg.models or available("inpainter")
    for n in names:
        info(n)  # unknown names fail before any work
    out = Path(cfg.out)
    results = {
        "command": "make bench" if not (cfg.models or cfg.merge) else command_line(),
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads "
                   f"{__import__('torch').get_num_threads()}",
        "config": {"sizes": list(cfg.sizes), "repeats": cfg.repeats, "limit": cfg.limit,
                   "quality_size": cfg.quality_size, "masks": "nvidia", "faces": "utkface/test",
                   "shapes": list(cfg.shapes), "shape_limit": cfg.shape_limit},
        "speed": {}, "quality": {},
    }
    for n in names:
        results["speed"][n] = {str(s): v for s, v in speed(n, cfg.sizes, cfg.repeats).items()}
    for n in names:
        r = run_eval(EvalConfig(model=n, masks="nvidia", size=cfg.quality_size, limit=cfg.limit,
                                identity=cfg.identity, data=cfg.data, out=str(out / f"eval-{n}")))
        results["quality"][n] = {**r["summary"], "fd_alexnet": r["fd_alexnet"]}
    results["shapes"] = {}
    for shape in cfg.shapes:
        for n in [m for m in cfg.shape_models if m in names]:
            r = run_eval(EvalConfig(model=n, faces="lfw", masks="nvidia", shape=shape, limit=cfg.shape_limit,
                                    identity=False, data=cfg.data, out=str(out / f"eval-{n}-lfw-{shape}")))
            results["shapes"][f"{n}@{shape}"] = r["summary"]
    if cfg.segmenters:
        from unveil.eval.seg import TRIVIAL, SegEvalConfig, run_seg_eval

        results["segmentation"] = {}
        for n in [TRIVIAL] + available("segmenter"):
            try:
                r = run_seg_eval(SegEvalConfig(model=n, data=cfg.data, out=str(out / f"seg-{n}"),
                                               real=24 if n != TRIVIAL else 0))
            except UnveilError as e:  # e.g. no weights shipped for it yet
                results["segmentation"][n] = {"error": str(e)}
                continue
            results["segmentation"][n] = {"ms_per_crop": r["ms_per_crop"], **r["scores"]}
    if cfg.merge and (out / "results.json").exists():
        import json

        old = json.loads((out / "results.json").read_text())
        for part in ("speed", "quality"):
            results[part] = {**{k: v for k, v in old.get(part, {}).items() if k not in names},
                             **results[part]}
        results["shapes"] = {**{k: v for k, v in (old.get("shapes") or {}).items()
                                if k.rsplit("@", 1)[0] not in names}, **results["shapes"]}
        if not cfg.segmenters and old.get("segmentation"):
            results["segmentation"] = old["segmentation"]
        results["merged"] = (f"rows of models not in this run ({', '.join(sorted(set(results['quality']) - set(names)))}) "
                             f"kept from the run of {old.get('date')}")
    md = _markdown(results)
    write_json(out / "results.json", results)
    write_text(out / "results.md", md)
    msg = md + f"\nwrote {out / 'results.json'} and {out / 'results.md'}"
    if cfg.readme and _update_readme(md, REPO_ROOT / "README.md"):
        msg += " and updated README.md"
    return msg
