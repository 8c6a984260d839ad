import numpy as np
import pytest

from mnistlab.errors import SpecError
from mnistlab.models.worked_example import backprop_example

# The derivation, by hand.
# W1 = [[1, 2], [0, -1], [-1, -3], [-2, 2]], b1 = [-2, 2, 0, -2], W2 = [1, 0, -1, 2], b2 = -2.
# x1 = (-1, 1), y1 = 1:  z1 = (-1+2-2, 0-1+2, 1-3+0, 2+2-2) = (-1, 1, -2, 2)
#                        a1 = ReLU(z1) = (0, 1, 0, 2);  ŷ1 = 0 + 0 + 0 + 4 - 2 = 2
# x2 = (2, -1), y2 = -1: z1 = (2-2-2, 0+1+2, -2+3+0, -4-2-2) = (-2, 3, 1, -8)
#                        a1 = (0, 3, 1, 0);  ŷ2 = 0 + 0 - 1 + 0 - 2 = -3
# L = ½[(2-1)² + (-3+1)²] = ½(1 + 4) = 2.5; δ2 = ŷ - y = (1, -2)
# dW2 = 1·(0, 1, 0, 2) - 2·(0, 3, 1, 0) = (0, -5, -2, 2); db2 = 1 - 2 = -1
# δ1(x1) = 1·W2 ⊙ [z1 > 0] = (1, 0, -1, 2) ⊙ (0, 1, 0, 1) = (0, 0, 0, 2)
# δ1(x2) = -2·W2 ⊙ (0, 1, 1, 0) = (0, 0, 2, 0)
# dW1 = δ1(x1) x1ᵀ + δ1(x2) x2ᵀ: row 4 gets 2·(-1, 1) = (-2, 2), row 3 gets 2·(2, -1) = (4, -2)
# db1 = (0, 0, 2, 2)
# With Σ(ŷ−y)² (no ½) every gradient doubles.
HALF_GRADIENTS = {
    "W1": np.array([[0.0, 0.0], [0.0, 0.0], [4.0, -2.0], [-2.0, 2.0]]),
    "b1": np.array([0.0, 0.0, 2.0, 2.0]),
    "W2": np.array([[0.0, -5.0, -2.0, 2.0]]),
    "b2": np.array([-1.0]),
}
START = {
    "W1": np.array([[1.0, 2.0], [0.0, -1.0], [-1.0, -3.0], [-2.0, 2.0]]),
    "b1": np.array([-2.0, 2.0, 0.0, -2.0]),
    "W2": np.array([[1.0, 0.0, -1.0, 2.0]]),
    "b2": np.array([-2.0]),
}


def test_forward_table_matches_the_derivation():
    example = backprop_example(0.1)
    np.testing.assert_array_equal(example.z1, [[-1, 1, -2, 2], [-2, 3, 1, -8]])
    np.testing.assert_array_equal(example.a1, [[0, 1, 0, 2], [0, 3, 1, 0]])
    np.testing.assert_array_equal(example.outputs, [2, -3])
    assert example.loss == 2.5


@pytest.mark.parametrize(("sse", "factor", "loss"), [("half", 1.0, 2.5), ("sum", 2.0, 5.0)])
def test_one_step_matches_the_derivation(sse, factor, loss):
    example = backprop_example(0.1, sse)
    assert example.loss == loss
    for name, gradient in HALF_GRADIENTS.items():
        np.testing.assert_allclose(example.gradients[name], factor * gradient, atol=1e-12)
        np.testing.assert_allclose(
            example.updated[name], START[name] - 0.1 * factor * gradient, atol=1e-12
        )
    assert example.autograd_max_error <= 1e-12


def test_half_convention_updates_written_out():
    example = backprop_example(0.1)
    np.testing.assert_allclose(
        example.updated["W1"], [[1, 2], [0, -1], [-1.4, -2.8], [-1.8, 1.8]], atol=1e-12
    )
    np.testing.assert_allclose(example.updated["b1"], [-2, 2, -0.2, -2.2], atol=1e-12)
    np.testing.assert_allclose(example.updated["W2"], [[1, 0.5, -0.8, 1.8]], atol=1e-12)
    np.testing.assert_allclose(example.updated["b2"], [-1.9], atol=1e-12)


def test_bad_eta_is_a_spec_error():
    with pytest.raises(SpecError, match="eta: must be > 0, got 0"):
        backprop_example(0.0)
