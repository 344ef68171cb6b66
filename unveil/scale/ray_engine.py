"""``unveil remove --engine ray``: a Ray Data pipeline over a batch's jobs.

The driver decides every output first (:func:`unveil.batch.prepare`: the same names, the same
refusals, the same resume as the local engine), then streams the jobs through
``Dataset.map_batches`` with a callable class: each actor builds one
:class:`~unveil.pipeline.Restorer` (models loaded once per actor) and runs
:func:`unveil.batch.run_job`, the local engine's own function, so outputs are identical. The driver
writes ``OUT/manifest.jsonl`` as results come back, so a run killed half-way resumes with
``--resume``.

On a cluster every node needs unveil installed (same version) and the inputs and ``OUT`` on a
filesystem they all see (or inputs as URIs pyarrow reads, ``s3://...``); the driver only plans
and records.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from unveil.batch import BatchResult, Recorder, prepare, show_bar
from unveil.errors import UnveilError


@dataclass
class RayOptions:
    address: str | None = None  #: join this cluster ("auto", "ray://host:10001", "host:6379"); None: start a local Ray
    workers: int | None = None  #: actors (default: the CPUs Ray has, over ``threads``)
    threads: int = 1  #: CPU threads (and Ray CPUs) per actor
    device: str = "cpu"  #: "cuda": one GPU per actor


class RestoreActor:
    """One Ray actor: one Restorer, then one photo per call (Ray Data's callable-class protocol)."""

    def __init__(self, spec: dict, threads: int, save_masks: bool, report: bool):
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)
        from unveil.pipeline import Restorer, RestoreOptions

        self.restorer = Restorer(segmenter=spec["segmenter"], inpainter=spec["inpainter"], device=spec["device"],
                                 options=RestoreOptions(**spec["options"]))
        self.save_masks, self.report = save_masks, report

    def __call__(self, batch: dict) -> dict:
        from unveil.batch import Job, run_job

        cols = {k: [] for k in ("input", "output", "status", "faces", "restored", "seconds", "error", "summary")}
        for src, dst, mask in zip(batch["src"], batch["dst"], batch["mask"]):
            entry = run_job(self.restorer, Job(str(src), str(dst), str(mask)), self.save_masks, self.report)
            for k in cols:
                cols[k].append("" if entry[k] is None else entry[k])
        return cols


def _init_ray(opts: RayOptions):
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UnveilError("--engine ray needs Ray Data: pip install 'unveil[scale]' (ray[data])") from None
    # Ray's own notices (token auth, disabled bars) are not the user's business; its errors show
    if not ray.is_initialized():
        kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level=logging.ERROR)
        try:
            if opts.address:
                ray.init(address=opts.address, **kw)
            else:
                ray.init(num_cpus=os.cpu_count() or 1, **kw)
        except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
            where = f"the Ray cluster at {opts.address}" if opts.address else "a local Ray"
            raise UnveilError(f"cannot start {where} ({type(e).__name__}: {e})") from None
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return ray


def run_ray(spec: dict, items: list[tuple], out_dir: Path, opts: RayOptions, fmt: str | None = None, mask=None,
            save_masks: bool = False, report: bool = False, progress: bool = True,
            say: Callable[[str], None] | None = None, overwrite: bool = False, resume: bool = False) -> BatchResult:
    """:func:`unveil.batch.run_batch` on Ray: ``spec`` says how each actor builds its Restorer
    (``segmenter``, ``inpainter``, ``device``, ``options``: a RestoreOptions or its dict)."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    if opts.threads < 1:
        raise UnveilError(f"--threads must be at least 1, got {opts.threads}")
    if opts.workers is not None and opts.workers < 1:
        raise UnveilError(f"--workers must be at least 1, got {opts.workers}")
    spec = dict(spec)
    if not isinstance(spec.get("options", {}), dict):
        spec["options"] = asdict(spec["options"])
    plan = prepare(items, out_dir, fmt, mask, save_masks, report, overwrite, resume)
    bar = tqdm(total=len(plan.jobs), desc="remove (ray)", unit="photo", disable=not show_bar(progress, len(plan.jobs)),
               file=sys.stderr)
    rec = Recorder(out_dir, say or bar.write)
    rec.result.resumed = plan.resumed
    for entry in plan.failed:
        rec(entry)
    if plan.jobs:
        ray = _init_ray(opts)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = max(1, min(opts.workers or cpus // opts.threads, len(plan.jobs)))
        gpu = 1 if opts.device == "cuda" else 0
        ds = ray.data.from_items([{"src": j.src, "dst": j.dst, "mask": j.mask} for j in plan.jobs],
                                 override_num_blocks=min(len(plan.jobs), 4 * workers))
        ds = ds.map_batches(RestoreActor, batch_size=1, batch_format="numpy",
                            fn_constructor_kwargs={"spec": spec, "threads": opts.threads, "save_masks": save_masks,
                                                   "report": report},
                            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=opts.threads, num_gpus=gpu)
        for row in ds.iter_rows():
            entry = {k: (None if k == "error" and not v else v) for k, v in row.items()}
            entry.update(faces=int(entry["faces"]), restored=int(entry["restored"]), seconds=float(entry["seconds"]))
            rec(entry)
            bar.update(1)
    bar.close()
    rec.result.seconds = time.perf_counter() - t0
    return rec.result
