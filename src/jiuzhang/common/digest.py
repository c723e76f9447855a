"""Content hashes for fingerprints: a file, a model folder, a JSON-able value, a package's code.

Fingerprints decide whether saved work (a synthesis shard, a training checkpoint, an influence scratch
folder) belongs to the run about to use it; they hash *bytes*, never paths, so a different model at the
same path, or the same model at another path, is told apart correctly.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 8 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 23), b""):
            h.update(block)
    return h.hexdigest()


def folder_sha256(folder: Path, pattern: str = "*") -> str:
    """Content hash of a folder (relative names and bytes of every file matching ``pattern``)."""
    h = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob(pattern) if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + file_sha256(path).encode())
    return h.hexdigest()


def json_sha256(value: Any) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys), so equal values hash equally."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def text_digest(text: str) -> str:
    """First 16 hex digits of the SHA-256 of a text (UTF-8): the prompt hash of a prediction row, so two files'
    rows can be checked to answer the very same prompt."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def code_sha256(module_file: str | Path) -> str:
    """The code version of a package: the hash of every ``.py`` file in the folder of ``module_file``."""
    return folder_sha256(Path(module_file).resolve().parent, "*.py")


def content_digest(path: Path) -> str:
    """First 16 hex digits of the SHA-256 of a file's or a folder's content (names and bytes): what MLflow's
    dataset inputs and the output cards call an input's digest."""
    path = Path(path)
    return (folder_sha256(path) if path.is_dir() else file_sha256(path))[:16]
