"""A study as TensorBoard event files: one run folder per mnistlab run.

Layout: `<logdir>/<study>/<variant or "runs">/<run_id[:12]>/events.out.tfevents.*`, so
`tensorboard --logdir <logdir>` shows every study and filters by variant. Each run
folder holds a scalar per History key and epoch (`step` = the 0-based epoch), the final
metrics as `final/<key>` at the last epoch, and weight histograms `weights/<tensor>`: the
initial weights at step 0 where the run captured them (`initial_weights`, which the
weight_histograms analysis asks for), and the final weights (its safetensors file) at
the last epoch. Exporting again replaces the event files this export wrote, so a run is
never shown twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistlab.studies.records import RunRecord
from mnistlab.trackers.common import ExportSummary, as_float, exportable, last_epoch, require

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

    from mnistlab.results import Results

DEFAULT_FOLDER = "tensorboard"
EVENTS_GLOB = "events.out.tfevents.*"  # what SummaryWriter writes, and all this export removes
NO_VARIANT = "runs"  # the folder of runs without a variant
SHORT_ID = 12  # run-id characters in a run folder's name, as `show --runs` prints them
INITIAL_PREFIX = "initial/"  # the initial_weights capture's array names


def default_logdir(results: Path) -> Path:
    """Where `export --to tensorboard` writes without a folder: `tensorboard/` next to
    the results folder."""
    return results.resolve().parent / DEFAULT_FOLDER


def export_tensorboard(results: Results, study: str, logdir: Path | None = None) -> ExportSummary:
    """Write a study's finished runs as TensorBoard event files, one folder per run.

    Parameters
    ----------
    results : Results
        The results folder, open (`mnistlab.results.open_results`).
    study : str
        The study's name; its runs go under `<logdir>/<study>/`.
    logdir : Path, optional
        TensorBoard's log folder (default `default_logdir(results.folder)`).

    Returns
    -------
    ExportSummary
        `runs`: mnistlab run id -> its run folder.

    Raises
    ------
    MissingExtra
        tensorboard is not installed.
    """
    require("tensorboard", "tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    records = exportable(results.records(study))  # an unknown study fails before any write
    root = (logdir or default_logdir(results.folder)) / study
    histories = results.store.histories(study)
    folders: dict[str, str] = {}
    for record in records:
        folder = run_folder(root, record)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(EVENTS_GLOB):  # an earlier export's: replaced, not doubled
            old.unlink()
        history = histories.get(record.run_id, {})
        writer = SummaryWriter(log_dir=str(folder))
        try:
            _write_run(writer, results, record, history)
        finally:
            writer.close()
        folders[record.run_id] = str(folder)
    return ExportSummary(study, str(root), len(records), 0, folders)


def run_folder(root: Path, record: RunRecord) -> Path:
    """A run's event folder under a study's folder: `<variant>/<run_id[:12]>`."""
    return root / (record.variant or NO_VARIANT) / record.run_id[:SHORT_ID]


def _write_run(
    writer: SummaryWriter, results: Results, record: RunRecord, history: dict[str, list[float]]
) -> None:
    """A run's scalars per epoch, final metrics and weight histograms."""
    for key, values in history.items():
        for epoch, value in enumerate(values):
            writer.add_scalar(key, as_float(value), epoch)
    final_step = last_epoch(history)
    for key, value in record.metrics.items():
        writer.add_scalar(f"final/{key}", as_float(value), final_step)
    captures = results.artifact(record, "captures")
    if captures is not None:
        with np.load(captures) as archive:
            for name in archive.files:
                if name.startswith(INITIAL_PREFIX):
                    _histogram(writer, name[len(INITIAL_PREFIX) :], archive[name], 0)
    weights = results.artifact(record, "weights")
    if weights is not None:
        from safetensors.numpy import load_file

        for name, values in load_file(str(weights)).items():
            _histogram(writer, name, values, final_step)


def _histogram(writer: SummaryWriter, name: str, values: np.ndarray, step: int) -> None:
    """One tensor's histogram as `weights/<name>`; integer buffers (counters) are left out."""
    if np.issubdtype(values.dtype, np.floating) and values.size:
        writer.add_histogram(f"weights/{name}", values.astype(np.float64), step)
