"""How many processes (= devices) a stage runs on, as `jiuzhang plan` prices it.

Training stages: ``train.nodes`` x ``train.processes_per_node`` torchrun processes, started by the stage as a
gang on the Ray cluster (:mod:`jiuzhang.cluster.gang`); generation stages: ``cluster.workers`` Ray workers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Launch:
    """How a stage is launched: the tool (torchrun, Ray, one process), nodes and processes per node."""
    tool: str            # 'torchrun', 'ray' or 'one process'
    nodes: int
    per_node: int

    @classmethod
    def of(cls, train) -> "Launch":
        """A training stage's launch from its ``train`` section."""
        if train.world_size == 1:
            return cls("one process", 1, 1)
        return cls("torchrun", train.nodes, train.processes_per_node)

    @property
    def processes(self) -> int:
        """Processes in all."""
        return self.nodes * self.per_node

    def describe(self) -> str:
        """The launch in words, e.g. 'torchrun, 2 nodes x 8 processes'."""
        if self.tool == "one process":
            return "1 process"
        if self.tool == "ray":
            return f"{self.processes} Ray worker(s) (cluster.workers)"
        where = f"{self.nodes} nodes x {self.per_node}" if self.nodes > 1 else f"{self.per_node} per node"
        return f"{self.tool} {self.processes} processes ({where}, a gang on the Ray cluster)"
