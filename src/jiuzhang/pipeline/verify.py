"""Exact reproduction check: two from-scratch runs must give the same hash for every output in dvc.lock.

Every output is byte-identical by construction: the teacher journals are rewritten in canonical form
(answer rows in key order, no commit times, latencies or attempts) and the report holds no wall times;
those facts of one execution go to ``metrics/run/``, which is neither an output nor a dependency. There
is no tolerated difference. Where a journal does differ, the verdict says how its answer rows differ.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import yaml

from jiuzhang.errors import UserError

JOURNAL_COLUMNS = ("key", "item_id", "request", "status", "response", "error", "prompt_tokens", "completion_tokens",
                   "cost_usd", "mode")


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


def explain_journal(a: Path, b: Path) -> str:
    ra, rb = journal_rows(a), journal_rows(b)
    if ra == rb:
        return "same answer rows, different bytes (not in canonical form: was it written by an older version?)"
    if len(ra) != len(rb):
        return f"{len(ra)} vs {len(rb)} answer rows (a journal keeps every answer it was ever paid for)"
    return f"{sum(x != y for x, y in zip(ra, rb))} of {len(ra)} answer rows differ"


@dataclass
class Verdict:
    path: str
    status: str      # 'identical' | 'DIFFERENT' | 'MISSING'
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
        else:
            detail = " vs ".join(str(h) for h in hashes)
            if path.endswith(".sqlite") and (a / path).is_file() and (b / path).is_file():
                detail += f" ({explain_journal(a / path, b / path)})"
            verdicts.append(Verdict(path, "DIFFERENT", detail))
    return verdicts


def render(verdicts: list[Verdict]) -> str:
    width = max(len(v.path) for v in verdicts)
    lines = [f"{v.path:{width}}  {v.status:9}  {v.detail}" for v in verdicts]
    counts = {s: sum(v.status == s for v in verdicts) for s in ("identical", "DIFFERENT", "MISSING")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)
