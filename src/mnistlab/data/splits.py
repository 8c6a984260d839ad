"""Row selection: subsets of a source and validation splits of the training rows, as indices.

Everything here returns sorted int64 row indices, so every part keeps the original order.
Impossible sizes raise a one-line `SpecError` naming the field and the sizes.
"""

from __future__ import annotations

import numpy as np

from mnistlab.data.spec import (
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
from mnistlab.errors import SpecError


def subset_rows(
    subset: SubsetSpec | None, y: np.ndarray, field: str = "train_subset"
) -> np.ndarray:
    """The rows a subset keeps, in their original order.

    Parameters
    ----------
    subset : SubsetSpec or None
        balanced (first `per_class` of each class), random (`n` rows, seeded, without
        replacement) or head (first `n`); None keeps every row.
    y : np.ndarray of shape (N,)
        The source's labels.
    field : str
        The spec field, for messages ("train_subset" or "test_subset").

    Returns
    -------
    np.ndarray of shape (K,), int64
        Sorted row indices into the source.

    Raises
    ------
    SpecError
        The subset asks for more rows than the source (or a class) holds.
    """
    n = len(y)
    if subset is None:
        return np.arange(n)
    if isinstance(subset, SubsetBalanced):
        parts = []
        for label in np.unique(y):
            rows = np.flatnonzero(y == label)
            if len(rows) < subset.per_class:
                raise SpecError(
                    f"{field}.per_class: {subset.per_class} rows asked of class {label}, "
                    f"which has {len(rows)}"
                )
            parts.append(rows[: subset.per_class])
        return np.sort(np.concatenate(parts)) if parts else np.arange(0)
    if isinstance(subset, SubsetRandom) and subset.replace:
        return np.sort(np.random.default_rng(subset.seed).integers(0, n, subset.n))
    if subset.n > n:
        raise SpecError(f"{field}.n: {subset.n} rows asked of a source of {n}")
    if isinstance(subset, SubsetHead):
        return np.arange(subset.n)
    assert isinstance(subset, SubsetRandom)
    return np.sort(np.random.default_rng(subset.seed).permutation(n)[: subset.n])


def validation_rows(
    validation: ValidationSpec, n: int, y: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Split `n` training rows into rows kept for training and validation rows.

    Parameters
    ----------
    validation : ValidationSpec
        none, fraction (Keras's validation_split), head, tail, test, random or fold.
    n : int
        Training rows (after `train_subset`).
    y : np.ndarray of shape (n,), optional
        Their labels; stratified folds need them.

    Returns
    -------
    train : np.ndarray, int64
        Positions kept for training, sorted.
    val : np.ndarray or None
        Validation positions, sorted; None for none and test (the test set is used).

    Raises
    ------
    SpecError
        The split would leave no training or no validation rows.
    """
    everything = np.arange(n)
    if isinstance(validation, ValidationNone | ValidationOnTest):
        return everything, None
    if isinstance(validation, ValidationFraction):
        split_at = int(n * (1.0 - validation.fraction))  # Keras's arithmetic, exactly
        if not 0 < split_at < n:
            raise SpecError(
                f"validation.fraction: {validation.fraction} of {n} training rows puts the "
                f"split at row {split_at}, leaving no training or no validation rows"
            )
        return everything[:split_at], everything[split_at:]
    if isinstance(validation, ValidationHead | ValidationTail):
        if validation.n >= n:
            raise SpecError(
                f"validation.n: {validation.n} validation rows must be < {n} training rows"
            )
        if isinstance(validation, ValidationHead):
            return everything[validation.n :], everything[: validation.n]
        return everything[: n - validation.n], everything[n - validation.n :]
    if isinstance(validation, ValidationFold):
        if validation.folds > n:
            raise SpecError(
                f"validation.folds: {validation.folds} folds need >= that many rows, got {n}"
            )
        if validation.stratified:
            return _stratified_fold(validation, everything, y)
        sizes = np.full(validation.folds, n // validation.folds)
        sizes[: n % validation.folds] += 1
        start = int(sizes[: validation.index].sum())
        stop = start + int(sizes[validation.index])
        return np.concatenate([everything[:start], everything[stop:]]), everything[start:stop]
    assert isinstance(validation, ValidationRandom)
    if validation.fraction is not None:
        size = n - int(n * (1.0 - validation.fraction))
        field = f"validation.fraction: {validation.fraction} of {n} training rows gives {size}"
    else:
        size = validation.n or 0
        field = f"validation.n: {size}"
    if not 0 < size < n:
        raise SpecError(f"{field} validation rows; need between 1 and {n - 1}")
    perm = np.random.default_rng(validation.seed).permutation(n)
    return np.sort(perm[size:]), np.sort(perm[:size])


def _stratified_fold(
    validation: ValidationFold, rows: np.ndarray, y: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Fold `index` of scikit-learn's StratifiedKFold(folds, shuffle=False) over the rows."""
    from sklearn.model_selection import StratifiedKFold

    if y is None:
        raise SpecError("validation.stratified: stratified folds need the labels")
    present = np.bincount(y)
    smallest = int(present[present > 0].min()) if present.any() else 0
    if smallest < validation.folds:
        raise SpecError(
            f"validation.folds: {validation.folds} stratified folds need >= {validation.folds} "
            f"rows of every class, the smallest class has {smallest}"
        )
    folds = StratifiedKFold(validation.folds).split(np.zeros(len(rows)), y)
    train, val = list(folds)[validation.index]
    return rows[train], rows[val]
