"""Study files: parsing, defaults, and one-line errors with their line numbers."""

import json
from pathlib import Path

import pytest

from mnistlab.errors import SpecError
from mnistlab.models import MLPSpec
from mnistlab.studies.expand import expand
from mnistlab.studies.loading import load_study, parse_study
from mnistlab.studies.spec import (
    KNOWN_ANALYSES,
    RepetitionsSpec,
    config_path_error,
    study_json_schema,
)
from mnistlab.training.spec import TrainSpec

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "study.schema.json"


def _error(text: str) -> str:
    """The SpecError's problems (one a line in the message), joined by '; ' for comparison."""
    with pytest.raises(SpecError) as info:
        parse_study(text, "s.yaml")
    return "; ".join(str(info.value).splitlines())


# --- what a study file says ---


def test_a_name_alone_takes_every_default():
    spec = parse_study("name: tiny\n", "s.yaml")
    assert (spec.name, spec.description, spec.seed) == ("tiny", "", 0)
    assert spec.model == MLPSpec() and spec.training == TrainSpec()
    assert spec.grid == {} and spec.variants == [] and spec.analyses == []
    assert spec.repetitions == RepetitionsSpec(count=1, mode="fresh", chain=None)
    assert spec.select is None and spec.cross_validation is None and spec.table is None


def test_repetitions_are_a_count_or_a_mapping():
    assert parse_study("name: a\nrepetitions: 4\n").repetitions.count == 4
    spec = parse_study(
        "name: a\ngrid: {training.epochs: [1, 2]}\n"
        "repetitions: {count: 3, mode: continue, chain: [training.epochs]}\n"
    )
    assert spec.repetitions == RepetitionsSpec(count=3, mode="continue", chain=["training.epochs"])


def test_analyses_are_bare_names_or_mappings():
    spec = parse_study("name: a\nanalyses: [curves, {name: roc, options: {runs: best}}]\n")
    assert [(a.name, a.options) for a in spec.analyses] == [
        ("curves", {}),
        ("roc", {"runs": "best"}),
    ]
    assert len(set(KNOWN_ANALYSES)) == len(KNOWN_ANALYSES)


def test_select_resolves_auto_as_keras():
    text = "name: a\ngrid: {training.optimizer.learning_rate: [0.1, 0.2]}\nselect: "
    over = "over: training.optimizer.learning_rate"
    acc = parse_study(text + "{metric: val_accuracy, " + over + "}\n")
    assert (acc.select.direction, acc.select.repetition_metric) == ("max", "val_accuracy")
    loss = parse_study(text + "{metric: val_loss, best_repetition_by: loss, " + over + "}\n")
    assert (loss.select.direction, loss.select.repetition_metric) == ("min", "loss")


def test_load_study_reads_the_file_and_names_it(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("name: w\ngrid: {model.hidden: [[2], [3]]}\n")
    assert load_study(path).grid == {"model.hidden": [[2], [3]]}
    with pytest.raises(SpecError, match=r"^.*missing\.yaml: cannot read the study file"):
        load_study(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "path",
    [
        "model.hidden",
        "model.activation.negative_slope",  # into a per-layer union
        "training.optimizer.momentum",  # a field of some optimizers only
        "training.early_stopping.patience",  # into an optional spec
        "data.validation.n",
        "data",
    ],
)
def test_config_paths_into_unions_and_optionals_exist(path):
    assert config_path_error(path) is None


def test_every_reference_study_loads():
    files = sorted((ROOT / "studies").glob("*.yaml"))
    if not files:
        pytest.skip("no study files under studies/ in this checkout")
    for file in files:
        assert expand(load_study(file), lambda data: "fp"), file.name


def test_the_committed_schema_is_current():
    regenerate = (
        '.venv/bin/python -c "import json; from mnistlab.studies import study_json_schema as s; '
        "open('docs/study.schema.json', 'w').write(json.dumps(s(), indent=2) + chr(10))\""
    )
    assert SCHEMA.is_file(), f"docs/study.schema.json is missing; write it with {regenerate}"
    assert json.loads(SCHEMA.read_text()) == study_json_schema(), f"stale; rewrite: {regenerate}"


# --- one-line errors ---


def test_invalid_yaml_gives_line_and_column():
    assert _error("name: a\ngrid:\n  model.hidden: [[1]\n") == (
        "s.yaml: line 4:1: invalid YAML: expected ',' or ']', but got '<stream end>'"
    )


def test_unknown_key_and_wrong_type_are_listed_in_file_order():
    assert _error("name: a\ngird: {}\nseed: abc\n") == (
        "s.yaml: line 2: gird: Extra inputs are not permitted; "
        "s.yaml: line 3: seed: Input should be a valid integer, unable to parse string as an "
        "integer, got 'abc'"
    )


def test_name_must_be_a_slug():
    assert _error("name: My Study\n") == (
        "s.yaml: line 1: name: must be a slug: lowercase letters, digits, '-' and '_', "
        "starting with a letter or digit, got 'My Study'"
    )


def test_not_a_mapping_or_empty():
    assert _error("- a\n- b\n") == (
        "s.yaml: line 1: a study is a mapping (name: ..., grid: ...), got a list"
    )
    assert _error("") == "s.yaml: the study is empty; it needs at least a name"


def test_unknown_grid_path_names_the_part_and_the_valid_keys():
    assert _error("name: a\ngrid:\n  modle.hidden: [[1]]\n") == (
        "s.yaml: line 3: grid.modle.hidden: 'modle' is not a field of the run configuration "
        "(did you mean 'model'?); valid: data, model, training"
    )
    message = _error("name: a\ngrid:\n  training.optimizer.lr: [0.1]\n")
    assert message.startswith(
        "s.yaml: line 3: grid.training.optimizer.lr: 'lr' is not a field of training.optimizer; "
        "valid: name, learning_rate, "
    )
    assert ", momentum, " in message and ", rho, " in message


def test_a_path_below_a_value_is_an_error():
    assert _error("name: a\nvariants:\n  - {name: x, set: {model.hidden.units: 3}}\n") == (
        "s.yaml: line 3: variants[0].set.model.hidden.units: model.hidden is a value, "
        "it has no field 'units'"
    )


def test_empty_grid_list():
    assert _error("name: a\ngrid:\n  model.hidden: []\n") == (
        "s.yaml: line 3: grid.model.hidden: a grid key needs at least one value; "
        "remove the key to keep the default"
    )


def test_variant_name_used_twice():
    text = "name: a\nvariants:\n  - {name: v, set: {model.hidden: [1]}}\n  - name: v\n"
    assert _error(text) == "s.yaml: line 4: variants[1].name: 'v' is used twice (also variants[0])"


def test_a_grid_value_that_makes_a_run_invalid_names_the_entry_and_field():
    assert _error("name: a\ngrid:\n  model.dropout: [0.5,\n    1.5]\n") == (
        "s.yaml: line 4: grid.model.dropout[1]: gives an invalid run: "
        "model.dropout: Input should be less than 1, got 1.5"
    )


def test_a_variant_value_that_makes_a_run_invalid_names_the_variant():
    text = (
        "name: a\n"
        "variants:\n"
        "  - name: adam\n"
        "    set:\n"
        "      training.optimizer: adam\n"
        "      training.optimizer.momentum: 0.9\n"
    )
    assert _error(text) == (
        "s.yaml: line 6: variants[0].set.training.optimizer.momentum: gives an invalid run "
        "(variant 'adam', training.optimizer=\"adam\"): training.optimizer.adam.momentum: "
        "Extra inputs are not permitted, got 0.9"
    )


def test_a_grid_value_that_breaks_a_per_layer_default():
    text = "name: a\nmodel: {dropout: [0.1]}\ngrid:\n  model.hidden: [[1], [1, 2]]\n"
    assert _error(text) == (
        "s.yaml: line 4: grid.model.hidden[1]: gives an invalid run: model.dropout: "
        "needs one entry per hidden layer: 1 given for 2 hidden layers [1, 2]"
    )


def test_a_key_given_twice():
    assert _error("name: a\ngrid:\n  model.hidden: [[1]]\n  model.hidden: [[2]]\n") == (
        "s.yaml: line 4: grid.model.hidden: key given twice (first on line 3)"
    )


def test_a_set_path_the_grid_would_override():
    text = (
        "name: a\ngrid: {model.hidden: [[1]]}\nvariants:\n  - {name: v, set: {model.hidden: [3]}}\n"
    )
    assert _error(text) == (
        "s.yaml: line 4: variants[0].set.model.hidden: model.hidden is also a key of grid, "
        "which would override it; keep one"
    )


def test_select_over_must_be_a_grid_path():
    text = "name: a\ngrid: {model.hidden: [[1]]}\nselect: {metric: loss, over: training.epochs}\n"
    assert _error(text) == (
        "s.yaml: line 3: select.over: training.epochs is not a grid path; "
        "select needs one of: model.hidden"
    )


def test_chain_paths_must_be_grid_paths_and_need_continue():
    text = "name: a\ngrid: {training.epochs: [1]}\nrepetitions: {count: 2, "
    assert _error(text + "mode: continue, chain: [training.batch_size]}\n") == (
        "s.yaml: line 3: repetitions.chain[0]: training.batch_size is not a grid path; "
        "a chain runs through: training.epochs"
    )
    assert _error(text + "chain: [training.epochs]}\n") == (
        "s.yaml: line 3: repetitions: chain is only used with mode: continue"
    )


def test_a_chain_must_keep_its_model():
    text = "name: a\ngrid: {model.hidden: [[1], [2]]}\nrepetitions: {count: 2, mode: continue}\n"
    assert _error(text) == (
        "s.yaml: line 3: repetitions: a continue chain trains one model, but model.hidden=[1] "
        "and model.hidden=[2] differ in model.hidden; give repetitions.chain the grid paths "
        "that may change from run to run (not the model's)"
    )


def test_cross_validation_checks_its_variants_and_paths():
    text = (
        "name: a\n"
        "grid: {model.hidden: [[1]]}\n"
        "variants: [{name: v}]\n"
        "cross_validation:\n"
        "  folds: 3\n"
        "  grid: {data.validation.index: [1], model.hidden: [[2]]}\n"
        "  variants: [v, w]\n"
    )
    assert _error(text) == (
        "s.yaml: line 6: cross_validation.grid.data.validation.index: the folds set "
        "data.validation; search other fields; "
        "s.yaml: line 6: cross_validation.grid.model.hidden: model.hidden is also a grid key "
        "of variant 'v'; search it in one place; "
        "s.yaml: line 7: cross_validation.variants[1]: no variant named 'w'; variants: v"
    )
    assert _error("name: a\ncross_validation: {folds: 1}\n") == (
        "s.yaml: line 2: cross_validation.folds: Input should be greater than or equal to 2, got 1"
    )


def test_table_columns_and_sort():
    text = (
        "name: a\n"
        "table:\n"
        "  columns:\n"
        "    - {title: acc, metric: val_accuracy, field: model.hidden}\n"
    )
    assert _error(text) == "s.yaml: line 4: table.columns[0]: give exactly one of field or metric"
    text = (
        "name: a\n"
        "table:\n"
        "  columns:\n"
        "    - {title: act, field: model.activation.nam}\n"
        "    - {title: run, field: variant}\n"
        "  sort: val_acc\n"
    )
    assert _error(text) == (
        "s.yaml: line 4: table.columns[0].field: 'nam' is not a field of model.activation "
        "(did you mean 'name'?); valid: name, negative_slope, alpha"
    )
    fixed = text.replace("activation.nam}", "activation.name}")
    assert _error(fixed) == (
        "s.yaml: line 6: table.sort: 'val_acc' names no column; use a column's title, metric "
        "or field (act, run)"
    )
    assert parse_study(fixed.replace("val_acc", "-act")).table.sort == "-act"


def test_unknown_analysis_lists_the_known_ones():
    message = _error("name: a\nanalyses: [curves, roc_curve]\n")
    assert message == (
        "s.yaml: line 2: analyses[1].name: unknown analysis, expected one of: "
        f"{', '.join(KNOWN_ANALYSES)}, got 'roc_curve'"
    )
