"""What the browser test does, as functions that return the problems they find (an empty list = pass).

Kept apart from the pytest files so that the test of the test (``test_harness.py``) can run the same
checks on deliberately broken notebooks and decks and see them fail.

- ``JupyterLab``: a JupyterLab server on a free localhost port, on a temporary root folder that holds
  *copies* of the notebooks (a student's ``lectures/`` is never opened, so autosave cannot touch it),
  with its own settings, workspaces and runtime folders.
- ``check_lecture``: open a notebook in JupyterLab, run all cells, then check every output and move
  one control of every widget cell.
- ``check_deck``: open a deck from ``make slides`` with every non-file request blocked and check it.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright for Python; ``playwright install``
is never needed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling home, which a closed network refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
STEPS = ["The idea", "Build it", "See it", "Play with it", "Check it", "Your turn"]
QUESTION = re.compile(r"^##\s+Q(\d+)\b", re.MULTILINE)


@contextmanager
def chromium(viewport=(1400, 900)):
    """A Chromium context with a fresh user-data folder, removed afterwards."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} not found: apt-get install -y chromium (or set COURSE_CHROMIUM)")
    profile = tempfile.mkdtemp(prefix="course-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": viewport[0], "height": viewport[1]})
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """``with JupyterLab(notebooks) as lab:`` serves copies of ``notebooks`` at ``lab.url(name)``."""

    def __init__(self, notebooks: list[Path], start_timeout: float = 120.0):
        self.notebooks = [Path(nb) for nb in notebooks]
        self.start_timeout = start_timeout
        self.token = os.urandom(16).hex()
        self.port = free_port()

    def __enter__(self) -> JupyterLab:
        self.tmp = Path(tempfile.mkdtemp(prefix="course-lab-"))
        self.root = self.tmp / "root"
        self.root.mkdir()
        for nb in self.notebooks:
            shutil.copy2(nb, self.root / nb.name)
        settings = self.tmp / "settings"
        # All cells in the page (no windowing), no news or update checks (there is no network).
        for plugin, values in {
            "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        }.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.tmp / "workspaces"),
                   JUPYTER_RUNTIME_DIR=str(self.tmp / "runtime"), JUPYTER_CONFIG_DIR=str(self.tmp / "config"),
                   OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--ServerApp.root_dir={self.root}", f"--IdentityProvider.token={self.token}",
                   "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        self.log = open(self.tmp / "lab.log", "wb")  # noqa: SIM115 (closed in __exit__)
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"JupyterLab did not answer in {self.start_timeout:.0f} s:\n{self.log_text()}")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        """The notebook in a workspace of its own, reset: no tabs restored from an earlier page."""
        workspace = re.sub(r"\W", "-", Path(name).stem)
        return f"{self.base}/lab/workspaces/{workspace}/tree/{name}?reset&token={self.token}"

    def log_text(self) -> str:
        self.log.flush()
        return (self.tmp / "lab.log").read_text(errors="replace")[-4000:]


def block_network(context, allowed=("file:", "data:", "blob:", "about:"), local=False) -> list[str]:
    """Abort every request that is not to a file (or to localhost if ``local``); return the list of them."""
    blocked: list[str] = []
    hosts = ("http://127.0.0.1:", "http://localhost:", "ws://127.0.0.1:", "ws://localhost:")

    def route(r):
        url = r.request.url
        if url.startswith(allowed) or (local and url.startswith(hosts)):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    context.route("**/*", route)
    return blocked


# --- JupyterLab -------------------------------------------------------------------------------------

_STATE = """() => {
  const panel = window.__coursePanel;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = [];
  panel.content.widgets.forEach((w, i) => {
    const m = w.model;
    if (m.type !== 'code') return;
    cells.push({index: i, count: m.executionCount, outputs: m.outputs.toJSON(),
                source: m.sharedModel.getSource().slice(0, 80)});
  });
  return {status: kernel ? kernel.status : 'none', cells};
}"""
# What a student can move, and what the cell shows (everything in the cell's output but the controls).
_CONTROLS = (".widget-slider, .widget-hslider, .widget-dropdown, .widget-text, .widget-textarea, "
             ".widget-toggle-buttons, .widget-checkbox, .widget-button, .widget-select, .widget-radio-box")
_SIGNATURE = """([i, controls]) => {
  const node = window.__coursePanel.content.widgets[i].node;
  const area = node.querySelector('.jp-Cell-outputArea');
  const copy = area.cloneNode(true);
  copy.querySelectorAll(controls).forEach(e => e.remove());
  return copy.innerHTML;
}"""
_WIDGET_VIEWS = """([i, mime]) => {
  const node = window.__coursePanel.content.widgets[i].node;
  const area = node.querySelector('.jp-Cell-outputArea');
  return Array.from(area.children).map(child => {
    const out = child.querySelector('.jp-OutputArea-output');
    return {mime: out ? out.getAttribute('data-mime-type') : null, text: child.innerText.slice(0, 200),
            widget: !!child.querySelector('.jupyter-widgets'), height: child.getBoundingClientRect().height};
  });
}"""


# Layout a student would notice though the widget works: a control's text cut off ("temperat…"), a
# dropdown narrower than one of its options, content wider than the cell. The widths are measured, not
# read from scrollWidth (an integer that hides a cut of less than a pixel or two): a label's text is
# laid out in full even where `overflow: hidden` clips it, so a Range around it has the text's width.
_LAYOUT = r"""(i) => {
  const node = window.__coursePanel.content.widgets[i].node;
  const area = node.querySelector('.jp-Cell-outputArea');
  const found = [];
  const canvas = document.createElement('canvas').getContext('2d');
  const px = (style, name) => parseFloat(style.getPropertyValue(name)) || 0;
  const room = e => {  // the width the content may use: the box without its padding
    const style = getComputedStyle(e);
    return e.clientWidth - px(style, 'padding-left') - px(style, 'padding-right');
  };
  const textWidth = e => {
    const range = document.createRange();
    range.selectNodeContents(e);
    return range.getBoundingClientRect().width;
  };
  // Only a box that clips its text can cut it (an inline box has no width of its own, and a box whose
  // overflow is visible lets its text run on).
  const clips = e => {
    const style = getComputedStyle(e);
    return style.display !== 'inline' && style.overflowX !== 'visible';
  };
  const shown = e => e.offsetParent !== null && e.textContent.trim() !== '' && clips(e);
  // Descriptions (slider, dropdown, text, checkbox labels), slider readouts, button captions.
  area.querySelectorAll('.widget-label, .widget-label-basic, .widget-readout, .jupyter-button')
      .forEach(e => {
    if (!shown(e)) return;
    const need = textWidth(e), has = room(e);
    if (need > has + 0.5)
      found.push(`label cut: ${JSON.stringify(e.textContent.trim())} needs ${Math.ceil(need)}px, ` +
                 `shown in ${Math.floor(has)}px`);
  });
  // A dropdown shows one option at a time, and a student may pick any: the longest must fit beside
  // the arrow (the select's right padding) and Chromium's own inner padding (4 px).
  area.querySelectorAll('.widget-dropdown select').forEach(select => {
    if (!select.offsetParent || !select.options.length) return;
    canvas.font = getComputedStyle(select).font;
    const longest = Array.from(select.options)  // ipywidgets writes an option's spaces as no-break spaces
        .map(o => [canvas.measureText(o.text).width, o.text.replace(/\s/g, ' ')])
        .sort((a, b) => b[0] - a[0])[0];
    const has = room(select) - 4;
    if (longest[0] > has + 0.5)
      found.push(`dropdown too narrow: ${JSON.stringify(longest[1].slice(0, 60))} needs ` +
                 `${Math.ceil(longest[0])}px, has ${Math.floor(has)}px`);
  });
  // Wider than the notebook's column: cut off, or only seen by scrolling sideways.
  const right = area.getBoundingClientRect().right;
  area.querySelectorAll('.widget-html-content, .widget-output').forEach(box => {
    const wide = Math.max(box.scrollWidth - box.clientWidth, box.getBoundingClientRect().right - right);
    if (box.offsetParent && wide > 2)
      found.push(`content ${Math.round(wide)}px wider than the cell: ` +
                 JSON.stringify(box.innerText.slice(0, 60)));
  });
  return Array.from(new Set(found));
}"""

# Figures: every figure the kernel displays (plt.show(), display(fig), a widget's redraw) is checked for
# a legend that covers data (utils.plotting.legend_overlaps) before it is drawn: utils.plotting.watch_legends,
# installed in the kernel, silently, before the notebook runs.
_LEGEND_HOOK = """
from utils.plotting import watch_legends as _course_watch_legends
_course_legend_findings = _course_watch_legends()
del _course_watch_legends
"""
_KERNEL_EXECUTE = """async ([code, expression]) => {
  const kernel = window.__coursePanel.sessionContext.session.kernel;
  const expressions = expression ? {result: expression} : {};
  const future = kernel.requestExecute({code, silent: true, store_history: false,
                                        user_expressions: expressions});
  const reply = await future.done;
  const content = reply.content;
  if (content.status !== 'ok') return {error: `${content.ename}: ${content.evalue}`};
  const result = content.user_expressions && content.user_expressions.result;
  if (!result) return {value: null};
  if (result.status !== 'ok') return {error: `${result.ename}: ${result.evalue}`};
  return {value: result.data['text/plain']};
}"""


def _kernel_execute(page, code: str, expression: str | None = None):
    """Run ``code`` silently in the notebook's kernel; return ``repr`` of ``expression`` or raise."""
    reply = page.evaluate(_KERNEL_EXECUTE, [code, expression])
    if "error" in reply:
        raise RuntimeError(f"the browser test's kernel code failed: {reply['error']}")
    return reply["value"]


def legend_findings(page, name: str, state: dict) -> list[str]:
    """The legends that covered data in the figures shown so far, each named by its cell."""
    import ast

    raw = _kernel_execute(page, "", "__import__('json').dumps(_course_legend_findings)")
    cells = {c["count"]: c["index"] for c in state["cells"] if c["count"] is not None}
    found = []
    for count, finding in json.loads(ast.literal_eval(raw)):
        where = f"cell {cells[count]}" if count in cells else "a widget's figure"
        found.append(f"{name} {where}: figure: {finding}")
    return list(dict.fromkeys(found))


def _cell(page, index):
    node = page.evaluate_handle("i => window.__coursePanel.content.widgets[i].node", index)
    return node.as_element()


def _wait_idle(page, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    state = page.evaluate(_STATE)
    while time.monotonic() < deadline:
        state = page.evaluate(_STATE)
        if state["status"] == "idle":
            return state
        time.sleep(0.3)
    return state


def _errors(outputs) -> list[str]:
    """Each error as its name, message and the line that raised it (a bare assert has no message)."""
    found = []
    for out in outputs:
        if out.get("output_type") != "error":
            continue
        frames = [re.sub(r"\x1b\[[0-9;]*m", "", frame) for frame in out.get("traceback", [])]
        lines = [line.strip() for frame in frames for line in frame.splitlines() if "--->" in line]
        code = re.sub(r"^\d+\s+", "", lines[-1].split("--->", 1)[1].strip()) if lines else ""
        where = f" at `{code}`" if code else ""
        found.append(f"{out.get('ename')}: {out.get('evalue')}{where}")
    return found


def run_all(page, lab: JupyterLab, name: str, timeout: float) -> tuple[dict, list[str]]:
    """Open ``name`` and run all its cells; return the final state and the problems seen."""
    page.goto(lab.url(name))
    # The notebook's own panel, found by its path (not "the current tab", which a restored tab or a
    # dialog can change), kept for every later look at it.
    page.wait_for_function("""(name) => {
      if (!window.jupyterapp) return false;
      const panel = Array.from(jupyterapp.shell.widgets('main')).find(
          w => w.context && w.context.path === name && w.content && w.content.widgets.length > 0);
      if (panel) window.__coursePanel = panel;
      return !!panel;
    }""", arg=name, timeout=120_000)
    page.evaluate("""async () => {
      const panel = window.__coursePanel;
      await panel.context.ready; await panel.sessionContext.ready;
      jupyterapp.shell.activateById(panel.id);
    }""")
    page.wait_for_function("() => { const s = window.__coursePanel.sessionContext.session;"
                           " return s && s.kernel && s.kernel.status === 'idle'; }", timeout=120_000)
    _kernel_execute(page, _LEGEND_HOOK)
    page.evaluate("""() => {
      const panel = window.__coursePanel;
      jupyterapp.shell.activateById(panel.id);  // the command acts on the active notebook
      return jupyterapp.commands.execute('notebook:run-all-cells');
    }""")
    deadline = time.monotonic() + timeout
    problems: list[str] = []
    while True:
        state = page.evaluate(_STATE)
        for cell in state["cells"]:
            for error in _errors(cell["outputs"]):
                problems.append(f"{name} cell {cell['index']}: error output {error}")
        if problems:
            return state, problems
        if state["status"] == "idle" and all(c["count"] is not None for c in state["cells"]):
            return state, problems
        if time.monotonic() > deadline:
            pending = [c["index"] for c in state["cells"] if c["count"] is None]
            return state, [f"{name}: not finished after {timeout:.0f} s (cells {pending[:5]} not run)"]
        time.sleep(1.0)


def _movable(control) -> bool:
    """Can a student change this control? (A dropdown with one option, say one layer of one, cannot.)"""
    classes = control.get_attribute("class") or ""
    if "widget-dropdown" in classes or "widget-select" in classes:
        return control.eval_on_selector("select", "s => s.options.length > 1")
    if "widget-slider" in classes or "widget-hslider" in classes:
        handle = control.query_selector(".noUi-handle")
        low, high = (handle.get_attribute(a) if handle else None for a in ("aria-valuemin", "aria-valuemax"))
        return low is None or high is None or float(low) < float(high)
    return True


def _move(page, control) -> str:
    """Move one control the way a student would; return what was done."""
    classes = control.get_attribute("class") or ""
    if "widget-slider" in classes or "widget-hslider" in classes:
        handle = control.query_selector(".noUi-handle")
        readout = control.query_selector(".widget-readout")
        before = readout.inner_text() if readout else None
        handle.focus()
        page.keyboard.press("End")  # to the maximum; if it already was there, to the minimum
        page.wait_for_timeout(300)
        if readout and readout.inner_text() == before:
            page.keyboard.press("Home")
        return f"slider {before} -> {readout.inner_text() if readout else '?'}"
    if "widget-dropdown" in classes or "widget-select" in classes:
        select = control.query_selector("select")
        options = select.eval_on_selector_all("option", "os => os.map(o => o.value)")
        current = select.input_value()
        choice = options[(options.index(current) + 1) % len(options)]
        select.select_option(choice)
        return f"dropdown {current!r} -> {choice!r}"
    if "widget-text" in classes or "widget-textarea" in classes:
        box = control.query_selector("input, textarea")
        box.fill(box.input_value() + " the cat")
        box.press("Enter")
        box.evaluate("e => e.blur()")
        return "text typed"
    if "widget-toggle-buttons" in classes or "widget-radio-box" in classes:
        buttons = control.query_selector_all("button:not(.mod-active), input:not(:checked)")
        buttons[0].click()
        return "toggle clicked"
    control.query_selector("button, input").click() if "widget-button" not in classes else control.click()
    return "clicked"


def check_lecture(page, lab: JupyterLab, name: str, shots: Path, timeout: float = 600.0,
                  widget_timeout: float = 120.0, layout: list[str] | None = None) -> list[str]:
    """Run ``name`` in JupyterLab and return every problem: errors, widgets not shown, widgets inert.

    Layout findings (a cut label, a dropdown too narrow for its text, content wider than its box, a
    legend over data in any figure shown), before and after the move, are appended to ``layout`` if it
    is given.
    """
    shots.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    state, problems = run_all(page, lab, name, timeout)
    run_seconds = time.monotonic() - started
    if problems:
        page.screenshot(path=str(shots / "error.png"))
        page.evaluate("() => window.__coursePanel.sessionContext.shutdown()")
        return problems
    # In the outputs only: the prose may well quote the message (Lecture 1 tells students about it).
    outputs = page.evaluate("() => Array.from(window.__coursePanel.node.querySelectorAll('.jp-OutputArea'))"
                            ".map(area => area.innerText).join('\\n')")
    if "Error displaying widget" in outputs:
        problems.append(f"{name}: 'Error displaying widget' in the page")
    widget_cells = 0
    for cell in state["cells"]:
        i = cell["index"]
        n_widgets = sum(WIDGET_MIME in o.get("data", {}) for o in cell["outputs"])
        if not n_widgets:
            continue
        views = page.evaluate(_WIDGET_VIEWS, [i, WIDGET_MIME])
        for out, view in zip(cell["outputs"], views, strict=False):
            if WIDGET_MIME not in out.get("data", {}):
                continue
            # JupyterLab falls back to the text/plain form ("VBox(children=...)") without a widget manager.
            if not view["widget"] or view["mime"] == "text/plain":
                problems.append(f"{name} cell {i}: widget shown as text: {view['text']!r}")
            elif "Error displaying widget" in view["text"] or view["height"] < 1:
                problems.append(f"{name} cell {i}: {view['text']!r}")
        node = _cell(page, i)
        controls = node.query_selector_all(_CONTROLS)
        if not controls:
            continue  # a progress bar: shown, nothing to move
        widget_cells += 1
        node.scroll_into_view_if_needed()
        node.screenshot(path=str(shots / f"cell{i:03d}-before.png"))
        seen = page.evaluate(_LAYOUT, i)
        before = page.evaluate(_SIGNATURE, [i, _CONTROLS])
        action = _move(page, next((c for c in controls if _movable(c)), controls[0]))
        deadline = time.monotonic() + widget_timeout
        after = before
        while time.monotonic() < deadline:
            page.wait_for_timeout(500)
            if _wait_idle(page, widget_timeout)["status"] != "idle":
                continue
            after = page.evaluate(_SIGNATURE, [i, _CONTROLS])
            if after != before:
                page.wait_for_timeout(500)  # let the rest of the update land before the screenshot
                break
        node.screenshot(path=str(shots / f"cell{i:03d}-after.png"))
        if layout is not None:
            for finding in dict.fromkeys(seen + page.evaluate(_LAYOUT, i)):
                layout.append(f"{name} cell {i}: {finding}")
        if after == before:
            problems.append(f"{name} cell {i} ({cell['source'].splitlines()[-1][:50]!r}...): "
                            f"{action}, but its output did not change in {widget_timeout:.0f} s")
        shown = node.inner_text()
        if "Traceback" in shown or "Error displaying widget" in shown:
            lines = [line for line in shown[shown.find("Traceback"):].splitlines() if line.strip()]
            error = next((line for line in reversed(lines) if re.match(r"\w+(Error|Exception)\b", line)),
                         lines[-1] if lines else shown[:200])
            problems.append(f"{name} cell {i}: after '{action}' the cell shows an error: {error!r}")
    if layout is not None:
        layout.extend(legend_findings(page, name, state))
    (shots / "timing.json").write_text(json.dumps({"run_all_s": round(run_seconds, 1),
                                                   "total_s": round(time.monotonic() - started, 1),
                                                   "widget_cells": widget_cells}))
    page.evaluate("() => window.__coursePanel.sessionContext.shutdown()")
    return problems


# --- decks ------------------------------------------------------------------------------------------

_DECK_FACTS = """() => {
  const slides = Reveal.getHorizontalSlides();
  const firstHeadings = slides.map(h => {
    const leaves = h.querySelectorAll(':scope > section');
    return Array.from(leaves.length ? leaves : [h]).map(leaf => {
      const heading = leaf.querySelector('h1, h2, h3');
      return heading ? heading.textContent.replace(/\\u00b6/g, '').trim() : '';
    });
  });
  // Text a reader sees that MathJax did not typeset (it skips code, which may show a dollar sign).
  const raw = [];
  const walker = document.createTreeWalker(document.querySelector('.reveal .slides'), NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (n.parentElement.closest('pre, code, script, style, .MathJax, .MathJax_CHTML, .mjx-chtml')) continue;
    const m = n.textContent.match(/\\$[^$]+\\$|\\\\\\(|\\\\\\[/);
    if (m) raw.push(m[0].slice(0, 60));
  }
  const imgs = Array.from(document.querySelectorAll('.reveal .slides img'));
  return {
    firstHeadings, raw,
    images: imgs.length, brokenImages: imgs.filter(i => !i.complete || i.naturalWidth === 0).length,
    codeInputs: document.querySelectorAll('.reveal .jp-CodeCell .jp-InputArea').length,
    emptyCells: Array.from(document.querySelectorAll('.reveal .jp-Cell')).filter(
        c => !c.innerText.trim() && !c.querySelector('img, svg')).length,
    maths: document.querySelectorAll('.reveal .MathJax_CHTML, .reveal .mjx-chtml').length,
  };
}"""


def deck_expectations(notebook: Path) -> dict:
    """What the deck of ``notebook`` must show, read from the notebook itself."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    questions = [c for c in nb["cells"]
                 if c["cell_type"] == "markdown" and QUESTION.search("".join(c["source"]))]
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    shown_code = sum("slide-show-code" in c.get("metadata", {}).get("tags", []) for c in code)
    images = sum(1 for c in code for o in c.get("outputs", [])
                 if "image/png" in o.get("data", {}) and WIDGET_MIME not in o.get("data", {}))
    maths = sum(("$" in "".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "markdown")
    return {"questions": len(questions), "shown_code": shown_code, "images": images, "maths_cells": maths}


def check_deck(context, deck: Path, notebook: Path, shots: Path) -> list[str]:
    """Open ``deck`` offline and return every problem: requests, structure, maths, figures, keys."""
    shots.mkdir(parents=True, exist_ok=True)
    expect = deck_expectations(notebook)
    blocked = block_network(context)
    failed: list[str] = []
    page = context.new_page()
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("pageerror", lambda e: failed.append(f"script error: {e}"))
    page.goto(deck.resolve().as_uri())
    problems: list[str] = []
    try:
        page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=30_000)
    except Exception:  # noqa: BLE001 (reported as a problem, with the blocked requests that caused it)
        return [f"{deck.name}: reveal.js did not start; blocked {blocked}, failed {failed}"]
    page.wait_for_function("window.MathJax && MathJax.Hub", timeout=30_000)
    page.evaluate("() => new Promise(done => MathJax.Hub.Queue(() => done(true)))")
    facts = page.evaluate(_DECK_FACTS)
    questions = [h for h in facts["firstHeadings"] if QUESTION.search("## " + h[0])]
    wanted = max(5, expect["questions"])  # five questions per lecture
    if len(questions) < wanted:
        problems.append(f"{deck.name}: {len(questions)} question slides, expected {wanted}")
    for stack in questions:
        if [h for h in stack if h in STEPS] != STEPS:
            problems.append(f"{deck.name}: {stack[0]!r} has sub-slides {stack[1:]}, expected the six steps")
    if facts["raw"]:
        problems.append(f"{deck.name}: maths not rendered: {facts['raw'][:5]}")
    if expect["maths_cells"] and not facts["maths"]:
        problems.append(f"{deck.name}: no rendered maths at all")
    if facts["images"] != expect["images"] or facts["brokenImages"]:
        problems.append(f"{deck.name}: {facts['images']} figures ({facts['brokenImages']} broken), "
                        f"the notebook has {expect['images']}")
    if facts["codeInputs"] != expect["shown_code"]:
        problems.append(f"{deck.name}: {facts['codeInputs']} code cells shown, {expect['shown_code']} tagged")
    if facts["emptyCells"]:
        problems.append(f"{deck.name}: {facts['emptyCells']} empty cells (blank space on a slide)")
    page.screenshot(path=str(shots / "slide-0-0.png"))
    # Navigation as an instructor uses it: right arrow = next question, down arrow = next step.
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(800)
    if page.evaluate("Reveal.getIndices().h") != 1:
        problems.append(f"{deck.name}: the right arrow did not go to the next slide")
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(800)
    if page.evaluate("Reveal.getIndices().v") != 1:
        problems.append(f"{deck.name}: the down arrow did not go to the next sub-slide")
    for h, stack in enumerate(facts["firstHeadings"]):
        page.evaluate(f"Reveal.slide({h}, 0)")
        page.wait_for_timeout(600)
        page.screenshot(path=str(shots / f"slide-{h}-0.png"))
        if h == 1:
            for v in range(1, len(stack)):
                page.evaluate(f"Reveal.slide({h}, {v})")
                page.wait_for_timeout(600)
                page.screenshot(path=str(shots / f"slide-{h}-{v}.png"))
    page.close()
    context.unroute("**/*")
    if blocked:
        problems.append(f"{deck.name}: requests to the network: {sorted(set(blocked))}")
    failed = [url for url in failed if url not in blocked]  # the blocked ones are reported above
    if failed:
        problems.append(f"{deck.name}: failed requests or script errors: {sorted(set(failed))}")
    return problems
