"""Tabular data with entity embeddings, the way fastai does it, in plain pandas and PyTorch (notebook 09).

One name to import, ``from helpers import tabular``; the pieces live in modules named for their concern:

* ``helpers.tabular_data``: ``load_txhousing``, ``add_date_parts``, ``TabularDataset``, ``tabular_dataloaders``;
* ``helpers.tabular_procs``: ``FillMissing``, ``Categorify``, ``Normalize``, ``TabularProcessor`` (fitted on training
rows);
* ``helpers.tabular_model``: ``emb_sz_rule``, ``get_emb_szs``, ``LinBnDrop``, ``TabularModel``, ``sigmoid_range``;
* ``helpers.tabular_metrics``: ``exp_rmspe``, ``log_y_range``, ``squared_pct_errors``, ``city_bootstrap``;
* ``helpers.tabular_baselines``: the per-city mean, the same month a year earlier, tables for tree models.

The names and the layer order are fastai's (``fastai/tabular/core.py`` and ``model.py``), so the book's code
maps onto these files line by line and a model here has exactly as many parameters as fastai's.
"""
from __future__ import annotations

from helpers.tabular_baselines import city_mean_preds, embedding_table, months_earlier, same_month_last_year, tree_table
from helpers.tabular_data import (
                                       DATE_PARTS,
                                       TabularDataset,
                                       add_date_parts,
                                       load_txhousing,
                                       tabular_dataloaders,
                                       txhousing_path,
)
from helpers.tabular_metrics import city_bootstrap, exp_rmspe, log_y_range, rmspe, rmspe_margin, squared_pct_errors
from helpers.tabular_model import LinBnDrop, SigmoidRange, TabularModel, emb_sz_rule, get_emb_szs, sigmoid_range
from helpers.tabular_procs import NA, Categorify, FillMissing, Normalize, TabularProcessor

__all__ = ["NA", "DATE_PARTS", "txhousing_path", "load_txhousing", "add_date_parts", "FillMissing", "Categorify",
           "Normalize", "TabularProcessor", "TabularDataset", "tabular_dataloaders", "emb_sz_rule", "get_emb_szs",
           "sigmoid_range", "SigmoidRange", "LinBnDrop", "TabularModel", "rmspe", "exp_rmspe", "log_y_range",
           "rmspe_margin", "squared_pct_errors", "city_bootstrap", "city_mean_preds", "months_earlier",
           "same_month_last_year", "tree_table", "embedding_table"]
