from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.pareto import hypervolume_2d, pareto_front, pareto_mask


def test_single_point_is_its_own_front() -> None:
    assert pareto_mask(np.array([[1.0, 2.0]]), (True, True)).tolist() == [True]


def test_all_dominated_but_one() -> None:
    v = np.array([[1, 1], [2, 3], [1.5, 2.5], [2, 2.9]])
    assert pareto_mask(v, (True, True)).tolist() == [False, True, False, False]


def test_ties_and_duplicates() -> None:
    v = np.array([[2, 3], [2, 3], [3, 1], [2, 2]])
    # exact duplicates stay (neither is strictly better); (2,2) is dominated by (2,3)
    assert pareto_mask(v, (True, True)).tolist() == [True, True, True, False]
    # a tie in one objective and worse in the other is dominated
    assert pareto_mask(np.array([[1, 5], [1, 4]]), (True, True)).tolist() == [True, False]


def test_minimise_and_maximise() -> None:
    v = np.array([[10.0, 0.9], [5.0, 0.8], [20.0, 0.95], [5.0, 0.7]])  # latency, accuracy
    assert pareto_mask(v, (False, True)).tolist() == [True, True, True, False]
    assert pareto_mask(v, (True, True)).tolist() == [False, False, True, False]


def test_front_of_a_table() -> None:
    table = pd.DataFrame({"speedup": [1.0, 2.0, 3.0, 2.5, None],
                          "score": [0.9, 0.88, 0.8, 0.79, 0.99]})
    front = pareto_front(table, objectives={"speedup": "max", "score": "max"})
    assert front["speedup"].tolist() == [1.0, 2.0, 3.0]  # NaN rows are ignored, sorted
    with pytest.raises(ValueError, match="column 'latency' not in the table"):
        pareto_front(table, objectives={"latency": "min"})
    with pytest.raises(ValueError, match="must be 'max' or 'min'"):
        pareto_front(table, objectives={"score": "up"})


def test_hypervolume() -> None:
    ref = (1.0, 0.0)
    assert hypervolume_2d(np.array([[2.0, 0.5]]), ref) == pytest.approx(0.5)
    # two steps: [1,3]x[0,0.4] U [1,2]x[0,0.8] = 0.8 + 0.4 = 1.2
    assert hypervolume_2d(np.array([[3.0, 0.4], [2.0, 0.8]]), ref) == pytest.approx(1.2)
    # dominated points and duplicates add nothing
    assert hypervolume_2d(np.array([[3.0, 0.4], [2.0, 0.8], [1.5, 0.3], [2.0, 0.8]]), ref) \
        == pytest.approx(1.2)
    # points not better than the reference add nothing
    assert hypervolume_2d(np.array([[0.5, 0.9]]), ref) == 0.0
    # minimising the first objective (latency) with reference latency 10
    assert hypervolume_2d(np.array([[4.0, 0.5]]), (10.0, 0.0), (False, True)) \
        == pytest.approx(3.0)


def test_value_at_interpolates_in_log_speedup_and_says_where_a_front_does_not_reach() -> None:
    from analysis.pareto import value_at

    s, v = [2.0, 8.0], [0.9, 0.7]
    assert value_at(s, v, 4.0) == pytest.approx(0.8)  # halfway in log2: 1 of 2 doublings
    assert value_at(s, v, 1.5) == 0.9  # the 2x model is also a 1.5x model
    assert value_at(s, v, 10.0) is None
    assert value_at([8.0, 2.0], [0.7, 0.9], 8.0) == pytest.approx(0.7)  # order-free


def test_normalized_hypervolume_weighs_16x_as_10_points() -> None:
    from analysis.pareto import normalized_hypervolume

    assert normalized_hypervolume([16.0], [0.9], teacher=0.9) == pytest.approx(1.0)
    assert normalized_hypervolume([4.0], [0.85], teacher=0.9) == pytest.approx(0.5 * 0.5)
    assert normalized_hypervolume([4.0], [0.79], teacher=0.9) == 0.0  # > 10 points down
    assert normalized_hypervolume([1.0], [0.95], teacher=0.9) == 0.0  # no speedup
