"""utils.checks: the exercise checker prints one clear line and never raises; ``claim`` says what missed
its bound and by how much, and logs every margin for the robustness run."""

import json

import pytest
import torch

from utils.checks import (
    CLAIMS_LOG_ENV,
    FAILED,
    NOT_ATTEMPTED,
    PASSED,
    ClaimFailed,
    check_exercise,
    claim,
    default_compare,
)


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


# ----------------------------------------------------------------------------------------------------
# claim: the assert behind every measured figure
# ----------------------------------------------------------------------------------------------------

def test_claim_passes_silently_when_every_bound_holds():
    # nothing returned: a notebook cell that ends with a claim shows no number that differs by machine
    assert claim("accuracy", 0.97, at_least=0.9, at_most=1.0) is None
    assert claim("slope", torch.tensor(2.0), above=1.5, below=2.5) is None
    assert claim("exactly at the floor", 0.9, at_least=0.9) is None


@pytest.mark.parametrize("bounds, text", [
    ({"above": 0.9}, "expected > 0.9 (missed by 0"),
    ({"at_least": 0.95}, "expected ≥ 0.95 (missed by 0.05)"),
    ({"below": 0.5}, "expected < 0.5 (missed by 0.4)"),
    ({"at_most": 0.8}, "expected ≤ 0.8 (missed by 0.1)"),
])
def test_claim_failure_names_the_figure_the_value_and_the_bound(bounds, text):
    with pytest.raises(ClaimFailed) as failure:
        claim("held-out accuracy", 0.9, **bounds)
    message = str(failure.value)
    assert message.startswith("held-out accuracy: measured 0.9, ")
    assert text in message
    assert isinstance(failure.value, AssertionError)  # a failed claim is a failed assert


def test_claim_fails_on_nan_and_rejects_bad_arguments():
    with pytest.raises(ClaimFailed):
        claim("loss", float("nan"), below=10.0)
    with pytest.raises(ValueError, match="at least one bound"):
        claim("loss", 1.0)
    with pytest.raises(TypeError, match="value must be a number"):
        claim("loss", "1.0", below=2.0)
    with pytest.raises(ValueError, match="single number"):
        claim("loss", torch.ones(2), below=2.0)
    with pytest.raises(TypeError, match="what must be"):
        claim("", 1.0, below=2.0)


def test_claim_logs_every_bound_with_its_margin_when_asked(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv(CLAIMS_LOG_ENV, str(log))
    claim("accuracy", 0.96, at_least=0.8)
    with pytest.raises(ClaimFailed):
        claim("slope", 2.75, above=1.5, below=2.5)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["what"], r["bound"], r["kept"]) for r in records] == [
        ("accuracy", "at_least", True), ("slope", "above", True), ("slope", "below", False)]
    assert records[0]["margin"] == pytest.approx(0.16)
    assert records[0]["relative_margin"] == pytest.approx(0.16 / 0.96)
    assert records[2]["margin"] == pytest.approx(-0.25)


def test_claim_writes_nothing_without_the_log_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(CLAIMS_LOG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    claim("accuracy", 0.96, at_least=0.8)
    assert list(tmp_path.iterdir()) == []
