"""Tests of studies/stats.py: describe, grouping, best-setting selection and CV summaries."""

from __future__ import annotations

import math
from typing import Any

import pytest

from mnistlab.studies.records import RunRecord
from mnistlab.studies.stats import cv_summary, describe, group_runs, resolve_field, select_best

T_975_3 = 3.182446305284263  # Student's t, 0.975 quantile, 3 degrees of freedom


def record(
    run_id: str,
    group: str,
    *,
    order: int = 0,
    repetition: int = 0,
    status: str = "done",
    labels: dict[str, Any] | None = None,
    variant: str | None = None,
    role: str = "train",
    config: dict[str, Any] | None = None,
    **metrics: float,
) -> RunRecord:
    """A stored run with the given metrics."""
    return RunRecord(
        study="s",
        run_id=run_id,
        group=group,
        status=status,  # type: ignore[arg-type]
        config=config or {},
        seed=100 + repetition,
        repetition=repetition,
        labels=labels or {},
        variant=variant,
        parent=None,
        role=role,  # type: ignore[arg-type]
        order=order,
        metrics=dict(metrics),
        seconds=1.0,
        error=None,
    )


# --- describe ---


def test_describe_mean_sample_std_and_t_interval():
    stats = describe([1.0, 2.0, 3.0, 4.0])
    std = math.sqrt(5 / 3)  # squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n - 1
    half = T_975_3 * std / math.sqrt(4)
    assert (stats.mean, stats.min, stats.max, stats.n, stats.n_nonfinite) == (2.5, 1.0, 4.0, 4, 0)
    assert stats.std == pytest.approx(std, rel=1e-12)
    assert stats.ci95[0] == pytest.approx(2.5 - half, rel=1e-9)
    assert stats.ci95[1] == pytest.approx(2.5 + half, rel=1e-9)


def test_describe_population_std_for_cv():
    assert describe([1.0, 2.0, 3.0, 4.0], ddof=0).std == pytest.approx(math.sqrt(1.25), rel=1e-12)


def test_describe_fewer_than_two_values_gives_nan_spread():
    one = describe([0.97])
    assert (one.mean, one.min, one.max, one.n) == (0.97, 0.97, 0.97, 1)
    assert math.isnan(one.std) and all(math.isnan(b) for b in one.ci95)
    empty = describe([])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.std)


def test_describe_leaves_out_and_counts_nonfinite_values_but_keeps_huge_ones():
    stats = describe([0.5, math.nan, math.inf, 0.7])
    assert (stats.n, stats.n_nonfinite) == (2, 2)
    assert stats.mean == pytest.approx(0.6)
    assert stats.std == pytest.approx(math.sqrt(0.02))
    assert describe([1570.0, 1.0]).mean == 785.5
    assert describe([math.nan]).n_nonfinite == 1 and math.isnan(describe([math.nan]).mean)


# --- grouping ---


def test_group_runs_orders_groups_by_first_run_and_runs_by_repetition():
    runs = [
        record("b1", "B", order=3, repetition=1, accuracy=0.2),
        record("a0", "A", order=1, repetition=0, accuracy=0.5),
        record("b0", "B", order=2, repetition=0, accuracy=0.4),
        record("a1", "A", order=4, repetition=1, accuracy=0.7),
        record("f0", "F", order=0, role="cv-fold", accuracy=0.9),
    ]
    groups = group_runs(runs)
    assert [g.group for g in groups] == ["A", "B"]
    assert [r.run_id for r in groups[0].runs] == ["a0", "a1"]
    assert [r.run_id for r in groups[1].runs] == ["b0", "b1"]
    assert groups[0].stats("accuracy").mean == pytest.approx(0.6)


def test_group_stats_count_diverged_nan_and_skip_unfinished_runs():
    runs = [
        record("r0", "G", repetition=0, val_loss=0.3),
        record("r1", "G", repetition=1, val_loss=0.5),
        record("r2", "G", repetition=2, status="diverged", val_loss=math.nan),
        record("r3", "G", repetition=3, status="diverged"),  # no val_loss at all: NaN
        record("r4", "G", repetition=4, status="failed"),
        record("r5", "G", repetition=5, status="pending"),
    ]
    (group,) = group_runs(runs)
    stats = group.stats("val_loss")
    assert (stats.n, stats.n_nonfinite) == (2, 2)
    assert stats.mean == pytest.approx(0.4)
    assert group.status_counts() == {"done": 2, "diverged": 2, "failed": 1, "pending": 1}


def test_resolve_field_prefers_labels_then_ancestor_label_then_config():
    run = record(
        "r",
        "G",
        labels={
            "training.optimizer": {"name": "sgd", "learning_rate": 0.2},
            "model.activation": "relu",
        },
        config={"model": {"activation": {"name": "relu"}, "hidden": [50, 30]}},
    )
    assert resolve_field(run, "training.optimizer.learning_rate") == 0.2
    assert resolve_field(run, "model.activation") == "relu"
    assert resolve_field(run, "model.activation.name") == "relu"  # a string label: from config
    assert resolve_field(run, "model.hidden.1") == 30
    assert resolve_field(run, "model.nothing") is None


def test_a_model_without_hidden_layers_has_no_hidden_activation():
    config = {"model": {"activation": {"name": "relu"}, "hidden": [], "output": "softmax"}}
    run = record("r", "G", labels={"model.activation": "relu"}, config=config)
    assert resolve_field(run, "model.activation.name") is None  # shown as "-"
    assert resolve_field(run, "model.activation") is None
    assert resolve_field(run, "model.output") == "softmax"


# --- select_best ---

LR = "training.optimizer.learning_rate"
SWEEP = {  # optimiser -> learning rate -> val_accuracy of repetitions 0..3
    "sgd": {
        0.1: [0.90, 0.91, 0.92, 0.93],  # mean 0.915
        0.11: [0.95, 0.96, 0.94, 0.93],  # mean 0.945: best; best repetition 1
        0.12: [0.97, 0.10, 0.96, 0.95],  # the best single run, but mean 0.745
    },
    "adam": {
        0.1: [0.80, 0.80, 0.80, 0.80],  # mean 0.80
        0.11: [0.99, math.nan, 0.99, 0.99],  # one NaN: ranks after every all-finite lr
        0.12: [0.85, 0.87, 0.87, 0.81],  # mean 0.85: best; repetitions 1 and 2 tie
    },
}


def sweep_runs() -> list[RunRecord]:
    """Two optimisers x three learning rates x four repetitions, as in optimizer-sweep."""
    runs, order = [], 0
    for opt, by_lr in SWEEP.items():
        for lr, accs in by_lr.items():
            for rep, acc in enumerate(accs):
                labels = {"model.hidden": [50, 30], "training.optimizer": {"name": opt}, LR: lr}
                runs.append(
                    record(
                        f"{opt}-{lr}-{rep}",
                        f"{opt}-{lr}",
                        order=order,
                        repetition=rep,
                        status="diverged" if math.isnan(acc) else "done",
                        labels=labels,
                        variant=f"exp1 {opt}",
                        val_accuracy=acc,
                        val_loss=1.0 - acc + 0.01 * rep,
                    )
                )
                order += 1
    return runs


def test_select_best_picks_best_mean_lr_then_best_repetition():
    sgd, adam = select_best(sweep_runs(), "val_accuracy", over=LR)
    assert (sgd.variant, sgd.value, sgd.best_run.run_id) == ("exp1 sgd", 0.11, "sgd-0.11-1")
    assert sgd.stats.mean == pytest.approx(0.945)
    assert sgd.stats.std == pytest.approx(math.sqrt(0.0005 / 3))
    assert sgd.labels == {"model.hidden": [50, 30], "training.optimizer": {"name": "sgd"}}
    assert [c.value for c in sgd.candidates] == [0.1, 0.11, 0.12]
    assert sgd.mode == "max"
    # the NaN repetition keeps lr 0.11 (mean 0.99 over its finite runs) from winning
    assert (adam.value, adam.best_run.run_id) == (0.12, "adam-0.12-1")  # tie -> repetition 1
    assert adam.candidates[1].stats.n_nonfinite == 1


def test_select_best_min_mode_and_another_repetition_metric():
    sgd, adam = select_best(sweep_runs(), "val_loss", over=LR, mode="min")
    assert (sgd.value, adam.value) == (0.11, 0.12)
    # best repetition by val_accuracy (auto: max) rather than val_loss
    sgd, _ = select_best(sweep_runs(), "val_loss", over=LR, best_repetition_by="val_accuracy")
    assert sgd.best_run.run_id == "sgd-0.11-1"
    assert sgd.best_repetition_by == "val_accuracy"


def test_select_best_ties_go_to_the_first_value_and_lowest_repetition():
    runs = [
        record("a0", "a", order=0, repetition=0, labels={LR: 0.1}, val_accuracy=0.5),
        record("a1", "a", order=1, repetition=1, labels={LR: 0.1}, val_accuracy=0.7),
        record("b0", "b", order=2, repetition=0, labels={LR: 0.2}, val_accuracy=0.7),
        record("b1", "b", order=3, repetition=1, labels={LR: 0.2}, val_accuracy=0.5),
    ]
    (sel,) = select_best(runs, "val_accuracy", over=LR)
    assert (sel.value, sel.best_run.run_id) == (0.1, "a1")


def test_select_best_finds_over_inside_a_labelled_ancestor_and_nan_never_wins():
    def sgd(lr: float) -> dict[str, Any]:
        return {"training.optimizer": {"name": "sgd", "learning_rate": lr}}

    runs = [
        record("x", "x", order=0, labels=sgd(0.1), status="diverged", val_accuracy=math.nan),
        record("y", "y", order=1, labels=sgd(0.2), val_accuracy=0.3),
    ]
    (sel,) = select_best(runs, "val_accuracy", over=LR)
    assert (sel.value, sel.best_run.run_id) == (0.2, "y")
    assert sel.labels == {"training.optimizer": {"name": "sgd"}}
    (none,) = select_best(runs[:1], "val_accuracy", over=LR)
    assert (none.value, none.stats, none.best_run) == (None, None, None)


def test_select_best_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        select_best(sweep_runs(), "val_accuracy", over=LR, mode="best")  # type: ignore[arg-type]


# --- cross-validation ---


def cv_runs() -> list[RunRecord]:
    """Two architectures x two activations x three folds, plus one refit."""
    scores = {
        ("A1", "sigmoid"): [0.96, 0.97, 0.98],
        ("A1", "relu"): [0.98, 0.98, 0.99],
        ("A2", "sigmoid"): [0.95, 0.96, 0.97],
        ("A2", "relu"): [0.97, 0.96, 0.95],  # equal mean: shares rank 1, sigmoid comes first
    }
    runs, order = [], 0
    for (arch, act), folds in scores.items():
        for index in (2, 0, 1):  # stored out of fold order
            runs.append(
                record(
                    f"{arch}-{act}-{index}",
                    f"{arch}-{act}-{index}",
                    order=order,
                    labels={
                        "model.hidden": arch,
                        "model.activation": act,
                        "data.validation": {"kind": "fold", "folds": 3, "index": index},
                    },
                    role="cv-fold",
                    config={"data": {"validation": {"kind": "fold", "folds": 3, "index": index}}},
                    val_accuracy=folds[index],
                )
            )
            order += 1
    runs.append(
        record(
            "A1-refit",
            "A1-refit",
            order=order,
            role="cv-refit",
            labels={"model.hidden": "A1", "model.activation": "relu"},
            test_accuracy=0.985,
        )
    )
    return runs


def test_cv_summary_population_std_ranks_and_refit():
    rows = cv_summary(cv_runs(), "val_accuracy", params=["model.activation"])
    assert [(r.configuration["model.hidden"], r.setting) for r in rows] == [
        ("A1", {"model.activation": "sigmoid"}),
        ("A1", {"model.activation": "relu"}),
        ("A2", {"model.activation": "sigmoid"}),
        ("A2", {"model.activation": "relu"}),
    ]
    a1_sigmoid, a1_relu, a2_sigmoid, a2_relu = rows
    assert a1_sigmoid.stats.mean == pytest.approx(0.97)
    assert a1_sigmoid.stats.std == pytest.approx(0.01 * math.sqrt(2 / 3))  # ddof=0
    assert a1_sigmoid.stats.ddof == 0
    assert a1_sigmoid.folds == (0, 1, 2)
    assert a1_sigmoid.scores == (0.96, 0.97, 0.98)
    assert [(r.rank, r.best) for r in rows] == [(2, False), (1, True), (1, True), (1, False)]
    assert a1_relu.refit is not None and a1_relu.refit.run_id == "A1-refit"
    assert a2_relu.refit is None and a2_sigmoid.stats.mean == pytest.approx(0.96)


def test_cv_summary_without_params_picks_one_best_per_variant():
    rows = cv_summary(cv_runs())
    assert [r.best for r in rows] == [False, True, False, False]  # one variant (None): one best
    assert rows[0].configuration == {}
    assert rows[0].setting == {"model.hidden": "A1", "model.activation": "sigmoid"}
