"""mnistlab: declarative, reproducible, fast neural-network experiments on MNIST-style data."""

from typing import TYPE_CHECKING, Any

from mnistlab.api import CNN, MLP, evaluate, fit, load_dataset
from mnistlab.errors import DataError, MnistlabError, SpecError
from mnistlab.runtime import flush_denormals
from mnistlab.training.history import History

if TYPE_CHECKING:
    from mnistlab.results import open_results

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
    "open_results",
]


def __getattr__(name: str) -> Any:
    """`mnistlab.open_results`, imported on first use: pandas stays out of `import mnistlab`."""
    if name == "open_results":
        from mnistlab.results import open_results

        return open_results
    raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")
