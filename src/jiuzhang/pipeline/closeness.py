"""How far two versions of one output are apart, when their hashes differ: across machines, float results
move in the 6th digit (other CPU models pick other BLAS/oneDNN kernels), so a rerun elsewhere is judged by
the numbers, not the bytes.

Numbers are compared in the formats whose content is numbers: JSON and JSONL (every number in the
structure, which must otherwise be equal), CSV (cell by cell) and safetensors (every tensor, same names and
shapes). Anything else must be byte-identical. Two values are close when ``|a - b| <= atol + rtol * |b|``
(b: the reference), numpy's rule. Written here because no maintained library compares mixed JSON/CSV/
safetensors trees with one tolerance.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Tolerance:
    """How close two numbers must be: within rtol relative or atol absolute."""
    rtol: float = 1e-4
    atol: float = 1e-6

    def __str__(self) -> str:
        return f"rtol {self.rtol:g}, atol {self.atol:g}"


@dataclass
class Distance:
    """The largest differences seen, how many numbers were compared, and why the two are not comparable."""

    numbers: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst_excess: float = 0.0      # max of |a-b| - (atol + rtol*|b|): > 0 means outside the tolerance
    problems: list[str] = field(default_factory=list)

    def add(self, a: float, b: float, tol: Tolerance) -> None:
        """Compare one pair of numbers (two NaNs agree), recording the worst differences."""
        if math.isnan(a) and math.isnan(b):
            return
        self.numbers += 1
        diff = abs(a - b)
        self.max_abs = max(self.max_abs, diff)
        if b:
            self.max_rel = max(self.max_rel, diff / abs(b))
        self.worst_excess = max(self.worst_excess, diff - (tol.atol + tol.rtol * abs(b)))

    def close(self) -> bool:
        """True when nothing but numbers differed and every difference is within tolerance."""
        return not self.problems and self.worst_excess <= 0

    def summary(self) -> str:
        """Numbers compared, max abs and rel differences, and the first problem found."""
        head = f"{self.numbers} numbers, max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g}"
        return head + (f"; {self.problems[0]}" + (f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else "")
                       if self.problems else "")


def _walk(a, b, where: str, dist: Distance, tol: Tolerance) -> None:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str) or isinstance(b, str):
        if a != b:
            dist.problems.append(f"{where}: {str(a)[:40]!r} vs {str(b)[:40]!r}")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        dist.add(float(a), float(b), tol)
    elif isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            dist.problems.append(f"{where}: keys {sorted(set(a) ^ set(b))[:5]} in one only")
        for k in sorted(set(a) & set(b), key=str):
            _walk(a[k], b[k], f"{where}.{k}", dist, tol)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            dist.problems.append(f"{where}: {len(a)} vs {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, f"{where}[{i}]", dist, tol)
    elif a != b:
        dist.problems.append(f"{where}: {type(a).__name__} vs {type(b).__name__}")


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def compare_file(a: Path, b: Path, name: str, dist: Distance, tol: Tolerance) -> None:
    """Add the differences between file ``a`` (this run) and ``b`` (the reference) to ``dist``."""
    ba, bb = a.read_bytes(), b.read_bytes()
    if ba == bb:
        return
    suffix = Path(name).suffix
    try:
        if suffix == ".json":
            _walk(json.loads(ba), json.loads(bb), name, dist, tol)
        elif suffix == ".jsonl":
            la, lb = ba.decode().splitlines(), bb.decode().splitlines()
            if len(la) != len(lb):
                dist.problems.append(f"{name}: {len(la)} vs {len(lb)} lines")
            for i, (x, y) in enumerate(zip(la, lb)):
                _walk(json.loads(x) if x.strip() else None, json.loads(y) if y.strip() else None, f"{name}:{i + 1}",
                      dist, tol)
        elif suffix == ".csv":
            ra, rb = list(csv.reader(io.StringIO(ba.decode()))), list(csv.reader(io.StringIO(bb.decode())))
            if [len(r) for r in ra] != [len(r) for r in rb]:
                dist.problems.append(f"{name}: other rows or columns")
            for i, (row_a, row_b) in enumerate(zip(ra, rb)):
                for j, (p, q) in enumerate(zip(row_a, row_b)):
                    fp, fq = _number(p), _number(q)
                    if fp is not None and fq is not None:
                        dist.add(fp, fq, tol)
                    elif p != q:
                        dist.problems.append(f"{name}:{i + 1}:{j + 1}: {p[:30]!r} vs {q[:30]!r}")
        elif suffix == ".safetensors":
            _compare_tensors(a, b, name, dist, tol)
        else:
            dist.problems.append(f"{name}: bytes differ (not a numeric format)")
    except (ValueError, UnicodeDecodeError) as exc:
        dist.problems.append(f"{name}: cannot be read as {suffix} ({exc})")


def _compare_tensors(a: Path, b: Path, name: str, dist: Distance, tol: Tolerance) -> None:
    import numpy as np
    import torch
    from safetensors.torch import load_file

    ta, tb = load_file(str(a)), load_file(str(b))
    if set(ta) != set(tb):
        dist.problems.append(f"{name}: tensors {sorted(set(ta) ^ set(tb))[:3]} in one only")
    for key in sorted(set(ta) & set(tb)):
        x, y = ta[key], tb[key]
        if x.shape != y.shape:
            dist.problems.append(f"{name}:{key}: shape {tuple(x.shape)} vs {tuple(y.shape)}")
            continue
        x64, y64 = x.to(torch.float64).numpy(), y.to(torch.float64).numpy()
        diff = np.abs(x64 - y64)
        dist.numbers += diff.size
        if not diff.size:
            continue
        dist.max_abs = max(dist.max_abs, float(diff.max()))
        nonzero = np.abs(y64) > 0
        if nonzero.any():
            dist.max_rel = max(dist.max_rel, float((diff[nonzero] / np.abs(y64[nonzero])).max()))
        dist.worst_excess = max(dist.worst_excess, float((diff - (tol.atol + tol.rtol * np.abs(y64))).max()))


def compare_trees(a: dict[str, Path], b: dict[str, Path], tol: Tolerance) -> Distance:
    """Compare two outputs given as {relative path: file}: a single file is {'': path}."""
    dist = Distance()
    for rel in sorted(set(a) ^ set(b)):
        dist.problems.append(f"{rel}: in one version only")
    for rel in sorted(set(a) & set(b)):
        compare_file(a[rel], b[rel], rel or a[rel].name, dist, tol)
    return dist
