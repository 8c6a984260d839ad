"""The `mnistlab` command line: parse, call one library function, render."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from mnistlab.errors import MnistlabError

if TYPE_CHECKING:
    from mnistlab.models.worked_example import WorkedExample
    from mnistlab.studies.runner import Plan
    from mnistlab.studies.spec import StudySpec
    from mnistlab.studies.summary import Report
    from mnistlab.studies.tables import Table as SummaryTable

USAGE_ERROR = 2
DEFAULT_MAX_RUNS = 100_000  # `--max-runs`: feasibility.DEFAULT_MAX_RUNS (a test keeps them equal)
RUN_FAILED = 1  # a run that diverged or failed
DataDirOption = Annotated[Path | None, typer.Option(help="an explicit folder, searched first")]
LIST_OPTIONS = frozenset({"--hidden"})  # options that take several values: --hidden 512 128

out = Console()
err = Console(stderr=True)


class OneLineUsageErrors(TyperGroup):
    """The verbs, with every usage error (an unknown choice, a number out of range, a missing
    file, an unknown option) printed as one `error:` line on stderr, exit 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except Exception as exc:
            if not _is_usage_error(exc):
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":  # no verb: the help is the answer
                exc.show()  # type: ignore[attr-defined]
            else:
                _print_error(exc.format_message())  # type: ignore[attr-defined]
            sys.exit(USAGE_ERROR)
        sys.exit(code if isinstance(code, int) else 0)


def _is_usage_error(exc: Exception) -> bool:
    """Whether `exc` is the command-line parser's own usage error (Click's exit code 2)."""
    return getattr(exc, "exit_code", None) == USAGE_ERROR and hasattr(exc, "format_message")


def _print_error(message: str) -> None:
    """One problem a line on stderr, as `error: ...`."""
    for line in message.splitlines():
        # escaped: a message's own brackets (pip's '.[ray]') are text, not rich markup
        err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)


app = typer.Typer(
    cls=OneLineUsageErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """mnistlab: reproducible, fast neural-network experiments on MNIST-style data."""


@contextmanager
def _expected_errors() -> Iterator[None]:
    """Print an expected error as one line on stderr and exit 2, no traceback."""
    try:
        yield
    except MnistlabError as exc:
        _print_error(str(exc))
        raise typer.Exit(USAGE_ERROR) from None


class Output(StrEnum):
    softmax = "softmax"
    linear = "linear"


class BatchNorm(StrEnum):
    none = "none"
    before = "before"
    after = "after"


class Activation(StrEnum):
    """The hidden activations (`models.components`; a test keeps the two lists equal)."""

    linear = "linear"
    sigmoid = "sigmoid"
    tanh = "tanh"
    relu = "relu"
    leaky_relu = "leaky_relu"
    elu = "elu"


class Optimizer(StrEnum):
    """Keras's optimisers (`training.optimizers.OPTIMIZER_NAMES`; a test keeps them equal)."""

    sgd = "sgd"
    adam = "adam"
    adamw = "adamw"
    nadam = "nadam"
    rmsprop = "rmsprop"
    adagrad = "adagrad"
    adadelta = "adadelta"


class EngineName(StrEnum):
    auto = "auto"
    autograd = "autograd"
    lean = "lean"
    compiled = "compiled"


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Executor(StrEnum):
    """Where a study's runs train (`studies.options.ExecutorKind`; a test keeps them equal)."""

    local = "local"
    ray = "ray"


Threads = Annotated[int | None, typer.Option(min=1, help="torch threads (default: all cores)")]
DeviceOption = Annotated[Device, typer.Option(help="where to train (auto: CUDA when present)")]


@app.command()
def train(
    dataset: Annotated[
        str, typer.Option(help="registry name: mnist, fashion-mnist, digits")
    ] = "mnist",
    data_dir: Annotated[
        Path | None, typer.Option(help="folder holding the dataset's files")
    ] = None,
    hidden: Annotated[str, typer.Option(help="hidden layer sizes, e.g. --hidden 512 128")] = "128",
    activation: Annotated[
        Activation, typer.Option(help="hidden-layer activation")
    ] = Activation.relu,
    output: Annotated[Output, typer.Option(help="output activation")] = Output.softmax,
    dropout: Annotated[float, typer.Option(help="dropout rate after every hidden layer")] = 0.0,
    batch_norm: Annotated[
        BatchNorm, typer.Option(help="BatchNormalization around activations")
    ] = BatchNorm.none,
    l2: Annotated[float, typer.Option(help="Keras l2 penalty on every hidden kernel")] = 0.0,
    optimizer: Annotated[Optimizer, typer.Option(help="Keras optimiser")] = Optimizer.rmsprop,
    learning_rate: Annotated[
        float | None, typer.Option(help="default: the optimiser's Keras default")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="passes over the training data")] = 1,
    batch_size: Annotated[int, typer.Option(min=1, help="samples per step")] = 32,
    validation_split: Annotated[float | None, typer.Option(help="Keras validation_split")] = None,
    validate_on_test: Annotated[
        bool, typer.Option(help="use the test set as validation data")
    ] = False,
    seed: Annotated[int, typer.Option(help="fixes initialisation, shuffling and dropout")] = 0,
    threads: Threads = None,
    device: DeviceOption = Device.auto,
    save: Annotated[
        Path | None, typer.Option(help="save the trained weights (safetensors)")
    ] = None,
) -> None:
    """Train one MLP with a progress bar and print its test accuracy (exit 1 if it diverged)."""
    from mnistlab.api import train_mlp
    from mnistlab.status import RunStatus

    with _expected_errors():
        trained = train_mlp(
            _int_list("hidden", hidden),
            activation.value,
            dataset=dataset,
            data_dir=data_dir,
            output=output.value,
            dropout=dropout,
            batch_norm=batch_norm.value,
            l2=l2,
            optimizer=optimizer.value,
            learning_rate=learning_rate,
            epochs=epochs,
            batch_size=batch_size,
            validation_split=validation_split,
            validate_on_test=validate_on_test,
            seed=seed,
            threads=threads,
            device=device.value,
            save=save,
        )
    if trained.status == RunStatus.FAILED:
        reason = (trained.error or "").strip().splitlines()[-1:] or ["unknown error"]
        err.print(f"[red]run failed:[/red] {reason[0]}", highlight=False, soft_wrap=True)
        raise typer.Exit(RUN_FAILED)
    if trained.status == RunStatus.DIVERGED:
        epoch, batch = trained.history.diverged_at or (0, 0)
        out.print(f"run diverged at epoch {epoch + 1}, batch {batch}")
        raise typer.Exit(RUN_FAILED)
    if trained.test is not None:
        scores = trained.test
        out.print(f"test accuracy: {scores['accuracy']:.4f}  test loss: {scores['loss']:.4f}")
    if trained.saved is not None:
        out.print(f"weights saved to {trained.saved}")


def _int_list(field: str, text: str) -> tuple[int, ...]:
    """Parse '512,128' (what `--hidden 512 128` becomes) into integers."""
    try:
        return tuple(int(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise MnistlabError(f"{field}: expected integers, got {text!r}") from None


def normalize_argv(argv: list[str]) -> list[str]:
    """Join the values of several-valued options: `--hidden 512 128` → `--hidden 512,128`."""
    joined: list[str] = []
    i = 0
    while i < len(argv):
        joined.append(argv[i])
        i += 1
        if joined[-1] in LIST_OPTIONS:
            values = []
            while i < len(argv) and not argv[i].startswith("--"):
                values.append(argv[i])
                i += 1
            joined.append(",".join(values))
    return joined


def main() -> None:
    """Console-script entry point."""
    app(args=normalize_argv(sys.argv[1:]), prog_name="mnistlab")


# --- studies ---

DEFAULT_STUDY = Path("studies/quickstart.yaml")
Results = Annotated[Path, typer.Option(help="results folder (the store is mnistlab.db in it)")]
StudyFile = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a study file")]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="PATH=VALUE over every run (repeatable), e.g. --set training.epochs=1; "
        "the runs go to a derived study of their own name",
    ),
]
VariantOption = Annotated[
    list[str] | None,
    typer.Option("--variant", help="run only this variant (repeatable), as a derived study"),
]
NameOption = Annotated[
    str | None, typer.Option("--name", help="the derived study's name (with --set/--variant)")
]
MaxRuns = Annotated[
    int, typer.Option(min=1, help="refuse a study that expands to more runs than this")
]


class ExportTable(StrEnum):
    """The tables `show` prints (`studies.summary.TABLE_KINDS`; a test keeps them equal)."""

    summary = "summary"
    selection = "selection"
    cv = "cv"
    runs = "runs"


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    markdown = "markdown"


@app.command()
def run(
    study: StudyFile = DEFAULT_STUDY,
    results: Results = Path("results"),
    fresh: Annotated[bool, typer.Option(help="discard this study's stored runs first")] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="runs at once, in worker processes (default: one per core when every run "
            "is a small dense model, else 1)",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="torch threads per run (default: every core, one for small dense models; "
            "1 is faster on a machine other work keeps busy)",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="print the plan, run nothing")] = False,
    stack: Annotated[
        bool, typer.Option(help="train same-architecture runs as one stacked model")
    ] = True,
    data_dir: DataDirOption = None,
    device: DeviceOption = Device.auto,
    engine: Annotated[
        EngineName,
        typer.Option(
            help="training engine of every run (auto: the fastest that can train each run, "
            "with stacks; any other forces it and stacks nothing)"
        ),
    ] = EngineName.auto,
    report: Annotated[
        bool, typer.Option(help="write <results>/<study>/report.html at the end")
    ] = True,
    set_: SetOption = None,
    variant: VariantOption = None,
    name: NameOption = None,
    max_runs: MaxRuns = DEFAULT_MAX_RUNS,
    executor: Annotated[
        Executor, typer.Option(help="local: this machine; ray: Ray tasks on a Ray cluster")
    ] = Executor.local,
    address: Annotated[
        str | None,
        typer.Option(help="with ray: the cluster (auto, or ray://host:port); default: a local Ray"),
    ] = None,
    cpus_per_run: Annotated[
        int | None, typer.Option(min=1, help="with ray: CPUs of each run (default 1)")
    ] = None,
    gpus_per_run: Annotated[
        float | None,
        typer.Option(min=0, help="with ray: GPUs of each run, fractions share one (default 0)"),
    ] = None,
) -> None:
    """Run a study: skip finished runs, run the rest, print its summary table, write its report.

    The study is checked as `check` checks it first; a study it refuses writes nothing."""
    from mnistlab.data.cache import DataCache
    from mnistlab.studies import (
        ClusterOptions,
        ExecutorKind,
        RunOptions,
        StudyProgress,
        plan_study,
        run_study,
        study_report,
    )

    with _expected_errors():
        ray_flags = {
            "--address": address,
            "--cpus-per-run": cpus_per_run,
            "--gpus-per-run": gpus_per_run,
        }
        _check_executor_flags(executor, ray_flags, jobs)
        cluster = ClusterOptions(
            address=address, cpus_per_run=cpus_per_run or 1, gpus_per_run=gpus_per_run or 0.0
        )
        spec, source, _ = _load_study(study, set_, variant, name, max_runs)
        _warn_long_training(spec)
        options = RunOptions(
            results=results,
            data_dir=data_dir,
            jobs=jobs,
            threads=threads,
            device=device.value,
            fresh=fresh,
            stack=stack,
            engine=engine.value,
            executor=ExecutorKind(executor.value),
            cluster=cluster,
        )
        if dry_run:
            _render_plan(plan_study(spec, options))
            return
        data = DataCache(data_dir)  # read once, for the runs and the report
        with StudyProgress(err) as progress:
            counts = run_study(spec, source, replace(options, listener=progress), data)
        shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.counts.items()))
        out.print(f"{spec.name}: ran {counts.ran} runs; {shown}", highlight=False, soft_wrap=True)
        _render_report(study_report(spec.name, results))
        if report:
            from mnistlab.report import write_report

            path = write_report(
                spec.name, results, data_dir=data_dir, device=device.value, cache=data
            )
            out.print(f"report: {path}", highlight=False, soft_wrap=True)


def _check_executor_flags(executor: Executor, ray_flags: dict[str, Any], jobs: int | None) -> None:
    """Refuse flags the chosen executor ignores (one line, exit 2), rather than drop them."""
    if executor == Executor.local:
        given = [flag for flag, value in ray_flags.items() if value is not None]
        if given:
            raise MnistlabError(f"{', '.join(given)}: only with --executor ray")
    elif jobs is not None:
        raise MnistlabError("--jobs: only with --executor local (on Ray, use --cpus-per-run)")


@app.command()
def check(
    study: StudyFile,
    set_: SetOption = None,
    variant: VariantOption = None,
    name: NameOption = None,
    max_runs: MaxRuns = DEFAULT_MAX_RUNS,
) -> None:
    """Validate a study file as `run` would before training, and print how many runs it
    expands to; run nothing."""
    from mnistlab.studies import count_runs

    with _expected_errors():
        spec, _, derived = _load_study(study, set_, variant, name, max_runs)
        _warn_long_training(spec)
        as_name = f" (as study {spec.name!r})" if derived else ""
        out.print(f"{study}: ok, {count_runs(spec)} runs{as_name}", highlight=False, soft_wrap=True)


def _load_study(
    study: Path,
    sets: list[str] | None,
    variants: list[str] | None,
    name: str | None,
    max_runs: int,
) -> tuple[StudySpec, str, bool]:
    """The study file (derived by `--set`/`--variant`/`--name`), its source text, if derived.

    A derived study's source is the file's text with the derivation appended, so that the
    store tells a changed derivation from a rerun of the same one.
    """
    from mnistlab.studies import derive_study, parse_study
    from mnistlab.studies.loading import read_study_text

    text = read_study_text(study)
    spec = parse_study(text, str(study), max_runs)
    derived = derive_study(spec, sets or (), variants or (), name, max_runs)
    if derived is spec:
        return spec, text, False
    flags = [*(f"--set {s}" for s in sets or ()), *(f"--variant {v}" for v in variants or ())]
    return derived, f"{text}\n# derived as {derived.name}: {' '.join(flags)}\n", True


def _warn_long_training(spec: StudySpec) -> None:
    """A `warning:` line on stderr per over-long setting (epochs, steps), with its time."""
    from mnistlab.studies.expand import study_configs
    from mnistlab.studies.feasibility import long_training_warnings

    for line in long_training_warnings(study_configs(spec)[0]):
        err.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)


@app.command()
def studies(results: Results = Path("results")) -> None:
    """List the studies in the results store."""
    from mnistlab.status import FINISHED, RunStatus
    from mnistlab.studies import list_studies

    with _expected_errors():
        listed = list_studies(results)
    finished = [status for status in RunStatus if status in FINISHED]
    table = Table()
    table.add_column("study", no_wrap=True)
    for title in ("runs", *finished, RunStatus.PENDING):  # pending counts the running ones
        table.add_column(title, justify="right")
    table.add_column("updated (UTC)", no_wrap=True)
    for entry in listed:
        counts = entry.counts
        table.add_row(
            entry.name,
            str(entry.total),
            *(str(counts.get(status, 0)) for status in finished),
            str(counts.get(RunStatus.PENDING, 0) + counts.get(RunStatus.RUNNING, 0)),
            entry.updated[:16].replace("T", " "),
        )
    out.print(table)


@app.command()
def show(
    study: Annotated[str, typer.Argument(help="a study name in the store")],
    results: Results = Path("results"),
    runs: Annotated[bool, typer.Option(help="also list every run")] = False,
    sort: Annotated[str | None, typer.Option(help="sort rows by this column")] = None,
) -> None:
    """Print a study's summary table (mean ± std over repetitions), selections and CV."""
    from mnistlab.studies import study_report

    with _expected_errors():
        report = study_report(study, results, sort=sort, with_runs=runs)
    _render_report(report)


@app.command()
def compare(
    study_a: Annotated[str, typer.Argument(help="first study")],
    study_b: Annotated[str, typer.Argument(help="second study")],
    results: Results = Path("results"),
) -> None:
    """Put two studies' summary tables side by side, matched on their shared columns."""
    from mnistlab.studies import compare_studies

    with _expected_errors():
        table = compare_studies(study_a, study_b, results)
    _render_table(table)


class ExportTarget(StrEnum):
    """Where `export` writes: a table as text, MLflow runs, or TensorBoard event files."""

    table = "table"
    mlflow = "mlflow"
    tensorboard = "tensorboard"


@app.command()
def export(
    study: Annotated[str, typer.Argument(help="a study name in the store")],
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="--to tensorboard: the log folder (default: tensorboard/ next to the results)"
        ),
    ] = None,
    to: Annotated[ExportTarget, typer.Option(help="what to export to")] = ExportTarget.table,
    format: Annotated[ExportFormat, typer.Option(help="output format")] = ExportFormat.csv,
    table: Annotated[
        ExportTable, typer.Option(help="which of show's tables")
    ] = ExportTable.summary,
    results: Results = Path("results"),
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write")] = None,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="--to mlflow: where (default $MLFLOW_TRACKING_URI, else mlruns/ next to the "
            "results)"
        ),
    ] = None,
) -> None:
    """Export a study: one of its tables (summary, selection, cv, runs) as CSV, JSON or
    Markdown (stdout unless -o; CSV and JSON hold raw numbers, mean/std/n in columns), or
    its finished runs to MLflow (--to mlflow) or TensorBoard (--to tensorboard [FOLDER]).

    Exporting to a tracker again adds only what it does not hold yet."""
    if folder is not None and to is not ExportTarget.tensorboard:
        raise typer.BadParameter(f"{folder}: a folder is only for --to tensorboard (-o: a file)")
    if to is not ExportTarget.table:
        _export_to_tracker(to, study, results, folder, tracking_uri)
        return
    from mnistlab.studies import export_study

    with _expected_errors():
        text = export_study(study, results, format.value, table.value)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        out.print(f"written {output}", highlight=False, soft_wrap=True)


def _export_to_tracker(
    to: ExportTarget, study: str, results: Path, folder: Path | None, tracking_uri: str | None
) -> None:
    """`export --to mlflow|tensorboard`: write the study's runs and print what was done."""
    from mnistlab.results import open_results
    from mnistlab.trackers import export_mlflow, export_tensorboard

    with _expected_errors(), open_results(results) as opened:
        if to is ExportTarget.mlflow:
            summary = export_mlflow(opened, study, tracking_uri)
        else:
            summary = export_tensorboard(opened, study, folder)
    out.print(summary.line(), highlight=False, soft_wrap=True)


@app.command("report")
def report_(
    study: Annotated[str, typer.Argument(help="a study name in the store")],
    results: Results = Path("results"),
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write a study's self-contained HTML report (default <results>/<study>/report.html)."""
    from mnistlab.report import write_report

    with _expected_errors():
        path = write_report(study, results, output=output, data_dir=data_dir)
    out.print(f"report: {path}", highlight=False, soft_wrap=True)


@app.command()
def analyze(
    study: Annotated[str, typer.Argument(help="a study name in the store")],
    analysis: Annotated[
        list[str], typer.Option("--analysis", "-a", help="an analysis name (repeatable)")
    ],
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", "-o", help="KEY=VALUE laid over each analysis's options (repeatable)"
        ),
    ] = None,
    results: Results = Path("results"),
    data_dir: DataDirOption = None,
) -> None:
    """Compute analyses of a finished study from its stored weights and histories, each
    written as <results>/<study>/analysis-NAME.html."""
    from mnistlab.report import write_report
    from mnistlab.spec import parse_assignments

    with _expected_errors():
        overrides = parse_assignments(option or [], "--option")
        for name in analysis:
            path = write_report(
                study,
                results,
                names=[name],
                overrides=overrides,
                output=results / study / f"analysis-{name}.html",
                data_dir=data_dir,
            )
            out.print(f"{name}: {path}", highlight=False, soft_wrap=True)


def _render_plan(plan: Plan) -> None:
    table = Table("variant", "runs", "to do", "epochs each")
    for name, total, todo, epochs in plan.by_variant():
        table.add_row(name or "-", str(total), str(todo), epochs)
    out.print(table)
    estimate = plan.estimate_seconds
    when = (
        f"about {estimate / 60:.1f} min at the measured pace"
        if estimate
        else ("time not estimated yet: no run of this study has been measured")
    )
    out.print(
        f"{plan.study.name}: {len(plan.runs)} runs, {len(plan.todo)} to do; {when}", highlight=False
    )


def _render_report(report: Report) -> None:
    for table in report.tables:
        _render_table(table)


def _render_table(table: SummaryTable) -> None:
    rendered = Table(
        *table.columns,
        title=table.title,
        title_justify="left",
        caption=table.note,
        caption_justify="left",
    )
    for row in table.rows:
        rendered.add_row(*row)
    out.print(rendered)


# --- the backpropagation worked example ---


class SSE(StrEnum):
    half = "half"
    sum = "sum"


@app.command()
def ui(
    results: Results = Path("results"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
    host: Annotated[
        str, typer.Option(help="address to bind (127.0.0.1: this machine only)")
    ] = "127.0.0.1",
) -> None:
    """Browse, compare and watch the studies of a results folder in the browser, and draw a
    digit for a stored model (read-only on the store)."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        _print_error("mnistlab ui needs the web extras: pip install 'mnistlab[ui]'")
        raise typer.Exit(USAGE_ERROR) from None
    from mnistlab.ui import serve

    out.print(f"mnistlab ui: http://{host}:{port}/ (Ctrl+C to stop)", highlight=False)
    serve(results, host=host, port=port)


@app.command("backprop-example")
def backprop_example(
    eta: Annotated[float, typer.Option(help="the learning rate of the one step")] = 0.1,
    sse: Annotated[SSE, typer.Option(help="loss: half = ½·Σ(ŷ−y)², sum = Σ(ŷ−y)²")] = SSE.half,
) -> None:
    """One gradient-descent step of the 2-4-1 worked example, checked against autograd."""
    from mnistlab.models.worked_example import backprop_example as compute

    with _expected_errors():
        example = compute(eta, sse.value)
    _render_worked_example(example)


def _render_worked_example(example: WorkedExample) -> None:
    fmt = "{:g}".format
    out.print(
        f"2-4-1 network, ReLU hidden, linear output; loss = {example.formula} summed over "
        f"the mini-batch ({example.sse} convention); eta = {fmt(example.eta)}",
        highlight=False,
    )
    table = Table("sample", "x", "target", "z1 (pre-activations)", "a1 = ReLU(z1)", "ŷ = z2")
    for i in range(len(example.inputs)):
        table.add_row(
            f"x{i + 1}",
            _vector(example.inputs[i]),
            fmt(example.targets[i]),
            _vector(example.z1[i]),
            _vector(example.a1[i]),
            fmt(example.outputs[i]),
        )
    out.print(table)
    out.print(f"loss before the step: {fmt(example.loss)}", highlight=False)
    params = Table("parameter", "gradient", "updated = old − eta·gradient")
    for name, value in example.updated.items():
        params.add_row(name, _matrix(example.gradients[name]), _matrix(value))
    out.print(params)
    out.print(
        f"PyTorch autograd agrees: largest difference {example.autograd_max_error:.1e}",
        highlight=False,
    )


def _vector(values: object) -> str:
    import numpy as np

    return "(" + ", ".join(f"{v:g}" for v in np.asarray(values).ravel()) + ")"


def _matrix(values: object) -> str:
    import numpy as np

    array = np.atleast_2d(np.asarray(values))
    return "\n".join("[" + ", ".join(f"{v:g}" for v in row) + "]" for row in array)


# --- mnistlab data ---

data_app = typer.Typer(no_args_is_help=True, help="The datasets: where they are, what they hold.")
app.add_typer(data_app, name="data")


@data_app.command("list")
def data_list() -> None:
    """List the registered datasets."""
    from mnistlab.data import list_datasets

    table = Table("name", "classes", "files", "license", "description")
    for entry in list_datasets():
        table.add_row(
            entry.name,
            str(entry.n_classes),
            str(len(entry.files)),
            entry.license,
            entry.description,
        )
    out.print(table)


@data_app.command("path")
def data_path(name: str, data_dir: DataDirOption = None) -> None:
    """Print the folder NAME resolves to (never downloads); exit 1 when found nowhere."""
    from mnistlab.data import dataset_location

    with _expected_errors():
        where = dataset_location(name, data_dir)
    if where.place is None:
        searched = "; ".join(str(place) for place in where.searched)
        err.print(f"{name}: not found; searched {searched}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print(str(where.place.path), highlight=False, soft_wrap=True)


@data_app.command("info")
def data_info(
    name: str,
    data_dir: DataDirOption = None,
    download: Annotated[bool, typer.Option(help="download when found nowhere")] = False,
) -> None:
    """Sizes, image shape and class counts of a dataset (a registered name or your file)."""
    from mnistlab.data import dataset_info

    with _expected_errors():
        info = dataset_info(name, data_dir, download=download)
    out.print(f"{info.name}: {info.source}", highlight=False, soft_wrap=True)
    out.print(
        f"image shape {info.image_shape}, {info.n_classes} classes, "
        f"fingerprint {info.fingerprint[:16]}"
    )
    table = Table("class", *(split.name for split in info.splits))
    for index, label in enumerate(info.classes):
        table.add_row(label, *(f"{split.class_counts[index]:,}" for split in info.splits))
    table.add_row("total", *(f"{split.size:,}" for split in info.splits), style="bold")
    out.print(table)


@data_app.command("verify")
def data_verify(name: str, data_dir: DataDirOption = None) -> None:
    """Check every file of a registered dataset against its SHA256; exit 1 on a problem."""
    from mnistlab.data import verify_dataset

    with _expected_errors():
        report = verify_dataset(name, data_dir)
    where = report.location.place
    out.print(f"{name}: {where if where else 'found nowhere'}", highlight=False, soft_wrap=True)
    table = Table("file", "status", "sha256")
    for check in report.files:
        colour = "green" if check.status == "ok" else "red"
        table.add_row(
            check.name,
            f"[{colour}]{check.status}[/{colour}]",
            (check.actual or check.expected)[:16],
        )
    out.print(table)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def predict(
    model: Annotated[
        str, typer.Argument(help="a stored run (STUDY/RUN_ID, run id or prefix) or a .safetensors")
    ],
    images: Annotated[list[Path], typer.Argument(help="PNG / JPEG images of single digits")],
    results: Results = Path("results"),
    json_output: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Classify digit images of any size: each is inverted if dark-on-light, cropped, scaled
    to 20x20 and centred by mass in 28x28 as MNIST's digits were, then scaled as the run's
    data. Prints each digit with its top probabilities; a file that cannot be read gets one
    error line and the others are still classified (exit 2 if any failed)."""
    import json

    from mnistlab.predict import predict_files

    with _expected_errors():
        predictions = predict_files(model, images, results, data_dir)
    if json_output:
        rows = [
            {"file": p.file, "error": p.error}
            if p.error
            else {"file": p.file, "digit": p.digit, "probabilities": list(p.probabilities)}
            for p in predictions
        ]
        out.print_json(json.dumps(rows))
    for p in predictions:
        if p.error:
            if not json_output:
                err.print(f"[red]error:[/red] {p.error}", highlight=False, soft_wrap=True)
            continue
        if not json_output:
            top = ", ".join(f"{digit}: {prob:.3f}" for digit, prob in p.top())
            out.print(f"{p.file}: {p.digit}  ({top})", highlight=False, soft_wrap=True)
    if any(p.error for p in predictions):
        raise typer.Exit(USAGE_ERROR)


if __name__ == "__main__":
    main()
