"""Tabular data with entity embeddings, the way fastai does it, in plain pandas and PyTorch (notebook 09).

The pieces, in the order the data flows through them::

    load_txhousing()                      a real table, shipped inside the plotnine package (no download)
    add_date_parts(df, "date")            a date becomes Year, Month, Week, ... columns
    TabularProcessor(cat_names, cont_names, y_name).fit(train_df)
        FillMissing -> Categorify -> Normalize, every statistic taken from the training rows only
    processor.dataset(df)                 a TabularDataset whose items are (x_cat, x_cont, y)
    tabular_dataloaders(train_ds, valid_ds)
    TabularModel(get_emb_szs(processor), n_cont, 1, [200, 100], y_range=log_y_range(...))
    exp_rmspe                             RMSPE on the original scale, for a model trained on log(target)

The names and the layer order are fastai's (``fastai/tabular/core.py`` and ``model.py``), so the book's code
maps onto this file line by line and a model here has exactly as many parameters as fastai's.
"""
from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from helpers.metrics import rmspe  # sqrt(mean(((targ - pred) / targ)^2)), shared with the Learner's metrics

__all__ = ["NA", "txhousing_path", "load_txhousing", "add_date_parts", "FillMissing", "Categorify", "Normalize",
           "TabularProcessor", "TabularDataset", "tabular_dataloaders", "emb_sz_rule", "get_emb_szs",
           "sigmoid_range", "SigmoidRange", "LinBnDrop", "TabularModel", "rmspe", "exp_rmspe", "log_y_range",
           "rmspe_margin"]

NA = "#na#"  # the level at index 0 of every categorical column: missing, or never seen in training

# --- the data -------------------------------------------------------------------------------------------

def txhousing_path() -> Path:
    """The CSV of Texas home sales (46 cities, monthly, 2000-2015) inside the installed plotnine package (notebook 09)."""
    # find_spec locates the package without importing it (importing plotnine would load its whole plotting stack).
    spec = importlib.util.find_spec("plotnine")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("plotnine is not installed, and notebook 09 reads its txhousing table from it: "
                                  "run `make install` (requirements.txt pins plotnine).")
    path = Path(spec.submodule_search_locations[0]) / "data" / "txhousing.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: this plotnine install is incomplete; reinstall it with `make install`.")
    return path


def load_txhousing() -> pd.DataFrame:
    """ggplot2's txhousing table: city, year, month, sales, volume, median, listings, inventory, date (notebook 09)."""
    return pd.read_csv(txhousing_path())


DATE_PARTS = ("Year", "Month", "Week", "Day", "Dayofweek", "Dayofyear", "Is_month_end", "Is_month_start",
              "Is_quarter_end", "Is_quarter_start", "Is_year_end", "Is_year_start")


def add_date_parts(df: pd.DataFrame, column: str, drop: bool = True) -> pd.DataFrame:
    """fastai's ``add_datepart``: a date column becomes Year, Month, Week, Day, ..., Elapsed (seconds) (notebook 09).

    The new columns are prefixed by the column's name without a trailing "date" ("saledate" -> "saleYear";
    "date" -> "Year"). Returns a new frame; the input is not changed.
    """
    _check_names(df, [column], "date")
    dates = df[column]
    if not pd.api.types.is_datetime64_any_dtype(dates):
        try:
            dates = pd.to_datetime(dates)
        except (ValueError, TypeError) as error:
            raise TypeError(f"column {column!r} is not a date and cannot be read as one ({error}); "
                            "build a datetime column first, e.g. pd.to_datetime(...).") from None
    prefix = column[:-4] if column.lower().endswith("date") else column
    out = df.copy()
    for part in DATE_PARTS:
        if part == "Week":
            values = dates.dt.isocalendar().week.astype("int64")
        else:  # pandas spells them year, month, day, day_of_week, day_of_year, is_month_end, ...
            values = getattr(dates.dt, part.lower().replace("dayof", "day_of_"))
        out[prefix + part] = values
    # Seconds since 1970: one continuous column that lets a model follow a trend across years.
    out[prefix + "Elapsed"] = dates.astype("datetime64[s]").astype("int64")
    return out.drop(columns=column) if drop else out


# --- checking what the learner passed -------------------------------------------------------------------

def _check_names(df: pd.DataFrame, names: Sequence[str], kind: str) -> None:
    if isinstance(names, str):
        raise TypeError(f"{kind} column names should be a list, e.g. [{names!r}], not the string {names!r}.")
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise KeyError(f"{kind} column(s) {missing} are not in the table; its columns are {list(df.columns)}.")


def _check_continuous(df: pd.DataFrame, names: Sequence[str]) -> None:
    for name in names:
        kind = df[name].dtype.kind
        if kind not in "biuf":
            raise TypeError(f"continuous column {name!r} holds {df[name].dtype} values such as {df[name].dropna().iloc[0]!r}, "
                            "not numbers: list it among the categorical columns, or convert it with pd.to_numeric.")


def _check_categorical(df: pd.DataFrame, names: Sequence[str]) -> None:
    for name in names:
        column = df[name]
        if column.dtype.kind == "f" and not np.all(np.mod(column.dropna(), 1) == 0):
            raise TypeError(f"categorical column {name!r} holds fractional numbers such as {column.dropna().iloc[0]!r}: "
                            "a quantity like that belongs among the continuous columns.")


# --- the three preprocessing steps (fastai's procs) -----------------------------------------------------

class FillMissing:
    """Fill missing continuous values with the training median, and add a boolean ``<name>_na`` column (notebook 09).

    A ``_na`` column is added for each column that has missing values in the *training* rows; a column that had
    none there is still filled (with its training median) if a gap turns up later, but cannot be flagged, since
    the model was built without a column for it.
    """

    def fit(self, df: pd.DataFrame, cont_names: Sequence[str]) -> FillMissing:
        self.cont_names = list(cont_names)
        self.medians = {n: float(df[n].median()) for n in self.cont_names}
        empty = [n for n, m in self.medians.items() if math.isnan(m)]
        if empty:
            raise ValueError(f"continuous column(s) {empty} have no values at all in the training rows: drop them.")
        self.na_names = [n for n in self.cont_names if df[n].isna().any()]
        return self

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for name in self.na_names:
            df[name + "_na"] = df[name].isna()
        for name in self.cont_names:
            df[name] = df[name].fillna(self.medians[name])
        return df


class Categorify:
    """Replace each category by its index in a vocabulary built from the training rows; 0 is ``#na#`` (notebook 09).

    ``#na#`` stands for a missing value and for any value never seen in training, so an unknown city at inference
    gets a (trained) "don't know" embedding instead of an error.
    """

    def fit(self, df: pd.DataFrame, cat_names: Sequence[str]) -> Categorify:
        self.vocab: dict[str, list] = {}
        for name in cat_names:
            column = df[name]
            if isinstance(column.dtype, pd.CategoricalDtype) and column.cat.ordered:
                levels = [c for c in column.cat.categories if c in set(column.dropna())]  # keep the given order
            else:
                levels = sorted(column.dropna().unique().tolist())
            self.vocab[name] = [NA, *levels]
        return self

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for name, vocab in self.vocab.items():
            # get_indexer gives -1 for missing and unseen values; +1 turns that into index 0, #na#.
            df[name] = pd.Index(vocab[1:]).get_indexer(df[name]) + 1
        return df


class Normalize:
    """Subtract each continuous column's training mean and divide by its training standard deviation (notebook 09)."""

    def fit(self, df: pd.DataFrame, cont_names: Sequence[str]) -> Normalize:
        self.means = {n: float(df[n].mean()) for n in cont_names}
        self.stds = {n: float(df[n].std(ddof=0)) + 1e-7 for n in cont_names}  # fastai's ddof and epsilon
        return self

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for name in self.means:
            df[name] = (df[name] - self.means[name]) / self.stds[name]
        return df


class TabularProcessor:
    """FillMissing, Categorify and Normalize together, fitted on the training rows only, like fastai's TabularPandas (notebook 09).

    After ``fit``, ``cat_names`` includes the ``_na`` columns FillMissing added (they are categorical: False,
    True, plus #na#), ``vocab[name]`` lists each categorical column's levels, and ``transform`` turns any frame
    with the same columns into tensors ``(x_cat, x_cont)``.
    """

    def __init__(self, cat_names: Sequence[str], cont_names: Sequence[str], y_name: str | None = None):
        for kind, names in (("categorical", cat_names), ("continuous", cont_names)):
            if isinstance(names, str):
                raise TypeError(f"{kind} column names should be a list, e.g. [{names!r}], not the string {names!r}.")
        both = set(cat_names) & set(cont_names)
        if both:
            raise ValueError(f"column(s) {sorted(both)} are listed as both categorical and continuous: choose one.")
        if y_name is not None and y_name in set(cat_names) | set(cont_names):
            raise ValueError(f"the target {y_name!r} is also listed as an input: the model would be shown the answer.")
        self.input_cat_names, self.cont_names, self.y_name = list(cat_names), list(cont_names), y_name
        self.fitted = False

    def _check(self, df: pd.DataFrame, with_y: bool) -> None:
        _check_names(df, self.input_cat_names, "categorical")
        _check_names(df, self.cont_names, "continuous")
        _check_categorical(df, self.input_cat_names)
        _check_continuous(df, self.cont_names)
        if with_y:
            _check_names(df, [self.y_name], "target")
            _check_continuous(df, [self.y_name])
            if df[self.y_name].isna().any():
                raise ValueError(f"the target {self.y_name!r} is missing in {int(df[self.y_name].isna().sum())} rows: "
                                 "drop them first, e.g. df.dropna(subset=[...]).")

    def fit(self, train_df: pd.DataFrame) -> TabularProcessor:
        """Learn medians, vocabularies, means and standard deviations from the training rows (and nothing else)."""
        self._check(train_df, with_y=self.y_name is not None)
        # fastai's order: FillMissing first, so its _na columns are categorified with the others.
        self.fill = FillMissing().fit(train_df, self.cont_names)
        filled = self.fill.transform(train_df)
        self.cat_names = self.input_cat_names + [n + "_na" for n in self.fill.na_names]
        self.categorify = Categorify().fit(filled, self.cat_names)
        self.normalize = Normalize().fit(filled, self.cont_names)
        self.fitted = True
        return self

    @property
    def vocab(self) -> dict[str, list]:
        self._require_fit()
        return self.categorify.vocab

    def _require_fit(self) -> None:
        if not self.fitted:
            raise RuntimeError("call .fit(train_df) on the training rows first.")

    def process(self, df: pd.DataFrame) -> pd.DataFrame:
        """The frame after the three steps (for looking at): codes for categories, normalised numbers."""
        self._require_fit()
        self._check(df, with_y=False)
        return self.normalize.transform(self.categorify.transform(self.fill.transform(df)))

    def transform(self, df: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_cat, x_cont)``: a long tensor of category indices and a float tensor of normalised numbers."""
        done = self.process(df)
        x_cat = torch.tensor(done[self.cat_names].to_numpy(dtype=np.int64)).reshape(len(df), len(self.cat_names))
        x_cont = torch.tensor(done[self.cont_names].to_numpy(dtype=np.float32)).reshape(len(df), len(self.cont_names))
        return x_cat, x_cont

    def dataset(self, df: pd.DataFrame) -> TabularDataset:
        """A TabularDataset of ``(x_cat, x_cont, y)`` items; y is the target column as it is (log it beforehand)."""
        if self.y_name is None:
            raise ValueError("this processor has no y_name, so it cannot build a dataset with targets: use .transform(df).")
        self._require_fit()
        self._check(df, with_y=True)
        y = torch.tensor(df[self.y_name].to_numpy(dtype=np.float32)).reshape(-1, 1)
        return TabularDataset(*self.transform(df), y)

    def __repr__(self) -> str:
        if not self.fitted:
            return f"TabularProcessor(cat_names={self.input_cat_names}, cont_names={self.cont_names}, not fitted)"
        return (f"TabularProcessor(cat_names={self.cat_names}, cont_names={self.cont_names}, "
                f"y_name={self.y_name!r}, fitted)")


class TabularDataset(Dataset):
    """Rows as ``(x_cat, x_cont, y)``: the Learner's ``n_inp=2`` passes the first two to ``model(x_cat, x_cont)`` (notebook 09)."""

    def __init__(self, x_cat: torch.Tensor, x_cont: torch.Tensor, y: torch.Tensor):
        if not len(x_cat) == len(x_cont) == len(y):
            raise ValueError(f"x_cat, x_cont and y have {len(x_cat)}, {len(x_cont)} and {len(y)} rows: they must match.")
        self.x_cat, self.x_cont, self.y = x_cat, x_cont, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.x_cat[i], self.x_cont[i], self.y[i]


def tabular_dataloaders(train_ds: TabularDataset, valid_ds: TabularDataset, batch_size: int = 64, seed: int = 42):
    """Shuffled, seeded training batches and ordered validation batches, as ``helpers.data.DataLoaders`` (notebook 09)."""
    from helpers.data import make_loaders  # the same loaders every other notebook uses

    return make_loaders(train_ds, valid_ds, vocab=None, batch_size=batch_size, seed=seed)  # no classes: regression


# --- the model --------------------------------------------------------------------------------------------

def emb_sz_rule(n_cat: int) -> int:
    """fastai's embedding width for a column with ``n_cat`` levels (counting #na#): min(600, round(1.6 n^0.56)) (notebook 09)."""
    return min(600, round(1.6 * n_cat ** 0.56))


def get_emb_szs(processor: TabularProcessor, sz_dict: dict[str, int] | None = None) -> list[tuple[int, int]]:
    """``(levels, width)`` for each categorical column, by ``emb_sz_rule`` unless ``sz_dict`` names a width (notebook 09)."""
    sz_dict = sz_dict or {}
    unknown = set(sz_dict) - set(processor.cat_names)
    if unknown:
        raise KeyError(f"sz_dict names {sorted(unknown)}, which are not categorical columns {processor.cat_names}.")
    return [(len(v), sz_dict.get(n, emb_sz_rule(len(v)))) for n, v in processor.vocab.items()]


def sigmoid_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """A sigmoid stretched to (low, high): the model can approach either end but never pass it (notebook 09)."""
    return torch.sigmoid(x) * (high - low) + low


class SigmoidRange(nn.Module):
    """``sigmoid_range`` as a layer, the last one of a TabularModel given a ``y_range`` (notebook 09)."""

    def __init__(self, low: float, high: float):
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid_range(x, self.low, self.high)

    def extra_repr(self) -> str:
        return f"low={self.low:.4g}, high={self.high:.4g}"


class LinBnDrop(nn.Sequential):
    """Linear, then the activation, BatchNorm1d and Dropout: fastai's block with ``lin_first=True`` (notebook 09).

    With BatchNorm after it, the Linear layer has no bias: BatchNorm subtracts the mean anyway, and adds its own.
    """

    def __init__(self, n_in: int, n_out: int, bn: bool = True, p: float = 0.0, act: nn.Module | None = None):
        layers: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not bn)]
        if act is not None:
            layers.append(act)
        if bn:
            norm = nn.BatchNorm1d(n_out)
            nn.init.constant_(norm.bias, 1e-3)  # fastai's BatchNorm starts its bias just above zero
            layers.append(norm)
        if p != 0:
            layers.append(nn.Dropout(p))
        super().__init__(*layers)


class TabularModel(nn.Module):
    """fastai's tabular model: embeddings, embedding dropout, BatchNorm of the continuous columns, LinBnDrop blocks,
    a final Linear, and SigmoidRange when ``y_range`` is given (notebook 09).

    Attribute names (``embeds``, ``emb_drop``, ``bn_cont``, ``layers``) and the parameter count are fastai's.
    """

    def __init__(self, emb_szs: Sequence[tuple[int, int]], n_cont: int, out_sz: int, layers: Sequence[int],
                 ps: float | Sequence[float] | None = None, embed_p: float = 0.0,
                 y_range: tuple[float, float] | None = None, use_bn: bool = True, bn_final: bool = False):
        super().__init__()
        layers = list(layers)
        if ps is None:
            ps = [0.0] * len(layers)
        elif isinstance(ps, (int, float)):
            ps = [float(ps)] * len(layers)
        ps = list(ps)
        if len(ps) != len(layers):
            raise ValueError(f"ps has {len(ps)} dropout probabilities for {len(layers)} hidden layers: give one per layer.")
        self.embeds = nn.ModuleList([nn.Embedding(n, width) for n, width in emb_szs])
        for embedding in self.embeds:
            nn.init.trunc_normal_(embedding.weight, std=0.01, a=-0.02, b=0.02)  # fastai's small initial embeddings
        self.emb_drop = nn.Dropout(embed_p)
        self.bn_cont = nn.BatchNorm1d(n_cont) if n_cont else None
        self.n_emb, self.n_cont = sum(width for _, width in emb_szs), n_cont
        sizes = [self.n_emb + n_cont, *layers, out_sz]
        blocks = [LinBnDrop(sizes[i], sizes[i + 1], bn=use_bn, p=p, act=nn.ReLU(inplace=True))
                  for i, p in enumerate(ps)]
        blocks.append(LinBnDrop(sizes[-2], sizes[-1], bn=bn_final))  # the output layer: no activation, no dropout
        if y_range is not None:
            blocks.append(SigmoidRange(*y_range))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor | None = None) -> torch.Tensor:
        parts = []
        if self.n_emb:
            if x_cat.shape[1] != len(self.embeds):
                raise ValueError(f"x_cat has {x_cat.shape[1]} columns but the model has {len(self.embeds)} embeddings.")
            embedded = torch.cat([emb(x_cat[:, i]) for i, emb in enumerate(self.embeds)], dim=1)
            parts.append(self.emb_drop(embedded))
        if self.n_cont:
            parts.append(self.bn_cont(x_cont))
        return self.layers(torch.cat(parts, dim=1))


# --- the metric and the log-target convention -------------------------------------------------------------

def exp_rmspe(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    """RMSPE on the original scale for a model that predicts log(target): fastai's ``exp_rmspe`` (notebook 09)."""
    return rmspe(torch.exp(preds), torch.exp(targs))


def log_y_range(y: Sequence[float] | np.ndarray | pd.Series, headroom: float = 1.2) -> tuple[float, float]:
    """``(0, log(max(y) * headroom))``: the sigmoid's top a little above the largest target, as in fastai's Rossmann (notebook 09).

    A sigmoid only reaches its ends at infinity, so a range that stopped exactly at the maximum would make
    the largest targets unreachable.
    """
    top = float(np.max(np.asarray(y, dtype=np.float64)))
    if not top > 0:
        raise ValueError(f"the largest target is {top}: a log target needs positive values.")
    return 0.0, math.log(top * headroom)


def rmspe_margin(preds_a: torch.Tensor, preds_b: torch.Tensor, targs: torch.Tensor) -> tuple[float, float]:
    """How much better A is than B on the same rows, and the noise of that number (notebook 09).

    Both are on the squared scale, RMSPE squared (the mean squared percentage error), compared row by row:
    ``margin = mean(sq_b - sq_a)`` is positive when A is better, and ``noise`` is two standard errors of that
    mean, the same rule as for two error rates. A margin below the noise is no evidence either way.
    """
    preds_a, preds_b, targs = (t.reshape(-1).double() for t in (preds_a, preds_b, targs))
    diff = ((targs - preds_b) / targs) ** 2 - ((targs - preds_a) / targs) ** 2
    return float(diff.mean()), float(2 * diff.std() / math.sqrt(len(diff)))
