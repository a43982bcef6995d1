"""Tabular data: the txhousing table, a date split into parts, and rows as tensors for the Learner (notebook 09).

Preprocessing (FillMissing, Categorify, Normalize) lives in ``helpers.tabular_procs``, the model in
``helpers.tabular_model``; ``helpers.tabular`` gathers every name notebook 09 uses.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import Dataset

__all__ = ["txhousing_path", "load_txhousing", "DATE_PARTS", "add_date_parts", "check_names", "TabularDataset",
           "tabular_dataloaders"]

def txhousing_path() -> Path:
    """The CSV of Texas home sales (46 cities, monthly, 2000-2015) inside the installed plotnine (notebook 09)."""
    # find_spec locates the package without importing it (importing plotnine would load its whole plotting stack).
    spec = importlib.util.find_spec("plotnine")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("plotnine is not installed, and notebook 09 reads its txhousing table from it: "
                                  "run `make install` (requirements.txt pins plotnine).")
    path = Path(spec.submodule_search_locations[0]) / "data" / "txhousing.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: this plotnine install is incomplete; reinstall it with `make "
                                "install`.")
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
    check_names(df, [column], "date")
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


def check_names(df: pd.DataFrame, names, kind: str) -> None:
    """Raise a clear error when ``names`` is a bare string or names a column the table lacks (notebook 09)."""
    if isinstance(names, str):
        raise TypeError(f"{kind} column names should be a list, e.g. [{names!r}], not the string {names!r}.")
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise KeyError(f"{kind} column(s) {missing} are not in the table; its columns are {list(df.columns)}.")


class TabularDataset(Dataset):
    """Rows as ``(x_cat, x_cont, y)``; ``n_inp=2`` passes the first two to ``model(x_cat, x_cont)`` (notebook 09)."""

    def __init__(self, x_cat: torch.Tensor, x_cont: torch.Tensor, y: torch.Tensor):
        if not len(x_cat) == len(x_cont) == len(y):
            raise ValueError(f"x_cat, x_cont and y have {len(x_cat)}, {len(x_cont)} and {len(y)} rows: they must "
                             "match.")
        self.x_cat, self.x_cont, self.y = x_cat, x_cont, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.x_cat[i], self.x_cont[i], self.y[i]


def tabular_dataloaders(train_ds: TabularDataset, valid_ds: TabularDataset, batch_size: int = 64, seed: int = 42):
    """Shuffled, seeded training batches and ordered validation ones, as ``DataLoaders`` (notebook 09).

    The class is ``helpers.data.DataLoaders``.
    """
    from helpers.data import make_loaders  # the same loaders every other notebook uses

    return make_loaders(train_ds, valid_ds, vocab=None, batch_size=batch_size, seed=seed)  # no classes: regression

