"""Thin ipywidgets wrappers for the notebooks' "Play with it" steps.

Each widget only wires controls to a compute function that lives elsewhere in ``utils`` (and is unit
tested there) or to a small pure helper here (tested in ``tests/test_widgets.py``). Each one returns a
widget to display; recomputation that costs more than a few milliseconds uses
``continuous_update=False``.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from .plotting import TOKEN_COLOURS

__all__ = ["tokens_html"]


def tokens_html(pieces: list[str]) -> str:
    """Render tokens as coloured, escaped HTML spans (one span per token), for use in ``widgets.HTML``.

    >>> tokens_html(["a", "b<"]).count("<span")
    2
    """
    if isinstance(pieces, str):
        raise TypeError("pieces must be a list of token strings, not one str")
    spans = []
    for i, piece in enumerate(pieces):
        shown = html.escape(piece.replace(" ", "·").replace("\n", "⏎"))
        colour = TOKEN_COLOURS[i % len(TOKEN_COLOURS)]
        spans.append(
            f'<span style="background:{colour};border:1px solid #888;border-radius:3px;'
            f'padding:1px 2px;margin:1px;font-family:monospace;white-space:pre">{shown}</span>'
        )
    return "".join(spans)
