"""helpers.tabular_metrics' city bootstrap against a hand computation, and the baselines of notebook 09 on planted
tables."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import tabular


def test_city_bootstrap_matches_the_exact_distribution_of_two_cities():
    # City A: squared errors 1 and 3; city B: 10. Drawing two cities with replacement gives AA (p 1/4, MSPE 8/4),
    # AB or BA (p 1/2, MSPE 14/3) and BB (p 1/4, MSPE 10): mean 16/3, variance 76/9 worked out by hand.
    errors = np.array([1.0, 3.0, 10.0])
    samples = tabular.city_bootstrap({"m": errors}, ["A", "A", "B"], n_boot=20_000, seed=1)["m"]
    assert set(np.round(samples, 6)) == {2.0, round(14 / 3, 6), 10.0}
    assert samples.mean() == pytest.approx(16 / 3, abs=0.1)
    assert samples.std() == pytest.approx(math.sqrt(76 / 9), rel=0.03)


def test_city_bootstrap_pairs_models_and_treats_a_city_as_one_draw():
    rng = np.random.default_rng(0)
    cities = np.repeat(np.arange(10), 50)
    a = rng.exponential(size=500)
    out = tabular.city_bootstrap({"a": a, "b": a + 0.5}, cities, n_boot=200)
    np.testing.assert_allclose(out["b"] - out["a"], 0.5)  # the same resamples for both models
    # Rows of a city that share one big error: by city, the noise is far larger than a row-wise rule says.
    shared = np.repeat(rng.exponential(size=10), 50)
    by_city = tabular.city_bootstrap({"s": shared}, cities, n_boot=2000)["s"].std()
    by_row = shared.std() / math.sqrt(len(shared))
    assert by_city > 4 * by_row


def test_squared_pct_errors_agree_with_rmspe_by_hand():
    preds, targs = np.array([110.0, 90.0, 50.0]), np.array([100.0, 100.0, 40.0])
    by_hand = math.sqrt((0.01 + 0.01 + 0.0625) / 3)
    assert math.sqrt(tabular.squared_pct_errors(preds, targs).mean()) == pytest.approx(by_hand)
    assert tabular.rmspe(torch.tensor(preds), torch.tensor(targs)).item() == pytest.approx(by_hand, rel=1e-6)
    with pytest.raises(ValueError, match="one prediction per row"):
        tabular.squared_pct_errors(preds[:2], targs)


def _history():
    dates = pd.to_datetime(["2013-01-01", "2013-02-01", "2013-04-01", "2014-01-01", "2014-03-01"])
    return pd.DataFrame({"city": ["a", "a", "a", "a", "b"], "date": dates, "sales": [10.0, 20.0, 40.0, 50.0, 7.0]})


def test_months_earlier_follows_the_calendar_not_the_row_order():
    history = _history()
    rows = history.iloc[[2, 3, 4]]  # April 2013 (no March before it), January 2014, b's March 2014
    np.testing.assert_array_equal(tabular.months_earlier(history, rows, "sales", 1), [np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(tabular.months_earlier(history, rows, "sales", 12), [np.nan, 10.0, np.nan])
    fallback = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(tabular.same_month_last_year(history, rows, fallback), [1.0, 10.0, 3.0])


def test_city_mean_preds_uses_training_means_and_the_overall_mean_for_an_unseen_city():
    train = _history().iloc[:3]
    rows = pd.DataFrame({"city": ["a", "zz"]})
    np.testing.assert_allclose(tabular.city_mean_preds(train, rows), [70 / 3, 70 / 3])
    train = _history()
    np.testing.assert_allclose(tabular.city_mean_preds(train, pd.DataFrame({"city": ["b", "q"]})), [7.0, 127 / 5])


def test_embedding_table_swaps_codes_for_the_learnt_rows():
    torch.manual_seed(0)
    embeds = [nn.Embedding(4, 3), nn.Embedding(3, 2)]
    ds = tabular.TabularDataset(torch.tensor([[1, 2], [3, 0]]), torch.tensor([[0.5], [-1.0]]), torch.zeros(2, 1))
    table = tabular.embedding_table(embeds, ds, replace=[0])
    assert table.shape == (2, 1 + 1 + 3)
    np.testing.assert_allclose(table[:, 0], [2, 0])                 # the kept code
    np.testing.assert_allclose(table[:, 1], [0.5, -1.0])            # the continuous column
    np.testing.assert_allclose(table[1, 2:], embeds[0].weight[3].detach().numpy(), rtol=1e-6)
    np.testing.assert_array_equal(tabular.tree_table(ds), [[1, 2, 0.5], [3, 0, -1.0]])


def test_the_facade_has_every_name_notebook_09_uses_and_each_module_reads_in_one_sitting():
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cells = json.loads((root / "notebooks" / "09_tabular.ipynb").read_text())["cells"]
    used = {m for c in cells if c["cell_type"] == "code" for m in re.findall(r"\btabular\.(\w+)", "".join(c["source"]))}
    assert {"TabularProcessor", "TabularModel", "city_bootstrap", "same_month_last_year"} <= used
    assert not [name for name in used if not hasattr(tabular, name)]
    for module in sorted((root / "helpers").glob("tabular*.py")):
        assert len(module.read_text().splitlines()) <= 400, f"{module.name} is over 400 lines"
