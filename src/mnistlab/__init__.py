"""mnistlab: declarative, reproducible, fast neural-network experiments on MNIST-style data."""

from mnistlab.api import CNN, MLP, evaluate, fit, load_dataset
from mnistlab.errors import DataError, MnistlabError, SpecError
from mnistlab.runtime import flush_denormals
from mnistlab.training.history import History

flush_denormals()  # imports run no parallel torch operation, so this is still in time

__all__ = [
    "CNN",
    "MLP",
    "DataError",
    "History",
    "MnistlabError",
    "SpecError",
    "evaluate",
    "fit",
    "load_dataset",
]
