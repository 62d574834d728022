"""The notebooks as documents: lectures/ in sync with solutions/, the course conventions, the README map.

nbval re-executes the notebooks (see the Makefile's `test` target); these tests check what nbval cannot:
that lectures/ is exactly what `make lectures` would write, that every section has the six steps, that
every exercise in the answer key passes its own check, and that the student version has no answers.
"""

import ast
import os
import re
from pathlib import Path

import nbformat
import pytest

from utils.authoring import BEGIN, is_pristine, render_lecture

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))
STEPS = ["### The idea", "### Build it", "### See it", "### Play with it", "### Check it", "### Your turn"]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def ids(paths):
    return [p.name for p in paths]


def test_there_are_solutions_notebooks():
    assert SOLUTIONS, "solutions/ holds no NN_*.ipynb notebooks"


def test_lectures_and_solutions_hold_the_same_notebooks():
    lectures = {p.name for p in (REPO / "lectures").glob("*.ipynb")}
    solutions = {p.name for p in SOLUTIONS}
    assert solutions <= lectures, f"missing from lectures/: {solutions - lectures} (run `make lectures`)"
    if IN_CI:  # a clean clone: nothing but generated notebooks (locally, a student may keep copies there)
        assert lectures == solutions, f"lectures/ has notebooks without a solution: {lectures - solutions}"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids(SOLUTIONS))
def test_lecture_is_what_make_lectures_writes(solution):
    lecture = REPO / "lectures" / solution.name
    assert lecture.exists(), f"{lecture} is missing: run `make lectures`"
    if lecture.read_text(encoding="utf-8") == render_lecture(solution):
        return
    if not IN_CI and not is_pristine(lecture):
        pytest.skip(f"{lecture.name} has your own edits or outputs, so it cannot be compared with solutions/ "
                    "(CI, on a clean clone, always compares)")
    pytest.fail(f"{lecture} is out of date with {solution}: run `make lectures` and commit the result")


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def text_of(cell) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", []) if out.output_type == "stream")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids(SOLUTIONS))
def test_every_section_follows_the_six_steps(solution):
    nb = read(solution)
    headings = [line for cell in nb.cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith(("## ", "### "))]
    sections: dict[str, list[str]] = {}
    for line in headings:
        if re.match(r"## Q\d+ · ", line):
            current = line
            sections[current] = []
        elif line.startswith("### ") and sections:
            sections[current].append(line)
    assert len(sections) == 5, f"expected five question sections, found {list(sections)}"
    for heading, steps in sections.items():
        found = [step for step in STEPS if any(s.startswith(step) for s in steps)]
        assert found == STEPS, f"{heading}: steps {found} (expected {STEPS} in this order)"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids(SOLUTIONS))
def test_questions_start_slides_and_steps_start_sub_slides(solution):
    """The decks of `make slides` follow the cells' slide metadata: a question heading must open its own
    slide and each step heading its own sub-slide, so a heading buried mid-cell would vanish from the deck."""
    for cell in read(solution).cells:
        if cell.cell_type != "markdown":
            continue
        kind = cell.metadata.get("slideshow", {}).get("slide_type")
        for number, line in enumerate(cell.source.splitlines()):
            expected = ("slide" if re.match(r"## Q\d+ · ", line)
                        else "subslide" if line.startswith(tuple(STEPS)) else None)
            if expected:
                assert number == 0, f"{line!r} is not the first line of its cell"
                assert kind == expected, f"{line!r}: slide_type {kind!r}, expected {expected!r}"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids(SOLUTIONS))
def test_every_exercise_passes_its_check_in_the_answer_key(solution):
    nb = read(solution)
    exercises = [c for c in code_cells(nb) if BEGIN in c.source]
    assert exercises, "a lecture has at least one exercise"
    outputs = "\n".join(text_of(c) for c in code_cells(nb))
    for cell in exercises:
        name = re.search(r"#\s*(Exercise\s+\d+\.\d+)", cell.source).group(1)
        assert re.search(rf"✅ {re.escape(name)}\b.*passed", outputs), f"{name}: no stored 'passed' line"
    assert "❌" not in outputs and "⏳" not in outputs


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids(SOLUTIONS))
def test_solutions_are_stored_executed_without_errors(solution):
    nb = read(solution)
    for cell in code_cells(nb):
        assert cell.execution_count is not None, f"cell not executed: {cell.source[:60]!r}"
        assert all(out.output_type != "error" for out in cell.outputs), cell.source[:60]
        assert "Traceback" not in text_of(cell)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids(SOLUTIONS))
def test_widget_and_timing_cells_are_not_compared_byte_for_byte(solution):
    # nbval cannot compare ipywidgets output, and timings differ between machines
    for cell in code_cells(read(solution)):
        source = cell.source
        widget = re.search(r"\b(interact|interactive_output|_explorer\(|memory_calculator\()", source)
        timing = re.search(r"perf_counter|attention_cost\(", source)
        if widget or timing:
            assert source.startswith("# NBVAL_IGNORE_OUTPUT"), f"mark NBVAL_IGNORE_OUTPUT: {source[:80]!r}"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids(SOLUTIONS))
def test_plot_cells_end_with_plt_show(solution):
    for cell in code_cells(read(solution)):
        lines = [line for line in cell.source.splitlines() if line.strip() and not line.startswith("#")]
        if lines and re.match(r"(plt|ax|axes|fig)\b.*", lines[-1]):
            last = lines[-1].strip()
            assert last == "plt.show()" or "=" in last, f"end with plt.show(): {last!r}"


def top_level_bindings(tree: ast.Module):
    """(name, is_definition) for every name a cell binds at its top level, loops and ifs included."""
    def names(target):
        return [node.id for node in ast.walk(target) if isinstance(node, ast.Name)]

    def walk(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield node.name, True
            elif isinstance(node, ast.Assign):
                yield from ((name, False) for target in node.targets for name in names(target))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For)):
                yield from ((name, False) for name in names(node.target))
            elif isinstance(node, ast.With):
                yield from ((name, False) for item in node.items if item.optional_vars is not None
                            for name in names(item.optional_vars))
            for field in ("body", "orelse", "finalbody"):
                if isinstance(node, (ast.For, ast.While, ast.If, ast.With, ast.Try)):
                    yield from walk(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                yield from walk(handler.body)

    yield from walk(tree.body)


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids(SOLUTIONS))
def test_functions_are_not_rebound_by_later_cells(solution):
    # A widget calls its functions again after the whole notebook has run: a later cell that reuses a
    # function's name (`for lr, run in ...` after `def run`) breaks the widget above it in the browser.
    defined_in: dict[str, int] = {}
    for index, cell in enumerate(code_cells(read(solution))):
        lines = cell.source.splitlines()
        source = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
        for name, is_definition in top_level_bindings(ast.parse(source)):
            first = defined_in.setdefault(name, index) if is_definition else defined_in.get(name)
            assert first is None or first == index, (
                f"code cell {index} binds {name!r}, a function defined in code cell {first}: rename one")


def test_readme_course_map_marks_exactly_the_existing_lectures_available():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| *(\d+) *\|.*\| *(available|coming) *\|", readme, flags=re.MULTILINE)
    assert [int(n) for n, _ in rows] == list(range(1, 11)), "the course map lists the ten lectures"
    available = {int(n) for n, status in rows if status == "available"}
    assert available == {int(p.name[:2]) for p in SOLUTIONS}


@pytest.mark.parametrize("solution", SOLUTIONS, ids=ids(SOLUTIONS))
def test_check_cells_never_raise_for_a_student(solution):
    # A check cell is the same in lectures/ and solutions/: it must print its verdict and go on, so that a
    # wrong answer never stops "Run All". The answer key is guarded by the stored "✅ passed" lines above.
    for cell in code_cells(read(solution)):
        if "check_exercise(" in cell.source and BEGIN not in cell.source:
            assert not re.search(r"^\s*(assert|raise)\b", cell.source, flags=re.MULTILINE), cell.source[:80]
