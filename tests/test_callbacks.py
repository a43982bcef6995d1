"""The Learner's events and callbacks, and any batch / any task: n_inp, hand-written optimisers, regression."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.callbacks import (
    EVENTS,
    Callback,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelTrainException,
    CancelValidException,
)
from helpers.learner import Learner
from helpers.metrics import mae, rmse


class Log(Callback):
    """Writes down every event, with whether the learner was training and which batch it was on."""

    def __init__(self):
        self.events = []

    def __getattr__(self, name):
        if name in EVENTS:
            return lambda: self.events.append((name, self.learn.training, self.learn.iter))
        raise AttributeError(name)

    def __dir__(self):
        return list(super().__dir__()) + list(EVENTS)


@pytest.fixture
def small_dls(toy_dls):
    """Call it for blobs with n_train/batch_size training and n_valid/batch_size validation batches."""
    return lambda n_train=4, n_valid=2, batch_size=2: toy_dls(n_train=n_train, n_valid=n_valid, batch_size=batch_size)


@pytest.fixture
def learner(small_dls, toy_model):
    """Call it for a quiet CPU Learner on the toy model, by default on two training and one validation batch."""

    def make(dls=None, **kwargs):
        kwargs.setdefault("quiet", True)
        return Learner(dls or small_dls(), toy_model(), device="cpu", **kwargs)

    return make


def names(log):
    return [event for event, _, _ in log.events]


BATCH_TRAIN = ["before_batch", "after_pred", "after_loss", "after_backward", "after_step", "after_batch"]
BATCH_VALID = ["before_batch", "after_pred", "after_loss", "after_batch"]


def test_events_fire_in_fastai_order(learner):
    log = Log()
    learner(cbs=[log]).fit(1)
    expected = (["before_fit", "before_epoch", "before_train"] + BATCH_TRAIN * 2 + ["after_train", "before_validate"]
                + BATCH_VALID + ["after_validate", "after_epoch", "after_fit"])
    assert names(log) == expected
    training = {event: flag for event, flag, _ in log.events if event in ("after_step", "after_train")}
    assert training == {"after_step": True, "after_train": True}
    assert [flag for event, flag, _ in log.events if event == "after_validate"] == [False]
    assert [i for event, _, i in log.events if event == "after_batch"] == [0, 1, 0]


def test_callbacks_run_by_order_and_see_the_learner(learner):
    seen = []

    class First(Callback):
        order = -5

        def before_fit(self):
            seen.append(("first", self.learn.n_epoch))

    class Second(Callback):
        order = 5

        def before_fit(self):
            seen.append(("second", self.learn.n_epoch))

    learn = learner(cbs=[Second(), First])  # a class is instantiated
    learn.fit(2)
    assert seen == [("first", 2), ("second", 2)]


@pytest.mark.parametrize("exc, raised_in, absent, present", [
    (CancelBatchException, "after_loss", {"after_backward", "after_step"}, {"after_batch", "before_validate"}),
    (CancelTrainException, "before_train", {"after_backward", "after_step"},
     {"after_train", "before_validate", "after_validate"}),
    (CancelValidException, "before_validate", set(), {"after_validate", "after_epoch"}),
    (CancelEpochException, "before_epoch", {"before_train", "before_validate"}, {"after_epoch", "after_fit"}),
    (CancelFitException, "before_fit", {"before_epoch"}, {"after_fit"}),
])
def test_each_cancel_exception_is_caught_where_fastai_catches_it(exc, raised_in, absent, present, learner):
    class Cancel(Callback):
        pass

    def raise_once(self):
        if self.learn.training or raised_in != "after_loss":
            raise exc

    setattr(Cancel, raised_in, raise_once)
    log = Log()
    learn = learner(cbs=[Cancel(), log])
    before = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1)  # no exception escapes
    seen = set(names(log))
    assert not (absent & seen), absent & seen
    assert present <= seen, present - seen
    assert names(log)[-1] == "after_fit"
    if exc is CancelBatchException:
        # every training batch stopped before its step: the weights never moved
        assert all(torch.equal(b, p) for b, p in zip(before, learn.model.parameters()))
        assert names(log).count("after_batch") == 3  # two training batches, one validation batch
    if exc is CancelValidException:
        assert BATCH_VALID[0] in seen and names(log).count("before_batch") == 2  # only the training batches


def test_cancel_fit_midway_ends_the_fit_and_keeps_what_was_recorded(learner, small_dls):
    class StopAfterThree(Callback):
        order = 60  # after the Recorder (50) has recorded the batch

        def after_batch(self):
            if self.learn.training and self.learn.train_iter == 2:
                raise CancelFitException

    learn = learner(dls=small_dls(n_train=8), cbs=[StopAfterThree()])
    learn.fit(3)
    assert len(learn.recorder.losses) == 3 and learn.recorder.values == []


def test_a_callback_that_changes_the_inputs_is_obeyed(learner):
    class ZeroInputs(Callback):
        def before_batch(self):
            self.learn.xb = tuple(torch.zeros_like(x) for x in self.learn.xb)

    class Spy(Callback):
        order = 10

        def after_pred(self):
            self.pred = self.learn.pred.detach().clone()

    learn, spy = learner(cbs=[ZeroInputs(), Spy()]), Spy()
    learn.add_cbs(spy)
    learn.validate()
    with torch.no_grad():
        learn.model.eval()
        expected = learn.model(torch.zeros(1, 10))
    torch.testing.assert_close(spy.pred, expected.expand_as(spy.pred))


def test_a_callback_that_changes_the_loss_is_obeyed(learner):
    class NoLoss(Callback):
        def after_loss(self):
            if self.learn.training:
                self.learn.loss = self.learn.loss * 0.0  # zero gradients: AdamW still decays the weights

    learn = learner(cbs=[NoLoss()], wd=0.0)
    before = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1, 1e-2)
    assert all(torch.equal(b, p) for b, p in zip(before, learn.model.parameters()))
    assert learn.recorder.losses == [0.0, 0.0], "the recorder saw the changed loss"


def test_fit_cbs_are_for_one_fit_and_add_remove_work(learner):
    log = Log()
    learn = learner()
    learn.fit(1, cbs=[log])
    n = len(log.events)
    assert n > 0 and log not in learn.cbs
    learn.fit(1)
    assert len(log.events) == n
    learn.add_cbs([log])
    learn.fit(1)
    assert len(log.events) == 2 * n
    learn.remove_cbs([log])
    learn.fit(1)
    assert len(log.events) == 2 * n


def test_a_misspelt_event_is_refused_when_added(learner):
    class Typo(Callback):
        def after_epcoh(self):
            pass

    with pytest.raises(ValueError, match="after_epcoh.*before_fit"):
        learner(cbs=[Typo()])


def test_after_fit_runs_even_when_the_fit_is_interrupted(learner):
    class Boom(Callback):
        def after_pred(self):
            raise KeyboardInterrupt

    log = Log()
    learn = learner(cbs=[Boom(), log])
    with pytest.raises(KeyboardInterrupt):
        learn.fit(1)
    assert names(log)[-1] == "after_fit" and "after_batch" not in names(log)
    assert not learn.fitting and not learn.training


def test_course_max_batches_caps_every_pass(monkeypatch, learner, toy_dls):
    monkeypatch.setenv("COURSE_MAX_BATCHES", "2")
    log = Log()
    learn = learner(dls=toy_dls(n_train=96, n_valid=48, batch_size=16), cbs=[log])
    learn.fit(2)
    assert names(log).count("after_step") == 4
    assert names(log).count("after_batch") == 2 * (2 + 2)
    assert len(learn.recorder.lrs) == 4
    preds, targets = learn.get_preds()  # asked for every item: not cut short
    assert len(preds) == len(targets) == 48
    monkeypatch.setenv("COURSE_MAX_BATCHES", "two")
    with pytest.raises(ValueError, match="COURSE_MAX_BATCHES"):
        learn.fit(1)


def test_course_max_batches_caps_the_epochs_and_keeps_the_whole_schedule(monkeypatch, learner, toy_dls):
    from helpers.short_run import SMOKE_MAX_EPOCHS

    monkeypatch.setenv("COURSE_MAX_BATCHES", "2")
    learn = learner(dls=toy_dls(n_train=96, n_valid=48, batch_size=16))
    learn.fit_one_cycle(12, 1e-2)
    assert len(learn.recorder.values) == SMOKE_MAX_EPOCHS  # not 12 epochs
    lrs = [group[-1] for group in learn.recorder.lrs]
    assert len(lrs) == SMOKE_MAX_EPOCHS * 2
    # The whole cycle in those 4 steps: from lr_max/25 up to lr_max, then down again.
    assert lrs[0] == pytest.approx(1e-2 / 25) and max(lrs) == pytest.approx(1e-2) and lrs[-1] < 1e-2 / 2
    learn.fit(5)
    assert len(learn.recorder.values) == SMOKE_MAX_EPOCHS
    monkeypatch.delenv("COURSE_MAX_BATCHES")
    learn.fit(3)
    assert len(learn.recorder.values) == 3  # without the setting, every epoch asked for


def test_course_max_batches_caps_the_finder_too(monkeypatch, learner, toy_dls):
    from helpers.short_run import SMOKE_FINDER_ITERS

    monkeypatch.setenv("COURSE_MAX_BATCHES", "1")
    learn = learner(dls=toy_dls(n_train=96, n_valid=48, batch_size=16))
    learn.lr_find(num_it=100, stop_div=False, show_plot=False)
    lrs = [group[-1] for group in learn.recorder.lrs]
    assert len(lrs) == SMOKE_FINDER_ITERS  # not 100 epochs of one batch each
    assert lrs[0] == pytest.approx(1e-7) and lrs[-1] >= 1  # still the whole range of rates, up to its last step


def test_pct_train_runs_from_zero_by_equal_steps(learner):
    seen = []

    class Position(Callback):
        def before_batch(self):
            if self.learn.training:
                seen.append(self.learn.pct_train)

    learner(cbs=[Position()]).fit(2)
    assert seen == [0.0, 0.25, 0.5, 0.75]


# --- any batch, any task ---------------------------------------------------------------------------

class TwoInputs(nn.Module):
    """Regression from two inputs (think categorical embeddings and continuous columns)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 1), nn.Linear(2, 1)

    def forward(self, x1, x2):
        return (self.a(x1) + self.b(x2)).squeeze(-1)


def regression_dls(n=256, batch_size=32):
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g)
    y = x1 @ torch.tensor([1.0, -2.0, 0.5]) + x2 @ torch.tensor([3.0, 1.0]) + 0.5
    ds = TensorDataset(x1, x2, y)
    train = DataLoader(ds, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    return SimpleNamespace(train=train, valid=DataLoader(ds, batch_size=batch_size))  # no vocab


def test_two_input_regression_trains_with_n_inp_2_and_mse():
    torch.manual_seed(0)
    learn = Learner(regression_dls(), TwoInputs(), loss_func=nn.MSELoss(), n_inp=2, metrics=[rmse, mae],
                    device="cpu", quiet=True)
    before = learn.validate()[0]
    learn.fit_one_cycle(8, 0.3)
    loss, rmse_value, mae_value = learn.validate()
    assert loss < before / 100 and rmse_value == pytest.approx(loss ** 0.5, rel=1e-4)
    preds, targets = learn.get_preds()
    assert preds.shape == targets.shape == (256,)
    torch.testing.assert_close(((preds - targets) ** 2).mean(), torch.tensor(loss), rtol=1e-5, atol=0)
    value, same, out = learn.predict((torch.ones(3), torch.ones(2)))
    with torch.no_grad():
        assert value == same == pytest.approx(learn.model(torch.ones(1, 3), torch.ones(1, 2)).item(), rel=1e-6)
    assert value == pytest.approx(1.0 - 2.0 + 0.5 + 3.0 + 1.0 + 0.5, abs=0.5)  # the true function there


class BasicOptim:
    """Chapter 4's optimiser: plain SGD written by hand."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def step(self):
        for p in self.params:
            if p.grad is not None:
                p.data -= p.grad.data * self.lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def mnist_loss(preds, targets):
    preds = preds.sigmoid().squeeze(-1)
    return torch.where(targets == 1, 1 - preds, preds).mean()


def batch_accuracy(preds, targets):
    return ((preds.squeeze(-1) > 0) == targets.bool()).float().mean()


def binary_dls():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 4, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:384], y[:384]), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    return SimpleNamespace(train=train, valid=DataLoader(TensorDataset(x[384:], y[384:]), batch_size=64))


def test_a_hand_written_sgd_trains_and_follows_the_schedule():
    torch.manual_seed(0)
    learn = Learner(binary_dls(), nn.Linear(4, 1), loss_func=mnist_loss, opt_func=BasicOptim,
                    metrics=[batch_accuracy], device="cpu", quiet=True)
    assert isinstance(learn.opt, BasicOptim) and len(learn.opt.params) == 2
    start = learn.validate()
    learn.fit(5, lr=1.0)
    loss, accuracy = learn.validate()
    assert loss < start[0] - 0.2 and accuracy > 0.9
    assert all(lrs == [1.0] for lrs in learn.recorder.lrs)
    learn.fit_one_cycle(1, 0.5)
    assert learn.recorder.lrs[0] == [pytest.approx(0.5 / 25)] and learn.opt.lr == learn.recorder.lrs[-1][0]


def test_get_preds_and_predict_use_the_activation_of_the_loss():
    torch.manual_seed(0)
    dls = binary_dls()
    model = nn.Sequential(nn.Linear(4, 1), nn.Flatten(0))
    learn = Learner(dls, model, loss_func=nn.BCEWithLogitsLoss(), device="cpu", quiet=True)
    dls.train.dataset.tensors = (dls.train.dataset.tensors[0], dls.train.dataset.tensors[1].float())
    dls.valid.dataset.tensors = (dls.valid.dataset.tensors[0], dls.valid.dataset.tensors[1].float())
    learn.fit(2, 0.1)
    probs, targets = learn.get_preds()
    x = dls.valid.dataset.tensors[0]
    learn.model.eval()
    with torch.no_grad():
        logits = learn.model(x)
    torch.testing.assert_close(probs, logits.sigmoid())
    raw, _ = learn.get_preds(act="identity")
    torch.testing.assert_close(raw, logits)
    label, index, prob = learn.predict(x[0])
    assert index == int(logits[0] > 0) and label is bool(index) and prob.item() == pytest.approx(probs[0].item())


def test_default_loss_is_not_shared_between_learners(learner):
    a, b = learner(), learner()
    assert isinstance(a.loss_func, nn.CrossEntropyLoss) and a.loss_func is not b.loss_func


def test_classification_without_a_vocab_predicts_indices(learner, small_dls):
    dls = small_dls()
    del dls.vocab
    learn = learner(dls=dls)
    label, index, probs = learn.predict(torch.zeros(10))
    assert label == index == int(probs.argmax()) and probs.sum().item() == pytest.approx(1.0)
