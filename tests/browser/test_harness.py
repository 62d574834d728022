"""The test of the browser test: on broken notebooks and decks, the checks must fail, and say why.

Small notebooks made here (no training, seconds to run): widgets that do nothing, whose callback raises,
that cannot be displayed, a label too long for its widget, a dropdown too narrow for an option, a figure
whose legend covers its line, a cell that raises (and a good widget whose first control has nothing to
choose); decks that need the network (nbconvert's stock deck, which loads reveal.js and MathJax from
CDNs, and ours with a theme that fetches web fonts). Each must produce exactly the problem it was made for.
"""

import nbformat
import pytest
from conftest import REPO, SHOTS
from harness import JupyterLab, block_network, check_deck, check_lecture, run_all

WORKS = """import ipywidgets as widgets
from IPython.display import display
ok_slider = widgets.IntSlider(value=1, min=0, max=5, description="n")
ok_out = widgets.HTML("n = 1")
ok_slider.observe(lambda change: setattr(ok_out, "value", f"n = {change['new']}"), names="value")
display(widgets.VBox([ok_slider, ok_out]))"""
INERT = """inert = widgets.Dropdown(options=["a", "b", "c"], description="letter")
display(widgets.VBox([inert, widgets.HTML("always the same")]))"""
RAISES = """raising = widgets.IntSlider(value=1, min=0, max=5, description="k")
raising_out = widgets.HTML("k = 1")
def broken(change):
    raise ValueError("a bug in the callback")
raising.observe(broken, names="value")
display(widgets.VBox([raising, raising_out]))"""
INTERACT_RAISES = """def show(x=1):
    if x != 1:
        raise RuntimeError("x must be 1")
    print("x =", x)
display(widgets.interactive(show, x=widgets.IntSlider(value=1, min=0, max=5)))"""
NO_MODEL = """display({"application/vnd.jupyter.widget-view+json": {"model_id": "0" * 32, "version_major": 2,
          "version_minor": 0}, "text/plain": "VBox(children=(IntSlider(value=1),))"}, raw=True)"""
LONG_LABEL = """long = widgets.FloatSlider(value=1.0, min=0.1, max=2.0, description="temperature")
long_out = widgets.HTML("T = 1.0")
long.observe(lambda change: setattr(long_out, "value", f"T = {change['new']}"), names="value")
display(widgets.VBox([long, long_out]))"""
WIDE = """strip = "".join(f'<span style="white-space:pre;border:1px solid">tok{i}</span>' for i in range(300))
wide_n = widgets.IntSlider(value=300, min=1, max=300, description="n")
wide_out = widgets.HTML(strip)
wide_n.observe(lambda change: setattr(wide_out, "value", strip[: 60 * change["new"]]), names="value")
display(widgets.VBox([wide_n, wide_out]))"""

NARROW = """sentences = ["short", "a sentence far too long for a dropdown of the default width"]
narrow = widgets.Dropdown(options=sentences, value="short", description="sentence")
narrow_out = widgets.HTML("short")
narrow.observe(lambda change: setattr(narrow_out, "value", change["new"]), names="value")
display(widgets.VBox([narrow, narrow_out]))"""
LEGEND = """import matplotlib.pyplot as plt
fig, (covered, beside) = plt.subplots(1, 2, figsize=(8, 3))
covered.plot([0, 1], [0, 1], label="diagonal")
covered.legend(loc="center")
beside.plot([0, 1], [0, 1], label="diagonal")
beside.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
plt.show()"""

ONE_OPTION = """only = widgets.Dropdown(options=[0], description="layer")  # one option: the slider moves
head_n = widgets.IntSlider(value=0, min=0, max=3, description="head")
head_out = widgets.HTML("head 0")
head_n.observe(lambda change: setattr(head_out, "value", f"head {change['new']}"), names="value")
display(widgets.VBox([widgets.HBox([only, head_n]), head_out]))"""


def notebook(*sources) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    return nb


@pytest.fixture(scope="module")
def broken_lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("broken")
    cells = [WORKS, INERT, RAISES, INTERACT_RAISES, NO_MODEL, LONG_LABEL, WIDE, NARROW, LEGEND, ONE_OPTION]
    nbformat.write(notebook(*cells), folder / "widgets.ipynb")
    nbformat.write(notebook("x = 1", "1 / 0", "y = 2"), folder / "error.ipynb")
    with JupyterLab([folder / "widgets.ipynb", folder / "error.ipynb"]) as server:
        yield server


def test_broken_widgets_are_caught(broken_lab, browser_context):
    block_network(browser_context, local=True)
    page = browser_context.new_page()
    layout = []
    try:
        problems = check_lecture(page, broken_lab, "widgets.ipynb", SHOTS / "harness" / "widgets",
                                 timeout=120, widget_timeout=10, layout=layout)
    finally:
        page.close()
        browser_context.unroute("**/*")
    text = "\n".join(problems)
    print(text, *layout, sep="\n")
    assert not any("cell 0" in p for p in problems), text  # the working widget passes
    assert any("cell 1" in p and "did not change" in p for p in problems), text  # does nothing
    assert any("cell 2" in p and "did not change" in p for p in problems), text  # its callback raises
    assert any("cell 3" in p and "shows an error" in p and "x must be 1" in p for p in problems), text
    assert any("cell 4" in p and "Error displaying widget" in p for p in problems), text
    assert not any("cell 5" in p for p in problems), text  # works; its label is a layout finding
    assert any("cell 5" in f and "label cut" in f and "temperature" in f for f in layout), layout
    assert any("cell 6" in f and "wider than the cell" in f for f in layout), layout
    assert not any("cell 6" in p for p in problems), text
    assert not any("cell 0" in f for f in layout), layout
    # a dropdown is measured against its longest option, not only the one shown
    assert any("cell 7" in f and "dropdown too narrow" in f and "a sentence far" in f for f in layout), layout
    assert not any("cell 7" in p for p in problems), text
    # the figure's legend over its line is found, the one beside its axes is not
    legends = [f for f in layout if "cell 8" in f]
    assert legends == ["widgets.ipynb cell 8: figure: axes 0: the legend covers line 'diagonal'"], layout
    assert not any("cell 9" in p for p in problems), text  # a one-option dropdown is not what gets moved


def test_error_output_is_caught(broken_lab, browser_context):
    page = browser_context.new_page()
    try:
        _, problems = run_all(page, broken_lab, "error.ipynb", timeout=60)
    finally:
        page.close()
    assert problems == ["error.ipynb cell 1: error output ZeroDivisionError: division by zero at `1 / 0`"], \
        problems


@pytest.fixture(scope="module")
def source():
    return sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))[0]


def test_cdn_deck_is_caught(source, tmp_path, browser_context):
    """nbconvert's own deck (``jupyter nbconvert --to slides``) needs the network: the check says so."""
    from nbconvert.exporters import SlidesExporter

    body, _ = SlidesExporter().from_filename(str(source))
    deck = tmp_path / "stock.slides.html"
    deck.write_text(body, encoding="utf-8")
    problems = check_deck(browser_context, deck, source, SHOTS / "harness" / "stock-deck")
    text = "\n".join(problems)
    print(text)
    assert "reveal.js did not start" in text, text
    assert "unpkg.com/reveal.js" in text, text  # the blocked request is named


def test_web_font_deck_is_caught(source, tmp_path, browser_context):
    """Our deck with reveal's "simple" theme, which imports fonts from the web: blocked and reported."""
    from utils.slides import copy_vendor, slides_exporter

    exporter = slides_exporter("vendor")
    exporter.reveal_theme = "simple"
    copy_vendor(REPO / "node_modules", tmp_path / "vendor")
    (tmp_path / "vendor" / "reveal.js" / "dist" / "theme").mkdir(parents=True, exist_ok=True)
    simple = REPO / "node_modules" / "reveal.js" / "dist" / "theme" / "simple.css"
    (tmp_path / "vendor" / "reveal.js" / "dist" / "theme" / "simple.css").write_bytes(simple.read_bytes())
    body, _ = exporter.from_filename(str(source))
    deck = tmp_path / "fonts.slides.html"
    deck.write_text(body, encoding="utf-8")
    problems = check_deck(browser_context, deck, source, SHOTS / "harness" / "font-deck")
    assert len(problems) == 1, problems
    assert "requests to the network" in problems[0] and "fonts.googleapis.com" in problems[0], problems
