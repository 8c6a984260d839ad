"""Stacked training: each member of a stack ends exactly where `fit` takes it alone."""

import math

import pytest
import torch

from mnistlab.data import Split
from mnistlab.errors import SpecError
from mnistlab.models import MLPSpec, build_mlp
from mnistlab.models.stacked import stack_models
from mnistlab.runtime import SMALL_GEMM, make_generator
from mnistlab.training.loop import evaluate, fit
from mnistlab.training.optimizers import OPTIMIZERS as RULES
from mnistlab.training.spec import TrainSpec
from mnistlab.training.stacked import (
    GEMM_BOUND,
    SHARED_TRAIN_FIELDS,
    evaluate_stack,
    fit_stack,
    member_orders,
    shared_optimizer_fields,
    stack_pays,
    training_conflicts,
)
from mnistlab.training.state import RunSeeds

D, C = 20, 3
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}
PLAIN = MLPSpec(hidden=(16,))


def _blobs(n: int = 64, seed: int = 0) -> Split:
    """Three Gaussian blobs in D dimensions."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % C
    return Split(x=torch.eye(C, D)[y] * 3 + torch.randn(n, D, generator=g), y=y)


def _net(spec: MLPSpec, seed: int):
    return build_mlp(spec, D, C, make_generator(RunSeeds.from_seed(seed).init))


def _train(**fields) -> TrainSpec:
    return TrainSpec.model_validate({"epochs": 2, "batch_size": 16, **fields})


def _assert_stack_matches_alone(models, specs, seeds, *, val=True):
    """Train each run alone with `fit`, then all as one stack; compare weights and History."""
    train, val_split = _blobs(), (_blobs(seed=1) if val else None)
    alone = [_net(m, s) for m, s in zip(models, seeds, strict=True)]
    expected = [
        fit(net, train, spec, val=val_split, seed=seed, threads=1, engine="autograd")
        for net, spec, seed in zip(alone, specs, seeds, strict=True)
    ]
    stacked = [_net(m, s) for m, s in zip(models, seeds, strict=True)]
    got = fit_stack(stacked, train, specs, val=val_split, seeds=seeds, threads=1)
    for m, (want, have) in enumerate(zip(expected, got, strict=True)):
        ends = ("status", "diverged_at", "stopped_epoch", "best_epoch", "epoch")
        assert [getattr(have, k) for k in ends] == [getattr(want, k) for k in ends], m
        assert have.history.keys() == want.history.keys()
        for key in want.history.keys() - {"time"}:
            assert have.history[key] == pytest.approx(
                want.history[key], rel=1e-5, abs=1e-6, nan_ok=True
            ), (m, key)
        for key, value in alone[m].state_dict().items():
            have_value = stacked[m].state_dict()[key]
            torch.testing.assert_close(have_value, value, **TOLERANCE, equal_nan=True, msg=key)
    return expected


OPTIMIZERS = {
    "sgd": {"name": "sgd"},
    "sgd_momentum": {"name": "sgd", "momentum": 0.9},
    "sgd_nesterov": {"name": "sgd", "momentum": 0.9, "nesterov": True},
    "adam": {"name": "adam"},
    "amsgrad": {"name": "adam", "amsgrad": True},
    "adamw": {"name": "adamw", "weight_decay": 0.05},
    "nadam": {"name": "nadam"},
    "nadam_legacy": {"name": "nadam", "legacy": True},
    "rmsprop": {"name": "rmsprop"},
    "rmsprop_momentum_centered": {"name": "rmsprop", "momentum": 0.5, "centered": True},
    "rmsprop_legacy": {"name": "rmsprop", "legacy": True},
    "adagrad": {"name": "adagrad"},
    "adagrad_legacy": {"name": "adagrad", "legacy": True},
    "adadelta": {"name": "adadelta"},
}


@pytest.mark.parametrize(
    "seeds", [(1, 1, 1, 1), (2, 1, 2, 1), (1, 2, 3, 4)], ids=["shared_batch", "grouped", "gathered"]
)
@pytest.mark.parametrize("optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_each_optimizer_matches_separate_runs_with_per_member_learning_rates(optimizer, seeds):
    rates = (0.01, 0.05, 0.002, 0.02)
    specs = [_train(optimizer={**optimizer, "learning_rate": lr}) for lr in rates]
    _assert_stack_matches_alone([PLAIN] * 4, specs, seeds)


@pytest.mark.parametrize(
    "optimizers",
    [
        [{"name": "sgd", "momentum": m, "learning_rate": 0.05} for m in (0.0, 0.5, 0.9)],
        [{"name": "adam", "beta_1": b1, "beta_2": b2} for b1, b2 in [(0.9, 0.999), (0.8, 0.99)]],
        [{"name": "adamw", "weight_decay": wd, "epsilon": e} for wd, e in [(0, 1e-7), (0.2, 1e-4)]],
        [{"name": "nadam", "beta_1": b} for b in (0.9, 0.7)],
        [{"name": "rmsprop", "rho": r, "momentum": m} for r, m in [(0.9, 0.0), (0.8, 0.5)]],
        [{"name": "adagrad", "initial_accumulator_value": a} for a in (0.1, 0.5)],
        [{"name": "adadelta", "rho": r, "learning_rate": 0.5} for r in (0.95, 0.8)],
    ],
    ids=["sgd", "adam", "adamw", "nadam", "rmsprop", "adagrad", "adadelta"],
)
def test_other_optimizer_hyperparameters_may_differ_per_member(optimizers):
    specs = [_train(optimizer=o) for o in optimizers]
    _assert_stack_matches_alone([PLAIN] * len(specs), specs, list(range(len(specs))))


@pytest.mark.parametrize(
    "seeds", [(4, 4, 4), (4, 5, 4), (4, 5, 6)], ids=["shared_batch", "grouped", "gathered"]
)
def test_dropout_rates_and_masks_per_member(seeds):
    models = [
        MLPSpec(hidden=(16, 12), dropout=rate, input_dropout=inputs)
        for rate, inputs in [(0.0, 0.0), ((0.2, 0.0), 0.1), (0.5, 0.0)]
    ]
    specs = [_train(optimizer={"name": "sgd", "momentum": 0.9, "learning_rate": 0.05})] * 3
    _assert_stack_matches_alone(models, specs, seeds)


def test_output_dropout_on_linear_logits():
    models = [MLPSpec(hidden=(16,), output="linear", output_dropout=r) for r in (0.0, 0.3)]
    _assert_stack_matches_alone(models, [_train(optimizer="adam")] * 2, (1, 2))


@pytest.mark.parametrize("placement", ["before", "after"])
def test_batch_norm_with_per_member_momentum_and_epsilon(placement):
    models = [
        MLPSpec(hidden=(16, 12), batch_norm=placement, batch_norm_momentum=m, batch_norm_epsilon=e)
        for m, e in [(0.99, 1e-3), (0.9, 1e-3), (0.5, 1e-2)]
    ]
    _assert_stack_matches_alone(models, [_train(optimizer="adam")] * 3, (1, 2, 3))


def test_regularisers_per_member():
    models = [
        MLPSpec(hidden=(16,), kernel_regularizer=reg, output_bias_regularizer=out)
        for reg, out in [(None, None), ({"l2": 0.01}, None), ({"l1": 0.01, "l2": 0.1}, {"l2": 1})]
    ]
    specs = [_train(optimizer={"name": "sgd", "learning_rate": 0.05})] * 3
    _assert_stack_matches_alone(models, specs, (1, 1, 1))
    _assert_stack_matches_alone(models, specs, (1, 2, 3))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_exponential_and_constant_schedules_per_member(optimizer):
    schedules = [
        "constant",
        {"kind": "exponential", "decay_steps": 3, "decay_rate": 0.5},
        {"kind": "exponential", "decay_steps": 2, "decay_rate": 0.9, "staircase": True},
    ]
    specs = [
        _train(optimizer={"name": optimizer, "learning_rate": 0.02}, schedule=s, epochs=3)
        for s in schedules
    ]
    expected = _assert_stack_matches_alone([PLAIN] * 3, specs, (1, 2, 3))
    assert expected[1].history["learning_rate"][-1] == pytest.approx(0.02 * 0.5 ** (11 / 3))
    shared = [specs[1]] * 2  # one schedule for all: the rate stays a Python float
    _assert_stack_matches_alone([PLAIN] * 2, shared, (1, 2))


@pytest.mark.parametrize(
    "seeds", [(7, 7, 7), (7, 8, 7), (7, 8, 9)], ids=["shared_batch", "grouped", "gathered"]
)
def test_a_diverged_member_is_frozen_and_the_others_go_on(seeds):
    specs = [
        _train(optimizer={"name": "sgd", "momentum": 0.9, "learning_rate": lr}, epochs=3)
        for lr in (0.05, 1e6, 0.01)
    ]
    expected = _assert_stack_matches_alone([PLAIN] * 3, specs, seeds)
    assert [h.status for h in expected] == ["done", "diverged", "done"]
    assert len(expected[1].epoch) < len(expected[0].epoch) == 3


def test_a_stack_whose_members_all_diverge_ends_early():
    specs = [_train(optimizer={"name": "sgd", "learning_rate": 1e6}, epochs=4)] * 2
    expected = _assert_stack_matches_alone([PLAIN] * 2, specs, (1, 2))
    assert [h.status for h in expected] == ["diverged", "diverged"]


def test_a_stack_of_one_is_fit():
    _assert_stack_matches_alone([MLPSpec(hidden=(8,), dropout=0.2)], [_train()], (5,))


def test_divergence_threshold_is_per_member():
    specs = [_train(epochs=3, divergence_threshold=t) for t in (None, 0.9, 1e9)]
    expected = _assert_stack_matches_alone([PLAIN] * 3, specs, (1, 2, 3))
    assert [h.status for h in expected] == ["done", "diverged", "done"]


def test_members_may_train_for_different_epochs():
    specs = [_train(epochs=e, optimizer="adam") for e in (1, 3, 2)]
    expected = _assert_stack_matches_alone([PLAIN] * 3, specs, (1, 2, 3))
    assert [len(h.epoch) for h in expected] == [1, 3, 2]


def test_early_stopping_and_checkpoints_per_member():
    sgd = {"name": "sgd", "learning_rate": 0.3}
    stop_restoring = {"monitor": "val_accuracy", "restore_best_weights": True}
    stop_on_loss = {"monitor": "val_loss", "patience": 1, "min_delta": 0.05}
    specs = [
        _train(epochs=10, optimizer=sgd),
        _train(epochs=10, optimizer=sgd, early_stopping=stop_restoring),
        _train(epochs=10, optimizer=sgd, early_stopping=stop_on_loss),
        _train(epochs=6, optimizer=sgd, checkpoint={"monitor": "val_accuracy", "restore": True}),
    ]
    expected = _assert_stack_matches_alone([PLAIN] * 4, specs, (1, 2, 3, 4))
    assert [len(h.epoch) for h in expected][0::3] == [10, 6]
    assert expected[1].stopped_epoch is not None and expected[2].stopped_epoch is not None
    assert expected[3].best_epoch is not None and expected[3].best_epoch < 5  # restored


@pytest.mark.parametrize(
    "clipping", [{"clipnorm": 0.1}, {"global_clipnorm": 0.1}, {"clipvalue": 0.01}]
)
def test_gradient_clipping_within_each_member(clipping):
    specs = [_train(optimizer={"name": "sgd", "learning_rate": lr, **clipping}) for lr in (1, 2)]
    _assert_stack_matches_alone([PLAIN] * 2, specs, (1, 2))


@pytest.mark.parametrize(
    "fields",
    [
        {"shuffle": False},
        {"batch_size": 20},  # a partial last batch weighs less
        {"clip_probabilities": True},
        {"loss": "mse"},
    ],
    ids=["no_shuffle", "partial_batch", "clip_probabilities", "mse"],
)
def test_training_options_shared_by_the_members(fields):
    models = [MLPSpec(hidden=(16,), dropout=r) for r in (0.0, 0.3)]
    _assert_stack_matches_alone(models, [_train(optimizer="adam", **fields)] * 2, (1, 2))


def test_no_validation_data_gives_training_keys_only():
    expected = _assert_stack_matches_alone([PLAIN] * 2, [_train()] * 2, (1, 2), val=False)
    assert set(expected[0].history) == {"loss", "accuracy", "learning_rate", "time"}


def test_evaluate_stack_is_evaluate_per_member():
    nets = [_net(MLPSpec(hidden=(16,), kernel_regularizer={"l2": l2}), 1) for l2 in (0, 0.5)]
    split, spec = _blobs(), TrainSpec()
    expected = [evaluate(net, split, spec) for net in nets]
    got = evaluate_stack(stack_models(nets), split, spec)
    for want, have in zip(expected, got, strict=True):
        assert have == pytest.approx(want, rel=1e-6)


def test_equal_shuffle_seeds_share_one_order_and_others_gather():
    def gens(*seeds):
        return [make_generator(s) if s is not None else None for s in seeds]

    cpu = torch.device("cpu")
    shared, groups = member_orders(gens(3, 3, None), 10, cpu)
    assert shared.shape == (10,) and groups is None
    per_member, groups = member_orders(gens(3, 4), 10, cpu)
    assert per_member.shape == (2, 10) and groups is None
    assert torch.equal(per_member[1], torch.randperm(10, generator=make_generator(4)))
    distinct, groups = member_orders(gens(4, 3, 4, None), 10, cpu)
    assert distinct.shape == (2, 10)
    assert torch.equal(distinct[1], torch.randperm(10, generator=make_generator(3)))
    assert groups.batch_of.tolist() == [0, 1, 0, 0]
    assert [g.tolist() for g in groups.members] == [[0, 2, 3], [1]]
    assert groups.position.tolist() == [0, 3, 1, 2]


def test_conflicting_training_specs_are_refused_with_the_field():
    base = _train(optimizer="sgd")
    cases = {
        "training[1].batch_size: must equal training[0]'s 16 to stack, got 32": {"batch_size": 32},
        "training[1].optimizer.name: must equal training[0]'s 'sgd'": {"optimizer": "adam"},
        "training[1].optimizer.nesterov": {"optimizer": {"name": "sgd", "nesterov": True}},
        "training[1].schedule: a stack supports constant and exponential": {
            "schedule": {"kind": "step", "factor": 0.5, "every_epochs": 1}
        },
        "training[1].loss": {"loss": "mse"},
    }
    for message, change in cases.items():
        other = TrainSpec.model_validate({**base.model_dump(), **change})
        problems = training_conflicts([base, other])
        assert problems and problems[0].startswith(message), problems
    legacy = [{"name": "rmsprop", "legacy": True, "momentum": m} for m in (0.0, 0.5)]
    assert training_conflicts([_train(optimizer=o) for o in legacy])


def test_fit_stack_refuses_different_architectures():
    nets = [_net(PLAIN, 1), _net(MLPSpec(hidden=(8,)), 2)]
    with pytest.raises(SpecError, match=r"models\[1\]\.hidden: must equal models\[0\]'s \(16,\)"):
        fit_stack(nets, _blobs(), [_train()] * 2, seeds=(1, 2), threads=1)


def test_every_field_is_classified_shared_or_per_member():
    per_member = {
        "optimizer",
        "schedule",
        "epochs",
        "early_stopping",
        "checkpoint",
        "divergence_threshold",
    }
    assert set(SHARED_TRAIN_FIELDS) | per_member == set(TrainSpec.model_fields)
    for name, rule in RULES.items():
        fields = set(rule.spec.model_fields) - {"learning_rate"}
        shared = set(shared_optimizer_fields(rule.spec()))
        assert fields == shared | set(rule.hyperparameters), name
        assert not shared & set(rule.hyperparameters), name


def test_stacked_nets_are_trained_in_place_like_fit():
    nets = [_net(PLAIN, s) for s in (1, 2)]
    before = nets[0].state_dict()["layers.0.kernel"].clone()
    histories = fit_stack(nets, _blobs(), [_train()] * 2, seeds=(1, 2), threads=1)
    assert not torch.equal(nets[0].state_dict()["layers.0.kernel"], before)
    assert all(h.status == "done" and not math.isnan(h.last["loss"]) for h in histories)


def test_stacking_pays_only_between_one_thread_models_and_gemm_bound_ones():
    train = _blobs()
    sgd = _train(optimizer="sgd")
    assert not stack_pays(_net(PLAIN, 0), sgd, train)  # one-thread size: 1-thread workers
    middle = MLPSpec(hidden=(256, 256))  # 16·256·256 ≥ SMALL_GEMM, 16·Σ in·out < GEMM_BOUND
    assert SMALL_GEMM <= 16 * 256 * 256
    assert 16 * (D * 256 + 256 * 256 + 256 * C) < GEMM_BOUND
    assert stack_pays(_net(middle, 0), sgd, train)
    wide = MLPSpec(hidden=(4096, 256))  # 16·(20·4096 + 4096·256 + 256·3) > GEMM_BOUND
    assert 16 * (D * 4096 + 4096 * 256 + 256 * C) > GEMM_BOUND
    assert not stack_pays(_net(wide, 0), sgd, train)
    assert not stack_pays(_net(wide, 0), _train(optimizer="adam"), train)  # lean Adam too
    assert stack_pays(_net(MLPSpec(hidden=(4096, 256), batch_norm="after"), 0), sgd, train)


def test_stacked_evaluate_on_matches_fit_per_member():
    train, test = _blobs(), _blobs(seed=3)
    spec = TrainSpec(optimizer={"name": "sgd", "learning_rate": 0.1}, epochs=2, batch_size=16)
    alone = [
        fit(_net(MLPSpec(hidden=(8,)), s), train, spec, seed=s, evaluate_on={"test": test})
        for s in (0, 1)
    ]
    stacked = fit_stack(
        [_net(MLPSpec(hidden=(8,)), s) for s in (0, 1)],
        train,
        [spec, spec],
        seeds=[0, 1],
        evaluate_on={"test": test},
    )
    for one, member in zip(alone, stacked, strict=True):
        assert member.history["test_eval_loss"] == pytest.approx(
            one.history["test_eval_loss"], rel=1e-5
        )
        assert member.history["test_eval_accuracy"] == one.history["test_eval_accuracy"]
