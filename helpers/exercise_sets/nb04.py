"""Exercises and questionnaire of notebook 04, the LR finder and one-cycle.

Use them with ``from helpers.exercise_sets import nb04 as ex``.
"""
from __future__ import annotations

import math

import numpy as np

from helpers.exercises import ChoiceExercise, FunctionExercise, Questionnaire, Reflection, ValueExercise, track_set


def _finder_lr(k: int, start_lr: float, end_lr: float, num_it: int) -> float:
    return start_lr * (end_lr / start_lr) ** (k / num_it)


def _smooth(losses: list[float], beta: float = 0.98) -> list[float]:
    average, out = 0.0, []
    for count, loss in enumerate(losses, 1):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta**count))
    return out


def _tenth_of_minimum(lrs: list[float], losses: list[float]) -> float:
    return lrs[int(np.argmin(losses))] / 10


CURVE_LRS = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
CURVE_LOSSES = [2.30, 2.25, 1.90, 1.20, 1.50, 9.00]

def _one_cycle_rate(pos: float, lr_max: float) -> float:
    start, end = lr_max / 25, lr_max / 1e5
    if pos < 0.25:
        frac, a, b = pos / 0.25, start, lr_max
    else:
        frac, a, b = (pos - 0.25) / 0.75, lr_max, end
    return a + (1 - math.cos(math.pi * frac)) * (b - a) / 2


one_cycle_rate = FunctionExercise(
    """Write `one_cycle_rate(pos, lr_max)`: the one-cycle rate at `pos`, the fraction of the whole fit done (0 to 1).
    For the first quarter (`pos < 0.25`) it rises from `lr_max / 25` to `lr_max`, then falls to `lr_max / 1e5`,
    each phase along half a cosine: from `a` to `b` at fraction `f` of the phase, """
    """`a + (1 - cos(pi * f)) * (b - a) / 2`.""",
    reference=_one_cycle_rate,
    test_cases=[(0.0, 1e-3), (0.1, 1e-3), (0.25, 2e-2), (0.5, 1e-3), (0.9, 4e-3), (0.999, 1e-3)],
    hints=["Split at 0.25: the phase's own fraction is pos / 0.25 in the warm-up and (pos - 0.25) / 0.75 after.",
           "At f = 0 the cosine formula gives a, at f = 1 it gives b: check your two phases meet at lr_max."],
    solution="""
    def one_cycle_rate(pos, lr_max):
        if pos < 0.25:
            f, a, b = pos / 0.25, lr_max / 25, lr_max
        else:
            f, a, b = (pos - 0.25) / 0.75, lr_max, lr_max / 1e5
        return a + (1 - math.cos(math.pi * f)) * (b - a) / 2
    """,
    wrong_answers=[# a linear anneal
                   lambda pos, lr: (_one_cycle_rate(pos, lr) if pos < 0.25
                                    else lr + (lr / 1e5 - lr) * (pos - 0.25) / 0.75),
                   # the wrong warm-up length
                   lambda pos, lr: (_one_cycle_rate(min(pos * 4 / 3, 1.0), lr) if pos < 0.25
                                    else _one_cycle_rate(pos, lr)),
                   lambda pos, lr: lr if pos < 0.25 else _one_cycle_rate(pos, lr)],  # no warm-up
    right_answers=[lambda pos, lr: __import__("helpers.schedule", fromlist=["x"]).combined_cos(
                       0.25, lr / 25, lr, lr / 1e5)(pos),
                   lambda pos, lr: (lr / 25 + (lr - lr / 25) * (1 - math.cos(math.pi * pos / 0.25)) / 2
                                    if pos < 0.25 else
                                    lr / 1e5 + (lr - lr / 1e5) * (1 + math.cos(math.pi * (pos - 0.25) / 0.75)) / 2)],
    explanation=("Both phases are half a cosine between their two ends, so the rate leaves and reaches each end with "
                 "zero slope: a gentle warm-up from lr_max / 25 to lr_max over the first quarter, then a long anneal."),
)

q1 = FunctionExercise(
    """Write `finder_lr(k, start_lr, end_lr, num_it)`: the rate the finder uses at batch `k` (counting from 0),
    growing exponentially so that it would reach `end_lr` at batch `num_it`.""",
    reference=_finder_lr,
    test_cases=[(0, 1e-7, 10.0, 100), (50, 1e-7, 10.0, 100), (75, 1e-7, 10.0, 100), (3, 1e-3, 1.0, 6)],
    hints=["At k = 0 it is start_lr; at k = num_it it would be end_lr.",
           "Equal steps on a log scale: multiply start_lr by (end_lr / start_lr) raised to the fraction k / num_it."],
    solution="""
    def finder_lr(k, start_lr, end_lr, num_it):
        return start_lr * (end_lr / start_lr) ** (k / num_it)
    """,
    wrong_answers=[lambda k, s, e, n: s + (e - s) * k / n,              # linear: almost all points at large rates
                   lambda k, s, e, n: s * (e / s) ** ((k + 1) / n),     # one batch ahead
                   lambda k, s, e, n: s * 10 ** k],                     # ten times larger every batch
    right_answers=[lambda k, s, e, n: math.exp(math.log(s) + k / n * (math.log(e) - math.log(s))),
                   lambda k, s, e, n: 10 ** np.interp(k / n, [0, 1], [math.log10(s), math.log10(e)]),
                   lambda k, s, e, n: s * (e / s) ** (k / n)],
    explanation=("An exponential schedule multiplies the rate by the same factor at every batch: after k of "
                 "num_it batches the factor is (end / start) ** (k / num_it)."),
)

q2 = FunctionExercise(
    """Write `smooth(losses, beta=0.98)`: the list of debiased exponential moving averages the finder plots,
    one per loss (start the average at 0 and divide by `1 - beta**count`).""",
    reference=_smooth,
    test_cases=[([2.0, 2.0, 2.0],), ([3.0, 1.0, 2.0, 0.5],), ([1.0, 4.0], 0.5)],
    hints=["Keep a running `average = beta * average + (1 - beta) * loss`.",
           "Without the correction the first values are pulled towards 0; divide the i-th average (counting from 1) "
           "by 1 - beta**i."],
    solution="""
    def smooth(losses, beta=0.98):
        average, smoothed = 0.0, []
        for count, loss in enumerate(losses, 1):
            average = beta * average + (1 - beta) * loss
            smoothed.append(average / (1 - beta**count))
        return smoothed
    """,
    wrong_answers=[lambda losses, beta=0.98: [float(np.mean(losses[:i + 1])) for i in range(len(losses))],  # plain mean
                   lambda losses, beta=0.98: [sum((1 - beta) * beta ** (i - j) * losses[j] for j in range(i + 1))
                                              for i in range(len(losses))],                             # not debiased
                   lambda losses, beta=0.98: list(losses)],                                             # no smoothing
    right_answers=[lambda losses, beta=0.98: [sum((1 - beta) * beta ** (i - j) * losses[j] for j in range(i + 1))
                                              / (1 - beta ** (i + 1)) for i in range(len(losses))],
                   lambda losses, beta=0.98: np.array([np.dot([beta ** (i - j) for j in range(i + 1)], losses[:i + 1])
                                                       / sum(beta ** (i - j) for j in range(i + 1))
                                                       for i in range(len(losses))])],
    explanation=("A moving average that starts at 0 is pulled towards 0 in its first steps; dividing by 1 - "
                 "beta**count undoes exactly that pull."),
)

q3 = FunctionExercise(
    "Write `tenth_of_minimum(lrs, losses)`: the first rule of thumb, a tenth of the rate where the loss was "
    "lowest.",
    reference=_tenth_of_minimum,
    test_cases=[(CURVE_LRS, CURVE_LOSSES), ([1e-3, 1e-2, 1e-1], [1.0, 0.5, 0.7])],
    hints=["`np.argmin(losses)` gives the position of the lowest loss."],
    solution="""
    def tenth_of_minimum(lrs, losses):
        return lrs[int(np.argmin(losses))] / 10
    """,
    wrong_answers=[lambda lrs, losses: lrs[int(np.argmin(losses))],     # the minimum itself: already too high
                   lambda lrs, losses: min(losses) / 10,                # a tenth of the loss, not of the rate
                   lambda lrs, losses: lrs[int(np.argmax(losses))] / 10],
    right_answers=[lambda lrs, losses: min(zip(losses, lrs))[1] / 10,
                   lambda lrs, losses: lrs[losses.index(min(losses))] * 0.1,
                   lambda lrs, losses: np.asarray(lrs)[np.argmin(losses)] / 10],
    explanation=("The lowest loss sits at the edge of where training becomes unstable, so the rule steps back by "
                 "a factor of 10 from the rate found there."),
)

q4 = ValueExercise(
    """`fit_one_cycle(8, lr_max=1e-3)` on a loader of 100 batches, with the default `pct_start=0.25` and `div=25`.
    `answer = (first_lr, peak_batch)`: the rate of the very first batch, and the index (from 0) of the batch where
    the rate reaches `lr_max`.""",
    expected=(1e-3 / 25, 200),
    hints=["The cycle starts at lr_max / div.", "The warm-up lasts pct_start of ALL the batches of the fit, not of one "
                                                "epoch."],
    solution="answer = (1e-3 / 25, 200)   # 4e-05, and 0.25 * 8 * 100 = 200",
    wrong_answers=[(1e-3 / 25, 25), (1e-3, 200), (1e-3 / 1e5, 200)],
    right_answers=[[4e-5, 200], (0.00004, 200.0)],
    explanation=("The warm-up is pct_start * 8 epochs * 100 batches = 200 batches long, and it starts at lr_max / "
                 "div = 1e-3 / 25 = 4e-5."),
)

q5 = ValueExercise(
    """One-cycle moves Adam's momentum (its first beta) against the rate. With the default `moms=(0.95, 0.85, 0.95)`:
    `answer = (first, at_peak, last)`, the momentum of the first batch, of the batch where the rate peaks, and the
    value it returns to at the very end of training.""",
    expected=(0.95, 0.85, 0.95),
    hints=["When the rate is low, momentum is high; when the rate is at its peak, momentum is at its lowest.",
           "The momentum schedule is the same cosine shape as the rate's, from 0.95 down to 0.85 and back up."],
    solution="answer = (0.95, 0.85, 0.95)   # helpers.schedule.one_cycle(lr_max)[1] at 0, pct_start and 1",
    wrong_answers=[(0.85, 0.95, 0.85), (0.95, 0.95, 0.95), (0.9, 0.85, 0.9)],
    right_answers=[[0.95, 0.85, 0.95], (0.950, 0.850, 0.950)],
    explanation=("Momentum moves against the rate: it starts high (0.95), falls to its lowest (0.85) where the "
                 "rate peaks, and climbs back to 0.95 by the end."),
)

questionnaire = Questionnaire([
    Reflection("What are two good rules of thumb for picking a learning rate from the learning-rate finder's plot?",
               "Either take a rate about ten times smaller than the one where the smoothed loss was lowest (at the "
               "minimum itself the rate is already so high that training is about to become unstable), or take the "
               "last rate where the loss was still clearly falling, the steepest part of the descent. fastai's "
               "default, "
               "`valley`, picks a point a little past the start of the longest descent; it need not land near the "
               "other two "
               "(on notebook 04's pets curve it sits more than ten times below them, as the notebook prints), so look "
               "at "
               "the curve rather than trust one rule."),
    ChoiceExercise("The finder's curve is flat up to 1e-4, falls steeply between 1e-3 and 1e-2, bottoms out at 3e-2 "
                   "and "
                   "shoots up after 1e-1. Which rate is a good choice?",
                   ["3e-3", "3e-2", "3e-1", "1e-6"], answer="a", wrong_answers=["b", "c", "d"],
                   hints=["At the bottom of the curve the rate is already too high; on the flat part nothing happens."],
                   explanation=("The valley of the curve, where the loss still falls steeply, lies "
                                "between 1e-3 and 1e-2; 3e-3 is there, well below the minimum at "
                                "3e-2.")),
    ValueExercise("A finder run with `num_it=100` on a training loader of 40 batches: how many epochs does it start "
                  "(before any early stop)?", expected=3, wrong_answers=[2, 2.5, 100],
                  right_answers=[3.0],
                  hints=["How many passes over a 40-batch loader does it take to reach 100 batches?",
                         "A pass that is cut short still counts as one started epoch."],
                  solution="answer = 3   # 100 // 40 + 1",
                  explanation=("100 batches from a loader of 40 batches take 40 + 40 + 20: three "
                               "epochs are started, the last one left unfinished.")),
    Reflection("Why is early stopping a poor choice when training with the one-cycle policy?",
               "Early stopping keeps the weights of the epoch with the best validation score, but with one-cycle the "
               "middle epochs run at high learning rates and never had the chance to anneal: the best results come "
               "from the final low-rate phase. An early epoch is a half-finished model. Better: retrain from scratch "
               "with the number of epochs at which the validation score was best, so the schedule ends there."),
    ChoiceExercise("In Jupyter, how do you see the source code of a function such as "
                   "`helpers.learner.Learner.lr_find`?",
                   ["type `Learner.lr_find??` in a cell", "type `Learner.lr_find?` in a cell",
                    "call `print(Learner.lr_find)`"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["One question mark shows the signature and docstring; what might two show?"],
                   solution="`name??` shows the source; `name?` only the signature and docstring.",
                   explanation=("Two question marks after a name show its source code in Jupyter, "
                                "one shows its signature and docstring.")),
    Reflection("What does one-cycle training do to the learning rate and to the momentum, and why?",
               "The rate warms up from lr_max/div to lr_max over the first pct_start of training, then anneals along a "
               "cosine to nearly zero; momentum does the opposite, falling from 0.95 to 0.85 and back. Starting low "
               "avoids wrecking the freshly initialised (or pretrained) weights, the high middle explores and finds "
               "flatter regions that generalise better, and the long low end settles into a good minimum. Momentum is "
               "lowered while the rate is high so the two do not together push the steps too far."),
])

progress = track_set(globals())
