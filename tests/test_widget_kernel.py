"""The kernel explorer of notebook 07, driven headlessly: choose presets, type kernels, move the stride."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("ipywidgets")
from helpers.widgets import KERNEL_PRESETS, KernelExplorer, convolve_picture


def square_picture(size: int = 12) -> torch.Tensor:
    """A bright square on a dark ground: every edge kernel has exactly one side to light up."""
    picture = torch.zeros(size, size)
    picture[4:8, 3:9] = 1.0
    return picture


@pytest.fixture
def explorer() -> KernelExplorer:
    return KernelExplorer(square_picture())


def test_starts_drawn_with_a_css_class_and_the_slider_first(explorer):
    assert explorer.state["draws"] == 1 and bytes(explorer.image.value).startswith(b"\x89PNG")
    assert "course-widget" in explorer.widget._dom_classes
    controls = explorer.widget.children[0].children
    assert controls[0] is explorer.stride  # the browser test moves the first slider it finds
    assert explorer.state["preset"] == "top edge" and explorer.state["output_shape"] == (12, 12)


def test_output_equals_conv2d_with_zero_padding(explorer):
    kernel = torch.tensor(KERNEL_PRESETS["top edge"], dtype=torch.float32)
    expected = F.conv2d(square_picture()[None, None], kernel[None, None], padding=1)[0, 0]
    torch.testing.assert_close(explorer.state["output"], expected)
    # The top edge of the bright square lights up positive, its bottom edge negative.
    assert explorer.state["output"][3, 5] > 0 and explorer.state["output"][8, 5] < 0


def test_choosing_a_preset_fills_the_boxes_and_redraws_once(explorer):
    before_png, draws = explorer.image.value, explorer.state["draws"]
    explorer.preset.value = "left edge"
    assert explorer.state["draws"] == draws + 1
    assert [c.value for c in explorer.cells] == [-1, 0, 1] * 3
    assert bytes(explorer.image.value) != bytes(before_png)
    column = explorer.state["output"][5]
    assert column[2] > 0 and column[9] < 0   # left side of the square positive, right side negative


def test_typing_a_value_makes_the_kernel_custom(explorer):
    draws = explorer.state["draws"]
    explorer.cells[4].value = 2.0
    assert explorer.preset.value == "custom" and explorer.state["preset"] == "custom"
    assert explorer.state["draws"] == draws + 1
    assert explorer.state["kernel"][1][1] == 2.0
    # Typing a preset back in recognises it.
    explorer.cells[4].value = 0.0
    assert explorer.preset.value == "top edge"


def test_identity_returns_the_picture_and_box_blur_averages():
    picture = square_picture()
    torch.testing.assert_close(KernelExplorer(picture, kernel="identity").state["output"], picture)
    blurred = KernelExplorer(picture, kernel="box blur").state["output"]
    assert blurred[5, 5].item() == pytest.approx(1.0) and blurred[3, 5].item() == pytest.approx(1 / 3, abs=1e-6)


def test_output_size_follows_the_formula(explorer):
    # One explorer for all 16 settings: each change redraws the picture (about 0.4 s), a new explorer costs more.
    for padding in ("zeros", "reflect", "replicate", "none"):
        explorer.padding.value = padding
        for stride in (1, 2, 3, 4):
            explorer.stride.value = stride
            p = 0 if padding == "none" else 1
            side = (12 + 2 * p - 3) // stride + 1
            assert explorer.state["output_shape"] == (side, side), (padding, stride)
            assert f"= {side}" in explorer.summary.value, (padding, stride, explorer.summary.value)


def test_padding_modes_match_torch_padding():
    picture = torch.rand(9, 7, generator=torch.Generator().manual_seed(0))
    kernel = torch.randn(3, 3, generator=torch.Generator().manual_seed(1))
    for mode in ("reflect", "replicate"):
        expected = F.conv2d(F.pad(picture[None, None], (1, 1, 1, 1), mode=mode), kernel[None, None])[0, 0]
        torch.testing.assert_close(convolve_picture(picture, kernel, padding=mode), expected)
    assert convolve_picture(picture, kernel, padding="none").shape == (7, 5)


def test_pictures_of_every_kind_are_accepted():
    from PIL import Image

    rgb = np.zeros((10, 10, 3), dtype=np.uint8)
    rgb[:, 5:] = 255
    for image in (Image.fromarray(rgb), rgb, torch.from_numpy(rgb).permute(2, 0, 1), rgb[..., 0]):
        explorer = KernelExplorer(image, kernel="left edge")
        assert explorer.picture.shape == (10, 10) and explorer.picture.max() == 1.0
        assert explorer.state["output"][5, 4] > 0


def test_default_picture_is_a_real_photo():
    explorer = KernelExplorer()
    assert explorer.state["input_shape"] == (128, 128)


def test_bad_construction_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown kernel preset"):
        KernelExplorer(square_picture(), kernel="blurry")
    with pytest.raises(ValueError, match="3 x 3"):
        KernelExplorer(square_picture(), kernel=[[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="padding must be one of"):
        KernelExplorer(square_picture(), padding="circular")
    with pytest.raises(ValueError, match="at least 3 x 3"):
        KernelExplorer(torch.zeros(2, 5, 5, 5))


def test_leaving_the_explorer_last_in_a_cell_shows_its_widget(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    explorer = KernelExplorer(square_picture())
    explorer._ipython_display_()
    assert shown == [explorer.widget]
