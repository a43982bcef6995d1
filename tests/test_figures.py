"""Figures in the notebooks' prose come from their outputs, their code or a cited source (tests/figures.py).

The notebooks' current findings are listed in tests/figures_allowlist.txt, which only shrinks: a finding not in
it fails, and so does a listed finding that no longer occurs (delete its line).
"""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import figures
import pytest
from figures import Figure, findings, parse_numbers

HOW_TO_FIX = ("print the figure in an output beside it, cite its source in the same sentence ([book], [paper], a link, "
              "notebook NN, bench/results/FILE), or write a number that only illustrates as inline code; "
              "see CONTRIBUTING.md, 'Figures in prose'")


def prose_figures(text: str) -> list[str]:
    return [f.text for f in parse_numbers(figures.mask(text, figures.NOT_PROSE), prose=True)]


def output(text: str) -> Figure:
    (number,) = parse_numbers(text, prose=False)
    return number


def shows(prose: str, printed: str) -> bool:
    (figure,) = parse_numbers(prose, prose=True)
    return figure.matches(output(printed))


# --- what counts as a figure ---------------------------------------------------------------------------------------

def test_figures_are_decimals_percentages_ratios_and_separated_counts():
    text = "It lands at 0.970, 97% of the time, 2.5x faster, 16× apart, 3 times over, on 1,554 images; 6.3e-7 too."
    assert prose_figures(text) == ["0.970", "97%", "2.5x", "16×", "3 times", "1,554", "6.3e-7"]


def test_what_is_not_a_figure():
    text = ("37 breeds in 2 epochs, a 3 x 3 kernel, resnet50, 1e-7 to 10, Python 3.10, 127.0.0.1, `lr=0.5`, "
            "[a link](https://example.org/v1.5/0.97), $x = 0.25$, 28x28 pixels, torch 2.14, measured 25 times in a "
            "row.")
    assert prose_figures(text) == []


# --- matching at the precision the prose writes ---------------------------------------------------------------------

@pytest.mark.parametrize("prose, printed", [
    ("0.97", "0.970"), ("0.970", "0.97"), ("0.97", "0.9702"), ("0.4", "0.392"), ("16x", "16.0x"), ("16x", "15.9x"),
    ("2.5x", "2.5 times as fast"), ("97%", "0.970"), ("39.2%", "0.392"), ("0.97", "97.0%"), ("97%", "97.0%"),
    ("1,554", "1554"), ("1,554", "1,554"), ("6.3e-7", "6.31e-07"), ("6.05", "-6.052"),
])
def test_a_figure_matches_its_printed_value_in_any_reasonable_format(prose, printed):
    assert shows(prose, printed)


@pytest.mark.parametrize("prose, printed", [
    ("0.974", "0.97"), ("0.97", "0.976"), ("16x", "16.6x"), ("2.5x", "2.5"), ("97%", "0.96"), ("97%", "97"),
    ("1,554", "1,555"), ("6.3e-7", "6.4e-07"), ("0.5", "0"),
])
def test_a_different_value_does_not_match(prose, printed):
    assert not shows(prose, printed)


def test_code_literals_are_settings_matched_exactly():
    literals = figures.code_literals("lr = 0.45  # not 0.5\nbeta = 0.98\nlearn.fit(pct_start=0.25, lr=base / 100)\n")
    assert sorted(n.value for n in literals) == [0.25, 0.45, 0.98, 100]
    assert all(n.exact for n in literals)

    def shown(prose: str) -> bool:
        (figure,) = parse_numbers(prose, prose=True)
        return any(figure.matches(n) for n in literals)

    assert shown("weight 0.98") and shown("a quarter (25%)")
    assert not shown("a rate of 0.5"), ("0.45 rounds to 0.5, but a setting is repeated exactly, and the comment is "
                                        "no code")
    assert not shown("100 times lower"), "a ratio is printed as one: any small whole number in code would match it"


# --- sentences and citations ---------------------------------------------------------------------------------------

def test_sentences_split_at_full_stops_blank_lines_list_items_and_table_rows():
    text = "First one, 0.5 here. Second [book].\n\n- an item\n- another\n| a | b |\n|---|---|"
    pieces = [text[a:b].strip() for a, b in figures.sentences(text)]
    assert pieces == ["First one, 0.5 here.", "Second [book].", "- an item", "- another", "| a | b |", "|---|---|"]


def write_notebook(path: Path, markdown: list[str], printed: str) -> Path:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": text} for text in markdown]
    cells.append({"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "print(x)",
                  "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}]})
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_citations_of_what_the_test_cannot_read_are_taken_on_trust(tmp_path):
    nb = write_notebook(tmp_path / "01_x.ipynb", [
        "The book reaches 5.5% error.", "Fine-tuning reaches 5.41% [book, chapter 5].",
        "ImageNet has 1.3 million photos [paper: Deng et al. 2009].",
        "NVIDIA reports 2.63x ([A100 figures](https://developer.nvidia.com/deep-learning-performance)).",
        "Uncited: 0.123 here."], "nothing")
    assert [(f.cell, f.figure) for f in findings(nb)] == [(4, "0.123")]


def test_a_cited_notebook_must_show_the_figure(tmp_path):
    write_notebook(tmp_path / "05_other.ipynb", ["# other"], "error rate 0.392\n")
    nb = write_notebook(tmp_path / "06_this.ipynb", [
        "Notebook 05 measured an error of 0.392.", "Notebook 05 measured an error of 0.401.",
        "As [before](05_other.ipynb): 39.2%.", "Notebook 07 measured 0.5 there."], "nothing")
    found = findings(nb)
    assert [(f.cell, f.figure) for f in found] == [(1, "0.401"), (3, "0.5")]
    assert "05_other.ipynb, which does not show it either" in found[0].why
    assert "notebook 07, which does not exist" in found[1].why


def test_a_cited_results_file_must_show_the_figure(tmp_path):
    results = figures.ROOT / "bench" / "results" / "README.md"
    assert "1.62x" in results.read_text(), "the example below reads a figure of bench/results/README.md"
    nb = write_notebook(tmp_path / "06_x.ipynb", [
        "bf16 trained resnet18 1.62x as fast [bench/results/README.md].",
        "bf16 trained resnet18 1.72x as fast (`bench/results/README.md`).",
        "It ran 1.62x as fast (`bench/results/nothing_here.txt`)."], "nothing")
    found = findings(nb)
    assert [(f.cell, f.figure) for f in found] == [(1, "1.72x"), (2, "1.62x")]
    assert "does not exist" in found[1].why


# --- a planted stale figure in a copy of a real notebook --------------------------------------------------------------

def first_markdown_after_code(nb: dict) -> int:
    return next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown" and i > 2)


def test_a_planted_stale_figure_is_caught(tmp_path):
    copy = tmp_path / "04_lr_finder.ipynb"
    shutil.copy(figures.ROOT / "notebooks" / "04_lr_finder.ipynb", copy)
    before = Counter(f.key for f in findings(copy))
    nb = json.loads(copy.read_text())
    index = first_markdown_after_code(nb)
    nb["cells"][index]["source"] = "".join(nb["cells"][index]["source"]) + (
        "\n\nThe suggestion won with an error rate of 0.395. It won by a margin of 0.611, 16.3x the noise.")
    copy.write_text(json.dumps(nb))
    new = Counter(f.key for f in findings(copy)) - before
    # 0.395 is printed in the notebook; 0.611 and 16.3x are not (the stored margin is 0.579, noise 0.058)
    assert sorted(new) == [("04_lr_finder.ipynb", index, "0.611"), ("04_lr_finder.ipynb", index, "16.3x")]


def test_a_figure_goes_stale_when_the_output_it_repeats_changes(tmp_path):
    copy = tmp_path / "04_lr_finder.ipynb"
    nb = json.loads((figures.ROOT / "notebooks" / "04_lr_finder.ipynb").read_text())
    index = first_markdown_after_code(nb)
    nb["cells"][index]["source"] = "".join(nb["cells"][index]["source"]) + "\n\nThe margin was 0.579."
    copy.write_text(json.dumps(nb))
    assert ("04_lr_finder.ipynb", index, "0.579") not in {f.key for f in findings(copy)}
    # Re-executed, the notebook prints another margin; the prose still says the old one.
    copy.write_text(json.dumps(nb).replace("wins by 0.579", "wins by 0.571"))
    assert ("04_lr_finder.ipynb", index, "0.579") in {f.key for f in findings(copy)}


# --- the notebooks themselves, against the allow-list ----------------------------------------------------------------

ALLOWED = Counter(figures.read_allow_list())


def test_the_allow_list_names_real_notebooks():
    names = {path.name for path in figures.NOTEBOOKS}
    unknown = {nb for nb, _, _ in ALLOWED} - names
    assert not unknown, f"tests/{figures.ALLOW_LIST.name} names notebooks that do not exist: {sorted(unknown)}"


def test_a_malformed_allow_list_line_is_named(tmp_path):
    bad = tmp_path / "allow.txt"
    bad.write_text("# a comment\n00_x.ipynb | three | 0.5 | text\n")
    with pytest.raises(ValueError, match="line 2"):
        figures.read_allow_list(bad)


@pytest.mark.parametrize("path", figures.NOTEBOOKS, ids=lambda p: p.name)
def test_figures_in_prose_come_from_outputs(path):
    found = findings(path)
    allowed = Counter({key: n for key, n in ALLOWED.items() if key[0] == path.name})
    extra = Counter(f.key for f in found) - allowed
    new = [f for f in found if extra[f.key] > 0]
    assert not new, (f"{len(new)} figure(s) in {path.name}'s prose that no output shows; {HOW_TO_FIX}:\n"
                     + "\n".join(f"  {f}" for f in new))
    gone = allowed - Counter(f.key for f in found)
    assert not gone, (f"{path.name}: these allow-listed figures no longer occur; delete their lines from "
                      f"tests/{figures.ALLOW_LIST.name} (the list only shrinks; if cells moved, run "
                      "`python tests/figures.py --write-allow-list` and check that its diff only removes lines):\n"
                      + "\n".join(f"  {nb} | {cell} | {figure}" for nb, cell, figure in sorted(gone)))
