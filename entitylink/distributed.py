"""torch.distributed glue: the process group under ``torchrun``, gathering with gradients, rank-0 writes.

Under ``torchrun --nproc_per_node N -m entitylink ...`` the environment holds ``WORLD_SIZE``, ``RANK``
and ``LOCAL_RANK``; :func:`context` starts the process group (NCCL on CUDA, gloo on CPU) once.
Outside torchrun everything is a single process and these helpers do nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """This process's place among the workers."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def context(device: torch.device | None = None) -> Context:
    """The distributed context from the environment, starting the process group if needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    if not dist.is_initialized():
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return Context(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def gather_with_grad(tensor: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` (rank order); gradients flow back to each rank's own slice."""
    if not ctx.active:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)


def mean_over_ranks(value: float, ctx: Context) -> float:
    """The mean of a number over all ranks."""
    if not ctx.active:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item() / ctx.world)
