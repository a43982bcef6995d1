"""Baselines a tabular model must beat, and tables for tree models, including the net's learnt embeddings (notebook 09).

The simple forecasts are the ones a person would try first: the training mean, each city's own mean, and the
same month one year earlier. Tree models get the same columns as the net (``tree_table``), or the net's learnt
embeddings in place of the category codes (``embedding_table``, the book's "embeddings for other models").
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from helpers.tabular_data import TabularDataset, check_names

__all__ = ["city_mean_preds", "months_earlier", "same_month_last_year", "tree_table", "embedding_table"]


def city_mean_preds(train_df: pd.DataFrame, rows: pd.DataFrame, target: str = "sales", by: str = "city") -> np.ndarray:
    """Predict each row's city's mean training target; an unseen city gets the overall mean (notebook 09)."""
    check_names(train_df, [by, target], "baseline")
    check_names(rows, [by], "baseline")
    means = train_df.groupby(by)[target].mean()
    return rows[by].map(means).fillna(float(train_df[target].mean())).to_numpy(dtype=np.float64)


def months_earlier(history: pd.DataFrame, rows: pd.DataFrame, column: str, months: int = 1,
                   by: str = "city", date: str = "date") -> np.ndarray:
    """Each row's ``column`` in ``history`` for its city ``months`` calendar months earlier, or NaN (notebook 09).

    Matching on the calendar rather than shifting by position keeps a gap in a city's record from pairing a month
    with the wrong one.
    """
    check_names(history, [by, date, column], "history")
    check_names(rows, [by, date], "row")
    earlier = history[[by, date, column]].copy()
    earlier[date] = pd.to_datetime(earlier[date]) + pd.DateOffset(months=months)  # the month it is "earlier" for
    earlier = earlier.drop_duplicates([by, date])
    keys = pd.DataFrame({by: rows[by].to_numpy(), date: pd.to_datetime(rows[date]).to_numpy()})
    return keys.merge(earlier, on=[by, date], how="left")[column].to_numpy(dtype=np.float64)


def same_month_last_year(history: pd.DataFrame, rows: pd.DataFrame, fallback: np.ndarray, target: str = "sales",
                         by: str = "city", date: str = "date") -> np.ndarray:
    """The seasonal naive forecast: the same city's target twelve months earlier, else ``fallback`` (notebook 09)."""
    fallback = np.asarray(fallback, dtype=np.float64)
    if fallback.shape != (len(rows),):
        raise ValueError(f"fallback has shape {fallback.shape}; give one value per row ({len(rows)}).")
    year_ago = months_earlier(history, rows, target, months=12, by=by, date=date)
    return np.where(np.isnan(year_ago), fallback, year_ago)


def tree_table(ds: TabularDataset) -> np.ndarray:
    """The category codes and the continuous columns side by side, as one array for scikit-learn (notebook 09)."""
    return np.concatenate([ds.x_cat.numpy(), ds.x_cont.numpy()], axis=1)


def embedding_table(embeds: Sequence[nn.Embedding], ds: TabularDataset, replace: Sequence[int]) -> np.ndarray:
    """``tree_table`` with the categorical columns at ``replace`` swapped for their learnt embeddings (notebook 09).

    A city's code is an arbitrary number; its embedding places it near cities that behave alike, which a tree
    can split on. The other columns stay as they are; the embedding columns come last.
    """
    keep = [i for i in range(ds.x_cat.shape[1]) if i not in set(replace)]
    parts = [ds.x_cat[:, keep].numpy(), ds.x_cont.numpy()]
    with torch.no_grad():
        for i in replace:
            parts.append(embeds[i].weight.detach().cpu()[ds.x_cat[:, i]].numpy())
    return np.concatenate(parts, axis=1).astype(np.float32)
