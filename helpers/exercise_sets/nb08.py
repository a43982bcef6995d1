"""Exercises and questionnaire of notebook 08, heatmaps with hooks: ``from helpers.exercise_sets import nb08 as ex``."""
from __future__ import annotations

import math

import torch
from torch import nn

from helpers.exercises import (
    ChoiceExercise,
    CodeExercise,
    FunctionExercise,
    Questionnaire,
    Reflection,
    ValueExercise,
    track_set,
)

# ---- in the lesson: CAM by hand --------------------------------------------------------------------------------------


def _cam_reference(features: torch.Tensor, weight: torch.Tensor, target: int) -> torch.Tensor:
    return torch.einsum("c,chw->hw", weight[target], features)


def _cam_loop(features: torch.Tensor, weight: torch.Tensor, target: int) -> torch.Tensor:
    """Another correct way: one channel at a time."""
    result = torch.zeros(features.shape[1:])
    for channel in range(features.shape[0]):
        result += weight[target, channel] * features[channel]
    return result


def _cam_mean_of_channels(features, weight, target):  # forgets the class weights
    return features.mean(dim=0)


def _cam_all_classes(features, weight, target):  # adds up every class's weights instead of the target's
    return torch.einsum("c,chw->hw", weight.sum(dim=0), features)


def _cam_cases() -> list[tuple]:
    generator = torch.Generator().manual_seed(8)
    features = torch.rand(6, 3, 4, generator=generator)
    weight = torch.randn(5, 6, generator=generator)
    square = torch.randn(6, 6, generator=generator)
    return [(features, weight, 0), (features, weight, 3), (features, square, 2)]


cam_by_hand = FunctionExercise(
    """Write `cam_by_hand(features, weight, target)`: `features` is one picture's feature map from the body,
    shape (channels, h, w); `weight` is the final linear layer's weight, shape (classes, channels). Return the
    class activation map of class `target`, shape (h, w). Then `answer = cam_by_hand`.""",
    reference=_cam_reference,
    test_cases=_cam_cases(),
    hints=["Each channel gets one number from the target's row of `weight`: `weight[target]`.",
           "Multiply each channel by its weight and add the channels up: "
           "`(weight[target][:, None, None] * features).sum(0)`."],
    solution="""
    def cam_by_hand(features, weight, target):
        return torch.einsum("c,chw->hw", weight[target], features)
    answer = cam_by_hand
    """,
    wrong_answers=[_cam_mean_of_channels, _cam_all_classes],
    right_answers=[_cam_loop, lambda f, w, t: (w[t][:, None, None] * f).sum(0)],
    explanation=("The CAM of a class weights each channel of the feature map by that class's row of the final "
                 "linear layer and adds the channels, giving one number per position."),
)

# ---- q1: the identity --------------------------------------------------------------------------------------------

q1 = ValueExercise(
    """A model's head is global average pooling then one linear layer. For class "beagle" its class activation
    map on a picture is the 2 x 2 map [[1.0, 2.0], [3.0, 6.0]], and the linear layer's bias for "beagle" is -0.5.
    What is the model's logit for "beagle" on that picture?""",
    expected=2.5,
    hints=["Averaging then applying a linear layer is the same as applying it at each position then averaging.",
           "The logit is the map's mean plus the bias."],
    solution="answer = (1 + 2 + 3 + 6) / 4 - 0.5   # 2.5",
    wrong_answers=[12.0, 11.5, 3.0],
    right_answers=[(1 + 2 + 3 + 6) / 4 - 0.5, torch.tensor(2.5)],
    explanation=("Averaging then applying a linear layer is the same as applying it at every position then "
                 "averaging, so the logit is the map's mean, 3.0, plus the bias, -0.5."),
)

# ---- q2: Grad-CAM's scale ----------------------------------------------------------------------------------------

q2 = ValueExercise(
    """Grad-CAM on the body's output of an average-pool + linear model equals ReLU(CAM) divided by a number.
    What is that number when the body outputs 512 channels on a 7 x 7 grid?""",
    expected=49,
    hints=["The logit is the weight times the *mean* over positions: how does one position's activation move it?",
           "d logit / d A[c, i, j] = w[c] / (h * w) at every position, so that is also its mean over positions."],
    solution="answer = 7 * 7   # each position counts 1/49 in the average",
    wrong_answers=[512, 7, 512 * 49],
    right_answers=[49.0, torch.tensor(49)],
    explanation=("The logit depends on each channel through its average over the 7 x 7 = 49 positions, so each "
                 "position's gradient is the weight divided by 49."),
)

# ---- q3: a hook that cleans up ----------------------------------------------------------------------------------


def _output_of_reference(model: nn.Module, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    stored = {}
    handle = module.register_forward_hook(lambda m, inputs, output: stored.setdefault("out", output.detach()))
    try:
        model(x)
    finally:
        handle.remove()
    return stored["out"]


def _output_of_with_helpers(model, module, x):
    from helpers.hooks import hook_output

    with hook_output(module) as hook:
        model(x)
    return hook.stored


def _output_of_never_removed(model, module, x):
    stored = {}
    module.register_forward_hook(lambda m, inputs, output: stored.update(out=output.detach()))
    model(x)
    return stored["out"]


def _output_of_not_detached(model, module, x):
    stored = {}
    handle = module.register_forward_hook(lambda m, inputs, output: stored.update(out=output))
    try:
        model(x)
    finally:
        handle.remove()
    return stored["out"]


def _output_of_leaks_on_error(model, module, x):
    stored = {}
    handle = module.register_forward_hook(lambda m, inputs, output: stored.update(out=output.detach()))
    model(x)
    handle.remove()
    return stored["out"]


class _Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("this layer fails on purpose")


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def _check_output_of(output_of) -> None:
    assert callable(output_of), "answer should be a function: def output_of(model, module, x): ..."
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    got = output_of(model, model[1], x)
    assert isinstance(got, torch.Tensor), f"output_of should return a tensor, got {type(got).__name__}."
    torch.testing.assert_close(got, torch.relu(model[0](x)).detach(),
                               msg="the tensor returned is not what model[1] output.")
    assert got.grad_fn is None and not got.requires_grad, (
        "the stored output is still attached to the graph (it has a grad_fn): store output.detach().")
    assert _no_hooks(model), "a hook is still registered after output_of returned: remove its handle."
    failing = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), _Boom())
    try:
        output_of(failing, failing[1], x)
    except RuntimeError:
        pass
    assert _no_hooks(failing), ("when the forward pass raises, the hook stays registered: remove the handle in a "
                                "`finally:` block (or use a `with` block).")


q3 = CodeExercise(
    """Write `output_of(model, module, x)`: run `model(x)` and return what `module` (a layer inside `model`)
    output, detached from the graph. No hook may be left registered afterwards, not even when the forward pass
    raises an error. Then `answer = output_of`.""",
    checker=_check_output_of,
    reference=_output_of_reference,
    hints=["`handle = module.register_forward_hook(fn)` with `fn(module, inputs, output)`; `handle.remove()` "
           "unregisters.",
           "Put `model(x)` in a `try:` and `handle.remove()` in its `finally:`; store `output.detach()`."],
    solution="""
    def output_of(model, module, x):
        stored = {}
        handle = module.register_forward_hook(lambda m, inputs, output: stored.update(out=output.detach()))
        try:
            model(x)
        finally:
            handle.remove()
        return stored["out"]
    answer = output_of
    """,
    wrong_answers=[_output_of_never_removed, _output_of_not_detached, _output_of_leaks_on_error],
    right_answers=[_output_of_with_helpers],
    explanation=("A forward hook receives the module's output on the way through; storing it detached keeps no "
                 "graph alive, and removing the handle in a finally block leaves no hook behind even when the "
                 "forward pass raises."),
)

# ---- q4: is a pointing-game result noise? ------------------------------------------------------------------------

q4 = ValueExercise(
    """On 300 validation pictures, a heatmap's peak falls on the animal for 62% of them. What are two binomial
    standard errors of that rate (the noise we compare margins with)? Give a fraction, e.g. 0.05.""",
    expected=2 * math.sqrt(0.62 * 0.38 / 300),
    decimals=3,
    hints=["The standard error of a rate p measured on n items is sqrt(p (1 - p) / n)."],
    solution="answer = 2 * math.sqrt(0.62 * 0.38 / 300)   # 0.056",
    wrong_answers=[math.sqrt(0.62 * 0.38 / 300), 2 * 0.62 * 0.38 / 300, 0.62 / 300],
    right_answers=[0.05605, 2 * (0.62 * 0.38 / 300) ** 0.5],
    explanation=("The standard error of a rate p measured on n items is sqrt(p (1 - p) / n), about 0.028 here; "
                 "two of them make 0.056."),
)

# ---- in the lesson: the Hook context manager ------------------------------------------------------------------------


class _ReferenceHook:
    def __init__(self, module: nn.Module):
        self.stored = None
        self.handle = module.register_forward_hook(self.keep)

    def keep(self, module, inputs, output):
        self.stored = output.detach()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


class _HookNoRemove(_ReferenceHook):
    def __exit__(self, *exc):
        pass


class _HookNotDetached(_ReferenceHook):
    def keep(self, module, inputs, output):
        self.stored = output


class _HookNoEnter:
    def __init__(self, module: nn.Module):
        self.stored = None
        self.handle = module.register_forward_hook(lambda m, i, o: setattr(self, "stored", o.detach()))

    def __exit__(self, *exc):
        self.handle.remove()


class _HookClone(_ReferenceHook):
    def keep(self, module, inputs, output):
        self.stored = output.detach().clone()


class _HookFunctionStyle:
    def __init__(self, module: nn.Module):
        self.stored = None
        self.module = module
        self.handle = module.register_forward_hook(lambda m, i, o: self.__dict__.update(stored=o.detach()))

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        self.handle.remove()
        return False


def _check_hook_class(hook_class) -> None:
    assert isinstance(hook_class, type), ("answer should be the class itself: class KeepOutput: ..., then "
                                          "answer = KeepOutput.")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    try:
        with hook_class(model[1]) as hook:
            model(x)
    except (AttributeError, TypeError) as error:
        raise AssertionError(f"`with KeepOutput(module) as hook:` failed ({error}): define __enter__ (returning "
                             "self) and __exit__(self, *exc).") from None
    assert hook is not None and hasattr(hook, "stored"), "__enter__ should return the hook itself, with `stored` on it."
    assert isinstance(hook.stored, torch.Tensor), "after a forward pass, hook.stored should hold the module's output."
    torch.testing.assert_close(hook.stored, torch.relu(model[0](x)).detach(),
                               msg="hook.stored is not what the module output.")
    assert hook.stored.grad_fn is None, "hook.stored still carries the graph (a grad_fn): store output.detach()."
    assert _no_hooks(model), "the hook is still registered after the with block: remove its handle in __exit__."
    failing = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), _Boom())
    try:
        with hook_class(failing[1]):
            failing(x)
    except RuntimeError:
        pass
    assert _no_hooks(failing), "when the block raises, the hook stays registered: __exit__ must remove it."


hook_class = CodeExercise(
    """Write a class `KeepOutput`: `KeepOutput(module)` registers a forward hook on `module` that keeps the
    module's latest output, detached, in the attribute `stored`; used as `with KeepOutput(module) as hook:`,
    it gives back itself and removes its hook when the block ends (also when the block raises).
    Then `answer = KeepOutput` (the class itself).""",
    checker=lambda answer: _check_hook_class(answer),
    reference=_ReferenceHook,
    hints=["`self.handle = module.register_forward_hook(self.keep)` in `__init__`; "
           "`keep(self, module, inputs, output)` sets `self.stored = output.detach()`.",
           "A context manager has `__enter__(self)` (return `self`) and `__exit__(self, *exc)`, which Python calls "
           "even when the block raises: call `self.handle.remove()` there."],
    solution="""
    class KeepOutput:
        def __init__(self, module):
            self.stored = None
            self.handle = module.register_forward_hook(self.keep)

        def keep(self, module, inputs, output):
            self.stored = output.detach()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.remove()

    answer = KeepOutput
    """,
    wrong_answers=[_HookNoRemove, _HookNotDetached, _HookNoEnter],
    right_answers=[_HookClone, _HookFunctionStyle],
    explanation=("`__exit__` runs whenever the `with` block ends, by an error too, so the handle is always removed; "
                 "storing `output.detach()` keeps the numbers without the graph that produced them."),
)

# ---- in the lesson: Grad-CAM from an activation and its gradient ----------------------------------------------------


def _gradcam_reference(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    weights = gradient.mean(dim=(1, 2))
    return torch.relu(torch.einsum("c,chw->hw", weights, activation))


def _gradcam_loop(activation, gradient):
    result = torch.zeros(activation.shape[1:])
    for c in range(activation.shape[0]):
        result += gradient[c].mean() * activation[c]
    return result.clamp(min=0)


def _gradcam_no_relu(activation, gradient):
    return torch.einsum("c,chw->hw", gradient.mean(dim=(1, 2)), activation)


def _gradcam_elementwise(activation, gradient):  # gradient times activation, position by position
    return torch.relu((gradient * activation).sum(dim=0))


def _gradcam_activation_weights(activation, gradient):  # weights from the activation instead of the gradient
    return torch.relu(torch.einsum("c,chw->hw", activation.mean(dim=(1, 2)), activation))


def _gradcam_cases() -> list[tuple]:
    generator = torch.Generator().manual_seed(18)
    cases = []
    for channels, h, w in ((6, 3, 4), (5, 2, 2), (4, 5, 5)):
        activation = torch.rand(channels, h, w, generator=generator)
        gradient = torch.randn(channels, h, w, generator=generator)
        cases.append((activation, gradient))
    return cases


gradcam_by_hand = FunctionExercise(
    """Write `gradcam_from(activation, gradient)`: both of shape (channels, h, w), a layer's output for one
    picture and the gradient of the target's logit with respect to it. Give each channel the mean of its
    gradient over the grid as its weight, add the channels weighted so, and keep the positive part.
    Return the (h, w) map; then `answer = gradcam_from`.""",
    reference=_gradcam_reference,
    test_cases=_gradcam_cases(),
    hints=["`gradient.mean(dim=(1, 2))` gives one weight per channel.",
           "`F.relu((weights[:, None, None] * activation).sum(dim=0))`."],
    solution="""
    def gradcam_from(activation, gradient):
        weights = gradient.mean(dim=(1, 2))
        return F.relu((weights[:, None, None] * activation).sum(dim=0))
    answer = gradcam_from
    """,
    wrong_answers=[_gradcam_no_relu, _gradcam_elementwise, _gradcam_activation_weights],
    right_answers=[_gradcam_loop],
    explanation=("Averaging the gradient over the grid gives each channel one importance for the class; the "
                 "channels weighted by it and summed say where those channels are active, and the ReLU keeps only "
                 "what speaks for the class."),
)

# ---- q5: the best fixed point ----------------------------------------------------------------------------------------


def _fixed_point_reference(train_masks, valid_masks) -> float:
    share = torch.stack([torch.as_tensor(m, dtype=torch.float32) for m in train_masks]).mean(dim=0)
    row, col = divmod(int(share.argmax()), share.shape[1])
    return float(torch.stack([torch.as_tensor(m)[row, col] for m in valid_masks]).float().mean())


def _fixed_point_on_valid(train_masks, valid_masks):  # chooses the point on the masks it is scored on
    return _fixed_point_reference(valid_masks, valid_masks)


def _fixed_point_centre(train_masks, valid_masks):  # the picture's centre, not the best point
    h, w = valid_masks[0].shape
    return float(sum(bool(m[h // 2, w // 2]) for m in valid_masks) / len(valid_masks))


def _fixed_point_area(train_masks, valid_masks):  # the random baseline instead
    return float(sum(m.mean() for m in valid_masks) / len(valid_masks))


def _fixed_point_numpy(train_masks, valid_masks):
    import numpy as np
    share = np.mean(np.stack(train_masks), axis=0)
    row, col = np.unravel_index(share.argmax(), share.shape)
    return float(np.mean([m[row, col] for m in valid_masks]))


def _fixed_point_cases() -> list[tuple]:
    import numpy as np
    rng = np.random.default_rng(5)
    cases = []
    for size, spot_train, spot_valid in ((12, (3, 8), (3, 8)), (10, (6, 2), (2, 7)), (8, (2, 3), (5, 5))):
        sets = []
        for spot, n in ((spot_train, 40), (spot_valid, 30)):
            masks = []
            for _ in range(n):
                mask = np.zeros((size, size), dtype=bool)
                r, c = spot[0] - int(rng.integers(0, 2)), spot[1] - int(rng.integers(0, 2))
                mask[r:r + 2, c:c + 2] = True
                if rng.random() < 0.3:
                    mask[size // 2 - 1:size // 2 + 1, size // 2 - 1:size // 2 + 1] = True
                masks.append(mask)
            sets.append(masks)
        cases.append(tuple(sets))
    return cases


q5 = FunctionExercise(
    """Write `fixed_point_score(train_masks, valid_masks)`: both are lists of H x W bool masks (True on the
    animal). Choose the one pixel covered by the animal most often in `train_masks` (any one of the best, if
    several tie), and return the fraction of `valid_masks` that cover it: the pointing-game score of a map that
    ignores the picture. Then `answer = fixed_point_score`.""",
    reference=_fixed_point_reference,
    test_cases=_fixed_point_cases(),
    rtol=1e-6,
    hints=["Stack the training masks and take the mean over pictures: one share per pixel; `argmax` finds the best.",
           "Score on the validation masks only: choosing the point on the masks you score on flatters it."],
    solution="""
    def fixed_point_score(train_masks, valid_masks):
        share = np.mean(np.stack(train_masks), axis=0)
        row, col = np.unravel_index(share.argmax(), share.shape)
        return float(np.mean([mask[row, col] for mask in valid_masks]))
    answer = fixed_point_score
    """,
    wrong_answers=[_fixed_point_on_valid, _fixed_point_centre, _fixed_point_area],
    right_answers=[_fixed_point_numpy],
    explanation=("A point chosen on training pictures and scored on validation ones is the strongest map that "
                 "ignores the picture: a heatmap is informative only where it beats that score."),
)

questionnaire = Questionnaire([
    Reflection("What is a hook in PyTorch, and what does a forward hook receive?",
               "A function you register on a module so that PyTorch calls it while the model runs, without changing "
               "the model's code. A forward hook is called right after the module's forward with the module, its "
               "inputs and its output; whatever it returns (if not None) replaces the output. "
               "`register_forward_hook` returns a handle whose `remove()` unregisters it."),
    Reflection("Why should a hook store `output.detach()` rather than `output`, and why must its handle be removed?",
               "The output of a layer in a forward pass with gradients carries the whole graph that produced it; "
               "keeping it (for example in a list, batch after batch) keeps every graph and every intermediate tensor "
               "alive, so memory grows. `detach()` keeps the numbers only. A hook that is never removed keeps running "
               "on every later forward pass, costing time and, if it stores things, memory; with a `with` block or "
               "`try/finally` it is removed even when the forward pass fails."),
    ChoiceExercise("Which layer's output does a class activation map weight by the final linear layer's row?",
                   ["the body's last feature map (before pooling)", "the input picture",
                    "the pooled feature vector", "the first convolution"],
                   answer="a", wrong_answers=["b", "c", "d"],
                   hints=["The map must still have positions (h x w), and one channel per weight of the final layer."],
                   explanation=("The final linear layer's row weighs the channels of the body's "
                                "last feature map, so those weights applied position by position "
                                "show where the class's evidence lies.")),
    Reflection("When is CAM exact, and why is it only an approximation with the course's two-layer head?",
               "When the head is global average pooling followed by one linear layer: averaging and a linear map "
               "commute, so the logit is the average over positions of the class's weighted channels plus the bias: "
               "the map's mean plus the bias is the logit. The course's head concatenates max pooling (not an "
               "average), and has BatchNorm, a hidden layer and a ReLU: no single weight per channel describes it, so "
               "applying it position by position only approximates what it does to the whole map."),
    Reflection("What does Grad-CAM compute, step by step?",
               "Run the picture forward, catching a layer's output (the activations, C x h x w). Take the gradient of "
               "the target class's logit with respect to those activations. Average the gradient over positions: one "
               "weight per channel, saying how much that channel raises the class. Sum the channels weighted this "
               "way and keep the positive part (ReLU): the places whose features speak for the class."),
    ChoiceExercise("Grad-CAM on an earlier layer of a ResNet (say layer3 instead of layer4) gives a map that is ...",
                   ["finer (twice as many rows and columns), from less abstract features",
                    "coarser, from more abstract features",
                    "the same size, but always identical", "impossible to compute"],
                   answer="a", wrong_answers=["b", "c", "d"],
                   hints=["Each ResNet stage after the first halves the grid."],
                   explanation=("layer3 comes before the last downsampling, so its map has twice "
                                "as many rows and columns, and its features are less abstract than "
                                "those of layer4.")),
    ChoiceExercise("Why does the course catch gradients with a tensor hook set inside a forward hook, rather than "
                   "with `register_full_backward_hook`?",
                   ["torchvision's ResNets modify outputs in place (`out += identity`, in-place ReLU), which the full "
                    "backward hook refuses with a RuntimeError",
                    "tensor hooks are faster on the GPU",
                    "full backward hooks give the gradient of the input only",
                    "module hooks cannot be removed"],
                   answer="a", wrong_answers=["b", "c", "d"],
                   hints=["Look at the error the notebook shows for a BatchNorm layer inside a block."],
                   explanation=("A backward hook on a module is refused when its outputs are "
                                "changed in place, which ResNets do (out += identity, in-place "
                                "ReLU); a tensor hook on the output itself still sees the "
                                "gradient.")),
    Reflection("What does the pointing game measure, and what is its baseline?",
               "For each validation picture, whether the heatmap's strongest point falls on the animal, whose mask "
               "we know; the score is the fraction of hits. A map that pointed at a random place would hit with a "
               "probability equal to the animal's share of the picture, so the mean of that share over the pictures "
               "is the random baseline. The stronger one is the best fixed point: the pixel covered most often in "
               "the training pictures, scored on the validation ones; a map that looks at the animal must beat it "
               "by more than the noise, which needs pictures where the animal is not always in the same place."),
])

progress = track_set(globals())
