"""Exercises and questionnaire of notebook 08, heatmaps with hooks: ``from helpers.exercise_sets import nb08 as ex``."""
from __future__ import annotations

import math

import torch
from torch import nn

from helpers.exercises import (ChoiceExercise, CodeExercise, FunctionExercise, Questionnaire, Reflection,
                               ValueExercise, track_set)

# ---- q1: CAM by hand ------------------------------------------------------------------------------------------------


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


q1 = FunctionExercise(
    """Write `cam_by_hand(features, weight, target)`: `features` is one picture's feature map from the body,
    shape (channels, h, w); `weight` is the final linear layer's weight, shape (classes, channels). Return the
    class activation map of class `target`, shape (h, w). Then `answer = cam_by_hand`.""",
    reference=_cam_reference,
    test_cases=_cam_cases(),
    hints=["Each channel gets one number from the target's row of `weight`: `weight[target]`.",
           "Multiply each channel by its weight and add the channels up: `(weight[target][:, None, None] * features).sum(0)`."],
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

# ---- q2: the identity --------------------------------------------------------------------------------------------

q2 = ValueExercise(
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

# ---- q3: Grad-CAM's scale ----------------------------------------------------------------------------------------

q3 = ValueExercise(
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

# ---- q4: a hook that cleans up ----------------------------------------------------------------------------------


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


q4 = CodeExercise(
    """Write `output_of(model, module, x)`: run `model(x)` and return what `module` (a layer inside `model`)
    output, detached from the graph. No hook may be left registered afterwards, not even when the forward pass
    raises an error. Then `answer = output_of`.""",
    checker=_check_output_of,
    reference=_output_of_reference,
    hints=["`handle = module.register_forward_hook(fn)` with `fn(module, inputs, output)`; `handle.remove()` unregisters.",
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

# ---- q5: is a pointing-game result noise? ------------------------------------------------------------------------

q5 = ValueExercise(
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
               "is the random baseline; a map that learned where the animal is must beat it by more than the noise "
               "(two binomial standard errors)."),
])

progress = track_set(globals())
