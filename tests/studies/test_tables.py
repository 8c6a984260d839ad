"""Tests of studies/tables.py: cell strings, default columns, marking and sorting."""

from __future__ import annotations

import json
import math

import pytest

from mnistlab.studies.export import export_table
from mnistlab.studies.stats import cv_summary, select_best
from mnistlab.studies.tables import (
    cv_table,
    default_columns,
    runs_table,
    selection_table,
    summary_column,
    summary_table,
)

from .test_stats import LR, cv_runs, record, sweep_runs

ACC = [0.9773, 0.9785, 0.9797]  # mean 0.9785, sample std 0.0012
LOSS = [0.0700, 0.0712, 0.0724]  # mean 0.0712, sample std 0.0012


def three_group_study():
    """relu (3 repetitions), sigmoid (1), tanh (2, pending)."""
    runs = []
    for rep, (acc, loss) in enumerate(zip(ACC, LOSS, strict=True)):
        runs.append(
            record(
                f"relu{rep}",
                "relu",
                order=rep,
                repetition=rep,
                variant="v",
                labels={"model.activation": "relu", "model.hidden": [512, 128]},
                accuracy=acc - 0.01,
                test_accuracy=acc,
                test_loss=loss,
            )
        )
    runs.append(
        record(
            "sig0",
            "sigmoid",
            order=3,
            variant="v",
            labels={"model.activation": "sigmoid", "model.hidden": [512, 128]},
            accuracy=0.9,
            test_accuracy=0.91234,
            test_loss=0.31234,
        )
    )
    for rep in range(2):
        runs.append(
            record(
                f"tanh{rep}",
                "tanh",
                order=4 + rep,
                repetition=rep,
                status="pending",
                variant="v",
                labels={"model.activation": "tanh", "model.hidden": [512, 128]},
            )
        )
    return runs


def test_summary_cells_mean_std_single_value_and_pending():
    table = summary_table(three_group_study())
    assert table.columns == [
        "variant",
        "activation",
        "train acc (%)",
        "test acc (%)",
        "test loss",
        "n",
        "status",
    ]
    assert table.rows == [
        ["v", "relu", "96.85 ± 0.12", "97.85 ± 0.12", "0.0712 ± 0.0012", "3", "done"],
        ["v", "sigmoid", "90.00", "91.23", "0.3123", "1", "done"],
        ["v", "tanh", "pending", "pending", "pending", "0/2", "pending"],
    ]
    assert table.raw[0][3]["mean"] == pytest.approx(0.9785)
    assert table.raw[0][3]["std"] == pytest.approx(0.0012)
    assert (table.raw[0][3]["n"], table.raw[0][5], table.raw[2][2]) == (3, 3, None)
    assert table.metrics[2:5] == ["accuracy", "test_accuracy", "test_loss"]
    records = json.loads(export_table(table, "json"))
    stats = [f"{m}_{part}" for m in ("accuracy", "test_accuracy", "test_loss")
             for part in ("mean", "std", "n")]  # fmt: skip
    assert list(records[0]) == ["variant", "model.activation", *stats, "n", "status"]
    assert [records[1][f"test_accuracy_{p}"] for p in ("mean", "std", "n")] == [0.91234, None, 1]
    assert records[2]["test_accuracy_mean"] is None


def test_default_columns_list_varying_labels_and_present_metrics():
    metrics = {"accuracy": 0.5, "val_accuracy": 0.4, "test_accuracy": 0.3, "test_loss": 1.0}
    runs = [
        record(
            opt,
            opt,
            order=i,
            labels={"model.hidden": [10], "training.optimizer": {"name": opt}, LR: lr},
            **metrics,
        )
        for i, (opt, lr) in enumerate([("sgd", 0.1), ("adam", 0.2)])
    ]
    cols = default_columns(runs)
    assert [(c.title, c.key) for c in cols] == [
        ("optimizer", "training.optimizer"),
        ("learning_rate", LR),
        ("train acc (%)", "accuracy"),
        ("val acc (%)", "val_accuracy"),
        ("test acc (%)", "test_accuracy"),
        ("test loss", "test_loss"),
        ("n", "n"),
    ]
    regression = [record("r", "r", loss=0.05, test_loss=0.06)]
    assert [c.metric for c in default_columns(regression)] == ["loss", "test_loss", None]


def test_summary_marks_diverged_and_failed_repetitions():
    runs = [
        record("r0", "g", repetition=0, accuracy=0.9, test_loss=0.3),
        record("r1", "g", repetition=1, accuracy=0.8, test_loss=0.5),
        record("r2", "g", repetition=2, status="diverged", accuracy=0.098, test_loss=math.nan),
        record("r3", "g", repetition=3, status="failed"),
    ]
    columns = [
        summary_column("train acc", metric="accuracy"),
        summary_column("test loss", metric="test_loss"),
    ]
    table = summary_table(runs, columns)
    assert table.columns == ["train acc", "test loss", "n", "status"]  # n, status appended
    assert table.rows == [
        ["59.93 ± 43.70", "0.4 ± 0.1414 (1 non-finite)", "3/4", "diverged 1/4, failed 1/4"]
    ]
    assert table.raw[0][1]["n_nonfinite"] == 1


def test_summary_custom_columns_render_config_fields():
    run = record(
        "r",
        "g",
        config={
            "model": {"hidden": [512, 256, 64], "activation": {"name": "relu"}, "dropout": 0.5},
            "training": {"optimizer": {"name": "adam", "learning_rate": 0.001}},
        },
        test_accuracy=0.98,
    )
    columns = [
        summary_column("architecture", field="model.hidden"),
        summary_column("activation", field="model.activation"),
        summary_column("optimizer", field="training.optimizer"),
        summary_column("lr", field="training.optimizer.learning_rate"),
        summary_column("batch norm", field="model.batch_norm"),
        summary_column("test accuracy", metric="test_accuracy"),
    ]
    table = summary_table([run], columns)
    assert table.rows == [["512-256-64", "relu", "adam", "0.001", "-", "98.00", "1"]]


def test_summary_sort_by_metric_best_first_and_reversed():
    runs = [
        record(name, name, order=i, labels={"model.activation": name}, test_accuracy=acc)
        for i, (name, acc) in enumerate([("a", 0.5), ("b", 0.9), ("c", 0.7)])
    ]
    runs.append(record("d", "d", order=3, labels={"model.activation": "d"}, status="pending"))
    runs += [  # the best mean of its finite runs, but one diverged: after the all-finite ones
        record("e0", "e", order=4, labels={"model.activation": "e"}, test_accuracy=0.99),
        record("e1", "e", order=5, repetition=1, labels={"model.activation": "e"},
               status="diverged", test_accuracy=math.nan),
    ]  # fmt: skip
    assert [r[0] for r in summary_table(runs, sort="test_acc").rows] == ["b", "c", "a", "e", "d"]
    assert [r[0] for r in summary_table(runs, sort="-test_acc").rows] == ["a", "c", "b", "e", "d"]
    by_name = summary_table(runs, sort="activation").rows
    assert [r[0] for r in by_name] == ["a", "b", "c", "d", "e"]
    with pytest.raises(ValueError, match="sort: no column, metric or field 'nope'"):
        summary_table(runs, sort="nope")


def test_runs_table_marks_divergence_epoch():
    runs = [
        record("0123456789abcdef", "g", repetition=0, labels={LR: 0.1}, accuracy=0.9),
        record(
            "fedcba9876543210",
            "h",
            order=1,
            status="diverged",
            labels={LR: 0.5},
            accuracy=0.098,
            diverged_epoch=7.0,
        ),
    ]
    table = runs_table(runs)
    assert table.columns == [
        "id",
        "status",
        "learning_rate",
        "rep",
        "seed",
        "train acc (%)",
        "seconds",
    ]
    assert table.rows == [
        ["0123456789ab", "done", "0.1", "0", "100", "90.00", "1.0"],
        ["fedcba987654", "diverged @ epoch 7", "0.5", "0", "100", "9.80", "1.0"],
    ]
    assert table.raw[0][0] == "0123456789abcdef"


def test_selection_table_rows():
    table = selection_table(select_best(sweep_runs(), "val_accuracy", over=LR))
    assert table.columns == [
        "variant",
        "optimizer",
        "learning_rate",
        "mean val acc (%)",
        "n",
        "best rep",
        "seed",
        "best val acc (%)",
        "best val loss",
        "run",
    ]
    assert table.rows[0] == [
        "exp1 sgd",
        "sgd",
        "0.11",
        "94.50 ± 1.29",
        "4",
        "1",
        "101",
        "96.00",
        "0.05",
        "sgd-0.11-1",
    ]
    assert table.rows[1][:5] == ["exp1 adam", "adam", "0.12", "85.00 ± 2.83", "4"]


def test_cv_table_rows_use_population_std():
    table = cv_table(cv_summary(cv_runs(), params=["model.activation"]))
    assert table.columns == [
        "hidden",
        "activation",
        "val acc (%)",
        "folds",
        "rank",
        "best",
        "refit test acc (%)",
    ]
    assert table.rows[0] == ["A1", "sigmoid", "97.00 ± 0.82", "96.00, 97.00, 98.00", "2", "", "-"]
    assert table.rows[1] == ["A1", "relu", "98.33 ± 0.47", "98.00, 98.00, 99.00", "1", "*", "98.50"]
    assert "ddof=0" in table.note
