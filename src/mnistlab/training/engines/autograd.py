"""The autograd engine: the reference every other engine is tested against.

Any model, loss, augmentation and callback; one optimiser step per batch through
`torch.autograd`, with the divergence check every `DIVERGENCE_CHECK_STEPS` steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mnistlab.training.losses import batch_loss, correct_count, softmax_output
from mnistlab.training.state import (
    DIVERGENCE_CHECK_STEPS,
    RunState,
    Split,
    first_bad,
    weighted_logs,
)

if TYPE_CHECKING:
    from mnistlab.training.callbacks import Events
    from mnistlab.training.schedules import Schedule


def train_epoch_autograd(
    run: RunState, schedule: Schedule, train: Split, events: Events
) -> tuple[dict[str, float], int | None]:
    """One epoch over `train` with autograd; Keras's epoch logs and the first bad batch, if any."""
    model, optimizer, spec = run.model, run.optimizer, run.spec
    x, y = train.x, train.y
    batches = run.batches.epoch()
    steps = len(batches)
    sizes = torch.tensor([run.batches.size(rows) for rows in batches], dtype=torch.float32)
    losses = torch.empty(steps, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    softmax = softmax_output(model)
    model.train()
    checked = 0
    for i, rows in enumerate(batches):
        lr = schedule.learning_rate(run.step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        xb, yb = x[rows], y[rows]
        if run.augment is not None:
            xb = run.augment(xb)
        logits = model(xb)
        loss = batch_loss(logits, yb, spec, softmax) + model.penalty()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run.step += 1
        losses[i] = loss.detach()
        if spec.is_classification:
            correct += correct_count(logits.detach(), yb)
        events.on_step_end(run)
        if i + 1 - checked == DIVERGENCE_CHECK_STEPS:
            bad = first_bad(losses[checked : i + 1], spec.divergence_threshold)
            if bad is not None:
                return weighted_logs(losses, correct, sizes[: i + 1], spec), checked + bad
            checked = i + 1
    bad = first_bad(losses[checked:steps], spec.divergence_threshold)
    logs = weighted_logs(losses, correct, sizes, spec)
    return logs, None if bad is None else checked + bad
