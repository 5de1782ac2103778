"""torch.distributed glue: the process group under ``torchrun``, gathering with gradients, rank-0 writes.

Under ``torchrun --nproc_per_node N -m entitylink ...`` the environment holds ``WORLD_SIZE``, ``RANK``
and ``LOCAL_RANK``; :func:`context` starts the process group once: NCCL when the process runs on a GPU
(each rank on ``cuda:LOCAL_RANK``, see :func:`~entitylink.model.hardware.resolve_device`), gloo on CPU.
Outside torchrun everything is a single process and these helpers do nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """This process's place among the workers, and the device its collectives run on."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def any(self, flag: bool) -> bool:
        """Whether any rank passed ``True`` (a collective: every rank must call it); the flag itself alone."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def progress(self, show: bool | None) -> bool | None:
        """A progress-bar setting for this rank: the caller's on rank 0 (``None`` = automatic), off elsewhere."""
        return show if self.is_main else False


def context(device: torch.device | None = None) -> Context:
    """The distributed context from the environment, starting the process group if needed.

    ``device`` is where this rank computes (an encoder's device): a CUDA device selects NCCL and is
    where collectives put their tensors.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world <= 1:
        return Context(device=device if device is not None else torch.device("cpu"))
    cuda = device is not None and device.type == "cuda"
    if cuda and device.index is None:
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Context(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank,
                   device=device if cuda else torch.device("cpu"))


def shutdown() -> None:
    """End this process's process group, if one was started (a rank that exits with it open aborts)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather_with_grad(tensor: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` (rank order); gradients flow back to each rank's own slice."""
    if not ctx.active:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)


def mean_over_ranks(value: float, ctx: Context) -> float:
    """The mean of a number over all ranks (the tensor lives on the rank's device, as NCCL needs)."""
    if not ctx.active:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return float(t.item() / ctx.world)
