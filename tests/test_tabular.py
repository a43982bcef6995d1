"""helpers.tabular: fastai's tabular rules (embedding sizes, layer order, parameter count), preprocessing fitted on
the training rows only, unknown categories, clear errors, RMSPE, and a short training run that beats the mean."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import tabular as T

# --- embedding sizes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_cat, width", [(3, 3), (5, 4), (8, 5), (13, 7), (25, 10), (47, 14), (366, 44), (1116, 81)])
def test_emb_sz_rule_matches_fastai_table(n_cat, width):
    assert T.emb_sz_rule(n_cat) == width


def test_emb_sz_rule_is_capped_at_600():
    assert T.emb_sz_rule(10**7) == 600


def test_emb_szs_count_the_na_level():
    df = pd.DataFrame({"colour": ["red", "blue", "red", "green"], "x": [1.0, 2.0, 3.0, 4.0]})
    proc = T.TabularProcessor(["colour"], ["x"]).fit(df)
    assert proc.vocab["colour"] == ["#na#", "blue", "green", "red"]
    assert T.get_emb_szs(proc) == [(4, T.emb_sz_rule(4))]
    assert T.get_emb_szs(proc, {"colour": 9}) == [(4, 9)]
    with pytest.raises(KeyError, match="shade"):
        T.get_emb_szs(proc, {"shade": 2})


# --- the model: layer order and parameter count ------------------------------------------------------------

def fastai_parameter_count(emb_szs, n_cont, out_sz, layers, use_bn=True, bn_final=False):
    """Counted from fastai's definitions: a Linear followed by BatchNorm has no bias; BatchNorm has 2 per feature."""
    count = sum(n * w for n, w in emb_szs) + 2 * n_cont
    sizes = [sum(w for _, w in emb_szs) + n_cont, *layers, out_sz]
    for i in range(len(sizes) - 1):
        bn = use_bn if i < len(sizes) - 2 else bn_final
        count += sizes[i] * sizes[i + 1] + (2 * sizes[i + 1] if bn else sizes[i + 1])
    return count


CONFIGS = [
    dict(emb_szs=[(10, 6), (5, 4)], n_cont=3, out_sz=1, layers=[200, 100]),
    dict(emb_szs=[(47, 14), (13, 7), (3, 3), (3, 3)], n_cont=3, out_sz=1, layers=[1000, 500], ps=[0.001, 0.01],
         embed_p=0.04, y_range=(0.0, 9.3)),
    dict(emb_szs=[(25, 10)], n_cont=0, out_sz=3, layers=[50], use_bn=False),
    dict(emb_szs=[], n_cont=4, out_sz=2, layers=[8, 8, 8], bn_final=True),
    dict(emb_szs=[(366, 44), (1116, 81)], n_cont=7, out_sz=1, layers=[200, 100], ps=0.1, use_bn=False, bn_final=True),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_parameter_count_matches_fastai(config, n_params):
    model = T.TabularModel(**config)
    keys = ("emb_szs", "n_cont", "out_sz", "layers", "use_bn", "bn_final")
    assert n_params(model) == fastai_parameter_count(**{k: config[k] for k in keys if k in config})


def test_parameter_count_of_one_model_worked_by_hand(n_params):
    # embeddings 10*6 + 5*4 = 80; BatchNorm of 3 continuous columns 6; Linear 13->200 without bias 2600 and its
    # BatchNorm 400; Linear 200->100 20000 and BatchNorm 200; final Linear 100->1 with bias 101.
    model = T.TabularModel([(10, 6), (5, 4)], 3, 1, [200, 100])
    assert n_params(model) == 80 + 6 + 2600 + 400 + 20000 + 200 + 101 == 23387


def layer_types(model: T.TabularModel) -> list[str]:
    return [type(m).__name__ for block in model.layers
            for m in (block if isinstance(block, nn.Sequential) else [block])]


def test_layer_order_is_fastais():
    model = T.TabularModel([(10, 6)], 2, 1, [20, 10], ps=[0.1, 0.2], embed_p=0.05, y_range=(0, 5))
    assert [name for name, _ in model.named_children()] == ["embeds", "emb_drop", "bn_cont", "layers"]
    assert layer_types(model) == ["Linear", "ReLU", "BatchNorm1d", "Dropout",
                                  "Linear", "ReLU", "BatchNorm1d", "Dropout",
                                  "Linear", "SigmoidRange"]
    first, second = model.layers[0][3], model.layers[1][3]
    assert (first.p, second.p, model.emb_drop.p) == (0.1, 0.2, 0.05)
    assert model.layers[0][0].bias is None and model.layers[2][0].bias is not None


def test_layer_order_without_dropout_or_batchnorm_and_with_bn_final():
    assert layer_types(T.TabularModel([(10, 6)], 2, 1, [20])) == ["Linear", "ReLU", "BatchNorm1d", "Linear"]
    assert layer_types(T.TabularModel([(10, 6)], 2, 1, [20], use_bn=False)) == ["Linear", "ReLU", "Linear"]
    assert layer_types(T.TabularModel([(10, 6)], 2, 1, [20], bn_final=True)) == [
        "Linear", "ReLU", "BatchNorm1d", "Linear", "BatchNorm1d"]


def test_ps_must_match_layers():
    with pytest.raises(ValueError, match="one per layer"):
        T.TabularModel([(10, 6)], 2, 1, [20, 10], ps=[0.1])


def test_forward_shapes_and_y_range():
    torch.manual_seed(0)
    model = T.TabularModel([(10, 6), (5, 4)], 3, 1, [16], y_range=(1.0, 2.0)).eval()
    x_cat = torch.randint(0, 5, (8, 2))
    out = model(x_cat, torch.randn(8, 3) * 1000)
    assert out.shape == (8, 1)
    assert ((out >= 1.0) & (out <= 2.0)).all()
    only_cont = T.TabularModel([], 3, 2, [16]).eval()
    assert only_cont(torch.zeros(4, 0, dtype=torch.long), torch.randn(4, 3)).shape == (4, 2)
    with pytest.raises(ValueError, match="2 embeddings"):
        model(torch.zeros(8, 3, dtype=torch.long), torch.randn(8, 3))


def test_embedding_is_a_one_hot_matrix_product():
    model = T.TabularModel([(6, 4)], 0, 1, [8])
    codes = torch.tensor([0, 3, 5])
    one_hot = nn.functional.one_hot(codes, 6).float()
    torch.testing.assert_close(one_hot @ model.embeds[0].weight, model.embeds[0](codes))


def test_sigmoid_range():
    x = torch.tensor([-100.0, 0.0, 100.0])
    torch.testing.assert_close(T.sigmoid_range(x, 2.0, 6.0), torch.tensor([2.0, 4.0, 6.0]))


# --- preprocessing: fitted on training rows only -----------------------------------------------------------

@pytest.fixture
def frames():
    train = pd.DataFrame({"city": ["a", "b", "a", "c"], "month": [1, 2, 3, 1],
                          "price": [10.5, np.nan, 30.0, 50.0], "size": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0, 3.0, 4.0]})
    valid = pd.DataFrame({"city": ["a", "zzz", None], "month": [12, 2, 1],
                          "price": [np.nan, 1000.0, 2000.0], "size": [100.0, 200.0, np.nan], "y": [5.0, 6.0, 7.0]})
    return train, valid


def test_statistics_come_from_training_rows_only(frames):
    train, valid = frames
    proc = T.TabularProcessor(["city", "month"], ["price", "size"], "y").fit(train)
    assert proc.fill.medians == {"price": 30.0, "size": 2.5}
    assert proc.vocab["city"] == ["#na#", "a", "b", "c"] and proc.vocab["month"] == ["#na#", 1, 2, 3]
    filled_price = np.array([10.5, 30.0, 30.0, 50.0])
    assert proc.normalize.means["price"] == pytest.approx(filled_price.mean())
    assert proc.normalize.stds["price"] == pytest.approx(filled_price.std(ddof=0) + 1e-7)
    # Fitting again on the validation rows would give other numbers: transforming them must not.
    before = (dict(proc.fill.medians), dict(proc.normalize.means), {k: list(v) for k, v in proc.vocab.items()})
    x_cat, x_cont = proc.transform(valid)
    assert before == (proc.fill.medians, proc.normalize.means, proc.vocab)
    expected_price = (np.array([30.0, 1000.0, 2000.0]) - filled_price.mean()) / (filled_price.std(ddof=0) + 1e-7)
    np.testing.assert_allclose(x_cont[:, 0].numpy(), expected_price, rtol=1e-5)


def test_unknown_and_missing_categories_map_to_na(frames):
    train, valid = frames
    proc = T.TabularProcessor(["city", "month"], ["price", "size"], "y").fit(train)
    x_cat, _ = proc.transform(valid)
    assert proc.cat_names == ["city", "month", "price_na"]
    assert x_cat[:, 0].tolist() == [1, 0, 0]   # "a" is known; "zzz" was never seen; None is missing
    assert x_cat[:, 1].tolist() == [0, 2, 1]   # month 12 never appeared in training


def test_fill_missing_flags_only_columns_missing_in_training(frames):
    train, valid = frames
    proc = T.TabularProcessor(["city"], ["price", "size"], "y").fit(train)
    assert proc.fill.na_names == ["price"]
    assert proc.vocab["price_na"] == ["#na#", False, True]
    done = proc.process(valid)
    assert done["price_na"].tolist() == [2, 1, 1]        # True, False, False as indices into the vocabulary
    assert "size_na" not in done                          # size had no gap in training: filled, not flagged
    assert not done[["price", "size"]].isna().any().any()
    assert T.get_emb_szs(proc)[-1] == (3, 3)


def test_dataset_items_and_dataloaders(frames):
    train, valid = frames
    proc = T.TabularProcessor(["city", "month"], ["price", "size"], "y").fit(train)
    train_ds, valid_ds = proc.dataset(train), proc.dataset(valid)
    x_cat, x_cont, y = train_ds[0]
    assert x_cat.dtype == torch.long and x_cont.dtype == torch.float32 and y.shape == (1,)
    dls = T.tabular_dataloaders(train_ds, valid_ds, batch_size=2)
    xb_cat, xb_cont, yb = next(iter(dls.valid))
    assert xb_cat.shape == (2, 3) and xb_cont.shape == (2, 2) and yb.shape == (2, 1)


def test_processor_does_not_change_the_callers_frame(frames):
    train, valid = frames
    copy = valid.copy()
    T.TabularProcessor(["city", "month"], ["price", "size"], "y").fit(train).transform(valid)
    pd.testing.assert_frame_equal(valid, copy)


# --- clear errors --------------------------------------------------------------------------------------------

def test_unknown_column_names_are_named(frames):
    train, _ = frames
    with pytest.raises(KeyError, match="citty"):
        T.TabularProcessor(["citty"], ["price"], "y").fit(train)
    with pytest.raises(KeyError, match="sales"):
        T.TabularProcessor(["city"], ["price"], "sales").fit(train)


def test_wrong_column_types_are_named(frames):
    train, _ = frames
    with pytest.raises(TypeError, match="'city'.*categorical"):
        T.TabularProcessor([], ["city"], "y").fit(train)
    with pytest.raises(TypeError, match="'price'.*continuous"):
        T.TabularProcessor(["price"], [], "y").fit(train)
    with pytest.raises(TypeError, match=r"\['city'\]"):
        T.TabularProcessor("city", ["price"], "y")


def test_target_mistakes(frames):
    train, _ = frames
    with pytest.raises(ValueError, match="shown the answer"):
        T.TabularProcessor(["city"], ["price", "y"], "y")
    broken = train.assign(y=[1.0, np.nan, 3.0, 4.0])
    with pytest.raises(ValueError, match="missing in 1 rows"):
        T.TabularProcessor(["city"], ["price"], "y").fit(broken)
    with pytest.raises(RuntimeError, match="fit"):
        T.TabularProcessor(["city"], ["price"], "y").transform(train)


# --- dates -------------------------------------------------------------------------------------------------------

def test_add_date_parts():
    df = pd.DataFrame({"saledate": ["2015-03-31", "2016-01-01"], "x": [1, 2]})
    out = T.add_date_parts(df, "saledate")
    assert "saledate" not in out and "saledate" in df
    row = out.iloc[0]
    assert (row.saleYear, row.saleMonth, row.saleWeek, row.saleDay, row.saleDayofweek, row.saleDayofyear) == (
        2015, 3, 14, 31, 1, 90)
    assert row.saleIs_month_end and row.saleIs_quarter_end and not row.saleIs_year_end
    assert out.iloc[1].saleIs_year_start
    assert out.iloc[0].saleElapsed == pd.Timestamp("2015-03-31").timestamp()
    assert "Year" in T.add_date_parts(df.rename(columns={"saledate": "date"}), "date")
    with pytest.raises(TypeError, match="'x'.*not a date"):
        T.add_date_parts(pd.DataFrame({"x": ["tuesday"]}), "x")


# --- the metric and the log target ---------------------------------------------------------------------------------

def test_rmspe_against_its_formula():
    rng = np.random.default_rng(0)
    targs = rng.uniform(1, 100, 50)
    preds = targs * rng.uniform(0.5, 1.5, 50)
    expected = math.sqrt(np.mean(((targs - preds) / targs) ** 2))
    assert T.rmspe(torch.tensor(preds), torch.tensor(targs)).item() == pytest.approx(expected, rel=1e-5)
    exp_rmspe = T.exp_rmspe(torch.tensor(np.log(preds)), torch.tensor(np.log(targs))).item()
    assert exp_rmspe == pytest.approx(expected, rel=1e-4)
    assert T.rmspe(torch.tensor([110.0, 90.0]), torch.tensor([100.0, 100.0])).item() == pytest.approx(0.1)


def test_rmspe_margin_is_paired_and_signed():
    targs = torch.tensor([10.0, 20.0, 40.0, 80.0])
    good, bad = targs * 1.1, targs * 1.3
    margin, noise = T.rmspe_margin(good, bad, targs)
    assert margin == pytest.approx(0.3**2 - 0.1**2) and noise == pytest.approx(0.0, abs=1e-12)
    assert T.rmspe_margin(bad, good, targs)[0] == pytest.approx(-margin)
    margin, noise = T.rmspe_margin(targs * torch.tensor([1.1, 0.9, 1.2, 1.0]), targs, targs)
    assert margin < 0 and noise > 0


def test_log_y_range_leaves_headroom():
    low, high = T.log_y_range(pd.Series([5.0, 8945.0, 100.0]))
    assert low == 0.0 and high == pytest.approx(math.log(8945.0 * 1.2))
    with pytest.raises(ValueError, match="positive"):
        T.log_y_range([-1.0, 0.0])


# --- the real data and a short training run ---------------------------------------------------------------------

def test_txhousing_is_installed_and_as_described():
    df = T.load_txhousing()
    assert df.shape == (8602, 9)
    assert df.city.nunique() == 46 and int(df.sales.isna().sum()) == 568


def test_short_training_through_the_learner_beats_the_mean():
    from helpers.learner import Learner

    torch.manual_seed(0)
    df = T.load_txhousing().dropna(subset=["sales"]).reset_index(drop=True)
    df["log_sales"] = np.log(df.sales)
    train, valid = df[df.year < 2014], df[df.year >= 2014]
    proc = T.TabularProcessor(["city", "month"], ["year", "median", "listings"], "log_sales").fit(train)
    dls = T.tabular_dataloaders(proc.dataset(train), proc.dataset(valid), batch_size=256)
    model = T.TabularModel(T.get_emb_szs(proc), 3, 1, [50], y_range=T.log_y_range(train.sales))
    learn = Learner(dls, model, loss_func=nn.MSELoss(), metrics=[T.exp_rmspe], n_inp=2, quiet=True)
    learn.fit_one_cycle(3, 1e-2)
    preds, targs = learn.get_preds()
    mean_rmspe = T.rmspe(torch.full_like(targs, float(train.sales.mean())), targs.exp()).item()
    nn_rmspe = T.exp_rmspe(preds, targs).item()
    assert nn_rmspe < mean_rmspe / 3, (nn_rmspe, mean_rmspe)
    margin, noise = T.rmspe_margin(preds.exp(), torch.full_like(targs, float(train.sales.mean())), targs.exp())
    assert margin > noise
