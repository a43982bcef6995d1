"""helpers.learner: the loop, its schedules, the optimiser, freezing, precision, interruption (notebooks 04-06)."""
from __future__ import annotations

import contextlib
import functools
import io
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.learner import Learner, error_rate
from helpers.optimiser import no_decay_params, norm_params
from helpers.schedule import combined_cos, even_mults


def test_optimiser_is_adamw_set_like_fastai(toy_learner):
    learn = toy_learner()
    assert isinstance(learn.opt, torch.optim.AdamW)
    no_decay = {id(p) for p in no_decay_params(learn.model)}
    # the two BatchNorms' weights and biases and the three Linear biases
    assert len(no_decay) == 4 + 3
    for group in learn.opt.param_groups:
        assert group["eps"] == 1e-5 and group["betas"][1] == 0.99
        decays = {id(p) not in no_decay for p in group["params"]}
        assert len(decays) == 1, "each optimiser group is all-decay or all-no-decay"
        assert group["weight_decay"] == (0.01 if decays.pop() else 0.0)
    assert sorted({g["splitter_group"] for g in learn.opt.param_groups}) == [0, 1, 2]


def test_fit_one_cycle_follows_the_formula_at_every_batch(toy_learner):
    learn = toy_learner()
    learn.fit_one_cycle(3, slice(1e-4, 1e-2), pct_start=0.3)
    n = 3 * len(learn.dls.train)
    lr_max = np.array(even_mults(1e-4, 1e-2, 3))
    lr_schedule = combined_cos(0.3, lr_max / 25, lr_max, lr_max / 1e5)
    mom_schedule = combined_cos(0.3, 0.95, 0.85, 0.95)
    assert len(learn.recorder.lrs) == len(learn.recorder.moms) == len(learn.recorder.losses) == n
    for k in range(n):
        np.testing.assert_allclose(learn.recorder.lrs[k], lr_schedule(k / n), rtol=1e-12)
        np.testing.assert_allclose(learn.recorder.moms[k], [mom_schedule(k / n)] * 3, rtol=1e-12)
    # what the optimiser actually used at the last batch
    for group in learn.opt.param_groups:
        assert group["lr"] == pytest.approx(learn.recorder.lrs[-1][group["splitter_group"]])
        assert group["betas"][0] == pytest.approx(learn.recorder.moms[-1][0])


def test_fit_learns_and_reports_each_epoch(toy_learner):
    learn = toy_learner()
    before = learn.validate()
    learn.fit(4, 1e-2)
    table = learn.recorder.values_df
    assert list(table.columns) == ["epoch", "train_loss", "valid_loss", "error_rate", "time", "batches"]
    assert len(table) == 4
    valid_loss, error = learn.validate()
    assert valid_loss < before[0] and error < 0.2
    assert table["valid_loss"].iloc[-1] == pytest.approx(valid_loss)
    assert np.all(np.array(learn.recorder.lrs) == 1e-2)
    assert learn.model.training, "fit puts the model back in the mode it found it in"


def test_smoothed_loss_is_the_debiased_ema_and_train_loss_its_epoch_end_value(toy_learner):
    learn = toy_learner()
    learn.fit(2, 1e-3)
    average, expected = 0.0, []
    for count, loss in enumerate(learn.recorder.losses, 1):
        average = 0.98 * average + 0.02 * loss
        expected.append(average / (1 - 0.98**count))
    np.testing.assert_allclose(learn.recorder.smooth_losses, expected, rtol=1e-12)
    ends = learn.recorder.values_df["batches"] - 1
    np.testing.assert_allclose(learn.recorder.values_df["train_loss"], np.array(expected)[ends], rtol=1e-12)


def test_validate_weights_every_item_equally(toy_learner, toy_dls):
    learn = toy_learner(dls=toy_dls(n_valid=40))  # batches of 16, 16 and 8
    loss, error = learn.validate()
    learn.model.eval()
    x, y = learn.dls.valid.dataset.tensors
    with torch.no_grad():
        preds = learn.model(x)
    assert loss == pytest.approx(nn.functional.cross_entropy(preds, y).item(), rel=1e-5)
    assert error == pytest.approx(error_rate(preds, y).item())


def test_get_preds_probabilities_and_per_item_losses(toy_learner):
    learn = toy_learner()
    probs, targs, losses = learn.get_preds(with_loss=True)
    assert probs.shape == (48, 3) and targs.shape == (48,) and losses.shape == (48,)
    torch.testing.assert_close(probs.sum(1), torch.ones(48))
    torch.testing.assert_close(losses, -probs[torch.arange(48), targs].log(), rtol=1e-4, atol=1e-5)
    assert losses.mean().item() == pytest.approx(learn.validate()[0], rel=1e-5)


class ModeSpy(nn.Module):
    """A batch transform that remembers the mode it ran in and adds a constant in train mode."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return x + 1.0 if self.training else x


def test_after_batch_runs_in_train_then_eval_mode(toy_learner, toy_dls):
    spy = ModeSpy()
    learn = toy_learner(dls=toy_dls(after_batch=spy))
    learn.fit(1, 1e-3)
    n_train, n_valid = len(learn.dls.train), len(learn.dls.valid)
    assert spy.modes == [True] * n_train + [False] * n_valid


def test_predict_goes_through_prepare_and_vocab(toy_learner, toy_dls):
    dls = toy_dls()
    dls.valid.dataset.prepare = lambda item: torch.as_tensor(item, dtype=torch.float32)
    learn = toy_learner(dls=dls)
    learn.fit(3, 1e-2)
    x, y = dls.valid.dataset.tensors
    label, index, probs = learn.predict(x[0].tolist())
    assert probs.shape == (3,) and probs.sum().item() == pytest.approx(1.0, rel=1e-5)
    assert index == int(probs.argmax()) and label == dls.vocab[index]
    learn.model.eval()  # a batch of one through BatchNorm only works in eval mode, which predict uses
    with torch.no_grad():
        torch.testing.assert_close(probs, learn.model(x[:1]).softmax(-1)[0])


def test_predict_without_prepare_says_what_to_do(toy_learner):
    learn = toy_learner()
    with pytest.raises(TypeError, match="prepare"):
        learn.predict([0.0] * 10)


def trainable(learn):
    return {id(p) for p in learn.model.parameters() if p.requires_grad}


def test_freeze_keeps_last_group_and_norm_layers_trainable(toy_learner):
    learn = toy_learner()
    learn.fit(1, 1e-3)
    assert len(learn.opt.state) > 0
    learn.freeze()
    expected = {id(p) for p in learn.splitter(learn.model)[-1]} | {id(p) for p in norm_params(learn.model)}
    assert trainable(learn) == expected
    assert len(learn.opt.state) == 0, "freezing resets Adam's state"
    frozen_weight = learn.model[0].weight.detach().clone()
    bn_weight = learn.model[1].weight.detach().clone()
    learn.fit(1, 1e-2)
    assert torch.equal(learn.model[0].weight, frozen_weight)
    assert not torch.equal(learn.model[1].weight, bn_weight), "BatchNorm in a frozen group still trains"
    learn.freeze_to(1)
    assert trainable(learn) == expected | {id(p) for p in learn.splitter(learn.model)[1]}
    learn.unfreeze()
    assert trainable(learn) == {id(p) for p in learn.model.parameters()}


def expected_fine_tune_lrs(n_batches):
    """The three groups' rates at each batch of fine_tune(2, base_lr=2e-3, freeze_epochs=1), as fastai sets them."""
    frozen_max = np.array([2e-4, 2e-4, 2e-3])
    frozen = combined_cos(0.99, frozen_max / 25, frozen_max, frozen_max / 1e5)
    unfrozen_max = np.array(even_mults(1e-3 / 100, 1e-3, 3))
    unfrozen = combined_cos(0.3, unfrozen_max / 5, unfrozen_max, unfrozen_max / 1e5)
    expected = [frozen(k / n_batches) for k in range(n_batches)]
    expected += [unfrozen(k / (2 * n_batches)) for k in range(2 * n_batches)]
    return np.array(expected)


def test_fine_tune_rates_follow_fastai_at_every_batch(toy_learner):
    learn = toy_learner()
    learn.fine_tune(2, base_lr=2e-3, freeze_epochs=1)
    expected = expected_fine_tune_lrs(len(learn.dls.train))
    np.testing.assert_allclose(np.array(learn.recorder.lrs), expected, rtol=1e-12)
    assert len(learn.recorder.values) == 3
    assert trainable(learn) == {id(p) for p in learn.model.parameters()}


def test_optimiser_uses_the_fine_tune_rates_at_every_step(toy_learner):
    # recorder.lrs holds what the schedule asked for; this checks what AdamW really stepped with.
    learn = toy_learner()
    used = []

    def record(opt, args, kwargs):
        per_group = {}
        for group in opt.param_groups:  # each splitter group is two optimiser groups (decay / no decay)
            per_group.setdefault(group["splitter_group"], set()).add(group["lr"])
        assert all(len(rates) == 1 for rates in per_group.values()), per_group
        used.append([per_group[index].pop() for index in range(3)])

    learn.opt.register_step_pre_hook(record)
    learn.fine_tune(2, base_lr=2e-3, freeze_epochs=1)
    expected = expected_fine_tune_lrs(len(learn.dls.train))
    assert len(used) == len(expected) == 3 * len(learn.dls.train)
    np.testing.assert_allclose(np.array(used), expected, rtol=1e-12)


def test_freezing_a_one_group_learner_says_to_pass_a_splitter(toy_dls, toy_model):
    learn = Learner(toy_dls(), toy_model(), device="cpu", quiet=True)
    before = [p.detach().clone() for p in learn.model.parameters()]
    for freeze in (learn.freeze, lambda: learn.freeze_to(1), lambda: learn.fine_tune(1)):
        with pytest.raises(ValueError, match="splitter=resnet_split"):
            freeze()
    assert all(torch.equal(b, p) for b, p in zip(before, learn.model.parameters())), "fine_tune trained anyway"
    learn.unfreeze()  # training everything needs no groups
    assert trainable(learn) == {id(p) for p in learn.model.parameters()}


def test_an_empty_training_loader_says_what_to_check(toy_learner, toy_dls):
    learn = toy_learner(dls=toy_dls(n_train=8))  # 8 items, batches of 16, drop_last: no batch at all
    assert len(learn.dls.train) == 0
    for run in (lambda: learn.fit(1), lambda: learn.fit_one_cycle(1), lambda: learn.fine_tune(1),
                lambda: learn.lr_find(show_plot=False)):
        with pytest.raises(ValueError, match="no batches.*drop_last"):
            run()


def test_metrics_without_a_name_still_get_a_column(toy_dls, toy_model):
    def top_k_error(preds, targs, k=1):
        return 1 - (preds.topk(k, dim=-1).indices == targs[:, None]).any(dim=-1).float().mean()

    class Accuracy:
        def __call__(self, preds, targs):
            return (preds.argmax(dim=-1) == targs).float().mean()

    learn = Learner(toy_dls(), toy_model(), device="cpu", quiet=True,
                    metrics=[functools.partial(top_k_error, k=2), Accuracy()])
    learn.fit(1, 1e-3)
    assert list(learn.recorder.values_df.columns) == ["epoch", "train_loss", "valid_loss", "top_k_error", "Accuracy",
                                                      "time", "batches"]


def test_progress_falls_back_to_plain_lines_outside_a_terminal(capsys, toy_learner):
    learn = toy_learner(quiet=False)
    learn.fit(2, 1e-3)
    out, err = capsys.readouterr()  # pytest's capture is no TTY, like a CI log, and no notebook kernel
    assert "\r" not in err and "it/s" not in err, "a progress bar was drawn into a non-terminal"
    lines = out.splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "error_rate", "time"] and len(lines) == 3


def test_progress_bar_still_draws_in_a_terminal(monkeypatch, toy_learner):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    toy_learner(quiet=False).fit(1, 1e-3)
    assert "\r" in terminal.getvalue() and "epoch 1/1" in terminal.getvalue()


def test_keyboard_interrupt_leaves_the_learner_usable(toy_learner, raise_on_call):
    learn = toy_learner(loss_func=raise_on_call(3))
    learn.model.eval()
    with pytest.raises(KeyboardInterrupt):
        learn.fit_one_cycle(2, 1e-2)
    rec = learn.recorder
    assert len(rec.losses) == len(rec.smooth_losses) == len(rec.lrs) == len(rec.moms) == 2
    assert not learn.model.training, "the model's mode is restored"
    assert all(p.grad is None for p in learn.model.parameters())
    assert all(p.device.type == "cpu" for p in learn.model.parameters())
    learn.fit_one_cycle(2, 1e-2)  # and it trains again
    assert len(rec.values) == 2 and math.isfinite(rec.values[-1]["valid_loss"])


# This machine may lack native bf16: the Learner then warns that bf16 is slow, which these tests do not measure.
@pytest.mark.filterwarnings("ignore:precision='bf16' on the CPU")
def test_bf16_step_on_cpu_keeps_float32_master_weights(toy_learner):
    learn = toy_learner(precision="bf16")
    before = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1, 1e-3)
    assert all(math.isfinite(v) for v in learn.recorder.losses)
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())
    assert any(not torch.equal(b, p) for b, p in zip(before, learn.model.parameters()))
    with learn.precision.autocast():
        assert learn.model(torch.randn(4, 10)).dtype == torch.bfloat16
    assert learn.recorder.skipped_steps == 0
    assert "skipped" not in learn.recorder.values[0], "only fp16 tables have a skipped column"


class InfOnCall:
    """A loss that is infinite on its n-th call: the scaler must skip exactly that step."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, preds, targs):
        self.calls += 1
        loss = nn.functional.cross_entropy(preds, targs)
        return loss * math.inf if self.calls == self.n else loss


def check_fp16_scaler(device, toy_dls, toy_model):
    learn = Learner(toy_dls(), toy_model(), loss_func=InfOnCall(2), device=device, quiet=True)
    with pytest.warns(UserWarning, match="slower than fp32") if device == "cpu" else contextlib.nullcontext():
        learn.to_fp16()
    learn.fit(1, 1e-3)
    assert learn.precision.scaler.is_enabled()
    assert learn.recorder.skipped_steps == 1 == learn.precision.skipped_steps
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())


def test_fp16_loss_scaling_skips_overflowing_steps_on_cpu(toy_dls, toy_model):
    check_fp16_scaler("cpu", toy_dls, toy_model)


class OverflowFirst:
    """A loss whose gradients overflow on the first batch only; it keeps the weights each call sees."""

    def __init__(self):
        self.model, self.weights_seen = None, []

    def __call__(self, preds, targs):
        # Called after the forward and before that batch's step: these are the weights after the previous step.
        self.weights_seen.append([p.detach().clone() for p in self.model.parameters()])
        loss = nn.functional.cross_entropy(preds, targs)
        # Finite in float32, but times the scaler's 2**16 it overflows: inf gradients, as in real fp16 trouble.
        return loss * 1e38 if len(self.weights_seen) == 1 else loss


def test_fp16_skipped_step_leaves_the_weights_and_later_steps_run_on_cpu(toy_learner):
    loss = OverflowFirst()
    with pytest.warns(UserWarning, match="slower than fp32"):
        learn = toy_learner(precision="fp16", loss_func=loss)
    loss.model = learn.model
    learn.fit(1, 1e-3)
    n_batches = len(learn.dls.train)
    assert learn.recorder.skipped_steps == 1 == learn.precision.skipped_steps
    assert learn.precision.scaler.get_scale() == 2.0**15, "the overflow halved the scale once"
    first, second = loss.weights_seen[0], loss.weights_seen[1]
    assert all(torch.equal(a, b) for a, b in zip(first, second)), "the skipped step changed a weight"
    assert any(not torch.equal(a, p) for a, p in zip(second, learn.model.parameters())), "no later step ran"
    assert all(state["step"].item() == n_batches - 1 for state in learn.opt.state.values())
    row = learn.recorder.values[0]
    assert row["skipped"] == 1 and list(row)[-3:] == ["skipped", "time", "batches"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_loss_scaling_on_cuda(toy_dls, toy_model):
    check_fp16_scaler("cuda", toy_dls, toy_model)


def test_unknown_precision_says_which_exist(toy_learner):
    with pytest.raises(ValueError, match="bf16"):
        toy_learner(precision="half")


def test_channels_last_trains():
    dls = SimpleNamespace(
        train=DataLoader(TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(0, 2, (32,))), batch_size=8),
        valid=DataLoader(TensorDataset(torch.randn(16, 3, 8, 8), torch.randint(0, 2, (16,))), batch_size=8))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    learn = Learner(dls, model, channels_last=True, device="cpu", quiet=True)
    learn.fit(1)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert math.isfinite(learn.recorder.values[-1]["valid_loss"])


@pytest.mark.slow  # starts a Python process that imports torch, and trains
def test_bench_quick_measures_both_sides_of_each_ratio_on_the_same_steps(tmp_path, child_env):
    import json
    import statistics
    import subprocess
    import sys
    from pathlib import Path

    script, out = Path(__file__).resolve().parent.parent / "bench" / "learner.py", tmp_path / "learner.json"
    # A smoke run's COURSE_MAX_BATCHES would cap the Learner's side only; the bench must ignore it.
    result = subprocess.run([sys.executable, str(script), "--quick", "--rounds", "2", "--json", str(out)],
                            env=child_env(COURSE_MAX_BATCHES="1"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    rows = {row["measurement"]: row for row in report["rows"]}
    assert list(rows) == ["hand loop, 1 epoch", "Learner.fit, 1 epoch", "Learner.fit + EveryEvent",
                          "hand loop, 12 steps", "lr_find(num_it=12)"]
    epoch = report["batches_per_epoch"]
    assert epoch == 128 // 32 and report["rounds"] == 2
    for name, row in rows.items():
        assert len(row["seconds"]) == len(row["steps"]) == 2
        assert all(math.isfinite(s) and s > 0 for s in row["seconds"]), (name, row["seconds"])
        assert row["median"] == pytest.approx(statistics.median(row["seconds"]), rel=1e-12)
        assert row["min"] == min(row["seconds"]) and row["max"] == max(row["seconds"])
        assert row["steps"] == [12 if "12" in name else epoch] * 2, (name, row["steps"])
    assert [(r["numerator"], r["denominator"]) for r in report["ratios"]] == [
        ("Learner.fit, 1 epoch", "hand loop, 1 epoch"), ("Learner.fit + EveryEvent", "hand loop, 1 epoch"),
        ("lr_find(num_it=12)", "hand loop, 12 steps")]
    for ratio in report["ratios"]:
        top, bottom = rows[ratio["numerator"]], rows[ratio["denominator"]]
        assert top["steps"] == bottom["steps"], "the two sides of a ratio did different amounts of work"
        per_round = [a / b for a, b in zip(top["seconds"], bottom["seconds"])]
        assert ratio["median_of_rounds"] == pytest.approx(statistics.median(per_round), rel=1e-12)
        assert f"{ratio['median_of_rounds']:.3f}x" in result.stdout, "the printed ratio is not the measured one"


@pytest.mark.slow
def test_learns_tiny_pets_well_under_chance():
    # The whole chain (tiny pets, presizing, augmentation, the offline backbone, freezing, one-cycle) learns.
    # One epoch of the head on the frozen body is enough to show it; notebooks 01 and 05 assert the rest.
    import helpers
    from helpers.data import pets_dataloaders, pets_tiny
    from helpers.models import create_cnn, resnet_split

    P = helpers.get_profile("tiny")
    helpers.set_seed(42)
    dls = pets_dataloaders(pets_tiny(), presize=P.presize, size=P.size, batch_size=P.batch_size, num_workers=0)
    torch.manual_seed(0)
    learn = Learner(dls, create_cnn(P.arch, n_out=len(dls.vocab), weights=P.weights), splitter=resnet_split,
                    metrics=[error_rate], device="cpu", quiet=True)
    learn.freeze()
    learn.fit_one_cycle(1, 1e-2)
    chance = 1 - 1 / len(dls.vocab)
    error = learn.recorder.values[-1]["error_rate"]
    assert error < 0.5, f"error rate {error:.3f} after one frozen epoch; guessing gives {chance:.3f}"
