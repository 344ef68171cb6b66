"""``unveil train NAME --nproc N``: N training processes on this machine.

:func:`launch` starts the ranks with torch's elastic launcher (the one behind ``torchrun``: a c10d
rendezvous on a free loopback port, fresh interpreters, no restarts) and each runs the ordinary
:func:`unveil.train.fit`; how the ranks cooperate is :mod:`unveil.train.distributed`. On CPU each
rank gets the cores shared out (``threads``), on CUDA one GPU each.
"""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import replace

import torch
from torch.distributed.elastic.multiprocessing.errors import record

from unveil.errors import UnveilError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@record
def _rank_main(cfg, progress: bool) -> dict:
    """What each launched rank runs (module level: the launcher spawns fresh interpreters)."""
    from unveil.train import fit
    from unveil.train.distributed import leave

    try:
        result = fit(cfg, progress)
    except BaseException:
        leave(clean=False)
        raise
    leave()
    return result


def launch(cfg, nproc: int, progress: bool = True) -> dict:
    """Train ``cfg`` on ``nproc`` processes of this machine; returns rank 0's :func:`fit` result.
    On CPU each rank gets ``cfg.threads`` threads (default: the cores shared out)."""
    if nproc < 1:
        raise UnveilError(f"--nproc must be at least 1, got {nproc}")
    if nproc == 1:
        from unveil.train import fit

        return fit(cfg, progress)
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if str(cfg.device).startswith("cuda") and torch.cuda.device_count() < nproc:
        raise UnveilError(f"--nproc {nproc} on CUDA needs {nproc} GPUs, this machine has "
                          f"{torch.cuda.device_count()}")
    if not cfg.threads and not str(cfg.device).startswith("cuda"):
        cfg = replace(cfg, threads=max(1, (os.cpu_count() or 1) // nproc))
    lc = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"unveil-{uuid.uuid4().hex[:8]}",
                      rdzv_backend="c10d", rdzv_endpoint=f"127.0.0.1:{_free_port()}", max_restarts=0,
                      monitor_interval=0.5, start_method="spawn")
    try:
        results = elastic_launch(lc, _rank_main)(cfg, progress)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        msg = failure.message.get("message", "") if isinstance(failure.message, dict) else failure.message
        lines = [ln for ln in str(msg or "").strip().splitlines() if ln.strip()]
        last = lines[-1].removeprefix("unveil.errors.UnveilError: ") if lines else f"exit code {failure.exitcode}"
        raise UnveilError(f"training rank {rank} failed: {last}") from None
    return results[0]
