"""Derived studies: `--set` wins over the file, `--variant` narrows it, under a new name."""

from pathlib import Path

import pytest

from mnistlab.errors import SpecError
from mnistlab.studies import derive_study, expand, parse_study
from mnistlab.studies.derive import MAX_NAME, derived_name, parse_override

STUDY = """\
name: derive-me
data: {dataset: digits, validation: {kind: tail, n: 300}}
model: {hidden: [8]}
training: {optimizer: {name: adam, learning_rate: 0.02}, epochs: 5, batch_size: 64}
grid:
  training.optimizer.learning_rate: [0.01, 0.02, 0.05]
  model.activation: [relu, tanh]
variants:
  - {name: small, set: {model.hidden: [4]}}
  - {name: wide, set: {model.hidden: [32], training.epochs: 9}}
  - {name: sgd, set: {training.optimizer: {name: sgd, learning_rate: 0.1}}, grid: {}}
select: {metric: val_accuracy, over: training.optimizer.learning_rate}
repetitions: 2
"""
STUDIES = Path(__file__).parents[2] / "studies"


def _configs(spec):
    return [run.config for run in expand(spec, fingerprint=lambda data: "fp")]


def test_set_wins_over_the_base_every_variant_and_the_grid():
    spec = parse_study(STUDY)
    derived = derive_study(spec, ["training.epochs=1", "training.optimizer.learning_rate=0.3"])
    configs = _configs(derived)
    # the learning-rate axis collapsed: 2 activations x 2 reps for small and wide, 2 reps sgd
    assert len(configs) == 2 * 2 * 2 + 2
    assert {c.training.epochs for c in configs} == {1}
    assert {c.training.optimizer.learning_rate for c in configs} == {0.3}
    assert {c.training.optimizer.name for c in configs} == {"adam", "sgd"}
    assert derived.select is None  # nothing left to select over
    assert derived.name == "derive-me--epochs-1-learning-rate-0-3"
    assert derived.description.startswith("derive-me with --set training.epochs=1")


def test_variant_keeps_only_the_named_ones_in_file_order():
    spec = parse_study(STUDY)
    derived = derive_study(spec, variants=["sgd", "small"])
    assert [v.name for v in derived.variants] == ["small", "sgd"]
    assert len(_configs(derived)) == 3 * 2 * 2 + 2
    assert derived.name == "derive-me--sgd-small"


def test_a_set_on_a_field_below_a_swept_one_keeps_the_axis():
    swept = STUDY.replace(
        "training.optimizer.learning_rate: [0.01, 0.02, 0.05]",
        "training.optimizer: [adam, rmsprop]",
    )
    spec = parse_study(
        swept.replace("over: training.optimizer.learning_rate", "over: training.optimizer")
    )
    derived = derive_study(spec, ["training.optimizer.learning_rate=0.5"], name="mine")
    configs = _configs(derived)
    assert derived.name == "mine"
    assert {c.training.optimizer.name for c in configs} == {"adam", "rmsprop", "sgd"}
    assert {c.training.optimizer.learning_rate for c in configs} == {0.5}


def test_nothing_asked_returns_the_study_itself():
    spec = parse_study(STUDY)
    assert derive_study(spec) is spec


def test_a_subset_without_kind_takes_the_first_rows():
    derived = derive_study(parse_study(STUDY), ["data.train_subset.n=500"])
    subset = derived.data.train_subset
    assert (subset.kind, subset.n) == ("head", 500)


@pytest.mark.parametrize(
    ("sets", "variants", "message"),
    [
        (["training.epochz=1"], [], "--set training.epochz: 'epochz' is not a field of training"),
        (["training.epochs"], [], "--set 'training.epochs': write PATH=VALUE"),
        (["training.epochs=[1"], [], "--set training.epochs: the value '[1' is not YAML"),
        (["training.epochs=0"], [], "training.epochs: Input should be greater than 0"),
        ([], ["huge"], "--variant 'huge': no such variant in 'derive-me'; variants: 'small',"),
        (["model.hidden.units=3"], [], "--set model.hidden.units: "),
    ],
)
def test_bad_derivations_are_one_line(sets, variants, message):
    with pytest.raises(SpecError) as caught:
        derive_study(parse_study(STUDY), sets, variants)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_parse_override_reads_yaml_values():
    assert parse_override("model.hidden=[64, 32]").value == [64, 32]
    assert parse_override("model.kernel_regularizer={l2: 0.1}").value == {"l2": 0.1}
    assert parse_override("model.activation=relu").value == "relu"


def test_long_names_are_cut_with_a_hash():
    name = derived_name("optimizer-sweep", [], ["a very long variant name " * 5])
    assert len(name) == MAX_NAME and name.startswith("optimizer-sweep--a-very-long")
    assert name != derived_name("optimizer-sweep", [], ["a very long variant name " * 6])


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_study_derives_a_smoke_run(path):
    spec = parse_study(path.read_text(), str(path))
    derived = derive_study(spec, ["training.epochs=1"])
    assert derived.name.startswith(spec.name + "--")
    assert all(run.config.training.epochs == 1 for run in expand(derived, lambda d: "fp"))
