"""How many processes (= devices) a stage's launcher string starts: ``torchrun``/``deepspeed`` flags.

The launcher is the command prefix ``dvc.yaml`` puts before ``jiuzhang <stage>`` (``*.launcher`` in params);
reading it here keeps the plan in step with what actually runs. Written by hand because no library parses
torchrun's command line without running it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from jiuzhang.errors import UserError

# flag -> what it sets, for both launchers (torchrun accepts - and _ spellings)
_FLAGS = {"--nproc_per_node": "per_node", "--nproc-per-node": "per_node", "--num_gpus": "per_node",
          "--nnodes": "nodes", "--num_nodes": "nodes"}


@dataclass(frozen=True)
class Launch:
    tool: str            # 'torchrun', 'deepspeed' or 'one process'
    nodes: int
    per_node: int

    @property
    def processes(self) -> int:
        return self.nodes * self.per_node

    def describe(self) -> str:
        if self.tool == "one process":
            return "1 process"
        where = f"{self.nodes} nodes x {self.per_node}" if self.nodes > 1 else f"{self.per_node} per node"
        return f"{self.tool} {self.processes} processes ({where})"


def _count(value: str, key: str, launcher: str) -> int:
    # torchrun's elastic form "--nnodes 2:4" plans for the largest size
    text = value.split(":")[-1]
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"launcher {launcher!r}: {key} {value!r} is not a positive process count")
    return int(text)


def parse_launcher(launcher: str, key: str) -> Launch:
    """``launcher`` as written in params key ``key`` (named in errors)."""
    words = shlex.split(launcher)
    if not words:
        return Launch("one process", 1, 1)
    tool = words[0].rsplit("/", 1)[-1]
    if tool not in {"torchrun", "deepspeed"}:
        raise UserError(f"{key}: launcher {launcher!r} is not torchrun or deepspeed; `jiuzhang plan` cannot tell "
                        f"how many processes it starts")
    found = {"nodes": 1, "per_node": 1}
    for i, word in enumerate(words[1:], start=1):
        flag, _, inline = word.partition("=")
        if flag in _FLAGS:
            value = inline or (words[i + 1] if i + 1 < len(words) else "")
            found[_FLAGS[flag]] = _count(value, f"{key} {flag}", launcher)
    return Launch(tool, found["nodes"], found["per_node"])
