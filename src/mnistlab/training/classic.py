"""Fitting the models that are not torch networks: scikit-learn estimators and the NumPy MLP.

Each returns an `ClassicFit` with Keras-named metrics (`accuracy` on the training split,
`val_*`, `test_*`), the History when there are epochs, and each split's class scores for
ROC analyses. ROC AUCs come three ways, labelled: `auc` (macro over classes, from the scores),
`auc_micro`, and `auc_hard` (macro, from one-hot hard predictions, as the coursework scored
its SVMs). Scores are probabilities when the model gives them, the decision function
otherwise; `ClassicFit.score_source` says which.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from mnistlab.data import Data, Split
from mnistlab.errors import SpecError
from mnistlab.models.classic import NumpySpec, SklearnModel, build_estimator
from mnistlab.models.numpy_mlp import NumpyLoss, init_numpy_mlp
from mnistlab.runtime import make_generator
from mnistlab.training.spec import TrainSpec

_LOSSES: dict[str, NumpyLoss] = {
    "categorical_crossentropy": "cross_entropy",
    "sparse_categorical_crossentropy": "cross_entropy",
    "mse": "mse",
}
_PREFIX = {"train": "", "val": "val_", "test": "test_"}


@dataclass
class ClassicFit:
    """What fitting a classic model gives: final metrics, History, scores per split.

    `scores[split]` is (N, C) class scores and `labels[split]` (N,) the true classes, for
    the splits scored; `score_source` is "probability", "decision" or "output" (the NumPy
    net's softmax); `weights` the NumPy net's kernels and biases by name (None for sklearn).
    """

    metrics: dict[str, float]
    history: dict[str, list[float]] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    score_source: str = "probability"
    weights: dict[str, np.ndarray] | None = None


def auc_metrics(y: np.ndarray, scores: np.ndarray, n_classes: int) -> dict[str, float]:
    """ROC AUC of class scores three ways: macro and micro from scores, macro from hard labels.

    Parameters
    ----------
    y : (N,) int class ids.
    scores : (N, C) class scores (probabilities or decision values).
    n_classes : C.

    Returns
    -------
    dict with `auc` (macro one-vs-rest), `auc_micro` and `auc_hard` (macro over the one-hot
    of argmax(scores), the coursework's SVM score); classes absent from `y` are left out.
    """
    from sklearn.metrics import roc_auc_score

    onehot = np.eye(n_classes)[y]
    present = onehot.any(axis=0) & ~onehot.all(axis=0)  # AUC needs both outcomes
    if not present.any():
        return {}
    hard = np.eye(n_classes)[scores.argmax(axis=1)]
    return {
        "auc": float(roc_auc_score(onehot[:, present], scores[:, present], average="macro")),
        "auc_micro": float(roc_auc_score(onehot.ravel(), scores.ravel())),
        "auc_hard": float(roc_auc_score(onehot[:, present], hard[:, present], average="macro")),
    }


def _numpy_rows(split: Split) -> tuple[np.ndarray, np.ndarray]:
    return split.x.reshape(len(split), -1).cpu().numpy(), split.y.cpu().numpy()


def _splits(data: Data, evaluate_test: bool) -> dict[str, Split]:
    named = {"train": data.train, "val": data.val}
    if evaluate_test:
        named["test"] = data.test
    return {name: split for name, split in named.items() if split is not None}


def fit_sklearn(
    spec: SklearnModel, data: Data, seed: int, *, evaluate_test: bool = True
) -> ClassicFit:
    """Fit a scikit-learn classifier on the training split and score every split.

    Parameters
    ----------
    spec : a `kind: sklearn` model spec.
    data : the splits; x is flattened to (N, features).
    seed : the run's seed (the random forest's random_state).
    evaluate_test : score the test split too (cross-validation folds skip it).

    Returns
    -------
    ClassicFit with `accuracy`, `val_accuracy`, `test_accuracy`, the AUCs per split and
    `fit_seconds`.
    """
    estimator = build_estimator(spec, seed)
    x, y = _numpy_rows(data.train)
    started = time.perf_counter()
    estimator.fit(x, y)
    metrics = {"fit_seconds": time.perf_counter() - started}
    use_proba = spec.scores == "probability" or (
        spec.scores == "auto" and hasattr(estimator, "predict_proba")
    )
    if use_proba and not hasattr(estimator, "predict_proba"):
        raise SpecError(f"model.scores: {spec.estimator} gives no probabilities; use decision")
    outcome = ClassicFit(metrics, score_source="probability" if use_proba else "decision")
    for name, split in _splits(data, evaluate_test).items():
        xs, ys = _numpy_rows(split)
        scores = estimator.predict_proba(xs) if use_proba else estimator.decision_function(xs)
        scores = _full_columns(np.asarray(scores, dtype=np.float64), estimator.classes_, data)
        predicted = estimator.classes_[_argmax(scores, estimator.classes_)]
        prefix = _PREFIX[name]
        metrics[f"{prefix}accuracy"] = float((predicted == ys).mean())
        metrics.update({prefix + k: v for k, v in auc_metrics(ys, scores, data.n_classes).items()})
        outcome.scores[name], outcome.labels[name] = scores, ys
    return outcome


def _full_columns(scores: np.ndarray, classes: np.ndarray, data: Data) -> np.ndarray:
    """Scores with one column per class of the data (classes unseen in training: -inf-like)."""
    if scores.ndim == 1:  # a binary decision function: the score of classes_[1]
        scores = np.stack([-scores, scores], axis=1)
    if len(classes) == data.n_classes:
        return scores
    full = np.full((len(scores), data.n_classes), scores.min() - 1.0)
    full[:, classes] = scores
    return full


def _argmax(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Positions into `classes` of each row's best class (scores have one column per class)."""
    if scores.shape[1] == len(classes):
        return scores.argmax(axis=1)
    return np.searchsorted(classes, scores.argmax(axis=1))


def check_numpy_training(spec: TrainSpec) -> str | None:
    """Why the NumPy engine cannot train with `spec`, or None when it can."""
    if spec.optimizer.name != "sgd" or getattr(spec.optimizer, "nesterov", False):
        return f"the numpy engine trains with plain or momentum sgd, not {spec.optimizer.name}"
    clipped = [
        k for k in ("clipnorm", "clipvalue", "global_clipnorm") if getattr(spec.optimizer, k)
    ]
    if clipped:
        return f"the numpy engine does not clip gradients ({clipped[0]})"
    if spec.loss not in _LOSSES:
        return f"the numpy engine's losses are {', '.join(_LOSSES)}, not {spec.loss}"
    if spec.schedule.kind != "constant":
        return "the numpy engine uses a constant learning rate"
    if spec.early_stopping is not None or spec.checkpoint is not None:
        return "the numpy engine has no early stopping or checkpoints"
    return None


def fit_numpy(
    spec: NumpySpec, training: TrainSpec, data: Data, seed: int, *, evaluate_test: bool = True
) -> ClassicFit:
    """Train the NumPy MLP with the run's SGD settings; History per epoch as Keras names it.

    Parameters
    ----------
    spec : the `kind: numpy` model.
    training : SGD (learning rate, momentum), loss, epochs, batch size, shuffle.
    data : the splits.
    seed : the run's seed: initialisation from `make_generator(seed)`, shuffling from
        `np.random.default_rng(seed)`.
    evaluate_test : score the test split too.

    Returns
    -------
    ClassicFit; `scores["test_before"]` holds the untrained net's outputs on the test split.
    """
    problem = check_numpy_training(training)
    if problem is not None:
        raise SpecError(f"training: {problem}")
    x, y = _numpy_rows(data.train)
    net = init_numpy_mlp(
        spec, x.shape[1], data.n_classes, make_generator(seed), loss=_LOSSES[training.loss]
    )
    dtype = net.coefs_[0].dtype
    x = x.astype(dtype)
    splits = _splits(data, evaluate_test)
    outcome = ClassicFit({}, score_source="output")
    if "test" in splits:
        outcome.scores["test_before"] = net.predict_proba(_numpy_rows(splits["test"])[0])
    rng = np.random.default_rng(seed)
    history: dict[str, list[float]] = {}
    optimizer = training.optimizer
    started = time.perf_counter()
    for _ in range(training.epochs):
        net.fit(
            x,
            y,
            epochs=1,
            batch_size=training.batch_size,
            learning_rate=optimizer.learning_rate,
            momentum=getattr(optimizer, "momentum", 0.0),
            shuffle=training.shuffle,
            seed=rng,
        )
        history.setdefault("loss", []).append(net.loss_curve_[-1])
        history.setdefault("accuracy", []).append(net.accuracy_curve_[-1])
        if data.val is not None:
            xv, yv = _numpy_rows(data.val)
            val_loss, _, _ = net.gradients(xv.astype(dtype), yv)
            history.setdefault("val_loss", []).append(val_loss)
            accuracy = float((net.predict(xv) == yv).mean())
            history.setdefault("val_accuracy", []).append(accuracy)
    outcome.metrics = {
        "loss": history["loss"][-1],
        "accuracy": history["accuracy"][-1],
        "epochs_run": float(training.epochs),
        "fit_seconds": time.perf_counter() - started,
    }
    for name, split in splits.items():
        xs, ys = _numpy_rows(split)
        scores = net.predict_proba(xs.astype(dtype))
        prefix = _PREFIX[name]
        if name != "train":
            outcome.metrics[f"{prefix}loss"] = net.gradients(xs.astype(dtype), ys)[0]
            outcome.metrics[f"{prefix}accuracy"] = float((scores.argmax(axis=1) == ys).mean())
        outcome.metrics.update(
            {prefix + k: v for k, v in auc_metrics(ys, scores, data.n_classes).items()}
        )
        outcome.scores[name], outcome.labels[name] = scores, ys
    outcome.history = history
    outcome.weights = {
        **{f"W{i + 1}": w for i, w in enumerate(net.coefs_)},
        **{f"b{i + 1}": b for i, b in enumerate(net.intercepts_)},
    }
    return outcome


def as_tensors(weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """NumPy arrays as contiguous torch tensors, for safetensors."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
