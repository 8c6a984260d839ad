"""Studies: study files expanded into hashed runs, run with resume, stored, summarised."""

from mnistlab.studies.derive import derive_study
from mnistlab.studies.expand import check_study, expand, refit_run, refit_runs
from mnistlab.studies.loading import load_study, parse_study
from mnistlab.studies.options import ClusterOptions, ExecutorKind, RunOptions
from mnistlab.studies.progress import StudyProgress
from mnistlab.studies.records import RunConfig, RunRecord, RunResult, RunSpec
from mnistlab.studies.results_folder import open_store
from mnistlab.studies.runner import Plan, RunCounts, count_runs, plan_study, run_study
from mnistlab.studies.spec import (
    KNOWN_ANALYSES,
    AnalysisSpec,
    CrossValidationSpec,
    RepetitionsSpec,
    SelectSpec,
    StudySpec,
    TableColumn,
    TableSpec,
    VariantSpec,
    config_path_error,
    study_json_schema,
)
from mnistlab.studies.store import Store, StoreError
from mnistlab.studies.summary import (
    Report,
    compare_studies,
    export_study,
    list_studies,
    study_report,
)

__all__ = [
    "KNOWN_ANALYSES",
    "AnalysisSpec",
    "ClusterOptions",
    "CrossValidationSpec",
    "ExecutorKind",
    "Plan",
    "RepetitionsSpec",
    "Report",
    "RunConfig",
    "RunCounts",
    "RunOptions",
    "RunRecord",
    "RunResult",
    "RunSpec",
    "SelectSpec",
    "Store",
    "StoreError",
    "StudyProgress",
    "StudySpec",
    "TableColumn",
    "TableSpec",
    "VariantSpec",
    "check_study",
    "compare_studies",
    "config_path_error",
    "count_runs",
    "derive_study",
    "expand",
    "export_study",
    "list_studies",
    "load_study",
    "open_store",
    "parse_study",
    "plan_study",
    "refit_run",
    "refit_runs",
    "run_study",
    "study_json_schema",
    "study_report",
]
