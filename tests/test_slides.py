"""utils.slides: what a deck keeps of a notebook, and that it asks no network for anything."""

import json
import re

import nbformat
import pytest

from utils.slides import (
    SHOW_CODE_TAG,
    VENDOR_FILES,
    SlidesPreprocessor,
    build_decks,
    copy_vendor,
    slides_exporter,
)

WIDGET = {"application/vnd.jupyter.widget-view+json": {"model_id": "ab", "version_major": 2,
                                                       "version_minor": 0},
          "text/plain": "VBox(children=(IntSlider(value=1),))"}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def cell(kind, source, slide_type="-", outputs=(), tags=()):
    meta = {"slideshow": {"slide_type": slide_type}}
    if tags:
        meta["tags"] = list(tags)
    if kind == "markdown":
        return nbformat.v4.new_markdown_cell(source, metadata=meta)
    c = nbformat.v4.new_code_cell(source, metadata=meta)
    c.outputs = [nbformat.from_dict(o) for o in outputs]
    return c


def stdout(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def display(data):
    return {"output_type": "display_data", "data": data, "metadata": {}}


def lecture():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        cell("markdown", "# Lecture 9 · Demo", "slide"),
        cell("code", "import secret_module", "-", [stdout("setup done\n")]),
        cell("markdown", "## Q1 · A question <a id=\"q1\"></a>", "slide"),
        cell("markdown", "### The idea", "subslide"),
        cell("markdown", "The score is $q \\cdot k$."),
        cell("code", "print('shown code')", "-", [stdout("42\n")], tags=[SHOW_CODE_TAG]),
        cell("code", "def helper(): pass", "subslide"),  # nothing to show: its sub-slide moves on
        cell("markdown", "After the helper."),
        cell("code", "display(explorer())", "fragment", [display(WIDGET)]),  # a widget: nothing to show
        cell("code", "plot()", "-", [display({"image/png": PNG, "text/plain": "<Figure>"}),
                                      {"output_type": "stream", "name": "stderr", "text": "UserWarning\n"}]),
        cell("markdown", "A note for me", "notes"),
    ]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_preprocessor_keeps_prose_results_and_tagged_code():
    nb = lecture()
    before = json.dumps(nb, sort_keys=True)
    out, _ = SlidesPreprocessor().preprocess(nb, {})
    assert json.dumps(nb, sort_keys=True) == before  # the notebook itself is not modified
    types = [c.metadata.slideshow.slide_type for c in out.cells]
    # the helper's sub-slide goes to the next cell shown; the widget cell is skipped; notes stay notes
    assert types == ["slide", "-", "slide", "subslide", "-", "-", "skip", "subslide", "skip", "-", "notes"]
    hidden = [c.metadata.get("transient", {}).get("remove_source", False) for c in out.cells
              if c.cell_type == "code"]
    assert hidden == [True, False, True, True, True]  # only the tagged cell shows its code
    assert out.cells[8].outputs == []  # widget views dropped
    assert [o.get("name", o.output_type) for o in out.cells[9].outputs] == ["display_data"]  # no stderr
    assert "widgets" not in out.metadata


def test_a_skipped_slide_start_does_not_weaken_a_stronger_next_cell():
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell("markdown", "# T", "slide"), cell("code", "x = 1", "subslide"),
                cell("markdown", "## Q2", "slide"), cell("code", "y = 1", "fragment"), cell("markdown", "z")]
    out, _ = SlidesPreprocessor().preprocess(nb, {})
    assert [c.metadata.slideshow.slide_type for c in out.cells] == ["slide", "skip", "slide", "skip", "-"]


def test_exported_deck_asks_no_network():
    body, _ = slides_exporter("vendor").from_notebook_node(lecture())
    # every script and style sheet is local (the page's CSS comments may name web sites, links may not)
    urls = re.findall(r'(?:src|href)="([^"#][^"]*)"', body)
    assert urls and not [u for u in urls if re.match(r"[a-z]+:", u) and not u.startswith("data:")], urls
    assert 'src="vendor/reveal.js/dist/reveal.js"' in body
    assert 'src="vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"' in body
    for absent in ("require", "jquery", "mermaid", "embed-amd", "import secret_module", "def helper",
                   "VBox(children", "UserWarning", "widget-state+json"):
        assert absent not in body, absent
    for present in ("shown code", "42", "setup done", "data:image/png;base64", "$q \\cdot k$"):
        assert present in body, present
    # a slide is a <section> of sub-slide <section>s: title (2), Q1 (2), The idea (1), after the helper (1)
    assert body.count("<section") == 6


def fake_node_modules(root, versions):
    for package, files in VENDOR_FILES.items():
        base = root / package
        base.mkdir(parents=True)
        (base / "package.json").write_text(json.dumps({"version": versions[package]}))
        for rel in files:
            target = base / rel
            if "." in target.name and not target.name.startswith("source-sans"):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("/* stand-in */")
            else:
                target.mkdir(parents=True, exist_ok=True)
                (target / "file.txt").write_text("stand-in")


def test_build_writes_decks_vendor_and_index(tmp_path):
    from utils.slides import MATHJAX_VERSION, REVEAL_VERSION

    fake_node_modules(tmp_path / "nm", {"reveal.js": REVEAL_VERSION, "mathjax": MATHJAX_VERSION})
    source = tmp_path / "09_demo.ipynb"
    nbformat.write(lecture(), source)
    decks = build_decks([source], tmp_path / "out", tmp_path / "nm")
    assert [d.name for d in decks] == ["09_demo.slides.html"]
    assert (tmp_path / "out" / "vendor" / "reveal.js" / "dist" / "reveal.js").exists()
    assert (tmp_path / "out" / "vendor" / "mathjax" / "fonts" / "HTML-CSS" / "TeX" / "woff").is_dir()
    index = (tmp_path / "out" / "index.html").read_text()
    assert '<a href="09_demo.slides.html">Lecture 9 · Demo</a>' in index


def test_copy_vendor_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="npm ci"):
        copy_vendor(tmp_path / "missing", tmp_path / "out")
    fake_node_modules(tmp_path / "nm", {"reveal.js": "6.0.2", "mathjax": "2.7.9"})
    with pytest.raises(RuntimeError, match=r"reveal.js 6.0.2 .* made for 4\."):
        copy_vendor(tmp_path / "nm", tmp_path / "out")
