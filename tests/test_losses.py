"""helpers.losses equals torch.nn.functional: property-based over shapes, dims, dtypes and extreme values."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import losses

DTYPES = [torch.float32, torch.float64, torch.bfloat16]
FEW = settings(max_examples=40, deadline=None)


@st.composite
def activations(draw, min_dims: int = 1, max_dims: int = 4):
    """A random tensor: random shape and dtype, values anywhere from tiny to 1e4, sometimes with exact extremes."""
    shape = draw(st.lists(st.integers(1, 5), min_size=min_dims, max_size=max_dims))
    dtype = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from([1e-3, 1.0, 10.0, 100.0, 1e4]))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    x = torch.randn(shape, generator=generator, dtype=torch.float64) * scale
    if draw(st.booleans()):
        x.view(-1)[0] = draw(st.sampled_from([1e4, -1e4, 0.0]))
    return x.to(dtype)


def random_targets(input: torch.Tensor, seed: int, ignore_some: bool) -> torch.Tensor:
    n_classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    target_shape = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, n_classes, target_shape, generator=generator)
    if ignore_some and target.numel() > 1:
        target.view(-1)[0] = -100  # one ignored item, the rest still count
    return target


def assert_matches_torch(ours: torch.Tensor, theirs: torch.Tensor, truth: torch.Tensor, x: torch.Tensor,
                         terms: int = 1):
    """Equal to torch's result within rounding, and never further than torch's from the float64 truth."""
    # Rounding a number of size s costs up to eps * s. torch's kernels round intermediate values as large as
    # the inputs (e.g. max + log(sum) for logits near 1e4, or x - max in bfloat16), so "equal" can only mean
    # equal up to a few steps at the scale of the inputs and the result, per summed term.
    eps = torch.finfo(x.dtype).eps
    step = eps * (1 + x.double().abs().max().item() + truth.abs().max().item()) * terms
    rtol = {torch.bfloat16: 1.6e-2, torch.float32: 1.3e-6, torch.float64: 1e-7}[x.dtype]
    torch.testing.assert_close(ours.double(), theirs.double(), atol=2 * step, rtol=rtol)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    our_error = (ours.double() - truth).abs().max().item()
    their_error = (theirs.double() - truth).abs().max().item()
    assert our_error <= max(their_error, step), f"ours is {our_error:.3g} from the truth, torch's {their_error:.3g}"


@FEW
@given(x=activations(), data=st.data())
def test_softmax_and_log_softmax_equal_torch(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    torch.testing.assert_close(losses.softmax(x, dim=dim), F.softmax(x, dim=dim))
    assert_matches_torch(losses.log_softmax(x, dim=dim), F.log_softmax(x, dim=dim),
                         F.log_softmax(x.double(), dim=dim), x)
    torch.testing.assert_close(losses.logsumexp(x.double(), dim=dim), torch.logsumexp(x.double(), dim=dim))


@FEW
@given(x=activations(), seed=st.integers(0, 1000), reduction=st.sampled_from(["none", "mean", "sum"]),
       ignore_some=st.booleans(), weighted=st.booleans())
def test_nll_loss_and_cross_entropy_equal_torch(x, seed, reduction, ignore_some, weighted):
    target = random_targets(x, seed, ignore_some and x.ndim > 1)
    n_classes = x.shape[1] if x.ndim > 1 else x.shape[0]
    weight = torch.linspace(0.5, 2.0, n_classes, dtype=x.dtype) if weighted else None
    log_probs = F.log_softmax(x, dim=1 if x.ndim > 1 else 0)
    torch.testing.assert_close(losses.nll_loss(log_probs, target, weight=weight, reduction=reduction),
                               F.nll_loss(log_probs, target, weight=weight, reduction=reduction))
    terms = target.numel() if reduction == "sum" else 1
    truth = F.cross_entropy(x.double(), target, weight=None if weight is None else weight.double(), reduction=reduction)
    assert_matches_torch(losses.cross_entropy(x, target, weight=weight, reduction=reduction),
                         F.cross_entropy(x, target, weight=weight, reduction=reduction), truth, x, terms)


@FEW
@given(x=activations(min_dims=2), seed=st.integers(0, 1000), reduction=st.sampled_from(["none", "mean", "sum"]),
       ignore_some=st.booleans(), weighted=st.booleans(), smoothing=st.sampled_from([0.1, 0.5, 1.0]))
def test_label_smoothing_equals_torch(x, seed, reduction, ignore_some, weighted, smoothing):
    x = x.double()  # the formula is what is tested here; rounding is covered above
    target = random_targets(x, seed, ignore_some)
    weight = torch.linspace(0.5, 2.0, x.shape[1], dtype=x.dtype) if weighted else None
    options = dict(weight=weight, reduction=reduction, label_smoothing=smoothing)
    torch.testing.assert_close(losses.cross_entropy(x, target, **options), F.cross_entropy(x, target, **options))


def test_signatures_match_torch():
    import inspect
    deprecated = {"size_average", "reduce", "_stacklevel"}  # torch keeps these only for old code
    for name in ("softmax", "log_softmax", "nll_loss", "cross_entropy"):
        ours = inspect.signature(getattr(losses, name)).parameters
        theirs = {k: v for k, v in inspect.signature(getattr(F, name)).parameters.items() if k not in deprecated}
        assert list(ours) == list(theirs), name
        for key, parameter in theirs.items():
            assert ours[key].default == parameter.default, (name, key)



@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("magnitude", [1e2, 1e3, 1e4])
def test_finite_for_huge_logits(dtype, magnitude):
    x = torch.tensor([[magnitude, -magnitude, 0.0], [magnitude, magnitude, magnitude]], dtype=dtype)
    target = torch.tensor([1, 2])
    for result in (losses.softmax(x, 1), losses.log_softmax(x, 1), losses.cross_entropy(x, target)):
        assert torch.isfinite(result).all(), result
    if magnitude > math.log(torch.finfo(dtype).max):  # past here exp overflows to inf, and inf/inf is nan
        naive = x.exp() / x.exp().sum(dim=1, keepdim=True)
        assert torch.isnan(naive).any(), "the naive softmax should overflow here; the test lost its point"
    torch.testing.assert_close(losses.cross_entropy(x, target), F.cross_entropy(x, target))


def test_softmax_of_minus_infinity_is_zero():
    x = torch.tensor([[0.0, float("-inf"), 1.0]])
    torch.testing.assert_close(losses.softmax(x, dim=1), F.softmax(x, dim=1))
    assert losses.softmax(x, dim=1)[0, 1] == 0


# ---- the chapter's worked numbers -----------------------------------------------------------------------

@pytest.fixture
def chapter_acts() -> torch.Tensor:
    torch.manual_seed(42)
    return torch.randn((6, 2)) * 2


TARGETS = torch.tensor([0, 1, 0, 1, 1, 0])


def test_worked_example_numbers(chapter_acts):
    expected_acts = torch.tensor([[0.6734, 0.2576], [0.4689, 0.4607], [-2.2457, -0.3727],
                                  [4.4164, -1.2760], [0.9233, 0.5347], [1.0698, 1.6187]])
    torch.testing.assert_close(chapter_acts, expected_acts, atol=1e-4, rtol=0)
    torch.testing.assert_close(losses.sigmoid(chapter_acts), torch.tensor(
        [[0.6623, 0.5641], [0.6151, 0.6132], [0.0957, 0.4079], [0.9881, 0.2182], [0.7157, 0.6306], [0.7446, 0.8346]]),
        atol=1e-4, rtol=0)
    first = torch.tensor([0.6025, 0.5021, 0.1332, 0.9966, 0.5959, 0.3661])
    sm = losses.softmax(chapter_acts, dim=1)
    torch.testing.assert_close(sm[:, 0], first, atol=1e-4, rtol=0)
    torch.testing.assert_close(losses.binary_from_two(chapter_acts), sm[:, 0])
    picked = sm[range(6), TARGETS]
    torch.testing.assert_close(picked, torch.tensor([0.6025, 0.4979, 0.1332, 0.0034, 0.4041, 0.3661]),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(losses.nll_loss(sm, TARGETS, reduction="none"), -picked)
    per_item = losses.cross_entropy(chapter_acts, TARGETS, reduction="none")
    torch.testing.assert_close(per_item, torch.tensor([0.5067, 0.6973, 2.0160, 5.6958, 0.9062, 1.0048]),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(per_item, -picked.log())
    loss = losses.cross_entropy(chapter_acts, TARGETS)
    assert round(loss.item(), 4) == 1.8045
    torch.testing.assert_close(loss, torch.nn.CrossEntropyLoss()(chapter_acts, TARGETS))


def test_exp_and_softmax_columns():
    acts = torch.tensor([0.02, -2.49, 1.25])
    torch.testing.assert_close(acts.exp(), torch.tensor([1.0202, 0.0829, 3.4903]), atol=1e-4, rtol=0)
    torch.testing.assert_close(losses.softmax(acts, dim=0), torch.tensor([0.2221, 0.0180, 0.7599]), atol=1e-4, rtol=0)


def test_gradient_is_softmax_minus_one_hot(chapter_acts):
    logits = chapter_acts.clone().requires_grad_()
    losses.cross_entropy(logits, TARGETS, reduction="sum").backward()
    expected = losses.softmax(chapter_acts, dim=1) - F.one_hot(TARGETS, 2)
    torch.testing.assert_close(logits.grad, expected)


def per_item_where_loss(acts: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """where_loss of each item alone, fed p(class 1) from the two-class softmax."""
    p1 = losses.softmax(acts, dim=1)[:, 1]
    return torch.stack([losses.where_loss(p1[i:i + 1], targets[i:i + 1]) for i in range(len(targets))])


@pytest.mark.parametrize("seed", range(5))
def test_where_loss_agrees_with_two_class_cross_entropy(seed):
    generator = torch.Generator().manual_seed(seed)
    acts = torch.randn(16, 2, generator=generator, dtype=torch.float64) * 3
    targets = torch.randint(0, 2, (16,), generator=generator)
    p1 = losses.softmax(acts, dim=1)[:, 1]
    torch.testing.assert_close(p1, 1 - losses.binary_from_two(acts))
    where = per_item_where_loss(acts, targets)
    ce = losses.cross_entropy(acts, targets, reduction="none")
    # Both depend only on p, the softmax probability of the right class: where_loss is 1 - p and
    # cross-entropy is -log p, so where_loss = 1 - exp(-cross_entropy), item by item and then averaged.
    torch.testing.assert_close(where, 1 - (-ce).exp())
    torch.testing.assert_close(losses.where_loss(p1, targets), where.mean())
    # Hence they rank the items identically, from most to least wrong...
    assert torch.equal(where.argsort(), ce.argsort())
    # ...and both fall when the right class's activation rises.
    nudged = acts.clone()
    nudged[range(16), targets] += 0.5
    assert (per_item_where_loss(nudged, targets) < where).all()
    assert (losses.cross_entropy(nudged, targets, reduction="none") < ce).all()


# ---- clear errors -------------------------------------------------------------------------------------

def test_target_out_of_range_is_a_clear_error():
    x = torch.randn(4, 3)
    with pytest.raises(IndexError, match=r"class index 3.*3 classes.*0 to 2"):
        losses.cross_entropy(x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(IndexError, match="class index -1"):
        losses.nll_loss(x, torch.tensor([0, -1, 2, 0]))


def test_bad_shapes_and_types_are_clear_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"target of shape \(4,\).*has shape \(3,\)"):
        losses.cross_entropy(x, torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="argmax"):
        losses.cross_entropy(x, F.one_hot(torch.tensor([0, 1, 2, 0]), 3).float())
    with pytest.raises(ValueError, match="single number"):
        losses.cross_entropy(torch.tensor(1.0), torch.tensor(0))
    with pytest.raises(ValueError, match="reduction"):
        losses.nll_loss(x, torch.tensor([0, 1, 2, 0]), reduction="average")
    with pytest.raises(ValueError, match="dim="):
        losses.softmax(x)
    with pytest.raises(IndexError, match="out of range"):
        losses.log_softmax(x, dim=2)
    with pytest.raises(TypeError, match=r"x\.float\(\)"):
        losses.softmax(torch.tensor([1, 2, 3]), dim=0)


def test_integer_input_errors_name_the_function_called():
    x, target = torch.tensor([[1, 2], [3, 4]]), torch.tensor([0, 1])
    calls = {"softmax": lambda: losses.softmax(x, dim=1), "log_softmax": lambda: losses.log_softmax(x, dim=1),
             "nll_loss": lambda: losses.nll_loss(x, target), "cross_entropy": lambda: losses.cross_entropy(x, target)}
    for name, call in calls.items():
        with pytest.raises(TypeError, match=rf"^{name} needs floating-point.*x\.float\(\)"):
            call()


def test_binary_helpers_refuse_more_than_two_classes():
    with pytest.raises(ValueError, match="two activations"):
        losses.binary_from_two(torch.randn(4, 3))
    with pytest.raises(ValueError, match="0 or 1"):
        losses.where_loss(torch.rand(3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="one probability per target"):
        losses.where_loss(torch.rand(3), torch.tensor([0, 1]))
