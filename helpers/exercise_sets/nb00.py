"""Exercises and questionnaire of notebook 00, a digit classifier from scratch.

Use them with ``from helpers.exercise_sets import nb00 as ex``.
"""
from __future__ import annotations

import inspect
from typing import Any

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

# ---- reference answers ---------------------------------------------------------------------------

def _rmse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).mean().sqrt()


def _mnist_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    probs = predictions.sigmoid()
    return torch.where(targets == 1, 1 - probs, probs).mean()


class _ReferenceOptim:
    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def step(self):
        for p in self.params:
            p.data -= self.lr * p.grad

    def zero_grad(self):
        for p in self.params:
            p.grad = None


def _nearest_mean(images: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    return (images[:, None] - means[None]).abs().mean((-1, -2)).argmin(1)


def _softmax_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    log_probs = logits - logits.logsumexp(1, keepdim=True)
    return -log_probs[torch.arange(len(targets)), targets].mean()


class _ReferenceMomentum:
    def __init__(self, params, lr, mom=0.9):
        self.params, self.lr, self.mom = list(params), lr, mom
        self.velocity = [torch.zeros_like(p) for p in self.params]

    def step(self):
        for p, v in zip(self.params, self.velocity):
            v.mul_(self.mom).add_(p.grad)
            p.data -= self.lr * v

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class _MomentumIgnored(_ReferenceOptim):   # BasicOptim with a mom argument it never uses
    def __init__(self, params, lr, mom=0.9):
        super().__init__(params, lr)


class _DampedMomentum(_ReferenceMomentum):   # an average of the gradients, not PyTorch's sum
    def step(self):
        for p, v in zip(self.params, self.velocity):
            v.mul_(self.mom).add_(p.grad, alpha=1 - self.mom)
            p.data -= self.lr * v


class _VelocityNeverKept(_ReferenceMomentum):   # starts from zero at every step: plain SGD again
    def step(self):
        for p in self.params:
            p.data -= self.lr * p.grad


def _reference_epoch(model, lr, params, batches):
    for xb, yb in batches:
        _mnist_loss(model(xb), yb).backward()
        for p in params:
            p.data -= lr * p.grad
            p.grad = None


def _epoch_never_clears(model, lr, params, batches):
    for xb, yb in batches:
        _mnist_loss(model(xb), yb).backward()
        for p in params:
            p.data -= lr * p.grad


def _epoch_one_step(model, lr, params, batches):   # adds up the batches' gradients, steps once at the end
    for xb, yb in batches:
        _mnist_loss(model(xb), yb).backward()
    for p in params:
        p.data -= lr * p.grad
        p.grad = None


def _epoch_climbs(model, lr, params, batches):
    for xb, yb in batches:
        _mnist_loss(model(xb), yb).backward()
        for p in params:
            p.data += lr * p.grad
            p.grad = None


# three typical slips in a hand-written optimiser
class _AddsTheGradient(_ReferenceOptim):
    def step(self):
        for p in self.params:
            p.data += self.lr * p.grad


class _ForgetsTheRate(_ReferenceOptim):
    def step(self):
        for p in self.params:
            p.data -= p.grad


class _NeverClears(_ReferenceOptim):
    def zero_grad(self):
        pass


# ---- fixed inputs the exercises use ----------------------------------------------------------------

_g = torch.Generator().manual_seed(0)
PAIR_A, PAIR_B = torch.rand(5, 28, 28, generator=_g), torch.rand(5, 28, 28, generator=_g)
RAW_PREDS = torch.tensor([-2.0, 0.0, 0.5, 3.0, -0.3])
RAW_TARGETS = torch.tensor([1, 0, 1, 0, 1])
CUBE_AT = torch.tensor([1.0, 2.0, -1.0])
THRESHOLD_OUTPUTS = torch.tensor([-0.2, 0.3, 1.5, -2.0])
THRESHOLD_TARGETS = torch.tensor([1, 1, 0, 0])   # 1 means "a 3"
TEN_MEANS = torch.rand(10, 28, 28, generator=_g)
TEN_IMAGES = (TEN_MEANS[torch.tensor([3, 7, 0, 9, 2, 2])] + 0.6 * torch.randn(6, 28, 28, generator=_g)).clamp(0, 1)
# L1 and RMSE disagree here: mean 0 differs a little everywhere, mean 1 a lot in ten pixels
SPREAD_OR_SPOTS = torch.stack([torch.full((28, 28), 0.05), torch.zeros(28, 28).index_fill_(1, torch.arange(10), 0)])
SPREAD_OR_SPOTS[1, 0, :10] = 1.0
SOFTMAX_LOGITS = torch.randn(6, 10, generator=_g) * 2
SOFTMAX_TARGETS = torch.tensor([3, 7, 0, 9, 2, 2])


def _small_problem(seed: int) -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(16, 4, generator=gen), torch.randn(16, 1, generator=gen)
    model = nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 4, generator=gen))
        model.bias.copy_(torch.randn(1, generator=gen))
    return model, x, y


def _check_optimiser(answer: Any) -> None:
    """Train the same tiny regression with the answer and with torch.optim.SGD; the weights must agree."""
    assert callable(answer), "give the class itself (MyOptim), not an instance of it: the check creates its own."
    for seed, lr in ((0, 0.1), (1, 0.03)):
        mine, x, y = _small_problem(seed)
        theirs, _, _ = _small_problem(seed)
        opt = answer(mine.parameters(), lr)
        for method in ("step", "zero_grad"):
            assert callable(getattr(opt, method, None)), f"your optimiser has no {method}() method."
        reference = torch.optim.SGD(theirs.parameters(), lr=lr)
        for step in range(5):
            for model, optimiser in ((mine, opt), (theirs, reference)):
                F.mse_loss(model(x), y).backward()
                optimiser.step()
                optimiser.zero_grad()
            if not torch.allclose(mine.weight, theirs.weight, atol=1e-5):
                grads = mine.weight.grad
                hint = ("the gradients were not cleared: zero_grad must set each .grad to None or zero."
                        if grads is not None and grads.abs().sum() > 0 else
                        "compare your update with p -= lr * p.grad (mind the sign and the learning rate).")
                raise AssertionError(f"after step {step + 1} (lr={lr}) your weights differ from torch.optim.SGD's: "
                                     f"{hint}")


def _check_momentum(answer: Any) -> None:
    """Train the same tiny regression with the answer and with torch.optim.SGD(momentum=mom); the weights must agree."""
    assert callable(answer), "give the class itself (MomentumOptim), not an instance of it: the check creates its own."
    for seed, lr, mom in ((0, 0.05, 0.9), (1, 0.02, 0.5)):
        mine, x, y = _small_problem(seed)
        theirs, _, _ = _small_problem(seed)
        try:
            opt = answer(mine.parameters(), lr, mom)
        except TypeError as error:
            raise AssertionError(f"MomentumOptim(params, lr, mom) failed ({error}): it must take the momentum as "
                                 "its third argument.") from None
        reference = torch.optim.SGD(theirs.parameters(), lr=lr, momentum=mom)
        for step in range(6):
            for model, optimiser in ((mine, opt), (theirs, reference)):
                F.mse_loss(model(x), y).backward()
                optimiser.step()
                optimiser.zero_grad()
            if not torch.allclose(mine.weight, theirs.weight, rtol=1e-4, atol=1e-6):
                raise AssertionError(f"after step {step + 1} (lr={lr}, mom={mom}) your weights differ from "
                                     "torch.optim.SGD(momentum=mom)'s: keep one velocity per parameter from step to "
                                     "step, v = mom * v + grad, then p -= lr * v.")


def _epoch_problem(seed: int) -> tuple[nn.Linear, list[tuple[torch.Tensor, torch.Tensor]]]:
    gen = torch.Generator().manual_seed(seed)
    model = nn.Linear(6, 1)
    with torch.no_grad():
        model.weight.copy_(torch.randn(1, 6, generator=gen) * 0.5)
        model.bias.zero_()
    batches = [(torch.randn(8, 6, generator=gen), torch.randint(0, 2, (8, 1), generator=gen).float())
               for _ in range(3)]
    return model, batches


def _check_epoch(answer: Any) -> None:
    """Run one epoch of three batches with the answer and with the reference; the parameters must agree."""
    assert callable(answer), "give the function itself (train_epoch_by_hand), without calling it."
    for seed, lr in ((0, 1.0), (1, 0.3)):
        mine, batches = _epoch_problem(seed)
        ref, _ = _epoch_problem(seed)
        answer(mine, lr, list(mine.parameters()), batches)
        _reference_epoch(ref, lr, list(ref.parameters()), batches)
        if not torch.allclose(mine.weight, ref.weight, rtol=1e-4, atol=1e-6):
            raise AssertionError(f"after one epoch (lr={lr}) your weights differ from the reference: for every batch, "
                                 "mnist_loss(model(xb), yb).backward(), then each p.data -= lr * p.grad and clear "
                                 "p.grad before the next batch.")


# ---- the exercises ----------------------------------------------------------------------------------

q1 = FunctionExercise(
    """All ten digits with no learning: write `nearest_mean(images, means)`. `images` has shape `(n, 28, 28)` and
    `means` shape `(k, 28, 28)`, one mean picture per class (k = 10 for all the digits). Return, for each image,
    the index of the mean it is closest to by the L1 distance (mean absolute difference): a tensor of `n` ints.
    Use broadcasting, no Python loop.""",
    reference=_nearest_mean,
    test_cases=[(TEN_IMAGES, TEN_MEANS), (TEN_IMAGES[:3], TEN_MEANS[:2]), (TEN_MEANS[[4, 1, 7]], TEN_MEANS),
                (torch.zeros(2, 28, 28), SPREAD_OR_SPOTS)],
    hints=["`images[:, None] - means[None]` broadcasts to `(n, k, 28, 28)`: every image against every mean.",
           "Average away the last two axes, then `argmin` over the axis of the means."],
    solution="""
    def nearest_mean(images, means):
        distances = (images[:, None] - means[None]).abs().mean((-1, -2))   # (n, k)
        return distances.argmin(1)
    """,
    wrong_answers=[lambda i, m: (i[:, None] - m[None]).abs().mean((-1, -2)).argmax(1),          # the farthest mean
                   lambda i, m: ((i[:, None] - m[None]) ** 2).mean((-1, -2)).sqrt().argmin(1),  # RMSE, not L1
                   lambda i, m: (i[:, None] - m[None]).abs().mean((-1, -2)).argmin(0)],         # the wrong axis
    explanation=("Adding an axis to each side makes every image meet every mean in one subtraction; averaging the "
                 "absolute differences over the pixels gives an (n, k) table of distances, and argmin over the k "
                 "means picks the closest class for each image."),
)


q8 = FunctionExercise(
    """Write `rmse(a, b)`: the root mean squared error between two tensors of the same shape
    (one number for the whole tensor). The baseline's second distance, before the notebook shows its own.""",
    reference=_rmse,
    test_cases=[(PAIR_A, PAIR_B), (torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.0, 7.0])),
                (torch.zeros(2, 2), torch.ones(2, 2))],
    hints=["Square the differences, average them, then take the square root: in that order.",
           "`F.mse_loss(a, b)` gives the mean of the squares; you still need `.sqrt()`."],
    solution="""
    def rmse(a, b):
        return ((a - b) ** 2).mean().sqrt()
    """,
    wrong_answers=[lambda a, b: ((a - b) ** 2).mean(),          # forgets the root: that is the MSE
                   lambda a, b: (a - b).abs().mean(),           # the L1 distance
                   lambda a, b: ((a - b) ** 2).sum().sqrt()],   # the Euclidean norm: sums instead of averaging
    explanation=("RMSE squares each difference, averages the squares over every element, and takes the root, so "
                 "the result is back in pixel units. Skipping the root leaves the MSE, and summing instead of "
                 "averaging makes the distance grow with the image size."),
)

q2 = ValueExercise(
    """A stack of validation images has shape `(100, 28, 28)` and the mean 3 has shape `(28, 28)`.
    What is the shape of `(stack - mean3).abs().mean((-1, -2))`? Give a tuple of ints.""",
    expected=(100,),
    hints=["First work out the shape of the difference: broadcasting repeats the mean 3 along the missing first axis.",
           "`mean((-1, -2))` averages away the last two axes."],
    solution="answer = (100,)   # (100, 28, 28) after broadcasting, then the two pixel axes are averaged away",
    wrong_answers=[(100, 28, 28), (28, 28), ()],
    explanation=("The (28, 28) mean is broadcast against each of the 100 images, so the difference is (100, 28, "
                 "28); averaging over the last two axes leaves one distance per image."),
)

q3 = FunctionExercise(
    """Ten digits need ten outputs per image and a loss for them. Write `softmax_loss(logits, targets)`: `logits`
    has shape `(n, 10)` (raw outputs), `targets` holds n class numbers 0-9. Turn each row into probabilities with a
    softmax (exp, divided by the row's sum), take the log of the probability of the right class, and return minus
    its mean. Compare with `F.cross_entropy` once yours works.""",
    reference=_softmax_loss,
    test_cases=[(SOFTMAX_LOGITS, SOFTMAX_TARGETS), (torch.zeros(2, 10), torch.tensor([0, 9])),
                (SOFTMAX_LOGITS[:3] * 3, torch.tensor([9, 0, 4]))],
    hints=["`logits.softmax(1)` (or exp then divide by the sum over axis 1) gives each row's probabilities.",
           "Pick each row's right class with `probs[torch.arange(n), targets]`, then `-log(...).mean()`."],
    solution="""
    def softmax_loss(logits, targets):
        log_probs = logits.log_softmax(1)   # log(softmax), computed without overflow
        return -log_probs[torch.arange(len(targets)), targets].mean()
    """,
    wrong_answers=[lambda z, t: -z.softmax(1)[torch.arange(len(t)), t].mean(),                 # no log
                   lambda z, t: -z.log_softmax(1)[torch.arange(len(t)), t].sum(),              # sums, not the mean
                   lambda z, t: -z.log_softmax(0)[torch.arange(len(t)), t].mean(),             # softmax down the batch
                   lambda z, t: -torch.log(z.sigmoid())[torch.arange(len(t)), t].mean()],      # sigmoid per output
    explanation=("The softmax makes the ten outputs of an image positive and summing to 1, so raising one class "
                 "lowers the others; the log of the right class's probability punishes a confident mistake without "
                 "bound, and its negative mean is the cross-entropy that F.cross_entropy computes from raw logits."),
)


q9 = FunctionExercise(
    """Write `mnist_loss(predictions, targets)` for raw model outputs (any real numbers): squash them with a
    sigmoid, then average how far each one is from its target (1 for a 3, 0 for a 7).""",
    reference=_mnist_loss,
    test_cases=[(RAW_PREDS, RAW_TARGETS), (torch.tensor([0.0]), torch.tensor([1])),
                (torch.tensor([[4.0], [-4.0]]), torch.tensor([[1], [0]]))],
    hints=["`torch.where(condition, a, b)` takes a where the condition holds and b elsewhere.",
           "Where the target is 1 the distance is 1 - p; where it is 0 the distance is p itself."],
    solution="""
    def mnist_loss(predictions, targets):
        p = predictions.sigmoid()
        return torch.where(targets == 1, 1 - p, p).mean()
    """,
    wrong_answers=[lambda p, t: torch.where(t == 1, 1 - p, p).mean(),                      # no sigmoid
                   lambda p, t: torch.where(t == 1, p.sigmoid(), 1 - p.sigmoid()).mean(),  # the two cases swapped
                   lambda p, t: torch.where(t == 1, 1 - p.sigmoid(), p.sigmoid()).sum()],  # sums, not averages
    explanation=("The sigmoid puts every raw output between 0 and 1; then a 3 (target 1) is off by 1 - p and a 7 "
                 "(target 0) by p, and the mean of these distances is smooth, so its gradient tells each weight "
                 "which way to move."),
)

q4 = ValueExercise(
    """Without autograd: the gradient of `f(x) = (x**3).sum()` at `x = [1., 2., -1.]`. Then check it with
    `requires_grad_()` and `backward()`. Give three numbers.""",
    expected=3 * CUBE_AT ** 2,
    hints=["Each x_i appears in only one term of the sum, so the gradient's i-th entry is the derivative of x_i**3."],
    solution="answer = [3.0, 12.0, 3.0]   # 3 * x**2",
    wrong_answers=[CUBE_AT ** 2, 2 * CUBE_AT, CUBE_AT ** 3],
    explanation=("Each x_i appears in one term of the sum only, so the i-th entry of the gradient is the "
                 "derivative of x_i**3, which is 3 * x_i**2: 3, 12 and 3."),
)

q11 = CodeExercise(
    """Write a class `MyOptim(params, lr)` with `step()` (move every parameter against its gradient, scaled by lr)
    and `zero_grad()` (clear the gradients). The check trains a small model with it and with `torch.optim.SGD`;
    the weights must agree after every step. Pass the class itself: `ex.q11.check(MyOptim)`.""",
    checker=_check_optimiser,
    reference=_ReferenceOptim,
    hints=["Keep `list(params)`: a generator such as `model.parameters()` can be walked only once.",
           "Update `p.data` (or work inside `torch.no_grad()`), so the step itself is not recorded for autograd."],
    solution="\n" + inspect.getsource(_ReferenceOptim).replace("_ReferenceOptim", "MyOptim"),  # the reference itself
    wrong_answers=[_AddsTheGradient, _ForgetsTheRate, _NeverClears],
    explanation=("SGD moves each parameter a step of lr times its gradient against the gradient, and the "
                 "gradients must be cleared afterwards because backward() adds to whatever .grad already holds."),
)

q5 = CodeExercise(
    """Extend the optimiser: write a class `MomentumOptim(params, lr, mom=0.9)` with `step()` and `zero_grad()`.
    Each parameter keeps a velocity `v` (zeros at first); each step does `v = mom * v + p.grad`, then
    `p -= lr * v` (PyTorch's convention). The check trains a small model with it and with
    `torch.optim.SGD(momentum=mom)`; the weights must agree. Pass the class itself: `ex.q5.check(MomentumOptim)`.""",
    checker=_check_momentum,
    reference=_ReferenceMomentum,
    hints=["Make the velocities in `__init__`: `[torch.zeros_like(p) for p in self.params]`, and keep them.",
           "In `step`, update each velocity in place (or replace it in the list), then move the parameter by lr * v."],
    solution="\n" + inspect.getsource(_ReferenceMomentum).replace("_ReferenceMomentum", "MomentumOptim"),
    wrong_answers=[_MomentumIgnored, _DampedMomentum, _VelocityNeverKept, _ReferenceOptim],
    explanation=("The velocity is a running sum of past gradients that decays by mom each step, so a direction "
                 "the gradients keep agreeing on builds speed while zig-zags cancel out; with mom = 0 it is plain "
                 "SGD."),
)

q10 = CodeExercise(
    """One epoch of training, by hand: write `train_epoch_by_hand(model, lr, params, batches)`. For every
    `(xb, yb)` in `batches`: compute `mnist_loss(model(xb), yb)`, call `backward()`, then move each parameter in
    `params` by `lr` times its gradient against the gradient, and clear its gradient before the next batch.
    Pass the function itself: `ex.q10.check(train_epoch_by_hand)`.""",
    checker=_check_epoch,
    reference=_reference_epoch,
    hints=["Two loops: over the batches, and inside it over the parameters.",
           "Update `p.data` (so autograd does not record the step), then `p.grad = None` or `p.grad.zero_()`."],
    solution="""
    def train_epoch_by_hand(model, lr, params, batches):
        for xb, yb in batches:
            mnist_loss(model(xb), yb).backward()
            for p in params:
                p.data -= lr * p.grad
                p.grad = None
    """,
    wrong_answers=[_epoch_never_clears, _epoch_one_step, _epoch_climbs],
    explanation=("Each batch gives its own gradient and its own step, so an epoch of three batches moves the "
                 "weights three times; clearing .grad after each step keeps one batch's gradient from adding to "
                 "the next."),
)


q6 = ValueExercise(
    """How many parameters does `nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))` have? An int.""",
    expected=784 * 50 + 50 + 50 * 10 + 10,
    hints=["A Linear(n_in, n_out) has an n_in x n_out weight matrix and n_out biases; ReLU has none.",
           "Check yourself with `sum(p.numel() for p in model.parameters())`."],
    solution="answer = 784 * 50 + 50 + 50 * 10 + 10   # 39,760",
    wrong_answers=[784 * 50 + 50 * 10, 784 * 50 + 50 + 50 * 10, 784 * 50 * 10],
    explanation=("A Linear(n_in, n_out) holds n_in * n_out weights and n_out biases, and ReLU holds none: 784 * "
                 "50 + 50 + 50 * 10 + 10 = 39,760."),
)

q7 = ValueExercise(
    """A model's raw outputs (before any sigmoid) for four images are `[-0.2, 0.3, 1.5, -2.0]`, and their targets
    are `[1, 1, 0, 0]` (1 means "a 3"). With the right decision threshold, what is the accuracy? A float.""",
    expected=0.5,
    hints=["The sigmoid crosses 0.5 exactly where its input crosses 0: so which raw outputs mean \"a 3\"?"],
    solution="answer = 0.5   # outputs above 0 say '3': [no, yes, yes, no] against [yes, yes, no, no]",
    wrong_answers=[0.25, 0.75, 1.0],
    explanation=("The sigmoid passes 0.5 exactly where its input is 0, so a raw output above 0 means \"a 3\": the "
                 "predictions [no, yes, yes, no] match the targets [yes, yes, no, no] twice out of four."),
)


# ---- the chapter's questionnaire -------------------------------------------------------------------

questionnaire = Questionnaire([
    Reflection("How does a computer store a greyscale picture? And a colour one?",
               "As a grid of numbers, one per pixel: for greyscale usually 0 (black) to 255 (white), a rank-2 tensor "
               "of height x width. A colour picture keeps three such grids, one each for red, green and blue, so it "
               "is a rank-3 tensor (3 x height x width in PyTorch's order)."),
    Reflection("How are the folders of the MNIST sample laid out, and why is that useful?",
               "train/ and valid/ at the top, each with one folder per digit (3 and 7), plus labels.csv. The split "
               "is fixed by whoever built the data, so everyone measures on the same validation images, and the "
               "label of every file is simply the name of its folder."),
    Reflection("Explain how the pixel-similarity baseline decides between 3 and 7.",
               "Average all training 3s pixel by pixel into one 'ideal 3', and the same for the 7s. A new image "
               "is called a 3 when its distance (mean absolute difference, or RMSE) to the ideal 3 is smaller "
               "than its distance to the ideal 7. Nothing is learned by gradient descent: the model is two averages."),
    ValueExercise("Write a list comprehension that keeps the odd numbers of `a = [1, 2, 3, 4, 5]` and doubles "
                  "them. What list does it give?",
                  expected=[2, 6, 10], wrong_answers=[[2, 4, 6, 8, 10], [4, 8], [1, 3, 5]],
                  hints=["`[expression for x in a if condition]`; x is odd when `x % 2 == 1`."],
                  solution="answer = [2 * x for x in [1, 2, 3, 4, 5] if x % 2 == 1]",
                  explanation=("The condition keeps 1, 3 and 5, and the expression doubles each one "
                               "that is kept, giving [2, 6, 10].")),
    Reflection("What is a rank-3 tensor?",
               "A tensor with three axes, such as a stack of greyscale images (images x rows x columns) or one "
               "colour image (channels x rows x columns). Its rank is the number of axes, not their sizes."),
    ValueExercise("The stacked training 3s of the book have shape `(6131, 28, 28)`. What is their rank? An int.",
                  expected=3, wrong_answers=[6131, 28, 6131 * 28 * 28],
                  hints=["The rank is the length of the shape: `len(t.shape)`, also `t.ndim`."],
                  solution="answer = 3   # the rank is len(shape); the shape lists the size of each axis",
                  explanation=("The rank counts the axes, not their sizes: a stack of images has "
                               "three (image, row, column).")),
    Reflection("What do RMSE and the L1 norm measure, and how do they differ?",
               "Both measure how far apart two sets of numbers are. L1 (mean absolute error) averages the absolute "
               "differences; RMSE squares them, averages, and takes the square root, so it punishes a few large "
               "differences more than many small ones."),
    Reflection("How can you compute on thousands of numbers at once, far faster than a Python loop?",
               "Write the calculation on whole tensors (elementwise operations, broadcasting, matrix products) "
               "instead of looping in Python: PyTorch then runs optimised C or GPU code over all the numbers in one "
               "call."),
    ValueExercise("Make a 3 x 3 tensor holding 1 to 9, double it, and take the bottom-right 2 x 2 block. "
                  "Give that block.",
                  expected=torch.tensor([[10, 12], [16, 18]]),
                  wrong_answers=[torch.tensor([[5, 6], [8, 9]]), torch.tensor([[2, 4], [8, 10]]),
                                 torch.tensor([[10, 12, 0], [16, 18, 0]])],
                  hints=["`torch.arange(1, 10).view(3, 3)`, then `* 2`, then slice rows 1: and columns 1:."],
                  solution="answer = (torch.arange(1, 10).view(3, 3) * 2)[1:, 1:]",
                  explanation=("Doubling gives the rows [2, 4, 6], [8, 10, 12], [14, 16, 18]; the "
                               "slice [1:, 1:] drops the first row and the first column.")),
    Reflection("What is broadcasting?",
               "The rule that lets an operation combine tensors of different shapes: the smaller one is treated as "
               "if it were repeated along the missing or size-1 axes, without copying any memory. Shapes are "
               "compared from the last axis backwards and must be equal or 1."),
    ChoiceExercise("Which data are metrics usually computed on?",
                   ["the validation set", "the training set", "whichever set gives the better number"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["A model can memorise the images it trains on. What do we really want to know?"],
                   solution="The validation set: it shows how the model does on images it never trained on.",
                   explanation=("A metric is there to tell how the model does on data it has not "
                                "trained on, and only the validation set is kept out of training.")),
    Reflection("What is stochastic gradient descent (SGD)?",
               "An optimisation method: repeatedly compute the loss on a random mini-batch, take the gradient of the "
               "loss with respect to each parameter, and move each parameter a small step (the learning rate times "
               "the gradient) in the direction that lowers the loss."),
    Reflection("Why does SGD use mini-batches?",
               "The gradient of one item is very noisy and one item at a time keeps a GPU idle; the whole dataset "
               "per step is slow and often does not fit in memory. A mini-batch gives a usable gradient estimate "
               "and many updates per epoch, and keeps the hardware busy."),
    Reflection("Name the seven steps of SGD for machine learning.",
               "Initialise the parameters; predict with them; compute the loss; compute the gradients; step the "
               "parameters (subtract learning rate times gradient); repeat from the prediction; stop when the "
               "model is good enough or time is up."),
    Reflection("How are the weights of a model initialised?",
               "Randomly (for example normally distributed with a small spread), so that neurons differ from each "
               "other; training improves them from there. Starting from pretrained weights is the other option."),
    Reflection("What is the loss?",
               "A number computed from the predictions and the targets that measures how bad the predictions are, "
               "chosen so that its gradient is informative; training changes the parameters to make it smaller."),
    Reflection("Why can the learning rate not always be large?",
               "A step that is too big jumps past the minimum: the loss then bounces around or grows until it "
               "diverges. Small steps are safe but slow; the learning rate trades one against the other."),
    Reflection("What is a gradient?",
               "For each parameter, how fast the loss changes when that parameter is nudged (the partial "
               "derivative). Together they point in the direction in which the loss rises fastest."),
    ChoiceExercise("Do you need to be able to work out gradients by hand to train a model?",
                   ["no: PyTorch's autograd computes them", "yes: every layer needs its derivative written out",
                    "only for the loss function"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["What did `loss.backward()` do in this notebook?"],
                   explanation=("Autograd records each operation in the forward pass and works the "
                                "gradients out backwards through them, so you only write how the "
                                "loss is computed.")),
    Reflection("Why is accuracy no good as a loss?",
               "A tiny change to a weight almost never flips a prediction, so accuracy stays the same: its gradient "
               "is zero almost everywhere (and undefined where a prediction flips). SGD would get no signal at all."),
    Reflection("Sketch the sigmoid. What is special about its shape?",
               "An S-shaped curve rising smoothly from 0 to 1, equal to 0.5 at 0. It maps any real number into "
               "(0, 1) and is steepest in the middle, so it turns raw outputs into probabilities with useful "
               "gradients."),
    Reflection("What is the difference between a loss and a metric?",
               "The metric is for people: it says how good the model is in terms we care about (accuracy, error "
               "rate). The loss is for the optimiser: it must change smoothly with the parameters so its gradient "
               "guides training. Sometimes one function serves both, often it cannot."),
    Reflection("What does the function that computes new weights from a learning rate do?",
               "It is the optimiser's step: for every parameter, new value = old value - learning rate x gradient "
               "(plus extras such as momentum in fancier optimisers)."),
    Reflection("What does a `DataLoader` do?",
               "It takes a dataset (anything with a length and indexing) and hands out mini-batches: it shuffles "
               "the order each epoch if asked, groups items into batches of the chosen size and stacks them into "
               "tensors."),
    Reflection("Write pseudocode for one epoch of SGD.",
               "for each mini-batch (x, y): predictions = model(x); loss = loss_func(predictions, y); "
               "loss.backward(); for each parameter p: p -= lr * p.grad; zero the gradients."),
    ValueExercise("Pair up `[1, 2, 3, 4]` with `'abcd'` into a list of tuples. What list do you get? "
                  "(What makes that structure handy for a Dataset?)",
                  expected=[(1, "a"), (2, "b"), (3, "c"), (4, "d")],
                  wrong_answers=[[(1, 2, 3, 4), ("a", "b", "c", "d")], [(1, "a"), (2, "b"), (3, "c")],
                                 [(1, "a"), (2, "b"), (3, "c"), (4, "e")]],
                  hints=["`list(zip(...))`."],
                  solution="answer = list(zip([1, 2, 3, 4], 'abcd'))   # indexing gives one (input, target) pair, "
                           "which is exactly what a Dataset must return",
                  explanation=("zip walks both sequences side by side and yields one tuple per "
                               "position; a list of (input, target) pairs indexes just like a "
                               "Dataset.")),
    Reflection("What does `view` do?",
               "It gives the same data a new shape without copying it, e.g. `view(-1, 28 * 28)` turns a stack of "
               "images into one row of 784 pixels per image; -1 means 'whatever size makes the total fit'."),
    Reflection("What are the bias parameters for?",
               "Without a bias a linear layer maps an all-zero input to exactly zero and every line it can draw "
               "passes through the origin. The bias adds a constant so the output can be shifted freely."),
    Reflection("What does `@` do in Python?",
               "Matrix multiplication (it calls `__matmul__`); for tensors it is `torch.matmul`."),
    Reflection("What does `backward` do?",
               "Called on a scalar (the loss), it walks back through the operations that produced it and stores, "
               "in each tensor that has `requires_grad`, the gradient of the loss with respect to that tensor (its "
               "`.grad`)."),
    Reflection("Why must the gradients be zeroed after each step?",
               "`backward` adds to whatever is already in `.grad`. Without clearing, each step would use the sum of "
               "all gradients so far instead of the current one."),
    Reflection("What do you give a `Learner`?",
               "The DataLoaders, the model, the loss function, an optimiser function (how to build the optimiser "
               "from the parameters and a learning rate) and, optionally, metrics to print."),
    Reflection("Write Python or pseudocode for a training loop.",
               "for epoch in range(n_epochs): for x, y in train_loader: loss = loss_func(model(x), y); "
               "loss.backward(); opt.step(); opt.zero_grad(); then measure the metric on the validation set."),
    ValueExercise("ReLU replaces negative numbers with zero. What is `F.relu` of `[-2., -1., 0., 1., 2.]`?",
                  expected=torch.tensor([0.0, 0.0, 0.0, 1.0, 2.0]),
                  wrong_answers=[torch.tensor([2.0, 1.0, 0.0, 1.0, 2.0]), torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]),
                                 torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0])],
                  hints=["max(x, 0) for each entry."],
                  solution="answer = F.relu(torch.tensor([-2., -1., 0., 1., 2.]))",
                  explanation=("ReLU keeps every positive value and puts 0 for everything else, so "
                               "the three values up to 0 become 0 and 1 and 2 stay as they are.")),
    Reflection("What is an activation function?",
               "A nonlinear function applied between linear layers (ReLU, sigmoid...). Without one, stacked linear "
               "layers collapse into a single linear layer; with one, the network can bend its decision boundary."),
    ChoiceExercise("What is the difference between `F.relu` and `nn.ReLU`?",
                   ["none in what they compute: one is a function, the other a module to put in nn.Sequential",
                    "nn.ReLU has learnable parameters and F.relu does not",
                    "F.relu works only on the CPU"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["Count the parameters: `list(nn.ReLU().parameters())`."],
                   explanation=("Both compute max(x, 0) and neither has parameters; nn.ReLU wraps "
                                "the function in a module so it can sit in nn.Sequential between "
                                "layers.")),
    Reflection("One nonlinearity is in theory enough to approximate any function. Why use more layers?",
               "The book's answer: deeper networks reach the same accuracy with far fewer parameters, train faster "
               "and generalise better in practice; a single huge hidden layer would need an impractical number of "
               "units. (Notebook 00's 200 validation digits cannot show this: its small ResNet and simple_net are "
               "within the noise.)"),
])

progress = track_set(globals())
