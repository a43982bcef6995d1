"""Exercises and questionnaire of notebook 09, tabular data with embeddings.

Use them with ``from helpers.exercise_sets import nb09 as ex``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from helpers.exercises import ChoiceExercise, FunctionExercise, Questionnaire, Reflection, ValueExercise, track_set
from helpers.tabular import TabularModel, city_mean_preds, emb_sz_rule, rmspe

# ==== in the lesson ===============================================================================================

# ---- widths: the rule of thumb on this table's columns -------------------------------------------------------

widths = ValueExercise(
    """The training rows hold 46 cities and 12 months. Categorify adds its "#na#" level to each column. Give the
    embedding widths fastai's rule `min(600, round(1.6 * n ** 0.56))` makes for `city` and `Month`, in that order,
    as a list of 2 integers (n counts the levels, #na# included).""",
    expected=[emb_sz_rule(47), emb_sz_rule(13)],
    wrong_answers=[[emb_sz_rule(46), emb_sz_rule(12)],      # forgets #na#
                   [47, 13], [min(50, 47 // 2), min(50, 13 // 2)]],
    right_answers=[(14, 7), np.array([14, 7]), [14.0, 7.0]],
    hints=["n is 46 + 1 for the cities and 12 + 1 for the months.",
           "round(1.6 * 47 ** 0.56) and round(1.6 * 13 ** 0.56)."],
    solution="answer = [round(1.6 * 47 ** 0.56), round(1.6 * 13 ** 0.56)]   # [14, 7]",
    explanation=("With #na# the columns have 47 and 13 levels, and 1.6 * n ** 0.56 rounds to 14 and 7: wide enough "
                 "for cities to differ in several ways, far narrower than a 47-wide one-hot vector."),
)

# ---- forward: the learner writes TabularModel's forward pass -------------------------------------------------------


def _forward_cases() -> list[tuple]:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cases = []
        for emb_szs, n_cont, y_range in (([(5, 3), (4, 2)], 2, (0.0, 5.0)), ([(6, 4)], 3, None)):
            model = TabularModel(emb_szs, n_cont, 1, [8, 4], y_range=y_range).eval()
            model.bn_cont.running_mean.fill_(2.0)   # so that skipping the BatchNorm of the numbers shows
            model.bn_cont.running_var.fill_(9.0)
            x_cat = torch.stack([torch.randint(0, n, (5,)) for n, _ in emb_szs], dim=1)
            cases.append((model, x_cat, torch.randn(5, n_cont) * 3 + 2))
    return cases


def _forward(model, x_cat, x_cont):
    return model(x_cat, x_cont)


def _no_bn_cont(model, x_cat, x_cont):
    embedded = torch.cat([e(x_cat[:, i]) for i, e in enumerate(model.embeds)], dim=1)
    return model.layers(torch.cat([model.emb_drop(embedded), x_cont], dim=1))


def _numbers_first(model, x_cat, x_cont):
    embedded = torch.cat([e(x_cat[:, i]) for i, e in enumerate(model.embeds)], dim=1)
    return model.layers(torch.cat([model.bn_cont(x_cont), model.emb_drop(embedded)], dim=1))


forward = FunctionExercise(
    """Write `tabular_forward(model, x_cat, x_cont)`, the forward pass of a `TabularModel` (use its parts, not
    `model(...)`): look up column i of `x_cat` in `model.embeds[i]` for every i and concatenate the results along
    dim 1, pass that through `model.emb_drop`; pass `x_cont` through `model.bn_cont`; concatenate the two (the
    embeddings first) and run `model.layers` on it.""",
    reference=_forward, test_cases=_forward_cases(),
    wrong_answers=[_no_bn_cont, _numbers_first],
    right_answers=[lambda m, c, x: m.layers(torch.cat([m.emb_drop(torch.cat([e(col) for e, col in zip(m.embeds, c.T)],
                                                                            dim=1)), m.bn_cont(x)], dim=1))],
    hints=["`torch.cat([emb(x_cat[:, i]) for i, emb in enumerate(model.embeds)], dim=1)` gives the embeddings side by "
           "side.",
           "The numbers go through `model.bn_cont` before they join; the embeddings come first in the concatenation."],
    solution="""
    def tabular_forward(model, x_cat, x_cont):
        embedded = torch.cat([emb(x_cat[:, i]) for i, emb in enumerate(model.embeds)], dim=1)
        joined = torch.cat([model.emb_drop(embedded), model.bn_cont(x_cont)], dim=1)
        return model.layers(joined)
    """,
    explanation=("Each categorical column picks a row of its own embedding; the rows sit side by side, get "
                 "embedding dropout, and are joined by the batch-normalised numbers; the Linear blocks (and the "
                 "sigmoid range) do the rest."),
)

# ---- city_mean: the per-city baseline --------------------------------------------------------------------------------

_TRAIN = pd.DataFrame({"city": ["a", "a", "b", "c", "c", "c"], "sales": [10.0, 30.0, 5.0, 1.0, 2.0, 9.0]})
city_mean = FunctionExercise(
    """Write `city_mean_forecast(train_df, rows)`: for each row of the frame `rows`, the mean `sales` of its `city`
    in `train_df`; a city that `train_df` never saw gets the mean of all of `train_df`'s sales. Return a NumPy array
    with one value per row of `rows`.""",
    reference=city_mean_preds,
    test_cases=[(_TRAIN, pd.DataFrame({"city": ["c", "a", "b", "a"]})),
                (_TRAIN, pd.DataFrame({"city": ["z", "b"]})),
                (_TRAIN.iloc[:3], pd.DataFrame({"city": ["a", "c"]}))],
    wrong_answers=[lambda tr, rows: np.full(len(rows), tr.sales.mean()),                            # one mean for all
                   lambda tr, rows: rows.city.map(tr.groupby("city").sales.median()).fillna(tr.sales.mean()).to_numpy(),
                   lambda tr, rows: rows.city.map(tr.groupby("city").sales.mean()).fillna(0).to_numpy()],  # unseen: 0
    right_answers=[lambda tr, rows: [tr.sales[tr.city == c].mean() if (tr.city == c).any() else tr.sales.mean()
                                     for c in rows.city]],
    hints=["`train_df.groupby('city').sales.mean()` is a Series indexed by city.",
           "`rows.city.map(that_series)` gives NaN for an unseen city: `.fillna(train_df.sales.mean())`, then "
           "`.to_numpy()`."],
    solution="""
    def city_mean_forecast(train_df, rows):
        means = train_df.groupby("city").sales.mean()
        return rows.city.map(means).fillna(train_df.sales.mean()).to_numpy()
    """,
    explanation=("Each city keeps its own level, which the training mean throws away; with a percentage metric "
                 "that level is most of the error, so this is the first baseline a model must beat."),
)

# ==== after the lesson ============================================================================================

# ---- q1: embedding widths ---------------------------------------------------------------------------------

q1 = ValueExercise(
    """A table has a weekday column (7 values), an hour column (24 values) and a store column (1,115 stores).
    Give fastai's embedding widths for the three, in that order, as a list of 3 integers. Count the levels as
    Categorify makes them: each column's values plus the "#na#" level it adds at index 0.""",
    expected=[emb_sz_rule(7 + 1), emb_sz_rule(24 + 1), emb_sz_rule(1115 + 1)],
    wrong_answers=[[min(50, (c + 1) // 2) for c in (7, 24, 1115)],   # fastai v0.7's old rule
                   [7, 24, 1115],                                      # the cardinalities themselves
                   [emb_sz_rule(7) + 1, emb_sz_rule(24) + 1, emb_sz_rule(1115) + 1]],
    right_answers=[(5, 10, 81), np.array([5, 10, 81])],
    hints=["The rule is min(600, round(1.6 * n ** 0.56)).",
           "n counts the #na# level that Categorify adds: 8, 25 and 1,116 levels."],
    solution="""
    from helpers.tabular import emb_sz_rule
    answer = [emb_sz_rule(7 + 1), emb_sz_rule(24 + 1), emb_sz_rule(1115 + 1)]   # [5, 10, 81]
    """,
    explanation=("fastai's width is min(600, round(1.6 * n ** 0.56)) for n levels, and Categorify's #na# level "
                 "makes n = 8, 25 and 1,116: widths 5, 10 and 81."),
)

# ---- q2: counting parameters ------------------------------------------------------------------------------------

_Q2_TOTAL = (8 * 5 + 25 * 10) + 2 * 4 + (19 * 100 + 2 * 100) + (100 * 50 + 2 * 50) + (50 * 1 + 1)

q2 = ValueExercise(
    """How many parameters has `TabularModel([(8, 5), (25, 10)], n_cont=4, out_sz=1, layers=[100, 50])`?
    Work it out by hand first (embeddings, the BatchNorm of the continuous columns, each block, the last layer),
    then check with `sum(p.numel() for p in model.parameters())`.""",
    expected=_Q2_TOTAL,
    wrong_answers=[_Q2_TOTAL + 150,        # a bias on every Linear, although BatchNorm follows the hidden ones
                   _Q2_TOTAL - 290,        # forgets the embeddings
                   _Q2_TOTAL - 300 - 8],   # forgets every BatchNorm
    right_answers=[float(_Q2_TOTAL)],
    hints=["Embeddings: 8*5 + 25*10. The continuous BatchNorm has a weight and a bias per column.",
           "A hidden Linear has no bias (the BatchNorm after it has one); the input to the first is 5 + 10 + 4 wide."],
    solution=f"""
    embeddings 8*5 + 25*10 = 290; BatchNorm of 4 columns = 8
    Linear 19->100 (no bias) 1900 + BatchNorm 200; Linear 100->50 5000 + BatchNorm 100; Linear 50->1 with bias 51
    answer = {_Q2_TOTAL}
    """,
    explanation=("The embeddings hold 8*5 + 25*10 = 290, the continuous BatchNorm 8; the hidden layers have no "
                 "bias since a BatchNorm follows them (1,900 + 200 and 5,000 + 100), and the last layer has 50 "
                 "weights and one bias: 7,549."),
)

# ---- q3: RMSPE ------------------------------------------------------------------------------------------------------


def _rmspe_numpy(preds, targs):
    preds, targs = np.asarray(preds, dtype=np.float64), np.asarray(targs, dtype=np.float64)
    return math.sqrt(np.mean(((targs - preds) / targs) ** 2))


_T = torch.tensor
q3 = FunctionExercise(
    """Write `my_rmspe(preds, targs)`: the root mean squared percentage error of two 1-d tensors,
    sqrt(mean(((targ - pred) / targ) ** 2)).""",
    reference=rmspe,
    test_cases=[(_T([110.0, 90.0]), _T([100.0, 100.0])), (_T([1.0, 2.0, 3.0]), _T([2.0, 2.0, 6.0])),
                (_T([50.0]), _T([40.0]))],
    wrong_answers=[lambda p, t: (((t - p) / p) ** 2).mean().sqrt(),      # divides by the prediction
                   lambda p, t: ((t - p) ** 2).mean().sqrt(),            # plain RMSE
                   lambda p, t: ((t - p) / t).abs().mean()],             # mean absolute percentage error
    right_answers=[lambda p, t: torch.tensor(_rmspe_numpy(p, t)),
                   lambda p, t: torch.sqrt(torch.mean((1 - p / t) ** 2))],
    hints=["Each row's error is divided by that row's target, so big and small rows count alike.",
           "Square, average, then take the square root: `(((targs - preds) / targs) ** 2).mean().sqrt()`."],
    solution="""
    def my_rmspe(preds, targs):
        return (((targs - preds) / targs) ** 2).mean().sqrt()
    """,
    explanation=("Each row's error is divided by its own target before squaring, so a miss of 10 on a target of "
                 "100 weighs as much as a miss of 1 on a target of 10."),
)

# ---- q4: Categorify by hand -----------------------------------------------------------------------------------------


def _categorify(train_values, values):
    vocab = ["#na#"] + sorted({v for v in train_values if v is not None})
    return [vocab.index(v) if v in vocab[1:] else 0 for v in values]


q4 = FunctionExercise(
    """Write `categorify(train_values, values)`: build the vocabulary from `train_values` the way Categorify does
    (index 0 is "#na#", then the distinct values, sorted), and return the index of each of `values`, with 0 for
    a value that is None or was never seen in training. Both arguments are lists.""",
    reference=_categorify,
    test_cases=[(["b", "a", "b"], ["a", "c", None, "b"]), ([3, 1, 2], [1, 2, 3, 4]),
                (["x", None, "y"], ["y", "x", "z"])],
    wrong_answers=[# no #na# slot
                   lambda tr, vs: [sorted(set(tr) - {None}).index(v) if v in tr and v is not None else 0 for v in vs],
                   # the vocabulary taken from the new values
                   lambda tr, vs: [sorted(set(vs) - {None}).index(v) + 1 if v is not None else 0 for v in vs],
                   # an unsorted vocabulary
                   lambda tr, vs: [list(dict.fromkeys(tr)).index(v) + 1 if v in tr and v is not None else 0
                                   for v in vs]],
    right_answers=[lambda tr, vs: [{v: i + 1 for i, v in enumerate(sorted(set(tr) - {None}))}.get(v, 0) for v in vs]],
    hints=["vocab = ['#na#'] + sorted(set of the training values that are not None).",
           "Anything not in the vocabulary (or None) gets 0; a dict from value to index with .get(v, 0) does it."],
    solution="""
    def categorify(train_values, values):
        vocab = ["#na#"] + sorted({v for v in train_values if v is not None})
        index = {v: i for i, v in enumerate(vocab) if i > 0}
        return [index.get(v, 0) for v in values]
    """,
    explanation=("The vocabulary comes from the training values alone, sorted, behind #na# at index 0; anything "
                 "missing or unseen in training maps to 0."),
)

# ---- q5: where preprocessing learns ----------------------------------------------------------------------------------

q5 = ChoiceExercise(
    "Normalize subtracts a mean from each continuous column. Which rows should that mean be computed from?",
    ["the training rows only, then applied unchanged to validation and to new data",
     "all rows, training and validation together, so the statistics are more accurate",
     "each set separately: training rows for training, validation rows for validation",
     "each batch, as it arrives"],
    answer="a", wrong_answers=["b", "c", "d"],
    hints=["At inference there is one new row: what mean could you compute from it?",
           "Statistics from validation rows let information from the answers' side leak into the model's inputs."],
    solution="The same numbers must mean the same thing at training, validation and inference time, and only the "
             "training rows are available when the model is built.",
    explanation=("The statistics become part of the model, and at inference there is only the new row: they must "
                 "come from the training rows and be reused unchanged everywhere."),
)

# ---- q6: repeat an experiment ----------------------------------------------------------------------------------------

q6 = Reflection(
    "Add a third seed (`seed=2`) to the embedding-dropout comparison, and then a third setting, `embed_p=0.3`. Does "
    "the verdict printed by `compare_seeds` change? What would you need before claiming embedding dropout helps "
    "on this table?",
    "Compare the verdict lines, not the RMSPEs alone. The noise printed from seeds covers the training run itself "
    "(initial weights, "
    "batch order, dropout masks), not the choice of validation period. A claim needs several seeds per setting, "
    "a mean difference larger than its spread, and ideally a second validation period. With a 7,000-row table and a "
    "few "
    "epochs there is little overfitting for dropout to prevent, so a small or unstable effect is what to expect.",
)

# ---- the questionnaire -----------------------------------------------------------------------------------------------

questionnaire = Questionnaire([
    Reflection("What is the difference between a categorical and a continuous column? Give an integer column that "
               "is better treated as categorical, and one that is better left continuous, and say why.",
               "A continuous column is a quantity: its size and differences mean something (listings, price). A "
               "categorical "
               "column is a label from a fixed set (city). A month number is an integer but categorical: 12 is not "
               "twelve "
               "times 1 and December neighbours January, so each month is better given its own learned vector. A year "
               "or "
               "an elapsed time is better continuous when the model must carry a trend into years it never saw; as a "
               "category every new year would be unknown."),
    ChoiceExercise("Looking up row i of an embedding matrix gives the same result as ...",
                   ["multiplying a one-hot vector (1 at position i) by the embedding matrix",
                    "multiplying the integer i by the embedding matrix",
                    "a softmax over the matrix's row i"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["A vector with a single 1 picks out one row in a matrix product."],
                   explanation=("Multiplying a one-hot vector by a matrix adds up the rows "
                                "weighted by the vector's entries, which keeps row i alone; an "
                                "embedding is that product done as a lookup.")),
    Reflection("Why is the tabular model trained on log(sales), and why is it judged with RMSPE rather than RMSE?",
               "Sales span orders of magnitude, and what matters is the relative error: missing by 50 is terrible for "
               "a "
               "town selling 60 homes and negligible for Houston. RMSE would be dominated by the big cities. RMSPE "
               "divides "
               "each error by its target, so every row counts by its relative miss. Squared errors of log(sales) are "
               "close "
               "to squared relative errors when they are small, so training on the log with MSE optimises nearly the "
               "right thing."),
    ChoiceExercise("Why is the top of `y_range` set a little above the largest training target?",
                   ["a sigmoid reaches its ends only at infinity, so the largest values would be unreachable otherwise",
                    "to leave room for the validation set's outliers, which are always larger",
                    "because the log makes every target smaller"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["What input would sigmoid_range need to output exactly its top?"],
                   explanation=("sigmoid_range reaches its ends only for infinite inputs, so the "
                                "top of the range must lie a little above the largest target for "
                                "the model to be able to predict it.")),
    Reflection("Why is the validation set the most recent period here, rather than a random 20% of the rows?",
               "The model will be used to predict the future. A random split lets it see the months around each "
               "validation "
               "month (and other cities in the same month), which is easier than the real task and flatters the score. "
               "Holding out the latest period tests what we will actually ask of it, including trends it must "
               "extrapolate."),
    ValueExercise("After Categorify, how many rows does the embedding matrix of a column with 46 distinct training "
                  "values have? (an integer)",
                  expected=47, wrong_answers=[46, 45, emb_sz_rule(47)], right_answers=[47.0],
                  hints=["Categorify adds one level at index 0."],
                  solution="answer = 47   # the 46 cities plus #na#",
                  explanation=("Categorify gives each of the 46 training values a row and adds #na# "
                               "at index 0 for missing and unseen values: 47 rows.")),
    Reflection("What does embedding dropout do during training, and what does it do at validation or inference time?",
               "During training it zeroes each number of the concatenated embedding vector with probability embed_p "
               "and "
               "scales the others by 1 / (1 - embed_p), so the expected value is unchanged; the model cannot rely on "
               "any "
               "single coordinate of any single category. At validation and inference it does nothing at all (the "
               "identity)."),
    Reflection("Besides filling gaps with the median, what does FillMissing add to the table, and why?",
               "A boolean column <name>_na that records which rows were missing, treated as a category. Missingness "
               "can "
               "carry information (a city that did not report listings may differ from one that did), and the flag "
               "lets "
               "the model tell a real median value from a filled-in one."),
    Reflection("When would you reach for gradient-boosted trees rather than a neural network on a table, and when for "
               "the network?",
               "Trees are the strong default: little preprocessing, fast, robust on small tables, and often as good or "
               "better. A network earns its place with many high-cardinality categories (embeddings can share what "
               "similar "
               "levels have in common, and can be reused elsewhere), with very large data, or when mixed with text or "
               "images. The honest answer is to try both on the same validation set, as the notebook does."),
    Reflection("What can a 2-D PCA plot of an embedding show, and what can it not?",
               "It shows the two directions along which the learned vectors differ most, so structure the model found "
               "(seasons among months, similar cities close together) can appear without anyone labelling it. It "
               "cannot "
               "show what lies in the other dimensions, the axes have no fixed meaning (a different seed can rotate or "
               "flip "
               "them), and closeness in the plot is only closeness in those two directions."),
])

progress = track_set(globals())
