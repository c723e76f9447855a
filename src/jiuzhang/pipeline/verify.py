"""Exact reproduction check: two from-scratch runs must give the same hash for every output in dvc.lock.

Two outputs cannot be bit-identical by design; each has a content check in its place:

- the teacher journals (``data/journal/*.sqlite``) hold when each answer was committed, how long it took
  and how many attempts it needed (wall-clock facts, and SQLite page order follows commit order under
  concurrency). Tolerance: every answer row must be identical - key, prompt id, request, status, response,
  error, token counts, cost - with only ``attempts``, ``latency_s`` and ``committed_at`` ignored.
- ``reports/report.html`` shows each stage's last wall time. Tolerance: identical after its wall-time
  section is removed (the same results table, chart and costs; ``summary.json``, ``results.md`` and
  ``accuracy.png`` are compared by hash like every other output).

Everything else must match exactly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from jiuzhang.errors import UserError

JOURNAL_COLUMNS = ("key", "item_id", "request", "status", "response", "error", "prompt_tokens", "completion_tokens",
                   "cost_usd")
WALL_TIME_SECTION = "<h2>Wall time"


def lock_outputs(lock: Path) -> dict[str, str]:
    """``path -> md5`` of every output (data, models, metrics, plots) recorded in a dvc.lock."""
    if not lock.is_file():
        raise UserError(f"{lock}: no dvc.lock (run `dvc repro` there first)")
    data = yaml.safe_load(lock.read_text()) or {}
    return {o["path"]: o.get("md5", "") for stage in data.get("stages", {}).values() for o in stage.get("outs", [])}


def journal_rows(path: Path) -> list[tuple]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM answers ORDER BY key").fetchall()
    finally:
        db.close()


def same_journal(a: Path, b: Path) -> str | None:
    ra, rb = journal_rows(a), journal_rows(b)
    if ra == rb:
        return None
    if len(ra) != len(rb):
        return f"{len(ra)} vs {len(rb)} answer rows (a journal keeps every answer it was ever paid for)"
    return f"{sum(x != y for x, y in zip(ra, rb))} of {len(ra)} answer rows differ"


def same_report(a: Path, b: Path) -> str | None:
    ta, tb = (p.read_text(encoding="utf-8").split(WALL_TIME_SECTION)[0] for p in (a, b))
    return None if ta == tb else "the report differs outside its wall-time section"


TOLERATED: dict[str, tuple[str, Callable[[Path, Path], str | None]]] = {
    "data/journal/kd_initial.sqlite": ("answer rows equal; commit times, latencies, attempts ignored", same_journal),
    "data/journal/kd_boost.sqlite": ("answer rows equal; commit times, latencies, attempts ignored", same_journal),
    "reports/report.html": ("equal outside the wall-time section", same_report),
}


@dataclass
class Verdict:
    path: str
    status: str      # 'identical' | 'tolerated' | 'DIFFERENT' | 'MISSING'
    detail: str = ""


def verify(a: Path, b: Path, reference_lock: Path | None = None) -> list[Verdict]:
    """Compare the outputs of two project folders (and their hashes with ``reference_lock``, if given)."""
    ha, hb = lock_outputs(a / "dvc.lock"), lock_outputs(b / "dvc.lock")
    ref = lock_outputs(reference_lock) if reference_lock else None
    verdicts = []
    for path in sorted(set(ha) | set(hb) | set(ref or {})):
        hashes = [h.get(path) for h in (ha, hb, *([ref] if ref is not None else []))]
        if None in hashes:
            where = [n for n, h in zip(("run A", "run B", "reference"), hashes) if h is None]
            verdicts.append(Verdict(path, "MISSING", f"not in the dvc.lock of {', '.join(where)}"))
        elif len(set(hashes)) == 1:
            verdicts.append(Verdict(path, "identical", hashes[0]))
        elif path in TOLERATED:
            rule, check = TOLERATED[path]
            problem = check(a / path, b / path)
            verdicts.append(Verdict(path, "DIFFERENT" if problem else "tolerated", problem or rule))
        else:
            verdicts.append(Verdict(path, "DIFFERENT", " vs ".join(str(h) for h in hashes)))
    return verdicts


def render(verdicts: list[Verdict]) -> str:
    width = max(len(v.path) for v in verdicts)
    lines = [f"{v.path:{width}}  {v.status:9}  {v.detail}" for v in verdicts]
    counts = {s: sum(v.status == s for v in verdicts) for s in ("identical", "tolerated", "DIFFERENT", "MISSING")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)
