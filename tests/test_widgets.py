"""utils.widgets: the small pure helpers behind the widgets, and that each widget builds."""

import html

import pytest

from utils.widgets import tokens_html


def test_tokens_html_one_escaped_span_per_token():
    pieces = ["<b>", " cat", "&"]
    out = tokens_html(pieces)
    assert out.count("<span") == 3
    assert html.escape("<b>") in out and "<b>" not in out.replace("<span", "")
    assert "·cat" in out and "&amp;" in out


def test_tokens_html_rejects_a_plain_string():
    with pytest.raises(TypeError, match="pieces"):
        tokens_html("cat")
