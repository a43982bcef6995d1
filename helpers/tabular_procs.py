"""fastai's preprocessing for tables: FillMissing, Categorify and Normalize, fitted on training rows (notebook 09)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from helpers.tabular_data import TabularDataset, check_names

__all__ = ["NA", "FillMissing", "Categorify", "Normalize", "TabularProcessor"]

NA = "#na#"  # the level at index 0 of every categorical column: missing, or never seen in training

def _check_continuous(df: pd.DataFrame, names: Sequence[str]) -> None:
    for name in names:
        kind = df[name].dtype.kind
        if kind not in "biuf":
            raise TypeError(f"continuous column {name!r} holds {df[name].dtype} values such as "
                            f"{df[name].dropna().iloc[0]!r}, "
                            "not numbers: list it among the categorical columns, or convert it with pd.to_numeric.")


def _check_categorical(df: pd.DataFrame, names: Sequence[str]) -> None:
    for name in names:
        column = df[name]
        if column.dtype.kind == "f" and not np.all(np.mod(column.dropna(), 1) == 0):
            raise TypeError(f"categorical column {name!r} holds fractional numbers such as "
                            f"{column.dropna().iloc[0]!r}: "
                            "a quantity like that belongs among the continuous columns.")


# --- the three preprocessing steps (fastai's procs) -----------------------------------------------------

class FillMissing:
    """Fill missing continuous values with the training median, and add a boolean ``<name>_na`` column (notebook 09).

    A ``_na`` column is added for each column that has missing values in the *training* rows; a column that had
    none there is still filled (with its training median) if a gap turns up later, but cannot be flagged, since
    the model was built without a column for it.
    """

    def fit(self, df: pd.DataFrame, cont_names: Sequence[str]) -> FillMissing:
        """Learn each continuous column's median from the training rows (notebook 09, via ``TabularProcessor``)."""
        self.cont_names = list(cont_names)
        self.medians = {n: float(df[n].median()) for n in self.cont_names}
        empty = [n for n, m in self.medians.items() if math.isnan(m)]
        if empty:
            raise ValueError(f"continuous column(s) {empty} have no values at all in the training rows: drop them.")
        self.na_names = [n for n in self.cont_names if df[n].isna().any()]
        return self

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        """Fill gaps with the medians and add the ``_na`` columns (notebook 09, via ``TabularProcessor``)."""
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
        """Learn each categorical column's vocabulary from the training rows (notebook 09, via ``TabularProcessor``)."""
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
        """Replace each category by its index; missing or unseen ones by 0 (notebook 09, via ``TabularProcessor``).

        Index 0 is ``#na#``.
        """
        df = df.copy()
        for name, vocab in self.vocab.items():
            # get_indexer gives -1 for missing and unseen values; +1 turns that into index 0, #na#.
            df[name] = pd.Index(vocab[1:]).get_indexer(df[name]) + 1
        return df


class Normalize:
    """Subtract each continuous column's training mean and divide by its training standard deviation (notebook 09)."""

    def fit(self, df: pd.DataFrame, cont_names: Sequence[str]) -> Normalize:
        """Learn each continuous column's training mean and deviation (notebook 09, via ``TabularProcessor``)."""
        self.means = {n: float(df[n].mean()) for n in cont_names}
        self.stds = {n: float(df[n].std(ddof=0)) + 1e-7 for n in cont_names}  # fastai's ddof and epsilon
        return self

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        """Subtract the means and divide by the standard deviations (notebook 09, via ``TabularProcessor``)."""
        df = df.copy()
        for name in self.means:
            df[name] = (df[name] - self.means[name]) / self.stds[name]
        return df


class TabularProcessor:
    """FillMissing, Categorify and Normalize fitted on the training rows only, as fastai's TabularPandas (notebook 09).

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
        check_names(df, self.input_cat_names, "categorical")
        check_names(df, self.cont_names, "continuous")
        _check_categorical(df, self.input_cat_names)
        _check_continuous(df, self.cont_names)
        if with_y:
            check_names(df, [self.y_name], "target")
            _check_continuous(df, [self.y_name])
            if df[self.y_name].isna().any():
                raise ValueError(f"the target {self.y_name!r} is missing in {int(df[self.y_name].isna().sum())} rows: "
                                 "drop them first, e.g. df.dropna(subset=[...]).")

    def fit(self, train_df: pd.DataFrame) -> TabularProcessor:
        """Learn medians, vocabularies, means and standard deviations from the training rows only (notebook 09)."""
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
        """Each categorical column's vocabulary, as fitted (notebook 09)."""
        self._require_fit()
        return self.categorify.vocab

    def _require_fit(self) -> None:
        if not self.fitted:
            raise RuntimeError("call .fit(train_df) on the training rows first.")

    def process(self, df: pd.DataFrame) -> pd.DataFrame:
        """The frame after the three steps, for looking at: codes for categories, normalised numbers (notebook 09)."""
        self._require_fit()
        self._check(df, with_y=False)
        return self.normalize.transform(self.categorify.transform(self.fill.transform(df)))

    def transform(self, df: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_cat, x_cont)``: a long tensor of category indices, a float tensor of normalised values (notebook 09)."""
        done = self.process(df)
        x_cat = torch.tensor(done[self.cat_names].to_numpy(dtype=np.int64)).reshape(len(df), len(self.cat_names))
        x_cont = torch.tensor(done[self.cont_names].to_numpy(dtype=np.float32)).reshape(len(df), len(self.cont_names))
        return x_cat, x_cont

    def dataset(self, df: pd.DataFrame) -> TabularDataset:
        """A TabularDataset of ``(x_cat, x_cont, y)``; y is the target column as it is, log it first (notebook 09)."""
        if self.y_name is None:
            raise ValueError("this processor has no y_name, so it cannot build a dataset with targets: use "
                             ".transform(df).")
        self._require_fit()
        self._check(df, with_y=True)
        y = torch.tensor(df[self.y_name].to_numpy(dtype=np.float32)).reshape(-1, 1)
        return TabularDataset(*self.transform(df), y)

    def __repr__(self) -> str:
        if not self.fitted:
            return f"TabularProcessor(cat_names={self.input_cat_names}, cont_names={self.cont_names}, not fitted)"
        return (f"TabularProcessor(cat_names={self.cat_names}, cont_names={self.cont_names}, "
                f"y_name={self.y_name!r}, fitted)")

