"""Drawing the synthetic creatures: five visible cues, one picture, and where the animal is (notebooks 01, 05, 08).

Every creature is described by five cues, each from a short list:

* coat colour (``COAT_COLOURS``): black, cream, ginger, grey, brown, tan;
* coat pattern (``PATTERNS``): solid, stripes, spots, patches, points (dark ears, face, legs and tail);
* ears (``EARS``): pointed (cats), round, floppy;
* body (``BODIES``): compact or long;
* tail (``TAILS``): thin or bushy.

The tiny pets (``helpers.tiny_pets``) give each breed one fixed combination; the offline backbone
(``helpers.backbone``) learns to read the cues from creatures whose cues are drawn at random, never from breeds.
The cues are drawn large enough to survive the tiny profile's 64-pixel training size: a stripe is about three
pixels wide there, an ear about seven pixels tall.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw

COAT_COLOURS = ((38, 34, 32), (238, 232, 218), (214, 116, 36), (128, 132, 144), (118, 74, 40), (214, 184, 120))
COLOUR_NAMES = ("black", "cream", "ginger", "grey", "brown", "tan")
PATTERNS = ("solid", "stripes", "spots", "patches", "points")
EARS = ("pointed", "round", "floppy")
BODIES = ("compact", "long")
TAILS = ("thin", "bushy")
CUES = ("colour", "pattern", "ears", "body", "tail")
N_VALUES = (len(COAT_COLOURS), len(PATTERNS), len(EARS), len(BODIES), len(TAILS))

Features = tuple[int, int, int, int, int]  # (colour, pattern, ears, body, tail), indices into the lists above


def describe(features: Features) -> str:
    """The cues in words, e.g. 'grey spots, pointed ears, long body, thin tail' (notebook 05)."""
    colour, pattern, ears, body, tail = features
    return f"{COLOUR_NAMES[colour]} {PATTERNS[pattern]}, {EARS[ears]} ears, {BODIES[body]} body, {TAILS[tail]} tail"


def _shade(colour: tuple[int, ...], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, v * factor))) for v in colour[:3])


def _marks_colour(coat: tuple[int, int, int]) -> tuple[int, int, int]:
    # Dark marks on a light coat, light marks on a dark one, so every pattern shows on every colour.
    return _shade(coat, 0.35) if sum(coat) > 300 else (222, 214, 200)


@dataclass(frozen=True)
class _Layout:
    """Where one creature's parts lie on its square canvas, in pixels."""

    scale: float
    side: int
    cx: float  # centre of the body
    cy: float
    half_w: float
    half_h: float
    head_r: float
    hx: float  # centre of the head
    hy: float
    tail_start: tuple[float, float]
    tail_end: tuple[float, float]
    tail_width: int


def _lay_out(body: int, tail: int, scale: float, rng: np.random.Generator) -> _Layout:
    # The draws from rng come in a fixed order (body width, body height, tail tip): the tiny pets depend on it.
    side = int(scale * 3.8)  # room for the longest creature turned by 20 degrees
    cx, cy = side / 2 + scale * (0.08 if BODIES[body] == "long" else 0.25), side / 2 + scale * 0.12
    half_w = scale * (0.72 if BODIES[body] == "compact" else 1.12) * rng.uniform(0.95, 1.05)
    half_h = scale * 0.5 * rng.uniform(0.95, 1.05)
    head_r = scale * 0.42
    hx, hy = cx + half_w * 0.92, cy - half_h * 0.8
    tail_start = (cx - half_w * 0.9, cy - half_h * 0.2)
    tail_end = (cx - half_w - scale * 0.6, cy - half_h - scale * rng.uniform(0.2, 0.7))
    tail_width = max(2, int(scale * (0.14 if TAILS[tail] == "thin" else 0.4)))
    return _Layout(scale, side, cx, cy, half_w, half_h, head_r, hx, hy, tail_start, tail_end, tail_width)


def _draw_upright_ears(draw: ImageDraw.ImageDraw, at: _Layout, ears: int, fill) -> None:
    # Pointed and round ears stand on the head, inside the silhouette; floppy ones hang outside it (_draw_face).
    if EARS[ears] == "pointed":
        for dx in (-0.62, 0.22):
            base = at.hx + dx * at.head_r
            draw.polygon([(base, at.hy - at.head_r * 0.5), (base + at.head_r * 0.2, at.hy - at.head_r * 1.75),
                          (base + at.head_r * 0.75, at.hy - at.head_r * 0.62)], fill=fill)
    elif EARS[ears] == "round":
        for dx in (-0.62, 0.62):
            ex, ey, er = at.hx + dx * at.head_r, at.hy - at.head_r * 0.88, at.head_r * 0.42
            draw.ellipse([ex - er, ey - er, ex + er, ey + er], fill=fill)


def _silhouette(at: _Layout, ears: int) -> Image.Image:
    # The coat's shape (L, 255 = animal): body, legs, tail, head and upright ears.
    mask = Image.new("L", (at.side, at.side), 0)
    shape = ImageDraw.Draw(mask)
    shape.ellipse([at.cx - at.half_w, at.cy - at.half_h, at.cx + at.half_w, at.cy + at.half_h], fill=255)
    leg_w, leg_bottom = at.scale * 0.11, at.cy + at.half_h + at.scale * 0.5
    for x in [at.cx + f * at.half_w for f in (-0.72, -0.38, 0.38, 0.72)]:
        shape.rectangle([x - leg_w, at.cy, x + leg_w, leg_bottom], fill=255)
    shape.line([at.tail_start, at.tail_end], fill=255, width=at.tail_width)
    shape.ellipse([at.hx - at.head_r, at.hy - at.head_r, at.hx + at.head_r, at.hy + at.head_r], fill=255)
    _draw_upright_ears(shape, at, ears, 255)
    return mask


def _coat(at: _Layout, pattern: int, ears: int, coat_rgb: tuple[int, int, int],
          rng: np.random.Generator) -> Image.Image:
    # The whole canvas in the coat's colour with its pattern on top; the silhouette cuts the animal out of it.
    coat = Image.new("RGB", (at.side, at.side), coat_rgb)
    marks, marks_rgb, scale = ImageDraw.Draw(coat), _marks_colour(coat_rgb), at.scale
    if PATTERNS[pattern] == "stripes":
        step, width = scale * 0.5, max(2, int(scale * 0.2))
        offset = rng.uniform(0, step)
        for k in range(int(at.side / step) + 2):
            x = offset + k * step
            marks.line([(x, 0), (x - scale * 0.35, at.side)], fill=marks_rgb, width=width)
    elif PATTERNS[pattern] == "spots":
        for _ in range(int(rng.integers(9, 14))):
            sx, sy = at.cx + rng.uniform(-1.0, 1.3) * at.half_w, at.cy + rng.uniform(-1.9, 0.9) * at.half_h
            sr = scale * rng.uniform(0.13, 0.18)
            marks.ellipse([sx - sr, sy - sr, sx + sr, sy + sr], fill=marks_rgb)
    elif PATTERNS[pattern] == "patches":
        patch_rgb = (244, 240, 232) if sum(coat_rgb) < 500 else (48, 40, 36)
        for _ in range(int(rng.integers(2, 4))):
            px, py = at.cx + rng.uniform(-0.8, 0.8) * at.half_w, at.cy + rng.uniform(-0.7, 0.5) * at.half_h
            pr = scale * rng.uniform(0.38, 0.5)
            marks.ellipse([px - pr, py - pr * 0.8, px + pr, py + pr * 0.8], fill=patch_rgb)
    elif PATTERNS[pattern] == "points":  # colour-point: dark legs, tail, ears and face, as in a Siamese
        points_rgb = _shade(coat_rgb, 0.3) if sum(coat_rgb) > 300 else (90, 60, 40)
        marks.rectangle([0, at.cy + at.half_h * 0.55, at.side, at.side], fill=points_rgb)
        marks.line([at.tail_start, at.tail_end], fill=points_rgb, width=at.tail_width + 2)
        marks.ellipse([at.hx - at.head_r * 0.6, at.hy - at.head_r * 0.35, at.hx + at.head_r * 0.6,
                       at.hy + at.head_r * 0.9], fill=points_rgb)
        _draw_upright_ears(marks, at, ears, points_rgb)
    return coat


def _draw_face(creature: Image.Image, at: _Layout, ears: int, coat_rgb: tuple[int, int, int]) -> None:
    # Floppy ears, eyes and nose, drawn over the cut-out animal.
    face, hx, hy, head_r = ImageDraw.Draw(creature), at.hx, at.hy, at.head_r
    if EARS[ears] == "floppy":  # hanging ears lie outside the silhouette, in a darker shade of the coat
        ear_rgb = _shade(coat_rgb, 0.55) if sum(coat_rgb) > 150 else (92, 80, 72)
        for dx in (-0.9, 0.9):
            ex = hx + dx * head_r
            face.ellipse([ex - head_r * 0.32, hy - head_r * 0.65, ex + head_r * 0.32, hy + head_r * 0.85],
                         fill=ear_rgb + (255,))
    eye_r = max(1.5, at.scale * 0.07)
    eye_rgb = (250, 220, 60, 255) if sum(coat_rgb) < 200 else (20, 20, 20, 255)
    for dx in (-0.38, 0.38):
        ex, ey = hx + dx * head_r, hy - head_r * 0.15
        face.ellipse([ex - eye_r, ey - eye_r, ex + eye_r, ey + eye_r], fill=eye_rgb)
    face.ellipse([hx - eye_r, hy + head_r * 0.32 - eye_r, hx + eye_r, hy + head_r * 0.32 + eye_r],
                 fill=(150, 60, 70, 255))


def draw_creature(features: Features, scale: float, rng: np.random.Generator) -> Image.Image:
    """One animal on a transparent square (RGBA): body, legs, tail, head, ears, coat pattern, face (notebook 05)."""
    colour, pattern, ears, body, tail = features
    coat_rgb = _shade(COAT_COLOURS[colour], rng.uniform(0.92, 1.08))
    at = _lay_out(body, tail, scale, rng)
    coat = _coat(at, pattern, ears, coat_rgb, rng)
    creature = Image.new("RGBA", (at.side, at.side), (0, 0, 0, 0))
    creature.paste(coat, (0, 0), _silhouette(at, ears))
    _draw_face(creature, at, ears, coat_rgb)
    if rng.random() < 0.5:
        creature = creature.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return creature.rotate(rng.uniform(-20, 20), resample=Image.Resampling.BILINEAR)


def draw_scene(features: Features, rng: np.random.Generator, width: int, height: int,
               creature_size: tuple[float, float] = (0.24, 0.29)) -> tuple[Image.Image, Image.Image]:
    """A photo (RGB) of one creature amid a cluttered room, and its mask (L, 255 = animal) (notebook 05)."""
    background = tuple(int(v) for v in rng.integers(60, 200, size=3))
    image = Image.new("RGB", (width, height), background)
    clutter = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 8))):
        tone = tuple(int(min(255, max(0, v + rng.integers(-45, 46)))) for v in background)
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        x1, y1 = x0 + rng.uniform(-width / 2, width / 2), y0 + rng.uniform(-height / 2, height / 2)
        if rng.random() < 0.5:
            clutter.line([(x0, y0), (x1, y1)], fill=tone, width=max(1, int(rng.integers(2, 12) * width / 300)))
        else:
            clutter.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=tone)
    scale = min(width, height) * rng.uniform(*creature_size)
    creature = draw_creature(features, scale, rng)
    left = int(width / 2 + rng.uniform(-0.1, 0.1) * width - creature.width / 2)
    top = int(height / 2 + rng.uniform(-0.1, 0.1) * height - creature.height / 2)
    image.paste(creature, (left, top), creature)
    mask = Image.new("L", (width, height), 0)
    mask.paste(creature.getchannel("A"), (left, top))
    # Grey sensor noise (shared by the channels, drawn at half resolution: a quarter of the random numbers),
    # added around 128 by PIL, which clips at 0 and 255.
    grain = rng.standard_normal(((height + 1) // 2, (width + 1) // 2), dtype=np.float32) * np.float32(rng.uniform(3, 8))
    grain = Image.fromarray((grain + 128).clip(0, 255).astype(np.uint8)).resize((width, height), Image.NEAREST)
    return ImageChops.add(image, Image.merge("RGB", (grain, grain, grain)), offset=-128), mask


def trimap(mask: Image.Image) -> Image.Image:
    """Oxford-IIIT Pet's annotation format from a mask: 1 animal, 2 background, 3 the uncertain border (notebook 08)."""
    # The mask is the creature's alpha after a bilinear turn: the edge pixels are the partly covered ones.
    alpha = np.asarray(mask)
    values = np.full(alpha.shape, 2, dtype=np.uint8)
    values[alpha >= 224] = 1
    values[(alpha > 32) & (alpha < 224)] = 3
    return Image.fromarray(values, mode="L")
