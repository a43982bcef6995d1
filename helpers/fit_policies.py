"""How a Learner trains: the fit policies, freezing, the learning-rate finder and the precision (notebooks 04-06).

Each public method only chooses callbacks and calls the loop (``Learner._fit``):

- ``fit(n, lr)``: constant rates;
- ``fit_one_cycle(n, lr_max)``: warm up then anneal along cosines (``helpers.schedule``);
- ``lr_find()``: an exponential ramp that stops when the loss blows up, then puts everything back;
- ``fine_tune(n)``: ``freeze``, one-cycle, ``unfreeze``, one-cycle with smaller rates for early layers.

In a smoke run (``COURSE_MAX_BATCHES`` set) a fit runs at most ``SMOKE_MAX_EPOCHS`` epochs with its whole schedule
squeezed into them, and the finder at most ``SMOKE_FINDER_ITERS`` steps (``helpers.short_run``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from helpers.callbacks import Callback, ParamScheduler
from helpers.lr_finder import LRFinder, plot_lr_find, suggest, valley
from helpers.optimiser import DEFAULT_MOM, norm_params
from helpers.precision import Precision
from helpers.profiles import max_batches
from helpers.schedule import lr_for_groups, one_cycle
from helpers.short_run import SMOKE_FINDER_ITERS, epochs_to_run


class FitPolicies:
    """The Learner's training methods: what to run, chosen as callbacks around one loop (notebooks 04-06)."""

    def fit(self, n_epoch: int, lr: float | slice | None = None, cbs: Iterable[Callback] | None = None) -> None:
        """Train ``n_epoch`` epochs at constant rates (a float, or a slice across the groups) (notebook 04)."""
        self.set_hyper("lr", lr_for_groups(self.lr if lr is None else lr, self.n_groups))
        self.set_hyper("mom", DEFAULT_MOM)
        self._fit(epochs_to_run(n_epoch), cbs)

    def fit_one_cycle(self, n_epoch: int, lr_max: float | slice | None = None, div: float = 25.0,
                      div_final: float = 1e5, pct_start: float = 0.25,
                      moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
                      cbs: Iterable[Callback] | None = None, _keep_record: bool = False) -> None:
        """Train with one cycle: rates warm up to ``lr_max`` then anneal, momentum the opposite (notebook 04)."""
        lr_max = np.array(lr_for_groups(self.lr if lr_max is None else lr_max, self.n_groups))
        lr_schedule, mom_schedule = one_cycle(lr_max, pct_start, div, div_final, moms)
        scheduler = ParamScheduler({"lr": lr_schedule, "mom": mom_schedule})
        self._fit(epochs_to_run(n_epoch), [scheduler, *(cbs or [])], keep_record=_keep_record)

    def freeze_to(self, n: int) -> None:
        """Train only the parameter groups from ``n`` on, plus every normalisation layer (notebook 05)."""
        groups = self.splitter(self.model)
        if len(groups) < 2 and n != 0:
            # With one group the head is the whole model: "freezing" would train everything without a word.
            raise ValueError(
                "freeze() / freeze_to() / fine_tune() need several parameter groups, but this Learner has one "
                "(no splitter was given, or it returned one group), so there is no body to freeze apart from the "
                "head. Pass splitter=resnet_split (from helpers.models) for a create_cnn model, or another splitter "
                "that returns several groups; to train the whole model instead, use fit_one_cycle.")
        always = {id(p) for p in norm_params(self.model)}
        for frozen in groups[:n]:
            for p in frozen:
                p.requires_grad_(id(p) in always)
        for trainable in groups[n:]:
            for p in trainable:
                p.requires_grad_(True)
        # Adam's moments belong to the old set of trainable weights: start them afresh.
        state = getattr(self.opt, "state", None)
        if hasattr(state, "clear"):
            state.clear()

    def freeze(self) -> None:
        """Train only the last group (the head) and the normalisation layers (notebook 05)."""
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every parameter (notebook 05)."""
        self.freeze_to(0)

    def fine_tune(self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100,
                  pct_start: float = 0.3, div: float = 5.0, cbs: Iterable[Callback] | None = None) -> None:
        """fastai's recipe: head only for ``freeze_epochs``, then everything with smaller early rates (notebook 05)."""
        self.freeze()
        self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, cbs=cbs)
        base_lr /= 2
        self.unfreeze()
        self.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, cbs=cbs,
                           _keep_record=True)

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True,
                suggest_funcs: Sequence[Callable] = (valley,), show_plot: bool = True) -> tuple:
        """Range test: raise the rate exponentially each batch, record the loss, restore everything (notebook 04)."""
        num_it = max(num_it, 6)  # fewer points leave nothing after trimming
        if max_batches():  # a smoke run: the same code over the same range of rates, in a few steps
            num_it = min(num_it, SMOKE_FINDER_ITERS)
        self._check_train_batches()
        per_epoch = min(len(self.dls.train), max_batches() or len(self.dls.train))
        self._fit(num_it // per_epoch + 1, [LRFinder(start_lr, end_lr, num_it, stop_div, mom=DEFAULT_MOM)])
        lrs = [group_lrs[-1] for group_lrs in self.recorder.lrs]
        suggestions = suggest(lrs, self.recorder.smooth_losses, num_it, suggest_funcs)
        if show_plot:
            plot_lr_find(lrs, self.recorder.smooth_losses, num_it, suggest_funcs)
        return suggestions

    def to_fp16(self) -> FitPolicies:
        """Mixed precision with float16 and loss scaling (best on a CUDA GPU) (notebook 06)."""
        self.precision = Precision("fp16", self.device)
        return self

    def to_bf16(self) -> FitPolicies:
        """Mixed precision with bfloat16, no loss scaling needed (CUDA or CPU) (notebook 06)."""
        self.precision = Precision("bf16", self.device)
        return self

    def to_fp32(self) -> FitPolicies:
        """Back to plain float32 training (notebook 06)."""
        self.precision = Precision("fp32", self.device)
        return self
