"""Interactive widgets for studying in JupyterLab (notebooks 02, 03, 04 and 07).

Each widget is a small class: its controls are attributes, ``update()`` redraws from their values,
and ``state`` holds what was last drawn, so a test can move a slider and check the result without a
browser. Build with ``.widget`` (an ipywidgets box) and display it, or just leave the object last in a cell.
"""
from __future__ import annotations

import io
import math

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from PIL import Image

from helpers import augment
from helpers.losses import softmax
from helpers.schedule import one_cycle


def _png(figure: Figure) -> bytes:
    """A bare matplotlib Figure (not pyplot: no global state, nothing left open, no display needed) as PNG bytes."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class _Explorer:
    """What every widget here shares: redraw whenever a control moves, and show ``.widget`` when displayed."""

    widget: widgets.Widget

    def _watch(self, controls: list) -> None:
        for control in controls:
            control.observe(lambda change: self.update(), names="value")

    def update(self) -> None:
        raise NotImplementedError

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.widget)


# --- notebook 03: softmax explorer (helpers.losses) ---------------------------------------------

class SoftmaxExplorer(_Explorer):
    """Sliders for a few logits and a temperature, with a live bar chart of softmax(logits / T) (notebook 03)."""

    def __init__(self, logits: tuple[float, ...] = (0.02, -2.49, 1.25), labels: tuple[str, ...] | None = None,
                 temperature: float = 1.0):
        if not 2 <= len(logits) <= 5:
            raise ValueError(f"SoftmaxExplorer shows 2 to 5 logits, got {len(logits)}.")
        self.labels = tuple(labels) if labels is not None else tuple(f"class {i}" for i in range(len(logits)))
        if len(self.labels) != len(logits):
            raise ValueError(f"give one label per logit: {len(logits)} logits but {len(self.labels)} labels.")
        self.logit_sliders = [
            widgets.FloatSlider(value=float(v), min=-10.0, max=10.0, step=0.01, description=f"logit {name}",
                                   continuous_update=True, style={"description_width": "initial"})
            for v, name in zip(logits, self.labels)]
        # A log scale: temperatures 0.1 and 10 are equally far from 1, and both extremes are worth seeing.
        self.temperature = widgets.FloatLogSlider(value=temperature, base=10, min=-1, max=1, step=0.01,
                                                     description="temperature", style={"description_width": "initial"})
        self.image = widgets.Image(format="png")
        self.table = widgets.HTML()
        self.state: dict = {"draws": 0}
        self._watch([*self.logit_sliders, self.temperature])
        controls = widgets.VBox([*self.logit_sliders, self.temperature, self.table])
        self.widget = widgets.HBox([controls, self.image])
        self.widget.add_class("course-widget")
        self.update()

    def update(self) -> None:
        """Recompute the softmax from the sliders and redraw the chart and the table (notebook 03)."""
        logits = torch.tensor([s.value for s in self.logit_sliders], dtype=torch.float64)
        temperature = float(self.temperature.value)
        probs = softmax(logits / temperature, dim=0)
        self.state = {"logits": logits.tolist(), "temperature": temperature, "probs": probs.tolist(),
                      "exps": (logits / temperature).exp().tolist(), "draws": self.state["draws"] + 1}
        self.image.value = self._chart(probs.tolist(), temperature)
        rows = "".join(f"<tr><td>{name}</td><td>{x:+.2f}</td><td>{e:.4g}</td><td>{p:.4f}</td></tr>"
                       for name, x, e, p in zip(self.labels, self.state["logits"], self.state["exps"],
                                                self.state["probs"]))
        self.table.value = ("<table><tr><th>class</th><th>logit</th><th>exp(logit/T)</th><th>softmax</th></tr>"
                            f"{rows}</table>")

    def _chart(self, probs: list[float], temperature: float) -> bytes:
        figure = Figure(figsize=(4.5, 3), dpi=80)
        axes = figure.subplots()
        bars = axes.bar(self.labels, probs, color="tab:blue")
        bars[max(range(len(probs)), key=probs.__getitem__)].set_color("tab:orange")
        axes.set_ylim(0, 1)
        axes.set_title(f"softmax(logits / {temperature:.2f})")
        axes.set_xlabel("class")
        axes.set_ylabel("probability")
        for x, p in enumerate(probs):
            axes.text(x, p + 0.02, f"{p:.2f}", ha="center")
        return _png(figure)


# --- notebook 02: presizing explorer (helpers.augment) ------------------------------------------


class PresizingExplorer(_Explorer):
    """Sliders for rotation, zoom, warp and crop; the original, ours and the step-by-step chain (notebook 02).

    Ours is the one-resampling result.
    """

    def __init__(self, photo=None, size: int = 224, presize: int = 460):
        if photo is None:
            from skimage import data
            photo = Image.fromarray(data.astronaut())
        self.photo, self.size, self.presize = photo.convert("RGB"), int(size), int(presize)
        style = {"description_width": "initial"}
        self.rotate = widgets.FloatSlider(value=10.0, min=-45.0, max=45.0, step=0.5, description="rotation (degrees)",
                                          style=style)
        self.zoom = widgets.FloatSlider(value=1.1, min=1.0, max=2.0, step=0.05, description="zoom", style=style)
        self.warp = widgets.FloatSlider(value=0.2, min=-0.4, max=0.4, step=0.02, description="warp (tilt)", style=style)
        self.crop_scale = widgets.FloatSlider(value=0.75, min=0.25, max=1.0, step=0.05, description="crop scale (area)",
                                                 style=style)
        self.image = widgets.Image(format="png")
        self.state: dict = {"draws": 0}
        self._watch(self.controls)
        self.widget = widgets.VBox([widgets.HBox(self.controls[:2]), widgets.HBox(self.controls[2:]), self.image])
        self.widget.add_class("course-widget")
        self.update()

    @property
    def controls(self) -> list:
        """The sliders whose changes redraw the explorer (notebook 02)."""
        return [self.rotate, self.zoom, self.warp, self.crop_scale]

    def update(self) -> None:
        """Render the transform both ways, measure each against the reference, and redraw (notebook 02)."""
        geometry = {"crop_scale": float(self.crop_scale.value), "crop_centre": (0.0, 0.0), "flip": False,
                    "rotate": float(self.rotate.value), "zoom": float(self.zoom.value),
                    "warp": (float(self.warp.value), 0.0)}
        images = augment.render_three(self.photo, geometry, self.size, self.presize)
        scores = {method: augment.psnr(images[method], images["reference"]) for method in ("ours", "step_by_step")}
        self.state = {"rotate": geometry["rotate"], "zoom": geometry["zoom"], "warp": geometry["warp"][0],
                      "crop_scale": geometry["crop_scale"], "psnr_ours": scores["ours"],
                      "psnr_step_by_step": scores["step_by_step"], "draws": self.state["draws"] + 1}
        self.image.value = self._chart(images, scores)

    def _chart(self, images: dict, scores: dict) -> bytes:
        figure = Figure(figsize=(10, 3.6), dpi=72)
        panels = [(augment.centre_square(self.photo), "original (centre square)"),
                  (images["ours"].permute(1, 2, 0).numpy(), f"ours, one resampling\nPSNR {scores['ours']:.1f} dB"),
                  (images["step_by_step"].permute(1, 2, 0).numpy(),
                   f"step by step (v2 chain)\nPSNR {scores['step_by_step']:.1f} dB")]
        for axes, (picture, title) in zip(figure.subplots(1, 3), panels):
            axes.imshow(picture)
            axes.set_title(title)
            axes.set_xlabel("x (pixels)")
            axes.set_ylabel("y (pixels)")
        figure.suptitle("The same transform, two ways (PSNR against a supersampled full-resolution render)")
        return _png(figure)


# --- notebook 04: one-cycle schedule explorer (helpers.schedule) --------------------------------


class OneCycleExplorer(_Explorer):
    """Sliders for fit_one_cycle's settings with a live plot of the rate and momentum schedules (notebook 04)."""

    def __init__(self, n_batches: int = 200, lr_max: float = 1e-3, pct_start: float = 0.25, div: float = 25.0,
                 div_final: float = 1e5, moms: tuple[float, float, float] = (0.95, 0.85, 0.95)):
        if n_batches < 2:
            raise ValueError(f"OneCycleExplorer needs at least 2 batches to draw a schedule, got {n_batches}.")
        self.n_batches, self.moms = n_batches, moms
        style = {"description_width": "initial"}
        # Rates and divisors span orders of magnitude, so their sliders move on a log scale.
        # From 1e-5 to 1, widened to take any rate a finder may suggest (the slider would silently clip it).
        low, high = min(-5, math.floor(math.log10(lr_max))), max(0, math.ceil(math.log10(lr_max)))
        self.lr_max = widgets.FloatLogSlider(value=lr_max, base=10, min=low, max=high, step=0.1,
                                                description="lr_max", readout_format=".1e", style=style)
        self.pct_start = widgets.FloatSlider(value=pct_start, min=0.05, max=0.95, step=0.05,
                                                description="pct_start", style=style)
        self.div = widgets.FloatLogSlider(value=div, base=10, min=0, max=3, step=0.05,
                                             description="div (start = lr_max/div)", readout_format=".3g", style=style)
        self.div_final = widgets.FloatLogSlider(value=div_final, base=10, min=0, max=7, step=0.5,
                                                   description="div_final (end = lr_max/div_final)",
                                                   readout_format=".1e", style=style)
        self.image = widgets.Image(format="png")
        self.summary = widgets.HTML()
        self.state: dict = {"draws": 0}
        self._watch([self.lr_max, self.pct_start, self.div, self.div_final])
        controls = widgets.VBox([self.lr_max, self.pct_start, self.div, self.div_final, self.summary])
        self.widget = widgets.HBox([controls, self.image])
        self.widget.add_class("course-widget")
        self.update()

    def update(self) -> None:
        """Recompute both schedules from the sliders, batch by batch as fit_one_cycle does, and redraw (notebook 04)."""
        lr_schedule, mom_schedule = one_cycle(self.lr_max.value, self.pct_start.value, self.div.value,
                                                 self.div_final.value, self.moms)
        positions = np.arange(self.n_batches) / self.n_batches
        lrs = np.array([float(lr_schedule(p)) for p in positions])
        moms = np.array([float(mom_schedule(p)) for p in positions])
        self.state = {"positions": positions, "lrs": lrs, "moms": moms, "lr_start": lrs[0],
                      "lr_peak": lrs.max(), "peak_batch": int(lrs.argmax()), "lr_end": lrs[-1],
                      "mom_min": moms.min(), "draws": self.state["draws"] + 1}
        self.image.value = self._chart(lrs, moms)
        self.summary.value = (f"<b>start</b> {lrs[0]:.2e} &rarr; <b>peak</b> {lrs.max():.2e} "
                              f"(batch {int(lrs.argmax())}) &rarr; <b>end</b> {lrs[-1]:.2e}")

    def _chart(self, lrs: np.ndarray, moms: np.ndarray) -> bytes:
        figure = Figure(figsize=(8, 3), dpi=80)
        lr_axes, mom_axes = figure.subplots(1, 2)
        lr_axes.plot(lrs, color="tab:blue")
        lr_axes.set(title="Learning rate", xlabel="batch", ylabel="learning rate")
        mom_axes.plot(moms, color="tab:orange")
        mom_axes.set(title="Momentum (Adam's beta1)", xlabel="batch", ylabel="momentum")
        return _png(figure)


# --- notebook 07: kernel explorer (a 3x3 convolution) -------------------------------------------

# Each preset is checked by what it does to a picture (notebook 07 shows them): "top edge" is positive where
# a dark band lies above a bright one, "left edge" where dark lies left of bright, and so on.
KERNEL_PRESETS: dict[str, tuple[tuple[float, ...], ...]] = {
    "top edge": ((-1, -1, -1), (0, 0, 0), (1, 1, 1)),
    "bottom edge": ((1, 1, 1), (0, 0, 0), (-1, -1, -1)),
    "left edge": ((-1, 0, 1), (-1, 0, 1), (-1, 0, 1)),
    "right edge": ((1, 0, -1), (1, 0, -1), (1, 0, -1)),
    "diagonal edge": ((0, 1, 1), (-1, 0, 1), (-1, -1, 0)),
    "outline (Laplacian)": ((-1, -1, -1), (-1, 8, -1), (-1, -1, -1)),
    "sharpen": ((0, -1, 0), (-1, 5, -1), (0, -1, 0)),
    "box blur": ((1 / 9,) * 3,) * 3,
    "identity": ((0, 0, 0), (0, 1, 0), (0, 0, 0)),
}
PADDING_CHOICES = ("zeros", "reflect", "replicate", "none")


def _grey_picture(image) -> torch.Tensor:
    """Any picture (PIL, array, tensor; grey or RGB) as a float H x W tensor in [0, 1]."""
    if hasattr(image, "convert"):  # a PIL image
        image = np.asarray(image.convert("L"))
    # A copy: PIL's arrays are read-only, which torch warns about.
    picture = image.detach().cpu() if isinstance(image, torch.Tensor) else torch.from_numpy(np.array(image))
    if picture.ndim == 3 and picture.shape[0] in (1, 3):      # C x H x W
        picture = picture.float().mean(dim=0)
    elif picture.ndim == 3 and picture.shape[-1] in (1, 3):   # H x W x C
        picture = picture.float().mean(dim=-1)
    if picture.ndim != 2 or min(picture.shape) < 3:
        raise ValueError(f"KernelExplorer needs one picture of at least 3 x 3 pixels (H x W, C x H x W or a PIL "
                         f"image), got shape {tuple(picture.shape)}.")
    picture = picture.float()
    return picture / 255 if picture.max() > 1 else picture


def convolve_picture(picture: torch.Tensor, kernel: torch.Tensor, stride: int = 1,
                     padding: str = "zeros") -> torch.Tensor:
    """One 3x3 kernel over an H x W picture with ``F.conv2d`` (notebook 07).

    ``padding`` is zeros, reflect, replicate or none.
    """
    if padding not in PADDING_CHOICES:
        raise ValueError(f"padding must be one of {PADDING_CHOICES}, got {padding!r}.")
    x = picture[None, None].float()
    if padding in ("reflect", "replicate"):
        x = F.pad(x, (1, 1, 1, 1), mode=padding)
    return F.conv2d(x, kernel.float()[None, None], stride=stride, padding=1 if padding == "zeros" else 0)[0, 0]


class KernelExplorer(_Explorer):
    """Pick a preset or type a 3x3 kernel, choose stride and padding, and see the convolved picture (notebook 07)."""

    def __init__(self, image=None, kernel: str | tuple | list | torch.Tensor = "top edge", stride: int = 1,
                 padding: str = "zeros"):
        if image is None:
            from skimage import data
            image = Image.fromarray(data.camera()).resize((128, 128))
        self.picture = _grey_picture(image)
        if padding not in PADDING_CHOICES:
            raise ValueError(f"padding must be one of {PADDING_CHOICES}, got {padding!r}.")
        if isinstance(kernel, str):
            if kernel not in KERNEL_PRESETS:
                raise ValueError(f"unknown kernel preset {kernel!r}: choose one of {sorted(KERNEL_PRESETS)}, "
                                 "or pass a 3x3 nested list of numbers.")
            preset, values = kernel, torch.tensor(KERNEL_PRESETS[kernel], dtype=torch.float64)
        else:
            values = torch.as_tensor(kernel, dtype=torch.float64)
            if values.shape != (3, 3):
                raise ValueError(f"the kernel must be 3 x 3 numbers, got shape {tuple(values.shape)}.")
            preset = self._matching_preset(values)
        style = {"description_width": "initial"}
        # The slider comes first: it is what a keyboard (and the browser test) reaches first.
        self.stride = widgets.IntSlider(value=int(stride), min=1, max=4, step=1, description="stride", style=style)
        self.padding = widgets.Dropdown(options=list(PADDING_CHOICES), value=padding, description="padding",
                                        style=style)
        self.preset = widgets.Dropdown(options=[*KERNEL_PRESETS, "custom"], value=preset, description="kernel",
                                       style=style)
        self.cells = [widgets.FloatText(value=float(v), step=0.1, layout=widgets.Layout(width="72px"))
                      for v in values.flatten()]
        self.image = widgets.Image(format="png")
        self.summary = widgets.HTML()
        self.state: dict = {"draws": 0}
        self._syncing = False
        self.preset.observe(self._preset_chosen, names="value")
        for cell in self.cells:
            cell.observe(self._cell_typed, names="value")
        self._watch([self.stride, self.padding])
        grid = widgets.GridBox(self.cells, layout=widgets.Layout(grid_template_columns="repeat(3, 76px)"))
        controls = widgets.VBox([self.stride, self.padding, self.preset, widgets.HTML("or type the kernel:"), grid,
                                 self.summary])
        self.widget = widgets.HBox([controls, self.image])
        self.widget.add_class("course-widget")
        self.update()

    @property
    def kernel(self) -> torch.Tensor:
        """The 3x3 kernel the text boxes hold now (notebook 07)."""
        return torch.tensor([c.value for c in self.cells], dtype=torch.float32).view(3, 3)

    @staticmethod
    def _matching_preset(values: torch.Tensor) -> str:
        for name, preset in KERNEL_PRESETS.items():
            if torch.allclose(values.double(), torch.tensor(preset, dtype=torch.float64), atol=1e-4):
                return name
        return "custom"

    def _preset_chosen(self, change) -> None:
        if self._syncing or change["new"] == "custom":
            return
        # Fill all nine boxes first and redraw once, not once per box.
        self._syncing = True
        try:
            for cell, value in zip(self.cells, np.ravel(KERNEL_PRESETS[change["new"]]).tolist()):
                cell.value = value
        finally:
            self._syncing = False
        self.update()

    def _cell_typed(self, change) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.preset.value = self._matching_preset(self.kernel)
        finally:
            self._syncing = False
        self.update()

    def update(self) -> None:
        """Convolve the picture with the boxes' kernel, then redraw it and the shape summary (notebook 07)."""
        kernel, stride, padding = self.kernel, int(self.stride.value), str(self.padding.value)
        output = convolve_picture(self.picture, kernel, stride, padding)
        height, width = self.picture.shape
        p = 0 if padding == "none" else 1
        self.state = {"kernel": kernel.tolist(), "preset": self.preset.value, "stride": stride, "padding": padding,
                      "input_shape": (height, width), "output_shape": tuple(output.shape), "output": output,
                      "draws": self.state["draws"] + 1}
        self.image.value = self._chart(kernel, output)
        self.summary.value = (f"<b>{height} x {width}</b> &rarr; <b>{output.shape[0]} x {output.shape[1]}</b><br>"
                              f"floor(({height} + 2&middot;{p} - 3) / {stride}) + 1 = {output.shape[0]}")

    def _chart(self, kernel: torch.Tensor, output: torch.Tensor) -> bytes:
        figure = Figure(figsize=(10, 3.4), dpi=72)
        picture_axes, kernel_axes, output_axes = figure.subplots(1, 3, gridspec_kw={"width_ratios": [4, 2, 4]})
        picture_axes.imshow(self.picture.numpy(), cmap="gray", vmin=0, vmax=1)
        picture_axes.set(title=f"input {self.picture.shape[0]} x {self.picture.shape[1]}", xlabel="x (pixels)",
                         ylabel="y (pixels)")
        limit = max(float(kernel.abs().max()), 1e-6)
        kernel_axes.imshow(kernel.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        for (row, column), value in np.ndenumerate(kernel.numpy()):
            kernel_axes.text(column, row, f"{value:.2g}", ha="center", va="center")
        kernel_axes.set(title="kernel", xlabel="column", ylabel="row", xticks=range(3), yticks=range(3))
        # A diverging map with 0 in the middle: edges come out positive on one side and negative on the other.
        limit = max(float(output.abs().max()), 1e-6)
        shown = output_axes.imshow(output.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        figure.colorbar(shown, ax=output_axes, fraction=0.046)
        output_axes.set(title=f"output {output.shape[0]} x {output.shape[1]} (red > 0 > blue)", xlabel="x (pixels)",
                        ylabel="y (pixels)")
        return _png(figure)
