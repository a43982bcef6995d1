"""Exercises and questionnaire of notebook 03, cross-entropy by hand.

Use them with ``from helpers.exercise_sets import nb03 as ex``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from helpers.exercises import ChoiceExercise, FunctionExercise, Questionnaire, Reflection, ValueExercise, track_set


def _softmax_last(x: torch.Tensor) -> torch.Tensor:
    exps = x.exp()
    return exps / exps.sum(dim=-1, keepdim=True)


def _stable_softmax_last(x: torch.Tensor) -> torch.Tensor:
    exps = (x - x.max(dim=-1, keepdim=True).values).exp()
    return exps / exps.sum(dim=-1, keepdim=True)


def _pick_targets(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return probs[torch.arange(len(targets)), targets]


ROWS = torch.tensor([[0.6734, 0.2576], [0.4689, 0.4607], [-2.2457, -0.3727]])
TABLE_ACTS = torch.tensor([-1.0, 0.5, 3.0])
GRAD_LOGITS = torch.tensor([[1.5, -0.5, 0.2], [0.0, 2.0, -1.0]])
GRAD_TARGETS = torch.tensor([2, 1])

# ---- in the lesson: each one before the notebook shows its own version ----------------------------------

def _softmax_rows(x: torch.Tensor) -> torch.Tensor:
    exps = x.exp()
    return exps / exps.sum(dim=1, keepdim=True)


def _nll_by_hand(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -inputs[torch.arange(len(targets)), targets].mean()


def _log_softmax_rows(x: torch.Tensor) -> torch.Tensor:
    shifted = x - x.max(dim=1, keepdim=True).values
    return shifted - shifted.exp().sum(dim=1, keepdim=True).log()


softmax_rows = FunctionExercise(
    """Write `softmax_by_hand(x)` for a batch `x` of activations (images x classes): exponentiate every activation,
    then divide by the sum of the exponentials of its own row (`dim=1`), so that every row sums to 1.""",
    reference=_softmax_rows,
    test_cases=[ROWS, torch.tensor([[0.02, -2.49, 1.25]]), torch.zeros(2, 4)],
    hints=["`torch.exp(x)` is positive everywhere; `.sum(dim=1, keepdim=True)` gives one total per row, as a column.",
           "Without `keepdim=True` the totals form a row vector, and the division would not pair each row with its own "
           "total."],
    solution="""
    def softmax_by_hand(x):
        return torch.exp(x) / torch.exp(x).sum(dim=1, keepdim=True)
    """,
    wrong_answers=[lambda x: x.exp() / x.exp().sum(),                    # one total for the whole batch
                   lambda x: x.exp() / x.exp().sum(dim=0, keepdim=True),  # totals per column
                   lambda x: x.sigmoid()],                                # a sigmoid per column: rows do not sum to 1
    right_answers=[lambda x: torch.softmax(x, dim=1),
                   lambda x: x.exp() / x.exp().sum(-1)[:, None],
                   lambda x: (x - x.logsumexp(dim=1, keepdim=True)).exp()],
    explanation=("The exponentials are positive, and dividing each by its own row's total makes every row add up to "
                 "1; keepdim=True keeps the totals as a column so the division pairs each row with its own total."),
)

nll_by_hand = FunctionExercise(
    """Write `nll_by_hand(inputs, targets)`: what `F.nll_loss` computes by default. For every row `i` of `inputs`
    (images x classes), take the value in column `targets[i]`, negate it, and average over the rows. No log.""",
    reference=_nll_by_hand,
    test_cases=[(torch.softmax(ROWS, dim=1), torch.tensor([0, 1, 0])),
                (torch.log_softmax(GRAD_LOGITS, dim=1), GRAD_TARGETS),
                (torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]), torch.tensor([2, 0]))],
    hints=["Index with two things at once: `inputs[range(n), targets]` pairs row 0 with targets[0], row 1 with "
           "targets[1], ...",
           "Then a minus sign and `.mean()`."],
    solution="""
    def nll_by_hand(inputs, targets):
        return -inputs[range(len(targets)), targets].mean()
    """,
    wrong_answers=[lambda x, t: -x[range(len(t)), t].log().mean(),  # takes a log: nll_loss does not
                   lambda x, t: x[range(len(t)), t].mean(),         # forgets the minus sign
                   lambda x, t: -x[:, t].mean()],                   # every row with every target
    right_answers=[lambda x, t: F.nll_loss(x, t),
                   lambda x, t: -x.gather(1, t[:, None]).mean(),
                   lambda x, t: -torch.stack([row[k] for row, k in zip(x, t)]).mean()],
    explanation=("nll_loss only picks each row's target column, negates it and averages; the log has to be taken "
                 "before, which is why it is fed log_softmax's output."),
)

log_softmax_rows = FunctionExercise(
    """Write `log_softmax_by_hand(x)` for a batch (`dim=1`) that stays finite for rows like `[1000., 0., -1000.]`:
    subtract each row's maximum, then subtract the log of the sum of the exponentials of the shifted row.
    Use `.exp()`, `.sum()`, `.log()` and `.max()` (not `torch.log_softmax` or `torch.logsumexp`).""",
    reference=_log_softmax_rows,
    test_cases=[torch.tensor([[1000.0, 0.0, -1000.0]]), torch.tensor([[0.0, -120.0], [800.0, 805.0]]), ROWS],
    hints=["log(softmax(x)) = x - log(sum(exp(x))), and subtracting the row's maximum m first changes nothing "
           "(log(sum(exp(x))) = m + log(sum(exp(x - m)))).",
           "`shifted = x - x.max(dim=1, keepdim=True).values`, then `shifted - shifted.exp().sum(dim=1, "
           "keepdim=True).log()`."],
    solution="""
    def log_softmax_by_hand(x):
        shifted = x - x.max(dim=1, keepdim=True).values           # the largest exponent is 0: nothing overflows
        return shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    """,
    wrong_answers=[lambda x: _softmax_rows(x).log(),                                   # nan at 1000, -inf at -120
                   lambda x: x - x.exp().sum(dim=1, keepdim=True).log(),               # unshifted: overflows
                   lambda x: (x - x.max()) - (x - x.max()).exp().sum(dim=1, keepdim=True).log()],  # one max per batch
    right_answers=[lambda x: torch.log_softmax(x, dim=1),
                   lambda x: x - x.logsumexp(dim=1, keepdim=True),
                   lambda x: (x - x.amax(1, keepdim=True)
                              - (x - x.amax(1, keepdim=True)).exp().sum(1, keepdim=True).log())],
    explanation=("log(exp(x_i) / sum exp(x_j)) is x_i minus the log of the sum; shifting the row by its maximum "
                 "keeps every exponential at most 1, so nothing overflows and no probability rounds to 0 before the "
                 "log."),
)

q1 = FunctionExercise(
    """Write `my_softmax(x)`: the softmax over the LAST dimension of a tensor, using only `.exp()` and `.sum()`.
    It should work for one row of activations and for a batch of rows.""",
    reference=_softmax_last,
    test_cases=[torch.tensor([0.02, -2.49, 1.25]), ROWS, torch.zeros(2, 4)],
    hints=["Exponentiate every activation, then divide by the sum of the exponentials of its own row.",
           "For a batch, sum along the last dimension and keep it (`keepdim=True`) so the division broadcasts row by "
           "row."],
    solution="""
    def my_softmax(x):
        exponentials = x.exp()
        return exponentials / exponentials.sum(dim=-1, keepdim=True)
    """,
    wrong_answers=[lambda x: x.exp() / x.exp().sum(),          # sums over the whole batch, not per row
                   lambda x: x.exp(),                          # forgets to normalise
                   lambda x: x / x.sum(dim=-1, keepdim=True)],  # normalises without exp
    right_answers=[lambda x: torch.softmax(x, dim=-1),
                   lambda x: x.exp() / x.exp().sum(-1).unsqueeze(-1),
                   lambda x: torch.exp(x) / torch.sum(torch.exp(x), dim=x.dim() - 1, keepdim=True)],
    explanation=("Exponentials are positive and dividing each by its own row's sum makes the row add up to 1; "
                 "keepdim=True keeps the row sums as a column so the division is done row by row."),
)

q2 = ValueExercise(
    """The notebook's table shows exp and softmax for `[0.02, -2.49, 1.25]`. Now do it for `[-1.0, 0.5, 3.0]`:
    `answer = (exps, probs)` with the exponential of each activation and its softmax """
    """(two lists or tensors of 3 numbers).""",
    expected=(TABLE_ACTS.exp(), torch.softmax(TABLE_ACTS, dim=0)),
    decimals=2,
    hints=["exp(0) is 1, exp(-1) is about 0.37, and exp(3) is about 20.",
           "Each probability is its exponential divided by the sum of all three exponentials."],
    solution="""
    acts = torch.tensor([-1.0, 0.5, 3.0])
    exps = acts.exp()                   # about [0.37, 1.65, 20.09]
    answer = (exps, exps / exps.sum())  # about [0.017, 0.075, 0.909]
    """,
    wrong_answers=[(TABLE_ACTS.exp(), TABLE_ACTS.exp() / TABLE_ACTS.exp().max()),   # divides by the largest
                   (TABLE_ACTS.exp(), TABLE_ACTS / TABLE_ACTS.sum()),                # normalises the raw activations
                   (TABLE_ACTS.exp(), torch.sigmoid(TABLE_ACTS))],                  # sigmoid per class
    right_answers=[([0.37, 1.65, 20.09], [0.02, 0.07, 0.91]),                           # two decimals, as promised
                   [TABLE_ACTS.exp().tolist(), F.softmax(TABLE_ACTS, dim=-1).tolist()],
                   (TABLE_ACTS.exp().numpy(), (TABLE_ACTS.exp() / TABLE_ACTS.exp().sum()).numpy())],
    explanation=("exp(-1), exp(0.5) and exp(3) are about 0.37, 1.65 and 20.09; each divided by their sum (about "
                 "22.10) gives the probabilities, which add up to 1."),
)

q3 = FunctionExercise(
    "Write `stable_softmax(x)` over the last dimension that stays finite for activations like "
    "`[1000., 0., -1000.]`.",
    reference=_stable_softmax_last,
    test_cases=[torch.tensor([1000.0, 0.0, -1000.0]), torch.tensor([[800.0, 805.0], [-3.0, 2.0]]), ROWS],
    hints=["exp(1000.) is inf in float32, and inf / inf is nan.",
           "Adding the same number to every activation of a row leaves its softmax unchanged: which number keeps exp "
           "small?"],
    solution="""
    def stable_softmax(x):
        shifted = x - x.max(dim=-1, keepdim=True).values   # the largest becomes 0, so exp(...) <= 1
        exponentials = shifted.exp()
        return exponentials / exponentials.sum(dim=-1, keepdim=True)
    """,
    wrong_answers=[_softmax_last,                                                    # overflows to nan
                   lambda x: _softmax_last(x - x.max()),                             # one max for the whole batch
                   # rescales the row: a different softmax
                   lambda x: _softmax_last(x / x.abs().max(dim=-1, keepdim=True).values)],
    right_answers=[lambda x: torch.softmax(x, dim=-1),
                   lambda x: (x - x.logsumexp(dim=-1, keepdim=True)).exp(),
                   lambda x: _softmax_last(x - x.amax(dim=-1, keepdim=True))],
    explanation=("Softmax does not change when the same number is subtracted from a whole row, and subtracting "
                 "the row's maximum makes the largest exponent 0, so nothing overflows."),
)

q4 = FunctionExercise(
    "Write `pick_targets(probs, targets)`: for each row `i` of `probs` (batch x classes), the value in column "
    "`targets[i]`.",
    reference=_pick_targets,
    test_cases=[(torch.softmax(ROWS, dim=1), torch.tensor([0, 1, 0])),
                (torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]), torch.tensor([2, 0]))],
    hints=["Index with two things at once: a row index for every item and the target column for every item.",
           "`probs[range(n), targets]` pairs row 0 with targets[0], row 1 with targets[1], ..."],
    solution="""
    def pick_targets(probs, targets):
        rows = torch.arange(len(targets))
        return probs[rows, targets]
    """,
    wrong_answers=[lambda p, t: p[:, t],   # every row with every target: a square, not one value per row
                   lambda p, t: p[t],      # picks rows, not columns
                   lambda p, t: p[:, 0]],  # always the first column
    right_answers=[lambda p, t: p.gather(1, t[:, None]).squeeze(1),
                   lambda p, t: p[range(len(t)), t],
                   lambda p, t: torch.stack([row[target] for row, target in zip(p, t)])],
    explanation=("Indexing with two tensors pairs them up: probs[rows, targets] takes row i at column targets[i], "
                 "which gives one value per item."),
)

q5 = ValueExercise(
    """The model gives the correct class of an image probability 0.5. What is that image's cross-entropy loss
    (natural log)?""",
    expected=math.log(2),
    decimals=3,
    right_answers=[0.693, -math.log(0.5), torch.tensor(0.5).log().neg()],
    hints=["Cross-entropy for one item is minus the log of the probability of its correct class."],
    solution="answer = -math.log(0.5)   # = log(2), about 0.693",
    wrong_answers=[0.5, -math.log(2), math.log10(2)],
    explanation=("The loss of one item is minus the log of the probability given to its correct class: -log(0.5) "
                 "= log(2), about 0.693."),
)

q6 = ValueExercise(
    """Without autograd: the gradient of `cross_entropy(logits, targets, reduction="sum")` with respect to
    `logits = [[1.5, -0.5, 0.2], [0.0, 2.0, -1.0]]`, `targets = [2, 1]`. Give a 2 x 3 tensor.""",
    expected=torch.softmax(GRAD_LOGITS, dim=1) - F.one_hot(GRAD_TARGETS, 3),
    decimals=4,
    right_answers=[(torch.softmax(GRAD_LOGITS, dim=1) - F.one_hot(GRAD_TARGETS, 3)).round(decimals=4).tolist(),
                   torch.softmax(GRAD_LOGITS.double(), dim=1) - torch.eye(3, dtype=torch.float64)[GRAD_TARGETS]],
    hints=["The notebook shows it is a difference of two 2 x 3 tensors you already know how to build.",
           "softmax of each row, minus a tensor with a single 1 in each row at the target's column."],
    solution="""
    logits = torch.tensor([[1.5, -0.5, 0.2], [0.0, 2.0, -1.0]])
    targets = torch.tensor([2, 1])
    answer = torch.softmax(logits, dim=1) - F.one_hot(targets, 3)
    """,
    wrong_answers=[torch.softmax(GRAD_LOGITS, dim=1),                                  # forgets the one-hot
                   F.one_hot(GRAD_TARGETS, 3) - torch.softmax(GRAD_LOGITS, dim=1)],    # sign flipped
    explanation=("For softmax followed by the negative log-likelihood, the gradient with respect to each logit is "
                 "its probability minus 1 for the target class and minus 0 for the others: softmax(logits) - "
                 "one_hot(targets)."),
)

questionnaire = Questionnaire([
    Reflection("Name the pieces that `nn.CrossEntropyLoss` chains together, in order, and say what each does.",
               "Softmax turns each row of activations into positive numbers that sum to 1; the log turns those "
               "probabilities into log-probabilities (PyTorch does both at once, stably, in log_softmax); nll_loss "
               "picks each item's target column and negates it; finally the losses are averaged over the batch."),
    ChoiceExercise("Which statement about the outputs of softmax over the classes is true?",
                   ["each is between 0 and 1 and together they sum to 1",
                    "each is between -1 and 1 and together they sum to 0",
                    "each is between 0 and 1, independently of the others, like a sigmoid per class"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["Try `torch.softmax(torch.randn(3), dim=0)` and look at the sum."],
                   explanation=("Softmax exponentiates (so every value is positive) and divides by "
                                "the sum (so the values add up to 1); each is therefore between 0 "
                                "and 1.")),
    Reflection("Why does softmax tend to single out one class, even when the activations are only a little apart?",
               "The exponential grows fast, so a slightly larger activation becomes a much larger exponential, and "
               "after "
               "dividing by the sum it takes most of the probability. That suits a model that must pick exactly one "
               "class."),
    ChoiceExercise("When would you NOT want softmax as the last activation?",
                   ["when every image shows exactly one of the classes",
                    "when an image can show several of the classes, or none of them",
                    "when there are more than two classes"],
                   answer="b", wrong_answers=["a", "c"],
                   hints=["Softmax's outputs must sum to 1. What if the right total is 2, or 0?"],
                   solution="Use a sigmoid per class instead (each class independently), with binary cross-entropy.",
                   explanation=("Softmax makes the classes compete for one unit of probability, "
                                "which is wrong when an image can hold several classes or none; a "
                                "sigmoid per class is the fit there.")),
    Reflection("The loss `torch.where(targets == 1, 1 - p, p).mean()` works for two classes. Why can it not be "
               "extended to three or more?",
               "torch.where chooses between two alternatives, because a condition is true or false, and it relies on "
               "one "
               "number p per item describing both classes (the other gets 1 - p). With more classes we need one "
               "probability "
               "per class and must pick the target's column by indexing, which is what nll_loss on a softmax does."),
    ValueExercise("What does `torch.log(torch.tensor(-2.))` give? Answer with the Python float it prints as.",
                  expected=float("nan"), wrong_answers=[math.log(2), -math.log(2), float("-inf")],
                  right_answers=[math.nan, torch.log(torch.tensor(-2.0)).item(), torch.tensor(float("nan"))],
                  hints=["Is there a real number whose exponential is negative?"],
                  solution="answer = float('nan')   # the log is only defined for positive numbers",
                  explanation=("The natural log is defined only for positive numbers, and PyTorch "
                               "returns nan (not a number) outside that domain instead of raising "
                               "an error.")),
    Reflection("Why is `log(-2)` not a number, and why does that never happen inside cross-entropy?",
               "exp(x) is positive for every real x, so no real number has an exponential of -2: the log of a negative "
               "number is undefined and PyTorch returns nan. Cross-entropy only takes logs of softmax outputs, which "
               "are "
               "always positive (PyTorch even computes log_softmax directly from the activations)."),
    ValueExercise("`nll_loss` takes no log. What does `F.nll_loss(torch.tensor([[0.6, 0.4]]), torch.tensor([0]))` "
                  "return? (a float)",
                  expected=-0.6, wrong_answers=[-math.log(0.6), 0.6, 0.4],
                  right_answers=[F.nll_loss(torch.tensor([[0.6, 0.4]]), torch.tensor([0])).item(), -3 / 5],
                  hints=["It picks the target's column and negates it: nothing else."],
                  solution="answer = -0.6   # it expects log-probabilities, so feed it log_softmax's output",
                  explanation=("nll_loss only picks the value at the target's column and negates "
                               "it; the log is expected to be taken before, by log_softmax.")),
    Reflection("Why take the log of the probability of the correct class rather than use the probability itself?",
               "Probabilities live between 0 and 1, so 0.99 and 0.999 look almost the same, yet the second is ten "
               "times "
               "less likely to be wrong (0.001 against 0.01). -log p stretches that range to 0..infinity: a confident "
               "mistake (p near 0) costs a lot and "
               "keeps a useful gradient, and products of probabilities become sums."),
    ChoiceExercise("The gradient of cross-entropy with respect to the logits is ...",
                   ["softmax(logits) - one_hot(target)", "one_hot(target) - softmax(logits)", "log_softmax(logits)"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["Gradient descent subtracts the gradient: which sign pushes the target's logit up?"],
                   explanation=("The derivative of -log softmax with respect to each logit is that "
                                "logit's probability minus 1 at the target and minus 0 elsewhere.")),
])

progress = track_set(globals())
