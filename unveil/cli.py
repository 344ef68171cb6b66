"""The ``unveil`` command line. Every command has ``--help``; bad input exits 2 with a message."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from unveil.errors import UnveilError

app = typer.Typer(
    name="unveil",
    help="Find what hides a face and restore the face beneath.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from unveil.version import __version__

        typer.echo(f"unveil {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Find what hides a face and restore the face beneath."""

#: `unveil inpaint` works on the whole image it is given; beyond this, crop the face first.
MAX_INPAINT_SIDE = 4096

DataOpt = typer.Option(None, "--data", help="Data root (default: $UNVEIL_DATA, else ../shared/data).")


def set_threads(threads: int | None) -> int:
    """torch's and ONNX Runtime's CPU threads: ``threads``, or half the cores (at least 1)."""
    import os

    if threads is not None and threads < 1:
        raise UnveilError(f"--threads must be at least 1, got {threads}")
    n = threads or max(1, (os.cpu_count() or 2) // 2)
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    import torch

    torch.set_num_threads(n)
    return n


@app.command("models")
def models_cmd() -> None:
    """List the registered models: kind, size, and the measured numbers from `make bench`."""
    from unveil.models.catalog import catalog

    for line in catalog():
        typer.echo(line)


@app.command("remove")
def remove_cmd(
    photos: list[str] = typer.Argument(..., help="Photos, folders of photos (searched recursively), text files "
                                       "listing photos (.txt, one a line), or URIs pyarrow reads (s3://...)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output folder (folder structure is kept; "
                                 "OUT/manifest.jsonl records every photo)."),
    model: Optional[str] = typer.Option(None, "--model", help="Inpainter (default: auto, the best measured for "
                                        "each face's kind of hole: lgface for the lower face and the eyes, else ifacenet)."),
    segmenter: str = typer.Option("soclnet", "--segmenter", help="Occluder segmenter."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Fill this mask (white = hole) instead of "
                                        "segmenting; or a folder of masks named like the photos (a batch)."),
    faces: str = typer.Option("all", "--faces", help="all, largest, or indices like 0,2 (largest first)."),
    dilate: int = typer.Option(6, "--dilate", help="Grow the automatic mask by this many crop pixels."),
    threshold: float = typer.Option(0.5, "--threshold", help="Occluder probability threshold."),
    wide: bool = typer.Option(True, "--wide/--no-wide", help="Also look for the occluder on a wide crop "
                              "(chin, neck, ears) and fill what lies beyond the face crop."),
    complete: bool = typer.Option(True, "--complete/--no-complete", help="Complete a lower-face occluder "
                                  "found in part (a printed mask) by its colours (GrabCut)."),
    loops: bool = typer.Option(True, "--loops/--no-loops", help="Follow ear loops and straps out of the "
                               "occluder found on the wide crop (thin lines, and loops found apart "
                               "from it), on past that crop's edge too, and fill them."),
    save_masks: bool = typer.Option(False, "--save-masks", help="Also write NAME.mask.png (filled pixels)."),
    report: bool = typer.Option(False, "--report", help="Also write NAME.json (per-face report)."),
    identity: bool = typer.Option(False, "--identity", help="Identity distance input vs output per face "
                                  "(dlib, ~0.4 s a face)."),
    suffix: Optional[str] = typer.Option(None, "--format", help="Output format: png, jpg, webp "
                                         "(default: the input's)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for the models (default: half "
                                          "the cores, at least 1, so a busy machine is not oversubscribed; "
                                          "with --engine ray: per worker, default 1)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs that already exist (inputs are "
                                   "never written over)."),
    resume: bool = typer.Option(False, "--resume", help="Skip the photos OUT/manifest.jsonl has done (a run "
                                "stopped half-way goes on; nothing done is rewritten)."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray (Ray Data actors, one "
                               "Restorer each; pip install 'unveil[scale]')."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Join this Ray cluster (auto, "
                                              "ray://HOST:10001, HOST:6379); default: start a local Ray "
                                              "sized to this machine."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Ray actors (default: the cluster's CPUs "
                                          "over --threads)."),
    video: bool = typer.Option(False, "--video", help="Treat folders as image sequences (one clip each, "
                               "restored steadily) instead of folders of photos. Clips (.mp4 .mov .mkv .webm) "
                               "are always clips."),
    steady: bool = typer.Option(True, "--steady/--per-frame", help="Clips: follow faces and smooth masks and fills "
                                "in time (default), or restore every frame on its own."),
) -> None:
    """Find what hides each face of PHOTOS (or clips) and restore the face beneath (batch, with a progress bar)."""
    from unveil.batch import check_format, collect_photos, run_batch

    if threads is not None and threads < 1:
        raise UnveilError(f"--threads must be at least 1, got {threads}")
    clips = [p for p in photos if _is_clip(p, video)]
    if clips:
        if mask is not None or engine != "local":
            raise UnveilError("clips take neither --mask nor --engine ray (yet)")
        _remove_clips(clips, out_dir, model, segmenter, faces, dilate, threshold, (wide, complete, loops), device,
                      threads, overwrite, steady, single=len(photos) == 1)
        photos = [p for p in photos if p not in clips]
        if not photos:
            return
    if engine not in ("local", "ray"):
        raise UnveilError(f"--engine must be local or ray, got '{engine}'")
    if engine == "local" and (ray_address or workers is not None):
        raise UnveilError("--ray-address and --workers need --engine ray")
    items = collect_photos(photos)
    if mask is not None and not mask.is_dir() and len(items) != 1:
        raise UnveilError(f"--mask FILE applies to one photo, but {len(items)} were given (give a folder of "
                          f"masks named like the photos)")
    if mask is not None and not mask.exists():
        raise UnveilError(f"{mask}: no such mask file or folder")
    check_format(suffix)
    from unveil.pipeline import AUTO, Restorer, RestoreOptions

    opts = RestoreOptions(faces=faces, dilate=dilate, threshold=threshold, wide=wide, complete=complete,
                          loops=loops, identity=identity)
    seg = None if mask is not None else segmenter
    if engine == "ray":
        from unveil import models
        from unveil.models.tensors import torch_device
        from unveil.scale import RayOptions, run_ray

        if model not in (None, AUTO):
            models.require(model, "inpainter")
        if seg is not None:
            models.require(seg, "segmenter")
        torch_device(device)
        spec = {"segmenter": seg, "inpainter": model, "device": device, "options": opts}
        r = run_ray(spec, items, out_dir, RayOptions(ray_address, workers, threads or 1, device), suffix, mask,
                    save_masks, report, overwrite=overwrite, resume=resume)
        name = model or AUTO
    else:
        set_threads(threads)
        restorer = Restorer(segmenter=seg, inpainter=model, device=device, options=opts)
        r = run_batch(restorer, items, out_dir, suffix, mask, save_masks, report, overwrite=overwrite, resume=resume)
        name = restorer.model_name
    if r.failed:
        if r.done == 0 and len(items) == 1:
            raise UnveilError(r.failed[0])
        raise UnveilError(f"{len(r.failed)} of {len(items)} photos failed (see above); {r.done} written to "
                          f"{out_dir}" + (f" ({r.resumed} already done)" if r.resumed else ""))
    done = f"{r.done} photo(s) restored with {name} into {out_dir}"
    typer.echo(done + (f" ({r.resumed} already done, left as they were)" if r.resumed else ""))


def _is_clip(p: str, folders: bool) -> bool:
    from unveil.batch import is_uri
    from unveil.video.io import VIDEO_SUFFIXES

    if is_uri(p):
        return False
    return Path(p).suffix.lower() in VIDEO_SUFFIXES or (folders and Path(p).is_dir())


def _remove_clips(clips, out_dir: Path, model, segmenter, faces, dilate, threshold, looks, device, threads,
                  overwrite, steady, single: bool) -> None:
    """``unveil remove clip.mp4 -o out.mp4`` (or ``-o FOLDER``): each clip through the video path.
    ``looks``: (wide, complete, loops), the pipeline's wide crop, colour completion and loop tracing."""
    from unveil.pipeline import Restorer, RestoreOptions
    from unveil.video import remove_video
    from unveil.video.io import VIDEO_SUFFIXES

    set_threads(threads)
    restorer = Restorer(segmenter=segmenter, inpainter=model, device=device,
                        options=RestoreOptions(faces=faces, dilate=dilate, threshold=threshold, wide=looks[0],
                                               complete=looks[1], loops=looks[2]))
    to_file = out_dir.suffix.lower() in VIDEO_SUFFIXES
    if to_file and not single:
        raise UnveilError(f"-o {out_dir} names one clip, but several inputs were given: give a folder")
    for c in clips:
        src = Path(c)
        dst = out_dir if to_file else out_dir / src.name
        rep = remove_video(src, dst, restorer=restorer, steady=steady, overwrite=overwrite)
        typer.echo(f"{src} -> {dst}: {rep.frames} frames ({rep.restored} restored, {rep.no_face} without a face), "
                   f"{rep.frames_per_second:.2f} frames/s")


@app.command("compare")
def compare_cmd(
    photo: Path = typer.Argument(..., help="A photo with an occluded face."),
    output: Path = typer.Option(..., "--output", "-o", help="The comparison grid (.png, .jpg)."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated inpainters (default all)."),
    segmenter: str = typer.Option("soclnet", "--segmenter", help="Occluder segmenter."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Use this mask instead of the segmenter."),
    faces: str = typer.Option("all", "--faces", help="all, largest, or indices like 0,2."),
    size: int = typer.Option(256, "--size", help="Side of each cell (the aligned face crop)."),
) -> None:
    """One grid: input, the mask, and every inpainter's result, one row per face."""
    from unveil.pipeline import compare

    for line in compare(photo, output, models=[m.strip() for m in models.split(",")] if models else None,
                        segmenter=segmenter, mask=mask, faces=faces, size=size):
        typer.echo(line)


@app.command("inpaint")
def inpaint_cmd(
    image: Path = typer.Argument(..., help="Face image (aligned crop, any size)."),
    mask: Path = typer.Option(..., "--mask", "-m", help="Mask image of the same size, white = hole."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (.png, .jpg, .webp)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name (default: the best registered)."),
) -> None:
    """Fill the white part of MASK in IMAGE with a registered model."""
    from unveil import models
    from unveil.io import read_image, read_mask, write_image

    img = read_image(image)
    if max(img.shape[:2]) > MAX_INPAINT_SIDE:
        raise UnveilError(
            f"{image}: {img.shape[1]}x{img.shape[0]} is too large to inpaint directly (limit "
            f"{MAX_INPAINT_SIDE} px a side); crop the face region first")
    m = read_mask(mask, img.shape[:2])
    if not m.any():
        raise UnveilError(f"{mask}: the mask is empty (no white pixel), nothing to inpaint")
    name = model or models.best()
    out = models.load(name).inpaint(img, m)
    write_image(output, out, protect=(image, mask))
    typer.echo(f"{name}: wrote {output}")


@app.command("detect")
def detect_cmd(
    photo: Path = typer.Argument(..., help="A photo (any size; EXIF orientation is applied)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write an overlay (boxes, key points, mesh) here."),
    as_json: bool = typer.Option(False, "--json", help="Print the faces as JSON."),
    mesh: bool = typer.Option(False, "--mesh", help="Include the 478-point mesh in the JSON."),
) -> None:
    """Find every face: box, score, 5 key points and the dense mesh."""
    import json

    from unveil.face import get_detector
    from unveil.face.overlay import draw_faces
    from unveil.io import read_image_info, write_image

    img, info = read_image_info(photo)
    faces = get_detector().detect(img)
    if not faces:
        raise UnveilError(f"{photo}: no face found")
    if output:
        write_image(output, draw_faces(img, faces), protect=(photo,), icc_profile=info["icc_profile"])
    if as_json:
        typer.echo(json.dumps({"image": str(photo), "width": img.shape[1], "height": img.shape[0],
                               "faces": [f.to_dict(mesh=mesh) for f in faces]}, indent=2))
    else:
        for i, f in enumerate(faces):
            x0, y0, x1, y1 = f.box
            typer.echo(f"face {i}: box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}) score {f.score:.2f}")
        if output:
            typer.echo(f"wrote {output}")


@app.command("eval")
def eval_cmd(
    model: str = typer.Option("telea", "--model", help="Registered model name."),
    faces: str = typer.Option("utkface", "--faces", help="utkface, lfw, or a folder of aligned faces."),
    split: str = typer.Option("test", "--split", help="UTKFace split: train, val, test."),
    masks: str = typer.Option("nvidia", "--masks",
                              help="nvidia[:BIN], freeform[:thin|medium|thick], facemask, eyes, or a folder."),
    size: int = typer.Option(256, "--size", help="Working size in pixels (square crops)."),
    shape: Optional[str] = typer.Option(None, "--shape",
                                        help="HxW for non-square crops, e.g. 256x192 (overrides --size)."),
    limit: Optional[int] = typer.Option(200, "--limit", help="At most this many faces (0 = all)."),
    lpips: bool = typer.Option(True, "--lpips/--no-lpips", help="LPIPS (AlexNet) and FD-AlexNet."),
    identity: bool = typer.Option(True, "--identity/--no-identity", help="dlib identity distance."),
    gender: bool = typer.Option(False, "--gender", help="Gender consistency (classifier on output vs truth)."),
    realism: bool = typer.Option(True, "--realism/--no-realism", help="Detail ratio, LPIPS-VGG on the hole's "
                                 "box, dlib face found, FD on hole boxes."),
    grid: int = typer.Option(8, "--grid", help="Rows in grid.png (input, mask, output, truth)."),
    seed: int = typer.Option(0, "--seed", help="Seed of procedural masks."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weight file of a learned model (default: "
                                           "the shipped one), e.g. a training run's NAME.safetensors."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default runs/eval/NAME)."),
    data: Optional[Path] = DataOpt,
) -> None:
    """Score a model: PSNR, SSIM, L1 (whole and hole), LPIPS, identity, realism, per hole-ratio bin."""
    from unveil.eval.harness import EvalConfig, run_eval

    cfg = EvalConfig(model=model, faces=faces, split=split, masks=masks, size=size, shape=shape,
                     limit=limit or None, seed=seed, lpips=lpips, identity=identity, gender=gender,
                     realism=realism, grid=grid, model_kwargs={"weights": str(weights)} if weights else {},
                     data=str(data) if data else None, out=str(out) if out else None)
    r = run_eval(cfg)
    typer.echo(r["table"])
    typer.echo(f"wrote {r['out_dir']}/metrics.json, table.md, grid.png")


@app.command("eval-seg")
def eval_seg_cmd(
    model: str = typer.Option("soclnet", "--model", help="Segmenter name, or all-background."),
    n: int = typer.Option(600, "--n", help="Synthetic test samples (every occluder kind)."),
    size: int = typer.Option(256, "--size", help="Crop side in pixels."),
    threshold: float = typer.Option(0.5, "--threshold", help="Occluder when probability >= this."),
    real: int = typer.Option(24, "--real", help="Real masked photos in sheet_real.png (0: none)."),
    clean: int = typer.Option(200, "--clean", help="Clean test faces for the false-alarm row (0: none)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Segmenter weight file (default: the shipped one)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default runs/eval-seg/NAME)."),
    data: Optional[Path] = DataOpt,
) -> None:
    """Score an occluder segmenter: pixel accuracy, IoU, F1 per occluder kind; real-photo sheet."""
    from unveil.eval.seg import SegEvalConfig, run_seg_eval

    r = run_seg_eval(SegEvalConfig(model=model, n=n, size=size, threshold=threshold, real=real, clean=clean,
                                   weights=str(weights) if weights else None,
                                   data=str(data) if data else None, out=str(out) if out else None))
    typer.echo(r["table"])
    typer.echo(f"wrote {r['out_dir']}/seg_metrics.json, table.md, sheet_synthetic.png, sheet_real.png")


@app.command("eval-video")
def eval_video_cmd(
    frames: int = typer.Option(75, "--frames", help="Frames per clip (25 fps)."),
    out: Path = typer.Option(Path("runs/eval-video"), "--out", "-o", help="Output folder."),
) -> None:
    """The video path on clips made here (still and moving face, noise, a tone): occluder left, flicker, audio."""
    from unveil.eval.video import run_video_eval

    r = run_video_eval(out, frames)
    typer.echo(r["table"])
    typer.echo(f"wrote {r['out_dir']}/video.json, table.md, moving_sheet.png and the clips")


@app.command("eval-coverage")
def eval_coverage_cmd(
    model: str = typer.Option("auto", "--model", help="Inpainter (auto: the pipeline's choice per kind of hole)."),
    segmenter: str = typer.Option("soclnet", "--segmenter", help="Occluder segmenter."),
    faces: str = typer.Option("lfw", "--faces", help="lfw (whole photos: chin, neck, ears in view) or utkface "
                                                    "(aligned test crops)."),
    n: int = typer.Option(100, "--n", help="Photos given a drawn face mask with ear loops."),
    clean: int = typer.Option(100, "--clean", help="Clean photos: how often a bare face is touched (0: none)."),
    far: int = typer.Option(25, "--far", help="Changed pixels farther than this (px) from the occluder count as far."),
    seed: int = typer.Option(0, "--seed", help="Draw of photos and masks (0: the table's; 1: the harder second draw)."),
    real: bool = typer.Option(True, "--real/--no-real", help="Contact sheets of the held-out real masked photos."),
    wide: bool = typer.Option(True, "--wide/--no-wide", help="The pipeline's wide crop (see `remove --help`)."),
    complete: bool = typer.Option(True, "--complete/--no-complete", help="The colour completion of a mask "
                                  "found in part (see `remove --help`)."),
    loops: bool = typer.Option(True, "--loops/--no-loops", help="Follow ear loops and straps out of the "
                               "wide crop's hole (see `remove --help`)."),
    beyond: str = typer.Option("", "--beyond", help="Inpainter of what lies beyond the face crop (default: "
                               "the pipeline's)."),
    weights: Optional[Path] = typer.Option(None, "--seg-weights", help="Segmenter weight file (default: shipped)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default runs/eval-coverage/...)."),
    data: Optional[Path] = DataOpt,
) -> None:
    """How much of an occluder survives `unveil remove`: mask body and ear loops left, spill, clean faces."""
    from unveil.eval.coverage import CoverageConfig, run_coverage

    r = run_coverage(CoverageConfig(model=model, segmenter=segmenter, faces=faces, n=n, clean=clean, far=far,
                                    seed=seed, real=real, wide=wide, complete=complete, loops=loops, beyond=beyond,
                                    seg_weights=str(weights) if weights else None,
                                    data=str(data) if data else None, out=str(out) if out else None))
    typer.echo(r["table"])
    typer.echo(f"wrote {r['out_dir']}/coverage.json, table.md, sheet.png" +
               (", real_before.png, real_after.png" if real else ""))


@app.command("eval-verify")
def eval_verify_cmd(
    model: str = typer.Option("telea", "--model", help="Registered model name."),
    masks: str = typer.Option("facemask", "--masks", help="Hole on the probe face (see `eval --help`)."),
    size: int = typer.Option(256, "--size", help="Working size in pixels."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Pairs file (default faces/lfw/pairs.txt)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Pairs per fold (half matched, half not)."),
    threshold: float = typer.Option(0.6, "--threshold", help="Same person when distance < this."),
    frame: str = typer.Option("photo", "--frame", help="photo: hole drawn on the aligned face, probe "
                              "restored by the photo pipeline (what `remove --mask` does); crop: "
                              "hole and model on the unaligned LFW crop (the older protocol)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default runs/verify/NAME)."),
    data: Optional[Path] = DataOpt,
) -> None:
    """LFW verification accuracy for original, masked and restored probe faces."""
    from unveil.eval.verify import VerifyConfig, run_verify

    r = run_verify(VerifyConfig(model=model, masks=masks, size=size,
                                pairs=str(pairs) if pairs else None, limit=limit,
                                threshold=threshold, frame=frame, data=str(data) if data else None,
                                out=str(out) if out else None))
    typer.echo(r["table"])
    typer.echo(f"wrote {r['out_dir']}/verify.json, table.md, grid.png")


@app.command("masks")
def masks_cmd(
    source: str = typer.Option("freeform", "--source",
                               help="nvidia[:BIN], freeform[:thin|medium|thick], facemask, eyes, or a folder."),
    n: int = typer.Option(12, "--n", help="How many masks."),
    size: int = typer.Option(256, "--size", help="Mask side in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed (procedural sources)."),
    out: Path = typer.Option(Path("runs/masks"), "--out", "-o", help="Output folder."),
    data: Optional[Path] = DataOpt,
) -> None:
    """Write masks from a mask source (PNG, white = hole) with a manifest and a contact sheet."""
    import numpy as np

    from unveil.viz import image_grid
    from unveil.io import write_image, write_json
    from unveil.masks import hole_ratio, mask_source

    if n < 1:
        raise UnveilError("--n must be at least 1")
    src = mask_source(source, str(data) if data else None, seed)
    rows, manifest = [], []
    for i in range(n):
        m, b = src(i, size)
        write_image(out / f"{i:05d}.png", m)
        manifest.append({"file": f"{i:05d}.png", "bin": b, "hole_ratio": hole_ratio(m)})
        rows.append(m)
    per_row = 6
    sheet = [rows[i:i + per_row] for i in range(0, n, per_row)]
    if len(sheet[-1]) < per_row:
        sheet[-1] = sheet[-1] + [np.zeros_like(rows[0])] * (per_row - len(sheet[-1]))
    write_image(out / "sheet.png", image_grid(sheet))
    write_json(out / "manifest.json", {"source": source, "size": size, "seed": seed, "masks": manifest})
    typer.echo(f"wrote {n} masks, manifest.json and sheet.png to {out}")


@app.command("synth")
def synth_cmd(
    out: Path = typer.Option(Path("runs/synth"), "--out", "-o", help="Output folder."),
    n: int = typer.Option(24, "--n", help="How many triplets."),
    split: str = typer.Option("train", "--split", help="UTKFace split of the clean faces (train, val, test)."),
    size: int = typer.Option(256, "--size", help="Side of the aligned faces in pixels."),
    kinds: Optional[str] = typer.Option(None, "--kinds",
                                        help="Comma-separated occluder kinds (default: all)."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same triplets."),
    data: Optional[Path] = DataOpt,
) -> None:
    """Synthesize (occluded face, occluder mask, clean face) triplets with a manifest and a sheet."""
    from unveil.occlusion.synth import SynthConfig, run_synth

    cfg = SynthConfig(out=str(out), n=n, split=split, size=size, seed=seed,
                      kinds=tuple(k.strip() for k in kinds.split(",")) if kinds else None,
                      data=str(data) if data else None)
    typer.echo(run_synth(cfg))


train_app = typer.Typer(help="Train a model (CPU at small size, or a GPU with --device cuda). Each NAME "
                             "trains a registered model from its YAML in unveil/train/configs/.",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")


def _train_command(config_name: str):
    """``unveil train NAME``: the shipped config of NAME, overridden by the options and ``--set``;
    every default lives in the YAML (an option left out keeps the config's value)."""

    def cmd(
        config: Optional[Path] = typer.Option(None, "--config", "-c",
                                              help=f"YAML config (default: the shipped {config_name}.yaml)."),
        sets: list[str] = typer.Option([], "--set", help="Override a config key, e.g. --set loss.perceptual=0.05."),
        steps: Optional[int] = typer.Option(None, "--steps", help="Optimizer steps."),
        batch: Optional[int] = typer.Option(None, "--batch", help="Batch size."),
        size: Optional[int] = typer.Option(None, "--size", help="Training crop side in pixels."),
        lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (AdamW, cosine decay)."),
        name: Optional[str] = typer.Option(None, "--name", help="Weight file name."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default runs/train/NAME)."),
        resume: Optional[bool] = typer.Option(None, "--resume/--restart",
                                              help="Continue from the run folder's checkpoint (default)."),
        device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda."),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (per process)."),
        nproc: int = typer.Option(1, "--nproc", help="Processes (torch's elastic launcher, as torchrun: gloo on "
                                  "CPU, NCCL with one GPU each on CUDA); each step sees batch x NPROC samples."),
        data: Optional[Path] = DataOpt,
    ) -> None:
        from unveil.train import load_config
        from unveil.train.launch import launch

        cfg = load_config(config_name, config, sets, steps=steps, batch=batch, size=size, lr=lr, name=name,
                          out=str(out) if out else None, resume=resume, device=device, threads=threads,
                          data=str(data) if data else None)
        r = launch(cfg, nproc)
        typer.echo(f"trained {r['steps']} steps in {r['seconds']} s; val {r['val_line']}; weights: {r['weights']}")

    from unveil.train import config_title

    cmd.__doc__ = config_title(config_name) + "."
    train_app.command(config_name.replace("_", "-"))(cmd)


def _add_train_commands() -> None:
    from unveil.train import config_names

    for n in config_names():
        _train_command(n)


_add_train_commands()


@app.command("export")
def export_cmd(
    onnx: bool = typer.Option(False, "--onnx", help="Export to ONNX (the only format so far)."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated (default: every exportable)."),
    out: Path = typer.Option(Path("exported"), "--out", "-o", help="Output folder."),
) -> None:
    """Export the learned networks (segmenter, inpainters) for ONNX Runtime; each is checked
    against torch on a real face before it is written."""
    from unveil.models.onnx_export import run_export

    if not onnx:
        raise UnveilError("say which format: --onnx")
    for line in run_export([m.strip() for m in models.split(",")] if models else None, out):
        typer.echo(line)


@app.command("gallery")
def gallery_cmd(
    out: Path = typer.Option(Path("docs/gallery"), "--out", "-o", help="Folder of the images; the page is OUT.md."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated inpainters (default: the seed "
                                         "models and two baselines)."),
) -> None:
    """Before/after page: the astronaut wearing drawn occluders, every seed model side by side."""
    from unveil.eval.gallery import MODELS, run_gallery

    names = tuple(m.strip() for m in models.split(",")) if models else MODELS
    for line in run_gallery(out, names):
        typer.echo(line)


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Output folder."),
    model: Optional[str] = typer.Option(None, "--model", help="Model (default: the best registered)."),
) -> None:
    """Restore a built-in example: scikit-image's astronaut wearing a face mask unveil draws."""
    from unveil.demo import run_demo

    for line in run_demo(out, model):
        typer.echo(line)


@app.command("bench")
def bench_cmd(
    out: Path = typer.Option(Path("bench"), "--out", "-o", help="Folder for results.json and results.md."),
    limit: int = typer.Option(200, "--limit", help="UTKFace test faces for the quality rows."),
    repeats: int = typer.Option(7, "--repeats", help="Timed runs per size (the median is reported)."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated names (default all)."),
    docs: bool = typer.Option(True, "--docs/--no-docs", help="Update the tables in docs/benchmarks.md."),
    segmenters: bool = typer.Option(True, "--segmenters/--no-segmenters", help="Segmentation rows."),
    merge: bool = typer.Option(False, "--merge", help="Keep rows of models not re-run from the existing results.json."),
    identity: bool = typer.Option(True, "--identity/--no-identity", help="dlib identity distance in the quality rows."),
    facemask_limit: int = typer.Option(200, "--facemask-limit", help="Faces for the face-mask and sunglasses rows."),
    only: Optional[str] = typer.Option(None, "--only", help="Comma-separated parts: speed, backends, quality, "
                                       "facemask, eyes, shapes, pipeline, segmentation, scale, video (with --merge the rest is kept)."),
    data: Optional[Path] = DataOpt,
) -> None:
    """Speed (ms per image at 128/256/512) and quality of every registered model."""
    from unveil.eval.bench import BenchConfig, run_bench

    cfg = BenchConfig(out=str(out), limit=limit, repeats=repeats,
                      models=[m.strip() for m in models.split(",")] if models else None,
                      docs=docs, segmenters=segmenters, merge=merge,
                      parts=tuple(p.strip() for p in only.split(",")) if only else None,
                      identity=identity, facemask_limit=facemask_limit,
                      data=str(data) if data else None)
    typer.echo(run_bench(cfg))


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1: this machine only)."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    model: str = typer.Option("default", "--model", help="Inpainter preselected on the page (default: auto, "
                              "the pipeline's choice for each kind of hole)."),
    max_upload_mb: float = typer.Option(20, "--max-upload-mb", help="Largest accepted photo, in MB."),
    max_side: int = typer.Option(8000, "--max-side", help="Largest accepted photo side, in pixels."),
    time_limit: float = typer.Option(120, "--time-limit", help="Seconds a restoration may run; a longer "
                                     "one is stopped at its next step with a message."),
) -> None:
    """Local web page and JSON API: upload a photo, edit the mask, restore, compare, download."""
    import socket
    import threading

    try:
        import uvicorn

        from unveil.serve import create_app
    except ImportError as e:
        raise UnveilError(f"`unveil serve` needs fastapi, uvicorn and python-multipart ({e.name} is missing): "
                          f"pip install -c constraints.txt fastapi uvicorn python-multipart") from None
    application = create_app(max_upload_mb=max_upload_mb, max_side=max_side,
                             default_model=None if model == "default" else model, host=host,
                             time_limit=time_limit)
    with socket.socket() as s:  # a taken port is a clear message, not uvicorn's traceback
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host, port))
        except OSError as e:
            raise UnveilError(f"cannot listen on {host}:{port} (port in use, or no such address: {e.strerror}); "
                              f"choose another with --port") from None
    threading.Thread(target=application.state.engine.warm, daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"unveil: serving on http://{shown}:{port}/  (API docs: http://{shown}:{port}/docs; "
               f"Ctrl+C stops)")
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command("eval-gender")
def eval_gender_cmd(
    n: int = typer.Option(200, "--n", help="UTKFace test faces (a fixed, seeded sample)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weight file (default: the shipped one)."),
    data: Optional[Path] = DataOpt,
) -> None:
    """Gender classifier accuracy on test faces, clean and wearing a synthetic face mask."""
    from unveil.train.gender import evaluate_gender, format_eval

    typer.echo(format_eval(evaluate_gender(n, "test", weights=weights, data=str(data) if data else None)))


@app.command("eval-real")
def eval_real_cmd(
    model: str = typer.Option("cutface", "--model", help="Registered inpainter."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Weight file (default: the shipped one)."),
    compare: str = typer.Option("telea,ifacenet", "--compare", help="Comma-separated models shown beside it."),
    sheet: int = typer.Option(24, "--sheet", help="Rows of the contact sheet."),
    limit: Optional[int] = typer.Option(None, "--limit", help="At most this many held-out photos."),
    out: Path = typer.Option(Path("runs/eval/real-masked"), "--out", "-o", help="Output folder."),
    holes_out: Optional[Path] = typer.Option(
        None, "--holes-out", help="Also write the held-out photos' found holes here as PNG masks, for "
        "`unveil eval --masks DIR` (paired metrics with the holes real masks leave)."),
    data: Optional[Path] = DataOpt,
) -> None:
    """Restore held-out real masked photos: contact sheet and how often a face is found again."""
    from unveil.train.unpaired import evaluate_real, real_table

    res = evaluate_real(model, tuple(c.strip() for c in compare.split(",") if c.strip()), str(out), sheet,
                        str(data) if data else None, str(weights) if weights else None, limit=limit,
                        holes_out=holes_out)
    typer.echo(real_table(res))
    typer.echo(f"wrote {res['out_dir']}/sheet.png, real.json")


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app; UnveilError becomes a one-line message and exit code 2."""
    try:
        app(args=argv, prog_name="unveil")
    except UnveilError as e:
        typer.echo(f"unveil: error: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        typer.echo("unveil: interrupted", err=True)
        return 130
    except SystemExit as e:  # typer's standalone mode ends with SystemExit (0, or 2 on usage errors)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
