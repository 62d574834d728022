"""The exercise checker behind every "Your turn" cell, and ``claim``, the assert behind every measured figure.

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
import json
import math
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["CheckResult", "check_exercise", "default_compare", "PASSED", "NOT_ATTEMPTED", "FAILED", "claim",
           "ClaimFailed", "CLAIMS_LOG_ENV"]

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


# ----------------------------------------------------------------------------------------------------
# Claims about measured figures
# ----------------------------------------------------------------------------------------------------

CLAIMS_LOG_ENV = "COURSE_CLAIMS_LOG"  # when set, every claim appends one JSON line to this file

_BOUNDS = {"above": (">", lambda v, t: v > t), "at_least": ("≥", lambda v, t: v >= t),
           "below": ("<", lambda v, t: v < t), "at_most": ("≤", lambda v, t: v <= t)}


class ClaimFailed(AssertionError):
    """A measured figure missed its bound: the message says what, the measured value and the bound."""


def claim(what: str, value: float, *, above: float | None = None, at_least: float | None = None,
          below: float | None = None, at_most: float | None = None) -> None:
    """Assert that a measured figure ``value`` keeps its bound(s), with a message that says by how much.

    A notebook states what holds for *any* honest run of its recipe (a floor with a margin, a direction),
    never a detail of one run, and checks it with ``claim`` instead of a bare ``assert``: if it ever
    fails on a student's machine, they read what was measured against what was expected, e.g.
    ``held-out exact match: measured 0.931, expected ≥ 0.95``. Several bounds may be given at once
    (``above=1.5, below=2.5``). Returns nothing: a cell that ends with a claim shows no stray number (the
    value's last digits differ between machines, and the stored notebooks are compared byte for byte).

    When the environment variable ``COURSE_CLAIMS_LOG`` names a file, every claim (kept or not) appends
    one JSON line to it: that is how ``python -m utils.robustness`` reports the tightest margins seen
    across seeds and CPU kernel paths.

    >>> claim("accuracy", 0.97, at_least=0.9)
    >>> claim("slope", 2.6, above=1.5, below=2.5)
    Traceback (most recent call last):
    ...
    utils.checks.ClaimFailed: slope: measured 2.6, expected < 2.5 (missed by 0.1)
    """
    if not isinstance(what, str) or not what:
        raise TypeError("what must be a non-empty string that names the measured figure")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"value must be a single number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"value must be a number, got {type(value).__name__}")
    bounds = {name: bound for name, bound in (("above", above), ("at_least", at_least), ("below", below),
                                              ("at_most", at_most)) if bound is not None}
    if not bounds:
        raise ValueError("give at least one bound: above=, at_least=, below= or at_most=")
    value = float(value)
    failures = []
    for name, bound in bounds.items():
        symbol, holds = _BOUNDS[name]
        kept = not math.isnan(value) and holds(value, float(bound))
        _log_claim(what, value, name, float(bound), kept)
        if not kept:
            failures.append(f"expected {symbol} {bound:.4g} (missed by {abs(value - bound):.2g})")
    if failures:
        raise ClaimFailed(f"{what}: measured {value:.4g}, " + "; ".join(failures))


def _log_claim(what: str, value: float, bound_name: str, bound: float, kept: bool) -> None:
    path = os.environ.get(CLAIMS_LOG_ENV)
    if not path:
        return
    # the margin in the bound's own direction: > 0 kept, < 0 missed; relative to the bound's size
    margin = (value - bound) if bound_name in ("above", "at_least") else (bound - value)
    scale = max(abs(bound), abs(value), 1e-12)
    record = {"what": what, "value": value, "bound": bound_name, "threshold": bound, "kept": kept,
              "margin": margin, "relative_margin": margin / scale}
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
