"""Data-parallel training over processes started by `accelerate launch` (or torchrun).

Each process holds the whole frozen model and takes its share of every global batch (`--batch-size` is the global
batch); the noise, timesteps and prompts are drawn for the whole batch from (seed, step) in every process, so the
processes' summed gradients are the one-process gradient (within float rounding). One all-reduce per step sums the
gradients, the loss and a stop request; only the main process writes files, measures checkpoints and reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Processes:
    """This process's place among the run's processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that writes files and reports."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        """More than one process trains."""
        return self.world > 1

    def share(self, n: int) -> list[int]:
        """This process's rows of a batch of `n`: a contiguous slice, the slices as even as they can be."""
        return list(range(self.rank * n // self.world, (self.rank + 1) * n // self.world))

    def device(self, device: torch.device) -> torch.device:
        """Each process its own GPU (its local rank); the CPU is shared."""
        if self.parallel and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device


ONE = Processes()


def join_processes(device: str) -> Processes:
    """One process, unless launched with several (WORLD_SIZE > 1): then join their group through Accelerate
    (gloo on the CPU, NCCL on GPUs)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return ONE
    from accelerate import PartialState

    cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    state = PartialState(cpu=cpu)
    return Processes(state.process_index, state.num_processes, state.local_process_index)


def sum_across(params: list[torch.Tensor], total: torch.Tensor, stop: bool) -> tuple[torch.Tensor, bool]:
    """Sum the gradients of `params`, the step's loss `total` and the stop requests of every process, in one
    all-reduce; a parameter that has no gradient in any process keeps none. Returns the summed loss and whether
    any process asked to stop."""
    device = total.device
    parts = [p.grad.reshape(-1).float() if p.grad is not None else torch.zeros(p.numel(), device=device)
             for p in params]
    flags = torch.tensor([p.grad is not None for p in params] + [stop], dtype=torch.float32, device=device)
    buffer = torch.cat([*parts, flags, total.reshape(1).float()])
    torch.distributed.all_reduce(buffer)
    n = sum(p.numel() for p in params)
    summed = buffer[n:n + len(params) + 1].tolist()  # (params + 1,): one read back
    offset = 0
    for p, has_grad in zip(params, summed):
        p.grad = buffer[offset:offset + p.numel()].view_as(p).to(p.dtype).clone() if has_grad > 0 else None
        offset += p.numel()
    return buffer[-1].to(total.dtype), summed[-1] > 0


def agree(flag: bool, device: torch.device) -> bool:
    """The main process's `flag`, in every process (a broadcast from rank 0)."""
    value = torch.tensor([float(flag)], device=device)
    torch.distributed.broadcast(value, src=0)
    return bool(value[0] > 0)
