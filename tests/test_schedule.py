"""helpers.schedule: the formulas fastai uses, checked point by point (notebook 04)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers.schedule import combined_cos, even_mults, lr_for_groups, one_cycle, sched_cos, sched_exp


def test_sched_cos_ends_and_middle():
    assert sched_cos(1.0, 3.0, 0.0) == pytest.approx(1.0)
    assert sched_cos(1.0, 3.0, 1.0) == pytest.approx(3.0)
    assert sched_cos(1.0, 3.0, 0.5) == pytest.approx(2.0)
    # A quarter of the way along a half cosine: (1 - cos(pi/4)) / 2 of the distance.
    assert sched_cos(0.0, 1.0, 0.25) == pytest.approx((1 - math.cos(math.pi / 4)) / 2)


def test_sched_exp_is_geometric():
    assert sched_exp(1e-7, 10, 0.0) == pytest.approx(1e-7)
    assert sched_exp(1e-7, 10, 1.0) == pytest.approx(10)
    assert sched_exp(1e-7, 10, 0.75) == pytest.approx(1e-7 * 10 ** (8 * 0.75))


@given(st.floats(0.05, 0.95), st.floats(0.0, 1.0))
def test_combined_cos_matches_its_two_pieces(pct, pos):
    schedule = combined_cos(pct, 0.1, 1.0, 0.001)
    if pos < pct:
        expected = 0.1 + (1 + math.cos(math.pi * (1 - pos / pct))) * (1.0 - 0.1) / 2
    else:
        expected = 1.0 + (1 + math.cos(math.pi * (1 - (pos - pct) / (1 - pct)))) * (0.001 - 1.0) / 2
    assert schedule(pos) == pytest.approx(expected)


def test_combined_cos_hits_start_middle_end():
    schedule = combined_cos(0.25, 0.95, 0.85, 0.95)
    assert schedule(0.0) == pytest.approx(0.95)
    assert schedule(0.25) == pytest.approx(0.85)
    assert schedule(1.0) == pytest.approx(0.95)


def test_combined_cos_works_per_group():
    lr_max = np.array([1e-5, 1e-4, 1e-3])
    schedule = combined_cos(0.3, lr_max / 5, lr_max, lr_max / 1e5)
    np.testing.assert_allclose(schedule(0.0), lr_max / 5)
    np.testing.assert_allclose(schedule(0.3), lr_max)
    for pos in (0.1, 0.6):
        np.testing.assert_allclose(schedule(pos), [combined_cos(0.3, v / 5, v, v / 1e5)(pos) for v in lr_max])


def test_combined_cos_rejects_bad_pct():
    with pytest.raises(ValueError, match="pct"):
        combined_cos(1.5, 0, 1, 0)


def test_even_mults_is_fastcore_s():
    np.testing.assert_allclose(even_mults(1e-6, 1e-4, 3), [1e-6, 1e-5, 1e-4])
    np.testing.assert_allclose(even_mults(2.0, 8.0, 3), [2.0, 4.0, 8.0])
    assert even_mults(1e-3, 1e-2, 1) == [1e-2]


def test_lr_for_groups_float_slice_and_list():
    assert lr_for_groups(3e-3, 3) == [3e-3] * 3
    np.testing.assert_allclose(lr_for_groups(slice(1e-6, 1e-4), 3), [1e-6, 1e-5, 1e-4])
    # fine_tune's frozen phase: slice(2e-3) gives b/10 to all but the last group.
    np.testing.assert_allclose(lr_for_groups(slice(2e-3), 3), [2e-4, 2e-4, 2e-3])
    assert lr_for_groups([1.0, 2.0], 2) == [1.0, 2.0]


def test_lr_for_groups_errors_say_what_to_do():
    with pytest.raises(ValueError, match="one per group"):
        lr_for_groups([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="slice"):
        lr_for_groups(slice(None), 3)
    with pytest.raises(TypeError, match="float, a slice"):
        lr_for_groups("0.01", 3)


def test_one_cycle_uses_div_and_div_final():
    lr_schedule, mom_schedule = one_cycle(np.array([1e-3]), pct_start=0.25, div=25, div_final=1e5)
    np.testing.assert_allclose(lr_schedule(0.0), [1e-3 / 25])
    np.testing.assert_allclose(lr_schedule(0.25), [1e-3])
    np.testing.assert_allclose(lr_schedule(1.0), [1e-3 / 1e5])
    assert mom_schedule(0.25) == pytest.approx(0.85)


def test_combined_cos_with_all_warm_up_ends_at_the_middle_value():
    schedule = combined_cos(1.0, 0.1, 1.0, 0.001)  # pct=1 used to divide by zero at pos=1
    assert schedule(0.0) == pytest.approx(0.1) and schedule(1.0) == pytest.approx(1.0)
    assert schedule(0.5) == pytest.approx(0.55)
    assert combined_cos(0.0, 0.1, 1.0, 0.001)(0.0) == pytest.approx(1.0)  # no warm-up: starts at the middle
