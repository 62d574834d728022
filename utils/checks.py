"""The exercise checker behind every "Your turn" cell.

``check_exercise`` runs a student's function and the course's reference on the same random inputs and
prints exactly one line:

- ``✅ Exercise 1.1 · Count pairs: passed (20 random cases)``
- ``⏳ Exercise 1.1 · Count pairs: not attempted yet (the stub still raises NotImplementedError)``
- ``❌ Exercise 1.1 · Count pairs: failed on case 3: <what differed>``

It never raises (a student's bug must not stop the rest of the notebook from running), and it returns a
``CheckResult`` so that the solutions notebook can ``assert`` that its own answer passes.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["CheckResult", "check_exercise", "default_compare", "PASSED", "NOT_ATTEMPTED", "FAILED"]

PASSED, NOT_ATTEMPTED, FAILED = "passed", "not attempted", "failed"


@dataclass(frozen=True)
class CheckResult:
    """What a check found: ``status`` is one of ``passed``, ``not attempted``, ``failed``."""

    name: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __bool__(self) -> bool:  # lets a solutions notebook write `assert check_exercise(...)`
        return self.passed


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def default_compare(got: Any, expected: Any) -> str | None:
    """``None`` when ``got`` matches ``expected``, else a sentence saying what differed.

    Tensors are compared with ``torch.testing.assert_close`` (shape, dtype and values within float
    tolerance); tuples and lists element by element; anything else with ``==``.
    """
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a torch.Tensor, got {type(got).__name__}"
        try:
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
        except AssertionError as error:
            first = str(error).strip().splitlines()
            return " ".join(line.strip() for line in first[:3])
        return None
    if isinstance(expected, (tuple, list)) and not isinstance(got, (str, bytes)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected a {type(expected).__name__} of {len(expected)} items, got {_short(got)}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            problem = default_compare(g, e)
            if problem:
                return f"item {i}: {problem}"
        return None
    if got != expected:
        return f"expected {_short(expected)}, got {_short(got)}"
    return None


def check_exercise(
    name: str,
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    make_inputs: Callable[[torch.Generator], tuple],
    trials: int = 20,
    seed: int = 0,
    compare: Callable[[Any, Any], str | None] | None = None,
) -> CheckResult:
    """Grade ``candidate`` against ``reference`` on ``trials`` random inputs; print one line; never raise.

    ``make_inputs(generator)`` returns the positional arguments for one trial. Each function gets its own
    deep copy of the arguments, so a candidate that modifies its input cannot fool the reference (and
    modifying an input is reported as a failure: the course's functions never do that).

    >>> check_exercise("demo", lambda a, b: a + b, lambda a, b: a + b,
    ...                lambda g: (1, 2), trials=1).status
    ✅ demo: passed (1 random cases)
    'passed'
    """
    compare = compare or default_compare
    generator = torch.Generator().manual_seed(seed)
    try:
        for trial in range(trials):
            args = make_inputs(generator)
            if not isinstance(args, tuple):
                args = (args,)
            expected = reference(*copy.deepcopy(args))
            student_args = copy.deepcopy(args)
            try:
                got = candidate(*student_args)
            except NotImplementedError:
                return _report(name, NOT_ATTEMPTED,
                               "not attempted yet (the stub still raises NotImplementedError)")
            except Exception as error:  # the student's bug: report it, do not stop the notebook
                where = traceback.extract_tb(error.__traceback__)[-1]
                return _report(name, FAILED, f"failed on case {trial + 1}: {type(error).__name__}: {error} "
                                             f"(line {where.lineno})")
            problem = compare(got, expected)
            if problem:
                return _report(name, FAILED, f"failed on case {trial + 1} with inputs {_short(args, 200)}: "
                                             f"{problem}")
            if compare(list(student_args), list(args)) is not None:
                return _report(name, FAILED, f"failed on case {trial + 1}: your function modified its input "
                                             f"(return a new value instead)")
    except Exception as error:  # a broken reference or input maker is the course's bug; still do not raise
        return _report(name, FAILED, f"could not be checked ({type(error).__name__}: {error})")
    return _report(name, PASSED, f"passed ({trials} random cases)")


def _report(name: str, status: str, message: str) -> CheckResult:
    icon = {PASSED: "✅", NOT_ATTEMPTED: "⏳", FAILED: "❌"}[status]
    print(f"{icon} {name}: {message}")
    return CheckResult(name, status, message)
