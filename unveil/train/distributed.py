"""Training on several processes: what the engine does when ``WORLD_SIZE`` > 1.

:func:`unveil.train.launch.launch` (``unveil train NAME --nproc N``) starts N ranks on this machine
with torch's elastic launcher and each rank runs the ordinary :func:`~unveil.train.engine.fit`. A
run started by ``torchrun`` itself (several nodes, say
``torchrun --nnodes 2 --nproc-per-node 8 -m unveil.cli train ifacenet ...``) takes the same path: the
engine sees ``RANK`` / ``WORLD_SIZE`` and calls :func:`join`.

How the ranks cooperate (:func:`sync_task`, for every family alike):
- the process group is gloo on CPU, NCCL on CUDA (each rank on ``cuda:LOCAL_RANK``);
- every network a task builds starts from rank 0's weights (broadcast), and every optimizer averages
  the gradients over the ranks just before it steps (one coalesced all-reduce per step and
  optimizer), so the ranks stay identical and one step sees ``batch x N`` samples;
- each rank reads its own share of the data (``Context.shard``) or draws its own samples;
- rank 0 alone validates, logs, checkpoints and writes the weights; a resume loads the same
  checkpoint on every rank.
BatchNorm statistics are not averaged: the shipped buffers are rank 0's.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from unveil.errors import UnveilError


def backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def join(device: torch.device) -> torch.device:
    """Join the process group of a launcher (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...); returns
    this rank's device (``cuda:LOCAL_RANK`` on CUDA)."""
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise UnveilError(f"WORLD_SIZE is {os.environ.get('WORLD_SIZE')} but {', '.join(missing)} not set: start "
                              f"several processes with `unveil train NAME --nproc N` or torchrun")
        dist.init_process_group(backend(device))
    return device


def _modules(task) -> list[torch.nn.Module]:
    return [task.model] + [m for m in task.state.values() if isinstance(m, torch.nn.Module)]


def _optimizers(task) -> list[torch.optim.Optimizer]:
    opts = [task.opt] + [o for o in task.state.values() if isinstance(o, torch.optim.Optimizer)]
    return list({id(o): o for o in opts}.values())


@torch.no_grad()
def broadcast(module: torch.nn.Module, src: int = 0) -> None:
    """Every parameter and buffer of ``module`` set to rank ``src``'s."""
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src)


@torch.no_grad()
def average_gradients(params: list[torch.Tensor]) -> None:
    """Replace each gradient by its mean over the ranks. A parameter that has a gradient on any rank
    gets one everywhere (zeros where it had none), so the ranks take the same optimizer step."""
    world = dist.get_world_size()
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32)
    dist.all_reduce(has)
    live = [p for p, h in zip(params, has.tolist()) if h > 0]
    if not live:
        return
    for p in live:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1).float() for p in live])
    dist.all_reduce(flat)
    flat /= world
    i = 0
    for p in live:
        n = p.grad.numel()
        p.grad.copy_(flat[i:i + n].view_as(p.grad))
        i += n


def sync_task(task) -> None:
    """Make a built task data-parallel: rank 0's weights everywhere, gradients averaged before every
    optimizer step (a step pre-hook, so the tasks' own steps stay as they are)."""
    for m in _modules(task):
        broadcast(m)
    for opt in _optimizers(task):
        params = [p for g in opt.param_groups for p in g["params"] if p.requires_grad]
        opt.register_step_pre_hook(lambda _opt, _args, _kwargs, params=params: average_gradients(params))


def leave(clean: bool = True) -> None:
    """Leave the process group. ``clean`` (every rank got here): a barrier first, so every rank has
    finished its last collective before any closes its connections. After a failure, no barrier:
    the other ranks may never come to it."""
    if not dist.is_initialized():
        return
    try:
        if clean:
            dist.barrier()
    finally:
        dist.destroy_process_group()
