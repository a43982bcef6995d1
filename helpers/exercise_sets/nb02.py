"""Exercises and questionnaire of notebook 02, presizing: ``from helpers.exercise_sets import nb02 as ex``."""
from __future__ import annotations

import math

import torch

from helpers.augment import BatchAugment, rotation_matrices
from helpers.exercises import (
    ChoiceExercise,
    CodeExercise,
    FunctionExercise,
    Questionnaire,
    Reflection,
    ValueExercise,
    track_set,
)


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
    # With lighting applied, so a changed brightness or contrast counts as "something else" too.
    out = _AUGMENT.decode(_AUGMENT.transform(_BATCH, params))
    assert torch.allclose(out, torch.flip(_BATCH, dims=[-1]), atol=1e-4), \
        "these parameters do not give the left-right mirror image of the batch (and nothing else)."


PHOTO_SIZE = (500, 375)  # width, height of the photo in q1


def _check_centre_box(box) -> None:
    width, height = PHOTO_SIZE
    side = min(width, height)
    assert isinstance(box, (tuple, list)) and len(box) == 4, \
        "answer with four numbers: answer = (left, top, right, bottom)."
    assert all(float(v).is_integer() for v in box), \
        "boxes are in whole pixels: round the margin (either way, if it is odd)."
    left, top, right, bottom = (int(v) for v in box)
    assert right - left == side and bottom - top == side, \
        f"your box is {right - left} x {bottom - top} pixels; the square's side is the photo's short side."
    assert 0 <= left and right <= width and 0 <= top and bottom <= height, "your box reaches outside the photo."
    # An odd margin cannot be split evenly: one pixel more on the left or on the right is equally centred.
    assert abs(left - (width - right)) <= 1 and abs(top - (height - bottom)) <= 1, \
        "your square is not in the middle: for validation as much is cut off on one side as on the other."


# ---- in the lesson: each one before the notebook shows its own version ----------------------------------

def _psnr(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(1 / ((image - reference) ** 2).mean())


def _crop_matrix(crop_scale: float, crop_centre: tuple) -> torch.Tensor:
    side = math.sqrt(crop_scale)
    return torch.tensor([[side, 0, crop_centre[0] * (1 - side)], [0, side, crop_centre[1] * (1 - side)], [0, 0, 1.0]])


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


_A = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3))
_B = (_A + 0.05 * torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(4))).clamp(0, 1)
_C = torch.full((3, 4, 4), 0.5)

psnr_by_hand = FunctionExercise(
    """Write `psnr_by_hand(image, reference)` for two images with pixels in [0, 1]: the mean of the squared
    differences over every pixel and channel (the MSE), then `10 * log10(1 / MSE)`, in dB.""",
    reference=_psnr,
    test_cases=[(_B, _A), (_C, _C + 0.1), (_A, _A.flip(-1))],
    hints=["`((image - reference) ** 2).mean()` is the MSE.", "`torch.log10` takes a tensor; the peak value is 1."],
    solution="""
    def psnr_by_hand(image, reference):
        mse = ((image - reference) ** 2).mean()
        return 10 * torch.log10(1 / mse)
    """,
    wrong_answers=[lambda a, b: 10 * torch.log10(1 / (a - b).abs().mean()),      # mean absolute error
                   lambda a, b: 20 * torch.log10(1 / ((a - b) ** 2).mean()),      # 20 with a squared error
                   lambda a, b: 10 * torch.log(1 / ((a - b) ** 2).mean())],       # natural log
    right_answers=[lambda a, b: -10 * torch.log10(torch.nn.functional.mse_loss(a, b)),
                   lambda a, b: 20 * torch.log10(1 / ((a - b) ** 2).mean().sqrt()),
                   lambda a, b: 10 * math.log10(1 / float(((a - b) ** 2).mean()))],
    explanation=("PSNR compares the mean squared error with the largest possible pixel value (1 here) on a log "
                 "scale: every halving of the typical error adds about 6 dB."),
)

crop_matrix = FunctionExercise(
    """Write `crop_matrix(crop_scale, crop_centre)`: the 3x3 matrix (a float tensor) that sends an OUTPUT point
    (x, y, 1), in normalised units from -1 to 1, to the input point it shows, for a square crop covering
    `crop_scale` of the input's area, placed so that `crop_centre = (cx, cy)` (each in [-1, 1]) slides it from one
    edge (-1) to the other (+1). The crop's side is `sqrt(crop_scale)` of the input's.""",
    reference=_crop_matrix,
    test_cases=[(0.8, (-0.5, 0.3)), (0.25, (1.0, -1.0)), (1.0, (0.4, 0.4)), (0.5, (0.0, 0.0))],
    hints=["Scaling by the side `s` maps the output square [-1, 1] onto a square of half-width `s` around 0.",
           "The centre may move by at most `1 - s` in each direction before the crop leaves the picture: the "
           "translation is `cx * (1 - s)` (and `cy * (1 - s)`)."],
    solution="""
    def crop_matrix(crop_scale, crop_centre):
        s = math.sqrt(crop_scale)
        return torch.tensor([[s, 0, crop_centre[0] * (1 - s)],
                             [0, s, crop_centre[1] * (1 - s)],
                             [0, 0, 1.0]])
    """,
    wrong_answers=[# the area used as the side
                   lambda a, c: torch.tensor([[a, 0, c[0] * (1 - a)], [0, a, c[1] * (1 - a)], [0, 0, 1.0]]),
                   # shifted by c itself: the crop leaves the picture
                   lambda a, c: torch.tensor([[math.sqrt(a), 0, c[0]], [0, math.sqrt(a), c[1]], [0, 0, 1.0]]),
                   # the inverse scale
                   lambda a, c: torch.tensor([[1 / math.sqrt(a), 0, c[0] * (1 - math.sqrt(a))],
                                              [0, 1 / math.sqrt(a), c[1] * (1 - math.sqrt(a))], [0, 0, 1.0]])],
    right_answers=[lambda a, c: torch.tensor([[a ** 0.5, 0.0, c[0] - c[0] * a ** 0.5],
                                              [0.0, a ** 0.5, c[1] - c[1] * a ** 0.5], [0.0, 0.0, 1.0]]),
                   lambda a, c: [[math.sqrt(a), 0, c[0] * (1 - math.sqrt(a))],
                                 [0, math.sqrt(a), c[1] * (1 - math.sqrt(a))],
                                 [0, 0, 1]]],
    explanation=("The output square [-1, 1] is shrunk to the crop's side s and shifted by c(1 - s), the most it can "
                 "move while staying inside the picture: c = -1 puts it against one edge, +1 against the other."),
)

normalise = FunctionExercise(
    """Write `normalise(x)` for a batch `x` of images (batch x 3 x height x width, pixels in [0, 1]): subtract each
    channel's ImageNet mean `(0.485, 0.456, 0.406)` and divide by its standard deviation `(0.229, 0.224, 0.225)`.""",
    reference=_normalise,
    test_cases=[torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(5)), torch.ones(1, 3, 2, 2)],
    hints=["A tensor of shape (3,) lines up with the LAST dimension (width), not the channels.",
           "`.view(1, 3, 1, 1)` makes the statistics broadcast over batch, height and width."],
    solution="""
    def normalise(x):
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return (x - mean) / std
    """,
    wrong_answers=[lambda x: ((x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
                              * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)),
                   lambda x: x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                   lambda x: (x - 0.449) / 0.226],                                    # one average for all channels
    right_answers=[lambda x: ((x - torch.tensor(IMAGENET_MEAN)[:, None, None])
                              / torch.tensor(IMAGENET_STD)[:, None, None]),
                   lambda x: __import__("torchvision").transforms.v2.functional.normalize(x, list(IMAGENET_MEAN),
                                                                                        list(IMAGENET_STD))],
    explanation=("Each channel gets its own mean and standard deviation, so the statistics must be shaped to broadcast "
                 "over the channel dimension (1, 3, 1, 1), not the width."),
)

q1 = CodeExercise(
    """A 500 x 375 photo goes through `PresizeCrop(460, train=False)`. Which box `(left, top, right, bottom)`
    of the photo ends up resized to 460 x 460? `answer = (left, top, right, bottom)` in whole pixels (when the
    margin is odd, round either way).""",
    checker=_check_centre_box,
    reference=(62, 0, 437, 375),
    hints=["The square's side is the photo's short side.",
           "For validation the square sits in the middle: as much is cut off on the left as on the right."],
    solution="answer = (62, 0, 437, 375)   # side 375; (500 - 375) // 2 = 62 pixels cut on the left (PresizeCrop "
             "rounds down)",
    wrong_answers=[(0, 0, 375, 375), (0, 0, 500, 375), (62.5, 0, 437.5, 375), (62, 0, 438, 375), (125, 0, 500, 375)],
    right_answers=[(63, 0, 438, 375), [62, 0, 437, 375], (62.0, 0.0, 437.0, 375.0)],
    explanation=("PresizeCrop cuts the largest centred square, whose side is the short side (375); the 125 pixels "
                 "of margin are split 62 on the left and 63 on the right, and that square is resized to 460."),
)

q2 = FunctionExercise(
    """Write `rotation_matrix(degrees)`: the 3x3 matrix (a float tensor) that sends a point of the OUTPUT image,
    in normalised coordinates `(x, y, 1)`, to the point of a square input image it shows, when the picture is turned
    `degrees` counter-clockwise on screen. Remember that y points down in images.""",
    reference=_rotation_reference,
    test_cases=[0.0, 90.0, 30.0, -10.0],
    hints=["`torch.deg2rad` first: cos and sin want radians.",
           "Check it with 90 degrees: turning the picture a quarter counter-clockwise brings the input's top-right "
           "corner (1, -1) to the output's top-left corner (-1, -1), so the matrix must send (-1, -1, 1) to (1, -1, "
           "1).",
           "The bottom row is (0, 0, 1): rotation moves no point off the image plane."],
    solution="""
    def rotation_matrix(degrees):
        theta = torch.deg2rad(torch.tensor(float(degrees)))
        return torch.tensor([[theta.cos(), -theta.sin(), 0.],
                             [theta.sin(),  theta.cos(), 0.],
                             [0.,           0.,          1.]])
    """,
    wrong_answers=[_rotation_clockwise, _rotation_in_radians, lambda degrees: _rotation_reference(degrees)[:2]],
    right_answers=[lambda degrees: torch.tensor([
                       [math.cos(math.radians(degrees)), -math.sin(math.radians(degrees)), 0.0],
                       [math.sin(math.radians(degrees)), math.cos(math.radians(degrees)), 0.0],
                       [0.0, 0.0, 1.0]]),
                   lambda degrees: [[math.cos(math.radians(degrees)), -math.sin(math.radians(degrees)), 0],
                                    [math.sin(math.radians(degrees)), math.cos(math.radians(degrees)), 0], [0, 0, 1]]],
    explanation=("A counter-clockwise turn on screen, with y pointing down, sends each output point to the input "
                 "point found by rotating it the other way; that is the standard rotation matrix in this "
                 "convention, extended to 3 x 3 so that it composes with the others."),
)

# Hint 2 of q2 as numbers, so a test can check the hint against the reference:
# (output point, input point) at 90 degrees.
Q2_HINT_POINTS = ((-1.0, -1.0), (1.0, -1.0))

ZOOM_CENTRE = (0.5, 0.0)  # q3 zooms towards the middle of the right half, so zoom and flip do not commute
_ZOOM_Q3 = torch.tensor([[0.5, 0.0, ZOOM_CENTRE[0] * 0.5], [0.0, 0.5, ZOOM_CENTRE[1] * 0.5], [0.0, 0.0, 1.0]])
_FLIP_Q3 = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))


def _check_flip_after_zoom(answer) -> None:
    matrix = torch.as_tensor(answer, dtype=torch.float64) if not isinstance(answer, torch.Tensor) else answer.double()
    assert matrix.shape == (3, 3), f"answer with a 3x3 matrix; yours has shape {tuple(matrix.shape)}."
    expected, swapped = (_FLIP_Q3 @ _ZOOM_Q3).double(), (_ZOOM_Q3 @ _FLIP_Q3).double()
    if torch.allclose(matrix, swapped, atol=1e-6):
        raise AssertionError("that is zoom @ flip: the same two maps in the other order. Here the order matters, "
                             "because the zoom is not centred: which one acts first on an output point?")
    assert torch.allclose(matrix[2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)), \
        "the bottom row of an affine map is (0, 0, 1)."
    assert torch.allclose(matrix, expected, atol=1e-6), \
        "not flip @ zoom: build the two matrices as in the notebook's cell and multiply them in that order."


q3 = CodeExercise(
    """Compose by hand, in the notebook's convention (a matrix maps an OUTPUT point to the input point it shows):
    `zoom` zooms in 2x towards the point (0.5, 0), the middle of the right half (the notebook's `zoom_m` with
    `shrink = 0.5`, `zoom_centre = (0.5, 0)`); `flip` mirrors left-right. `answer` is the 3x3 matrix `flip @ zoom`
    (a nested list or a tensor). Then try `zoom @ flip`: is it the same map?""",
    checker=_check_flip_after_zoom,
    reference=(_FLIP_Q3 @ _ZOOM_Q3).tolist(),
    hints=["zoom = [[0.5, 0, 0.5 * 0.5], [0, 0.5, 0], [0, 0, 1]] (the notebook's formula centre * (1 - shrink)); "
           "flip = diag(-1, 1, 1).",
           "Multiplying by flip on the LEFT changes the sign of the whole first row, translation included."],
    solution="answer = [[-0.5, 0, -0.25], [0, 0.5, 0], [0, 0, 1]]   # zoom @ flip would be [[-0.5, 0, 0.25], ...]",
    wrong_answers=[(_ZOOM_Q3 @ _FLIP_Q3).tolist(),                                   # the other order
                   [[-0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]],             # zoom towards the centre
                   [[-2.0, 0.0, -1.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]],           # zoom factor inverted
    right_answers=[_FLIP_Q3 @ _ZOOM_Q3, [[-0.5, 0, -0.25], [0, 0.5, 0], [0, 0, 1]],
                   torch.tensor([[-0.5, 0.0, -0.25], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)],
    explanation=("Each matrix maps an output point to the input point it shows, so in flip @ zoom the flip is "
                 "applied to a point first and the zoom to the result; because the zoom is off-centre, the other "
                 "order gives a different translation."),
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
    right_answers=[[1, 4], (1.0, 4.0)],
    explanation=("BatchAugment composes every geometric change into one matrix and samples each pixel once; the "
                 "chain resamples at the crop-resize, the rotation, the zoom and the warp, while a flip only "
                 "moves pixels."),
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
    right_answers=[{**_AUGMENT.identity_params(_BATCH), "flip": torch.ones(len(_BATCH), dtype=torch.bool)},
                   _identity_with(flip=True, crop_scale=1.0)],
    explanation=("identity_params describes a transform that changes nothing; setting only flip to True mirrors "
                 "each image and leaves every other transform, lighting included, at its neutral value."),
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
               "no data (black or padding). Interpolation loss: every resize, rotation or warp computes new pixels "
               "from "
               "old ones, so doing them one after another blurs the image more each time. Presizing keeps a margin of "
               "real picture around the final crop, and composes all the transforms into one resampling."),
    ChoiceExercise("How many times is each image of a training batch resampled by our BatchAugment?",
                   ["once, from the presized image straight to the final size",
                    "twice: once for the affine transforms and once for the random crop",
                    "once per transform (flip, rotation, zoom, warp, crop)"],
                   answer="a", wrong_answers=["b", "c"],
                   hints=["Look at how many grid_sample calls the notebook counted."],
                   solution="Once. (fastai's own version does two when min_scale < 1: its random crop is a separate "
                            "step.)",
                   explanation=("All the geometric transforms are composed into one matrix, so "
                                "grid_sample reads each output pixel from the presized image once.")),
    ChoiceExercise("What does BatchAugment do to a validation batch (eval mode)?",
                   ["the same random transforms as in training", "takes the centre square and resizes it once",
                    "nothing at all: validation images keep the presize"],
                   answer="b", wrong_answers=["a", "c"],
                   hints=["Validation must measure the model, not the luck of the draw; and the model needs its input "
                          "size."],
                   explanation=("Validation must measure the same thing every time, so eval mode "
                                "skips the random transforms and takes a centre square at the "
                                "final size.")),
    Reflection("Why does the item transform cut its square at a random place for training but in the centre for "
               "validation?",
               "A random place is one more augmentation: the model sees slightly different framings of each training "
               "image. Validation should be repeatable and comparable from epoch to epoch, so it always takes the "
               "same, "
               "most representative square: the centre."),
    ValueExercise("With a presize of 460 and `min_scale=0.75` (a fraction of the AREA), how many pixels wide is the "
                  "smallest square the random crop can take?",
                  expected=math.sqrt(0.75) * 460, decimals=0, wrong_answers=[345, 460, 230, 399],
                  right_answers=[398, 398.0, round(math.sqrt(0.75) * 460), math.sqrt(0.75) * 460, 398.4],
                  hints=["Area scales with the square of the side."],
                  solution="answer = round(math.sqrt(0.75) * 460)   # 398",
                  explanation=("min_scale is a fraction of the area, and the side grows with the "
                               "square root of the area: sqrt(0.75) * 460 is about 398 pixels.")),
    Reflection("The optional antialiasing blurs the presized image before sampling. Why is that not a second "
               "resampling?",
               "A blur is a convolution on the same pixel grid: every output pixel stays exactly where it was and is "
               "a weighted average of its neighbours. Nothing is moved or sampled between pixels, so the image is "
               "still "
               "interpolated only once, by grid_sample."),
])

progress = track_set(globals())
