"""The offline pretrained backbone: a resnet10 body trained on a synthetic *shapes* task (notebook 05).

No ImageNet weights can be downloaded offline, yet the tiny profile must still show transfer learning. So
the course ships its own pretrained body, learnt on a SOURCE task that has nothing to do with pets:
pictures of geometric shapes (disc, square, triangle, cross, ring, flower, hexagon, half-disc) filled
with a texture (plain, stripes, checks, dots, rings, blotches) in random colours, placed, rotated and
scaled at random on a cluttered background of colour gradients, waves, stray blobs, lines and noise.
Each picture carries three labels and the network learns all three: the shape, the texture and the
hue of the shape. To do that the body must learn edges, corners, colours and textures: the general
visual vocabulary that a new task (pet breeds) can reuse.

Pictures are made on the fly from a seed, so the task is infinite and exactly repeatable.
``python -m helpers.backbone`` retrains the body and rewrites the committed weights and checksum in
``helpers/assets`` (1000 steps of 64 pictures: 4 to 6 minutes on 2 CPU cores); ``load_backbone_state`` verifies that checksum.
On the development machine (torch 2.14.1, 2 threads) the script rebuilt the committed file byte for byte, the
same SHA-256; another torch version or CPU may round differently and give slightly different weights.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ASSETS = Path(__file__).resolve().parent / "assets"
WEIGHTS_FILE = ASSETS / "resnet10_shapes.pth"
CHECKSUM_FILE = ASSETS / "resnet10_shapes.sha256"

SHAPES = ("disc", "square", "triangle", "cross", "ring", "flower", "hexagon", "half-disc")
TEXTURES = ("plain", "stripes", "checks", "dots", "rings", "blotches")
N_HUES = 8  # the shape's main colour, in eight bins around the colour wheel
IMAGE_SIZE = 64  # the tiny profile's model input, so the features are learnt at the scale they are used
# The course normalises inputs with ImageNet's statistics everywhere; pretraining does the same.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


# --- drawing the source task ------------------------------------------------------------------------
def _uniform(g: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Colours from hue/saturation/value in [0, 1] (each shape ``(n,)``) to RGB ``(n, 3)``."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=1)
    return v[:, None] - v[:, None] * s[:, None] * (torch.minimum(k, 4 - k).clamp(0, 1))


def _random_colours(g: torch.Generator, n: int) -> torch.Tensor:
    return _hsv_to_rgb(torch.rand(n, generator=g), _uniform(g, n, 0.2, 1.0), _uniform(g, n, 0.2, 1.0))


def _shape_distances(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) to each of the SHAPES, in the shape's own frame: ``(8, n, H, W)``."""
    r = torch.sqrt(u**2 + v**2 + 1e-8)
    angle = torch.atan2(v, u)

    def polygon(sides: int, apothem: float) -> torch.Tensor:
        normals = [2 * math.pi * k / sides + math.pi / 2 for k in range(sides)]
        return torch.stack([u * math.cos(a) + v * math.sin(a) for a in normals]).amax(dim=0) - apothem

    bar_across = torch.maximum(u.abs() - 0.95, v.abs() - 0.32)
    bar_down = torch.maximum(u.abs() - 0.32, v.abs() - 0.95)
    return torch.stack([
        r - 0.95,                                           # disc
        torch.maximum(u.abs(), v.abs()) - 0.8,              # square
        polygon(3, 0.5),                                    # triangle
        torch.minimum(bar_across, bar_down),                # cross
        (r - 0.68).abs() - 0.27,                            # ring
        r - (0.62 + 0.33 * torch.cos(5 * angle)),           # flower (five petals)
        polygon(6, 0.85),                                   # hexagon
        torch.maximum(r - 0.98, -v - 0.1),                  # half-disc
    ])


def _texture_patterns(u: torch.Tensor, v: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """For each of the TEXTURES, how much of the second colour shows at each pixel, in [0, 1]: ``(6, n, H, W)``."""
    n, height, width = u.shape
    freq = _uniform(g, n, 4.0, 9.0).view(n, 1, 1)

    def sharp(wave: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(6 * wave)

    lattice_u = torch.remainder(u * freq / (2 * math.pi), 1.0) - 0.5
    lattice_v = torch.remainder(v * freq / (2 * math.pi), 1.0) - 0.5
    # Blotches: smooth random noise made by blowing up a coarse random grid, then thresholding it.
    coarse = torch.rand(n, 1, 6, 6, generator=g)
    blotch = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[:, 0]
    return torch.stack([
        torch.zeros_like(u),                                           # plain
        sharp(torch.sin(freq * u)),                                    # stripes
        sharp(torch.sin(freq * u) * torch.sin(freq * v)),              # checks
        sharp(0.3 - torch.sqrt(lattice_u**2 + lattice_v**2) * 2),      # dots
        sharp(torch.sin(freq * torch.sqrt(u**2 + v**2))),              # rings
        sharp(8 * (blotch - 0.5)),                                     # blotches
    ])


def _background(g: torch.Generator, n: int, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Clutter: a two-colour gradient, a soft wave, a few stray discs and lines, all in random colours."""
    direction = _uniform(g, n, 0, 2 * math.pi).view(n, 1, 1)
    ramp = (xs * torch.cos(direction) + ys * torch.sin(direction) + 1.5) / 3
    image = torch.lerp(_random_colours(g, n).view(n, 3, 1, 1), _random_colours(g, n).view(n, 3, 1, 1),
                       ramp[:, None])
    wave_dir = _uniform(g, n, 0, 2 * math.pi).view(n, 1, 1)
    wave = torch.sin(_uniform(g, n, 1.0, 6.0).view(n, 1, 1) * (xs * torch.cos(wave_dir) + ys * torch.sin(wave_dir)))
    image = image + 0.12 * wave[:, None] * (2 * _random_colours(g, n) - 1).view(n, 3, 1, 1)
    for _ in range(2):  # stray discs
        cy, cx = _uniform(g, n, -1, 1).view(n, 1, 1), _uniform(g, n, -1, 1).view(n, 1, 1)
        radius = _uniform(g, n, 0.05, 0.3).view(n, 1, 1)
        inside = torch.sigmoid((radius - torch.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)) * 40)[:, None]
        image = torch.lerp(image, _random_colours(g, n).view(n, 3, 1, 1), inside)
    for _ in range(2):  # stray lines
        angle = _uniform(g, n, 0, math.pi).view(n, 1, 1)
        offset = _uniform(g, n, -1, 1).view(n, 1, 1)
        distance = (xs * torch.sin(angle) - ys * torch.cos(angle) - offset).abs()
        on_line = torch.sigmoid((_uniform(g, n, 0.01, 0.04).view(n, 1, 1) - distance) * 60)[:, None]
        image = torch.lerp(image, _random_colours(g, n).view(n, 3, 1, 1), on_line)
    return image


def make_shapes_batch(n: int, seed: int, size: int = IMAGE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` source-task pictures in [0, 1] ``(n, 3, size, size)`` and labels ``(n, 3)``: shape, texture, hue (notebook 05)."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.linspace(-1, 1, size)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    ys, xs = ys.expand(n, size, size), xs.expand(n, size, size)
    shape = torch.randint(len(SHAPES), (n,), generator=g)
    texture = torch.randint(len(TEXTURES), (n,), generator=g)
    hue = torch.rand(n, generator=g)

    image = _background(g, n, ys, xs)
    # Into the shape's own frame: move to its centre, rotate, then scale (with a little stretch).
    centre_y, centre_x = _uniform(g, n, -0.3, 0.3).view(n, 1, 1), _uniform(g, n, -0.3, 0.3).view(n, 1, 1)
    turn = _uniform(g, n, 0, 2 * math.pi).view(n, 1, 1)
    scale = _uniform(g, n, 0.45, 0.75).view(n, 1, 1)
    stretch = _uniform(g, n, 0.8, 1.25).view(n, 1, 1)
    dy, dx = ys - centre_y, xs - centre_x
    u = (dx * torch.cos(turn) + dy * torch.sin(turn)) / (scale * stretch)
    v = (-dx * torch.sin(turn) + dy * torch.cos(turn)) / (scale / stretch)

    pixels_per_unit = scale * size / 2  # so the edge is about one pixel wide whatever the scale
    distance = _shape_distances(u, v)[shape, torch.arange(n)]
    mask = torch.sigmoid(-distance * pixels_per_unit * 1.5)[:, None]
    pattern = _texture_patterns(u, v, g)[texture, torch.arange(n)][:, None]
    main = _hsv_to_rgb(hue, _uniform(g, n, 0.5, 1.0), _uniform(g, n, 0.5, 1.0)).view(n, 3, 1, 1)
    second = _random_colours(g, n).view(n, 3, 1, 1)
    fill = torch.lerp(main, second, pattern * 0.8)  # the main colour always dominates, so its hue is learnable
    image = torch.lerp(image, fill, mask)

    # Lighting and sensor noise, so no single pixel value can be trusted.
    image = image * _uniform(g, n, 0.7, 1.2).view(n, 1, 1, 1)
    image = image + 0.03 * torch.randn(image.shape, generator=g)
    labels = torch.stack([shape, texture, (hue * N_HUES).long().clamp(max=N_HUES - 1)], dim=1)
    return image.clamp(0, 1), labels


# --- training ---------------------------------------------------------------------------------------
def _heads_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of the three label kinds, and the accuracy of each."""
    sizes = (len(SHAPES), len(TEXTURES), N_HUES)
    loss, accuracies = 0.0, []
    for chunk, target in zip(logits.split(sizes, dim=1), labels.unbind(dim=1)):
        loss = loss + F.cross_entropy(chunk, target)
        accuracies.append((chunk.argmax(dim=1) == target).float().mean())
    return loss, torch.stack(accuracies)


def pretrain(steps: int = 1000, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
             log_every: int = 25, valid_size: int = 1024) -> tuple[nn.Module, dict]:
    """Train a resnet10 classifier on the shapes task; return its body and the final validation accuracies (notebook 05)."""
    from helpers.models import create_cnn

    torch.manual_seed(seed)
    model = create_cnn("resnet10", n_out=len(SHAPES) + len(TEXTURES) + N_HUES, weights=None)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, eps=1e-5)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
    # Validation pictures come from seeds the training batches never use (those count up from seed * 10**6).
    valid_x, valid_y = make_shapes_batch(valid_size, seed=10**9 + seed)
    valid_x = (valid_x - MEAN) / STD
    start = time.perf_counter()
    for step in range(steps):
        model.train()
        x, y = make_shapes_batch(batch_size, seed=seed * 10**6 + step)
        loss, accuracies = _heads_loss(model((x - MEAN) / STD), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            print(f"step {step + 1}/{steps}  loss {loss.item():.3f}  train acc (shape, texture, hue) "
                  f"{[round(a, 3) for a in accuracies.tolist()]}  {time.perf_counter() - start:.0f}s", flush=True)
    model.eval()
    with torch.no_grad():
        _, accuracies = _heads_loss(model(valid_x), valid_y)
    report = dict(zip(("shape", "texture", "hue"), accuracies.tolist()))
    print(f"validation accuracy: {report}", flush=True)
    return model[0], report


# --- saving and loading -----------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (notebook 05)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_backbone(body: nn.Module, path: Path = WEIGHTS_FILE, checksum_path: Path = CHECKSUM_FILE) -> str:
    """Write the body's weights as float16 (half the size; plenty for a starting point) and their checksum (notebook 05)."""
    state = {name: t.half() if t.is_floating_point() else t for name, t in body.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)
    digest = file_sha256(path)
    checksum_path.write_text(f"{digest}  {path.name}\n")
    return digest


def load_backbone_state(path: Path = WEIGHTS_FILE, checksum_path: Path = CHECKSUM_FILE) -> dict[str, torch.Tensor]:
    """The committed body weights as float32, after checking their SHA-256 against the committed checksum (notebook 05)."""
    rebuild = "Rebuild them with `python -m helpers.backbone` (a few minutes on a CPU), or restore " \
              "helpers/assets from git (`git checkout -- helpers/assets`)."
    if not path.exists() or not checksum_path.exists():
        raise FileNotFoundError(f"the offline backbone is missing ({path} or {checksum_path} not found). {rebuild}")
    expected = checksum_path.read_text().split()[0]
    actual = file_sha256(path)
    if actual != expected:
        raise RuntimeError(f"the offline backbone {path.name} is damaged or was changed: its SHA-256 is {actual}, "
                           f"but {checksum_path.name} expects {expected}. {rebuild}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {name: t.float() if t.is_floating_point() else t for name, t in state.items()}


def main(argv: list[str] | None = None) -> None:
    """Command line: retrain the offline backbone and rewrite helpers/assets (notebook 05)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    args = parser.parse_args(argv)
    body, _ = pretrain(args.steps, args.batch_size, args.lr, args.seed)
    digest = save_backbone(body, args.out, args.out.with_suffix(".sha256"))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB), sha256 {digest}")


if __name__ == "__main__":
    main()
