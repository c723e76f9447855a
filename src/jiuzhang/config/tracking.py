"""Typed config of the ``tracking`` params section (MLflow)."""

from __future__ import annotations

from pydantic import Field

from jiuzhang.config.base_model import Section


class TrackingConfig(Section):
    """Where stage runs are logged. No stage lists this section as a DVC param: it never changes outputs."""

    enabled: bool = Field(True, description="Log every stage run to MLflow.")
    experiment: str = Field("jiuzhang", min_length=1, description="MLflow experiment name.")
    system_metrics_s: float = Field(10.0, ge=0, description="Sample MLflow system metrics (CPU, memory, disk, "
                                    "network, GPU) of every stage run every this many seconds; 0 = off.")
    store: str = Field("mlflow.db", description="Default SQLite store, relative to the project root; "
                       "MLFLOW_TRACKING_URI overrides it (e.g. http://mlflow.internal:5000).")
