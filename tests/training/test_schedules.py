"""Learning-rate schedules: specs, real-Keras goldens (fixtures/keras/schedules.json), plateau."""

import json
from pathlib import Path

import pytest
from pydantic import Field, TypeAdapter

from mnistlab.errors import SpecError
from mnistlab.spec import Spec, parse_spec
from mnistlab.training.schedules import (
    SCHEDULE_KINDS,
    ConstantSpec,
    PlateauSpec,
    Schedule,
    ScheduleSpec,
    make_schedule,
)

SCHEDULE = TypeAdapter(ScheduleSpec)
FIXTURE = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "keras" / "schedules.json").read_text()
)


class _Holder(Spec):
    schedule: ScheduleSpec = Field(default="constant", validate_default=True)


def _schedule(fields, base_lr: float = 0.1) -> Schedule:
    return make_schedule(SCHEDULE.validate_python(fields), base_lr)


# --- specs ---


def test_constant_is_the_default_and_plateau_may_be_bare():
    assert _Holder().schedule == ConstantSpec()
    plateau = SCHEDULE.validate_python("plateau")
    assert plateau == PlateauSpec()
    assert (plateau.monitor, plateau.factor, plateau.patience, plateau.mode) == (
        "val_loss",
        0.1,
        10,
        "auto",
    )
    assert (plateau.min_delta, plateau.cooldown, plateau.min_lr) == (1e-4, 0, 0.0)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("exponential", "decay_steps and decay_rate"),
        ("step", "factor and every_epochs"),
        ("cosine", "decay_steps"),
    ],
)
def test_bare_kind_with_required_fields_names_them(kind, fields):
    with pytest.raises(SpecError) as err:
        parse_spec(_Holder, {"schedule": kind})
    assert str(err.value).startswith(f"schedule: schedule '{kind}' needs {fields}")


def test_unknown_kind_lists_the_kinds():
    assert SCHEDULE_KINDS == ("constant", "exponential", "step", "cosine", "plateau")
    for bad in ("linear", {"kind": "linear"}):
        with pytest.raises(SpecError, match="constant, exponential, step, cosine, plateau"):
            parse_spec(_Holder, {"schedule": bad})


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"kind": "exponential", "decay_steps": 0, "decay_rate": 0.5}, "exponential.decay_steps"),
        ({"kind": "exponential", "decay_steps": 10}, "exponential.decay_rate: Field required"),
        ({"kind": "plateau", "factor": 1.0}, "plateau.factor"),
        ({"kind": "plateau", "mode": "up"}, "plateau.mode"),
        ({"kind": "cosine", "decay_steps": 5, "alpha": 2}, "cosine.alpha"),
        ({"kind": "step", "factor": 0.5, "every_epochs": 0}, "step.every_epochs"),
    ],
)
def test_bad_fields_are_named(fields, where):
    with pytest.raises(SpecError) as err:
        parse_spec(_Holder, {"schedule": fields})
    assert str(err.value).startswith(f"schedule.{where}")


# --- real Keras ---


@pytest.mark.parametrize("case", sorted(FIXTURE["cases"]))
def test_matches_keras(case):
    recorded = FIXTURE["cases"][case]
    schedule = _schedule(recorded["spec"], recorded["base_lr"])
    if "steps" in recorded:
        got = [schedule.learning_rate(step) for step in recorded["steps"]]
        want = recorded["lr"]
    else:  # ReduceLROnPlateau: the rate after each scripted epoch
        got = []
        for epoch, value in enumerate(recorded["values"]):
            schedule.on_epoch_end(epoch, {recorded["monitor"]: value})
            got.append(schedule.learning_rate(0))
        want = recorded["lr_after_epoch"]
    assert got == pytest.approx(want, rel=1e-5, abs=1e-9)


# --- by hand ---


def test_constant():
    schedule = _schedule("constant", 0.01)
    schedule.on_epoch_end(0, {"val_loss": 1.0})
    assert [schedule.learning_rate(s) for s in (0, 1, 1000)] == [0.01, 0.01, 0.01]


def test_exponential_uses_steps_done_before_the_update():
    schedule = _schedule({"kind": "exponential", "decay_steps": 3, "decay_rate": 0.5})
    # 0.1 · 0.5^(step/3): the first update (step 0) uses lr0
    got = [schedule.learning_rate(s) for s in (0, 1, 3, 6)]
    assert got == pytest.approx([0.1, 0.0793700525984, 0.05, 0.025], rel=1e-12)


def test_exponential_staircase_floors_the_exponent():
    fields = {"kind": "exponential", "decay_steps": 3, "decay_rate": 0.5, "staircase": True}
    schedule = _schedule(fields)
    got = [schedule.learning_rate(s) for s in (0, 2, 3, 5, 6)]
    assert got == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025], rel=1e-12)


def test_cosine_decays_to_alpha_and_stays():
    schedule = _schedule({"kind": "cosine", "decay_steps": 10, "alpha": 0.1})
    # 0.1 · (0.9 · ½(1 + cos(π·s/10)) + 0.1)
    got = [schedule.learning_rate(s) for s in (0, 5, 10, 50)]
    assert got == pytest.approx([0.1, 0.055, 0.01, 0.01], rel=1e-12)


def test_cosine_warmup_rises_linearly_to_the_peak():
    fields = {
        "kind": "cosine",
        "decay_steps": 10,
        "alpha": 0.1,
        "warmup_steps": 5,
        "warmup_initial": 0.01,
    }
    schedule = _schedule(fields)
    got = [schedule.learning_rate(s) for s in (0, 1, 5, 10, 15, 99)]
    assert got == pytest.approx([0.01, 0.028, 0.1, 0.055, 0.01, 0.01], rel=1e-12)


def test_step_multiplies_every_n_epochs():
    schedule = _schedule({"kind": "step", "factor": 0.5, "every_epochs": 2})
    rates = [schedule.learning_rate(0)]
    for epoch in range(5):
        schedule.on_epoch_end(epoch, {})
        rates.append(schedule.learning_rate(100 * epoch))  # the step count does not matter
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rel=1e-12)


def _plateau(fields, values, key="val_loss", base_lr=0.1):
    schedule = _schedule({"kind": "plateau", **fields}, base_lr)
    rates = []
    for epoch, value in enumerate(values):
        schedule.on_epoch_end(epoch, {key: value})
        rates.append(schedule.learning_rate(0))
    return rates


def test_plateau_reduces_after_patience_misses():
    # best 1.0 at epoch 0; ties (1.0) and worse values are misses; reduce at the 2nd miss
    rates = _plateau({"factor": 0.5, "patience": 2}, [1.0, 1.0, 1.2, 0.9, 0.95, 0.91])
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.05, 0.025], rel=1e-6)


def test_plateau_min_delta_must_be_exceeded():
    # 0.95 + 0.1 is not < 1.0: a miss; 0.85 + 0.1 < 1.0 improves
    rates = _plateau({"factor": 0.5, "patience": 1, "min_delta": 0.1}, [1.0, 0.95, 0.85, 0.8])
    assert rates == pytest.approx([0.1, 0.05, 0.05, 0.025], rel=1e-6)


def test_plateau_cooldown_pauses_counting():
    # reduce at epoch 1; Keras counts the cooldown down at the START of each epoch, so
    # cooldown=2 leaves epoch 2 uncounted and epoch 3 is a counted miss again
    rates = _plateau({"factor": 0.5, "patience": 1, "cooldown": 2}, [1.0, 2.0, 2.0, 2.0, 2.0])
    assert rates == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025], rel=1e-6)
    rates = _plateau({"factor": 0.5, "patience": 1, "cooldown": 0}, [1.0, 2.0, 2.0, 2.0])
    assert rates == pytest.approx([0.1, 0.05, 0.025, 0.0125], rel=1e-6)


def test_plateau_stops_at_min_lr():
    rates = _plateau({"factor": 0.1, "patience": 1, "min_lr": 0.005}, [1.0, 2.0, 2.0, 2.0])
    assert rates == pytest.approx([0.1, 0.01, 0.005, 0.005], rel=1e-6)


def test_plateau_auto_mode_maximises_accuracy():
    rates = _plateau(
        {"monitor": "val_accuracy", "factor": 0.5, "patience": 1},
        [0.5, 0.6, 0.55, 0.7],
        key="val_accuracy",
    )
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.05], rel=1e-6)
    # mode min on an accuracy: rising values are misses
    rates = _plateau(
        {"monitor": "val_accuracy", "factor": 0.5, "patience": 1, "mode": "min"},
        [0.5, 0.6],
        key="val_accuracy",
    )
    assert rates == pytest.approx([0.1, 0.05], rel=1e-6)


def test_plateau_default_patience_is_ten_epochs():
    rates = _plateau({}, [1.0] + [1.0] * 10, base_lr=0.001)
    assert rates[9] == 0.001
    assert rates[10] == pytest.approx(0.0001, rel=1e-6)


def test_plateau_without_its_metric_warns_and_keeps_the_rate():
    schedule = _schedule("plateau")
    with pytest.warns(UserWarning, match="'val_loss' is not available"):
        schedule.on_epoch_end(0, {"loss": 1.0})
    assert schedule.learning_rate(0) == 0.1
