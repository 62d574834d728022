"""utils.checks: the exercise checker prints one clear line and never raises."""

import torch

from utils.checks import FAILED, NOT_ATTEMPTED, PASSED, check_exercise, default_compare


def reference(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def make_inputs(g: torch.Generator) -> tuple:
    return (torch.randn(3, generator=g),)


def test_correct_answer_passes(capsys):
    result = check_exercise("Exercise 0.1 · double", lambda x: x + x, reference, make_inputs)
    assert result.status == PASSED and result
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "passed" in out and "Exercise 0.1 · double" in out


def test_stub_is_reported_as_not_attempted(capsys):
    def stub(x):
        raise NotImplementedError("Exercise 0.1 · double")

    result = check_exercise("Exercise 0.1 · double", stub, reference, make_inputs)
    assert result.status == NOT_ATTEMPTED and not result
    assert "not attempted yet" in capsys.readouterr().out


def test_wrong_answer_fails_and_says_what_differed(capsys):
    result = check_exercise("ex", lambda x: x * 3, reference, make_inputs)
    assert result.status == FAILED
    assert "case 1" in capsys.readouterr().out


def test_a_crash_in_the_student_code_is_reported_not_raised(capsys):
    result = check_exercise("ex", lambda x: x.nonexistent(), reference, make_inputs)
    assert result.status == FAILED and "AttributeError" in result.message


def test_modifying_the_input_is_a_failure():
    def sneaky(x):
        out = x * 2
        x.zero_()
        return out

    assert check_exercise("ex", sneaky, reference, make_inputs).status == FAILED


def test_broken_reference_does_not_raise():
    result = check_exercise("ex", reference, lambda x: 1 / 0, make_inputs)
    assert result.status == FAILED and "could not be checked" in result.message


def test_wrong_on_a_later_case_is_found():
    # correct only for non-negative sums: random normal inputs will break it within 20 cases
    def partly(x):
        return x * 2 if x.sum() >= 0 else x

    assert check_exercise("ex", partly, reference, make_inputs, trials=20).status == FAILED


def test_default_compare():
    assert default_compare(torch.ones(2), torch.ones(2)) is None
    assert default_compare(torch.ones(2), torch.ones(3)) is not None
    assert default_compare([1, 2], (1, 2)) is None
    assert default_compare({1: 2}, {1: 3}) is not None
    assert default_compare("ab", ["a", "b"]) is not None
    assert default_compare(3, torch.tensor(3)) == "expected a torch.Tensor, got int"
