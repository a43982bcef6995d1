"""Exercises and questionnaire of notebook 07, inside a CNN: ``from helpers.exercise_sets import nb07 as ex``."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from helpers.exercises import (
    ChoiceExercise,
    CodeExercise,
    FunctionExercise,
    Questionnaire,
    Reflection,
    ValueExercise,
    track_set,
)


def _conv_out_size(n: int, k: int, s: int = 1, p: int = 0) -> int:
    return (n + 2 * p - k) // s + 1


def _batchnorm_train(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def _batchnorm_unbiased(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=True, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def _batchnorm_per_picture(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def _batchnorm_no_eps(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def _batchnorm_eps_outside(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / (torch.sqrt(var) + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def _batches() -> list[tuple]:
    generator = torch.Generator().manual_seed(7)
    cases = []
    for shape in [(4, 3, 5, 5), (2, 2, 3, 4), (16, 1, 2, 2)]:
        x = torch.randn(*shape, generator=generator) * 3 + 1
        gamma = torch.rand(shape[1], generator=generator) + 0.5
        beta = torch.randn(shape[1], generator=generator)
        cases.append((x, gamma, beta))
    # A channel that barely varies (a standard deviation of 1e-3, variance 1e-6, against eps = 1e-5): only here does
    # eps change the result by more than float noise, so only this case tells a BatchNorm without eps, or with eps
    # outside the square root, from the real one.
    x = torch.randn(8, 2, 3, 3, generator=generator)
    x[:, 1] = 0.5 + 1e-3 * torch.randn(8, 3, 3, generator=generator)
    cases.append((x, torch.ones(2), torch.zeros(2)))
    return cases


def _check_dropout(dropout) -> None:
    assert callable(dropout), "answer with your function `dropout(x, p, training)` itself, not its result."
    ones = torch.ones(200_000)
    for p in (0.2, 0.5):
        torch.manual_seed(0)
        out = dropout(ones.clone(), p, True)
        assert isinstance(out, torch.Tensor) and out.shape == ones.shape, "return a tensor of the input's shape."
        zeroed = (out == 0).float().mean().item()
        assert abs(zeroed - p) < 0.01, (f"with p={p} your function zeroes {zeroed:.1%} of the values; it should zero "
                                        f"about {p:.0%} (each one with probability p).")
        kept = out[out != 0]
        assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - p))), (
            f"with p={p} the kept values of a tensor of ones should all be 1/(1-p) = {1 / (1 - p):g}.")
        torch.manual_seed(1)
        assert not torch.equal(dropout(ones.clone(), p, True), out), \
            "two calls gave the same mask: draw a fresh random mask every time."
    x = torch.randn(100)
    assert torch.equal(dropout(x.clone(), 0.5, False), x), ("in eval mode (training=False) dropout must return x "
                                                            "unchanged.")


def _dropout_reference(x: torch.Tensor, p: float = 0.5, training: bool = True) -> torch.Tensor:
    if not training or p == 0:
        return x
    return x * torch.bernoulli(torch.full_like(x, 1 - p)) / (1 - p)


def _dropout_unscaled(x, p=0.5, training=True):
    return x * torch.bernoulli(torch.full_like(x, 1 - p)) if training else x


def _dropout_keep_p(x, p=0.5, training=True):
    return x * torch.bernoulli(torch.full_like(x, p)) / p if training else x


def _dropout_always(x, p=0.5, training=True):
    return x * torch.bernoulli(torch.full_like(x, 1 - p)) / (1 - p)


conv_out_size = FunctionExercise(
    """Write `conv_out_size(n, k, s, p)`: the side of a convolution's output for an `n`-pixel side, a `k`-pixel
    kernel, stride `s` and padding `p` on each side. It must return a whole number (an int).""",
    reference=_conv_out_size,
    test_cases=[(28, 3, 1, 1), (28, 3, 2, 1), (7, 3, 2, 1), (224, 7, 2, 3), (5, 3, 1, 0), (10, 4, 3, 0), (64, 5, 2, 2)],
    hints=["Count the positions where the kernel fits on the padded side, n + 2p pixels wide.",
           "With stride s you only keep every s-th position, starting with the first: round down, then add 1."],
    solution="""
    def conv_out_size(n, k, s=1, p=0):
        return (n + 2 * p - k) // s + 1
    """,
    wrong_answers=[lambda n, k, s, p: (n + 2 * p - k) / s + 1, lambda n, k, s, p: (n + p - k) // s + 1,
                   lambda n, k, s, p: (n + 2 * p - k) // s, lambda n, k, s, p: n // s],
    explanation=("On the padded side of n + 2p pixels the kernel fits at n + 2p - k + 1 positions; with stride s "
                 "every s-th of them is kept, counting the first, so the floor of (n + 2p - k) / s, plus 1."),
)

q1 = ValueExercise(
    """How many parameters (weights and biases) does `nn.Conv2d(3, 16, 5)` have? A colour picture in, 16 channels
    out, 5 x 5 kernels, with a bias.""",
    expected=1216,
    hints=["Each output channel has one 5 x 5 kernel per input channel.", "Add one bias per output channel."],
    solution="answer = 16 * 3 * 5 * 5 + 16   # 1216",
    wrong_answers=[1200, 416, 256, 1203],
    explanation=("Each of the 16 output channels has one 5 x 5 kernel per input channel (16 * 3 * 25 = 1,200 "
                 "weights) and one bias (16)."),
)

batchnorm_train = FunctionExercise(
    """Write `batchnorm_train(x, gamma, beta, eps=1e-5)` for a batch `x` of shape N x C x H x W: what
    `nn.BatchNorm2d` computes in training mode, with `gamma` and `beta` of length C. The check includes a channel
    that barely varies, where `eps` matters: compare yours with `nn.BatchNorm2d` there.""",
    reference=_batchnorm_train,
    test_cases=_batches(),
    hints=["Statistics per channel: reduce over dimensions 0, 2 and 3 (keepdim=True helps broadcasting).",
           "Normalisation uses the biased variance: `x.var(..., unbiased=False)`.",
           "eps goes inside the square root; gamma and beta need the shape 1 x C x 1 x 1."],
    solution="""
    def batchnorm_train(x, gamma, beta, eps=1e-5):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)
    """,
    wrong_answers=[_batchnorm_unbiased, _batchnorm_per_picture, _batchnorm_no_eps, _batchnorm_eps_outside],
    right_answers=[lambda x, gamma, beta, eps=1e-5: F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps),
                   lambda x, gamma, beta, eps=1e-5: torch.nn.functional.batch_norm(
                       x, torch.zeros(x.shape[1]), torch.ones(x.shape[1]), gamma, beta, True, 0.1, eps)],
    explanation=("In training, BatchNorm normalises each channel with the mean and the biased variance over the "
                 "batch and both spatial axes, adds eps inside the square root so that a channel that barely "
                 "varies is not blown up, then scales by gamma and shifts by beta."),
)

q2 = ValueExercise(
    """A fresh `nn.BatchNorm2d(1)` (momentum 0.1) sees one training batch whose values have mean 2.0 and unbiased
    variance 5.0. What are `(running_mean, running_var)` afterwards?""",
    expected=(0.2, 1.4),
    hints=["They start at 0 and 1.", "PyTorch's momentum is the weight of the new batch: 0.9 * old + 0.1 * new."],
    solution="answer = (0.2, 1.4)   # 0.9 * 0 + 0.1 * 2.0 and 0.9 * 1 + 0.1 * 5.0",
    wrong_answers=[(1.8, 4.6), (2.0, 5.0), (0.2, 0.5), (1.8, 5.4)],
    # What the layer itself holds: one-element tensors, read straight off bn.running_mean and bn.running_var.
    right_answers=[(torch.tensor([0.2]), torch.tensor([1.4])), [0.2, 1.4], torch.tensor([0.2, 1.4]),
                   (torch.tensor(0.2), 1.4)],
    explanation=("The running statistics start at 0 and 1 and move a tenth of the way towards each batch: 0.9 * 0 "
                 "+ 0.1 * 2 = 0.2 and 0.9 * 1 + 0.1 * 5 = 1.4 (the running variance uses the unbiased estimate)."),
)

dropout = CodeExercise(
    """Write `dropout(x, p, training)`: in training, zero each element with probability `p` and scale the kept ones
    so the expected value is unchanged; in eval (`training=False`), return `x` unchanged.
    `answer = dropout` (the function itself).""",
    checker=_check_dropout,
    reference=_dropout_reference,
    hints=["`torch.bernoulli(torch.full_like(x, 1 - p))` is 1 where an element is kept.",
           "Kept elements are divided by 1 - p: a half of them survive at p = 0.5, so each counts double."],
    solution="""
    def dropout(x, p=0.5, training=True):
        if not training or p == 0:
            return x
        keep = torch.bernoulli(torch.full_like(x, 1 - p))
        return x * keep / (1 - p)
    answer = dropout
    """,
    wrong_answers=[_dropout_unscaled, _dropout_keep_p, _dropout_always, "dropout"],
    explanation=("A kept element is multiplied by 1 / (1 - p), so that on average it brings the same value as "
                 "before the dropout; in eval mode nothing is dropped, so nothing needs rescaling."),
)


def _check_matrix(answer) -> None:
    kernel = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert isinstance(answer, torch.Tensor), "answer with a tensor (the matrix)."
    assert answer.shape == (4, 16), (f"a 2x2 kernel with stride 2 on a 4x4 picture gives a 2x2 output: 4 rows, and 16 "
                                     f"columns for the flattened picture; your matrix has shape {tuple(answer.shape)}.")
    # Pictures with no zero pixel and random ones: a weight on a pixel that is 0 in every test would go unseen.
    pictures = torch.cat([torch.arange(1.0, 17.0)[None],
                          torch.randn(4, 16, generator=torch.Generator().manual_seed(6))])
    expected = F.conv2d(pictures.view(-1, 1, 4, 4), kernel[None, None], stride=2).flatten(1)
    assert torch.allclose(pictures @ answer.float().T, expected, atol=1e-5), (
        "your matrix times the flattened picture is not the convolution: row i * 2 + j should hold the kernel's "
        "weights at the columns of the pixels under output (i, j), which starts at pixel (2i, 2j) with stride 2.")


def _matrix_reference(stride: int = 2) -> torch.Tensor:
    kernel = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = (4 - 2) // stride + 1
    matrix = torch.zeros(out * out, 16)
    for i in range(out):
        for j in range(out):
            for a in range(2):
                for b in range(2):
                    matrix[i * out + j, (stride * i + a) * 4 + (stride * j + b)] = kernel[a, b]
    return matrix


def _matrix_stride_one_rows() -> torch.Tensor:  # stride 1's rows 0, 2, 6, 8: forgets that the kernel jumps
    return _matrix_reference(stride=1)[[0, 1, 3, 4]]


q3 = CodeExercise(
    """The kernel `[[1, 2], [3, 4]]` (2 x 2) slides over a 4 x 4 picture with no padding and **stride 2**. Build
    the matrix `M` such that `M @ picture.flatten()` equals the convolution, flattened (row-major).
    `answer = M` (a float tensor).""",
    checker=_check_matrix,
    reference=_matrix_reference(),
    hints=["The output is 2 x 2, so M has 4 rows; the picture flattens to 16 numbers, so 16 columns.",
           "Output (i, j) reads the pixels (2i + a, 2j + b) for a, b in 0, 1: column (2i + a) * 4 + 2j + b."],
    solution="""
    M = torch.zeros(4, 16)
    kernel = torch.tensor([[1., 2.], [3., 4.]])
    for i in range(2):
        for j in range(2):
            for a in range(2):
                for b in range(2):
                    M[i * 2 + j, (2 * i + a) * 4 + (2 * j + b)] = kernel[a, b]
    answer = M
    """,
    wrong_answers=[torch.zeros(4, 16), _matrix_stride_one_rows(), _matrix_reference().flip(1)],
    explanation=("Each output pixel is a weighted sum of the four pixels under the kernel; with stride 2 the kernel "
                 "jumps two pixels between outputs, so the rows hold the same four weights shifted by 2 columns "
                 "(or 2 rows of the picture, 8 columns) instead of 1."),
)

# ---- in the lesson: the receptive field of a stack of layers ---------------------------------------------------------


def _receptive_field(layers) -> int:
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump   # each new layer widens the field by (k - 1) steps of the input grid it sees
        jump *= stride
    return field


def _receptive_field_backwards(layers) -> int:
    field = 1
    for kernel, stride in reversed(list(layers)):
        field = stride * field + (kernel - stride)
    return field


def _receptive_field_sum(layers):  # forgets the strides
    return 1 + sum(kernel - 1 for kernel, _ in layers)


def _receptive_field_own_stride(layers):  # multiplies by the layer's own stride instead of the earlier ones'
    field = 1
    for kernel, stride in layers:
        field += (kernel - 1) * stride
    return field


def _receptive_field_product(layers):
    result = 1
    for kernel, _ in layers:
        result *= kernel
    return result


_FIELD_CASES = [([(3, 1)],), ([(3, 1), (3, 1)],), ([(5, 2), (3, 2), (3, 2), (3, 2), (3, 2)],),
                ([(7, 2), (3, 2), (3, 1), (3, 1)],), ([(3, 2), (3, 1), (2, 2), (3, 1)],)]

receptive_field = FunctionExercise(
    """Write `receptive_field(layers)`: `layers` is a list of `(kernel, stride)` pairs, the convolutions (or
    poolings) of a network from the input on. Return the side, in input pixels, of the square of the input that
    one output position of the last layer depends on (its receptive field; ignore the picture's border).
    Then `answer = receptive_field`.""",
    reference=_receptive_field,
    test_cases=_FIELD_CASES,
    hints=["One 3 x 3 stride-1 layer sees 3 pixels; a second one sees 3 positions of the first, which cover 5 pixels.",
           "Keep `jump`, how many input pixels one step of the current grid is (the product of the strides so far): "
           "each layer adds `(kernel - 1) * jump` to the field, then `jump *= stride`."],
    solution="""
    def receptive_field(layers):
        field, jump = 1, 1
        for kernel, stride in layers:
            field += (kernel - 1) * jump
            jump *= stride
        return field
    answer = receptive_field
    """,
    wrong_answers=[_receptive_field_sum, _receptive_field_own_stride, _receptive_field_product],
    right_answers=[_receptive_field_backwards],
    explanation=("A layer's kernel spans kernel - 1 steps of the grid it reads, and one step of that grid is as many "
                 "input pixels as the product of the strides before it: the field grows fastest in deep, strided "
                 "layers."),
)

q4 = ValueExercise(
    """A network applies, from the input on: a 3 x 3 convolution with stride 1, another 3 x 3 convolution with
    stride 1, a 2 x 2 max pooling with stride 2, then a 3 x 3 convolution with stride 1. How many input pixels
    wide is the receptive field of one output position of the last convolution?""",
    expected=10,
    hints=["Start with 3, then 5 after the second convolution; the pooling adds one pixel and doubles the step.",
           "The last 3 x 3 convolution spans 2 steps of 2 pixels each."],
    solution="answer = 1 + 2 * 1 + 2 * 1 + 1 * 1 + 2 * 2   # 10",
    wrong_answers=[9, 8, 11, 12],
    right_answers=[10.0, torch.tensor(10)],
    explanation=("3, then 5, then 6 after the pooling (which also makes one step 2 pixels), then 6 + 2 x 2 = 10."),
)

questionnaire = Questionnaire([
    Reflection("What does a 3x3 kernel compute at one position of a picture, and how does it make a whole new picture?",
               "It multiplies its nine weights with the nine pixels of the 3x3 patch under it and adds the products: "
               "one output pixel. Sliding it to every position (moving by the stride) gives one output value per "
               "position, a new picture in which the kernel's pattern shows up where it is present."),
    ValueExercise("How many parameters does `nn.Conv2d(1, 4, 3)` have?", expected=40,
                  wrong_answers=[36, 13, 12],
                  hints=["Four 3x3 kernels, plus one bias each."], solution="answer = 4 * 9 + 4   # 40",
                  explanation=("Four 3 x 3 kernels for the one input channel make 36 weights, plus "
                               "one bias per output channel: 40.")),
    Reflection("Why do ResNets use a larger kernel (7x7, stride 2) in their first layer?",
               "A 3x3 kernel on an RGB picture sees only 27 numbers, fewer than the 64 channels the layer produces, so "
               "it could only rearrange its input. A 7x7 kernel sees 147 numbers and has to summarise them into useful "
               "features, and the stride halves the side early so every later layer works on fewer pixels."),
    ChoiceExercise("What does padding do in a convolutional layer?",
                   ["adds pixels around the picture so the kernel also fits at the border, and the output can keep the "
                    "input's size",
                    "skips positions so the output gets smaller",
                    "adds channels so the layer has more features"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["Without it a 3x3 kernel's output is two pixels smaller than its input."],
                   solution=("a: padding (zeros by default) lets the kernel sit on the border pixels; stride is "
                             "what skips."),
                   explanation=("Without padding a kernel cannot be centred on the border pixels, "
                                "so the output shrinks; padding adds a frame (zeros by default) so "
                                "that the output can keep the input's size.")),
    Reflection("In what sense is a convolution a matrix multiplication?",
               "Flatten the picture into a vector: every output pixel is a weighted sum of some input pixels, so the "
               "whole convolution is one matrix times that vector. The matrix is special: each row holds the same "
               "kernel weights (shared weights), shifted along, and zeros everywhere else."),
    ChoiceExercise("In eval mode, which statistics does BatchNorm normalise with?",
                   ["the running mean and variance it accumulated during training",
                    "the current batch's mean and variance",
                    "none: eval mode skips the layer"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["At inference the batch might be a single picture."],
                   explanation=("A single picture has no batch statistics worth trusting, so eval "
                                "mode uses the running averages collected during training, and the "
                                "output no longer depends on the rest of the batch.")),
    Reflection("Why do BatchNorm layers have the learned parameters gamma and beta?",
               "Normalising forces each channel to mean 0 and standard deviation 1, which may not be what the next "
               "layer needs. Gamma (scale) and beta (shift) let the network choose any scale and offset per channel, "
               "and they are easy to learn: one number moves a whole channel."),
    ValueExercise("PyTorch's BatchNorm uses momentum 0.1. What number plays the same role in the convention where the "
                  "update is written `running = m * running + (1 - m) * batch`?",
                  expected=0.9, wrong_answers=[0.1, 0.01],
                  hints=["In that convention m is the weight of the OLD value."],
                  solution="answer = 0.9   # 1 - 0.1",
                  explanation=("In the other convention m weights the old value, which in PyTorch's "
                               "is 1 - momentum = 0.9.")),
    Reflection("What did Santurkar et al. (2018) argue about why batch normalisation helps?",
               "That it is not about reducing internal covariate shift (injecting noise that shifts the distributions "
               "did not hurt BatchNorm's benefit), but that it makes the loss landscape smoother: the loss and its "
               "gradients change more predictably, so larger learning rates can be used."),
    ChoiceExercise("What does nn.Dropout(p) do at inference (eval mode)?",
                   ["nothing: it returns its input unchanged",
                    "zeroes a fraction p of the activations",
                    "multiplies every activation by 1 - p"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["The kept activations were already scaled during training."],
                   explanation=("Dropout only acts during training; the kept activations were "
                                "scaled up then, so at inference the layer is the identity.")),
    ValueExercise("With `nn.Dropout(0.2)` in training mode, by what factor is every kept activation multiplied?",
                  expected=1.25, wrong_answers=[0.8, 5.0, 1.2],
                  hints=["The expected value must stay the same: (1 - p) * factor = 1."],
                  solution="answer = 1 / (1 - 0.2)   # 1.25",
                  explanation=("With p = 0.2 a fifth of the activations are zeroed; multiplying the "
                               "rest by 1 / 0.8 = 1.25 keeps the expected value unchanged.")),
    Reflection("Augmentation can map output pixels outside the picture. What do the padding modes zeros, border and "
               "reflection put there, and which does fastai use by default?",
               "Zeros fills with black (zero), border repeats the nearest edge pixel outward, reflection mirrors the "
               "picture at its edge. fastai defaults to reflection, because it continues the scene most naturally; "
               "whether it trains better on a given dataset is worth measuring."),
])

progress = track_set(globals())
