"""export_tensorboard: the event files read back equal the store's histories and weights."""

import numpy as np
import pytest
from safetensors.numpy import load_file

from mnistlab.results import open_results
from mnistlab.trackers import export_tensorboard
from mnistlab.trackers.tensorboard_export import EVENTS_GLOB

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

STUDY = "tiny-results"
EVERYTHING = {"scalars": 0, "histograms": 0}  # EventAccumulator keeps every event


def read_events(folder: str) -> EventAccumulator:
    events = EventAccumulator(folder, size_guidance=EVERYTHING)
    events.Reload()
    return events


def test_scalars_and_histograms_read_back_as_stored(tiny_results, tmp_path):
    with open_results(tiny_results) as results:
        summary = export_tensorboard(results, STUDY, tmp_path)
        again = export_tensorboard(results, STUDY, tmp_path)
        records = results.records(STUDY)
        histories = results.store.histories(STUDY)
        weights = {r.run_id: results.artifact(r, "weights") for r in records}
    assert summary.written == again.written == len(records) == 4
    for record in records:
        folder = tmp_path / STUDY / record.variant / record.run_id[:12]
        assert summary.runs[record.run_id] == str(folder)
        assert len(list(folder.glob(EVENTS_GLOB))) == 1  # the second export replaced the first
        events = read_events(str(folder))
        history = histories[record.run_id]
        for key, values in history.items():
            read = events.Scalars(key)
            assert [e.step for e in read] == list(range(len(values)))
            np.testing.assert_allclose([e.value for e in read], values, rtol=1e-6)
        (final,) = events.Scalars("final/test_accuracy")
        assert final.step == len(history["loss"]) - 1
        assert final.value == pytest.approx(record.metrics["test_accuracy"], rel=1e-6)
        stored = load_file(str(weights[record.run_id]))
        kernel = next(name for name in stored if name.endswith("kernel"))
        initial, last = events.Histograms(f"weights/{kernel}")
        assert (initial.step, last.step) == (0, final.step)
        assert last.histogram_value.num == stored[kernel].size
        assert last.histogram_value.sum == pytest.approx(float(stored[kernel].sum()), rel=1e-5)
