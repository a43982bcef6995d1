"""What a fit shows: the progress bar and the table of epochs, a callback (notebook 04).\n\nWhat it records is
``helpers.recorder``.\n"""
from __future__ import annotations

import sys
import time

import pandas as pd
from tqdm import tqdm

from helpers.callbacks import Callback

# --- progress ---------------------------------------------------------------------------------------

def in_notebook() -> bool:
    """True inside a Jupyter kernel, Colab's included, where output can be HTML (notebook 04, via progress bars).

    There the output can be HTML that updates in place.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    # Through the class hierarchy so that kernels subclassing Jupyter's shell (Colab's) count too.
    return any(cls.__name__ == "ZMQInteractiveShell" for cls in type(get_ipython()).__mro__)


def _bar_bundle(done: int, total: int, text: str) -> dict[str, str]:
    """The bar as HTML, and as the same words for readers that show text only (a plain-text export)."""
    html = (f'<div><progress value="{done}" max="{max(total, 1)}" style="width:300px;height:1em"></progress> '
            f"<span>{text}</span></div>")
    return {"text/html": html, "text/plain": text}


class ProgressCallback(Callback):
    """Shows a fit: a bar over the training batches, and a table row per epoch (notebook 04).

    In a notebook the bar is one output (HTML, with a plain-text twin) updated in place; at the end of the
    fit it says where the fit ended, "finished at epoch 2/2, batch 14/14", so a stored notebook shows that and
    never a frozen "0%" widget. The table is a DataFrame updated in place. In a terminal the bar is tqdm's and goes
    away, the table is printed lines;
    in a log file (no terminal) only the lines. ``Learner(quiet=True)`` shows nothing.
    """

    order = 70  # after the Recorder has added the epoch's row
    refresh_s = 0.2  # an HTML update per batch would flood the notebook's message queue

    def __init__(self):
        # Set here too: a callback may cancel the fit before this one's before_fit runs; after_fit still does.
        self.active = self.notebook = self.terminal = False
        self.bar = self.bar_handle = self.table_handle = None
        self.rows = self.first_row = self.done = self.total = 0
        self.last_draw = 0.0

    def before_fit(self) -> None:
        learn = self.learn
        self.active = not learn.quiet
        self.notebook = self.active and in_notebook()
        self.terminal = self.active and not self.notebook and bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.rows, self.table_handle, self.bar, self.bar_handle = 0, None, None, None
        # The Recorder (order 50) has already run its before_fit, so this is after any reset.
        self.first_row = len(learn.recorder.values)
        self.done, self.total, self.last_draw = 0, 0, 0.0
        if self.notebook:
            from IPython.display import display
            self.bar_handle = display(_bar_bundle(0, 1, "starting"), raw=True, display_id=True)

    def before_train(self) -> None:
        if self.terminal:
            self.bar = tqdm(total=self.learn.n_iter, desc=f"epoch {self.learn.epoch + 1}/{self.learn.n_epoch}",
                            leave=False, file=sys.stderr)
        self.done, self.total = 0, self.learn.n_iter

    def before_batch(self) -> None:
        if self.learn.training:
            # Counted here, not in after_batch: a callback that stops the fit in after_batch (the LR finder)
            # would otherwise leave the final state one batch short.
            self.done = self.learn.iter + 1

    def after_batch(self) -> None:
        if not self.learn.training or not self.active:
            return
        if self.bar is not None:
            self.bar.update()
        elif self.notebook and time.perf_counter() - self.last_draw > self.refresh_s:
            self._draw()

    def after_train(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _text(self) -> str:
        return f"epoch {self.learn.epoch + 1}/{self.learn.n_epoch}, batch {self.done}/{self.total}"

    def _draw(self, final: bool = False) -> None:
        self.last_draw = time.perf_counter()
        text = self._text()
        if final:
            ended = self.learn.epoch + 1 == self.learn.n_epoch and self.done == self.total
            text = f"{'finished' if ended else 'stopped'} at {text}"
        self.bar_handle.update(_bar_bundle(self.done, self.total, text), raw=True)

    def after_epoch(self) -> None:
        values = self.learn.recorder.values
        if not self.active or len(values) <= self.first_row + self.rows:
            return  # no new row: validation was skipped (the LR finder) or cancelled
        # Each fit shows its own rows (fine_tune's two phases are two fits sharing one record).
        rows = [{k: v for k, v in row.items() if k != "batches"} for row in values[self.first_row:]]
        self.rows = len(rows)
        if self.notebook:
            from IPython.display import display
            table = pd.DataFrame(rows)
            if self.table_handle is None:
                self.table_handle = display(table, display_id=True)
            else:
                self.table_handle.update(table)
            return
        if self.rows == 1:
            print("  ".join(f"{k:>10}" for k in rows[-1]))
        print("  ".join(f"{v:>10.6f}" if isinstance(v, float) else f"{v:>10}" for v in rows[-1].values()),
              flush=True)

    def after_fit(self) -> None:
        self.after_train()
        if self.bar_handle is not None:
            self._draw(final=True)
