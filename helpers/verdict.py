"""Verdicts printed by code: who wins a comparison, by what margin, against what noise (notebook 00 onwards).

A notebook that compares two things (two models, two learning rates, fp32 and bf16) makes one of three kinds of
claim, and says which:

* ``claim="beats"``: the first arm beats the second, by a margin larger than the noise;
* ``claim="agree"``: the two agree within a stated ``tolerance``, noise included (the whole band of the difference
  plus or minus the noise lies inside the tolerance);
* ``claim="none"``: no claim, an exploration; the verdict is printed ("within the noise, no winner", or who is
  ahead) and nothing is asserted.

``compare`` takes one number per arm and the noise of their difference (``rate_noise`` gives it for two rates on
the same items); ``compare_seeds`` takes one number per seed and arm and measures the noise from the seeds. Both
print the verdict and assert the claim, but only where results are meant to be checked
(``Profile.checks_results``: the tiny profile, trained in full); elsewhere they say in one line that they did not
check. Numbers are printed to ``digits`` decimals: choose as many as repeat from run to run (nbval compares them).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from helpers.profiles import MAX_BATCHES_ENV, Profile, get_profile, max_batches

__all__ = ["Verdict", "compare", "compare_seeds", "mean_and_spread", "rate_noise"]

CLAIMS = ("beats", "agree", "none")
DIRECTIONS = ("lower", "higher")


@dataclass(frozen=True)
class Verdict:
    """What ``compare`` measured and concluded; printed by it, returned for code that reads it (notebook 00)."""

    claim: str               # "beats", "agree" or "none"
    names: tuple[str, str]
    values: tuple[float, float]
    difference: float        # first minus second, in the metric's units
    noise: float             # two standard errors of the difference
    winner: str | None       # the arm ahead by more than the noise, or None (within the noise, or no direction)
    holds: bool | None       # whether the claim holds; None for claim="none"
    checked: bool            # whether the claim was asserted in this run
    text: str                # what was printed

    def _ipython_display_(self) -> None:
        # compare() has printed the verdict already; a call at the end of a cell should not show it twice.
        return None


def rate_noise(rate_a: float, rate_b: float, n: int, b_is_exact: bool = False) -> float:
    """Two standard errors of the difference of two rates measured on n items each (notebook 00).

    Rates such as error rates and accuracies.

    ``b_is_exact=True`` when the second is no measurement but a known constant (guessing's ``1 - 1/classes``): then
    only the first rate's own noise counts.
    """
    if n < 1:
        raise ValueError(f"n is the number of items each rate was measured on, at least 1; got {n}.")
    for rate in (rate_a, rate_b):
        if not 0 <= float(rate) <= 1:
            raise ValueError(f"a rate lies between 0 and 1, got {rate}: pass error rates or accuracies, not "
                             "percentages.")
    a, b = float(rate_a), float(rate_b)
    return 2 * math.sqrt((a * (1 - a) + (0.0 if b_is_exact else b * (1 - b))) / n)


def _number(x: float, digits: int, sign: bool = False) -> str:
    """``x`` to ``digits`` decimals, with its sign if asked; a value that rounds to zero prints without a minus."""
    if not math.isfinite(x):
        return str(x)
    x = 0.0 if float(f"{x:.{digits}f}") == 0 else x
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _why_not_checked(profile: Profile) -> str:
    """The one line said instead of an assertion, in a run whose results are not meant to be checked."""
    if max_batches() is not None:
        return (f"Not checked in this run: {MAX_BATCHES_ENV} cuts training short, so its numbers cannot test the "
                "claim.")
    return f"Not checked in the {profile.name} profile: the claim is checked in the tiny profile, trained in full."


def _validate(arms: Mapping, claim: str, better: str | None, tolerance: float | None, digits: int) -> tuple[str, str]:
    """The two arms' names, after checking the arguments a notebook passes; errors say what to change."""
    if claim not in CLAIMS:
        raise ValueError(f"claim={claim!r}: use 'beats' (the first arm beats the second), 'agree' (within a "
                         "tolerance=) or 'none' (exploratory, nothing asserted).")
    if len(arms) != 2:
        raise ValueError(f"compare two arms, as {{'name A': value_a, 'name B': value_b}}; got {len(arms)}: "
                         f"{list(arms)}.")
    if better is not None and better not in DIRECTIONS:
        raise ValueError(f"better={better!r}: say which values are better, better='lower' (an error, a loss) or "
                         "better='higher' (an accuracy).")
    if claim == "beats" and better is None:
        raise ValueError("claim='beats' needs better='lower' or better='higher', to know who wins.")
    if claim == "agree" and (tolerance is None or not tolerance >= 0):
        raise ValueError(f"claim='agree' needs tolerance=, the largest difference that still counts as agreement "
                         f"(at least 0), in the metric's units; got {tolerance!r}.")
    if claim != "agree" and tolerance is not None:
        raise ValueError(f"tolerance= belongs to claim='agree'; with claim={claim!r}, leave it out.")
    if not (isinstance(digits, int) and 0 <= digits <= 12):
        raise ValueError(f"digits={digits!r}: the number of decimals to print, a whole number from 0 to 12.")
    first, second = (str(name) for name in arms)
    return first, second


def _judge(names: tuple[str, str], values: tuple[float, float], noise: float, claim: str, better: str | None,
           tolerance: float | None, digits: int, metric: str, profile: Profile | None, detail: str = "") -> Verdict:
    """Work out, print and (where results are checked) assert a verdict; shared by compare and compare_seeds."""
    profile = profile if profile is not None else get_profile()
    checks = profile.checks_results
    (a, b), (va, vb) = names, values
    difference = va - vb
    # lead: how far the first arm is ahead (negative: behind); None without a direction to say who is ahead
    lead = (None if better is None or not math.isfinite(difference)
            else difference if better == "higher" else -difference)
    winner = None if lead is None or not abs(lead) > noise else (a if lead > 0 else b)
    about = ", ".join(part for part in (metric, f"{better} is better" if better else "") if part)
    about = f" ({about})" if about else ""
    if claim == "beats":
        title = f"Claim: {a} beats {b}{about}."
    elif claim == "agree":
        title = f"Claim: {a} and {b} agree within {_number(tolerance, digits)}{about}."
    else:
        title = f"No claim (exploratory): {a} against {b}{about}."
    if winner is not None:
        measured = f"{winner} wins by {_number(abs(lead), digits)}, noise {_number(noise, digits)}"
    else:
        measured = f"difference {_number(difference, digits, sign=True)}, noise {_number(noise, digits)}"
        if lead is not None or not math.isfinite(difference):
            measured += ": within the noise, no winner" if lead is not None else ""
        else:  # no direction given (an agreement): say only whether the two are told apart
            measured += ": within the noise" if abs(difference) <= noise else ": apart by more than the noise"
    values_line = f"{a} {_number(va, digits)}, {b} {_number(vb, digits)}"
    holds: bool | None = None
    if claim == "beats":
        holds = winner == a
    elif claim == "agree":
        holds = math.isfinite(difference) and abs(difference) + noise <= tolerance * (1 + 1e-12)
    lines = [title, f"{detail}.", f"{measured}."] if detail else [title, f"{values_line}: {measured}."]
    if holds is not None:
        outcome = "The claim holds." if holds else "The claim does not hold."
        lines.append(outcome if checks else _why_not_checked(profile))
    text = "\n".join(lines)
    print(text)
    verdict = Verdict(claim, names, values, difference, noise, winner, holds, checks and holds is not None, text)
    if checks and holds is False:
        raise AssertionError(_failure(verdict, tolerance, digits))
    return verdict


def _failure(v: Verdict, tolerance: float | None, digits: int) -> str:
    """What the numbers showed against the claim, and what to change: the message of a failed claim."""
    (a, b), noise = v.names, _number(v.noise, digits)
    if not all(math.isfinite(x) for x in (*v.values, v.noise)):
        return (f"The claim about {a} and {b} cannot be tested: a value or the noise is not a number "
                f"({v.values}, noise {v.noise}). Find out why training diverged before comparing.")
    if v.claim == "beats":
        if v.winner == b:
            return (f"The notebook claims {a} beats {b}, but the numbers show the opposite: {b} wins by "
                    f"{_number(abs(v.difference), digits)}, more than the noise {noise}. Change the claim (swap the "
                    "arms, "
                    "or claim='none') and the prose around it to say what the numbers show, or find out what changed.")
        return (f"The notebook claims {a} beats {b}, but the difference {_number(v.difference, digits, sign=True)} is "
                f"within the noise {noise}: no winner. Say that the notebook cannot tell (claim='none') and change the "
                "prose to match, or measure with more items or more seeds (compare_seeds).")
    needed = _number(abs(v.difference) + v.noise, digits)
    if abs(v.difference) > tolerance:
        return (f"The notebook claims {a} and {b} agree within {_number(tolerance, digits)}, but they differ by "
                f"{_number(abs(v.difference), digits)} (noise {noise}). Change the claim and the prose to say what the "
                "numbers show (claim='beats' if the margin beats the noise, else claim='none').")
    return (f"The notebook claims {a} and {b} agree within {_number(tolerance, digits)}; their difference "
            f"{_number(v.difference, digits, sign=True)} is inside it, but the noise {noise} makes the band of the "
            f"difference reach {needed}. Claim agreement within at least {needed}, or claim='none' (within the "
            "noise, no winner), or measure on more items or seeds to narrow the noise.")


def compare(arms: Mapping[str, float], *, noise: float, claim: str, better: str | None = None,
            tolerance: float | None = None, metric: str = "", digits: int = 3,
            profile: Profile | None = None) -> Verdict:
    """Print who wins two measured numbers against the noise, and assert the notebook's claim (notebook 00)."""
    first, second = _validate(arms, claim, better, tolerance, digits)
    noise = float(noise)
    if not noise >= 0:
        raise ValueError(f"noise={noise!r}: two standard errors of the difference, at least 0 (rate_noise gives it "
                         "for two rates on the same items).")
    values = (float(arms[first]), float(arms[second]))
    return _judge((first, second), values, noise, claim, better, tolerance, digits, metric, profile)


def mean_and_spread(values: Sequence[float]) -> tuple[float, float]:
    """The mean of some runs and their spread (sample standard deviation) (notebook 00)."""
    xs = [float(x) for x in values]
    mean = sum(xs) / len(xs)
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def compare_seeds(arms: Mapping[str, Sequence[float]], *, claim: str, better: str | None = None,
                  tolerance: float | None = None, metric: str = "", digits: int = 3, paired: bool = False,
                  profile: Profile | None = None) -> Verdict:
    """Compare two arms over several seeds: mean and spread per arm, noise from the seeds (notebooks 02, 06, 07, 09)."""
    first, second = _validate(arms, claim, better, tolerance, digits)
    runs = [[float(x) for x in arms[first]], [float(x) for x in arms[second]]]
    if min(len(r) for r in runs) < 2:
        raise ValueError(f"compare_seeds needs at least two seeds per arm to measure their spread; got "
                         f"{len(runs[0])} for {first!r} and {len(runs[1])} for {second!r}. Run more seeds, or use "
                         "compare() with the noise of a single run.")
    if paired and len(runs[0]) != len(runs[1]):
        raise ValueError(f"paired=True pairs the arms seed by seed, so both need the same number of seeds; got "
                         f"{len(runs[0])} and {len(runs[1])}.")
    (mean_a, spread_a), (mean_b, spread_b) = mean_and_spread(runs[0]), mean_and_spread(runs[1])
    if paired:  # the same seeds for both arms: what varies between seeds cancels in the per-seed differences
        noise = 2 * mean_and_spread([x - y for x, y in zip(*runs)])[1] / math.sqrt(len(runs[0]))
    else:
        noise = 2 * math.sqrt(spread_a ** 2 / len(runs[0]) + spread_b ** 2 / len(runs[1]))
    seeds = f"{len(runs[0])} seeds" if len(runs[0]) == len(runs[1]) else f"{len(runs[0])} and {len(runs[1])} seeds"
    detail = (f"{first} {_number(mean_a, digits)} ± {_number(spread_a, digits)}, {second} {_number(mean_b, digits)} ± "
              f"{_number(spread_b, digits)} (mean ± spread over {seeds}{', paired' if paired else ''})")
    return _judge((first, second), (mean_a, mean_b), noise, claim, better, tolerance, digits, metric, profile, detail)
