"""Offline slide decks of the lectures: ``python -m utils.slides`` (``make slides``).

One reveal.js deck per notebook of ``solutions/`` (the outputs are stored there), written to
``build/slides/NN_title.slides.html`` with ``build/slides/index.html`` listing them. A deck opens from
the file system with no network at all: reveal.js 4 and MathJax 2 (the versions nbconvert's reveal
template is written for) come from the npm registry at build time, pinned in ``package.json`` /
``package-lock.json``, and are copied to ``build/slides/vendor/``; figures are inlined as data URIs.
The whole folder can be copied to a USB stick.

What a deck shows, cell by cell (``SlidesPreprocessor``):

- markdown cells as they are; the cells' ``slideshow.slide_type`` metadata makes the question headings
  slides and the six steps sub-slides (reveal.js: right arrow = next question, down arrow = next step);
- code cells without their code, unless the cell is tagged ``slide-show-code`` (``SHOW_CODE_TAG``);
  their printed results, figures and tables stay;
- widgets are dropped (a deck has no kernel to run them): every widget cell has a static figure beside
  it, which the deck shows; a cell left with nothing to show (a hidden cell with no output, a widget
  cell) is skipped, and a slide or sub-slide it started moves to the next cell that is shown;
- messages on stderr (warnings, progress bars' text) are dropped.

nbconvert's reveal template also loads jQuery, require.js, mermaid and the widget embedder from CDNs;
our template (``TEMPLATE``, a few blocks over nbconvert's own) loads none of them, and starts reveal.js
with plain ``<script>`` tags. A slide taller than the screen scrolls inside itself.

Usage::

    python -m utils.slides                          # every solutions/NN_*.ipynb -> build/slides/
    python -m utils.slides solutions/01_*.ipynb --out /tmp/decks

The npm packages must be installed first (``npm ci`` in the repository root; ``make slides`` does it).

>>> nb = nbformat.v4.new_notebook()
>>> nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1")]
>>> prepared, _ = SlidesPreprocessor().preprocess(nb, {})
>>> [c.metadata.slideshow.slide_type for c in prepared.cells]
['-', 'skip']
"""

from __future__ import annotations

import argparse
import copy
import html
import re
import shutil
import sys
from pathlib import Path

import nbformat
from jinja2 import DictLoader
from nbconvert.exporters import SlidesExporter
from nbconvert.preprocessors import Preprocessor

__all__ = [
    "SHOW_CODE_TAG",
    "REVEAL_VERSION",
    "MATHJAX_VERSION",
    "SlidesPreprocessor",
    "slides_exporter",
    "copy_vendor",
    "build_decks",
    "main",
]

REPO = Path(__file__).resolve().parent.parent
SHOW_CODE_TAG = "slide-show-code"
# Pinned in package.json; checked against node_modules at build time so a stale install is caught.
REVEAL_VERSION = "4.6.1"
MATHJAX_VERSION = "2.7.9"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SLIDE_WIDTH, SLIDE_HEIGHT = 1280, 720  # a 16:9 projector; reveal.js scales the deck to the window
MATHJAX_CONFIG = "TeX-AMS_CHTML-full,Safe"
# What the decks need of each npm package (relative to node_modules/<package>/), nothing else.
VENDOR_FILES = {
    "reveal.js": [
        "LICENSE",
        "dist/reveal.css",
        "dist/reveal.js",
        "dist/theme/white.css",
        "dist/theme/fonts/source-sans-pro",
        "plugin/notes/notes.js",
    ],
    "mathjax": [
        "LICENSE",
        "MathJax.js",
        f"config/{MATHJAX_CONFIG.split(',')[0]}.js",
        "config/Safe.js",
        "extensions",
        "jax/input/TeX",
        "jax/element",
        "jax/output/CommonHTML",
        "fonts/HTML-CSS/TeX/woff",
    ],
}
_RANK = {"-": 0, "fragment": 1, "subslide": 2, "slide": 3}  # a cell keeps the stronger of two starts

# Blocks over nbconvert's reveal template (templates/reveal/index.html.j2): nothing is fetched from a
# CDN (no jQuery, require.js, mermaid or widget embedder; reveal.js and MathJax from vendor/).
TEMPLATE = r"""
{%- extends 'index.html.j2' -%}
{% from 'mathjax.html.j2' import mathjax %}

{%- block html_head_js -%}{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}
{{ mathjax(resources.mathjax_url) }}
{%- endblock html_head_js_mathjax -%}

{%- block html_head_css -%}
<style type="text/css">
/* A slide taller than the screen scrolls inside itself (a stack holds the vertical slides). */
.reveal .slides section:not(.stack) {
  max-height: {{ resources.reveal.height }}px;
  overflow-y: auto;
}
.reveal .slides { text-align: left; }
.reveal .slides h1, .reveal .slides h2 { text-align: center; }
.reveal .slides h1, .reveal .slides h2, .reveal .slides h3, .reveal .slides h4 { text-transform: none; }
.reveal .jp-OutputArea-output img { max-height: {{ (resources.reveal.height | int) - 80 }}px; }
</style>
{%- endblock html_head_css -%}

{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
  controls: true,
  progress: true,
  history: true,
  center: false,
  transition: "{{ resources.reveal.transition }}",
  slideNumber: "{{ resources.reveal.number }}",
  plugins: [RevealNotes],
  width: {{ resources.reveal.width }},
  height: {{ resources.reveal.height }},
});
// MathJax lays out maths hidden on other slides with zero width: typeset it again when it shows.
Reveal.on("slidechanged", function (event) {
  if (window.MathJax && MathJax.Hub.getAllJax(event.currentSlide).length) {
    MathJax.Hub.Rerender(event.currentSlide);
  }
});
// Links to anchors in the notebook ("[Q2](#q2)") go to the slide that holds the anchor.
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest('a[href^="#"]');
  var target = link && document.getElementById(decodeURIComponent(link.getAttribute("href").slice(1)));
  var slide = target && target.closest("section");
  if (slide) {
    event.preventDefault();
    var where = Reveal.getIndices(slide);
    Reveal.slide(where.h, where.v);
  }
});
</script>
{% endblock footer_js %}
"""


class SlidesPreprocessor(Preprocessor):
    """Keep what an audience should see: prose, printed results and figures; code only where tagged.

    Runs before nbconvert's own reveal preprocessor, so the slide structure it builds from
    ``slideshow.slide_type`` already knows which cells are skipped. The notebook is not modified.
    """

    def preprocess(self, nb, resources):
        nb = copy.deepcopy(nb)
        nb.metadata.pop("widgets", None)  # widget state: no embedder loads it in a deck
        pending = "-"  # the strongest slide type of skipped cells, handed to the next shown cell
        for cell in nb.cells:
            slideshow = cell.metadata.setdefault("slideshow", nbformat.NotebookNode())
            slide_type = slideshow.setdefault("slide_type", "-")
            if cell.cell_type == "code":
                cell.outputs = [out for out in cell.outputs if _shown(out)]
                if SHOW_CODE_TAG not in cell.metadata.get("tags", []):
                    cell.metadata["transient"] = {"remove_source": True}
                    visible = bool(cell.outputs)
                else:
                    visible = True
            else:
                visible = slide_type not in ("skip", "notes") and bool(cell.source.strip())
            if slide_type in ("skip", "notes"):
                continue
            if not visible:
                slideshow["slide_type"] = "skip"
                # A slide or sub-slide it started must still start; an empty fragment is just dropped.
                if slide_type in ("slide", "subslide") and _RANK[slide_type] > _RANK[pending]:
                    pending = slide_type
                continue
            if _RANK[pending] > _RANK.get(slide_type, 0):
                slideshow["slide_type"] = pending
            pending = "-"
        return nb, resources


def _shown(output) -> bool:
    """Outputs a deck shows: not widgets (no kernel), not stderr (warnings, progress bars)."""
    if output.get("output_type") == "stream":
        return output.get("name") != "stderr"
    return WIDGET_MIME not in output.get("data", {})


def slides_exporter(vendor: str = "vendor") -> SlidesExporter:
    """nbconvert's SlidesExporter with our template, preprocessor and local reveal.js / MathJax.

    ``vendor`` is the folder of the copied npm packages, relative to the deck (``copy_vendor``).
    """
    exporter = SlidesExporter(
        extra_loaders=[DictLoader({"course_slides.html.j2": TEMPLATE})],
        template_file="course_slides.html.j2",
        reveal_url_prefix=f"{vendor}/reveal.js",
        reveal_theme="white",  # its fonts ship with reveal.js ("simple" fetches Google fonts)
        reveal_transition="slide",
        reveal_number="c/t",
        reveal_width=str(SLIDE_WIDTH),
        reveal_height=str(SLIDE_HEIGHT),
        mathjax_url=f"{vendor}/mathjax/MathJax.js?config={MATHJAX_CONFIG}",
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        preprocessors=[SlidesPreprocessor],
    )
    return exporter


def _installed_version(package_dir: Path) -> str:
    import json

    return json.loads((package_dir / "package.json").read_text())["version"]


def copy_vendor(node_modules: Path, dest: Path) -> None:
    """Copy the files the decks need from ``node_modules`` (``npm ci``) to ``dest``, checking versions."""
    expected = {"reveal.js": REVEAL_VERSION, "mathjax": MATHJAX_VERSION}
    for package, version in expected.items():
        source = node_modules / package
        if not (source / "package.json").exists():
            raise FileNotFoundError(
                f"{source} is missing: run `npm ci` in {REPO} first (make slides does it; it needs npm)"
            )
        found = _installed_version(source)
        if found != version:
            raise RuntimeError(
                f"{package} {found} is installed in {node_modules}, the decks are made for {version}: "
                "run `npm ci` again"
            )
        target = dest / package
        if target.exists():
            shutil.rmtree(target)
        for rel in VENDOR_FILES[package]:
            src, dst = source / rel, target / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst)
            else:
                shutil.copy2(src, dst)


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE)
            if match:
                return match.group(1).strip()
    return "Untitled"


def build_decks(notebooks: list[Path], out: Path, node_modules: Path | None = None) -> list[Path]:
    """Write one deck per notebook into ``out``, the vendored libraries and an index page beside them."""
    out.mkdir(parents=True, exist_ok=True)
    copy_vendor(node_modules or REPO / "node_modules", out / "vendor")
    exporter = slides_exporter("vendor")
    decks, entries = [], []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": _title(nb)}})
        deck = out / f"{path.stem}.slides.html"
        deck.write_text(body, encoding="utf-8")
        decks.append(deck)
        entries.append(f'<li><a href="{deck.name}">{html.escape(_title(nb))}</a></li>')
    index = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>LLM Building Blocks: slides'
        "</title></head>\n<body><h1>LLM Building Blocks: slides</h1>\n<ul>\n"
        + "\n".join(entries)
        + "\n</ul>\n<p>Right arrow: next question; down arrow: next step; <kbd>s</kbd>: speaker view; "
        "<kbd>Esc</kbd>: overview. The decks work offline; copy the whole folder.</p>\n</body></html>\n"
    )
    (out / "index.html").write_text(index, encoding="utf-8")
    return decks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to present (default: every solutions/NN_*.ipynb)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "slides", help="output folder")
    parser.add_argument("--node-modules", type=Path, default=REPO / "node_modules",
                        help="where `npm ci` installed reveal.js and MathJax")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        parser.error("no notebooks found")
    try:
        decks = build_decks(notebooks, args.out, args.node_modules)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for deck in decks:
        print(f"wrote {deck} ({deck.stat().st_size / 1e6:.1f} MB)")
    print(f"open {args.out / 'index.html'} in a browser (no network needed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
