"""Training on several processes or machines: torchrun's environment and rank 0's word.

Under ``torchrun`` (``WORLD_SIZE`` > 1) every process runs the same ``latcomp train``;
:func:`current_world` reads the processes from the environment and sets up the process
group once (gloo; with NCCL for CUDA tensors when CUDA is available). The training loop
stays one loop: every process builds the same global batch and takes its contiguous
share (:meth:`World.shard`), DistributedDataParallel averages the gradients, and
:meth:`World.mean` averages the metrics. Whatever reads or writes the run directory,
validates or decides is done by rank 0 alone (:meth:`World.from_main`), so the other
processes never touch the output directory and never race it.

Failures stay one line: an error every process meets alike is raised by one process
(rank 0, or the lowest failing rank) and the others raise :class:`PeerFailed`, which the
command line turns into a silent non-zero exit. One process (no torchrun) is
:data:`SINGLE`, for which every method is the identity, so single-process training is
exactly what it was. This module imports torch only when it is used.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


class PeerFailed(Exception):
    """Another process of the run failed and reports why; this one stops without a message of its own."""


@dataclass(frozen=True)
class World:
    """This process's place among the ``size`` processes of a run (torchrun's RANK, WORLD_SIZE, LOCAL_RANK)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this is rank 0, the process that reads and writes the run directory and reports."""
        return self.rank == 0

    def shard(self, rows: torch.Tensor, examples: int) -> torch.Tensor:
        """This process's contiguous share of ``rows`` belonging to ``examples`` examples of equal row counts.

        The rows of example i are contiguous (a batch: one row each; the photo model's dither: h·w rows
        each), and ``examples`` is divisible by :attr:`size`.
        """
        if self.size == 1:
            return rows
        share = len(rows) // examples * (examples // self.size)
        return rows[self.rank * share:(self.rank + 1) * share]

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of ``values`` over the processes (the global-batch value of equal per-process shares)."""
        if self.size == 1:
            return values
        import torch.distributed as dist

        total = values.detach().clone()
        dist.all_reduce(total)
        return total / self.size

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (which averages the gradients in backward), or as it is."""
        if self.size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def alike(self, error: Exception) -> Exception:
        """An error every process meets alike (same data, same values): itself on rank 0, else PeerFailed."""
        return error if self.main else PeerFailed(str(error))

    def from_main(self, work: Callable[[], T]) -> T:
        """``work()`` done by rank 0 alone, its result (picklable) given to every process.

        If it fails, rank 0 raises the error and the others :class:`PeerFailed`.
        """
        if self.size == 1:
            return work()
        import torch.distributed as dist

        outcome: list[Any] = [None]
        error: Exception | None = None
        if self.main:
            try:
                outcome[0] = (True, work())
            except Exception as exc:  # every kind goes to the peers as a failure; rank 0 re-raises it
                error, outcome[0] = exc, (False, None)
        dist.broadcast_object_list(outcome, src=0)
        if error is not None:
            raise error
        done, value = outcome[0]
        if not done:
            raise PeerFailed("rank 0 failed")
        return value

    def together(self, work: Callable[[], T]) -> T:
        """``work()`` on every process; if it fails anywhere, the lowest failing rank raises its error, the others
        :class:`PeerFailed` (no process leaves while another waits for it)."""
        if self.size == 1:
            return work()
        import torch
        import torch.distributed as dist

        value: Any = None
        error: Exception | None = None
        try:
            value = work()
        except Exception as exc:  # reported below, once every process knows
            error = exc
        first = torch.tensor([self.size if error is None else self.rank])
        dist.all_reduce(first, op=dist.ReduceOp.MIN)
        if int(first) == self.size:
            return value
        if int(first) == self.rank and error is not None:
            raise error
        raise PeerFailed(f"rank {int(first)} failed")


#: One process: every :class:`World` method is the identity (no torch.distributed).
SINGLE = World()


def backend() -> str:
    """The process-group backend: gloo for CPU tensors, and NCCL for CUDA tensors when CUDA is available."""
    import torch
    import torch.distributed as dist

    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


def current_world() -> World:
    """The processes of this run from torchrun's environment; with several, the process group is set up (once)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    rank = int(os.environ["RANK"])
    world = World(rank, size, int(os.environ.get("LOCAL_RANK", rank)))
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend=backend())
        # Gloo's worker threads must stop while the interpreter is alive: left to interpreter
        # shutdown, they may abort the process ("terminate called without an active exception").
        atexit.register(_leave)
    return world


def _leave() -> None:
    """Destroy the process group at exit (if nothing else did), before the interpreter's teardown."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model itself inside a :meth:`World.wrap` wrapper."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model
