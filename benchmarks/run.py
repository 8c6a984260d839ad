"""mnistlab against a plain PyTorch loop, Keras 3 (TensorFlow CPU) and scikit-learn.

One command runs the same workloads side by side and prints one table:

    .venv/bin/python benchmarks/run.py [--quick] [--only a,b,c,d,e] [--no-keras]

Workloads (float32, full MNIST 60k/10k, inputs / 255):
  a  784-512-128-10 ReLU, Adam 1e-3, batch 128
  b  784-30-10 sigmoid, SGD 0.1, batch 10
  c  8 and 32 models 784-50-30-10 ReLU, Adam, batch 128 (repetitions x learning rates):
     mnistlab's stacked trainer against the same models one after another
  d  the mlp-architectures study (19 cells x 3 repetitions x 20 epochs, validation on the
     test set each epoch, cross-validation excluded): ESTIMATED from 2 measured epochs of
     each distinct configuration in each engine (first epoch + 19 steady epochs per run)
  e  the vanishing-gradient study's nets, sigmoid SGD 0.01, batch 2 (30,000 steps an epoch):
     e1 784-15-10 and e6 784-15-25-50-75-100-150-10; mnistlab's default engine (compiled)
     against its lean step, the plain torch loop and Keras; FLOP bound at one thread

Per-epoch time is the median of the epochs after a warm-up epoch; accuracy is on the test
set after all the epochs. The FLOP bound is the workload's matmul FLOPs per epoch divided by
a float32 GEMM rate measured at the start of the same run. Keras runs in a separate virtual
environment (created on demand, never a dependency of mnistlab), in a subprocess.
Importing mnistlab flushes denormal floats to zero in this process (as TensorFlow does), so
the in-process torch loop and scikit-learn run with that setting too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mnistlab.data import DataSpec, load_data
from mnistlab.models import MLPSpec, build_mlp
from mnistlab.runtime import configure_threads, default_threads, make_generator
from mnistlab.studies.expand import expand
from mnistlab.studies.loading import load_study
from mnistlab.studies.options import RunOptions
from mnistlab.studies.results_folder import open_store
from mnistlab.studies.runner import run_study
from mnistlab.studies.spec import RepetitionsSpec, StudySpec
from mnistlab.studies.stacking import stack_groups
from mnistlab.training.engines import Engine
from mnistlab.training.loop import evaluate, fit
from mnistlab.training.spec import TrainSpec
from mnistlab.training.stacked import fit_stack, stack_pays
from mnistlab.training.state import RunSeeds

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_KERAS_ENV = Path("/tmp/mnistlab-bench-keras")
STUDY = ROOT / "studies" / "mlp-architectures.yaml"
INPUT_DIM, CLASSES = 784, 10
THREADS = len(os.sched_getaffinity(0))  # mnistlab's default: every core this process may use
QUIET = {"wait": 60.0, "threshold": 0.15}  # before each engine: wait for other CPU users


# --- workloads ---


@dataclass(frozen=True)
class Workload:
    """One MLP training set-up, as every engine will run it."""

    key: str
    title: str
    hidden: tuple[int, ...]
    activation: str  # mnistlab / Keras name
    optimizer: str  # "adam" or "sgd"
    learning_rate: float
    batch_size: int

    @property
    def dims(self) -> list[int]:
        return [INPUT_DIM, *self.hidden, CLASSES]


WORKLOAD_A = Workload(
    "a", "784-512-128-10 ReLU, Adam, batch 128", (512, 128), "relu", "adam", 1e-3, 128
)
WORKLOAD_B = Workload("b", "784-30-10 sigmoid, SGD 0.1, batch 10", (30,), "sigmoid", "sgd", 0.1, 10)
WORKLOAD_C = Workload(
    "c", "784-50-30-10 ReLU, Adam, batch 128", (50, 30), "relu", "adam", 1e-3, 128
)
WORKLOAD_E = (
    Workload("e1", "784-15-10 sigmoid, SGD 0.01, batch 2", (15,), "sigmoid", "sgd", 0.01, 2),
    Workload(
        "e6",
        "784-15-25-50-75-100-150-10 sigmoid, SGD 0.01, batch 2",
        (15, 25, 50, 75, 100, 150),
        "sigmoid",
        "sgd",
        0.01,
        2,
    ),
)
E_EPOCHS = 3  # Keras takes ~1 ms a step here: 30 s an epoch
C_GRIDS = {  # members -> (repetitions, learning rates)
    8: (2, [3e-4, 1e-3, 3e-3, 1e-2]),
    32: (4, [1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2]),
}
D_REPETITIONS, D_EPOCHS = 3, 20


def train_flops(dims: Sequence[int], rows: int) -> float:
    """Matmul FLOPs of one epoch over `rows` samples (elementwise work not counted).

    Per sample and Dense layer (in, out): forward 2·in·out, weight gradient 2·in·out and,
    for every layer but the first (its input needs no gradient), input gradient 2·in·out.
    """
    layers = list(itertools.pairwise(dims))
    forward = sum(2 * i * o for i, o in layers)
    weight_grads = forward
    input_grads = sum(2 * i * o for i, o in layers[1:])
    return float(rows) * (forward + weight_grads + input_grads)


# --- measurements ---


@dataclass
class Result:
    """One engine on one workload: per-epoch wall times and the final test accuracy."""

    workload: str
    engine: str
    epoch_times: list[float]
    accuracy: float | None = None
    note: str = ""
    warmup: int = 1
    flops: float | None = None  # per epoch
    members: int = 1
    foreign: float | None = None  # cores other processes used while it ran (/proc/stat)

    @property
    def measured(self) -> list[float]:
        return self.epoch_times[self.warmup :] or self.epoch_times

    @property
    def median(self) -> float:
        return statistics.median(self.measured)


@dataclass
class Machine:
    """What the run measured about this machine before the workloads."""

    rates: dict[str, float] = field(default_factory=dict)  # label -> FLOP/s
    bandwidth: float = 0.0  # bytes/s, large copy
    info: dict[str, Any] = field(default_factory=dict)


def gemm_rate(m: int, k: int, n: int, repeats: int = 7, target: float = 0.05) -> float:
    """Median float32 FLOP/s of `torch.mm` (m, k) @ (k, n) into a preallocated output."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    for _ in range(3):
        torch.mm(a, b, out=out)
    calls, elapsed = 1, 0.0
    while elapsed < target:  # calls per sample so one sample lasts ~target seconds
        calls *= 2
        started = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        elapsed = time.perf_counter() - started
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        samples.append((time.perf_counter() - started) / calls)
    return 2.0 * m * k * n / statistics.median(samples)


def copy_bandwidth(megabytes: int = 256, repeats: int = 7) -> float:
    """Bytes/s read+written by a large float32 tensor copy (memory, not cache)."""
    src = torch.ones(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        dst.copy_(src)
        samples.append(time.perf_counter() - started)
    return 2.0 * src.numel() * 4 / statistics.median(samples)


def measure_machine(batch_sizes: Sequence[tuple[str, int, int, int]]) -> Machine:
    machine = Machine()
    for label, m, k, n in batch_sizes:
        machine.rates[label] = gemm_rate(m, k, n)
    machine.rates["square 2048"] = gemm_rate(2048, 2048, 2048, repeats=5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # (e) runs on one thread: its bound is one core's rate
    machine.rates[ONE_THREAD_RATE] = gemm_rate(1024, 1024, 1024, repeats=5)
    torch.set_num_threads(threads)
    machine.bandwidth = copy_bandwidth()
    machine.info = {
        "cpu": _cpu_name(),
        "cores": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "torch threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    return machine


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --- other processes' load ---


def _machine_busy() -> float | None:
    """CPU seconds the whole machine spent busy so far (/proc/stat), None if unknown."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def _own_cpu() -> float:
    """CPU seconds of this process and its finished children (the Keras worker)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class LoadMeter:
    """Cores that OTHER processes kept busy during a block: machine busy time minus ours.

    Other users of this machine may run in other PID namespaces (invisible to ps/pgrep);
    /proc/stat still counts them. With every core in use by torch, one foreign busy core
    can slow a step by 10x or more (OpenMP threads wait on the descheduled one).
    """

    def __enter__(self) -> LoadMeter:
        self.busy, self.own, self.wall = _machine_busy(), _own_cpu(), time.perf_counter()
        self.foreign: float | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        busy, own, wall = _machine_busy(), _own_cpu(), time.perf_counter() - self.wall
        if busy is not None and self.busy is not None and wall > 0:
            self.foreign = max(0.0, ((busy - self.busy) - (own - self.own)) / wall)


def wait_for_quiet(window: float = 1.0) -> float:
    """Sleep until other processes use < QUIET['threshold'] cores (at most QUIET['wait'] s).

    Returns
    -------
    float, the seconds waited.
    """
    started = time.perf_counter()
    while True:
        with LoadMeter() as meter:
            time.sleep(window)
        waited = time.perf_counter() - started
        if meter.foreign is None or meter.foreign < QUIET["threshold"]:
            return waited
        if waited >= QUIET["wait"]:
            print(f"  (other processes still use {meter.foreign:.1f} cores; measuring anyway)")
            return waited


def measure(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one engine after the machine is quiet; record the foreign load on its results."""
    wait_for_quiet()
    with LoadMeter() as meter:
        out = fn(*args, **kwargs)
    for r in out if isinstance(out, list) else [out]:
        if isinstance(r, Result):
            r.foreign = meter.foreign
            _progress(r)
    return out


# --- engine: mnistlab ---


def mnistlab_specs(w: Workload, epochs: int, lr: float | None = None) -> tuple[MLPSpec, TrainSpec]:
    model = MLPSpec(hidden=w.hidden, activation=w.activation)
    train = TrainSpec(
        optimizer={"name": w.optimizer, "learning_rate": lr or w.learning_rate},
        epochs=epochs,
        batch_size=w.batch_size,
    )
    return model, train


def run_mnistlab(
    data: Any,
    w: Workload,
    epochs: int,
    seed: int = 0,
    lr: float | None = None,
    threads: int | None = None,
    engine: Engine = "auto",
) -> Result:
    """The public training loop: `build_mlp` + `mnistlab.training.loop.fit`."""
    model_spec, train_spec = mnistlab_specs(w, epochs, lr)
    net = build_mlp(model_spec, INPUT_DIM, CLASSES, make_generator(RunSeeds.from_seed(seed).init))
    history = fit(net, data.train, train_spec, seed=seed, threads=threads, engine=engine)
    accuracy = evaluate(net, data.test, train_spec)["accuracy"]
    configure_threads(THREADS)  # fit may have chosen one thread for a small model
    name = "mnistlab fit" if threads is None else f"mnistlab fit, threads={threads}"
    if engine != "auto":
        name += f", engine={engine}"
    return Result(w.key, name, history.history["time"], accuracy, note=history.engine)


# --- engine: plain PyTorch ---


def torch_model(w: Workload) -> nn.Sequential:
    act: Callable[[], nn.Module] = nn.ReLU if w.activation == "relu" else nn.Sigmoid
    layers: list[nn.Module] = []
    for i, o in zip(w.dims[:-2], w.dims[1:-1], strict=True):
        layers += [nn.Linear(i, o), act()]
    layers.append(nn.Linear(w.dims[-2], w.dims[-1]))
    return nn.Sequential(*layers)


def torch_optimizer(w: Workload, model: nn.Module) -> torch.optim.Optimizer:
    if w.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=w.learning_rate)
    return torch.optim.SGD(model.parameters(), lr=w.learning_rate)


def run_torch(data: Any, w: Workload, epochs: int, seed: int = 0) -> Result:
    """Idiomatic loop: nn.Sequential, torch.optim, randperm batches of in-memory tensors."""
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    model, (x, y) = torch_model(w), (data.train.x, data.train.y)
    optimizer, loss_fn = torch_optimizer(w, model), nn.CrossEntropyLoss()
    n, batch, times = len(x), w.batch_size, []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        perm = torch.randperm(n)
        total, correct = 0.0, 0
        for start in range(0, n, batch):
            idx = perm[start : start + batch]
            xb, yb = x[idx], y[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)  # the running metrics Keras and mnistlab report
            correct += int((logits.argmax(1) == yb).sum())
        times.append(time.perf_counter() - started)
    return Result(w.key, "torch loop", times, _torch_accuracy(model, data.test))


def run_torch_dataloader(data: Any, w: Workload, epochs: int, seed: int = 0) -> Result:
    """The same loop fed by DataLoader(TensorDataset, shuffle=True), num_workers=0."""
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    model = torch_model(w)
    optimizer, loss_fn = torch_optimizer(w, model), nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data.train.x, data.train.y),
        batch_size=w.batch_size,
        shuffle=True,
    )
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        total, correct = 0.0, 0
        for xb, yb in loader:
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
        times.append(time.perf_counter() - started)
    return Result(w.key, "torch DataLoader", times, _torch_accuracy(model, data.test))


@torch.no_grad()
def _torch_accuracy(model: nn.Module, split: Any) -> float:
    model.eval()
    return float((model(split.x).argmax(1) == split.y).float().mean())


# --- engine: scikit-learn ---


def run_sklearn(data: Any, w: Workload, epochs: int, seed: int = 0) -> Result:
    """MLPClassifier, one `partial_fit` (one epoch, shuffled) per timed epoch."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    options: dict[str, Any] = {"solver": w.optimizer}
    if w.optimizer == "sgd":
        options.update(learning_rate="constant", momentum=0.0, nesterovs_momentum=False)
    clf = MLPClassifier(
        hidden_layer_sizes=w.hidden,
        activation="relu" if w.activation == "relu" else "logistic",
        alpha=0.0,
        batch_size=w.batch_size,
        learning_rate_init=w.learning_rate,
        shuffle=True,
        random_state=seed,
        **options,
    )
    x, y = data.train.x.numpy(), data.train.y.numpy()
    classes = np.arange(CLASSES)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(epochs):
            started = time.perf_counter()
            clf.partial_fit(x, y, classes=classes)
            times.append(time.perf_counter() - started)
    accuracy = float(clf.score(data.test.x.numpy(), data.test.y.numpy()))
    return Result(
        w.key,
        "sklearn MLPClassifier",
        times,
        accuracy,
        note=f"{x.dtype} weights: {clf.coefs_[0].dtype}",
    )


# --- engine: Keras (separate environment) ---


class Keras:
    """Keras 3 / TensorFlow CPU in its own venv, driven through `keras_worker.py`."""

    def __init__(self, env: Path, workdir: Path, data: Any) -> None:
        self.env, self.workdir, self.data = env, workdir, data
        self.python: Path | None = None
        self.info: dict[str, Any] = {}
        self.problem = ""
        self._exported = False

    def prepare(self, create: bool = True) -> bool:
        python = self.env / "bin" / "python"
        if python.exists() and self._works(python):
            self.python = python
            return True
        if not create:
            self.problem = f"no working Keras environment at {self.env}"
            return False
        print(f"creating the Keras environment {self.env} (venv + pip install tensorflow-cpu)...")
        try:
            subprocess.run([sys.executable, "-m", "venv", str(self.env)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "tensorflow-cpu"],
                check=True,
                timeout=1800,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            self.problem = f"could not create the Keras environment at {self.env}: {exc}"
            return False
        if not self._works(python):
            self.problem = f"{self.env} was created but `import keras, tensorflow` fails"
            return False
        self.python = python
        return True

    @staticmethod
    def _works(python: Path) -> bool:
        try:
            done = subprocess.run(
                [str(python), "-c", "import keras, tensorflow"],
                capture_output=True,
                timeout=300,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
        except (subprocess.SubprocessError, OSError):
            return False
        return done.returncode == 0

    def _export(self) -> None:
        if self._exported:
            return
        for name, tensor in (
            ("x_train", self.data.train.x),
            ("y_train", self.data.train.y),
            ("x_test", self.data.test.x),
            ("y_test", self.data.test.y),
        ):
            np.save(self.workdir / f"{name}.npy", tensor.numpy())
        self._exported = True

    def run(self, jobs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Train `jobs` in one worker process; None (and `problem` set) when it fails."""
        if self.python is None:
            return None
        self._export()
        job_file = self.workdir / "job.json"
        job_file.write_text(json.dumps({"data": str(self.workdir), "jobs": jobs}))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
        done = subprocess.run(
            [str(self.python), str(HERE / "keras_worker.py"), str(job_file)],
            capture_output=True,
            text=True,
            env=env,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            self.problem = f"Keras worker failed (exit {done.returncode}): {done.stderr[-2000:]}"
            print(self.problem, file=sys.stderr)
            return None
        payload = json.loads(lines[-1])
        self.info = payload["info"]
        return payload["results"]


def keras_job(w: Workload, name: str, epochs: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "hidden": list(w.hidden),
        "activation": w.activation,
        "optimizer": w.optimizer,
        "learning_rate": w.learning_rate,
        "batch_size": w.batch_size,
        "epochs": epochs,
        **extra,
    }


def keras_results(keras: Keras | None, workload: str, jobs: list[dict[str, Any]]) -> list[Result]:
    if keras is None:
        return []
    results = keras.run(jobs)
    if results is None:
        return []
    out = []
    for job, r in zip(jobs, results, strict=True):
        note = f"jit_compile={r['jit_compile']}"
        out.append(Result(workload, job["name"], r["epoch_times"], r.get("test_accuracy"), note))
    return out


# --- the workloads ---


def workload_ab(
    w: Workload, data: Any, epochs: int, keras: Keras | None, dataloader: bool
) -> list[Result]:
    results = [measure(run_mnistlab, data, w, epochs)]
    results.append(measure(run_mnistlab, data, w, epochs, engine="lean"))
    results.append(measure(run_mnistlab, data, w, epochs, threads=other_threads(w)))
    results.append(measure(run_torch, data, w, epochs))
    if dataloader:
        results.append(measure(run_torch_dataloader, data, w, epochs))
    jobs = [keras_job(w, "keras fit (default)", epochs)]
    if w.key == "b":
        jobs.append(keras_job(w, "keras steps_per_execution=100", epochs, steps_per_execution=100))
    results += measure(keras_results, keras, w.key, jobs)
    results.append(measure(run_sklearn, data, w, epochs))
    if w.key == "b":
        for jobs, stack in ((1, False), (None, False), (None, True)):
            results.append(measure(run_small_study, data, w, epochs, jobs, stack))
    for r in results:
        r.flops = train_flops(w.dims, len(data.train.x))
    return results


def workload_e(data: Any, epochs: int, keras: Keras | None) -> list[Result]:
    """(e): the default engine against the lean step, the torch loop and Keras, per net."""
    results: list[Result] = []
    for w in WORKLOAD_E:
        rows = [
            measure(run_mnistlab, data, w, epochs),
            measure(run_mnistlab, data, w, epochs, engine="lean"),
            measure(run_torch, data, w, epochs),
        ]
        rows += measure(keras_results, keras, w.key, [keras_job(w, "keras fit (default)", epochs)])
        for r in rows:
            r.flops = train_flops(w.dims, len(data.train.x))
        results += rows
    return results


def other_threads(w: Workload) -> int:
    """The thread count `fit` does not choose for this workload, to show what the choice buys."""
    model_spec, _ = mnistlab_specs(w, 1)
    net = build_mlp(model_spec, INPUT_DIM, CLASSES, make_generator(0))
    return THREADS if default_threads(net, w.batch_size) == 1 else 1


POOL_RUNS = 4  # (b) as a study: repetitions of its model, for the workers-versus-threads rows


def run_small_study(data: Any, w: Workload, epochs: int, jobs: int | None, stack: bool) -> Result:
    """`run_study` of POOL_RUNS repetitions of the workload's model: wall time per run-epoch.

    Shows what `auto_jobs` buys for small models (1-thread workers) against one process on
    every core, and what stacking them does instead; data loading and worker start-up are
    inside the time, as a user waits for them.
    """
    model_spec, train_spec = mnistlab_specs(w, epochs)
    spec = StudySpec(
        name=f"bench-{w.key}",
        data=DataSpec(dataset="mnist"),
        model=model_spec,
        training=train_spec,
        repetitions=POOL_RUNS,
    )
    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-study-") as tmp:
        started = time.perf_counter()
        run_study(spec, "benchmark", RunOptions(Path(tmp), jobs=jobs, stack=stack, captures=()))
        wall = time.perf_counter() - started
        with open_store(Path(tmp)) as store:
            accs = [r.metrics["test_accuracy"] for r in store.runs(spec.name)]
    how = "default" if stack else ("--no-stack" if jobs is None else f"--jobs {jobs} --no-stack")
    configure_threads(THREADS)
    return Result(
        w.key,
        f"mnistlab run {POOL_RUNS} runs, {how}",
        [wall / (POOL_RUNS * epochs)],
        statistics.mean(accs),
        note=f"s per run-epoch, wall incl. start-up; {POOL_RUNS} runs x {epochs} epochs",
        warmup=0,
    )


def run_stack(data: Any, w: Workload, epochs: int, members: int) -> Result:
    """`fit_stack` over the (c) grid of `members` runs: repetitions x learning rates."""
    reps, rates = C_GRIDS[members]
    grid = [(seed, lr) for seed in range(reps) for lr in rates]
    model_spec, _ = mnistlab_specs(w, epochs)
    nets = [
        build_mlp(model_spec, INPUT_DIM, CLASSES, make_generator(RunSeeds.from_seed(s).init))
        for s, _ in grid
    ]
    specs = [mnistlab_specs(w, epochs, lr)[1] for _, lr in grid]
    histories = fit_stack(nets, data.train, specs, seeds=[s for s, _ in grid])
    accs = [evaluate(n, data.test, spec)["accuracy"] for n, spec in zip(nets, specs, strict=True)]
    return Result(
        "c",
        f"mnistlab fit_stack, {members} models",
        histories[0].history["time"],
        statistics.mean(accs),
        note=f"{reps} seeds x {len(rates)} lrs; acc = mean over members",
        members=members,
    )


def run_one_after_another(data: Any, w: Workload, epochs: int, members: int) -> Result:
    """The same runs as `run_stack`, each its own `fit`; epoch time = sum over the runs."""
    reps, rates = C_GRIDS[members]
    singles = [run_mnistlab(data, w, epochs, seed=s, lr=lr) for s in range(reps) for lr in rates]
    return Result(
        "c",
        f"mnistlab fit, {members} models one after another",
        [sum(r.epoch_times[e] for r in singles) for e in range(epochs)],
        statistics.mean(r.accuracy or 0.0 for r in singles),
        note="epoch time = sum over the models",
        members=members,
    )


def workload_c(data: Any, epochs: int, keras: Keras | None) -> list[Result]:
    w = WORKLOAD_C
    one = measure(run_mnistlab, data, w, epochs)
    one.engine = "mnistlab fit, 1 model"
    results = [one]
    for members in C_GRIDS:
        results.append(measure(run_stack, data, w, epochs, members))
        results.append(measure(run_one_after_another, data, w, epochs, members))
    torch_one = measure(run_torch, data, w, epochs)
    torch_one.engine = "torch loop, 1 model"
    results.append(torch_one)
    job = keras_job(w, "keras fit (default), 1 model", epochs)
    results += measure(keras_results, keras, "c", [job])
    for r in results:
        r.flops = train_flops(w.dims, len(data.train.x)) * r.members
    return results


# --- (d): the mlp-architectures study, estimated ---


@dataclass
class StudyEstimate:
    engine: str
    seconds: float  # estimated wall time of the whole study
    measured_seconds: float  # wall time this benchmark spent measuring it
    configurations: int  # distinct configurations measured
    runs: int
    note: str = ""
    foreign: float | None = None  # the most other processes used during one measurement


def study_runs() -> list[Any]:
    """The study's training runs with 3 repetitions (cross-validation left out)."""
    spec = load_study(STUDY)
    spec = spec.model_copy(
        update={"repetitions": RepetitionsSpec(count=D_REPETITIONS), "cross_validation": None}
    )
    return [r for r in expand(spec, lambda data: "benchmark") if r.role == "train"]


def _timing_key(run: Any) -> tuple[Any, ...]:
    """What sets a run's cost: widths, optimiser, batch norm, dropout (not activation/init)."""
    model, training = run.config.model, run.config.training
    dropout = any(h.dropout > 0 for h in model.hidden_layers())
    return (model.hidden, training.optimizer.name, model.batch_norm, dropout)


def _worst(loads: Sequence[float | None]) -> float | None:
    known = [x for x in loads if x is not None]
    return max(known) if known else None


def _extrapolate(epoch_times: list[float], overhead: float) -> float:
    """One run of D_EPOCHS: the measured first epoch, then steady epochs, plus fixed costs."""
    steady = epoch_times[1] if len(epoch_times) > 1 else epoch_times[0]
    return epoch_times[0] + (D_EPOCHS - 1) * steady + overhead


def workload_d(data: Any, epochs: int, keras: Keras | None) -> list[StudyEstimate]:
    runs = study_runs()
    val = data.test  # the study validates on the test set every epoch
    estimates = []

    def short(run: Any) -> TrainSpec:
        return run.config.training.model_copy(update={"epochs": epochs})

    def build(run: Any) -> Any:
        init = make_generator(RunSeeds.from_seed(run.seed).init)
        return build_mlp(run.config.model, INPUT_DIM, CLASSES, init)

    # mnistlab one run at a time (mnistlab run --no-stack), per distinct cost
    distinct: dict[tuple[Any, ...], Any] = {}
    for run in runs:
        distinct.setdefault(_timing_key(run), run)
    counts = {k: sum(_timing_key(r) == k for r in runs) for k in distinct}
    single: dict[tuple[Any, ...], float] = {}  # one run's estimated seconds
    began = time.perf_counter()
    loads: list[float | None] = []
    for key, run in distinct.items():
        wait_for_quiet()
        started = time.perf_counter()
        with LoadMeter() as meter:
            net = build(run)
            history = fit(net, data.train, short(run), val=val, seed=run.seed)
        loads.append(meter.foreign)
        times = history.history["time"]
        single[key] = _extrapolate(times, time.perf_counter() - started - sum(times))
        print(f"  d: mnistlab single {key}: {_fmt_times(times)}", flush=True)
    singles = StudyEstimate(
        "mnistlab run --no-stack",
        sum(counts[k] * single[k] for k in distinct),
        time.perf_counter() - began,
        len(distinct),
        len(runs),
        foreign=_worst(loads),
    )

    # mnistlab as `mnistlab run` does it: compatible runs stacked where a stack pays
    stacks = stack_groups(runs)
    measured: dict[tuple[Any, ...], float] = {}
    loads = []
    began = time.perf_counter()
    total, alone = 0.0, 0
    for group in stacks:
        if len(group) == 1 or not stack_pays(build(group[0]), short(group[0]), data.train):
            total += sum(single[_timing_key(r)] for r in group)  # execute runs them one by one
            alone += len(group)
            continue
        key = (*_timing_key(group[0]), tuple(_timing_key(r)[3] for r in group))
        if key not in measured:
            wait_for_quiet()
            started = time.perf_counter()
            with LoadMeter() as meter:
                nets = [build(r) for r in group]
                specs = [short(r) for r in group]
                seeds = [r.seed for r in group]
                histories = fit_stack(nets, data.train, specs, val=val, seeds=seeds)
            loads.append(meter.foreign)
            times = histories[0].history["time"]
            overhead = time.perf_counter() - started - sum(times)
            measured[key] = _extrapolate(times, overhead)
            print(f"  d: mnistlab stack of {len(group)} {key[:3]}: {_fmt_times(times)}", flush=True)
        total += measured[key]
    estimates.append(
        StudyEstimate(
            "mnistlab run (default)",
            total,
            time.perf_counter() - began + singles.measured_seconds,
            len(measured) + len(distinct),
            len(runs),
            note=f"{len(stacks)} groups: {alone} runs alone (lean step), the rest in "
            f"{len(measured)} measured stack kinds",
            foreign=_worst([*loads, singles.foreign]),
        )
    )
    estimates.append(singles)

    if keras is not None:
        jobs = []
        for key, run in distinct.items():
            model, training = run.config.model, run.config.training
            jobs.append(
                {
                    "name": repr(key),
                    "hidden": list(model.hidden),
                    "activation": model.hidden_layers()[0].activation.name
                    if model.hidden
                    else "relu",
                    "optimizer": training.optimizer.name,
                    "learning_rate": training.optimizer.learning_rate,
                    "batch_size": training.batch_size,
                    "epochs": epochs,
                    "batch_norm": model.batch_norm != "none",
                    "dropout": max((h.dropout for h in model.hidden_layers()), default=0.0),
                    "validate_on_test": True,
                    "evaluate": False,
                }
            )
        wait_for_quiet()
        began = time.perf_counter()
        with LoadMeter() as meter:
            results = keras.run(jobs)
        if results is not None:
            total = 0.0
            for key, r in zip(distinct, results, strict=True):
                overhead = r["fit_seconds"] - sum(r["epoch_times"])
                total += counts[key] * _extrapolate(r["epoch_times"], overhead)
                print(f"  d: keras {key}: {_fmt_times(r['epoch_times'])}", flush=True)
            estimates.append(
                StudyEstimate(
                    "keras fit (default)",
                    total,
                    time.perf_counter() - began,
                    len(distinct),
                    len(runs),
                    note="+ one TensorFlow import per study",
                    foreign=meter.foreign,
                )
            )
    return estimates


# --- reporting ---


def _fmt_times(times: Sequence[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times) + " s"


def _progress(r: Result) -> None:
    acc = f", test acc {r.accuracy:.4f}" if r.accuracy is not None else ""
    print(f"  {r.workload}: {r.engine}: epochs {_fmt_times(r.epoch_times)}{acc}", flush=True)


def _load(foreign: float | None) -> str:
    if foreign is None:
        return "?"
    return f"{foreign:.2f}" + (" !" if foreign > QUIET["threshold"] else "")


def bound_seconds(r: Result, machine: Machine, rate_label: str) -> float | None:
    rate = machine.rates.get(rate_label)
    return r.flops / rate if r.flops and rate else None


WORKLOADS = ["a", "b", "c", "d", "e"]
ONE_THREAD_RATE = "square 1024, 1 thread"
RATE_FOR = {
    "a": "batch 128 (128x784 @ 784x512)",
    "b": "batch 10 (10x784 @ 784x30)",
    "c": "batch 128 (128x784 @ 784x50)",
    "e1": ONE_THREAD_RATE,
    "e6": ONE_THREAD_RATE,
}


def report(
    results: list[Result],
    estimates: list[StudyEstimate],
    machine: Machine,
    keras: Keras | None,
    started: float,
) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    info = dict(machine.info)
    if keras is not None and keras.info:
        info.update({f"keras {k}": v for k, v in keras.info.items()})
    console.print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    rates = "; ".join(f"{k}: {v / 1e9:.1f}" for k, v in machine.rates.items())
    console.print(f"float32 GEMM GFLOP/s (torch.mm, median of 7): {rates}")
    console.print(
        f"memory copy bandwidth: {machine.bandwidth / 1e9:.1f} GB/s (read + write, 256 MiB)"
    )

    table = Table(
        title="per-epoch time: median of the epochs after 1 warm-up epoch (n = measured epochs)"
    )
    for col in (
        "wl",
        "engine",
        "s/epoch",
        "min-max",
        "n",
        "x mnistlab",
        "test acc",
        "bound s",
        "x bound",
        "other load",
        "note",
    ):
        table.add_column(col, justify="left" if col in ("wl", "engine", "note") else "right")
    by_workload: dict[str, list[Result]] = {}
    for r in results:
        by_workload.setdefault(r.workload, []).append(r)
    for wl, rows in by_workload.items():
        reference = rows[0].median
        for r in rows:
            bound = bound_seconds(r, machine, RATE_FOR[wl])
            table.add_row(
                wl,
                r.engine,
                f"{r.median:.3f}",
                f"{min(r.measured):.2f}-{max(r.measured):.2f}",
                str(len(r.measured)),
                f"{r.median / reference:.2f}",
                "" if r.accuracy is None else f"{r.accuracy:.4f}",
                "" if bound is None else f"{bound:.3f}",
                "" if bound is None else f"{r.median / bound:.2f}",
                _load(r.foreign),
                r.note,
            )
        table.add_section()
    console.print(table)
    console.print(
        "other load = cores other processes kept busy while the engine ran (/proc/stat minus "
        f"this process); '!' marks > {QUIET['threshold']}: that row's times are inflated"
    )
    console.print(
        "bound = matmul FLOPs per epoch (forward 2BΣio, weight grads 2BΣio, input grads "
        "2BΣio except layer 1) / the GEMM rate at the workload's batch shape; "
        "x bound against the 2048² rate: "
        + ", ".join(
            f"{wl} {rows[0].median / (rows[0].flops / machine.rates['square 2048']):.1f}"
            for wl, rows in by_workload.items()
            if rows[0].flops
        )
    )
    if estimates:
        d = Table(
            title=f"(d) mlp-architectures, ESTIMATED: {estimates[0].runs} runs x "
            f"{D_EPOCHS} epochs, validation on test each epoch (no cross-validation)"
        )
        for col in (
            "engine",
            "estimated study time",
            "x mnistlab",
            "configs measured",
            "measuring took",
            "other load (worst)",
            "note",
        ):
            d.add_column(col)
        for e in estimates:
            d.add_row(
                e.engine,
                f"{e.seconds / 60:.1f} min",
                f"{e.seconds / estimates[0].seconds:.2f}",
                str(e.configurations),
                f"{e.measured_seconds:.0f} s",
                _load(e.foreign),
                e.note,
            )
        console.print(d)
        console.print(
            "each run = measured epoch 1 + 19 x measured epoch 2 + measured fixed costs; "
            "configurations differing only in activation or initialiser share one measurement"
        )

    targets = evaluate_targets(by_workload, estimates, machine)
    t = Table(title="targets (ratios from this run)")
    for col in ("target", "measured", "status"):
        t.add_column(col)
    for name, measured, status in targets:
        t.add_row(name, measured, status)
    console.print(t)
    if keras is not None and keras.problem:
        console.print(f"note: {keras.problem}")
    console.print(f"total wall time {time.perf_counter() - started:.0f} s")
    return {
        "machine": {
            "info": info,
            "gflops": {k: v / 1e9 for k, v in machine.rates.items()},
            "copy_gbs": machine.bandwidth / 1e9,
        },
        "results": [
            {
                "workload": r.workload,
                "engine": r.engine,
                "epoch_times": r.epoch_times,
                "median": r.median,
                "accuracy": r.accuracy,
                "flops_per_epoch": r.flops,
                "other_load_cores": r.foreign,
                "note": r.note,
            }
            for r in results
        ],
        "study_estimates": [e.__dict__ for e in estimates],
        "targets": targets,
    }


def evaluate_targets(
    by_workload: dict[str, list[Result]], estimates: list[StudyEstimate], machine: Machine
) -> list[tuple[str, str, str]]:
    def find(wl: str, engine: str) -> Result | None:
        return next((r for r in by_workload.get(wl, []) if r.engine == engine), None)

    def status(ok: bool, *rows: Result | StudyEstimate | None) -> str:
        loaded = any(r is not None and (r.foreign or 0) > QUIET["threshold"] for r in rows)
        return ("met" if ok else "NOT met") + (" (measured under load)" if loaded else "")

    def what_if(reference: Result | None, wl: str = "a") -> str:
        """The proposed-fix rows of a workload against the same reference."""
        if reference is None:
            return ""
        rows = [r for r in by_workload.get(wl, []) if r.engine.startswith("mnistlab fit, threads")]
        return "".join(
            f"; {r.engine.removeprefix('mnistlab fit').strip(' ,+')}: "
            f"{r.median / reference.median:.2f}x"
            for r in rows
            if r is not None
        )

    out: list[tuple[str, str, str]] = []
    a, ka = find("a", "mnistlab fit"), find("a", "keras fit (default)")
    if a is not None:
        if ka is not None and a.accuracy is not None and ka.accuracy is not None:
            ratio = a.median / ka.median
            equal = a.accuracy >= ka.accuracy - 0.005
            out.append(
                (
                    "(a) <= 0.6x Keras default, equal accuracy (within 0.5 pp)",
                    f"{ratio:.2f}x ({a.median:.2f} vs {ka.median:.2f} s); "
                    f"acc {a.accuracy:.4f} vs {ka.accuracy:.4f}{what_if(ka)}",
                    status(ratio <= 0.6 and equal, a, ka),
                )
            )
        else:
            out.append(("(a) <= 0.6x Keras default", "Keras not run", "n/a"))
        bound = bound_seconds(a, machine, RATE_FOR["a"])
        if bound:
            out.append(
                (
                    "(a) within 1.35x of the FLOP bound (batch-128 GEMM rate)",
                    f"{a.median / bound:.2f}x ({a.median:.2f} vs {bound:.2f} s)"
                    + what_if(Result("a", "bound", [bound])),
                    status(a.median / bound <= 1.35, a),
                )
            )
    b = find("b", "mnistlab fit")
    kb, kb100 = find("b", "keras fit (default)"), find("b", "keras steps_per_execution=100")
    if b is not None:
        if kb is not None:
            ratio = b.median / kb.median
            out.append(
                (
                    "(b) <= 0.12x Keras default",
                    f"{ratio:.4f}x ({b.median:.2f} vs {kb.median:.2f} s; Keras epochs "
                    f"{min(kb.measured):.2f}-{max(kb.measured):.2f} s, vs its fastest "
                    f"{b.median / min(kb.measured):.4f}x){what_if(kb, 'b')}",
                    status(ratio <= 0.12, b, kb),
                )
            )
        else:
            out.append(("(b) <= 0.12x Keras default", "Keras not run", "n/a"))
        if kb is not None:
            out.append(
                (
                    "(b) <= 0.03x Keras default (round 2)",
                    f"{b.median / kb.median:.4f}x ({b.median:.3f} vs {kb.median:.2f} s)",
                    status(b.median / kb.median <= 0.03, b, kb),
                )
            )
        if kb100 is not None:
            out.append(
                (
                    "(b) below Keras steps_per_execution=100",
                    f"{b.median / kb100.median:.2f}x ({b.median:.2f} vs {kb100.median:.2f} s)",
                    status(b.median < kb100.median, b, kb100),
                )
            )
    for w in WORKLOAD_E:
        default, lean = find(w.key, "mnistlab fit"), find(w.key, "mnistlab fit, engine=lean")
        if default is not None and lean is not None:
            ratio = default.median / lean.median
            out.append(
                (
                    f"({w.key}) <= 0.1x the lean engine",
                    f"{ratio:.3f}x ({default.median:.3f} vs {lean.median:.2f} s)",
                    status(ratio <= 0.1, default, lean),
                )
            )
        bound = bound_seconds(default, machine, RATE_FOR[w.key]) if default else None
        if bound:
            out.append(
                (
                    f"({w.key}) within 5x of the 1-thread FLOP bound",
                    f"{default.median / bound:.2f}x ({default.median:.3f} vs {bound:.3f} s)",
                    status(default.median / bound <= 5, default),
                )
            )
    one = find("c", "mnistlab fit, 1 model")
    for members, limit in ((8, 2.5), (32, 8.0)):
        stacked = find("c", f"mnistlab fit_stack, {members} models")
        if one is not None and stacked is not None:
            ratio = stacked.median / one.median
            sequential = find("c", f"mnistlab fit, {members} models one after another")
            extra = (
                f"; one after another {sequential.median / one.median:.1f}x" if sequential else ""
            )
            out.append(
                (
                    f"(c) {members} stacked <= {limit}x one model",
                    f"{ratio:.2f}x ({stacked.median:.2f} vs {one.median:.2f} s){extra}",
                    status(ratio <= limit, one, stacked),
                )
            )
    if estimates:
        keras_d = next((e for e in estimates if e.engine.startswith("keras")), None)
        if keras_d is not None:
            ratio = estimates[0].seconds / keras_d.seconds
            out.append(
                (
                    "(d) <= 0.6x Keras (estimated)",
                    f"{ratio:.2f}x ({estimates[0].seconds / 60:.1f} "
                    f"vs {keras_d.seconds / 60:.1f} min)",
                    status(ratio <= 0.6, estimates[0], keras_d),
                )
            )
        else:
            out.append(("(d) <= 0.6x Keras (estimated)", "Keras not run", "n/a"))
    return out


# --- main ---


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smoke run: a and b only, 2 epochs")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each engine, wait up to this many seconds for other processes to leave "
        "the CPU (default 60; 0: never wait)",
    )
    p.add_argument("--only", default=None, help="comma-separated workloads among a,b,c,d")
    p.add_argument("--no-keras", action="store_true", help="skip Keras (no TensorFlow env)")
    p.add_argument(
        "--keras-env",
        type=Path,
        default=DEFAULT_KERAS_ENV,
        help="virtual environment with keras + tensorflow-cpu, created if missing "
        f"(default {DEFAULT_KERAS_ENV})",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per engine for a, b, c, incl. 1 warm-up (default a, b: 6, c: 4; --quick: 2)",
    )
    p.add_argument(
        "--json", type=Path, default=None, help="also write every number to this JSON file"
    )
    args = p.parse_args(argv)
    chosen = args.only.split(",") if args.only else (["a", "b"] if args.quick else WORKLOADS)
    unknown = set(chosen) - set(WORKLOADS)
    if unknown:
        p.error(f"--only: unknown workload(s) {', '.join(sorted(unknown))}; choose among a,b,c,d,e")
    args.workloads = chosen
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    started = time.perf_counter()
    configure_threads(None)  # every core this process may use, as mnistlab does by default
    QUIET["wait"] = args.quiet_wait
    epochs = args.epochs or (2 if args.quick else 6)
    data = load_data(DataSpec(dataset="mnist"))
    train, test = data.train.x, data.test.x
    print(f"data: train {tuple(train.shape)}, test {tuple(test.shape)}, {train.dtype}")
    shapes = [
        ("batch 128 (128x784 @ 784x512)", 128, 784, 512),
        ("batch 10 (10x784 @ 784x30)", 10, 784, 30),
        ("batch 128 (128x784 @ 784x50)", 128, 784, 50),
    ]
    machine = measure_machine(shapes)
    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-") as tmp:
        keras: Keras | None = None
        if not args.no_keras:
            keras = Keras(args.keras_env, Path(tmp), data)
            if not keras.prepare(create=True):
                print(f"note: skipping Keras: {keras.problem}")
                keras_skipped = keras
                keras = None
            else:
                keras_skipped = None
        else:
            keras_skipped = None
        results: list[Result] = []
        estimates: list[StudyEstimate] = []
        if "a" in args.workloads:
            results += workload_ab(WORKLOAD_A, data, epochs, keras, dataloader=True)
        if "b" in args.workloads:
            results += workload_ab(WORKLOAD_B, data, epochs, keras, dataloader=False)
        if "c" in args.workloads:
            results += workload_c(data, args.epochs or 4, keras)
        if "d" in args.workloads:
            estimates = workload_d(data, 2, keras)
        if "e" in args.workloads:
            results += workload_e(data, args.epochs or E_EPOCHS, keras)
        summary = report(results, estimates, machine, keras or keras_skipped, started)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
