"""Reproduction check: every output in dvc.lock, between two runs (and/or against a reference lock).

On one machine every output is byte-identical by construction: the teacher journals are rewritten in
canonical form (answer rows in key order, no commit times, latencies or attempts) and the report holds no
wall times; those facts of one execution go to ``results/run/``, which is neither an output nor a
dependency. ``exact`` mode (``make verify-repro``) tolerates nothing. Across machines float results move in
the 6th digit, so by default an output whose hash differs is compared by its numbers
(:mod:`.closeness`): 'close' when every number is within the named tolerance, with the largest absolute and
relative differences, else DIFFERENT. The reference's content comes from the DVC cache (by its md5) or, for
an output kept in git, from the reference revision.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from jiuzhang.errors import UserError
from jiuzhang.pipeline.closeness import Tolerance, compare_trees

JOURNAL_COLUMNS = ("key", "item_id", "request", "status", "response", "error", "prompt_tokens", "completion_tokens",
                   "cost_usd", "mode")


def lock_outputs(lock: Path, text: str | None = None) -> dict[str, str]:
    """``path -> md5`` of every output (data, models, metrics, plots) recorded in a dvc.lock (or its ``text``)."""
    if text is None:
        if not lock.is_file():
            raise UserError(f"{lock}: no dvc.lock (run `dvc repro` there first)")
        text = lock.read_text()
    data = yaml.safe_load(text) or {}
    return {o["path"]: o.get("md5", "") for stage in data.get("stages", {}).values() for o in stage.get("outs", [])}


def _git(project: Path, *args: str) -> bytes | None:
    res = subprocess.run(["git", "-C", str(project), *args], capture_output=True)
    return res.stdout if res.returncode == 0 else None


@dataclass
class Reference:
    """A reference lock: its hashes, and the git revision its git-kept outputs can be read from (if any)."""

    hashes: dict[str, str]
    name: str
    revision: str | None


def load_reference(project: Path, against: str) -> Reference:
    """``against``: a dvc.lock file, or a git revision of ``project`` (its dvc.lock at that commit)."""
    path = Path(against)
    if path.is_file():
        return Reference(lock_outputs(path), str(path), "HEAD" if _git(project, "rev-parse", "HEAD") else None)
    text = _git(project, "show", f"{against}:dvc.lock")
    if text is None:
        raise UserError(f"--against {against}: neither a dvc.lock file nor a git revision of {project} with a dvc.lock")
    return Reference(lock_outputs(path, text.decode()), f"{against}:dvc.lock", against)


def workspace_tree(project: Path, path: str) -> dict[str, Path] | None:
    """{relative path: file} of an output in ``project`` (a file, or every file of a folder); None when absent."""
    target = project / path
    if target.is_file():
        return {"": target}
    if target.is_dir():
        return {str(f.relative_to(target)): f for f in sorted(target.rglob("*")) if f.is_file()}
    return None


def _cache_file(project: Path, md5: str) -> Path | None:
    for cache in (project / ".dvc" / "cache" / "files" / "md5", project / ".dvc" / "cache"):
        f = cache / md5[:2] / md5[2:]
        if f.is_file():
            return f
    return None


def reference_tree(project: Path, path: str, md5: str, revision: str | None, scratch: Path) -> dict[str, Path] | None:
    """The reference version of output ``path`` (hash ``md5``): from the DVC cache, else from git at
    ``revision`` (outputs with ``cache: false``); None when neither has it."""
    manifest = _cache_file(project, md5)
    if manifest is not None and md5.endswith(".dir"):
        found = {e["relpath"]: _cache_file(project, e["md5"]) for e in json.loads(manifest.read_text())}
        files = {k: f for k, f in found.items() if f is not None}
        return files if len(files) == len(found) else None
    if manifest is not None:
        return {"": manifest}
    if revision is not None:
        blob = _git(project, "show", f"{revision}:{path}")
        if blob is not None:
            out = scratch / path.replace("/", "__")
            out.write_bytes(blob)
            return {"": out}
    return None


def journal_rows(path: Path) -> list[tuple]:
    """The journal's answer rows in key order (read-only), without the columns that hold times."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM answers ORDER BY key").fetchall()
    finally:
        db.close()


def explain_journal(a: Path, b: Path) -> str:
    """Why two journals differ: same rows in other bytes, or which keys differ."""
    ra, rb = journal_rows(a), journal_rows(b)
    if ra == rb:
        return "same answer rows, different bytes (not in canonical form: was it written by an older version?)"
    if len(ra) != len(rb):
        return f"{len(ra)} vs {len(rb)} answer rows (a journal keeps every answer it was ever paid for)"
    return f"{sum(x != y for x, y in zip(ra, rb))} of {len(ra)} answer rows differ"


@dataclass
class Verdict:
    """One output's verdict: identical, close, DIFFERENT or MISSING, with the detail."""
    path: str
    status: str      # 'identical' | 'close' | 'DIFFERENT' | 'MISSING'
    detail: str = ""


def verify(a: Path, b: Path | None = None, reference_lock: Path | str | None = None,
           tolerance: Tolerance | None = None) -> list[Verdict]:
    """Compare the outputs of project ``a`` with project ``b`` and/or a reference (a lock file or a git
    revision of ``a``). ``tolerance`` None: hashes only (exact); else differing outputs are compared by their
    numbers."""
    if b is None and reference_lock is None:
        raise UserError("nothing to compare with: give a second run folder or --against (a dvc.lock or a revision)")
    ha = lock_outputs(a / "dvc.lock")
    hb = lock_outputs(b / "dvc.lock") if b is not None else None
    ref = load_reference(a, str(reference_lock)) if reference_lock is not None else None
    sides = [("run A", ha), *([("run B", hb)] if hb is not None else []), *([("reference", ref.hashes)] if ref else [])]
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="jz-verify-") as scratch:
        for path in sorted(set().union(*(h for _, h in sides))):
            hashes = [h.get(path) for _, h in sides]
            if None in hashes:
                where = [n for (n, _), h in zip(sides, hashes) if h is None]
                verdicts.append(Verdict(path, "MISSING", f"not in the dvc.lock of {', '.join(where)}"))
            elif len(set(hashes)) == 1:
                verdicts.append(Verdict(path, "identical", str(hashes[0])))
            elif path.endswith(".sqlite") and b is not None and (a / path).is_file() and (b / path).is_file():
                detail = " vs ".join(str(h) for h in hashes)
                verdicts.append(Verdict(path, "DIFFERENT", f"{detail} ({explain_journal(a / path, b / path)})"))
            elif tolerance is None:
                verdicts.append(Verdict(path, "DIFFERENT", " vs ".join(str(h) for h in hashes)))
            else:
                verdicts.append(_by_numbers(path, a, b, ref, [str(h) for h in hashes], tolerance, Path(scratch)))
    return verdicts


def _by_numbers(path: str, a: Path, b: Path | None, ref: Reference | None, hashes: list[str], tol: Tolerance,
                scratch: Path) -> Verdict:
    mine = workspace_tree(a, path)
    others = []
    if b is not None:
        others.append(("run B", workspace_tree(b, path)))
    if ref is not None and ref.hashes[path] != hashes[0]:
        others.append((ref.name, reference_tree(a, path, ref.hashes[path], ref.revision, scratch)))
    if mine is None or any(t is None for _, t in others):
        lacking = ["run A" if mine is None else None] + [n for n, t in others if t is None]
        return Verdict(path, "DIFFERENT", f"{' vs '.join(hashes)}; content of {', '.join(x for x in lacking if x)} "
                       f"not here to compare (dvc pull / dvc checkout it)")
    parts, close = [], True
    for name, tree in others:
        assert tree is not None  # a side without its content returned above
        dist = compare_trees(mine, tree, tol)
        close = close and dist.close()
        parts.append(f"vs {name}: {dist.summary()}")
    return Verdict(path, "close" if close else "DIFFERENT", f"{'; '.join(parts)} ({tol})")


def render(verdicts: list[Verdict]) -> str:
    """The verdicts as an aligned table with a count per status."""
    width = max(len(v.path) for v in verdicts)
    lines = [f"{v.path:{width}}  {v.status:9}  {v.detail}" for v in verdicts]
    counts = {s: sum(v.status == s for v in verdicts) for s in ("identical", "close", "DIFFERENT", "MISSING")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)
