import math
from pathlib import Path

import numpy as np
import pytest

from mnistlab.data import DataSpec, load_data
from mnistlab.data.regression import RegressionSpec, read_table, split_rows
from mnistlab.errors import DataError, SpecError
from mnistlab.spec import parse_spec

ECKERLE4 = Path(__file__).parents[2] / "data" / "eckerle4" / "Eckerle4.csv"


def _csv(tmp_path, text="a,b,name\n1,10,p\n2,30,q\n3,20,r\n4,40,s\n5,50,t\n"):
    path = tmp_path / "t.csv"
    path.write_text(text)
    return path


def _spec(path, **regression):
    return DataSpec(dataset="t", path=path, regression={"x": ["a"], "y": ["b"], **regression})


def test_split_is_seeded_and_rounds_the_test_part_up():
    spec = RegressionSpec(x=("x",), y=("y",), test_fraction=0.4, split_seed=3)
    train, test = split_rows(35, spec)
    assert (len(train), len(test)) == (21, 14) == (35 - math.ceil(14.0), 14)
    assert not set(train) & set(test)
    assert np.all(np.diff(test) > 0)
    again = split_rows(35, spec)
    np.testing.assert_array_equal(again[1], test)


def test_minmax_fitted_on_all_rows_or_on_the_training_rows(tmp_path):
    path = _csv(tmp_path)
    whole = load_data(_spec(path, test_fraction=0.4, split_seed=0))
    x_all = np.concatenate([whole.train.x.numpy(), whole.test.x.numpy()])
    assert (x_all.min(), x_all.max()) == (0.0, 1.0)  # a: 1..5 over all rows
    assert whole.train.y.shape == (3, 1) and whole.train.y.dtype.is_floating_point
    assert whole.input_shape == (1,) and whole.n_classes == 1
    train_only = load_data(_spec(path, test_fraction=0.4, split_seed=0, scaler_fit="train"))
    x = train_only.train.x.numpy()
    assert (x.min(), x.max()) == (0.0, 1.0)
    train_rows, _ = split_rows(5, RegressionSpec(x=("a",), y=("b",), split_seed=0))
    a = np.array([1.0, 2, 3, 4, 5])[train_rows]
    np.testing.assert_allclose(
        train_only.test.x.numpy()[:, 0], (np.setdiff1d([1, 2, 3, 4, 5], a) - a.min()) / np.ptp(a)
    )


def test_a_missing_or_text_column_is_named(tmp_path):
    path = _csv(tmp_path)
    with pytest.raises(SpecError) as info:
        load_data(DataSpec(dataset="t", path=path, regression={"x": ["wavelength"], "y": ["b"]}))
    assert str(info.value) == (
        f"data.regression.x: {path} has no numeric column 'wavelength'; its numeric columns: a, b"
    )
    with pytest.raises(SpecError, match=r"data\.regression\.y: .* no numeric column 'name'"):
        load_data(DataSpec(dataset="t", path=path, regression={"x": ["a"], "y": ["name"]}))


def test_unreadable_csv_and_bad_specs(tmp_path):
    with pytest.raises(DataError, match="cannot read the CSV"):
        read_table(tmp_path / "none.csv", "none")
    with pytest.raises(SpecError, match="regression: needs path"):
        parse_spec(DataSpec, {"dataset": "t", "regression": {"x": ["a"], "y": ["b"]}})
    with pytest.raises(SpecError, match="validation: a regression dataset is split by"):
        parse_spec(
            DataSpec,
            {
                "dataset": "t",
                "path": "t.csv",
                "regression": {"x": ["a"], "y": ["b"]},
                "validation": {"kind": "tail", "n": 3},
            },
        )


def test_vendored_eckerle4_reads_as_35_points():
    data = load_data(
        DataSpec(dataset="eckerle4", path=ECKERLE4, regression={"x": ["x"], "y": ["y"]})
    )
    assert len(data.train) + len(data.test) == 35
    assert len(data.test) == 14
    table = read_table(ECKERLE4, "eckerle4")
    assert table.columns["x"][0] == 400.0 and table.columns["y"][-1] == 7.1e-05
