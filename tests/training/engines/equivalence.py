"""The engines' shared check: a run on one engine equals the same run on the reference."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch


def assert_same_run(
    runs,
    weights: Mapping[str, float],
    history: Mapping[str, float],
    keys: Iterable[str] | None = None,
) -> None:
    """`runs` is [(reference model, History), (model, History)]: same weights and gradients
    within `weights`, same end, epochs and History `keys` (default: all but time) within
    `history`."""
    (ref_model, ref), (model, got) = runs
    for name, value in ref_model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value, **weights, msg=name)
    for (name, p_ref), (_, p) in zip(
        ref_model.named_parameters(), model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(p.grad, p_ref.grad, **weights, msg=f"{name}.grad")
    assert got.status == ref.status
    assert got.diverged_at == ref.diverged_at
    assert got.epoch == ref.epoch
    for key in keys if keys is not None else [k for k in ref.history if k != "time"]:
        torch.testing.assert_close(
            torch.tensor(got.history[key], dtype=torch.float64),
            torch.tensor(ref.history[key], dtype=torch.float64),
            **history,
            msg=key,
        )
