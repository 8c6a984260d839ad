"""Keras optimisers: specs, real-Keras goldens (fixtures/keras/optimizers.json), hand math."""

import json
import math
from pathlib import Path

import pytest
import torch
from pydantic import BaseModel, Field, TypeAdapter

from mnistlab.errors import SpecError
from mnistlab.spec import Spec, parse_spec
from mnistlab.training.optimizers import (
    OPTIMIZER_NAMES,
    OPTIMIZERS,
    AdadeltaSpec,
    AdagradSpec,
    AdamSpec,
    AdamWSpec,
    KerasOptimizer,
    NadamSpec,
    OptimizerSpec,
    RMSpropSpec,
    SGDSpec,
    adam_update,
    rmsprop_update,
    sgd_update,
)
from mnistlab.training.schedules import ScheduleSpec, make_schedule

OPTIMIZER = TypeAdapter(OptimizerSpec)
SCHEDULE = TypeAdapter(ScheduleSpec)


class _Holder(Spec):
    optimizer: OptimizerSpec = Field(default="rmsprop", validate_default=True)


# --- specs ---


@pytest.mark.parametrize(
    ("name", "cls", "defaults"),
    [
        ("sgd", SGDSpec, {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}),
        (
            "adam",
            AdamSpec,
            {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
        ),
        ("adamw", AdamWSpec, {"learning_rate": 0.001, "weight_decay": 0.004, "epsilon": 1e-7}),
        ("nadam", NadamSpec, {"learning_rate": 0.001, "beta_1": 0.9, "epsilon": 1e-7}),
        (
            "rmsprop",
            RMSpropSpec,
            {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7},
        ),
        (
            "adagrad",
            AdagradSpec,
            {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
        ),
        ("adadelta", AdadeltaSpec, {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7}),
    ],
)
def test_bare_name_gives_keras_defaults(name, cls, defaults):
    spec = OPTIMIZER.validate_python(name)
    assert type(spec) is cls
    assert {k: getattr(spec, k) for k in defaults} == defaults
    assert OPTIMIZER.validate_python(name.upper()) == spec


def test_optimizer_names_lists_every_spec():
    assert OPTIMIZER_NAMES == ("sgd", "adam", "adamw", "nadam", "rmsprop", "adagrad", "adadelta")


def test_default_in_a_spec_is_rmsprop():
    assert isinstance(_Holder().optimizer, RMSpropSpec)


def test_unknown_name_lists_the_allowed_names():
    for bad in ("adamax", {"name": "adamax", "learning_rate": 0.1}):
        with pytest.raises(SpecError) as err:
            parse_spec(_Holder, {"optimizer": bad})
        message = str(err.value)
        assert message.startswith("optimizer: unknown optimizer")
        assert "adamax" in message
        assert "sgd, adam, adamw, nadam, rmsprop, adagrad, adadelta" in message


def test_missing_name_is_an_error():
    with pytest.raises(SpecError, match="optimizer: name is required"):
        parse_spec(_Holder, {"optimizer": {"learning_rate": 0.1}})


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"name": "adam", "learning_rate": -0.1}, "optimizer.adam.learning_rate:"),
        ({"name": "sgd", "learning_rate": 0}, "optimizer.sgd.learning_rate:"),
        ({"name": "adam", "beta_1": 1.0}, "optimizer.adam.beta_1:"),
        ({"name": "nadam", "beta_2": -0.1}, "optimizer.nadam.beta_2:"),
        ({"name": "rmsprop", "rho": 1.5}, "optimizer.rmsprop.rho:"),
        ({"name": "rmsprop", "momentum": 1.0}, "optimizer.rmsprop.momentum:"),
        ({"name": "sgd", "momentum": 1.2}, "optimizer.sgd.momentum:"),
        ({"name": "adadelta", "rho": -0.5}, "optimizer.adadelta.rho:"),
        ({"name": "adamw", "weight_decay": -1}, "optimizer.adamw.weight_decay:"),
        ({"name": "adam", "lr": 0.1}, "optimizer.adam.lr: Extra inputs"),
    ],
)
def test_bad_fields_are_named(fields, where):
    with pytest.raises(SpecError) as err:
        parse_spec(_Holder, {"optimizer": fields})
    assert str(err.value).startswith(where)


def test_only_one_clipping_option():
    with pytest.raises(SpecError, match="at most one of clipnorm, clipvalue, global_clipnorm"):
        parse_spec(_Holder, {"optimizer": {"name": "sgd", "clipnorm": 1.0, "clipvalue": 1.0}})


# --- real Keras: every recorded case, five steps ---


FIXTURE = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "keras" / "optimizers.json").read_text()
)
CASES = sorted(FIXTURE["cases"])


@pytest.mark.parametrize("case", CASES)
def test_matches_keras(case):
    recorded = FIXTURE["cases"][case]
    fields = dict(recorded["spec"])
    schedule_fields = fields.pop("schedule", "constant")
    spec = OPTIMIZER.validate_python(fields)
    schedule = make_schedule(SCHEDULE.validate_python(schedule_fields), spec.learning_rate)
    kernel = torch.nn.Parameter(torch.tensor(FIXTURE["initial"][0]))
    bias = torch.nn.Parameter(torch.tensor(FIXTURE["initial"][1]))
    opt = KerasOptimizer(spec, [kernel, bias])
    for step, ((gk, gb), (want_k, want_b), keras_lr) in enumerate(
        zip(FIXTURE["gradients"], recorded["weights"], recorded["learning_rates"], strict=True)
    ):
        lr = schedule.learning_rate(step)
        assert lr == pytest.approx(keras_lr, rel=1e-6)  # Keras holds rates in float32
        for group in opt.param_groups:
            group["lr"] = lr
        kernel.grad, bias.grad = torch.tensor(gk), torch.tensor(gb)
        opt.step()
        torch.testing.assert_close(kernel.detach(), torch.tensor(want_k), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(bias.detach(), torch.tensor(want_b), rtol=1e-5, atol=1e-6)


def test_fixture_records_where_tf_keras_2_agrees():
    cases = FIXTURE["cases"]
    # tf.keras 2.11+ optimisers equal Keras 3 everywhere
    assert all((c.get("tf_keras_max_abs_diff") or 0) < 1e-7 for c in cases.values())
    # tf.keras <= 2.10 differs exactly where `legacy` selects another rule
    legacy = {k for k, c in cases.items() if (c.get("tf_keras_legacy_max_abs_diff") or 0) > 1e-6}
    assert legacy == {
        "nadam",
        "nadam_lr_0.01",
        "rmsprop",
        "rmsprop_centered",
        "adagrad_no_initial_accumulator",
    }


# --- hand computations: two steps of each rule, float64 ---

W0 = [1.0, 1.0]
G = [[0.5, 1e-4], [-0.25, 3e-4]]  # the small entry shows where epsilon sits


def _two_steps(fields, grads=G, rates=None, w0=W0):
    spec = OPTIMIZER.validate_python(fields)
    w = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = KerasOptimizer(spec, [w])
    out = []
    for i, g in enumerate(grads):
        if rates is not None:
            opt.param_groups[0]["lr"] = rates[i]
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(w.detach().tolist())
    return out


def _close(got, want):
    assert got == [pytest.approx(row, rel=1e-12, abs=1e-15) for row in want]


def test_sgd_by_hand():
    # w -= 0.01·g
    _close(_two_steps("sgd"), [[0.995, 0.999999], [0.9975, 0.999996]])


def test_sgd_momentum_keeps_lr_inside_the_velocity():
    # lr 0.1 then 0.05. v1 = -0.1·g1 = [-0.05, -1e-5]; w1 = 1 + v1
    # v2 = 0.9·v1 - 0.05·g2 = [-0.045 + 0.0125, -9e-6 - 1.5e-5]; w2 = w1 + v2
    # (torch, lr outside the buffer, would give w2[0] = 0.95 - 0.05·(0.9·0.5 - 0.25) = 0.94)
    got = _two_steps({"name": "sgd", "momentum": 0.9}, rates=[0.1, 0.05])
    _close(got, [[0.95, 0.99999], [0.9175, 0.999966]])


def test_sgd_nesterov_by_hand():
    # lr 0.1: v1 = [-0.05, -1e-5]; w1 = 1 + 0.9·v1 - 0.1·g1 = [0.905, 0.999981]
    # v2 = 0.9·v1 - 0.1·g2 = [-0.02, -3.9e-5]; w2 = w1 + 0.9·v2 - 0.1·g2
    got = _two_steps({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True})
    _close(got, [[0.905, 0.999981], [0.912, 0.9999159]])


def test_adam_by_hand():
    # t=1: m = 0.1·g, v = 0.001·g², lr_1 = 0.001·sqrt(0.001)/0.1
    #   w -= lr_1·m/(sqrt(v) + 1e-7): elem 0 moves 0.000999994, elem 1 only 0.000969346
    #   (ε next to sqrt(v) = 3.16e-6 shrinks the step; torch's ε on sqrt(v̂) would not)
    # t=2: m = 0.9·m + 0.1·g, v = 0.999·v + 0.001·g², lr_2 = 0.001·sqrt(1-0.999²)/(1-0.9²)
    _close(
        _two_steps("adam"),
        [[0.999000006324515, 0.999030653430032], [0.998733670792079, 0.998121959702706]],
    )


def test_adam_amsgrad_uses_the_largest_v():
    # g = 1, then 0.1: v2 = 0.999·0.001 + 0.001·0.01 < v1, so v̂ = v1 = 0.001 at t=2:
    # w2 = w1 - 0.001·sqrt(1-0.999²)/(1-0.81) · (0.09 + 0.01)/(sqrt(0.001) + 1e-7)
    got = _two_steps({"name": "adam", "amsgrad": True}, grads=[[1.0], [0.1]], w0=[1.0])
    _close(got, [[0.999000003162268], [0.99825919485162]])


def test_adamw_decays_before_the_adam_step():
    # w -= w·0.004·0.001, then the Adam step of test_adam_by_hand
    _close(
        _two_steps("adamw"),
        [[0.998996006324515, 0.999026653430032], [0.998725674808054, 0.998113963596092]],
    )


def test_nadam_by_hand():
    # u_t = 0.9·(1 - 0.5·0.96^t): u_1 = 0.468, u_2 = 0.48528, u_3 = 0.9·(1 - 0.5·0.96³)
    # t=1: m̂ = u_2·m/(1 - u_1·u_2) + (1 - u_1)·g/(1 - u_1), v̂ = v/(1 - 0.999)
    #      w -= 0.001·m̂/(sqrt(v̂) + 1e-7)
    # t=2: m̂ = u_3·m/(1 - u_1·u_2·u_3) + (1 - u_2)·g/(1 - u_1·u_2), v̂ = v/(1 - 0.999²)
    _close(
        _two_steps("nadam"),
        [[0.998937212409249, 0.998938273922768], [0.999329807570202, 0.997946631768484]],
    )


def test_nadam_legacy_schedule():
    # the same with u_t = 0.9·(1 - 0.5·0.96^(0.004·t)) (tf.keras <= 2.10, Keras 2.2.4)
    got = _two_steps({"name": "nadam", "legacy": True}, grads=[[0.5], [-0.25]], w0=[1.0])
    _close(got, [[0.998943548432935], [0.999354658058156]])


def test_rmsprop_epsilon_inside_the_root():
    # ms = 0.1·g²; w -= 0.001·g/sqrt(ms + 1e-7): the tiny gradient moves elem 1 by 3.15e-4
    # t=2: ms = 0.9·ms + 0.1·g²
    _close(
        _two_steps("rmsprop"),
        [[0.996837728664368, 0.999685341612236], [0.998312145661716, 0.998780396146126]],
    )


def test_rmsprop_legacy_epsilon_outside_the_root():
    # tf.keras <= 2.10 without momentum: w -= 0.001·g/(sqrt(ms) + 1e-7): elem 1 moves 3.15e-3
    _close(
        _two_steps({"name": "rmsprop", "legacy": True}),
        [[0.99683772433983, 0.99684769081674], [0.998312143031815, 0.993835604631481]],
    )


def test_rmsprop_momentum_buffer_holds_lr_times_step():
    # lr 0.01 then 0.005: mom1 = 0.01·0.5/sqrt(0.025 + 1e-7)
    # ms2 = 0.9·0.025 + 0.1·0.0625; mom2 = 0.9·mom1 + 0.005·(-0.25)/sqrt(ms2 + 1e-7)
    # (a buffer of g/sqrt(...) scaled by the new lr would give w2 = 0.961519)
    got = _two_steps(
        {"name": "rmsprop", "momentum": 0.9},
        grads=[[0.5], [-0.25]],
        rates=[0.01, 0.005],
        w0=[1.0],
    )
    _close(got, [[0.96837728664368], [0.94728892960973]])


def test_rmsprop_centered_by_hand():
    # mg = 0.1·g; w -= 0.001·g/sqrt(ms - mg² + 1e-7)
    # t=1: ms - mg² = 0.025 - 0.0025; t=2: ms = 0.02875, mg = 0.02, ms - mg² = 0.02835
    got = _two_steps({"name": "rmsprop", "centered": True}, grads=[[0.5], [-0.25]], w0=[1.0])
    _close(got, [[0.996666674074049], [0.99815145613268]])


def test_adagrad_by_hand():
    # acc = 0.1 + g²; w -= 0.001·g/sqrt(acc + 1e-7)
    _close(
        _two_steps("adagrad"),
        [[0.999154845866008, 0.999999683772408], [0.999544095290907, 0.999998735090059]],
    )


def test_adagrad_epsilon_placement_shows_from_a_zero_accumulator():
    fields = {"name": "adagrad", "learning_rate": 0.1, "initial_accumulator_value": 0.0}
    # acc = g²; elem 1: 0.1·1e-4/sqrt(1e-8 + 1e-7) = 0.0301511...
    _close(
        _two_steps(fields),
        [[0.900000019999994, 0.969848865542224], [0.944721372394574, 0.90276682621723]],
    )
    # legacy: 0.1·1e-4/(sqrt(1e-8) + 1e-7) = 0.0999000999...
    _close(
        _two_steps({**fields, "legacy": True}),
        [[0.900000019999996, 0.9000999000999], [0.944721371549993, 0.805261560811015]],
    )


def test_adadelta_by_hand():
    # Eg² = 0.05·g²; Δ = -sqrt(EΔ² + 1e-7)·g/sqrt(Eg² + 1e-7); EΔ² = 0.05·Δ²; w += lr·Δ
    _close(
        _two_steps("adadelta"),
        [[0.999998585792094, 0.999999900249066], [0.999999498658155, 0.999999606716718]],
    )
    _close(
        _two_steps({"name": "adadelta", "learning_rate": 1.0}),
        [[0.998585792094447, 0.999900249066389], [0.999498658155012, 0.99960671671804]],
    )


def _clipped_sgd_step(option: str, kernel_grad: list[float]) -> list[list[float]]:
    kernel = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    bias = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = KerasOptimizer(
        OPTIMIZER.validate_python({"name": "sgd", "learning_rate": 0.1, option: 1.0}),
        [kernel, bias],
    )
    kernel.grad = torch.tensor(kernel_grad, dtype=torch.float64)
    bias.grad = torch.tensor([4.0], dtype=torch.float64)
    opt.step()
    return [kernel.detach().tolist(), bias.detach().tolist()]


def test_clipping_by_hand():
    # clipnorm: each tensor to norm <= 1: [3, 4] -> [0.6, 0.8], [4] -> [1]
    got = _clipped_sgd_step("clipnorm", [3.0, 4.0])
    _close(got, [[0.94, 0.92], [0.9]])
    # global_clipnorm: the norm of [3, 0, 4] is 5 -> everything times 1/5: [0.6, 0], [0.8]
    got = _clipped_sgd_step("global_clipnorm", [3.0, 0.0])
    _close(got, [[0.94, 1.0], [0.92]])
    # clipvalue: elements to [-1, 1]
    got = _clipped_sgd_step("clipvalue", [-3.0, 0.5])
    _close(got, [[1.1, 0.95], [0.9]])


def test_global_clipnorm_of_an_infinite_gradient_gives_nan_like_keras():
    got = _clipped_sgd_step("global_clipnorm", [math.inf, 0.0])
    assert all(math.isnan(v) for row in got for v in row)


# --- the optimiser object ---


def test_learning_rate_is_a_float_in_param_groups():
    w = torch.nn.Parameter(torch.zeros(3))
    opt = KerasOptimizer(OPTIMIZER.validate_python("adam"), [w])
    assert opt.param_groups[0]["lr"] == 0.001
    assert isinstance(opt.param_groups[0]["lr"], float)
    assert isinstance(opt, torch.optim.Optimizer)


def test_parameters_without_gradients_are_skipped_but_the_step_count_advances():
    a, b = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
    opt = KerasOptimizer(OPTIMIZER.validate_python("adam"), [a, b])
    a.grad = torch.ones(1)
    opt.step()
    assert b.item() == 1.0 and b not in opt.state
    assert opt.param_groups[0]["step"] == 1


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_state_dict_resume_continues_exactly(name):
    torch.manual_seed(0)
    grads = [torch.randn(4) for _ in range(4)]

    def run(split: bool) -> torch.Tensor:
        w = torch.nn.Parameter(torch.ones(4))
        opt = KerasOptimizer(OPTIMIZER.validate_python(name), [w])
        for i, g in enumerate(grads):
            if split and i == 2:
                saved = opt.state_dict()
                w = torch.nn.Parameter(w.detach().clone())
                opt = KerasOptimizer(OPTIMIZER.validate_python(name), [w])
                opt.load_state_dict(saved)
            w.grad = g.clone()
            opt.step()
        return w.detach()

    torch.testing.assert_close(run(split=True), run(split=False), rtol=0, atol=0)


def test_closure_loss_is_returned():
    w = torch.nn.Parameter(torch.tensor([2.0]))
    opt = KerasOptimizer(OPTIMIZER.validate_python({"name": "sgd", "learning_rate": 0.1}), [w])

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 4.0
    assert w.item() == pytest.approx(2.0 - 0.1 * 4.0)


# --- the rules take per-model hyperparameters as [K, 1] tensors ---


def test_rules_broadcast_stacked_hyperparameters():
    torch.manual_seed(1)
    w = torch.randn(2, 3, dtype=torch.float64)  # (K=2, 3)
    g = torch.randn(2, 3, dtype=torch.float64)  # (K, 3)
    lr = torch.tensor([[0.1], [0.01]], dtype=torch.float64)  # (K, 1)
    mu = torch.tensor([[0.9], [0.5]], dtype=torch.float64)  # (K, 1)

    z = torch.zeros_like

    rules = {
        "sgd": lambda w, g, lr, mu: sgd_update(w, g, z(w), lr=lr, momentum=mu, nesterov=True),
        "adam": lambda w, g, lr, mu: adam_update(
            w, g, z(w), z(w), None, step=1, lr=lr, beta_1=mu, beta_2=0.999, epsilon=1e-7
        ),
        "rmsprop": lambda w, g, lr, mu: rmsprop_update(
            w, g, z(w), z(w), z(w), lr=lr, rho=mu, momentum=mu, epsilon=1e-7
        ),
    }
    for name, rule in rules.items():
        stacked = w.clone()
        rule(stacked, g, lr, mu)  # (K, 3)
        for k in range(2):
            one = w[k : k + 1].clone()  # (1, 3)
            rule(one, g[k : k + 1], lr[k].item(), mu[k].item())
            torch.testing.assert_close(stacked[k : k + 1], one, msg=name)


def test_spec_round_trips_through_json():
    spec = OPTIMIZER.validate_python({"name": "rmsprop", "momentum": 0.9, "clipnorm": 1.0})
    again = OPTIMIZER.validate_json(spec.model_dump_json())
    assert again == spec
    assert isinstance(spec, BaseModel)
    assert math.isclose(again.learning_rate, 0.001)


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("per_member_rate", [False, True])
def test_fused_adam_equals_the_tensor_op_rule(amsgrad, per_member_rate):
    # betas given as tensors take the tensor-op path; floats take torch's fused kernel
    generator = torch.Generator().manual_seed(3)
    w = torch.randn(4, 300, generator=generator)
    lr = torch.tensor([[1e-3], [2e-3], [5e-4], [1e-2]]) if per_member_rate else 1e-3
    fused, reference = w.clone(), w.clone()
    states = [[torch.zeros_like(w) for _ in range(3)] for _ in range(2)]
    for step in range(1, 31):
        scale = 1e-4 if step % 3 == 0 else 1.0  # some steps where ε matters
        g = torch.randn(w.shape, generator=generator) * scale
        for weights, (m, v, v_max), betas in (
            (fused, states[0], (0.9, 0.999)),
            (reference, states[1], (torch.tensor(0.9), torch.tensor(0.999))),
        ):
            adam_update(
                weights,
                g,
                m,
                v,
                v_max if amsgrad else None,
                step=step,
                lr=lr,
                beta_1=betas[0],
                beta_2=betas[1],
                epsilon=1e-7,
            )
    assert not torch.equal(fused, w)
    torch.testing.assert_close(fused, reference, rtol=1e-6, atol=5e-7)  # float rounding


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_every_row_builds_exactly_the_slots_it_names_with_every_switch_on(name):
    rule = OPTIMIZERS[name]
    fields = {switch: True for switch in rule.switches if switch != "legacy"}
    if "momentum" in rule.hyperparameters:
        fields["momentum"] = 0.5
    state = rule.init_state(torch.zeros(3), rule.settings(rule.spec(**fields)))
    assert tuple(state) == rule.state
    assert all(t.shape == (3,) for t in state.values())


def test_the_table_names_each_optimizer_once_under_its_spec_name():
    assert OPTIMIZER_NAMES == ("sgd", "adam", "adamw", "nadam", "rmsprop", "adagrad", "adadelta")
    assert OPTIMIZERS["rmsprop"].hyperparameters == ("epsilon", "rho", "momentum")
    assert OPTIMIZERS["rmsprop"].switches == ("centered", "legacy")
    assert OPTIMIZERS["nadam"].settings(NadamSpec())["u_product"] == 1.0
