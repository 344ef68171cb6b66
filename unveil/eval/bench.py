"""``make bench``: speed and quality of every registered model, as JSON, markdown and the tables of
``docs/benchmarks.md``.

Parts (``--only`` runs some, ``--merge`` keeps the others): speed, CPU backends, quality on NVIDIA
bins, face-mask and sunglasses occlusion, arbitrary shapes, the end-to-end pipeline, segmentation.

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

DOC_START, DOC_END = "<!-- bench:start -->", "<!-- bench:end -->"


@dataclass
class BenchConfig:
    out: str = "bench"
    sizes: tuple[int, ...] = (128, 256, 512)
    repeats: int = 7
    limit: int = 200
    quality_size: int = 256
    models: list[str] | None = None
    docs: bool = True  # refresh the tables of docs/benchmarks.md
    data: str | None = None
    identity: bool = True
    segmenters: bool = True
    #: Arbitrary-shape rows: non-square LFW crops (HxW), for the models in ``shape_models``.
    shapes: tuple[str, ...] = ("256x192", "200x320")
    shape_models: tuple[str, ...] = ("in2", "ifacenet", "biharmonic", "telea")
    shape_limit: int = 100
    #: Keep the rows of models (and segmenters) not re-run from the existing results.json.
    merge: bool = False
    #: Which parts to run (default all of PARTS); with ``merge`` the others are kept as they were.
    parts: tuple[str, ...] | None = None
    #: Faces for the rows of the face-fitted holes (:data:`HOLE_PARTS`: face masks, the product's main
    #: use, and sunglasses).
    facemask_limit: int = 200

    def __post_init__(self):
        bad = [p for p in (self.parts or ()) if p not in PARTS]
        if bad:
            raise UnveilError(f"unknown bench part '{bad[0]}'; parts: {', '.join(PARTS)}")

    def runs(self, part: str) -> bool:
        return self.parts is None or part in self.parts


PARTS = ("speed", "backends", "quality", "facemask", "eyes", "shapes", "pipeline", "segmentation", "scale", "video")
#: The parts that score every inpainter on one shape of hole fitted to the aligned face (the mask
#: source of the same name), with the heading of their table.
HOLE_PARTS = {
    "facemask": ("Face-mask occlusion", "the lower-face hole a face mask leaves, fitted to each face's landmarks",
                 "face-mask holes"),
    "eyes": ("Sunglasses", "the hole sunglasses leave over the eyes, `--masks eyes`", "sunglasses holes"),
}


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


def backend_speed(names: list[str] | None = None, size: int = 256, repeats: int = 7) -> dict[str, dict]:
    """ms per ``size`` px face on each CPU backend for the learned models that export to ONNX
    (inpainters: ``inpaint`` with a 30-40 % hole; segmenters: ``segment``), median of ``repeats``
    runs after a warm-up, the two backends taking turns so that a busy machine slows both alike.
    ``default``: the backend ``backend="auto"`` picks. Empty without onnxruntime."""
    from skimage import data

    from unveil.models.onnx_export import exportable
    from unveil.models.onnx_runtime import resolve_backend, runtime_available

    if not runtime_available():
        return {}
    face = resize(data.astronaut()[20:240, 130:350], size)
    mask = freeform_mask(size, 0, "medium", bin="30-40")
    out = {}
    for n in [m for m in exportable() if names is None or m in names]:
        runs = {}
        for b in ("torch", "onnx"):
            try:
                model = load(n, backend=b)
            except UnveilError as e:  # e.g. no weights shipped for it yet
                out[n] = {"error": str(e)}
                break
            runs[b] = ((lambda m=model: m.inpaint(face, mask)) if info(n).kind == "inpainter"
                       else (lambda m=model: m.segment(face)))
            runs[b]()  # warm-up
        if n in out:
            continue
        times: dict[str, list[float]] = {b: [] for b in runs}
        for _ in range(repeats):
            for b, run in runs.items():
                t0 = time.perf_counter()
                run()
                times[b].append((time.perf_counter() - t0) * 1000)
        ms = {b: statistics.median(t) for b, t in times.items()}
        out[n] = {**ms, "speedup": ms["torch"] / ms["onnx"], "default": resolve_backend("auto", n, "cpu")}
    return out


def pipeline_photos() -> dict[str, np.ndarray]:
    """The demo photo (astronaut wearing a drawn face mask) at 1024 px, and inside a 6000x4000 frame."""
    import cv2

    from unveil.occlusion import demo_photo

    _, masked, _, _ = demo_photo()
    big = cv2.resize(masked, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    huge = cv2.copyMakeBorder(cv2.resize(masked, (4000, 4000), interpolation=cv2.INTER_CUBIC),
                              0, 0, 1000, 1000, cv2.BORDER_REFLECT101)
    return {"1024x1024": big, "6000x4000": huge}


def pipeline_speed(models: list[str], repeats: int = 7) -> dict[str, dict]:
    """End-to-end seconds per photo of ``unveil remove``'s pipeline (detect, align, SOCLNET,
    inpaint, paste back) on a 1-face photo at 1024 px and 6000x4000, median of ``repeats`` runs
    after a warm-up; the photo is in memory (decoding and encoding the file not counted)."""
    from unveil.face import get_detector
    from unveil.pipeline import Restorer

    photos = pipeline_photos()
    out = {}
    det = get_detector()
    for size, img in photos.items():
        det.detect(img)
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            det.detect(img)
            t.append(time.perf_counter() - t0)
        out.setdefault("detection only", {})[size] = statistics.median(t) * 1000
    for n in models:
        r = Restorer(segmenter="soclnet", inpainter=n)
        for size, img in photos.items():
            r.restore(img)  # warm-up (and ONNX export on first use)
            t = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                r.restore(img)
                t.append(time.perf_counter() - t0)
            out.setdefault(n, {})[size] = statistics.median(t) * 1000
    return out


def scale_speed(n: int = 96, data=None) -> dict:
    """Throughput of ``unveil remove`` (auto inpainter) on ``n`` real masked photos (files decoded
    and written): the local engine (one process, torch's threads) against the Ray engine (one
    single-thread actor per core, a local Ray). Per engine: the wall time from the call (Ray's
    start and the actors loading their models included), the time to the first photo done (the
    start-up), the rate after it, and the mean compute seconds per photo (from the manifest)."""
    import json
    import shutil
    import tempfile

    from unveil.batch import MANIFEST, collect_photos, run_batch
    from unveil.data.faces import real_photos
    from unveil.pipeline import Restorer

    photos = real_photos(data)[:n]
    tmp = Path(tempfile.mkdtemp(prefix="unveil-bench-scale-"))
    cores = os.cpu_count() or 1
    out = {"photos": len(photos), "cores": cores}

    def timed(run, folder: Path) -> dict:
        stamps = []
        t0 = time.perf_counter()
        done = run(lambda _: stamps.append(time.perf_counter()), folder).done
        wall = time.perf_counter() - t0
        first = stamps[0] - t0 if stamps else wall
        lines = [json.loads(ln) for ln in (folder / MANIFEST).read_text().splitlines()]
        per = float(np.mean([e["seconds"] for e in lines if e["status"] == "done"]))
        after = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 2 else None
        return {"done": done, "wall_s": round(wall, 2), "first_s": round(first, 2), "photos_per_s_wall": done / wall,
                "photos_per_s_after_start": after, "seconds_per_photo": per}

    try:
        items = collect_photos(photos)
        r = Restorer()
        run_batch(r, items[:2], tmp / "warm", progress=False, say=lambda _: None)
        out["local"] = {"threads": __import__("torch").get_num_threads(),
                        **timed(lambda say, d: run_batch(r, items, d, progress=False, say=say), tmp / "local")}
        try:
            import ray
        except ImportError:
            out["ray"] = {"error": "ray is not installed (pip install 'unveil[scale]')"}
            return out
        from unveil.scale import RayOptions, run_ray

        spec = {"segmenter": "soclnet", "inpainter": None, "device": "cpu", "options": {}}
        out["ray"] = {"workers": cores, "threads": 1,
                      **timed(lambda say, d: run_ray(spec, items, d, RayOptions(workers=cores), progress=False,
                                                     say=say), tmp / "ray")}
        ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def video_speed(frames: int = 30) -> dict:
    """Frames per second of the steady video path (decode, restore, encode H.264) on clips made
    here (:func:`unveil.video.clips.make_clip`: the demo photo, a still camera, sensor noise) at
    480p (854x480) and 720p (1280x720)."""
    import shutil
    import tempfile

    try:
        import av  # noqa: F401
    except ImportError:
        return {"error": "PyAV is not installed (pip install av==18.1.0)"}
    from unveil.pipeline import Restorer
    from unveil.video import remove_video
    from unveil.video.clips import make_clip

    tmp = Path(tempfile.mkdtemp(prefix="unveil-bench-video-"))
    out, r = {}, Restorer()
    try:
        for name, (h, w) in {"480p": (480, 854), "720p": (720, 1280)}.items():
            make_clip(tmp / f"{name}.mp4", frames=frames, size=h, width=w)
            rep = remove_video(tmp / f"{name}.mp4", tmp / f"{name}_out.mp4", restorer=r, progress=False)
            out[name] = {"frames": rep.frames, "seconds": round(rep.seconds, 2), "fps": rep.frames_per_second}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _markdown(results: dict) -> str:
    sizes = results["config"]["sizes"]
    lines = [f"Measured {results['date']} on {results['machine']} with `{results['command']}`"
             + (f"; {results['merged']}" if results.get("merged") else "") + ".", "",
             "**Speed** (ms per image, default backend, median of %d runs, 30-40 %% hole):" % results["config"]["repeats"],
             "", "| model | " + " | ".join(f"{s} px" for s in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for m, sp in results["speed"].items():
        lines.append(f"| {m} | " + " | ".join(f"{sp[str(s)]:.1f}" for s in sizes) + " |")
    be = {k: v for k, v in (results.get("backends") or {}).items() if "error" not in v}
    if be:
        lines += ["", "**CPU backends** (ms per %d px face, batch 1, median of %d runs; *default*: what "
                  "`backend=\"auto\"` picks):" % (results["config"].get("backend_size", 256),
                                                   results["config"]["repeats"]), "",
                  "| model | torch | ONNX Runtime | speed-up | default |", "|---|---|---|---|---|"]
        for m, r in be.items():
            lines.append(f"| {m} | {r['torch']:.1f} | {r['onnx']:.1f} | {r['speedup']:.2f}x | {r['default']} |")
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
        lines += _realism_table("NVIDIA holes, mean over the 10-60 % bins",
                                {m: {**r[MID_LABEL], "fd_alexnet_hole": r.get("fd_alexnet_hole")} for m, r in q.items()})
    for part, (title, what, holes) in HOLE_PARTS.items():
        fm = results.get(part) or {}
        if not fm:
            continue
        n = next(iter(fm.values()))["n"]
        f = lambda v, p: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
        lines += ["", f"**{title}** ({what}): UTKFace test ({n} faces), 256 px:", "",
                  "| model | PSNR | SSIM | PSNR hole | SSIM hole | LPIPS | ID dist | gender agree | ms/face |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for m, s_ in fm.items():
            lines.append(f"| {m} | {f(s_['psnr'], 2)} | {f(s_['ssim'], 4)} | {f(s_['psnr_hole'], 2)} | "
                         f"{f(s_['ssim_hole'], 4)} | {f(s_['lpips'], 4)} | {f(s_.get('identity'), 3)} | "
                         f"{f(s_.get('gender'), 3)} | {f(s_.get('ms'), 0)} |")
        lines += _realism_table(holes, fm)
    pp = results.get("pipeline") or {}
    if pp:
        sizes_ = list(next(iter(pp.values())))
        lines += ["", "**End to end** (`unveil remove`'s pipeline on a 1-face photo in memory: detect, align, "
                  "SOCLNET, inpaint, paste back; ms per photo, median of %d runs):" % results["config"]["repeats"],
                  "", "| inpainter | " + " | ".join(sizes_) + " |", "|---|" + "---|" * len(sizes_)]
        for m, r in pp.items():
            lines.append(f"| {m} | " + " | ".join(f"{r[k]:.0f}" for k in sizes_) + " |")
    sc = results.get("scale") or {}
    if sc.get("local"):
        lines += ["", f"**Batch throughput** (`unveil remove` with the auto inpainter on {sc['photos']} real masked "
                  f"photos, files read and written, {sc['cores']} cores; *start-up*: until the first photo is done; "
                  "*compute*: mean seconds inside one photo's job, from the manifest):", "",
                  "| engine | processes x threads | wall s | start-up s | photos/s (wall) | photos/s after start-up "
                  "| compute s/photo | photos/s per core (compute) |", "|---|---|---|---|---|---|---|---|"]
        for name, r in (("local", sc["local"]), ("ray (local Ray)", sc.get("ray") or {})):
            if "seconds_per_photo" not in r:
                continue
            procs, th = r.get("workers", 1), r["threads"]
            after = r.get("photos_per_s_after_start")
            lines.append(f"| {name} | {procs} x {th} | {r['wall_s']:.1f} | {r['first_s']:.1f} | "
                         f"{r['photos_per_s_wall']:.2f} | {'–' if after is None else f'{after:.2f}'} | "
                         f"{r['seconds_per_photo']:.3f} | {1 / (r['seconds_per_photo'] * th):.2f} |")
        lines += ["", "Planning 10 million photos on a cluster: `docs/scale.md`."]
    vd = {k: v for k, v in (results.get("video") or {}).items() if isinstance(v, dict)}
    if vd:
        lines += ["", "**Video** (`unveil remove clip.mp4`, the steady path: decode, follow the face, restore, encode "
                  "H.264; a clip made here with one masked face, still camera):", "",
                  "| clip | frames | frames/s |", "|---|---|---|"]
        for k, r in vd.items():
            lines.append(f"| {k} | {r['frames']} | {r['fps']:.2f} |")
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
        kinds = [k for k in next(iter(seg.values())) if k not in ("ms_per_crop", "all", "clean")]
        lines += ["", "**Occluder segmentation** on the synthetic test set (600 UTKFace test faces, "
                  "every occluder kind, 256 px crops; pooled over pixels):", "",
                  "| segmenter | pixel acc. | IoU | F1 | ms/crop | " + " | ".join(f"IoU {k}" for k in kinds)
                  + " | clean faces flagged* |",
                  "|---|---|---|---|---|" + "---|" * len(kinds) + "---|"]
        for m, r in seg.items():
            a = r["all"]
            flagged = f"{r['clean']['flagged'] * 100:.1f} %" if r.get("clean") else "–"
            lines.append(f"| {m} | {a['pa']:.4f} | {a['iou']:.4f} | {a['f1']:.4f} | "
                         f"{r['ms_per_crop']:.1f} | " + " | ".join(f"{r[k]['iou']:.3f}" for k in kinds)
                         + f" | {flagged} |")
        lines += ["", "\\* share of 200 clean UTKFace test faces (no occluder) that the pipeline would touch "
                  "(its own decision: at least 2 % of the face at probability 0.7 or more)."]
    return "\n".join(lines) + "\n"


def _realism_table(what: str, rows: dict[str, dict]) -> list[str]:
    """Markdown lines of the realism columns (rows measured before they existed show dashes)."""
    if not any(r.get("detail") is not None for r in rows.values()):
        return []
    f = lambda v, p: "–" if v is None else f"{v:.{p}f}"  # noqa: E731
    lines = ["", f"**Realism** on the {what}: *detail* is the variance of the Laplacian inside the hole, "
             "output over truth (1 = the truth's texture, 0 = a flat patch; streaks and blotches raise it too, "
             "so read it beside the other columns); *LPIPS-VGG box* on the hole's "
             "bounding box; *face found*: share of outputs where dlib's detector finds a face; *FD hole*: "
             "AlexNet Frechet distance on the hole's boxes (96 px; not Inception FID):", "",
             "| model | detail | LPIPS-VGG box | face found | FD hole |", "|---|---|---|---|---|"]
    for m, s in rows.items():
        lines.append(f"| {m} | {f(s.get('detail'), 3)} | {f(s.get('lpips_vgg_box'), 4)} | "
                     f"{f(s.get('face_found'), 3)} | {f(s.get('fd_alexnet_hole'), 2)} |")
    return lines


def _update_doc(md: str, doc: Path) -> bool:
    if not doc.exists():
        return False
    text = doc.read_text()
    pat = re.compile(re.escape(DOC_START) + ".*?" + re.escape(DOC_END), re.S)
    if not pat.search(text):
        return False
    write_text(doc, pat.sub(lambda _: f"{DOC_START}\n{md}{DOC_END}", text))
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
                   "shapes": list(cfg.shapes), "shape_limit": cfg.shape_limit,
                   "backend_size": 256},
        "speed": {}, "quality": {},
    }
    if cfg.runs("speed"):
        for n in names:
            results["speed"][n] = {str(s): v for s, v in speed(n, cfg.sizes, cfg.repeats).items()}
    # torch against ONNX Runtime for the learned models that export (empty without onnxruntime)
    timed = names + (available("segmenter") if cfg.segmenters else [])
    if cfg.runs("backends"):
        results["backends"] = backend_speed(timed, 256, cfg.repeats)
    if cfg.runs("quality"):
        for n in names:
            r = run_eval(EvalConfig(model=n, masks="nvidia", size=cfg.quality_size, limit=cfg.limit,
                                    identity=cfg.identity, data=cfg.data, out=str(out / f"eval-{n}")))
            results["quality"][n] = {**r["summary"], "fd_alexnet": r["fd_alexnet"],
                                     "fd_alexnet_hole": r["fd_alexnet_hole"]}
    for part in HOLE_PARTS:
        if not cfg.runs(part):
            continue
        results[part] = {}
        for n in names:
            r = run_eval(EvalConfig(model=n, masks=part, size=cfg.quality_size, limit=cfg.facemask_limit,
                                    identity=cfg.identity, gender=True, data=cfg.data,
                                    out=str(out / f"eval-{n}-{part}")))
            results[part][n] = {**r["summary"]["all"], "fd_alexnet_hole": r["fd_alexnet_hole"]}
    if cfg.runs("shapes"):
        results["shapes"] = {}
        for shape in cfg.shapes:
            for n in [m for m in cfg.shape_models if m in names]:
                r = run_eval(EvalConfig(model=n, faces="lfw", masks="nvidia", shape=shape, limit=cfg.shape_limit,
                                        identity=False, data=cfg.data, out=str(out / f"eval-{n}-lfw-{shape}")))
                results["shapes"][f"{n}@{shape}"] = r["summary"]
    if cfg.runs("pipeline"):
        results["pipeline"] = pipeline_speed([n for n in names if n in ("ifacenet", "biharmonic", "telea")]
                                             or names[:1], cfg.repeats)
    if cfg.segmenters and cfg.runs("segmentation"):
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
    if cfg.runs("video"):
        results["video"] = video_speed()
    if cfg.runs("scale"):
        try:
            results["scale"] = scale_speed(data=cfg.data)
        except UnveilError as e:  # no real photos here
            results["scale"] = {"error": str(e)}
    if cfg.merge and (out / "results.json").exists():
        import json

        old = json.loads((out / "results.json").read_text())
        for part, keys in (("speed", names), ("quality", names), *((p, names) for p in HOLE_PARTS), ("backends", timed),
                           ("pipeline", None), ("scale", None), ("video", None)):
            mine = results.get(part) or {}
            if not cfg.runs(part) or keys is None and not mine:
                results[part] = old.get(part) or {}
            elif keys is not None:
                results[part] = {**{k: v for k, v in (old.get(part) or {}).items() if k not in keys}, **mine}
        if cfg.runs("shapes"):
            results["shapes"] = {**{k: v for k, v in (old.get("shapes") or {}).items()
                                    if k.rsplit("@", 1)[0] not in names}, **results["shapes"]}
        else:
            results["shapes"] = old.get("shapes") or {}
        if not (cfg.segmenters and cfg.runs("segmentation")) and old.get("segmentation"):
            results["segmentation"] = old["segmentation"]
        # rows kept by an earlier merge keep their own date: a merge of a merge names every run
        kept = sorted(d for d in {*(old.get("kept_from") or []), old.get("date")} if d)
        results["kept_from"] = kept
        results["merged"] = f"other rows kept from the run{'s' if len(kept) > 1 else ''} of {', '.join(kept)}"
    md = _markdown(results)
    write_json(out / "results.json", results)
    write_text(out / "results.md", md)
    msg = md + f"\nwrote {out / 'results.json'} and {out / 'results.md'}"
    if cfg.docs and _update_doc(md, REPO_ROOT / "docs" / "benchmarks.md"):
        msg += " and updated docs/benchmarks.md"
    return msg
