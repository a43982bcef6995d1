"""Figures in a notebook's prose must come from its outputs (issue 29; the convention is in CONTRIBUTING.md).

A *figure* is a number a sentence states: one with a decimal point (``0.970``, ``6.3e-7``), a percentage
(``97%``), a ratio (``2.5x``, ``16×``, ``2.5 times as fast``) or a whole number written with thousands separators
(``1,554``). Each must appear in the notebook's stored outputs, or be a literal its code cells type (a setting
such as ``beta=0.98`` is shown by the code beside the prose; ratios excepted), or its sentence must cite a source:
the book ("the book", ``[book, chapter 5]``), a paper or web page (``[paper: Smith 2017]``, a link to it),
another notebook ("notebook 05", a link to ``05_transfer_learning.ipynb``) or a recorded run (a path under
``bench/results/``, linked, bracketed or in backticks). A cited notebook or results file is read: the figure must
appear there too.

Matching is by value at the precision the prose writes: ``0.97`` matches an output ``0.970`` or ``0.9702``,
``0.970`` matches ``0.97``, ``16x`` matches ``16.0x`` or ``15.9 times apart`` (a ratio must be printed as one); a
percentage matches the same percentage or a rate printed as a fraction (``97%`` and ``0.970``), and a fraction
matches a printed percentage; signs are ignored (``-6.05`` reads as a drop of 6.05 just as well). Inline code,
fenced code, math, link targets and URLs are not prose and are not read.

``python tests/figures.py`` lists every finding; ``--write-allow-list`` rewrites ``tests/figures_allowlist.txt``
from them (after a notebook's cells moved; its diff must only remove lines).
"""
from __future__ import annotations

import html
import io
import json
import re
import sys
import tokenize
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ALLOW_LIST = Path(__file__).resolve().parent / "figures_allowlist.txt"

# A number, optionally with thousands separators, a decimal part and an exponent; then what follows it.
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+(?!\d)|\d+)(\.\d+)?([eE][-+]?\d+)?(\.\d)?")
PERCENT = re.compile(r"\s?(%|per ?cent\b)")
# "2.5x", "16×", "3-fold"; "N times" only before a comparison ("25 times in 2.4 seconds" counts, it compares nothing).
RATIO = re.compile(r"(\s?[x×](?![\w])(?!\s*\d)|-fold\b|\stimes(?=\s+(?:as|more|less|fewer|smaller|larger|bigger|"
                   r"faster|slower|lower|higher|longer|shorter|apart|over|below|above|the)\b))")
# Not prose: fenced and inline code, math, HTML tags and comments, link targets, bare URLs, arXiv numbers, versions.
NOT_PROSE = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]+\$|<!--.*?-->|</?[a-zA-Z][^>\n]*>"
                       r"|\]\([^)\s]*\)|https?://\S+"
                       r"|arXiv:\S+|\b(?:Python|PyTorch|torch|torchvision|version|v)\s?\d+(?:\.\d+)+", re.S | re.I)
# Where a sentence says its figures come from (CONTRIBUTING.md, "Figures in prose"): the book, a paper, a web page
# (a link), another notebook, or a file under bench/results/ (these two are read, and must show the figure).
CITATIONS = re.compile(r"\[(book|paper)\b[^\]\n]*\](?!\()|\bthe book\b|\]\((https?://[^)\s]+)\)"
                       r"|\bnotebooks? (\d\d)\b|\b(\d\d_\w+\.ipynb)|\b(bench/results/[\w.\-/]*\w)", re.I)
# Sentence ends: after . ! ? followed by a space and a capital/markup, at blank lines, list items, rows.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z*_`(\[\"'])|\n\s*\n|\n(?=\s*(?:[-*+]\s|\d+\.\s|\|))")


@dataclass(frozen=True)
class Figure:
    """A number as written: its value (sign dropped), half a unit of its last digit, and what kind it is."""

    text: str
    value: float
    half_unit: float
    kind: str            # "decimal", "percent", "ratio", "count" (with thousands separators) or "whole"
    start: int = 0
    exact: bool = False  # a literal in code: a setting, which prose repeats exactly, not rounded

    def matches(self, other: Figure) -> bool:
        """Whether ``other`` (a number an output prints or the code types) shows this figure as written."""
        if self.kind == "count":
            return other.kind in ("count", "whole") and other.value == self.value
        candidates = [other.value]
        if self.kind == "percent":  # the same percentage, or a rate printed as a fraction
            if other.kind == "decimal" and other.value <= 1:
                candidates = [100 * other.value]
            elif other.kind != "percent":
                return False
        elif other.kind == "percent":
            candidates = [other.value / 100] if self.value <= 1 else []
        elif self.kind == "ratio" and other.kind != "ratio":
            return False  # printed as a ratio (2.5x, 2.5 times): any small whole number in code would match "3x"
        tolerance = 1e-9 * self.value if other.exact else self.half_unit * (1 + 1e-9)
        return any(abs(c - self.value) <= tolerance + 1e-15 for c in candidates)


def parse_numbers(text: str, prose: bool, exact: bool = False) -> list[Figure]:
    """Every number in ``text``; in prose, only figures (decimals, percentages, ratios, counts with separators)."""
    found = []
    for m in NUMBER.finditer(text):
        whole, frac, exp, version_tail = m.group(1), m.group(2) or "", m.group(3) or "", m.group(4)
        if version_tail:  # 1.2.3, 127.0.0.1: a version or an address, not a figure
            continue
        after = text[m.end():m.end() + 20]
        unit = PERCENT.match(after) or RATIO.match(after)
        kind = ("percent" if PERCENT.match(after) else "ratio" if unit
                else "count" if "," in whole and not frac else "decimal" if frac else "whole")
        if prose and kind == "whole":
            continue
        decimals = len(frac) - 1 if frac else 0
        exponent = int(exp[1:]) if exp else 0
        value = float(whole.replace(",", "") + frac + exp)
        written = m.group(0) + (unit.group(0) if unit else "")
        found.append(Figure(written, value, 0.5 * 10.0 ** (exponent - decimals), kind, m.start(), exact))
    return found


def mask(text: str, pattern: re.Pattern) -> str:
    """``text`` with every match of ``pattern`` blanked out, so that positions stay where they were."""
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def sentences(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each sentence of a markdown cell, roughly: enough to find the sentence a figure is in."""
    bounds, start = [], 0
    for m in SENTENCE_END.finditer(text):
        bounds.append((start, m.start()))
        start = m.end()
    bounds.append((start, len(text)))
    return bounds


def output_text(cell: dict) -> str:
    """Everything a code cell's stored outputs show as text (streams, plain text, HTML without its tags, errors)."""
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append("".join(out["text"]))
        data = out.get("data", {})
        for mime in ("text/plain", "text/markdown", "text/latex"):
            parts.append("".join(data.get(mime, "")))
        if "text/html" in data:
            parts.append(html.unescape(re.sub(r"<[^>]+>", " ", "".join(data["text/html"]))))
        if out.get("output_type") == "error":
            parts.append(out.get("evalue", ""))
    return "\n".join(parts)


def code_literals(source: str) -> list[Figure]:
    """The numbers a code cell types as literals (comments left out): the settings the prose may repeat."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return parse_numbers(re.sub(r"#.*", "", source), prose=False, exact=True)
    return [figure for tok in tokens if tok.type == tokenize.NUMBER
            for figure in parse_numbers(tok.string.replace("_", ""), prose=False, exact=True)]


@dataclass(frozen=True)
class Finding:
    """A figure in a markdown cell that neither an output, the code, nor a cited source shows."""

    notebook: str
    cell: int       # the cell's index in the notebook's list of cells, counting from 0 (markdown and code)
    figure: str
    sentence: str
    why: str = ""   # set when a citation names a source that does not show the figure

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.notebook, self.cell, self.figure)

    def line(self) -> str:
        """The finding as one allow-list line: notebook, cell and figure, then the sentence for the reader."""
        return f"{self.notebook} | {self.cell} | {self.figure} | {shorten(self.sentence)}"

    def __str__(self) -> str:
        because = f" and it {self.why}" if self.why else ""
        return (f"{self.notebook} cell {self.cell}: {self.figure!r} is in none of its outputs{because}: "
                f"{shorten(self.sentence)}")


def shorten(text: str, width: int = 160) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= width else text[:width - 3] + "..."


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def shown_numbers(nb: dict) -> list[Figure]:
    """Every number a notebook's stored outputs print, and every literal its code types."""
    numbers = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            numbers += parse_numbers(output_text(cell), prose=False)
            numbers += code_literals("".join(cell["source"]))
    return numbers


def cited_sources(sentence: str, notebook: Path) -> list[Path | str]:
    """The sources a sentence cites: paths of notebooks and bench/results files, or the name of one it cannot read."""
    sources: list[Path | str] = []
    for m in CITATIONS.finditer(sentence):
        unreadable, number, ipynb, bench = m.group(1) or m.group(2), m.group(3), m.group(4), m.group(5)
        if number:
            matches = sorted(notebook.parent.glob(f"{number}_*.ipynb"))
            sources.append(matches[0] if matches else f"notebook {number}, which does not exist")
        elif ipynb:
            sources.append(notebook.parent / ipynb)
        elif bench:
            sources.append(ROOT / bench)
        else:
            sources.append(unreadable or "the book")
    return [s for s in sources if not (isinstance(s, Path) and s == notebook)]


@cache
def numbers_in(path: Path) -> tuple[Figure, ...]:
    """Every number a notebook shows (outputs and code), or that a results file holds."""
    if path.suffix == ".ipynb":
        return tuple(shown_numbers(load(path)))
    return tuple(parse_numbers(path.read_text(encoding="utf-8", errors="replace"), prose=False))


def shown_path(path: Path) -> str:
    """A path as a reader finds it: from the repository's root, where it lies inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def check_citations(figure: Figure, sources: list[Path | str]) -> str | None:
    """None when a cited source shows the figure (or is one this test cannot read), else what went wrong."""
    problems = []
    for source in sources:
        if isinstance(source, str):
            if "does not exist" not in source:
                return None  # the book, a paper, a web page: taken on trust, the reader can follow it
            problems.append(f"cites {source}")
        elif not source.is_file():
            problems.append(f"cites {shown_path(source)}, which does not exist")
        elif any(figure.matches(n) for n in numbers_in(source)):
            return None
        else:
            problems.append(f"cites {shown_path(source)}, which does not show it either")
    return "; ".join(problems)


def findings(path: Path) -> list[Finding]:
    """Every figure in a notebook's markdown that its outputs, its code and its citations do not show."""
    nb = load(path)
    numbers = shown_numbers(nb)
    result = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        prose = mask(text, NOT_PROSE)
        for start, end in sentences(prose):
            sentence = text[start:end]
            for figure in parse_numbers(prose[start:end], prose=True):
                if any(figure.matches(n) for n in numbers):
                    continue
                why = check_citations(figure, cited_sources(sentence, path))
                if why is not None:
                    result.append(Finding(path.name, index, figure.text, sentence.strip(), why))
    return result


def read_allow_list(path: Path = ALLOW_LIST) -> list[tuple[str, int, str]]:
    """The known findings, as (notebook, cell, figure): lines ``notebook | cell | figure | sentence``; # comments."""
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 3 or not fields[1].isdigit():
            raise ValueError(f"{path.name} line {number}: expected 'notebook | cell | figure | sentence', got {line!r}")
        entries.append((fields[0], int(fields[1]), fields[2]))
    return entries


ALLOW_LIST_HEADER = """\
# Figures in the notebooks' prose that their outputs do not show yet (tests/test_figures.py).
# One line per finding: notebook | cell index (from 0, over all cells) | figure | the sentence, for the reader.
# This list only shrinks: fix a figure (print it, cite its source, or drop it) and delete its line; the test
# fails while a listed finding no longer occurs, and on any finding that is not listed.
"""


def main(argv: list[str]) -> int:
    every = [f for path in NOTEBOOKS for f in findings(path)]
    if "--write-allow-list" in argv:
        ALLOW_LIST.write_text(ALLOW_LIST_HEADER + "".join(f.line() + "\n" for f in every), encoding="utf-8")
        print(f"wrote {len(every)} findings to {ALLOW_LIST.relative_to(ROOT)}")
    else:
        print("\n".join(str(f) for f in every) or "no findings")
        print(f"{len(every)} findings")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
