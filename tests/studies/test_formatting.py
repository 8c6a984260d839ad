"""How numbers and configuration values read in a table."""

import math

from mnistlab.studies.formatting import (
    format_delta,
    format_number,
    format_stats,
    format_value,
    metric_title,
)
from mnistlab.studies.stats import Stats


def test_format_value_cases():
    assert format_value([512, 128]) == "512-128"
    assert format_value([]) == "none"
    assert format_value({"name": "relu"}) == "relu"
    assert format_value({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}) == "sgd"
    assert format_value({"name": "random_normal", "mean": 0.0, "stddev": 0.062}) == (
        "random_normal(mean=0, stddev=0.062)"
    )
    assert format_value({"l1": 0.0, "l2": 0.01}) == "l2(0.01)"
    assert format_value({"kind": "tail", "n": 10000}) == "tail(n=10000)"
    assert format_value(None) == "-"
    assert format_value(True) == "true"


def test_numbers_accuracies_in_percent_others_in_four_digits():
    assert format_number("test_accuracy", 0.97851) == "97.85"
    assert format_number("test_loss", 0.071234) == "0.07123"
    assert format_number("loss", math.inf) == "inf" and format_number("loss", None) == "nan"
    assert format_delta("val_accuracy", 0.0123) == "+1.23" and format_delta("loss", math.nan) == "-"
    assert metric_title("val_accuracy") == "val acc (%)" and metric_title("loss") == "train loss"


def test_stats_cells_say_how_many_repetitions_were_not_finite():
    stats = Stats(0.0612, 0.0044, 0.058, 0.066, n=2, ci95=(0.02, 0.1), n_nonfinite=1)
    assert format_stats("test_loss", stats) == "0.0612 ± 0.0044 (1 non-finite)"
