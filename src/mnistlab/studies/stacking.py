"""The stacking decision: which runs of a study train together as one stacked model.

Made once, here: the runner groups its tasks with `plan_stacks`, and benchmarks/run.py
estimates what `mnistlab run` does with the same `stack_groups`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mnistlab.data.cache import DataCache
from mnistlab.models.stacked import stack_conflicts
from mnistlab.studies.execute import RunTask, worth_stacking
from mnistlab.studies.records import RunSpec
from mnistlab.training.stacked import training_conflicts

MAX_STACK = 32  # members per stack; larger stacks gain little once per-member work dominates


def stackable(a: RunSpec, b: RunSpec) -> bool:
    """Same data, same architecture, and training settings a stack can hold per member."""
    return (
        a.config.data == b.config.data
        and not stack_conflicts([a.config.model, b.config.model])
        and not training_conflicts([a.config.training, b.config.training])
    )


def stack_groups(runs: Sequence[RunSpec], max_stack: int = MAX_STACK) -> list[list[RunSpec]]:
    """Runs grouped greedily, first fit, in order: each group can train as one stack."""
    groups: list[list[RunSpec]] = []
    for run in runs:
        for group in groups:
            if len(group) < max_stack and stackable(group[0], run):
                group.append(run)
                break
        else:
            groups.append([run])
    return groups


def plan_stacks(tasks: Sequence[RunTask], data: DataCache) -> list[RunTask]:
    """Merge independent single runs that can train as one stack; chains stay as they are.

    Runs that record training-time captures train alone (the stacked loop has no probes),
    and so do runs that train faster alone (`execute.worth_stacking`).
    """
    kept: list[RunTask] = []
    candidates: dict[str, RunTask] = {}
    for task in tasks:
        alone = len(task.runs) > 1 or task.runs[0].parent is not None or task.captures
        if alone or not worth_stacking(task.runs[0], data):
            kept.append(task)
        else:
            candidates[task.runs[0].run_id] = task
    for group in stack_groups([task.runs[0] for task in candidates.values()]):
        first = candidates[group[0].run_id]
        kept.append(replace(first, runs=tuple(group), stacked=len(group) > 1))
    return kept
