"""Smoke runs: every line of a fit in a few batches (``COURSE_MAX_BATCHES``, ``--max-train-batches``) (notebook 04).

One callback, ``ShortRun``, ends each pass of a fit after N batches; the Learner's loop knows nothing about it.
``profile_callbacks`` adds it to every Learner when ``COURSE_MAX_BATCHES`` is set (the full profile's smoke runs,
the browser test); ``python -m helpers.train --max-train-batches N`` adds one that shortens training only.
The fit policies (``helpers.fit_policies``) also squeeze a fit into ``SMOKE_MAX_EPOCHS`` epochs and the
learning-rate finder into ``SMOKE_FINDER_ITERS`` steps while ``COURSE_MAX_BATCHES`` is set.
"""
from __future__ import annotations

from helpers.callbacks import Callback
from helpers.profiles import max_batches

# Under COURSE_MAX_BATCHES (a smoke run) every line of the loop still runs, in far fewer steps:
SMOKE_FINDER_ITERS = 8  # the finder's steps: it trims the last 5, and 3 points still make a curve to suggest from
SMOKE_MAX_EPOCHS = 2    # epochs per fit or fit_one_cycle: enough to cross from one epoch to the next


def epochs_to_run(n_epoch: int) -> int:
    """``n_epoch``, or at most ``SMOKE_MAX_EPOCHS`` in a smoke run (``COURSE_MAX_BATCHES`` set) (notebook 04)."""
    return min(n_epoch, SMOKE_MAX_EPOCHS) if max_batches() else n_epoch


class ShortRun(Callback):
    """Ends every pass of a fit after ``limit`` batches; the schedules fit into the shortened epochs (notebook 04).

    ``limit=None`` reads ``COURSE_MAX_BATCHES`` at each pass (no cap when it is unset or 0). ``validation=False``
    leaves validation whole. Only a fit's passes are cut: ``get_preds`` and ``validate`` promise every item.
    """

    order = -30  # before anything reads n_iter (the progress bar, the schedules through pct_train)

    def __init__(self, limit: int | None = None, validation: bool = True):
        self.limit, self.validation = limit, validation

    def _cap(self) -> None:
        limit = self.limit if self.limit is not None else max_batches()
        if limit and self.learn.fitting:
            self.learn.n_iter = min(self.learn.n_iter, limit)

    def before_train(self) -> None:
        self._cap()

    def before_validate(self) -> None:
        if self.validation:
            self._cap()


def profile_callbacks() -> list[Callback]:
    """The callbacks the environment asks every Learner for: ``ShortRun`` under ``COURSE_MAX_BATCHES`` (notebook 04)."""
    return [ShortRun()] if max_batches() else []
