"""Opening images: any picture as RGB, and which files PIL cannot decode (notebook 01)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image


def open_rgb(item: Path | str | Image.Image) -> Image.Image:
    """Any image as RGB: grayscale and CMYK are converted; transparency is laid on white, not black (notebook 01).

    The one conversion every path uses (``ImageDataset``, ``PresizeCache``, ``summary``), so a transparent
    picture looks the same in training, in the cache and on screen.
    """
    image = item if isinstance(item, Image.Image) else Image.open(item)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


_VERDICTS: dict[tuple[str, int, int], str | None] = {}  # (path, size, mtime) -> why unreadable; one check per file


def why_unreadable(path: Path) -> str | None:
    """Why PIL cannot open and fully decode ``path``, or None if it can (notebook 01, via ``ImageDataset``).

    Checked once per file version.
    """
    try:
        stat = path.stat()
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _VERDICTS:
        try:
            with Image.open(path) as image:
                # JPEGs decode at 1/8 scale: still every byte is read, so a cut file fails, at a fraction of the cost.
                image.draft("RGB", (1, 1))
                image.load()
            _VERDICTS[key] = None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            _VERDICTS[key] = f"{type(error).__name__}: {error}"
    return _VERDICTS[key]


def verify_images(files: Sequence[Path | str]) -> list[Path]:
    """The files that PIL cannot open and decode completely (notebook 01)."""
    return [Path(f) for f in files if why_unreadable(Path(f)) is not None]
