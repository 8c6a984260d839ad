"""The registry of known datasets: their files, content checksums, mirrors and licenses.

Checksum scheme: each file's authoritative checksum is the SHA256 of its *decompressed*
content, so a raw file and any gzip of it (the official mirrors', Debian's, our vendored
`gzip -9n` copies) verify alike. Downloads are also checked against the MD5 the official
mirrors publish for their .gz bytes, before decompression.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistlab.errors import DataError

DIGITS_TEST_ROWS = 360  # scikit-learn's digits: the last 360 of 1797 rows are the test set


@dataclass(frozen=True)
class DataFile:
    """One file of a known dataset: its name (uncompressed) and checksums."""

    name: str  # e.g. "train-images-idx3-ubyte"; found as `name` or `name.gz`
    sha256: str  # of the decompressed content
    md5_gz: str | None = None  # of the .gz bytes on the official mirrors


@dataclass(frozen=True)
class KnownDataset:
    """A registered dataset: where its files come from and how to check them.

    `kind` is "idx" for the four MNIST-style IDX files, or "digits" for scikit-learn's
    bundled 8x8 digits (one CSV file inside the scikit-learn installation).
    """

    name: str
    description: str
    kind: str
    files: tuple[DataFile, ...]
    n_classes: int
    classes: tuple[str, ...]
    license: str
    mirrors: tuple[str, ...] = ()  # base URLs ending in "/", tried in turn
    train_rows: int | None = None  # known sizes, so a study is checked without reading data
    test_rows: int | None = None
    image_shape: tuple[int, int] | None = None

    def file(self, name: str) -> DataFile:
        """The file called `name` (uncompressed name)."""
        for item in self.files:
            if item.name == name:
                return item
        raise KeyError(name)


IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _idx_files(sha256: tuple[str, ...], md5_gz: tuple[str, ...]) -> tuple[DataFile, ...]:
    return tuple(DataFile(n, s, m) for n, s, m in zip(IDX_FILES, sha256, md5_gz, strict=True))


MNIST = KnownDataset(
    name="mnist",
    description="MNIST handwritten digits: 60,000 train + 10,000 test, 28x28 grey, 10 classes",
    kind="idx",
    files=_idx_files(
        sha256=(
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
        md5_gz=(
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ),
    n_classes=10,
    classes=tuple(str(d) for d in range(10)),
    license="CC BY-SA 3.0 (Y. LeCun, C. Cortes, C. J. C. Burges)",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    train_rows=60_000,
    test_rows=10_000,
    image_shape=(28, 28),
)

FASHION_MNIST = KnownDataset(
    name="fashion-mnist",
    description="Zalando's Fashion-MNIST: 60,000 train + 10,000 test, 28x28 grey, 10 classes",
    kind="idx",
    files=_idx_files(
        sha256=(
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
        md5_gz=(
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    ),
    n_classes=10,
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    license="MIT (Zalando SE)",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    train_rows=60_000,
    test_rows=10_000,
    image_shape=(28, 28),
)

DIGITS = KnownDataset(
    name="digits",
    description=(
        "scikit-learn's 8x8 digits (values 0-16), bundled offline: "
        f"{1797 - DIGITS_TEST_ROWS} train + the last {DIGITS_TEST_ROWS} rows as test, 10 classes"
    ),
    kind="digits",
    files=(
        DataFile(
            "digits.csv",
            "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8",
        ),
    ),
    n_classes=10,
    classes=tuple(str(d) for d in range(10)),
    license="CC BY 4.0 (UCI optical recognition of handwritten digits, via scikit-learn)",
    train_rows=1797 - DIGITS_TEST_ROWS,
    test_rows=DIGITS_TEST_ROWS,
    image_shape=(8, 8),
)

KNOWN_DATASETS: tuple[KnownDataset, ...] = (MNIST, FASHION_MNIST, DIGITS)


def dataset_names() -> tuple[str, ...]:
    """Names of the registered datasets, in registry order."""
    return tuple(entry.name for entry in KNOWN_DATASETS)


def get_dataset(name: str) -> KnownDataset:
    """Return the registry entry called `name`.

    Parameters
    ----------
    name : str
        A registered name: "mnist", "fashion-mnist" or "digits".

    Returns
    -------
    KnownDataset

    Raises
    ------
    DataError
        The name is not registered; the message lists the known names.
    """
    for entry in KNOWN_DATASETS:
        if entry.name == name:
            return entry
    known = ", ".join(dataset_names())
    raise DataError(f"unknown dataset {name!r}; known: {known} (or give a path to your own data)")
