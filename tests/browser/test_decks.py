"""Every deck of `make slides` works offline: slides per question, steps, maths, figures, arrow keys."""

import pytest
from conftest import DECKS, REPO, SHOTS, course_notebooks
from harness import check_deck


@pytest.mark.parametrize("name", course_notebooks())
def test_deck_offline(name, browser_context):
    deck = DECKS / name.replace(".ipynb", ".slides.html")
    assert deck.exists(), f"{deck} is missing: run `make slides` first"
    problems = check_deck(browser_context, deck, REPO / "solutions" / name,
                          SHOTS / "slides" / name.removesuffix(".ipynb"))
    assert not problems, "\n".join(problems)
