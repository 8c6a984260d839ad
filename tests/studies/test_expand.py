"""Expansion: grid order, variants, seeds, continue chains, stable ids, cross-validation folds."""

import pytest

from mnistlab.errors import SpecError
from mnistlab.studies.expand import expand, refit_run, refit_runs
from mnistlab.studies.loading import parse_study
from mnistlab.studies.records import RunRecord
from mnistlab.studies.spec import StudySpec

TINY = "name: tiny\nmodel: {hidden: [4]}\ntraining: {epochs: 1}\nrepetitions: 2\n"


def _runs(text: str, fingerprint: str = "fp"):
    return expand(parse_study(text, "s.yaml"), lambda data: fingerprint)


def _ids(text: str) -> list[str]:
    return [r.run_id for r in _runs(text)]


# --- product, variants, repetitions ---


def test_grid_is_the_product_in_file_order_last_key_fastest():
    runs = _runs(
        "name: g\ngrid:\n  model.hidden: [[4], [8, 2]]\n  training.optimizer: [sgd, adam, nadam]\n"
    )
    assert [(r.labels["model.hidden"], r.labels["training.optimizer"]) for r in runs] == [
        ([4], "sgd"),
        ([4], "adam"),
        ([4], "nadam"),
        ([8, 2], "sgd"),
        ([8, 2], "adam"),
        ([8, 2], "nadam"),
    ]
    assert [r.order for r in runs] == [0, 1, 2, 3, 4, 5]
    assert [r.config.training.optimizer.name for r in runs[:3]] == ["sgd", "adam", "nadam"]
    assert runs[3].config.model.hidden == (8, 2)
    assert {r.variant for r in runs} == {None} and {r.role for r in runs} == {"train"}
    assert len({r.run_id for r in runs}) == 6 and len({r.group for r in runs}) == 6


def test_variants_cross_the_grid_and_may_replace_it():
    runs = _runs(
        "name: v\n"
        "grid: {model.hidden: [[4], [8]]}\n"
        "variants:\n"
        "  - {name: sigmoid, set: {model.activation: sigmoid}}\n"
        "  - name: softmax regression\n"
        "    set: {model.hidden: []}\n"
        "    grid: {}\n"
        "  - name: lr sweep\n"
        "    grid: {training.optimizer.learning_rate: [0.1, 0.2]}\n"
    )
    assert [(r.variant, r.labels) for r in runs] == [
        ("sigmoid", {"model.activation": "sigmoid", "model.hidden": [4]}),
        ("sigmoid", {"model.activation": "sigmoid", "model.hidden": [8]}),
        ("softmax regression", {"model.hidden": []}),
        ("lr sweep", {"training.optimizer.learning_rate": 0.1}),
        ("lr sweep", {"training.optimizer.learning_rate": 0.2}),
    ]
    assert runs[0].config.model.activation.name == "sigmoid"
    assert runs[2].config.model.hidden == ()
    assert runs[4].config.model.hidden == (128,)  # the study default: the grid was replaced
    assert runs[4].config.training.optimizer.learning_rate == 0.2


def test_a_bare_name_gets_its_defaults_before_a_deeper_path():
    runs = _runs(
        "name: o\n"
        "grid:\n"
        "  training.optimizer.learning_rate: [0.5]\n"  # deeper, written first: applied last
        "  training.optimizer: [sgd, {name: rmsprop, momentum: 0.9}]\n"
    )
    sgd, rmsprop = (r.config.training.optimizer for r in runs)
    assert (sgd.name, sgd.learning_rate, sgd.momentum) == ("sgd", 0.5, 0.0)
    assert (rmsprop.learning_rate, rmsprop.momentum, rmsprop.rho) == (0.5, 0.9, 0.9)


def test_a_path_into_a_null_spec_builds_it():
    (run,) = _runs("name: e\nvariants: [{name: v, set: {training.early_stopping.patience: 2}}]\n")
    stopping = run.config.training.early_stopping
    assert (stopping.monitor, stopping.patience) == ("val_loss", 2)


def test_repetitions_use_the_same_seeds_for_every_configuration():
    runs = _runs("name: r\nseed: 7\nrepetitions: 3\ngrid: {model.hidden: [[4], [8]]}\n")
    assert [(r.seed, r.repetition) for r in runs] == [(7, 0), (8, 1), (9, 2)] * 2
    assert len({r.group for r in runs[:3]}) == 1 and runs[0].group != runs[3].group
    assert len({r.run_id for r in runs}) == 6
    assert {r.parent for r in runs} == {None}


# --- continue chains ---

CHAIN = (
    "name: c\n"
    "grid:\n"
    "  model.hidden: [[4], [8]]\n"
    "  training.optimizer.learning_rate: [{lrs}]\n"
    "repetitions: {{count: 2, mode: continue, chain: [training.optimizer.learning_rate]}}\n"
)


def test_continue_chains_run_through_the_grid_then_the_repetitions():
    runs = _runs(CHAIN.format(lrs="0.1, 0.2"))
    lr = [(r.labels["model.hidden"], r.labels["training.optimizer.learning_rate"]) for r in runs]
    assert [(*x, r.repetition) for x, r in zip(lr, runs, strict=True)] == [
        ([4], 0.1, 0),
        ([4], 0.1, 1),
        ([4], 0.2, 0),
        ([4], 0.2, 1),
        ([8], 0.1, 0),
        ([8], 0.1, 1),
        ([8], 0.2, 0),
        ([8], 0.2, 1),
    ]
    ids = [r.run_id for r in runs]
    assert [r.parent for r in runs] == [None, *ids[0:3], None, *ids[4:7]]  # one chain per width
    assert [r.seed for r in runs] == [0, 1] * 4


def test_a_chains_ids_follow_its_history():
    base = _ids(CHAIN.format(lrs="0.1, 0.2"))
    appended = _ids(CHAIN.format(lrs="0.1, 0.2, 0.3"))
    assert appended[:4] == base[:4] and appended[6:10] == base[4:]  # the past is unchanged
    prepended = _ids(CHAIN.format(lrs="0.05, 0.1, 0.2"))
    assert not set(prepended) & set(base)  # every run now continues a different history


def test_a_chains_first_run_is_the_fresh_run():
    fresh = _runs("name: c\ngrid: {training.optimizer.learning_rate: [0.1, 0.2]}\nrepetitions: 2\n")
    chained = _runs(
        "name: c\ngrid: {training.optimizer.learning_rate: [0.1, 0.2]}\n"
        "repetitions: {count: 2, mode: continue}\n"
    )
    assert chained[0].run_id == fresh[0].run_id  # same config, seed, no parent
    assert [r.run_id for r in chained[1:]] != [r.run_id for r in fresh[1:]]
    assert [r.group for r in chained] == [r.group for r in fresh]


# --- identity ---


def test_known_ids_for_a_tiny_study():
    runs = _runs(TINY, fingerprint="abc")
    assert [(r.run_id, r.group, r.seed) for r in runs] == [
        ("49d3bb5e6d7d2cc5", "8efd7f4fb3b30fcf", 0),
        ("1cf5f606a41791aa", "8efd7f4fb3b30fcf", 1),
    ]


def test_ids_do_not_depend_on_key_order_or_parse():
    reordered = "repetitions: 2\ntraining: {epochs: 1}\nmodel: {hidden: [4]}\nname: tiny\n"
    assert _ids(TINY) == _ids(TINY) == _ids(reordered)
    spec = parse_study(TINY)
    again = StudySpec.model_validate_json(spec.model_dump_json())
    assert [r.run_id for r in expand(again, lambda d: "fp")] == _ids(TINY)


def test_defaults_and_fingerprints_change_ids_new_grid_values_do_not():
    grid = "name: d\ngrid:\n  model.hidden: [[4], [8]]\n"
    base = _ids(grid)
    assert _ids(grid.replace("[[4], [8]]", "[[4], [8], [16]]"))[:2] == base
    assert not set(_ids(grid + "training: {epochs: 2}\n")) & set(base)
    assert not set(r.run_id for r in _runs(grid, fingerprint="other")) & set(base)


def test_the_data_location_is_not_part_of_the_id():
    text = "name: p\ndata: {{dataset: mnist, path: {}}}\n"
    assert _ids(text.format("/data/a")) == _ids(text.format("/elsewhere/b"))


def test_the_fingerprint_is_asked_once_per_data_spec():
    asked = []
    spec = parse_study("name: f\nrepetitions: 3\ngrid: {data.scaling: [divide-255, minmax]}\n")
    expand(spec, lambda data: asked.append(data.scaling) or data.scaling)
    assert asked == ["divide-255", "minmax"]


def test_variants_resolving_to_one_configuration_keep_their_own_runs():
    one = "name: x\nvariants:\n  - {name: exp2 sgd, set: {training.optimizer: sgd}}\n"
    two = one + "  - {name: exp3 sgd, set: {training.optimizer: {name: sgd}}}\n"
    first, second = _runs(two)
    assert first.config == second.config and first.run_id != second.run_id
    assert first.group != second.group and first.run_id == _ids(one)[0]


def test_a_value_repeated_in_one_grid_is_an_error():
    with pytest.raises(SpecError) as info:
        _runs("name: x\ngrid:\n  model.hidden: [[4], [4]]\n")
    assert str(info.value) == (
        "s.yaml: line 3: grid.model.hidden[1]: model.hidden=[4] gives the same run as "
        "model.hidden=[4]; drop one"
    )


def test_expand_checks_a_study_built_in_python():
    spec = StudySpec(name="py", grid={"model.hiden": [[4]]})
    with pytest.raises(SpecError, match=r"^py: grid\.model\.hiden: 'hiden' is not a field"):
        expand(spec, lambda d: "fp")


# --- cross-validation ---

CV = (
    "name: cv\n"
    "data: {validation: {kind: test}}\n"
    "variants:\n"
    "  - {name: a1, set: {model.hidden: [8, 4], model.activation: relu}}\n"
    "  - {name: a2, set: {model.hidden: [16], model.activation: relu}}\n"
    "  - {name: baseline, set: {model.hidden: []}}\n"
    "grid: {training.optimizer: [adam]}\n"
    "repetitions: 2\n"
    "cross_validation:\n"
    "  folds: 3\n"
    "  grid: {model.activation: [sigmoid, relu]}\n"
    "  variants: [a1, a2]\n"
)


def test_cross_validation_adds_one_run_per_configuration_setting_and_fold():
    runs = _runs(CV)
    train = [r for r in runs if r.role == "train"]
    folds = [r for r in runs if r.role == "cv-fold"]
    assert (len(train), len(folds)) == (3 * 2, 2 * 2 * 3)  # 2 configurations x 2 settings x 3
    assert runs[: len(train)] == train  # the folds come after every train run
    assert [
        (r.variant, r.labels["model.activation"], r.labels["data.validation.index"])
        for r in folds[:6]
    ] == [
        ("a1", "sigmoid", 0),
        ("a1", "sigmoid", 1),
        ("a1", "sigmoid", 2),
        ("a1", "relu", 0),
        ("a1", "relu", 1),
        ("a1", "relu", 2),
    ]
    validation = [r.config.data.validation for r in folds[:3]]
    assert [(v.kind, v.folds, v.index) for v in validation] == [("fold", 3, i) for i in range(3)]
    assert folds[0].config.model.activation.name == "sigmoid"
    assert {(r.seed, r.repetition, r.parent) for r in folds} == {(0, 0, None)}
    assert folds[0].labels == {
        "model.hidden": [8, 4],
        "model.activation": "sigmoid",
        "training.optimizer": "adam",
        "data.validation.index": 0,
    }


def test_refit_run_trains_the_chosen_setting_on_all_training_rows():
    spec = parse_study(CV)
    runs = expand(spec, lambda d: "fp")
    fold = next(r for r in runs if r.role == "cv-fold" and r.variant == "a2")
    refit = refit_run(spec, fold, {"model.activation": "sigmoid"}, lambda d: "fp")
    assert (refit.role, refit.variant, refit.seed, refit.parent) == ("cv-refit", "a2", 0, None)
    assert refit.config.data.validation.kind == "test"
    assert refit.config.model.activation.name == "sigmoid"
    assert refit.labels == {
        "model.hidden": [16],
        "model.activation": "sigmoid",
        "training.optimizer": "adam",
    }
    assert refit.order == len(runs) + 1  # after every expanded run, a2 second
    again = refit_run(spec, fold, {"model.activation": "sigmoid"}, lambda d: "fp")
    assert again.run_id == refit.run_id
    relu = refit_run(spec, fold, {"model.activation": "relu"}, lambda d: "fp")
    train = next(r for r in runs if r.variant == "a2" and r.role == "train")
    assert relu.config == train.config and relu.run_id != train.run_id  # the role is hashed
    with pytest.raises(SpecError, match="a refit needs exactly the paths"):
        refit_run(spec, fold, {"model.hidden": [2]}, lambda d: "fp")


def _record(run, accuracy):
    return RunRecord(
        study=run.study,
        run_id=run.run_id,
        group=run.group,
        status="done",
        config=run.config.model_dump(mode="json"),
        seed=run.seed,
        repetition=run.repetition,
        labels=run.labels,
        variant=run.variant,
        parent=run.parent,
        role=run.role,
        order=run.order,
        metrics={"val_accuracy": accuracy},
        seconds=1.0,
        error=None,
    )


def test_refit_runs_refit_the_best_mean_fold_score_per_configuration():
    spec = parse_study(CV)
    runs = expand(spec, lambda d: "fp")
    score = {
        ("a1", "sigmoid"): 0.9,
        ("a1", "relu"): 0.8,
        ("a2", "sigmoid"): 0.7,
        ("a2", "relu"): 0.95,
    }
    records = [
        _record(
            r,
            score[(r.variant, r.labels["model.activation"])]
            + 0.01 * r.labels["data.validation.index"],
        )
        for r in runs
        if r.role == "cv-fold"
    ]
    refits = refit_runs(spec, records, lambda d: "fp")
    assert [(r.variant, r.labels["model.activation"], r.order) for r in refits] == [
        ("a1", "sigmoid", len(runs)),
        ("a2", "relu", len(runs) + 1),
    ]
    assert (
        refit_runs(spec.model_copy(update={"cross_validation": None}), records, lambda d: "fp")
        == []
    )


def test_same_configuration_in_two_studies_has_two_ids():
    other = TINY.replace("name: tiny", "name: other")
    assert not set(_ids(TINY)) & set(_ids(other))


def test_a_variant_may_draw_its_own_seeds():
    text = (
        "name: s\nrepetitions: 2\nvariants: [{name: a, set: {}}, {name: b, set: {}, seed: 100}]\n"
    )
    runs = _runs(text, fingerprint="fp")
    assert [(r.variant, r.seed) for r in runs] == [("a", 0), ("a", 1), ("b", 100), ("b", 101)]


def test_augmentation_changes_ids_only_when_set():
    base = _ids(TINY)
    unset = "training: {epochs: 1, steps_per_epoch: null}"
    assert _ids(TINY.replace("training: {epochs: 1}", unset)) == base
    augmented = _ids(TINY.replace("epochs: 1}", "epochs: 1, augment: {rotation_range: 5}}"))
    assert not set(augmented) & set(base)
