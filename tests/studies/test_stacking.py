"""The stacking decision: first-fit groups of runs that can share one stacked model."""

from mnistlab.studies.expand import expand
from mnistlab.studies.loading import parse_study
from mnistlab.studies.stacking import stack_groups, stackable

STUDY = """\
name: groups
data: {dataset: digits}
model: {hidden: [8]}
grid:
  model.hidden: [[8], [16]]
  training.optimizer.learning_rate: [0.001, 0.002, 0.003]
"""


def test_groups_hold_one_architecture_in_order_and_respect_the_bound():
    runs = expand(parse_study(STUDY), lambda data: "fp")
    groups = stack_groups(runs)
    assert [[r.config.model.hidden for r in g] for g in groups] == [[(8,)] * 3, [(16,)] * 3]
    assert [len(g) for g in stack_groups(runs, max_stack=2)] == [2, 1, 2, 1]
    assert stackable(runs[0], runs[1]) and not stackable(runs[0], runs[3])
