"""The batch transform of presizing: every geometric augmentation composed into ONE resampling (notebook 02).

``BatchAugment`` (``nn.Module``, any device) writes flip, rotation, zoom, perspective warp and the random resized
crop as coordinate maps and composes them into one sampling grid, so each image is interpolated exactly once,
from the presized image straight to the model's size. Lighting and normalisation follow.

Geometry convention: coordinates are normalised to [-1, 1] with ``align_corners=False`` (the edges of the
picture sit at -1 and 1, pixel centres half a pixel in). Unlike fastai (which uses ``align_corners=True``),
this makes the identity map a plain resize, and a flip or a 90-degree turn land exactly on pixel centres.
fastai also runs its random crop as a second resampling when ``min_scale < 1``; here it is part of the one grid.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --- the recipe, named once ---------------------------------------------------------------------

@dataclass(frozen=True)
class AugmentRecipe:
    """How strongly each augmentation is drawn; fastai's ``aug_transforms(min_scale=0.75)`` by default (notebook 02).

    Like torchvision's classification presets, the numbers live here only: ``BatchAugment``, the conventional
    per-item chain, the step-by-step chain and ``pets_dataloaders`` all read them from a recipe.
    """

    min_scale: float = 0.75    # the random crop keeps at least this fraction of the area
    max_rotate: float = 10.    # degrees either way
    min_zoom: float = 1.
    max_zoom: float = 1.1
    max_warp: float = 0.2      # perspective tilt
    p_affine: float = 0.75     # chance of each of rotation, zoom and warp
    max_lighting: float = 0.2  # brightness and contrast
    p_lighting: float = 0.75
    do_flip: bool = True


PETS_RECIPE = AugmentRecipe()
NO_AUGMENTATION = AugmentRecipe(min_scale=1., max_rotate=0., min_zoom=1., max_zoom=1., max_warp=0., p_affine=0.,
                                max_lighting=0., p_lighting=0., do_flip=False)


# --- the coordinate maps ------------------------------------------------------------------------
# Every map takes a point of the OUTPUT image to the point of the INPUT image it should show, as a 3x3 matrix
# acting on (x, y, 1) in normalised coordinates. Composing maps is multiplying matrices, which is why all the
# geometric augmentations together still cost one interpolation.

def crop_matrices(scale: Tensor, centre: Tensor, height: int, width: int) -> Tensor:
    """Output square -> a square crop of ``scale`` of the short side's area, placed by ``centre`` (notebook 02).

    ``centre`` is in [-1, 1].
    """
    side = scale.sqrt() * min(height, width)                     # crop side in input pixels
    half_x, half_y = side / width, side / height                 # its half-extent in normalised units
    matrix = _eye(len(scale), scale)
    matrix[:, 0, 0], matrix[:, 1, 1] = half_x, half_y
    matrix[:, 0, 2], matrix[:, 1, 2] = centre[:, 0] * (1 - half_x), centre[:, 1] * (1 - half_y)
    return matrix


def zoom_matrices(zoom: Tensor, centre: Tensor) -> Tensor:
    """Zoom in by ``zoom`` (>= 1 shows less), towards ``centre`` in [-1, 1] (notebook 02)."""
    shrink = 1 / zoom
    matrix = _eye(len(zoom), zoom)
    matrix[:, 0, 0] = matrix[:, 1, 1] = shrink
    matrix[:, 0, 2], matrix[:, 1, 2] = centre[:, 0] * (1 - shrink), centre[:, 1] * (1 - shrink)
    return matrix


def rotation_matrices(degrees: Tensor, height: int, width: int) -> Tensor:
    """Turn the picture ``degrees`` counter-clockwise (as displayed) about its centre (notebook 02)."""
    theta = torch.deg2rad(degrees)
    cos, sin = theta.cos(), theta.sin()
    matrix = _eye(len(degrees), degrees)
    # y points down in images, so this matrix turns the content counter-clockwise on screen. The aspect
    # factors keep the turn rigid in pixels when normalised x and y have different pixel lengths.
    matrix[:, 0, 0], matrix[:, 0, 1] = cos, -sin * height / width
    matrix[:, 1, 0], matrix[:, 1, 1] = sin * width / height, cos
    return matrix


def flip_matrices(flip: Tensor) -> Tensor:
    """Mirror left-right where ``flip`` is True (notebook 02)."""
    matrix = _eye(len(flip), flip)
    matrix[:, 0, 0] = 1 - 2 * flip.to(matrix.dtype)
    return matrix


def warp_matrices(warp: Tensor) -> Tensor:
    """Perspective (homography) tilting the picture by ``warp[:, 0]`` and ``warp[:, 1]`` (notebook 02).

    The first tilts it horizontally, the second vertically.

    A horizontal tilt makes one side taller than the other: the corner (x, y) is sent to
    (x * (1 + tilt_v * y), y * (1 + tilt_h * x)). The 3x3 matrix through those four corner pairs is the
    solution of an 8x8 linear system, solved for the whole batch at once.
    """
    corners = torch.tensor([[-1., -1.], [1., -1.], [1., 1.], [-1., 1.]], dtype=warp.dtype, device=warp.device)
    x, y = corners[:, 0], corners[:, 1]                                            # (4,)
    source_x = x * (1 + warp[:, 1:2] * y)                                          # (B, 4)
    source_y = y * (1 + warp[:, 0:1] * x)
    batch = len(warp)
    system = warp.new_zeros(batch, 8, 8)
    ones, zeros = torch.ones_like(source_x), torch.zeros_like(source_x)
    # From u' * (g x + h y + 1) = a x + b y + c (and the same for y'): two linear equations per corner.
    system[:, 0::2] = torch.stack([x.expand(batch, 4), y.expand(batch, 4), ones, zeros, zeros, zeros,
                                   -source_x * x, -source_x * y], dim=-1)
    system[:, 1::2] = torch.stack([zeros, zeros, zeros, x.expand(batch, 4), y.expand(batch, 4), ones,
                                   -source_y * x, -source_y * y], dim=-1)
    target = torch.stack([source_x, source_y], dim=-1).reshape(batch, 8)
    coefficients = torch.linalg.solve(system, target)
    return torch.cat([coefficients, warp.new_ones(batch, 1)], dim=1).reshape(batch, 3, 3)


def apply_homography(points: Tensor, matrices: Tensor) -> Tensor:
    """Send points ``(B, ..., 2)`` through 3x3 maps ``(B, 3, 3)``, dividing by the third coordinate (notebook 02)."""
    batch = points.shape[0]
    flat = points.reshape(batch, -1, 2)
    homogeneous = torch.cat([flat, torch.ones_like(flat[..., :1])], dim=-1) @ matrices.transpose(1, 2)
    return (homogeneous[..., :2] / homogeneous[..., 2:]).reshape(points.shape)


def affine_matrices(params: dict[str, Tensor], height: int, width: int) -> Tensor:
    """flip @ rotate @ zoom @ crop: the affine part of ``BatchAugment``, output -> input (notebook 02)."""
    return (flip_matrices(params["flip"]) @ rotation_matrices(params["rotate"], height, width)
            @ zoom_matrices(params["zoom"], params["zoom_centre"])
            @ crop_matrices(params["crop_scale"], params["crop_centre"], height, width))


def sampling_grid(params: dict[str, Tensor], height: int, width: int, size: int) -> Tensor:
    """``BatchAugment``'s one sampling grid: warp @ (flip @ rotate @ zoom @ crop), per output pixel (notebooks 02, 07).

    Notebook 02 builds it step by step (``F.affine_grid`` of the affine matrix, then the warp applied to those
    coordinates); multiplying the matrices first gives the same grid for a fraction of the arithmetic.
    """
    return homography_grid(warp_matrices(params["warp"]) @ affine_matrices(params, height, width), size)


def homography_grid(matrices: Tensor, size: int) -> Tensor:
    """A ``(B, size, size, 2)`` sampling grid for output -> input 3x3 maps ``(B, 3, 3)`` (notebook 02)."""
    # Pixel centres of the output in normalised units (align_corners=False), as F.affine_grid places them.
    steps = (torch.arange(size, device=matrices.device, dtype=matrices.dtype) * 2 + 1) / size - 1
    u, v = steps.view(1, 1, size), steps.view(1, size, 1)
    m = matrices[:, :, :, None, None]                              # broadcast each entry over (size, size)
    denominator = m[:, 2, 0] * u + m[:, 2, 1] * v + m[:, 2, 2]
    x = (m[:, 0, 0] * u + m[:, 0, 1] * v + m[:, 0, 2]) / denominator
    y = (m[:, 1, 0] * u + m[:, 1, 1] * v + m[:, 1, 2]) / denominator
    return torch.stack([x, y], dim=-1)


def grid_scale(grid: Tensor, height: int, width: int) -> Tensor:
    """How many input pixels one output pixel spans, per sample, read off the grid's spacing (notebook 02)."""
    step_x = (grid[:, :, 1:] - grid[:, :, :-1]) * grid.new_tensor([width / 2, height / 2])
    step_y = (grid[:, 1:, :] - grid[:, :-1, :]) * grid.new_tensor([width / 2, height / 2])
    return (step_x.norm(dim=-1).mean(dim=(1, 2)) * step_y.norm(dim=-1).mean(dim=(1, 2))).sqrt()


def antialias_blur(x: Tensor, scale: Tensor) -> Tensor:
    """Gaussian blur of each image, just strong enough for shrinking it ``scale`` times without aliasing (notebook 02).

    A blur keeps every pixel where it is (a convolution on the same grid), so it is not a resampling:
    the image still goes through one interpolation. sigma = 0.3 * sqrt(scale**2 - 1) was chosen by
    measurement (``compare_quality`` on three photos, 460 -> 224): 0.3 gained about 2.5 dB PSNR over no
    blur, 0.15 about 0.5 dB, while 0.5 lost 4 dB (too soft). Nothing happens when enlarging.
    """
    sigma = 0.3 * (scale.float().clamp(min=1) ** 2 - 1).sqrt()
    radius = int(math.ceil(3 * float(sigma.max()))) if len(sigma) else 0
    if radius == 0:
        return x
    batch, channels, height, width = x.shape
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma.to(x.device)[:, None].clamp(min=1e-3)) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).to(x.dtype).repeat_interleave(channels, dim=0)
    # One channel per group (depthwise) lets every image have its own sigma in a single convolution.
    flat = x.reshape(1, batch * channels, height, width)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel[:, None, None, :],
                    groups=batch * channels)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel[:, None, :, None],
                    groups=batch * channels)
    return flat.reshape(batch, channels, height, width)


PADDING_MODES = ("reflection", "zeros", "border")


def resample(x: Tensor, grid: Tensor, antialias: bool = False, padding_mode: str = "reflection") -> Tensor:
    """The one interpolation: bilinear ``grid_sample``, reflection padding by default (notebook 02).

    Optionally after an antialiasing blur.

    ``padding_mode`` says what is shown where the grid points outside the picture: its mirror image
    ("reflection", fastai's choice), black ("zeros") or the edge pixels repeated ("border") (notebook 07).
    """
    if antialias:
        x = antialias_blur(x, grid_scale(grid, *x.shape[-2:]))
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode=padding_mode, align_corners=False)


def _eye(batch: int, like: Tensor) -> Tensor:
    dtype = like.dtype if like.is_floating_point() else torch.float32
    return torch.eye(3, dtype=dtype, device=like.device).repeat(batch, 1, 1)


# --- lighting -----------------------------------------------------------------------------------

def adjust_lighting(x: Tensor, brightness: Tensor, contrast: Tensor) -> Tensor:
    """Brightness then contrast in logit space, as fastai does: sigmoid(c * (logit(x) + logit(b))) (notebook 02).

    ``brightness`` 0.5 and ``contrast`` 1 leave the image unchanged; working in logit space keeps every
    pixel inside (0, 1) however strong the change.
    """
    shift = torch.logit(brightness.to(x.dtype))[:, None, None, None]
    return x.clamp(1e-7, 1 - 1e-7).logit_().add_(shift).mul_(contrast.to(x.dtype)[:, None, None, None]).sigmoid_()


# --- the batch transform ------------------------------------------------------------------------

class BatchAugment(nn.Module):
    """Flip, rotate, zoom, warp and crop a batch in ONE ``grid_sample``, then light and normalise it (notebook 02).

    Train mode draws parameters per sample (``make_params``) and applies them (``transform``); eval mode
    takes the centre square and resizes it once. Input: ``B x 3 x H x W`` uint8 (0-255) or float (0-1)
    on any device; output: normalised float (float32 for uint8 input) ``B x 3 x size x size`` on that device.
    """

    def __init__(self, size: int = 224, min_scale: float = PETS_RECIPE.min_scale,
                 max_rotate: float = PETS_RECIPE.max_rotate, min_zoom: float = PETS_RECIPE.min_zoom,
                 max_zoom: float = PETS_RECIPE.max_zoom, max_warp: float = PETS_RECIPE.max_warp,
                 p_affine: float = PETS_RECIPE.p_affine, max_lighting: float = PETS_RECIPE.max_lighting,
                 p_lighting: float = PETS_RECIPE.p_lighting, do_flip: bool = PETS_RECIPE.do_flip,
                 mean: tuple = IMAGENET_MEAN, std: tuple = IMAGENET_STD, antialias: bool = False,
                 chunk_size: int | None = None, padding_mode: str = "reflection"):
        super().__init__()
        checks = [(int(size) >= 1, f"size must be a positive number of pixels, got {size!r}"),
                  (0 < min_scale <= 1, f"min_scale is a fraction of the image area in (0, 1], got {min_scale!r}"),
                  (0 < min_zoom <= max_zoom, f"need 0 < min_zoom <= max_zoom, got {min_zoom!r} and {max_zoom!r}"),
                  (0 <= max_warp < 1, f"max_warp must be in [0, 1), got {max_warp!r}"),
                  (0 <= max_lighting < 1, f"max_lighting must be in [0, 1), got {max_lighting!r}"),
                  (0 <= p_affine <= 1 and 0 <= p_lighting <= 1, "p_affine and p_lighting are probabilities in [0, 1]"),
                  (len(mean) == 3 and len(std) == 3 and min(std) > 0, "mean and std need 3 values, std all > 0"),
                  (padding_mode in PADDING_MODES, f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"BatchAugment: {message}.")
        self.size, self.min_scale, self.max_rotate = int(size), float(min_scale), float(max_rotate)
        self.min_zoom, self.max_zoom, self.max_warp = float(min_zoom), float(max_zoom), float(max_warp)
        self.p_affine, self.max_lighting, self.p_lighting = float(p_affine), float(max_lighting), float(p_lighting)
        self.do_flip, self.antialias, self.chunk_size = bool(do_flip), bool(antialias), chunk_size
        self.padding_mode = padding_mode
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_recipe(cls, size: int, recipe: AugmentRecipe = PETS_RECIPE, **kwargs) -> BatchAugment:
        """A BatchAugment drawing its strengths from ``recipe`` (notebook 02).

        ``NO_AUGMENTATION`` gives only the centre resize.
        """
        return cls(size=size, **asdict(recipe), **kwargs)

    # -- parameters --

    def make_params(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Draw one set of random parameters per sample of ``x`` (notebook 02).

        Drawn on the CPU, then moved to ``x``'s device.
        """
        batch = _check_batch(x).shape[0]

        def uniform(low: float, high: float, *shape: int) -> Tensor:
            return low + (high - low) * torch.rand(batch, *shape, generator=generator)

        def chance(p: float, *shape: int) -> Tensor:
            return torch.rand(batch, *shape, generator=generator) < p

        # As in fastai, every transform is switched on by its own coin: rotation, zoom and each direction of
        # the warp with probability p_affine, brightness and contrast each with p_lighting.
        contrast_limit = -math.log(1 - self.max_lighting)
        params = {
            "flip": chance(0.5) & self.do_flip,
            "rotate": uniform(-self.max_rotate, self.max_rotate) * chance(self.p_affine),
            "zoom": torch.where(chance(self.p_affine), uniform(self.min_zoom, self.max_zoom), torch.ones(batch)),
            "zoom_centre": uniform(-1, 1, 2),
            "warp": uniform(-self.max_warp, self.max_warp, 2) * chance(self.p_affine, 2),
            "crop_scale": uniform(self.min_scale, 1),
            "crop_centre": uniform(-1, 1, 2),
            "brightness": torch.where(chance(self.p_lighting),
                                      uniform(0.5 - self.max_lighting / 2, 0.5 + self.max_lighting / 2),
                                      torch.full((batch,), 0.5)),
            "contrast": torch.where(chance(self.p_lighting), uniform(-contrast_limit, contrast_limit).exp(),
                                    torch.ones(batch)),
        }
        return {name: value.to(x.device) for name, value in params.items()}

    def identity_params(self, x: Tensor) -> dict[str, Tensor]:
        """Parameters that change nothing: the centre square, resized, as eval mode uses (notebook 07)."""
        batch, device = _check_batch(x).shape[0], x.device
        return {"flip": torch.zeros(batch, dtype=torch.bool, device=device),
                "rotate": torch.zeros(batch, device=device), "zoom": torch.ones(batch, device=device),
                "zoom_centre": torch.zeros(batch, 2, device=device), "warp": torch.zeros(batch, 2, device=device),
                "crop_scale": torch.ones(batch, device=device), "crop_centre": torch.zeros(batch, 2, device=device),
                "brightness": torch.full((batch,), 0.5, device=device), "contrast": torch.ones(batch, device=device)}

    # -- applying them --

    def transform(self, x: Tensor, params: dict[str, Tensor], lighting: bool = True) -> Tensor:
        """Apply chosen ``params``: one resampling to ``size``, then lighting, then normalisation (notebook 02)."""
        x = _check_batch(x)
        batch, _, height, width = x.shape
        missing = sorted(set(self.identity_params(x[:0])) - set(params))
        if missing:
            raise KeyError(f"params lacks {missing}; build them with make_params(x) or identity_params(x).")
        wrong = [name for name, value in params.items() if len(value) != batch]
        if wrong:
            raise ValueError(f"params {wrong} were drawn for another batch size than {batch}; "
                             "call make_params on this batch.")
        out_dtype = x.dtype if x.is_floating_point() else torch.float32
        geometry = {name: value.to(x.device, torch.float32 if value.is_floating_point() else value.dtype)
                    for name, value in params.items()}
        grid = sampling_grid(geometry, height, width, self.size)
        # Sampling is linear, so uint8 images are sampled as 0-255 floats and divided by 255 afterwards,
        # on 224-px images instead of 460-px ones; the division is folded into the normalisation below.
        to_unit = 1 / 255 if x.dtype == torch.uint8 else 1.0
        # The buffers follow the batch, so a module left on the CPU still works on a GPU batch.
        mean, std = self.mean.to(x.device, out_dtype), self.std.to(x.device, out_dtype)
        # On a CPU a whole batch of float 460-px images does not fit in cache: converting and sampling a few
        # images at a time (then working in place) is faster. On a GPU the whole batch goes at once.
        chunk = self.chunk_size or (batch if x.device.type != "cpu" else 16)
        pieces = []
        for start in range(0, batch, chunk):
            part = slice(start, start + chunk)
            piece = resample(x[part].to(out_dtype), grid[part], antialias=self.antialias,
                             padding_mode=self.padding_mode)
            scale = to_unit
            if lighting:
                piece = adjust_lighting(piece.mul_(scale), geometry["brightness"][part], geometry["contrast"][part])
                scale = 1.0
            pieces.append(piece.mul_(scale / std).sub_(mean / std))
        return torch.cat(pieces)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return self.transform(x, self.make_params(x))
        return self.transform(x, self.identity_params(x), lighting=False)

    def decode(self, x: Tensor) -> Tensor:
        """Undo the normalisation: floats in [0, 1], ready to show (notebook 01)."""
        return (x * self.std.to(x.device, x.dtype) + self.mean.to(x.device, x.dtype)).clamp(0, 1)

    def extra_repr(self) -> str:
        return (f"size={self.size}, min_scale={self.min_scale}, max_rotate={self.max_rotate}, "
                f"zoom=({self.min_zoom}, {self.max_zoom}), max_warp={self.max_warp}, p_affine={self.p_affine}, "
                f"max_lighting={self.max_lighting}, p_lighting={self.p_lighting}, do_flip={self.do_flip}, "
                f"antialias={self.antialias}, padding_mode={self.padding_mode!r}")


def _check_batch(x: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"BatchAugment expects a torch.Tensor batch (B x 3 x H x W), got {type(x).__name__}; "
                        "turn PIL images into tensors with torchvision.transforms.v2.functional.pil_to_tensor.")
    if x.ndim == 3 and x.shape[0] == 3:
        raise ValueError(f"BatchAugment expects a batch B x 3 x H x W, got one image of shape {tuple(x.shape)}; "
                         "add the batch dimension with x[None] (or x.unsqueeze(0)).")
    if x.ndim != 4:
        raise ValueError(f"BatchAugment expects a 4-d batch B x 3 x H x W, got shape {tuple(x.shape)}; "
                         "stack single images into a batch with torch.stack(list_of_3xHxW_images).")
    if x.shape[1] != 3:
        hint = ("it looks channels-last: use x.permute(0, 3, 1, 2)" if x.shape[-1] == 3 else
                "for grayscale use x.expand(-1, 3, -1, -1), or convert images with .convert('RGB')")
        raise ValueError(f"BatchAugment expects 3 colour channels in dimension 1, got shape {tuple(x.shape)}; {hint}.")
    if not (x.dtype == torch.uint8 or x.is_floating_point()):
        raise TypeError(f"BatchAugment expects uint8 pixels (0-255) or floats (0-1), got {x.dtype}; "
                        "use x.to(torch.uint8) for 0-255 values or x.float() / 255.")
    return x
