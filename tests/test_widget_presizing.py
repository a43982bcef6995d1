"""Headless tests of the notebook-02 PresizingExplorer: move sliders, check what was drawn."""
from __future__ import annotations

import pytest
from PIL import Image

pytest.importorskip("ipywidgets")
from helpers.widgets import PresizingExplorer


@pytest.fixture(scope="module")
def explorer() -> PresizingExplorer:
    from skimage import data
    return PresizingExplorer(Image.fromarray(data.coffee()), size=64, presize=128)


def test_starts_drawn_with_a_css_class_and_labelled_sliders(explorer):
    assert explorer.state["draws"] >= 1 and bytes(explorer.image.value).startswith(b"\x89PNG")
    assert "course-widget" in explorer.widget._dom_classes
    assert [c.description for c in explorer.controls] == ["rotation (degrees)", "zoom", "warp (tilt)", "crop scale "
                                                                                                       "(area)"]


def test_every_slider_changes_the_picture_and_the_state(explorer):
    for control, value in [(explorer.rotate, -20.0), (explorer.zoom, 1.5), (explorer.warp, -0.3),
                           (explorer.crop_scale, 0.5)]:
        before_png, before = explorer.image.value, dict(explorer.state)
        control.value = value
        assert explorer.state["draws"] == before["draws"] + 1
        assert bytes(explorer.image.value) != bytes(before_png)
        assert explorer.state["psnr_ours"] != before["psnr_ours"]
    assert explorer.state["rotate"] == -20.0 and explorer.state["crop_scale"] == 0.5


def test_ours_beats_the_step_by_step_chain_once_the_chain_interpolates(explorer):
    explorer.rotate.value = 15.0
    assert explorer.state["psnr_ours"] > explorer.state["psnr_step_by_step"] + 3
