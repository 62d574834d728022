"""The browser test (``make browser-test``): JupyterLab and the slide decks in headless Chromium.

Not part of ``make test`` or a plain ``pytest tests``: a student needs no browser. The files here are
collected only when ``COURSE_BROWSER_TEST=1`` (the Makefile's ``browser-test`` target sets it), and
they need the ``browser`` extra (``pip install -e ".[browser]"``: Playwright) and Debian's
``chromium`` (``apt-get install -y chromium``). Screenshots go to ``build/browser-test/``.
"""

import os
from pathlib import Path

import pytest

if os.environ.get("COURSE_BROWSER_TEST") != "1":
    collect_ignore_glob = ["*.py"]

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("COURSE_BROWSER_SHOTS", REPO / "build" / "browser-test"))
DECKS = Path(os.environ.get("COURSE_SLIDES_DIR", REPO / "build" / "slides"))


def course_notebooks() -> list[str]:
    """The course's lectures: one per solutions/NN_*.ipynb (a student's own copies are not tested)."""
    return sorted(p.name for p in (REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="session")
def browser_context():
    from harness import chromium

    with chromium() as context:
        yield context


@pytest.fixture(scope="session")
def lab():
    from harness import JupyterLab

    with JupyterLab([REPO / "lectures" / name for name in course_notebooks()]) as server:
        yield server
