"""Exercises and questionnaire of notebook 05, transfer learning: ``from helpers.exercise_sets import nb05 as ex``."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from helpers.exercises import (
    ChoiceExercise,
    CodeExercise,
    FunctionExercise,
    Questionnaire,
    Reflection,
    ValueExercise,
    track_set,
)

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _freeze_body_reference(model: nn.Sequential) -> None:
    body_norm = {id(p) for m in model[0].modules() if isinstance(m, _BATCHNORMS) for p in m.parameters()}
    for p in model[0].parameters():
        p.requires_grad_(id(p) in body_norm)
    for p in model[1].parameters():
        p.requires_grad_(True)


def _freeze_everything_in_body(model: nn.Sequential) -> None:
    for p in model[0].parameters():
        p.requires_grad_(False)


def _freeze_the_head(model: nn.Sequential) -> None:
    for p in model[1].parameters():
        p.requires_grad_(False)


def _freeze_then_thaw_norms(model: nn.Sequential) -> None:
    """Another correct way: freeze the whole body, then unfreeze its BatchNorm layers."""
    model[0].requires_grad_(False)
    for module in model[0].modules():
        if isinstance(module, nn.BatchNorm2d):
            module.requires_grad_(True)
    model[1].requires_grad_(True)


def _freeze_by_name(model: nn.Sequential) -> None:
    """Another correct way, for a torchvision ResNet body: its BatchNorm layers are the ones named bn*/downsample.1."""
    norms = {name for name, m in model[0].named_modules() if isinstance(m, nn.BatchNorm2d)}
    for name, p in model[0].named_parameters():
        p.requires_grad = name.rpartition(".")[0] in norms
    for p in model[1].parameters():
        p.requires_grad = True


def _check_freeze_body(freeze_body) -> None:
    from helpers.models import create_cnn

    assert callable(freeze_body), "answer should be a function: def freeze_body(model): ..."
    model = create_cnn("resnet10", n_out=3)
    for p in model[1].parameters():  # start from a half-frozen head so "do nothing to the head" is caught
        p.requires_grad_(False)
    freeze_body(model)
    body, head = model
    for name, module in body.named_modules():
        for p in module.parameters(recurse=False):
            if isinstance(module, _BATCHNORMS):
                assert p.requires_grad, (f"the body's BatchNorm layer `{name}` is frozen: BatchNorm parameters "
                                         "stay trainable, so they can adapt to the new data's statistics.")
            else:
                assert not p.requires_grad, (f"`{name}` in the body is still trainable: every non-BatchNorm "
                                             "parameter of the body should have requires_grad False.")
    assert all(p.requires_grad for p in head.parameters()), "some head parameters are frozen: the head must train."


# ---- In the lesson, each before the notebook's own version -------------------------------------------------------

def _concat_pool(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([F.adaptive_max_pool2d(x, 1), F.adaptive_avg_pool2d(x, 1)], dim=1)


_gen = torch.Generator().manual_seed(5)
_POOL_CASES = (torch.randn(2, 3, 4, 4, generator=_gen), torch.randn(1, 5, 2, 3, generator=_gen) - 2,
               torch.rand(3, 2, 1, 1, generator=_gen))

pool = FunctionExercise(
    """Write `concat_pool(x)`: for feature maps `x` of shape (n, c, h, w) it returns the maximum of each map, then
    its average, side by side along the channels, as a tensor of shape (n, 2c, 1, 1) (maximum first, as fastai).""",
    reference=_concat_pool,
    test_cases=_POOL_CASES,
    shape_matters=True,
    hints=["`F.adaptive_max_pool2d(x, 1)` and `F.adaptive_avg_pool2d(x, 1)` each give (n, c, 1, 1).",
           "`torch.cat([...], dim=1)` joins them along the channels."],
    solution="def concat_pool(x):\n    return torch.cat([F.adaptive_max_pool2d(x, 1), F.adaptive_avg_pool2d(x, 1)], "
             "dim=1)",
    wrong_answers=[lambda x: torch.cat([F.adaptive_avg_pool2d(x, 1), F.adaptive_max_pool2d(x, 1)], dim=1),
                   lambda x: torch.cat([F.adaptive_max_pool2d(x, 1), F.adaptive_avg_pool2d(x, 1)], dim=1).flatten(1),
                   lambda x: torch.cat([F.adaptive_max_pool2d(x, 1), F.adaptive_max_pool2d(x, 1)], dim=1)],
    right_answers=[lambda x: torch.cat([x.amax(dim=(2, 3), keepdim=True), x.mean(dim=(2, 3), keepdim=True)], dim=1),
                   lambda x: torch.cat([x.flatten(2).max(-1).values, x.flatten(2).mean(-1)], 1)[..., None, None]],
    explanation=("The maximum says whether a feature occurs anywhere in the picture, the average how much of it "
                 "there is; the head gets both, twice the body's channels."),
)


def _group_rates(lr, n_groups: int) -> list[float]:
    from helpers.schedule import lr_for_groups
    return list(lr_for_groups(lr, n_groups))


def _linear_spread(lr, n_groups):
    if isinstance(lr, slice) and lr.start is not None:
        step = (lr.stop - lr.start) / (n_groups - 1)
        return [lr.start + i * step for i in range(n_groups)]
    return _group_rates(lr, n_groups)


def _tenth_for_all(lr, n_groups):
    if isinstance(lr, slice) and lr.start is None:
        return [lr.stop / 10] * n_groups
    return _group_rates(lr, n_groups)


def _geometric(lr, n_groups):
    if isinstance(lr, slice) and lr.start is not None:
        return [lr.start * (lr.stop / lr.start) ** (i / (n_groups - 1)) for i in range(n_groups)]
    if isinstance(lr, slice):
        return [lr.stop / 10] * (n_groups - 1) + [lr.stop]
    return [lr] * n_groups


rates = FunctionExercise(
    """Write `group_rates(lr, n_groups)`: the peak rate of each parameter group, first to last, as a list. `lr` is a
    float (every group gets it), `slice(a, b)` (from `a` to `b` in equal multiplicative steps) or `slice(b)` (the
    last group `b`, every other group `b / 10`).""",
    reference=_group_rates,
    test_cases=((slice(1e-6, 1e-4), 3), (slice(1e-5, 1e-3), 3), (slice(2e-3), 3), (3e-3, 3), (slice(1e-6, 1e-3), 4),
                (slice(4e-3), 2)),
    hints=["Equal multiplicative steps: each group's rate is the previous one times (b / a) ** (1 / (n_groups - 1)).",
           "Check `lr.start is None` to tell `slice(b)` from `slice(a, b)`; a float is not a slice at all."],
    solution="""
    def group_rates(lr, n_groups):
        if not isinstance(lr, slice):
            return [lr] * n_groups
        if lr.start is None:
            return [lr.stop / 10] * (n_groups - 1) + [lr.stop]
        return [lr.start * (lr.stop / lr.start) ** (i / (n_groups - 1)) for i in range(n_groups)]
    """,
    wrong_answers=[_linear_spread, _tenth_for_all, lambda lr, n: [getattr(lr, "stop", lr)] * n],
    right_answers=[_geometric],
    explanation=("A slice with both ends spreads the rates evenly on a log scale, so each group moves a fixed "
                 "factor faster than the one before; a slice with one end gives the head its rate and the body a "
                 "tenth."),
)


# ---- Closing exercises -------------------------------------------------------------------------------------

q1 = ValueExercise(
    """`learn.fine_tune(3)` with the default `base_lr=2e-3` first trains the head with the body frozen, using
    `slice(base_lr)` across our three parameter groups. What are the three peak learning rates of that phase?
    `answer = [group0, group1, group2]`.""",
    expected=[2e-4, 2e-4, 2e-3],
    hints=["A slice with only an end value gives the last group that value...",
           "...and every other group a tenth of it."],
    solution="answer = [2e-4, 2e-4, 2e-3]   # helpers.schedule.lr_for_groups(slice(2e-3), 3)",
    wrong_answers=[[2e-3, 2e-3, 2e-3], [2e-5, 2e-4, 2e-3], [1e-4, 1e-4, 1e-3]],
    right_answers=[(2e-4, 2e-4, 2e-3), [0.0002, 0.0002, 0.002]],
    explanation=("A slice with only an end value gives that value to the last group and a tenth of it to every "
                 "other group: 2e-4, 2e-4, 2e-3."),
)

q2 = ValueExercise(
    """After the frozen phase, `fine_tune(3, base_lr=4e-3)` unfreezes and trains everything. What are the three
    peak learning rates of that second phase (`lr_mult=100`)? `answer = [group0, group1, group2]`.""",
    expected=[2e-5, 2e-4, 2e-3],
    hints=["fine_tune halves base_lr before it unfreezes.",
           "The rates then run from base_lr / lr_mult to base_lr, evenly on a log scale."],
    solution="answer = [2e-5, 2e-4, 2e-3]   # base_lr 4e-3 halved to 2e-3, then slice(2e-3 / 100, 2e-3)",
    wrong_answers=[[4e-5, 4e-4, 4e-3], [2e-4, 2e-4, 2e-3], [2e-5, 1.01e-3, 2e-3]],
    right_answers=[(2e-5, 2e-4, 2e-3), [0.00002, 0.0002, 0.002]],
    explanation=("fine_tune halves base_lr to 2e-3 before unfreezing, and the rates then run from 2e-3 / 100 to "
                 "2e-3, evenly on a log scale: 2e-5, 2e-4, 2e-3."),
)

q3 = ValueExercise(
    """A resnet50 body outputs 2048 channels. How many parameters does `create_cnn`'s head have for 37 classes?
    (Count the weights and biases of both BatchNorm layers and both linear layers.)""",
    expected=2_125_312,
    hints=["Concat pooling doubles the channels: the first BatchNorm and linear layer see 4096 features.",
           "A BatchNorm1d(n) has 2n parameters; the linear layers have no bias.",
           "2*4096 + 4096*512 + 2*512 + 512*37."],
    solution="answer = 2 * 4096 + 4096 * 512 + 2 * 512 + 512 * 37   # 2,125,312",
    wrong_answers=[1_072_640, 2_116_096, 2_125_861],
    right_answers=[2125312.0, 2 * 4096 + 4096 * 512 + 2 * 512 + 512 * 37],
    explanation=("Concat pooling doubles the 2048 channels to 4096 features; then BatchNorm(4096) has 8,192 "
                 "parameters, Linear(4096, 512) 2,097,152, BatchNorm(512) 1,024 and Linear(512, 37) 18,944, with "
                 "no biases on the linear layers."),
)

# In the lesson, before the notebook freezes the body by hand.
freeze = CodeExercise(
    """Write `freeze_body(model)` for a `create_cnn` model (`model[0]` is the body, `model[1]` the head): it must
    leave the head trainable, freeze every parameter of the body EXCEPT those of its BatchNorm layers (what
    `learn.freeze()` does). Then `answer = freeze_body`.""",
    checker=_check_freeze_body,
    reference=_freeze_body_reference,
    hints=["`p.requires_grad_(False)` freezes a parameter; `model[0].modules()` walks every layer of the body.",
           "Use `isinstance(module, nn.BatchNorm2d)` and `module.parameters(recurse=False)` to treat each layer's "
           "own parameters; do not forget to set the head's parameters to True."],
    solution="""
    def freeze_body(model):
        for module in model[0].modules():
            for p in module.parameters(recurse=False):
                p.requires_grad_(isinstance(module, nn.BatchNorm2d))
        for p in model[1].parameters():
            p.requires_grad_(True)
    answer = freeze_body
    """,
    wrong_answers=[_freeze_everything_in_body, _freeze_the_head, lambda model: None],
    right_answers=[_freeze_then_thaw_norms, _freeze_by_name],
    explanation=("freeze() stops gradients for the pretrained filters but leaves every BatchNorm layer trainable, "
                 "so its statistics and scales can adapt to the new data while the new head trains."),
)

q4 = ValueExercise(
    """`learn.fine_tune(2, base_lr=2e-3)`: what learning rate does the head (the last group) get at the very FIRST
    batch of the unfrozen phase? That phase is a one-cycle schedule whose warm-up takes 30% of it and starts at
    a fifth of each group's peak (`div=5`). (The notebook plotted the rates of its own `fine_tune`.)""",
    expected=2e-4,
    hints=["fine_tune halves base_lr before it unfreezes: the head's peak is 1e-3.",
           "One-cycle starts at the peak divided by `div`."],
    solution="answer = 2e-3 / 2 / 5   # halved for the unfrozen phase, then the warm-up starts at peak / 5",
    wrong_answers=[4e-4, 8e-5, 1e-3, 2e-3 / 25],
    right_answers=[0.0002, 2e-3 / 10],
    explanation=("The unfrozen phase peaks at base_lr / 2 for the head, and its one-cycle warm-up starts at a "
                 "fifth of that: 2e-4, then climbs for 30% of the phase."),
)


questionnaire = Questionnaire([
    Reflection("What are the two steps `fine_tune` takes?",
               "First it freezes the pretrained body and trains only the new head (and the BatchNorm layers) for "
               "`freeze_epochs` epochs with one-cycle, so the random head learns to use the body's features without "
               "its large early gradients damaging them. Then it halves the base rate, unfreezes the whole network and "
               "trains every layer for the requested number of epochs, with discriminative rates: the earliest layers "
               "get a hundredth of the head's rate."),
    ValueExercise("How many epochs does `learn.fine_tune(4)` train in all, with its default arguments?",
                  expected=5, wrong_answers=[4, 8, 6], right_answers=[5.0, 1 + 4],
                  hints=["Count the frozen epochs (freeze_epochs defaults to 1) and the unfrozen ones."],
                  solution="answer = 5   # 1 frozen + 4 unfrozen",
                  explanation=("fine_tune first trains freeze_epochs = 1 epoch with the body "
                               "frozen, then the 4 epochs asked for with everything unfrozen.")),
    Reflection("What are discriminative learning rates, and why use them when fine-tuning?",
               "Different learning rates for different parts of the network: small for the early layers, larger for "
               "later layers, largest for the new head. The early layers of a pretrained body hold general features "
               "(edges, colours, textures) that are already good for the new task and should barely move; the later "
               "layers hold more task-specific combinations that need more change; the head starts from random and "
               "needs the most."),
    ValueExercise("Four parameter groups get `lr_max=slice(1e-6, 1e-3)`. Which four peak rates do they get, from the "
                  "first group to the last? `answer = [...]`",
                  expected=[1e-6, 1e-5, 1e-4, 1e-3], wrong_answers=[[1e-6, 3.34e-4, 6.67e-4, 1e-3],
                                                                    [1e-4, 1e-4, 1e-4, 1e-3], [1e-6, 1e-6, 1e-6, 1e-3]],
                  right_answers=[(1e-6, 1e-5, 1e-4, 1e-3), [10.0 ** k for k in range(-6, -2)]],
                  hints=["The first group gets the start, the last the end, and the steps between are equal "
                         "MULTIPLICATIONS, not equal additions."],
                  solution="answer = [1e-6, 1e-5, 1e-4, 1e-3]   # helpers.schedule.even_mults(1e-6, 1e-3, 4)",
                  explanation=("Between its two ends a slice spaces the rates by equal factors: "
                               "from 1e-6 to 1e-3 over four groups each rate is 10 times the "
                               "previous one.")),
    ChoiceExercise("What does `lr_max=slice(3e-3)` (only an end value) give three parameter groups?",
                   ["3e-4, 3e-4 and 3e-3", "3e-3 for every group", "3e-5, 3e-4 and 3e-3", "0, 0 and 3e-3"],
                   answer="a", wrong_answers=["b", "c", "d"],
                   hints=["It is what fine_tune uses in its frozen phase."],
                   explanation=("A slice with only an end value gives the last group that value "
                                "and every other group a tenth of it.")),
    Reflection("What does a pretrained body hold, and what does it not?",
               "Its weights hold the features that were useful for the task it was trained on: in the first layers "
               "generic detectors of edges, colour contrasts and simple textures, in later layers detectors of larger "
               "patterns and parts. It does not hold anything about our classes: the layer that mapped its features to "
               "the old task's classes is thrown away and replaced by a new, randomly initialised head."),
    ChoiceExercise("With the body frozen (`learn.freeze()`), which parameters does the optimiser update?",
                   ["only the head's", "the head's and those of every BatchNorm layer, body included",
                    "all of them, the body's at a tenth of the rate", "none of the body's, but BatchNorm's running "
                    "statistics are reset"],
                   answer="b", wrong_answers=["a", "c", "d"],
                   hints=["Look at which parameters still have requires_grad after learn.freeze() in the notebook."],
                   explanation=("freeze() stops gradients for the body's convolution weights only; "
                                "the BatchNorm layers of the body and the whole head still train.")),
    Reflection("Why do BatchNorm layers stay trainable while the body is frozen?",
               "BatchNorm normalises each channel with statistics of the data it sees and then rescales it with a "
               "learnt weight and bias. Those statistics and scales were fitted to the pretraining data; the new data "
               "has different brightness, colours and contents. Letting these few parameters (and the running "
               "statistics) adapt lets the frozen features be re-centred for the new data at almost no risk, since "
               "the convolution filters themselves stay untouched."),
])

progress = track_set(globals())
