"""Stacked MLPs: a stack computes what its members compute alone, and gives them back."""

import pytest
import torch

from mnistlab.models import MLPNet, MLPSpec, build_mlp
from mnistlab.models.stacked import (
    ARCHITECTURE_FIELDS,
    PER_MEMBER_FIELDS,
    can_stack,
    stack_conflicts,
    stack_models,
)
from mnistlab.runtime import make_generator

D, C = 20, 3
EXACT = {"rtol": 0, "atol": 0}
CLOSE = {"rtol": 1e-5, "atol": 1e-6}


def _nets(*specs: MLPSpec) -> list[MLPNet]:
    return [build_mlp(spec, D, C, make_generator(10 + m)) for m, spec in enumerate(specs)]


def _x(rows: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, D, generator=torch.Generator().manual_seed(seed))


MIXED = (
    MLPSpec(hidden=(16, 12), batch_norm="before", batch_norm_momentum=0.9),
    MLPSpec(
        hidden=(16, 12),
        batch_norm="before",
        dropout=(0.3, 0.0),
        input_dropout=0.1,
        kernel_regularizer={"l2": 0.01},
        kernel_initializer="he_normal",
    ),
    MLPSpec(
        hidden=(16, 12),
        batch_norm="before",
        dropout=0.5,
        batch_norm_epsilon=1e-2,
        bias_regularizer={"l1": 0.1},
        output_kernel_regularizer={"l1": 0.01, "l2": 0.02},
    ),
)


def test_inference_matches_each_member_on_shared_and_gathered_rows():
    nets = _nets(*MIXED)
    with torch.no_grad():  # moving statistics away from (0, 1), so inference uses them
        for net in nets:
            for name, buffer in net.named_buffers():
                buffer.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(len(name)))
    stack = stack_models(nets).eval()
    x = _x()
    expected = torch.stack([net.eval()(x) for net in nets])  # (3, 8, C)
    torch.testing.assert_close(stack(x), expected, **CLOSE)  # one GEMM: rounding may differ
    rows = torch.stack([_x(seed=m) for m in range(3)])  # (3, 8, D)
    expected = torch.stack([net(rows[m]) for m, net in enumerate(nets)])
    torch.testing.assert_close(stack(rows), expected, **CLOSE)


def test_training_forward_draws_each_members_dropout_masks_and_batch_statistics():
    nets = _nets(*MIXED)
    stack = stack_models(nets).train()
    stack.set_generators([make_generator(100 + m) for m in range(3)])
    for m, net in enumerate(nets):
        net.set_generator(make_generator(100 + m))
        net.train()
    x = _x()
    for _ in range(2):  # the second pass sees the updated moving statistics and generators
        expected = torch.stack([net(x) for net in nets])
        torch.testing.assert_close(stack(x), expected, **CLOSE)
    for m, net in enumerate(nets):
        state = stack.member_state_dict(m)
        for key, value in net.state_dict().items():
            torch.testing.assert_close(state[key], value, **CLOSE, msg=key)


def test_penalty_is_each_members_keras_penalty():
    nets = _nets(*MIXED)
    expected = torch.stack([net.penalty() for net in nets])
    assert expected[0] == 0 and (expected[1:] > 0).all()
    torch.testing.assert_close(stack_models(nets).penalty(), expected, **CLOSE)


def test_gradients_of_the_summed_losses_are_each_members_own():
    nets = _nets(*MIXED[:1], MIXED[0].model_copy(update={"batch_norm_momentum": 0.5}))
    stack = stack_models(nets)
    x, y = _x(), torch.arange(8) % C
    loss = torch.nn.functional.cross_entropy(stack(x).flatten(0, 1), y.repeat(2), reduction="sum")
    loss.backward()
    for m, net in enumerate(nets):
        torch.nn.functional.cross_entropy(net(x), y, reduction="sum").backward()
        expected = torch.cat([p.grad.flatten() for p in net.parameters()])
        torch.testing.assert_close(stack.weights.grad[m], expected, **CLOSE)


def test_members_come_back_as_plain_mlpnets():
    nets = _nets(*MIXED)
    stack = stack_models(nets)
    for m, net in enumerate(nets):
        state = stack.member_state_dict(m)
        assert list(state) == list(net.state_dict())  # the member's own layer indices
        back = stack.unstack(m).eval()
        assert isinstance(back, MLPNet) and back.spec == net.spec
        torch.testing.assert_close(back(_x()), net.eval()(_x()), **EXACT)


def test_load_member_state_dict_and_frozen_members_round_trip():
    nets = _nets(*MIXED)
    stack = stack_models(nets)
    other = _nets(*MIXED[::-1])[0]  # MIXED[2]'s layout, other weights
    stack.load_member_state_dict(2, other.state_dict())
    for key, value in other.state_dict().items():
        torch.testing.assert_close(stack.member_state_dict(2)[key], value, **EXACT)
    frozen = torch.tensor([0, 2])
    before = [stack.member_state_dict(m) for m in range(3)]
    saved = stack.save_members(frozen)
    stack.train()(_x())  # moves the moving statistics of every member
    with torch.no_grad():
        stack.weights.add_(1.0)
    stack.load_members(frozen, saved)
    after = [stack.member_state_dict(m) for m in range(3)]
    for m in (0, 2):
        for key in before[m]:
            torch.testing.assert_close(after[m][key], before[m][key], **EXACT)
    assert not torch.equal(after[1]["layers.1.kernel"], before[1]["layers.1.kernel"])


def test_can_stack_allows_per_member_scalars_and_refuses_architecture():
    assert can_stack(MIXED)
    base = MLPSpec(hidden=(16,))
    for change, field in [
        ({"hidden": (32,)}, "hidden"),
        ({"hidden": (16, 16)}, "hidden"),
        ({"activation": "tanh"}, "activation"),
        ({"batch_norm": "after"}, "batch_norm"),
        ({"output": "linear"}, "output"),
    ]:
        other = MLPSpec(**{"hidden": (16,), **change})
        assert not can_stack([base, other])
        assert stack_conflicts([base, other])[0].startswith(f"models[1].{field}: must equal")
    assert can_stack([base, MLPSpec(hidden=(16,), activation=("relu",))])  # same, resolved
    with pytest.raises(ValueError, match=r"models\[1\]\.hidden: must equal models\[0\]'s"):
        stack_models(_nets(base, MLPSpec(hidden=(8,))))
    with pytest.raises(ValueError, match="input_dim and outputs must agree"):
        stack_models([*_nets(base), build_mlp(base, D + 1, C, make_generator(0))])


def test_every_spec_field_is_either_architecture_or_per_member():
    assert set(ARCHITECTURE_FIELDS) | set(PER_MEMBER_FIELDS) == set(MLPSpec.model_fields)
    assert not set(ARCHITECTURE_FIELDS) & set(PER_MEMBER_FIELDS)
