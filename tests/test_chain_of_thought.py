"""utils.chain_of_thought: the encoding, answer parsing, the shipped checkpoint and the script behind it.

Oracles: the tokens written out by hand, ``ChainProblem.answer`` (evaluated exactly) for the accuracy of
both models, and the stated quality of the recipe (scratchpad > 95 %, direct < 30 %) for a model freshly
trained by it.
"""

import pytest
import torch

from utils.chain_of_thought import (
    CHAIN_N_OPERATIONS,
    COT_CHECKPOINT,
    chain_models,
    chain_tokenizer,
    encode_chains,
    parse_answer,
    save_chain_models,
    solve_chains,
    train_chain_models,
)
from utils.data import ChainProblem, arithmetic_chains
from utils.training import IGNORE_INDEX

TEST_PROBLEMS = arithmetic_chains(400, CHAIN_N_OPERATIONS, seed=2024)


def accuracy(model, tokenizer) -> float:
    written = solve_chains(model, tokenizer, TEST_PROBLEMS)
    right = [parse_answer(w) == p.answer for w, p in zip(written, TEST_PROBLEMS, strict=True)]
    return sum(right) / len(right)


@pytest.fixture(scope="module")
def shipped():
    return chain_models()


def test_encoding_learns_only_what_follows_the_equals_sign():
    tok = chain_tokenizer()
    problem = ChainProblem(9, (("-", 3), ("*", 4)))
    for scratchpad, answer in ((False, ["4", "."]), (True, ["6", "4", ";", "4", "."])):
        inputs, targets = encode_chains([problem], tok, scratchpad)
        words = ["<bos>", *problem.text(scratchpad).split()]
        assert [tok.id_to_token[i] for i in inputs[0].tolist()] == words[:-1]
        learned = [tok.id_to_token[i] for i in targets[0].tolist() if i != IGNORE_INDEX]
        assert learned == answer
        assert (targets[0, : len(problem.question.split())] == IGNORE_INDEX).all()
    with pytest.raises(ValueError, match="at least one"):
        encode_chains([], tok, True)


def test_parse_answer():
    assert parse_answer("3 1 4 1 ; 1 .") == 1 and parse_answer("7 .") == 7
    assert parse_answer("3 1 4 1 ; 1") is None and parse_answer("1 1 .") is None and parse_answer("") is None


def test_checkpoint_is_small_and_loads_with_weights_only():
    assert COT_CHECKPOINT.exists(), "run `python -m utils.chain_of_thought` to make the checkpoint"
    assert COT_CHECKPOINT.stat().st_size < 1_000_000
    payload = torch.load(COT_CHECKPOINT, map_location="cpu", weights_only=True)
    assert set(payload) >= {"config", "vocabulary", "state_dicts", "losses"}


def test_shipped_models_have_the_stated_quality(shipped):
    assert accuracy(shipped.scratchpad, shipped.tokenizer) > 0.95
    assert accuracy(shipped.direct, shipped.tokenizer) < 0.30
    # the scratchpad model writes every intermediate result right, not only the answer
    written = solve_chains(shipped.scratchpad, shipped.tokenizer, TEST_PROBLEMS[:50])
    worked = [p.text(True).split("= ", 1)[1] for p in TEST_PROBLEMS[:50]]
    assert sum(w == truth for w, truth in zip(written, worked, strict=True)) >= 48


def test_save_and_load_round_trip(shipped, tmp_path):
    again = chain_models(path=save_chain_models(shipped, tmp_path / "cot.pt"))
    ids = encode_chains(TEST_PROBLEMS[:4], shipped.tokenizer, True)[0]
    torch.testing.assert_close(again.scratchpad(ids), shipped.scratchpad(ids), rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="python -m utils.chain_of_thought"):
        chain_models(path=tmp_path / "missing.pt")


@pytest.mark.recipe
def test_the_script_still_trains_models_of_the_stated_quality(one_thread):
    trained = train_chain_models(progress=False)
    assert accuracy(trained.scratchpad, trained.tokenizer) > 0.95
    assert accuracy(trained.direct, trained.tokenizer) < 0.30
