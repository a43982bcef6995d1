"""Finding the image files, labelling them from their names, and splitting them (notebook 01).

Opening and checking the images themselves is ``helpers.images``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

PETS_PATTERN = r"^(.+)_\d+\.jpg$"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def get_image_files(path: Path | str) -> list[Path]:
    """Every image file under ``path`` (by extension, any depth), sorted (notebook 01)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. Check the spelling, or get the data first "
                                "(for example pets_tiny() or pets_path(P)).")
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is a file; pass the folder that holds the images.")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        others = sorted(p.name for p in path.iterdir())
        found = f"it holds {len(others)} entries, e.g. {others[:5]}" if others else "it is empty"
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {path}: {found}. "
                         "Point at the folder that holds the pictures, e.g. path/'images'.")
    return files


class RegexLabeller:
    """A labelling function: the first group of a regular expression matched against the file name (notebook 01)."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        try:
            self.regex = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{pattern!r} is not a valid regular expression ({error}). Check it with "
                             r"re.compile(pattern) in a cell; write it as a raw string r'...', escape dots (\.), "
                             r"and put the label in one group (), e.g. r'^(.+)_\d+\.jpg$'.") from error
        if self.regex.groups < 1:
            raise ValueError(f"the pattern {pattern!r} has no group: put the part that is the label in "
                             r"parentheses, e.g. r'^(.+)_\d+\.jpg$'.")

    def __call__(self, path: Path | str) -> str:
        name = Path(path).name
        match = self.regex.match(name)
        if match is None:
            raise ValueError(self._mismatch_message([name]))
        return match.group(1)

    def label_all(self, files: Sequence[Path | str]) -> list[str]:
        """Labels for many files; one error that lists every name that did not match (notebook 01)."""
        misses = [Path(f).name for f in files if self.regex.match(Path(f).name) is None]
        if misses:
            raise ValueError(self._mismatch_message(misses))
        return [self(f) for f in files]

    def _mismatch_message(self, names: list[str]) -> str:
        shown = ", ".join(repr(n) for n in names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        return (f"{len(names)} file name(s) do not match the pattern {self.pattern!r}: {shown}. "
                f"Try the pattern on one name with re.match(pattern, name) and adjust it, or leave out files "
                f"that are not images of the dataset (get_image_files keeps only image extensions).")

    def __repr__(self) -> str:
        return f"RegexLabeller({self.pattern!r})"


def make_vocab(labels: Sequence[str]) -> list[str]:
    """The sorted, case-sensitive list of distinct labels: a label's index in it is its class number (notebook 01)."""
    return sorted(set(labels))


def random_split(n: int, valid_pct: float = 0.2, seed: int = 42) -> tuple[list[int], list[int]]:
    """Shuffle ``range(n)`` with ``seed``: the first ``valid_pct`` is validation, the rest training (notebook 01)."""
    if not 0 < valid_pct < 1:
        raise ValueError(f"valid_pct is the fraction of items kept for validation; it must be between 0 and 1, "
                         f"got {valid_pct!r} (0.2 keeps one item in five).")
    if n < 2:
        raise ValueError(f"cannot split {n} item(s) into training and validation sets; check that files were found.")
    # A private generator, so splitting neither uses nor disturbs the global random state.
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    cut = int(valid_pct * n)
    return order[cut:], order[:cut]
