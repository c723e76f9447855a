"""Rank and world size, from the variables every launcher sets (torchrun, deepspeed, SLURM via torchrun).
One code path from 1 to N processes: a single process is simply rank 0 of 1."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: rank, world size, local rank."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one that writes outputs."""
        return self.rank == 0

    @classmethod
    def from_env(cls, env: dict[str, str]) -> "World":
        """The world torchrun describes in ``env`` (RANK, WORLD_SIZE, LOCAL_RANK); one process when unset."""
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def init_distributed(world: World, timeout_s: float = 1800.0) -> bool:
    """Join the launcher's process group (gloo on CPU, nccl on GPU) when there are several processes and
    none is set up yet; True when this call created it (the caller then destroys it). The launcher
    (torchrun, deepspeed) sets MASTER_ADDR/MASTER_PORT; without them this is a clear error, not a hang."""
    import torch
    import torch.distributed as dist

    if world.world_size == 1 or dist.is_initialized():
        return False
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={world.world_size} but {', '.join(missing)} is not set: start the "
                           f"processes with a launcher (torchrun --nproc_per_node N ...)")
    select_device(world)
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, rank=world.rank, world_size=world.world_size,
                            timeout=timedelta(seconds=timeout_s))
    return True


def select_device(world: World) -> None:
    """Make this rank's GPU the current CUDA device (cuda:LOCAL_RANK) before any process group or model
    exists: NCCL barriers and collectives run on the current device, which is cuda:0 on every local rank
    otherwise (eight ranks on one GPU, then a hang or an out-of-memory)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)


def collective_device(world: World):
    """The device a tensor must be on for the default process group's collectives: NCCL (the plain path and
    DeepSpeed's on GPUs) serves only CUDA tensors ("No backend type associated with device type cpu"), gloo
    serves CPU ones. Read off the group's own backend map ("cpu:gloo,cuda:gloo", "cuda:nccl"), not guessed
    from whether a GPU is visible."""
    import torch
    import torch.distributed as dist

    served = {part.split(":")[0] for part in str(dist.get_backend_config()).split(",")}
    return torch.device("cpu") if "cpu" in served else torch.device("cuda", world.local_rank)
