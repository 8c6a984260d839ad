"""Exports of a study to experiment trackers: MLflow runs and TensorBoard event files.

Each exporter reads the results folder through `mnistlab.results` (read-only) and writes
only to its own target; the trackers are optional extras (`pip install -e '.[mlflow]'`,
`'.[tensorboard]'`), imported when an export starts.
"""

from mnistlab.trackers.common import ExportSummary, MissingExtra
from mnistlab.trackers.mlflow_export import default_tracking_uri, export_mlflow
from mnistlab.trackers.tensorboard_export import default_logdir, export_tensorboard

__all__ = [
    "ExportSummary",
    "MissingExtra",
    "default_logdir",
    "default_tracking_uri",
    "export_mlflow",
    "export_tensorboard",
]
