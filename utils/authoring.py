"""Write the student notebooks in ``lectures/`` from the answer key in ``solutions/``.

``solutions/`` is the single source. For every notebook there, the lecture version is the same notebook
with, in each code cell, the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` replaced by a
stub that raises ``NotImplementedError("Exercise 1.1 · …")``, and with outputs, execution counts and
widget state cleared. The exercise name comes from the cell's ``# Exercise N.M · title`` comment line.

A student's work is never overwritten: each generated lecture carries a fingerprint of its own cells in
its metadata. If a lecture no longer matches its fingerprint (somebody edited or ran it), it is left
alone unless ``--force`` is given, and even then the old file is first copied to ``lectures/.backups/``.

Usage::

    python -m utils.authoring            # write lectures/ (the Makefile's `make lectures`)
    python -m utils.authoring --check    # exit 1 if lectures/ is out of date (used by the tests)

>>> cell = "def f():\\n    ### BEGIN SOLUTION\\n    return 1\\n    ### END SOLUTION"
>>> print(strip_solutions(cell, "Exercise 9.9 · demo"))
def f():
    # YOUR CODE HERE
    raise NotImplementedError("Exercise 9.9 · demo")
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat

__all__ = [
    "BEGIN",
    "END",
    "strip_solutions",
    "exercise_name",
    "make_lecture",
    "render_lecture",
    "cells_fingerprint",
    "is_pristine",
    "build_lectures",
    "stale_lectures",
    "main",
]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
REPO = Path(__file__).resolve().parent.parent
_EXERCISE = re.compile(r"^\s*#\s*(Exercise\s+\d+\.\d+.*?)\s*$", re.MULTILINE)
# Cell metadata worth keeping in the student version (slides, tags); run-time metadata is dropped.
_KEEP_CELL_METADATA = ("slideshow", "tags", "editable", "deletable")


def exercise_name(source: str) -> str:
    """The ``Exercise N.M · title`` named by the first such comment line in a cell."""
    match = _EXERCISE.search(source)
    if match is None:
        raise ValueError(
            f"source: a cell with {BEGIN!r} must name its exercise in a comment line such as "
            f"'# Exercise 1.1 · Count pairs'; none found in:\n{source[:200]}"
        )
    return match.group(1)


def strip_solutions(source: str, name: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` block with a stub at the same indent."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError(f"source: line {number} opens a solution block inside another one")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}raise NotImplementedError({json.dumps(name, ensure_ascii=False)})")
        elif stripped.startswith(END):
            if not inside:
                raise ValueError(f"source: line {number} closes a solution block that was never opened")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"source: a solution block is never closed (missing {END!r})")
    return "\n".join(out)


def cells_fingerprint(nb: nbformat.NotebookNode) -> str:
    """A hash of what a person changes by editing or running a notebook: sources, outputs, counts."""
    content = [
        [cell.cell_type, cell.source, cell.get("outputs", []), cell.get("execution_count")]
        for cell in nb.cells
    ]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def make_lecture(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of a solutions notebook (a new object; ``solution`` is not modified)."""
    nb = nbformat.from_dict(json.loads(json.dumps(solution)))  # deep copy
    for cell in nb.cells:
        if cell.cell_type == "code":
            if BEGIN in cell.source or END in cell.source:
                cell.source = strip_solutions(cell.source, exercise_name(cell.source))
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = nbformat.from_dict(
            {key: cell.metadata[key] for key in _KEEP_CELL_METADATA if key in cell.metadata}
        )
    nb.metadata.pop("widgets", None)
    course = dict(nb.metadata.get("course", {}))
    course["generated_from"] = "solutions/ by `make lectures`: edit the solutions notebook, not this one"
    course["fingerprint"] = cells_fingerprint(nb)
    nb.metadata["course"] = course
    return nb


def render_lecture(solution_path: Path) -> str:
    """The exact text ``build_lectures`` writes for one solutions notebook."""
    solution = nbformat.read(solution_path, as_version=4)
    return nbformat.writes(make_lecture(solution)) + "\n"


def is_pristine(lecture_path: Path) -> bool:
    """True when a lecture notebook is exactly as generated (nobody has edited or run it since)."""
    try:
        nb = nbformat.read(lecture_path, as_version=4)
    except Exception:
        return False
    return nb.metadata.get("course", {}).get("fingerprint") == cells_fingerprint(nb)


def _pairs(solutions: Path, lectures: Path) -> list[tuple[Path, Path]]:
    if not solutions.is_dir():
        raise ValueError(f"solutions must be a directory of notebooks, got {solutions}")
    return [(path, lectures / path.name) for path in sorted(solutions.glob("[0-9][0-9]_*.ipynb"))]


def stale_lectures(solutions: Path = REPO / "solutions", lectures: Path = REPO / "lectures") -> list[Path]:
    """Lecture notebooks that differ from what ``build_lectures`` would write (missing ones included)."""
    return [
        lecture
        for solution, lecture in _pairs(solutions, lectures)
        if not lecture.exists() or lecture.read_text(encoding="utf-8") != render_lecture(solution)
    ]


def build_lectures(
    solutions: Path = REPO / "solutions", lectures: Path = REPO / "lectures", force: bool = False
) -> dict[str, list[Path]]:
    """Write every out-of-date lecture; keep edited ones unless ``force`` (then back them up first).

    Returns the paths by outcome: ``written``, ``unchanged``, ``kept`` (edited by someone, not touched),
    ``backed_up`` (the copies made before a forced overwrite).
    """
    lectures.mkdir(parents=True, exist_ok=True)
    result: dict[str, list[Path]] = {"written": [], "unchanged": [], "kept": [], "backed_up": []}
    for solution, lecture in _pairs(solutions, lectures):
        text = render_lecture(solution)
        if lecture.exists():
            if lecture.read_text(encoding="utf-8") == text:
                result["unchanged"].append(lecture)
                continue
            if not is_pristine(lecture):
                if not force:
                    result["kept"].append(lecture)
                    continue
                backups = lectures / ".backups"
                backups.mkdir(exist_ok=True)
                backup = backups / f"{lecture.stem}.{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
                shutil.copy2(lecture, backup)
                result["backed_up"].append(backup)
        lecture.write_text(text, encoding="utf-8")
        result["written"].append(lecture)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.authoring",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if lectures/ is stale")
    parser.add_argument("--force", action="store_true",
                        help="also replace edited lectures (a backup is kept in lectures/.backups/)")
    parser.add_argument("--solutions", type=Path, default=REPO / "solutions")
    parser.add_argument("--lectures", type=Path, default=REPO / "lectures")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_lectures(args.solutions, args.lectures)
        for path in stale:
            print(f"out of date: {path} (run `make lectures`)")
        print("lectures/ is up to date" if not stale else f"{len(stale)} lecture(s) out of date")
        return 1 if stale else 0
    result = build_lectures(args.solutions, args.lectures, force=args.force)
    for path in result["written"]:
        print(f"wrote     {path}")
    for path in result["backed_up"]:
        print(f"backed up your edited copy to {path}")
    for path in result["kept"]:
        print(f"kept      {path}: it has your edits or outputs, so it was not replaced. "
              f"Rename it to keep your work, or run `make lectures FORCE=1` (your copy is backed up first).")
    counts = {outcome: len(paths) for outcome, paths in result.items()}
    print(f"{counts['written']} written, {counts['unchanged']} unchanged, {counts['kept']} kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
