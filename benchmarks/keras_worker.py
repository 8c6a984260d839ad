"""Keras 3 side of the benchmark; runs inside the separate TensorFlow virtual environment.

Usage: ``python keras_worker.py JOB.json`` prints one JSON object on stdout. The job names
a data folder (``x_train.npy``, ``y_train.npy``, ``x_test.npy``, ``y_test.npy``: float32
inputs already divided by 255 and int64 labels, written by ``run.py`` from mnistlab's own
loader, so both sides train on identical arrays) and a list of models to train with
``model.fit``. Nothing here imports mnistlab: this file must run with only TensorFlow.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch (training plus validation, as mnistlab's History `time`)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.times.append(time.perf_counter() - self._started)


def build(job: dict) -> keras.Model:
    """The Sequential MLP a job describes: Dense -> activation [-> BN] [-> Dropout], softmax."""
    layers: list = [keras.Input(shape=(784,))]
    for units in job["hidden"]:
        layers.append(keras.layers.Dense(units, activation=job["activation"]))
        if job.get("batch_norm"):
            layers.append(keras.layers.BatchNormalization())
        if job.get("dropout", 0.0) > 0:
            layers.append(keras.layers.Dropout(job["dropout"]))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    return keras.Sequential(layers)


def optimizer(job: dict) -> keras.optimizers.Optimizer:
    name, lr = job["optimizer"], job["learning_rate"]
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=lr)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    raise ValueError(f"unknown optimizer {name!r}")


def run(job: dict, data: dict[str, np.ndarray]) -> dict:
    keras.utils.set_random_seed(job.get("seed", 0))
    model = build(job)
    compile_args = {}
    if job.get("steps_per_execution", 1) != 1:
        compile_args["steps_per_execution"] = job["steps_per_execution"]
    model.compile(
        optimizer=optimizer(job),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        **compile_args,
    )
    timer = EpochTimer()
    validation = (data["x_test"], data["y_test"]) if job.get("validate_on_test") else None
    started = time.perf_counter()
    model.fit(
        data["x_train"],
        data["y_train"],
        batch_size=job["batch_size"],
        epochs=job["epochs"],
        validation_data=validation,
        callbacks=[timer],
        verbose=0,
    )
    wall = time.perf_counter() - started
    result = {"name": job["name"], "epoch_times": timer.times, "fit_seconds": wall}
    if job.get("evaluate", True):
        _, accuracy = model.evaluate(data["x_test"], data["y_test"], batch_size=4096, verbose=0)
        result["test_accuracy"] = float(accuracy)
    result["jit_compile"] = str(getattr(model, "jit_compile", "?"))
    return result


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    folder = Path(spec["data"])
    data = {
        name: np.load(folder / f"{name}.npy") for name in ("x_train", "y_train", "x_test", "y_test")
    }
    results = [run(job, data) for job in spec["jobs"]]
    info = {
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "backend": keras.backend.backend(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    print(json.dumps({"info": info, "results": results}))


if __name__ == "__main__":
    main()
