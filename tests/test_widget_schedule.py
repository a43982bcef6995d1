"""The one-cycle explorer of notebook 04, driven headlessly by setting its sliders."""
from __future__ import annotations

import math

import numpy as np
import pytest

from helpers.schedule import combined_cos
from helpers.widgets import OneCycleExplorer


def test_draws_fit_one_cycle_s_schedules():
    explorer = OneCycleExplorer(n_batches=100)
    state = explorer.state
    assert state["lr_start"] == pytest.approx(1e-3 / 25)
    assert state["lr_peak"] == pytest.approx(1e-3, rel=1e-3) and state["peak_batch"] == 25
    assert state["mom_min"] == pytest.approx(0.85, rel=1e-3)
    expected = combined_cos(0.25, 1e-3 / 25, 1e-3, 1e-3 / 1e5)
    np.testing.assert_allclose(state["lrs"], [expected(k / 100) for k in range(100)])
    assert explorer.image.value[:4] == b"\x89PNG"
    assert "course-widget" in explorer.widget._dom_classes


@pytest.mark.parametrize("slider, value, key", [("pct_start", 0.5, "peak_batch"), ("lr_max", 1e-2, "lr_peak"),
                                                 ("div", 100.0, "lr_start"), ("div_final", 10.0, "lr_end")])
def test_every_slider_changes_the_drawing(slider, value, key):
    explorer = OneCycleExplorer(n_batches=100)
    before_state, before_png = explorer.state, explorer.image.value
    getattr(explorer, slider).value = value
    assert explorer.state["draws"] == before_state["draws"] + 1
    assert explorer.state[key] != pytest.approx(before_state[key])
    assert explorer.image.value != before_png


def test_slider_values_reach_the_numbers():
    explorer = OneCycleExplorer(n_batches=200)
    explorer.lr_max.value = 1e-2
    explorer.div.value = 10.0
    explorer.pct_start.value = 0.5
    assert explorer.state["lr_start"] == pytest.approx(explorer.lr_max.value / explorer.div.value)
    assert explorer.state["peak_batch"] == 100
    assert explorer.state["lr_end"] > explorer.lr_max.value / explorer.div_final.value


def test_too_few_batches_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2"):
        OneCycleExplorer(n_batches=1)


def test_a_rate_outside_the_usual_range_is_not_clipped():
    for lr_max in (4.6e-7, 3.0):  # what a finder may suggest for an odd model
        state = OneCycleExplorer(n_batches=60, lr_max=lr_max).state
        assert math.isclose(state["lr_start"], lr_max / 25) and math.isclose(state["lr_peak"], lr_max)
