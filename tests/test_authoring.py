"""utils.authoring: solutions -> lectures, and a student's work is never overwritten."""

import json

import nbformat
import pytest

from utils.authoring import (
    BEGIN,
    END,
    build_lectures,
    exercise_name,
    is_pristine,
    make_lecture,
    stale_lectures,
    strip_solutions,
)

EXERCISE = f"""# Exercise 1.1 · Add one
def add_one(x):
    \"\"\"Return x + 1.\"\"\"
    {BEGIN}
    y = x + 1
    return y
    {END}"""


def solutions_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    md = nbformat.v4.new_markdown_cell("# Title", metadata={"slideshow": {"slide_type": "slide"}})
    code = nbformat.v4.new_code_cell(EXERCISE, execution_count=3, metadata={"tags": ["exercise"],
                                                                          "scrolled": True})
    code.outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    nb.cells = [md, code]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    return nb


def test_strip_solutions_hand_example():
    stub = strip_solutions(EXERCISE, "Exercise 1.1 · Add one")
    assert stub.splitlines() == [
        "# Exercise 1.1 · Add one",
        "def add_one(x):",
        '    """Return x + 1."""',
        "    # YOUR CODE HERE",
        '    raise NotImplementedError("Exercise 1.1 · Add one")',
    ]


def test_stub_raises_not_implemented_naming_the_exercise():
    namespace: dict = {}
    exec(strip_solutions(EXERCISE, exercise_name(EXERCISE)), namespace)
    with pytest.raises(NotImplementedError, match="Exercise 1.1 · Add one"):
        namespace["add_one"](1)


def test_code_outside_the_markers_is_kept_verbatim():
    source = f"a = 1\n{BEGIN}\nb = 2\n{END}\nc = 3"
    assert strip_solutions(source, "E").splitlines()[0] == "a = 1"
    assert strip_solutions(source, "E").splitlines()[-1] == "c = 3"


@pytest.mark.parametrize("source", [f"{BEGIN}\nx", f"x\n{END}", f"{BEGIN}\n{BEGIN}\n{END}"])
def test_unbalanced_markers_raise(source):
    with pytest.raises(ValueError, match="source"):
        strip_solutions(source, "E")


def test_an_exercise_cell_must_name_its_exercise():
    with pytest.raises(ValueError, match="Exercise"):
        exercise_name(f"def f():\n    {BEGIN}\n    pass\n    {END}")


def test_make_lecture_clears_outputs_counts_widget_state_and_keeps_slides():
    solution = solutions_notebook()
    before = json.dumps(solution, sort_keys=True)
    lecture = make_lecture(solution)
    assert json.dumps(solution, sort_keys=True) == before, "the solutions notebook must not be modified"
    code = lecture.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert "y = x + 1" not in code.source and "NotImplementedError" in code.source
    assert code.metadata == {"tags": ["exercise"]}
    assert lecture.cells[0].metadata["slideshow"]["slide_type"] == "slide"
    assert "widgets" not in lecture.metadata
    nbformat.validate(lecture)


def _write(path, nb):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_build_then_check_then_rebuild_is_stable(tmp_path):
    solutions, lectures = tmp_path / "solutions", tmp_path / "lectures"
    _write(solutions / "01_demo.ipynb", solutions_notebook())
    assert stale_lectures(solutions, lectures) == [lectures / "01_demo.ipynb"]
    assert build_lectures(solutions, lectures)["written"] == [lectures / "01_demo.ipynb"]
    assert stale_lectures(solutions, lectures) == []
    assert is_pristine(lectures / "01_demo.ipynb")
    assert build_lectures(solutions, lectures)["unchanged"] == [lectures / "01_demo.ipynb"]


def test_a_pristine_lecture_is_updated_when_the_solution_changes(tmp_path):
    solutions, lectures = tmp_path / "solutions", tmp_path / "lectures"
    nb = solutions_notebook()
    _write(solutions / "01_demo.ipynb", nb)
    build_lectures(solutions, lectures)
    nb.cells[0].source = "# A better title"
    _write(solutions / "01_demo.ipynb", nb)
    assert build_lectures(solutions, lectures)["written"] == [lectures / "01_demo.ipynb"]
    assert "A better title" in (lectures / "01_demo.ipynb").read_text()


def test_an_edited_lecture_is_never_overwritten_without_force(tmp_path):
    solutions, lectures = tmp_path / "solutions", tmp_path / "lectures"
    nb = solutions_notebook()
    _write(solutions / "01_demo.ipynb", nb)
    build_lectures(solutions, lectures)
    lecture_path = lectures / "01_demo.ipynb"
    student = nbformat.read(lecture_path, as_version=4)
    student.cells[1].source = student.cells[1].source.replace("raise NotImplementedError", "return x + 1 #")
    nbformat.write(student, lecture_path)
    my_work = lecture_path.read_text()

    nb.cells[0].source = "# Changed upstream"
    _write(solutions / "01_demo.ipynb", nb)
    result = build_lectures(solutions, lectures)
    assert result["kept"] == [lecture_path] and lecture_path.read_text() == my_work

    forced = build_lectures(solutions, lectures, force=True)
    assert forced["written"] == [lecture_path] and len(forced["backed_up"]) == 1
    assert forced["backed_up"][0].read_text() == my_work
    assert "Changed upstream" in lecture_path.read_text()
