"""The Keras-familiar face for notebooks: `load_dataset`, `MLP`, `fit`, `evaluate`, and
`train_mlp`, all of `mnistlab train` in one call."""

from __future__ import annotations

import math
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from mnistlab.data import Data, DataSpec, Split, load_data
from mnistlab.errors import MnistlabError
from mnistlab.models import CNNNet, CNNSpec, MLPNet, MLPSpec, build_cnn, build_mlp, summary
from mnistlab.runtime import make_generator, select_device
from mnistlab.spec import parse_spec
from mnistlab.training.callbacks import Callback, save_weights
from mnistlab.training.history import History
from mnistlab.training.loop import evaluate as evaluate_split
from mnistlab.training.loop import fit as fit_model
from mnistlab.training.progress import ProgressBar
from mnistlab.training.spec import TrainSpec
from mnistlab.training.state import RunSeeds

if TYPE_CHECKING:  # the studies package costs 0.3 s to import; `import mnistlab` need not pay
    from mnistlab.status import RunStatus


def load_dataset(
    name: str = "mnist",
    *,
    scale: str = "divide-255",
    validation_split: float | None = None,
    validation: dict[str, Any] | None = None,
    train_subset: dict[str, Any] | None = None,
    test_subset: dict[str, Any] | None = None,
    flatten: bool = True,
    labels: str = "sparse",
    path: str | Path | None = None,
    data_dir: str | Path | None = None,
    device: str = "auto",
) -> Data:
    """Load a dataset as float32 tensors with train / val / test splits.

    `validation_split=f` is Keras's: the last fraction of the training rows, before any
    shuffling. `validation` takes any split of `DataSpec` (e.g. `{"kind": "test"}`).
    """
    if validation_split is not None and validation is not None:
        raise ValueError("give validation_split or validation, not both")
    if validation_split is not None:
        validation = {"kind": "fraction", "fraction": validation_split}
    fields: dict[str, Any] = {
        "dataset": name,
        "scaling": scale,
        "flatten": flatten,
        "labels": labels,
        "path": path,
        "train_subset": train_subset,
        "test_subset": test_subset,
    }
    if validation is not None:
        fields["validation"] = validation
    spec = parse_spec(DataSpec, fields)
    return load_data(
        spec, data_dir=Path(data_dir) if data_dir else None, device=select_device(device)
    )


class MLP:
    """A Keras-like multilayer perceptron: the spec is validated now, weights built on fit.

    `MLP(hidden=[512, 128], activation="relu", dropout=0.2)` takes every `MLPSpec` field.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (128,),
        activation: Any = "relu",
        *,
        seed: int = 0,
        **options: Any,
    ) -> None:
        self.spec = parse_spec(
            MLPSpec, {"hidden": tuple(hidden), "activation": activation, **options}
        )
        self.seed = seed
        self.net: MLPNet | CNNNet | None = None
        self.train_spec: TrainSpec | None = None

    def build(self, input_dim: int, outputs: int | None = None, seed: int | None = None) -> MLP:
        """Create and initialise the weights (from the seed's initialisation stream)."""
        init_seed = RunSeeds.from_seed(self.seed if seed is None else seed).init
        self.net = build_mlp(self.spec, input_dim, outputs, make_generator(init_seed))
        return self

    @property
    def built(self) -> MLPNet | CNNNet:
        """The torch module; an error before `build` or `fit`."""
        if self.net is None:
            raise RuntimeError("the model has no weights yet: call fit() or build() first")
        return self.net

    def predict(self, x: Tensor | np.ndarray) -> Tensor:
        """Output activations (softmax probabilities or linear outputs) for inputs `x`."""
        net = self.built
        device = next(net.parameters()).device
        return net.predict(torch.as_tensor(x, dtype=torch.float32, device=device))

    def summary(self) -> None:
        """Print the layer table as Keras's `model.summary()` does."""
        print(summary(self.built))

    def save(self, path: str | Path) -> None:
        """Save the weights as safetensors."""
        save_weights(self.built.state_dict(), Path(path))


class CNN(MLP):
    """A Keras-like CNN: `CNN(layers=[{"layer": "Conv2D", "filters": 32, "kernel_size": 3}, ...])`.

    Takes every `CNNSpec` field; the output Dense (the class count) is added after `layers`.
    Inputs may be flat square images (784) or (N, H, W); `fit`, `evaluate`, `predict`,
    `summary` and `save` work as for `MLP`.
    """

    def __init__(self, layers: Sequence[Any], *, seed: int = 0, **options: Any) -> None:
        self.spec = parse_spec(CNNSpec, {"layers": list(layers), **options})
        self.seed = seed
        self.net = None
        self.train_spec = None

    def build(self, input_dim: int, outputs: int | None = None, seed: int | None = None) -> CNN:
        """Create and initialise the weights for flat inputs of `input_dim` (a square image)."""
        init_seed = RunSeeds.from_seed(self.seed if seed is None else seed).init
        self.net = build_cnn(self.spec, (input_dim,), outputs, make_generator(init_seed))
        return self


def training_spec(
    optimizer: Any = "rmsprop",
    learning_rate: float | None = None,
    **fields: Any,
) -> TrainSpec:
    """Validate Keras-style `fit` keywords as a `TrainSpec` (a one-line `SpecError` if wrong).

    `optimizer` is a name (`"adam"`) or a dict of its fields; `learning_rate` overrides its
    rate; every other keyword is a `TrainSpec` field (`epochs`, `batch_size`, `schedule`...).
    """
    optimizer_fields = {"name": optimizer} if isinstance(optimizer, str) else dict(optimizer)
    if learning_rate is not None:
        optimizer_fields["learning_rate"] = learning_rate
    return parse_spec(TrainSpec, {"optimizer": optimizer_fields, **fields})


def fit(
    model: MLP,
    data: Data | Split | tuple[Any, Any],
    *,
    optimizer: Any = "rmsprop",
    learning_rate: float | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    validation_data: Split | tuple[Any, Any] | None = None,
    validation_split: float | None = None,
    callbacks: Sequence[Callback] = (),
    seed: int | None = None,
    verbose: bool = True,
    threads: int | None = None,
    spec: TrainSpec | None = None,
    **training: Any,
) -> History:
    """Train `model` like Keras's `model.fit` and return the History.

    `data` is a `Data` (its val split is the validation data unless `validation_data` is
    given), a `Split` or an `(x, y)` pair. Further keywords are `TrainSpec` fields
    (`loss`, `schedule`, `early_stopping`, `checkpoint`, `shuffle`, ...); a ready `spec`
    replaces all of them.
    """
    if spec is None:
        spec = training_spec(
            optimizer, learning_rate, epochs=epochs, batch_size=batch_size, **training
        )
    train, val = _training_splits(data, validation_data, validation_split)
    run_seed = model.seed if seed is None else seed
    if model.net is None:
        outputs = model.spec.outputs or _class_count(data, train)
        model.build(int(train.x[0].numel()), outputs, seed=run_seed)
    listeners = list(callbacks)
    if verbose:
        listeners.append(ProgressBar(math.ceil(len(train.x) / spec.batch_size)))
    model.train_spec = spec
    return fit_model(
        model.built, train, spec, val=val, seed=run_seed, callbacks=listeners, threads=threads
    )


def evaluate(model: MLP, split: Split | tuple[Any, Any]) -> dict[str, float]:
    """Loss (penalties included) and accuracy on a split, in inference mode."""
    spec = model.train_spec or TrainSpec()
    target = _as_split(split, next(model.built.parameters()).device)
    return evaluate_split(model.built, target, spec)


@dataclass(frozen=True)
class TrainedMLP:
    """What `train_mlp` did: how the run ended, its History, test scores and saved file.

    A diverged or failed run is neither evaluated nor saved; `error` is a failed run's
    traceback (its History is then empty).
    """

    model: MLP
    status: RunStatus
    history: History
    test: dict[str, float] | None = None
    saved: Path | None = None
    error: str | None = None


def train_mlp(
    hidden: Sequence[int] = (128,),
    activation: str = "relu",
    *,
    dataset: str = "mnist",
    data_dir: str | Path | None = None,
    output: str = "softmax",
    dropout: float = 0.0,
    batch_norm: str = "none",
    l2: float = 0.0,
    optimizer: str = "rmsprop",
    learning_rate: float | None = None,
    epochs: int = 1,
    batch_size: int = 32,
    validation_split: float | None = None,
    validate_on_test: bool = False,
    seed: int = 0,
    threads: int | None = None,
    device: str = "auto",
    save: Path | None = None,
    verbose: bool = True,
) -> TrainedMLP:
    """Train one MLP on a dataset, evaluate it on the test split and save it (`mnistlab train`).

    With `verbose`, prints the Keras-style summary and a progress bar. Bad options raise a
    one-line `MnistlabError` before any training; a run that raises is returned as failed.
    """
    from mnistlab.status import RunStatus

    spec = training_spec(optimizer, learning_rate, epochs=epochs, batch_size=batch_size)
    data = load_dataset(
        dataset,
        validation_split=validation_split,
        validation={"kind": "test"} if validate_on_test else None,
        data_dir=data_dir,
        device=device,
    )
    model = MLP(
        hidden,
        activation,
        output=output,
        dropout=dropout,
        batch_norm=batch_norm,
        kernel_regularizer={"l2": l2} if l2 else None,
        seed=seed,
    )
    model.build(math.prod(data.input_shape), data.n_classes)
    if verbose:
        model.summary()
    try:
        history = fit(model, data, spec=spec, threads=threads, verbose=verbose)
    except MnistlabError:
        raise
    except Exception:  # a failed run is a result, as in a study
        return TrainedMLP(model, RunStatus.FAILED, History(), error=traceback.format_exc())
    if history.diverged:
        return TrainedMLP(model, RunStatus.DIVERGED, history)
    test = evaluate(model, data.test) if data.test is not None else None
    if save is not None:
        model.save(save)
    return TrainedMLP(model, RunStatus.DONE, history, test, save)


def _training_splits(
    data: Data | Split | tuple[Any, Any],
    validation_data: Split | tuple[Any, Any] | None,
    validation_split: float | None,
) -> tuple[Split, Split | None]:
    if isinstance(data, Data):
        train, val = data.train, data.val
    else:
        train, val = _as_split(data, select_device("auto")), None
    if validation_data is not None:
        val = _as_split(validation_data, train.x.device)
    if validation_split is not None:
        if not 0 < validation_split < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        split_at = int(len(train.x) * (1 - validation_split))  # Keras's arithmetic
        train, val = (
            replace(train, x=train.x[:split_at], y=train.y[:split_at]),
            replace(train, x=train.x[split_at:], y=train.y[split_at:]),
        )
    return train, val


def _as_split(split: Split | tuple[Any, Any], device: torch.device) -> Split:
    if isinstance(split, Split):
        return split
    x, y = split
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)
    y = torch.as_tensor(np.asarray(y), device=device)
    if y.ndim == 2 and y.is_floating_point():  # one-hot labels, as Keras users pass them
        y = y.argmax(dim=1)
    return Split(x=x.reshape(len(x), -1), y=y if y.is_floating_point() else y.long())


def _class_count(data: Data | Split | tuple[Any, Any], train: Split) -> int:
    if isinstance(data, Data) and data.n_classes:
        return data.n_classes
    return int(train.y.max()) + 1
