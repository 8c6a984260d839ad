"""Confusion matrix, most confused pair, label RMSE and ROC on fixed predictions."""

import numpy as np
import pytest

from mnistlab.analysis.classification import (
    confusion_counts,
    label_rmse,
    most_confused_pair,
    roc_per_class,
    row_normalised,
)


def test_confusion_matrix_of_fixed_predictions():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 1, 0, 1, 2, 2, 2, 0, 2])
    counts = confusion_counts(y_true, y_pred, 3)
    np.testing.assert_array_equal(counts, [[2, 1, 0], [0, 1, 1], [1, 0, 3]])
    np.testing.assert_allclose(row_normalised(counts)[2], [0.25, 0.0, 0.75])


def test_row_normalised_leaves_an_unseen_class_at_zero():
    counts = confusion_counts(np.array([0, 0]), np.array([0, 1]), 3)
    np.testing.assert_allclose(row_normalised(counts), [[0.5, 0.5, 0], [0, 0, 0], [0, 0, 0]])


def test_most_confused_pair_adds_both_directions():
    counts = np.array([[9, 3, 0, 0], [0, 9, 0, 0], [0, 0, 9, 2], [0, 0, 2, 9]])
    assert most_confused_pair(counts) == (2, 3)  # 2 + 2 beats 3 + 0


def test_label_rmse_counts_label_distance():
    assert label_rmse(np.array([1, 2, 3, 4]), np.array([1, 2, 3, 0])) == pytest.approx(2.0)


def test_roc_of_perfect_scores_has_unit_auc():
    y = np.array([0, 1, 2, 0, 1, 2])
    scores = np.eye(3)[y] * 0.8 + 0.1
    roc = roc_per_class(y, scores)
    np.testing.assert_allclose(roc["auc"], [1.0, 1.0, 1.0])
    assert roc["macro"] == pytest.approx(1.0)
    assert roc["micro"] == pytest.approx(1.0)


def test_macro_average_curve_averages_the_classes_tprs():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    scores = np.eye(3)[y] + rng.normal(0, 0.7, (60, 3))
    roc = roc_per_class(y, scores)
    fpr, tpr = roc["macro_curve"]
    assert fpr[0] == 0.0 and fpr[-1] == 1.0 and tpr[-1] == pytest.approx(1.0)
    assert np.all(np.diff(tpr) >= 0)
    # its area is close to the macro AUC (equal up to the interpolation between points)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc["macro"], abs=0.02)
