"""Analyses: named computations over a study's stored runs (arrays and tables, no figures).

Every analysis a study file may name is registered here, with typed options (a `Spec`
subclass of `Options`), a one-sentence caption and a compute function::

    from mnistlab.analysis.contract import Options, Result
    from mnistlab.analysis.registry import analysis

    class MapOptions(Options):
        layer: PositiveInt = 1

    @analysis("feature_maps", "Feature maps of the first layers for one digit.", MapOptions)
    def feature_maps(ctx: StudyRuns, options: MapOptions) -> Result:
        result = Result("feature_maps")
        for run in ctx.pick(options):          # first / best / all / selected runs
            net = ctx.model(run)               # rebuilt from the run's weights file
            result.items[ctx.label(run)] = {"maps": ...}   # NumPy arrays, numbers
        return result

To add one: write the module under `mnistlab/analysis/`, import it in the list below, add
its name to `studies.spec.KNOWN_ANALYSES` (and regenerate docs/study.schema.json), and
register a drawer for it in `mnistlab.report.figures` (`@drawer("feature_maps")`). An
analysis that needs data recorded while training names the probes in `captures=`
(`training.probes.CAPTURES`); the runner then records them (such runs are not stacked) and
`ctx.captures(run)` returns the arrays. Raise `NotApplicable("why")` when the study gives
the analysis nothing to say; the report prints the reason.
"""

from mnistlab.analysis import (  # noqa: F401  (each module registers its analyses)
    activations,
    classic,
    classification,
    curves,
    data_views,
    features,
    speed,
    weights,
)
from mnistlab.analysis.context import Predictions, StudyRuns, finished_runs
from mnistlab.analysis.contract import NotApplicable, Options, Result, SimpleTable
from mnistlab.analysis.registry import (
    AnalysisDef,
    analysis,
    captures_for,
    get_analysis,
    parse_options,
    registered,
)
from mnistlab.analysis.run import AnalysisOutcome, analyze_study, compute

__all__ = [
    "AnalysisDef",
    "AnalysisOutcome",
    "NotApplicable",
    "Options",
    "Predictions",
    "Result",
    "SimpleTable",
    "StudyRuns",
    "analysis",
    "analyze_study",
    "captures_for",
    "compute",
    "finished_runs",
    "get_analysis",
    "parse_options",
    "registered",
]
