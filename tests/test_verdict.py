"""helpers.verdict: the three kinds of claim, flipped comparisons, smoke runs that do not check, several seeds."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers.profiles import MAX_BATCHES_ENV, PROFILE_ENV, get_profile
from helpers.verdict import Verdict, compare, compare_seeds, mean_and_spread, rate_noise


@pytest.fixture(autouse=True)
def trained_in_full(monkeypatch):
    """Every test starts where results are checked (the tiny profile, no cap); some then change that."""
    monkeypatch.delenv(MAX_BATCHES_ENV, raising=False)
    monkeypatch.setenv(PROFILE_ENV, "tiny")


TINY = get_profile("tiny")


# --- A beats B --------------------------------------------------------------------------------------------------------

def test_a_claim_that_a_beats_b_holds_and_says_by_what_margin_against_what_noise(capsys):
    v = compare({"pretrained": 0.122, "from scratch": 0.585}, noise=0.067, claim="beats", better="lower",
                metric="error rate", profile=TINY)
    assert capsys.readouterr().out.splitlines() == [
        "Claim: pretrained beats from scratch (error rate, lower is better).",
        "pretrained 0.122, from scratch 0.585: pretrained wins by 0.463, noise 0.067.",
        "The claim holds."]
    assert (v.winner, v.holds, v.checked) == ("pretrained", True, True)
    assert v.difference == pytest.approx(0.122 - 0.585)


def test_higher_is_better_turns_the_margin_round(capsys):
    v = compare({"simple_net": 0.995, "pixel similarity": 0.920}, noise=0.04, claim="beats", better="higher",
                metric="accuracy", profile=TINY)
    assert v.winner == "simple_net" and "simple_net wins by 0.075, noise 0.040" in capsys.readouterr().out
    with pytest.raises(AssertionError):
        compare({"simple_net": 0.995, "pixel similarity": 0.920}, noise=0.04, claim="beats", better="lower",
                profile=TINY)


def test_a_flipped_comparison_says_what_the_numbers_showed_and_what_to_change(capsys):
    with pytest.raises(AssertionError) as error:
        compare({"resnet18": 0.804, "resnet10": 0.711}, noise=0.068, claim="beats", better="lower",
                metric="error rate", profile=TINY)
    message = str(error.value)
    assert "claims resnet18 beats resnet10" in message and "the opposite: resnet10 wins by 0.093" in message
    assert "noise 0.068" in message and "Change the claim" in message and "prose" in message
    printed = capsys.readouterr().out  # the verdict is printed before the error, for the reader
    assert "resnet10 wins by 0.093, noise 0.068." in printed and "The claim does not hold." in printed


def test_a_win_within_the_noise_is_no_win():
    with pytest.raises(AssertionError, match=r"within the noise 0\.053: no winner.*claim='none'"):
        compare({"manual": 0.122, "fine_tune": 0.125}, noise=0.053, claim="beats", better="lower", profile=TINY)


# --- A and B agree within a tolerance
# ----------------------------------------------------------------------------------

def test_agreement_holds_when_the_whole_noise_band_lies_inside_the_tolerance(capsys):
    v = compare({"bf16": 0.010, "fp32": 0.012}, noise=0.02, claim="agree", tolerance=0.03, metric="error rate",
                profile=TINY)
    assert v.holds and capsys.readouterr().out.splitlines() == [
        "Claim: bf16 and fp32 agree within 0.030 (error rate).",
        "bf16 0.010, fp32 0.012: difference -0.002, noise 0.020: within the noise.",
        "The claim holds."]


def test_without_a_direction_the_verdict_says_only_whether_the_two_are_told_apart():
    v = compare({"a": 0.30, "b": 0.10}, noise=0.05, claim="none", profile=TINY)
    assert v.text.endswith("a 0.300, b 0.100: difference +0.200, noise 0.050: apart by more than the noise.")
    assert v.winner is None


def test_agreement_fails_on_a_difference_beyond_the_tolerance():
    with pytest.raises(AssertionError, match=r"agree within 0\.030, but they differ by 0\.050"):
        compare({"bf16": 0.06, "fp32": 0.01}, noise=0.01, claim="agree", tolerance=0.03, profile=TINY)


def test_agreement_fails_when_the_noise_is_wider_than_the_tolerance():
    # notebook 05's manual recipe against fine_tune: 3 points apart at most, on a noise of 5 points
    with pytest.raises(AssertionError, match=r"inside it, but the noise 0\.053.*at least 0\.056"):
        compare({"manual": 0.125, "fine_tune": 0.122}, noise=0.053, claim="agree", tolerance=0.03, profile=TINY)


# --- no claim
# ----------------------------------------------------------------------------------------------------------

def test_no_claim_prints_the_verdict_and_asserts_nothing(capsys):
    within = compare({"reflection": 0.2026, "border": 0.2347}, noise=0.0555, claim="none", better="lower",
                     metric="error rate", digits=4, profile=TINY)
    clear = compare({"zeros": 0.3987, "reflection": 0.2026}, noise=0.0555, claim="none", better="lower", profile=TINY)
    assert capsys.readouterr().out.splitlines() == [
        "No claim (exploratory): reflection against border (error rate, lower is better).",
        "reflection 0.2026, border 0.2347: difference -0.0321, noise 0.0555: within the noise, no winner.",
        "No claim (exploratory): zeros against reflection (lower is better).",
        "zeros 0.399, reflection 0.203: reflection wins by 0.196, noise 0.056."]
    assert (within.winner, within.holds, within.checked) == (None, None, False)
    assert clear.winner == "reflection"


# --- the profile: checked only where results are meant to be
# -----------------------------------------------------------

def test_a_capped_smoke_run_does_not_check_and_says_so_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv(MAX_BATCHES_ENV, "2")
    v = compare({"resnet18": 0.804, "resnet10": 0.711}, noise=0.068, claim="beats", better="lower", profile=TINY)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == ("Not checked in this run: COURSE_MAX_BATCHES cuts training short, so its numbers cannot test "
                         "the claim.")
    assert not any("holds" in line for line in lines)
    assert (v.holds, v.checked) == (False, False)


def test_the_full_profile_does_not_check(capsys):
    v = compare({"a": 0.3, "b": 0.1}, noise=0.01, claim="agree", tolerance=0.05, profile=get_profile("full"))
    assert capsys.readouterr().out.splitlines()[-1].startswith("Not checked in the full profile")
    assert not v.checked


def test_without_a_profile_it_reads_the_environment(monkeypatch):
    compare({"a": 0.3, "b": 0.1}, noise=0.01, claim="beats", better="higher")
    with pytest.raises(AssertionError):
        compare({"a": 0.1, "b": 0.3}, noise=0.01, claim="beats", better="higher")
    monkeypatch.setenv(PROFILE_ENV, "full")
    assert not compare({"a": 0.1, "b": 0.3}, noise=0.01, claim="beats", better="higher").checked


# --- several seeds
# -----------------------------------------------------------------------------------------------------

def test_several_seeds_give_mean_and_spread_per_arm_and_the_noise_from_the_seeds(capsys):
    a, b = [0.20, 0.22, 0.21, 0.23], [0.30, 0.27, 0.29, 0.28]
    v = compare_seeds({"embed_p=0": a, "embed_p=0.3": b}, claim="beats", better="lower", metric="RMSPE", profile=TINY)
    expected = 2 * math.sqrt(np.var(a, ddof=1) / 4 + np.var(b, ddof=1) / 4)
    assert v.noise == pytest.approx(expected) and v.values == pytest.approx((np.mean(a), np.mean(b)))
    assert capsys.readouterr().out.splitlines() == [
        "Claim: embed_p=0 beats embed_p=0.3 (RMSPE, lower is better).",
        "embed_p=0 0.215 ± 0.013, embed_p=0.3 0.285 ± 0.013 (mean ± spread over 4 seeds).",
        f"embed_p=0 wins by 0.070, noise {expected:.3f}.",
        "The claim holds."]


def test_paired_seeds_take_the_noise_from_the_per_seed_differences():
    # Seeds move both arms together: unpaired, the spread hides the win; paired, the differences show it.
    a, b = [0.10, 0.20, 0.30], [0.12, 0.225, 0.318]
    with pytest.raises(AssertionError, match="within the noise"):
        compare_seeds({"A": a, "B": b}, claim="beats", better="lower", profile=TINY)
    v = compare_seeds({"A": a, "B": b}, claim="beats", better="lower", paired=True, profile=TINY)
    diffs = np.subtract(a, b)
    assert v.noise == pytest.approx(2 * np.std(diffs, ddof=1) / math.sqrt(3)) and v.holds


def test_a_flip_over_seeds_fails():
    with pytest.raises(AssertionError, match="the opposite: B wins"):
        compare_seeds({"A": [0.30, 0.31, 0.32], "B": [0.20, 0.21, 0.19]}, claim="beats", better="lower", profile=TINY)


def test_seeds_need_two_runs_per_arm_and_pairs_need_equal_counts():
    with pytest.raises(ValueError, match="at least two seeds"):
        compare_seeds({"A": [0.3], "B": [0.2, 0.1]}, claim="none", better="lower", profile=TINY)
    with pytest.raises(ValueError, match="same number of seeds"):
        compare_seeds({"A": [0.3, 0.2], "B": [0.2, 0.1, 0.3]}, claim="none", paired=True, profile=TINY)


def test_mean_and_spread():
    assert mean_and_spread([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))


# --- printing that repeats, and the arguments a notebook passes
# --------------------------------------------------------

def test_the_printed_text_depends_only_on_the_digits_asked_for(capsys):
    first = compare({"a": 0.1234567, "b": 0.4567891}, noise=0.0312345, claim="none", better="lower", profile=TINY)
    second = compare({"a": 0.1234571, "b": 0.4567886}, noise=0.0312349, claim="none", better="lower", profile=TINY)
    assert first.text == second.text
    finer = compare({"a": 0.1234567, "b": 0.4567891}, noise=0.0312345, claim="none", better="lower", digits=5,
                    profile=TINY)
    assert "a 0.12346, b 0.45679: a wins by 0.33333, noise 0.03123." in finer.text
    zero = compare({"a": 0.10001, "b": 0.1}, noise=0.01, claim="none", better="lower", profile=TINY)
    assert "difference +0.000" in zero.text and "-0.000" not in zero.text


def test_numbers_may_be_tensors_or_numpy_scalars():
    v = compare({"a": torch.tensor(0.1), "b": np.float32(0.3)}, noise=torch.tensor(0.05), claim="beats",
                better="lower", profile=TINY)
    assert v.holds and isinstance(v.values[0], float)


def test_rate_noise_is_two_standard_errors_of_the_difference():
    assert rate_noise(0.122, 0.585, 311) == pytest.approx(2 * math.sqrt((0.122 * 0.878 + 0.585 * 0.415) / 311))
    guessing = 1 - 1 / 37  # a constant: only the model's rate is noisy
    assert rate_noise(0.158, guessing, 311, b_is_exact=True) == pytest.approx(2 * math.sqrt(0.158 * 0.842 / 311))
    with pytest.raises(ValueError, match="not percentages"):
        rate_noise(12.2, 58.5, 311)
    with pytest.raises(ValueError, match="number of items"):
        rate_noise(0.1, 0.2, 0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(claim="wins", better="lower"), "use 'beats'"),
    (dict(claim="beats"), "needs better="),
    (dict(claim="beats", better="smaller"), "better='lower'"),
    (dict(claim="agree"), "needs tolerance="),
    (dict(claim="agree", tolerance=-0.1), "needs tolerance="),
    (dict(claim="beats", better="lower", tolerance=0.03), "belongs to claim='agree'"),
    (dict(claim="none", digits=2.5), "digits="),
    (dict(claim="none", noise=-1.0), "noise="),
])
def test_a_wrong_argument_says_what_to_change(kwargs, message):
    kwargs = {"noise": 0.05, **kwargs}
    with pytest.raises(ValueError, match=message):
        compare({"a": 0.1, "b": 0.2}, profile=TINY, **kwargs)


def test_two_arms_exactly():
    with pytest.raises(ValueError, match="compare two arms"):
        compare({"a": 0.1, "b": 0.2, "c": 0.3}, noise=0.05, claim="none", profile=TINY)


def test_a_diverged_run_cannot_be_judged():
    with pytest.raises(AssertionError, match="not a number"):
        compare({"a": float("nan"), "b": 0.2}, noise=0.05, claim="beats", better="lower", profile=TINY)


def test_a_call_at_the_end_of_a_cell_prints_the_verdict_once():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    with capture_output() as captured:
        shell.run_cell("from helpers.verdict import compare\n"
                       "compare({'a': 0.1, 'b': 0.3}, noise=0.05, claim='none', better='lower')")
    assert captured.stdout.count("a wins by 0.200") == 1 and not captured.outputs
    assert isinstance(shell.user_ns["compare"]({"a": 0.1, "b": 0.3}, noise=0.05, claim="none"), Verdict)
