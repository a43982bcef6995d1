"""Exercises and questionnaire of notebook 02, presizing: ``from helpers.exercise_sets import nb02 as ex``."""
from __future__ import annotations

import math

import torch

from helpers.augment import BatchAugment, rotation_matrices
from helpers.exercises import ChoiceExercise, CodeExercise, FunctionExercise, Questionnaire, Reflection, ValueExercise


def _rotation_reference(degrees: float) -> torch.Tensor:
    return rotation_matrices(torch.tensor([float(degrees)]), 1, 1)[0]


def _rotation_clockwise(degrees: float) -> torch.Tensor:
    return _rotation_reference(-degrees)


def _rotation_in_radians(degrees: float) -> torch.Tensor:
    return _rotation_reference(math.degrees(degrees))


_BATCH = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
_AUGMENT = BatchAugment(size=12)


def _identity_with(**changes) -> dict:
    params = _AUGMENT.identity_params(_BATCH)
    for name, value in changes.items():
        params[name] = torch.as_tensor(value, dtype=params[name].dtype).expand_as(params[name]).clone()
    return params


def _check_mirror_params(params) -> None:
    assert isinstance(params, dict), (f"answer with a dict of parameters like the one identity_params(x) returns, "
                                      f"not a {type(params).__name__}.")
    missing = sorted(set(_AUGMENT.identity_params(_BATCH)) - set(params))
    assert not missing, f"your dict lacks {missing}: start from aug.identity_params(x) and change one entry."
    out = _AUGMENT.decode(_AUGMENT.transform(_BATCH, params, lighting=False))
    assert torch.allclose(out, torch.flip(_BATCH, dims=[-1]), atol=1e-4), \
        "these parameters do not give the left-right mirror image of the batch (and nothing else)."


q1 = ValueExercise(
    """A 500 x 375 photo goes through `PresizeCrop(460, train=False)`. Which box `(left, top, right, bottom)`
    of the photo ends up resized to 460 x 460? `answer = (left, top, right, bottom)` in whole pixels.""",
    expected=(62, 0, 437, 375),
    hints=["The square's side is the photo's short side.",
           "For validation the square sits in the middle: as much is cut off on the left as on the right (round down)."],
    solution="answer = (62, 0, 437, 375)   # side 375; (500 - 375) // 2 = 62 pixels cut on the left",
    wrong_answers=[(0, 0, 375, 375), (0, 0, 500, 375), (62.5, 0, 437.5, 375)],
)

q2 = FunctionExercise(
    """Write `rotation_matrix(degrees)`: the 3x3 matrix (a float tensor) that sends a point of the OUTPUT image,
    in normalised coordinates `(x, y, 1)`, to the point of a square input image it shows, when the picture is turned
    `degrees` counter-clockwise on screen. Remember that y points down in images.""",
    reference=_rotation_reference,
    test_cases=[0.0, 90.0, 30.0, -10.0],
    hints=["`torch.deg2rad` first: cos and sin want radians.",
           "Check it with 90 degrees: the output's top-right corner (1, -1) must show the input's top-left corner (-1, -1).",
           "The bottom row is (0, 0, 1): rotation moves no point off the image plane."],
    solution="""
    def rotation_matrix(degrees):
        theta = torch.deg2rad(torch.tensor(float(degrees)))
        return torch.tensor([[theta.cos(), -theta.sin(), 0.],
                             [theta.sin(),  theta.cos(), 0.],
                             [0.,           0.,          1.]])
    """,
    wrong_answers=[_rotation_clockwise, _rotation_in_radians, lambda degrees: _rotation_reference(degrees)[:2]],
)

q3 = ValueExercise(
    """Compose by hand: the map that zooms in 2x towards the centre (shows the middle half of the picture) and then
    mirrors it left-right. `answer` is the 3x3 matrix `flip @ zoom` (a nested list or a tensor).""",
    expected=[[-0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]],
    hints=["Zooming in 2x means each output coordinate looks at an input coordinate half as far from the centre.",
           "The flip only changes the sign of x."],
    solution="answer = [[-0.5, 0, 0], [0, 0.5, 0], [0, 0, 1]]   # flip = diag(-1, 1, 1), zoom = diag(0.5, 0.5, 1)",
    wrong_answers=[[[-2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]],
                   [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]],
                   [[-0.5, 0.0, 0.0], [0.0, -0.5, 0.0], [0.0, 0.0, 1.0]]],
)

q4 = ValueExercise(
    """Count the interpolations each training image goes through between its presized version and the model:
    `answer = (ours, chain)`, where `ours` is for `BatchAugment` and `chain` for the v2 chain of crop-resize,
    flip, rotation, zoom and perspective warp (count a step only if it computes new pixel values by interpolation).""",
    expected=(1, 4),
    hints=["A left-right flip only reorders pixels: no new values are computed.",
           "BatchAugment multiplies all its maps together before it samples."],
    solution="answer = (1, 4)   # ours: one grid_sample; chain: crop-resize, rotate, zoom, warp (flip is exact)",
    wrong_answers=[(1, 5), (2, 4), (5, 5)],
)

q5 = CodeExercise(
    """With `aug = BatchAugment(size=12)` and any batch `x`, build the parameters that make `aug.transform(x, params)`
    return the left-right mirror image of `x` and change nothing else. `answer = params` (a dict).""",
    checker=_check_mirror_params,
    reference=_identity_with(flip=True),
    hints=["`aug.identity_params(x)` gives parameters that change nothing.",
           "Only one entry needs to change, and it holds booleans."],
    solution="""
    params = aug.identity_params(x)
    params["flip"][:] = True
    answer = params
    """,
    wrong_answers=[_identity_with(), _identity_with(rotate=180.0), [True, True]],
)

questionnaire = Questionnaire([
    Reflection("Why does presizing first resize every image to a fairly large size on the CPU, and only later, on the "
               "GPU, produce the final small size?",
               "The first resize gives every image the same size so they can be stacked into a batch, and it is large "
               "so the later crops, zooms and rotations still find real picture everywhere (no empty zones). The GPU "
               "then does all the geometric augmentation of a whole batch in one go and directly produces the small "
               "final size, so each image is interpolated once and the work runs in parallel where it is fast."),
    Reflection("Name the two ways data augmentation can degrade an image, and how presizing avoids each.",
               "Empty zones: rotating or zooming out a picture that is already at its final size uncovers corners with "
               "no data (black or padding). Interpolation loss: every resize, rotation or warp computes new pixels from "
               "old ones, so doing them one after another blurs the image more each time. Presizing keeps a margin of "
               "real picture around the final crop, and composes all the transforms into one resampling."),
    ChoiceExercise("How many times is each image of a training batch resampled by our BatchAugment?",
                   ["once, from the presized image straight to the final size",
                    "twice: once for the affine transforms and once for the random crop",
                    "once per transform (flip, rotation, zoom, warp, crop)"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["Look at how many grid_sample calls the notebook counted."],
                   solution="Once. (fastai's own version does two when min_scale < 1: its random crop is a separate step.)"),
    ChoiceExercise("What does BatchAugment do to a validation batch (eval mode)?",
                   ["the same random transforms as in training", "takes the centre square and resizes it once",
                    "nothing at all: validation images keep the presize"],
                   answer="b", wrong_answers=["a", "c"],
                   hints=["Validation must measure the model, not the luck of the draw; and the model needs its input size."]),
    Reflection("Why does the item transform cut its square at a random place for training but in the centre for validation?",
               "A random place is one more augmentation: the model sees slightly different framings of each training "
               "image. Validation should be repeatable and comparable from epoch to epoch, so it always takes the same, "
               "most representative square: the centre."),
    ValueExercise("With a presize of 460 and `min_scale=0.75` (a fraction of the AREA), how many pixels wide is the "
                  "smallest square the random crop can take? (round to the nearest pixel)",
                  expected=398, wrong_answers=[345, 460, 230], rtol=0, atol=0.5,
                  hints=["Area scales with the square of the side."],
                  solution="answer = round(math.sqrt(0.75) * 460)   # 398"),
    Reflection("The optional antialiasing blurs the presized image before sampling. Why is that not a second resampling?",
               "A blur is a convolution on the same pixel grid: every output pixel stays exactly where it was and is "
               "a weighted average of its neighbours. Nothing is moved or sampled between pixels, so the image is still "
               "interpolated only once, by grid_sample."),
])
