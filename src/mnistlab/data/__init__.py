"""The data stage: known and user datasets, verified, as float32 train / val / test tensors.

`load_data(DataSpec(...))` is the entry point; `catalog` answers the `mnistlab data` verbs.
"""

from mnistlab.data.catalog import (
    DatasetInfo,
    DatasetSummary,
    FileCheck,
    SplitInfo,
    Verification,
    dataset_info,
    dataset_location,
    list_datasets,
    verify_dataset,
)
from mnistlab.data.dataset import Dataset, make_dataset, read_dataset, read_user_data
from mnistlab.data.formats import Arrays
from mnistlab.data.idx import read_idx, write_idx
from mnistlab.data.locate import ENV_VAR, Place, Resolution, SearchRoots
from mnistlab.data.pipeline import Data, Split, data_fingerprint, load_data, make_splits
from mnistlab.data.registry import KNOWN_DATASETS, KnownDataset, dataset_names, get_dataset
from mnistlab.data.spec import (
    DataSpec,
    SubsetBalanced,
    SubsetHead,
    SubsetRandom,
    SubsetSpec,
    ValidationFold,
    ValidationFraction,
    ValidationHead,
    ValidationNone,
    ValidationOnTest,
    ValidationRandom,
    ValidationSpec,
    ValidationTail,
)

__all__ = [
    "ENV_VAR",
    "KNOWN_DATASETS",
    "Arrays",
    "Data",
    "DataSpec",
    "Dataset",
    "DatasetInfo",
    "DatasetSummary",
    "FileCheck",
    "KnownDataset",
    "Place",
    "Resolution",
    "SearchRoots",
    "Split",
    "SplitInfo",
    "SubsetBalanced",
    "SubsetHead",
    "SubsetRandom",
    "SubsetSpec",
    "ValidationFold",
    "ValidationFraction",
    "ValidationHead",
    "ValidationNone",
    "ValidationOnTest",
    "ValidationRandom",
    "ValidationSpec",
    "ValidationTail",
    "Verification",
    "data_fingerprint",
    "dataset_info",
    "dataset_location",
    "dataset_names",
    "get_dataset",
    "list_datasets",
    "load_data",
    "make_dataset",
    "make_splits",
    "read_dataset",
    "read_idx",
    "read_user_data",
    "verify_dataset",
    "write_idx",
]
