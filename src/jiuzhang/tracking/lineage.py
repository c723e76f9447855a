"""What a stage run read and what model it made, in MLflow's own terms.

* Inputs: every data folder or file a stage reads becomes an MLflow dataset input of its run
  (``MlflowClient.log_inputs``): name, a content digest (SHA-256 of the files, the first 16 hex digits), the
  path in the project as its source (``source_type: dvc``: the data lives in DVC, not MLflow), and a profile
  (files, bytes). The run page's "Datasets used" then says which bytes a result came from, and two runs
  with the same digest read the same data.
* Models: a stage's model folder becomes a version of a registered model ``jiuzhang-<stage>``
  (``create_registered_model`` + ``create_model_version``) whose source is ``dvc://<path>`` -- the weights
  stay a DVC output (``dvc pull <path>`` fetches them), MLflow records where they are, their digest and the
  run that made them. A URI, not a local path, so a team's MLflow server accepts it from any clone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jiuzhang.common.digest import content_digest

CONTEXT_TAG = "mlflow.data.context"


def profile(path: Path) -> dict[str, int]:
    """Files and bytes under ``path``."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def project_path(path: Path, root: Path) -> str:
    """The path as the project spells it (relative to the project root when inside it)."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def dataset_inputs(inputs: dict[str, str | Path], context: str, root: Path,
                   digests: dict[str, str] | None = None) -> list[Any]:
    """MLflow ``DatasetInput`` entities for the existing paths of ``inputs`` ({name: path}); ``digests``:
    their content digests if already computed."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    out = []
    for name, raw in sorted(inputs.items()):
        path = Path(raw)
        if not path.exists():
            continue  # an optional input the stage did not get
        source = {"path": project_path(path, root), "store": "dvc"}
        digest = (digests or {}).get(name) or content_digest(path)
        out.append(DatasetInput(Dataset(name=name, digest=digest, source_type="dvc",
                                        source=json.dumps(source), profile=json.dumps(profile(path))),
                                tags=[InputTag(CONTEXT_TAG, context)]))
    return out


def registered_name(stage: str) -> str:
    """``pretrain_arm@raw`` -> ``jiuzhang-pretrain_arm-raw`` (names the registry accepts everywhere)."""
    return "jiuzhang-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", stage)


def register_model(client: Any, run_id: str, stage: str, folder: Path, root: Path,
                   tags: dict[str, str] | None = None) -> Any:
    """A new version of ``jiuzhang-<stage>`` pointing at the DVC output ``folder``; returns it."""
    from mlflow.exceptions import MlflowException

    name = registered_name(stage)
    rel = project_path(folder, root)
    try:
        client.create_registered_model(name, description=f"Models made by the jiuzhang stage '{stage}'. Each "
                                       f"version's weights are a DVC output: `dvc pull {rel}`.")
    except MlflowException as exc:  # made by an earlier run (or a stage running beside this one)
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
    digest = content_digest(folder)
    return client.create_model_version(
        name, source=f"dvc://{rel}", run_id=run_id,
        tags={"jiuzhang.path": rel, "jiuzhang.digest": digest, "jiuzhang.stage": stage, **(tags or {})},
        description=f"{rel} (content digest {digest}), made by the run of stage '{stage}'.")
