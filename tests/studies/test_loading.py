"""Safe study loading and the checks `run` and `check` share: one line per problem."""

import pytest

from mnistlab.errors import SpecError
from mnistlab.studies.expand import study_configs
from mnistlab.studies.feasibility import (
    DEFAULT_MAX_RUNS,
    count_planned,
    long_training_warnings,
    model_size,
)
from mnistlab.studies.loading import (
    MAX_DEPTH,
    MAX_STUDY_BYTES,
    load_study,
    parse_study,
)
from mnistlab.studies.runner import count_runs


def error(text: str, **kwargs) -> str:
    with pytest.raises(SpecError) as caught:
        parse_study(text, "s.yaml", **kwargs)
    return str(caught.value)


def test_aliases_are_refused_with_their_line():
    text = "name: s\nx: &a [1, 2]\ndescription: *a\n"
    assert error(text) == (
        "s.yaml: line 3:14: invalid YAML: aliases (*name) are not allowed in a study; "
        "write the value out"
    )


def test_nesting_is_bounded():
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert error(f"name: s\ndescription: {deep}\n") == (
        f"s.yaml: line 2:{14 + MAX_DEPTH - 1}: invalid YAML: nested deeper than 32 levels"
    )


@pytest.mark.parametrize(("char", "code"), [("\x00", "U+0000"), ("\x1b", "U+001B")])
def test_control_characters_are_refused_with_their_line(char, code):
    assert error(f"name: s\n\ndescription: a{char}b\n") == (
        f"s.yaml: line 3: control character {code} is not allowed"
    )


def test_the_file_size_is_bounded_and_named(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"name: s\n" + b"#" * MAX_STUDY_BYTES)
    with pytest.raises(SpecError, match=r"big.yaml: the study file is over the 1 MB limit"):
        load_study(path)


def test_a_file_not_in_utf8_names_its_line(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: s\ndescription: caf\xe9\n")
    with pytest.raises(SpecError, match=r"latin.yaml: line 2: cannot read the study file"):
        load_study(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("training.optimizer.learning_rate", ".inf"),
        ("training.optimizer.learning_rate", "1e999"),
        ("training.optimizer.learning_rate", ".nan"),
        ("model.dropout", "-.inf"),
    ],
)
def test_non_finite_numbers_are_refused(field, value):
    section, *rest = field.split(".")
    text = f"name: s\ngrid: {{{field}: [{value}]}}\n"
    assert "Input should be a finite number" in error(text)
    del section, rest


def test_integers_are_bounded_by_int64():
    assert error("name: s\nseed: 99999999999999999999\n") == (
        "s.yaml: line 2: seed: must be at most 2**63-1 (9223372036854775807), "
        "got 99999999999999999999"
    )


def test_runs_are_counted_before_expanding():
    text = """
name: s
data: {dataset: digits}
grid: {training.batch_size: [8, 16, 32], model.hidden: [[4], [8]]}
variants: [{name: a}, {name: b, grid: {training.epochs: [1, 2]}}]
repetitions: 2
cross_validation: {folds: 3, grid: {model.dropout: [0.0, 0.5]}, variants: [a]}
"""
    spec = parse_study(text)
    assert count_planned(spec) == count_runs(spec) == 6 * 2 + 6 * 2 * 3 + 2 * 2
    assert error(text, max_runs=50) == (
        "s.yaml: line 4: grid: the study expands to 52 runs, over the limit of 50; "
        "shrink the grid or raise --max-runs"
    )
    assert DEFAULT_MAX_RUNS == 100_000


def test_a_huge_grid_is_refused_without_building_it():
    values = ", ".join(str(i) for i in range(1, 2001))
    text = f"name: s\ngrid: {{training.batch_size: [{values}], seed: [{values}]}}\n"
    assert "expands to 4,000,000 runs, over the limit of 100,000" in error(text)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "data: {dataset: digits}\n"
            "model: {kind: cnn, layers: [{layer: dense, units: 8}, flatten]}",
            "s.yaml: line 3: model.layers[0]: (dense) needs a flat input; "
            "put a flatten layer before it",
        ),
        (
            "data: {dataset: digits}\n"
            "model: {kind: cnn, layers: [{layer: conv2d, filters: 2, kernel_size: 9}, flatten]}",
            "s.yaml: line 3: model.layers[0]: (conv2d) a 9x9 window does not fit its 8x8 input "
            "with padding 'valid'",
        ),
        (
            "data: {dataset: digits, validation: {kind: tail, n: 1437}}",
            "s.yaml: line 2: data.validation.n: 1,437 validation rows asked of the 1,437 "
            "training rows, leaving none to train on",
        ),
        (
            "data: {dataset: digits, train_subset: {kind: head, n: 2000}}",
            "s.yaml: line 2: data.train_subset.n: 2,000 rows asked of the 1,437 there are",
        ),
        (
            "data: {dataset: digits, test_subset: {kind: balanced, per_class: 40}}",
            "s.yaml: line 2: data.test_subset.per_class: 40 rows of each of 10 classes is 400 "
            "rows, more than the 360 there are",
        ),
        (
            "data: {dataset: digits, features: [{kind: pca, n_components: 65}]}",
            "s.yaml: line 2: data.features[0].n_components: 65 components asked of 64 features",
        ),
        (
            "data: {dataset: digits, train_subset: {kind: head, n: 50}}\n"
            "training: {batch_size: 64}",
            "s.yaml: line 3: training.batch_size: 64 is more than the 50 training rows of a run",
        ),
    ],
)
def test_what_a_run_would_refuse_is_refused_by_loading(extra, message):
    assert error(f"name: s\n{extra}\n") == message


def test_a_grid_value_is_named_with_its_run():
    grid = "{data.validation: [{kind: head, n: 10}, {kind: head, n: 5000}]}"
    text = f"name: s\ndata: {{dataset: digits}}\ngrid: {grid}\n"
    assert error(text).endswith(
        'leaving none to train on (data.validation={"kind":"head","n":5000})'
    )


def test_a_model_over_the_memory_is_refused_with_the_figures():
    message = error("name: s\nmodel: {hidden: [1000000000]}\n")
    assert message.startswith(
        "s.yaml: line 2: model.hidden: the model has 795,000,000,010 parameters and needs about "
        "16,284.0 GB to train at batch size 32, over the "
    )
    assert message.endswith(" GB of memory available")


def test_model_sizes_count_keras_parameters():
    mlp = parse_study("name: s\nmodel: {hidden: [32]}\n")
    cnn = parse_study(
        "name: s\nmodel: {kind: cnn, layers: [{layer: conv2d, filters: 4, kernel_size: 3}, "
        "{layer: max_pool2d, pool_size: 2}, flatten]}\n"
    )
    assert model_size(study_configs(mlp)[0][0]).params == 785 * 32 + 33 * 10  # type: ignore[union-attr]
    # conv 3*3*1*4+4 = 40; 26x26x4 pooled to 13x13x4 = 676 features; output 677*10
    assert model_size(study_configs(cnn)[0][0]).params == 40 + 6770  # type: ignore[union-attr]


def test_long_training_is_a_warning_with_its_time():
    spec = parse_study("name: s\ndata: {dataset: digits}\ntraining: {epochs: 20000}\n")
    configs = study_configs(spec)[0]
    assert long_training_warnings(configs, seconds_per_epoch=0.36) == [
        "training.epochs: 20,000 epochs is above 10,000: at the measured pace 2 h per run"
    ]
    (rough,) = long_training_warnings(configs)
    assert rough.startswith("training.epochs: 20,000 epochs is above 10,000: roughly ")
    assert long_training_warnings(study_configs(parse_study("name: s\n"))[0]) == []
