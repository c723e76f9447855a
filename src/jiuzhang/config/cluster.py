"""Typed config of the ``cluster`` params section: where the generation work and the training gangs run.

No stage depends on this section as a DVC param (``dvc.yaml`` lists it nowhere and no ``cmd`` interpolates
it): how machines are obtained changes no output byte, so growing from 1 to 64 workers, or moving from a
local cluster to a Slurm/KubeRay one, keeps every cached stage and every finished shard. What does change
results (e.g. a training stage's world size) stays in that stage's own section.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jiuzhang.config.base_model import Section


class ClusterConfig(Section):
    """A Ray cluster (started locally by the stage, or joined) and the generation workers placed on it."""

    data_executor: Literal["auto", "local", "ray"] = Field(
        "auto", description="The data stages (corpus, filter) on datatrove: 'local' = its LocalPipelineExecutor "
        "(processes on this machine); 'ray' = its RayPipelineExecutor on this cluster (the project folder must "
        "be on a filesystem every node sees); 'auto' = ray when cluster.address is set, else local.")
    executor: Literal["ray", "inline"] = Field(
        "ray", description="'ray': the stage is a Ray driver; workers (one engine each) pull shards from it. "
        "'inline': the same shard code in the stage's own process, no Ray (debugging, and the baseline of "
        "benchmarks/ray_synthesis.py).")
    address: str = Field(
        "", description="'' = start a private local Ray cluster for the stage and stop it after; 'auto' = join "
        "the cluster this machine belongs to (`ray start` ran here, as under Slurm/KubeRay/SkyPilot); "
        "'host:6379' = join that head node.")
    workers: int = Field(1, ge=1, description="Generation workers (Ray actors), each holding one engine (one "
                         "vLLM or HF replica, within one node); shards go to whichever is free.")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs each worker reserves; the HF engine uses "
                                   "synthesize.threads of them, vLLM on CPU all of them.")
    gpus_per_worker: float = Field(0.0, ge=0, description="GPUs each worker reserves (vLLM: its "
                                   "tensor_parallel_size); Ray sets CUDA_VISIBLE_DEVICES to them.")
    resources: dict[str, float] = Field(default_factory=dict, description="Custom Ray resources each worker "
                                        "needs, e.g. {'A100': 1} to pin workers to nodes started with them.")
    max_retries: int = Field(2, ge=0, description="How often a shard is redone after its worker died or raised; "
                             "then the stage fails naming the shard and its last error.")
    local_cpus: int | None = Field(None, ge=1, description="CPUs of a local cluster (address ''); default: this "
                                   "machine's.")
    object_store_mib: int = Field(256, ge=80, description="Object store of a local cluster, MiB (/dev/shm): shards "
                                  "and results are small, so a small store keeps CI machines safe.")
    training_cpus_per_node: float = Field(1.0, gt=0, description="CPUs a training stage's agent reserves on each "
                                          "of its train.nodes nodes (one agent per node starts torchrun there).")
    training_gpus_per_process: float = Field(0.0, ge=0, description="GPUs reserved per training process "
                                             "(train.processes_per_node of them per node); 1 on GPU clusters.")
    schedule_timeout_s: float = Field(600.0, gt=0, description="How long the stage waits for a worker that the "
                                      "cluster cannot place (no node has its CPUs/GPUs/resources), then fails "
                                      "naming what it asked for.")
