"""Write the set-up cell (tools/setup_cell.txt) and the 'Follows:' line at the top of every notebook, or check them.

    python tools/setup_cell.py            # insert or update both in notebooks/NN_*.ipynb (run again: no change)
    python tools/setup_cell.py --check    # exit 1 and name each notebook whose copy differs (tests run this)

The set-up cell is the first code cell, tagged ``course-setup`` (to find it again) and ``nbval-ignore-output``
(it prints this machine's device and paths). Its text is tools/setup_cell.txt with the repository URL of
pyproject.toml's [project.urls] filled in, so the URL is written once. A changed cell loses its stored output:
re-execute the notebooks afterwards (``make notebooks``) so that execution counts run 1..N again.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import tomllib

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).with_name("setup_cell.txt")
TAG, IGNORE_TAG = "course-setup", "nbval-ignore-output"
FOLLOWS_PREFIX = "**Follows:**"
BOOK = "the fastai book (*Deep Learning for Coders with fastai and PyTorch*)"
LESSON6 = "lesson 6 of fast.ai's *Practical Deep Learning for Coders* (2019)"
# Which part of the book or course each notebook follows: the one place this mapping lives.
FOLLOWS = {
    "00": f"{BOOK}, chapter 4, *Under the Hood: Training a Digit Classifier* (lesson 3 of the 2022 course).",
    "01": f"{BOOK}, chapter 5, *Image Classification*: from dogs and cats to pet breeds, and the data block.",
    "02": f"{BOOK}, chapter 5, *Image Classification*, section \"Presizing\".",
    "03": f"{BOOK}, chapter 5, *Image Classification*, section \"Cross-Entropy Loss\".",
    "04": f"{BOOK}, chapter 5, *Image Classification*, section \"The Learning Rate Finder\".",
    "05": f"{BOOK}, chapter 5, *Image Classification*, sections \"Unfreezing and Transfer Learning\" and "
          "\"Discriminative Learning Rates\".",
    "06": f"{BOOK}, chapter 5, *Image Classification*, sections \"Deeper Architectures\" and mixed precision.",
    "07": f"{BOOK}, chapter 13, *Convolutional Neural Networks*, and {LESSON6}.",
    "08": f"{BOOK}, chapter 18, *CNN Interpretation with CAM*, and {LESSON6}.",
    "09": f"{BOOK}, chapter 9, *Tabular Modeling Deep Dive* (entity embeddings), and {LESSON6} (Rossmann).",
}


def notebooks(root: Path = ROOT) -> list[Path]:
    """The course's notebooks, notebooks/NN_*.ipynb."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def repository_url(root: Path = ROOT) -> str:
    """The repository URL in pyproject.toml's [project.urls] (``Repository``)."""
    with open(root / "pyproject.toml", "rb") as file:
        urls = tomllib.load(file)["project"].get("urls", {})
    if "Repository" not in urls:
        raise SystemExit("pyproject.toml has no [project.urls] Repository = \"https://...\": add the course's URL.")
    return urls["Repository"]


def cell_source(root: Path = ROOT) -> str:
    """The set-up cell's text, with the repository URL filled in."""
    return TEMPLATE.read_text().rstrip("\n").replace("@REPOSITORY@", repository_url(root))


def follows_line(path: Path) -> str:
    """The 'Follows:' line of one notebook."""
    number = path.name[:2]
    if number not in FOLLOWS:
        raise SystemExit(f"{path.name}: no entry in FOLLOWS (tools/setup_cell.py); add what it follows.")
    return f"{FOLLOWS_PREFIX} {FOLLOWS[number]}"


def setup_cell_index(nb: nbformat.NotebookNode) -> int | None:
    """Where the tagged set-up cell is, or None."""
    return next((i for i, c in enumerate(nb.cells) if TAG in c.get("metadata", {}).get("tags", [])), None)


def apply(nb: nbformat.NotebookNode, source: str, follows: str) -> list[str]:
    """Bring one notebook's set-up cell and 'Follows:' line up to date in place; returns what changed."""
    changes = []
    index = setup_cell_index(nb)
    if index is None:
        first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
        cell = nbformat.v4.new_code_cell(source, id=TAG, metadata={"tags": [TAG, IGNORE_TAG]})
        nb.cells.insert(first_code, cell)
        changes.append("inserted the set-up cell")
    else:
        cell = nb.cells[index]
        if cell.source != source:
            cell.source, cell.outputs, cell.execution_count = source, [], None
            changes.append("updated the set-up cell (its output was cleared)")
        if IGNORE_TAG not in cell.metadata.get("tags", []):
            cell.metadata.setdefault("tags", []).append(IGNORE_TAG)
            changes.append(f"tagged the set-up cell {IGNORE_TAG}")
    title = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if title is None:
        raise SystemExit("a notebook without a markdown title cell: add '# NN · Title' first.")
    lines = title.source.split("\n")
    kept = []
    for i, line in enumerate(lines):  # drop an old 'Follows:' line and the blank line written after it
        if not line.startswith(FOLLOWS_PREFIX) and not (i and lines[i - 1].startswith(FOLLOWS_PREFIX) and not line):
            kept.append(line)
    wanted = kept[:1] + ["", follows] + (kept[1:] if kept[1:2] == [""] else [""] + kept[1:])
    if lines != wanted:
        title.source = "\n".join(wanted)
        changes.append("wrote the 'Follows:' line")
    return changes


def main(argv: list[str] | None = None) -> int:
    """Insert/update (default) or check (--check) every notebook; exit 1 when a check finds a difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any notebook differs")
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/NN_*.ipynb)")
    args = parser.parse_args(argv)
    source, differ = cell_source(), []
    for path in args.paths or notebooks():
        nb = nbformat.read(path, as_version=4)
        changes = apply(nb, source, follows_line(path))
        if changes and not args.check:
            nbformat.write(nb, path)
        if changes:
            differ.append(path)
            print(f"{path.name}: {'would have ' if args.check else ''}{'; '.join(changes)}")
    if args.check and differ:
        print("Run `python tools/setup_cell.py`, then re-execute those notebooks (`make notebooks`).")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
