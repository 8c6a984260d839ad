"""Results as data: DataFrames equal to what the store holds, read-only, models rebuilt."""

import math

import pytest
import torch

from mnistlab.data.cache import DataCache
from mnistlab.results import ResultsError, open_results
from mnistlab.studies.records import RunConfig
from mnistlab.studies.results_folder import DB_NAME
from mnistlab.studies.store import Store, StoreError

STUDY = "tiny-results"
RUNS = 4  # 2 variants × 2 repetitions
EPOCHS = 2


@pytest.fixture(scope="module")
def stored(tiny_results):
    """The study's runs and histories as the store gives them (read before any test)."""
    with Store.open_readonly(tiny_results / DB_NAME) as store:
        runs = store.runs(STUDY)
        return runs, {r.run_id: store.history(r.run_id) for r in runs}


@pytest.fixture
def results(tiny_results):
    with open_results(tiny_results) as opened:
        yield opened


def test_studies_lists_the_study_with_its_counts(results):
    studies = results.studies()
    assert studies.shape[0] == 1
    row = studies.iloc[0]
    assert (row["name"], row["runs"], row["done"], row["failed"]) == (STUDY, RUNS, RUNS, 0)


def test_runs_has_one_row_per_run_with_numbers_from_the_store(results, stored):
    records, _ = stored
    runs = results.runs(STUDY)
    assert runs.shape[0] == RUNS
    assert list(runs["run_id"]) == [r.run_id for r in records]
    assert list(runs["variant"]) == ["narrow", "narrow", "wide", "wide"]
    assert list(runs["model.hidden"]) == [(8,), (8,), (16,), (16,)]
    assert list(runs["training.optimizer.learning_rate"]) == [0.02] * RUNS
    assert list(runs["repetition"]) == [0, 1, 0, 1]
    assert set(runs["status"]) == {"done"}
    for record, (_, row) in zip(records, runs.iterrows(), strict=True):
        for metric, value in record.metrics.items():
            assert row[metric] == value, metric
        assert row["seconds"] == record.seconds and row["seed"] == record.seed
    assert runs["test_accuracy"].dtype == "float64"
    assert runs["started"].notna().all() and (runs["finished"] >= runs["started"]).all()
    means = runs.groupby("model.hidden")["test_accuracy"].mean()  # tuples group
    assert means.to_dict()[(16,)] == pytest.approx(
        sum(r.metrics["test_accuracy"] for r in records[2:]) / 2
    )


def test_history_is_long_format_equal_to_the_store(results, stored):
    _, histories = stored
    history = results.history(STUDY)
    assert list(history.columns) == ["run_id", "epoch", "key", "value"]
    expected = sum(len(values) for h in histories.values() for values in h.values())
    assert len(history) == expected
    assert set(history["epoch"]) == set(range(EPOCHS))
    for row in history.itertuples():
        assert row.value == histories[row.run_id][row.key][row.epoch]


def test_statistics_and_selections_are_numbers(results, stored):
    records, _ = stored
    statistics = results.statistics(STUDY)
    assert statistics.shape[0] == 2  # one row per configuration
    wide = [r.metrics["test_accuracy"] for r in records[2:]]
    row = statistics.iloc[1]
    assert row["variant"] == "wide" and row["test_accuracy_n"] == 2
    assert row["test_accuracy_mean"] == pytest.approx(sum(wide) / 2, abs=1e-12)
    assert row["test_accuracy_std"] == pytest.approx(abs(wide[0] - wide[1]) / math.sqrt(2))
    assert statistics["test_accuracy_std"].dtype == "float64"
    assert not statistics.map(lambda v: isinstance(v, str) and "±" in v).any().any()
    selections = results.selections(STUDY)
    assert list(selections["variant"]) == ["narrow", "wide"]
    assert {"val_accuracy_mean", "val_accuracy_std", "val_accuracy_n"} <= set(selections.columns)


def test_load_model_predicts_the_stored_test_accuracy(results, stored):
    records, _ = stored
    record = records[2]
    net = results.load_model(STUDY, record.run_id[:6])  # a unique prefix will do
    assert not net.training
    data = DataCache().data(RunConfig.model_validate(record.config).data, torch.device("cpu"))
    with torch.no_grad():
        predicted = net(data.test.x).argmax(dim=-1)
    accuracy = (predicted == data.test.y).double().mean().item()
    assert accuracy == pytest.approx(record.metrics["test_accuracy"], abs=1e-6)


def test_study_shows_its_table_and_curves_inline(results):
    study = results.study(STUDY)
    html = study._repr_html_()
    assert "<table>" in html and "<th>variant</th>" in html and "wide" in html
    assert '<img src="data:image/png;base64,' in html
    assert study.runs().shape[0] == RUNS


def test_reading_never_writes_and_writing_through_it_fails(tiny_results):
    db = tiny_results / DB_NAME
    before = (db.stat().st_mtime_ns, db.read_bytes())
    with open_results(tiny_results) as results:
        results.runs(STUDY), results.history(STUDY), results.statistics(STUDY)
        results.study(STUDY)._repr_html_()
        with pytest.raises(StoreError, match="readonly"):
            results.store.delete_study(STUDY)
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before


def test_unknown_folder_study_and_run_are_one_line_errors(tmp_path, results):
    for call, name in (
        (lambda: open_results(tmp_path / "nope"), "nope"),
        (lambda: open_results(tmp_path), "mnistlab.db"),
        (lambda: results.runs("nostudy"), "'nostudy'"),
        (lambda: results.load_model(STUDY, "ffffnotarun"), "'ffffnotarun'"),
    ):
        with pytest.raises(ResultsError) as caught:
            call()
        assert name in str(caught.value) and "\n" not in str(caught.value)
