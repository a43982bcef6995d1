"""Interactive widgets for studying in JupyterLab (notebooks 02, 03 and 04).

Each widget is a small class: its controls are attributes, ``update()`` redraws from their values,
and ``state`` holds what was last drawn, so a test can move a slider and check the result without a
browser. Build with ``.widget`` (an ipywidgets box) and display it, or just leave the object last in a cell.
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

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
        """Recompute the softmax from the sliders and redraw the chart and the table."""
        logits = torch.tensor([s.value for s in self.logit_sliders], dtype=torch.float64)
        temperature = float(self.temperature.value)
        probs = softmax(logits / temperature, dim=0)
        self.state = {"logits": logits.tolist(), "temperature": temperature, "probs": probs.tolist(),
                      "exps": (logits / temperature).exp().tolist(), "draws": self.state["draws"] + 1}
        self.image.value = self._chart(probs.tolist(), temperature)
        rows = "".join(f"<tr><td>{name}</td><td>{x:+.2f}</td><td>{e:.4g}</td><td>{p:.4f}</td></tr>"
                       for name, x, e, p in zip(self.labels, self.state["logits"], self.state["exps"], self.state["probs"]))
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
    """Sliders for rotation, zoom, warp and crop scale; the original, our one-resampling result and the step-by-step chain side by side (notebook 02)."""

    def __init__(self, photo=None, size: int = 224, presize: int = 460):
        if photo is None:
            from skimage import data
            photo = augment.Image.fromarray(data.astronaut())
        self.photo, self.size, self.presize = photo.convert("RGB"), int(size), int(presize)
        style = {"description_width": "initial"}
        self.rotate = widgets.FloatSlider(value=10.0, min=-45.0, max=45.0, step=0.5, description="rotation (degrees)", style=style)
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
        return [self.rotate, self.zoom, self.warp, self.crop_scale]

    def update(self) -> None:
        """Render the slider's transform both ways, measure each against the reference, and redraw."""
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
    """Sliders for fit_one_cycle's settings with a live plot of the learning-rate and momentum schedules (notebook 04)."""

    def __init__(self, n_batches: int = 200, lr_max: float = 1e-3, pct_start: float = 0.25, div: float = 25.0,
                 div_final: float = 1e5, moms: tuple[float, float, float] = (0.95, 0.85, 0.95)):
        if n_batches < 2:
            raise ValueError(f"OneCycleExplorer needs at least 2 batches to draw a schedule, got {n_batches}.")
        self.n_batches, self.moms = n_batches, moms
        style = {"description_width": "initial"}
        # Rates and divisors span orders of magnitude, so their sliders move on a log scale.
        self.lr_max = widgets.FloatLogSlider(value=lr_max, base=10, min=-5, max=0, step=0.1,
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
        """Recompute both schedules from the sliders, batch by batch as fit_one_cycle would, and redraw."""
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
