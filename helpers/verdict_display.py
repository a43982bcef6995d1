"""How an exercise's verdict, hint or solution is shown (every notebook's exercises).

In Jupyter each message is one display with two forms of the same words: coloured HTML for the live notebook, and
plain text, which is what a terminal, nbval and GitHub's view of a stored output without styles fall back to. The
label at the start ("Correct!", "Not quite:", "Hint 1 of 2", "Solution:") carries the meaning on its own, so
nothing depends on the colour. Outside a Jupyter kernel the plain text is printed.
"""
from __future__ import annotations

import html
import textwrap

__all__ = ["KINDS", "render", "show"]

# (colour of the label and the border, pale background). Colours picked to tell apart at a glance and to keep the
# text readable on a white page; the label words say the same for anyone who cannot see the colours.
KINDS = {
    "correct": ("#1a7f37", "#e9f7ec"),
    "incorrect": ("#c4321f", "#fdecea"),
    "error": ("#b35900", "#fff4e5"),
    "not attempted": ("#57606a", "#f3f4f6"),
    "hint": ("#0b5cad", "#e8f1fb"),
    "solution": ("#6f42c1", "#f3effb"),
    "note": ("#57606a", "#ffffff"),
}


def _highlighted(code: str) -> str:
    """The code as HTML with Python syntax colours (Pygments comes with IPython), or plain when it is missing."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return f"<pre>{html.escape(code)}</pre>"
    return highlight(code, PythonLexer(), HtmlFormatter(noclasses=True, nowrap=False, style="default"))


def _plain(label: str, text: str, block: str | None) -> str:
    lines = " ".join(part for part in (label, text) if part)
    if block:
        lines += "\n" + textwrap.indent(block, "    ")
    return lines


def render(kind: str, label: str, text: str = "", code: str | None = None, table: str | None = None) -> dict[str, str]:
    """The message as {"text/plain": ..., "text/html": ...}, the HTML coloured by ``kind`` (notebook 00 onwards).

    The same words in both.

    ``code`` is shown below the text as highlighted Python; ``table`` as fixed-width lines, so columns stay aligned.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}; use one of {sorted(KINDS)}.")
    colour, background = KINDS[kind]
    body = "<br>".join(html.escape(line) for line in text.splitlines())
    parts = [f'<b style="color:{colour}">{html.escape(label)}</b>' if label else "", body]
    head = " ".join(p for p in parts if p)
    block = (f'<div style="border-left:4px solid {colour};background:{background};padding:4px 8px;'
             f'margin:2px 0;color:#1f2328">{head}')
    if code:
        block += f'<div style="margin-top:4px">{_highlighted(code)}</div>'
    if table:
        block += f'<pre style="margin:4px 0 0 0;background:none">{html.escape(table)}</pre>'
    return {"text/plain": _plain(label, text, code or table), "text/html": block + "</div>"}


def _in_jupyter() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show(kind: str, label: str, text: str = "", code: str | None = None, table: str | None = None) -> None:
    """Display the message: HTML and plain text in a Jupyter kernel, plain text printed anywhere else (notebook 00)."""
    message = render(kind, label, text, code, table)
    if _in_jupyter():
        from IPython.display import display

        display(message, raw=True)
    else:
        print(message["text/plain"])
