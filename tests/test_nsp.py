"""utils.nsp: the encoding, the held-out split, the schedule, the shipped checkpoint and the script behind it.

Oracles: ``nsp_input`` and the tokenizer for the encoding, set algebra for the split, hand-computed
multipliers for the schedule, and the stated quality of the recipe (held-out accuracy > 90 %, the best
possible being 96 %) for the shipped model and for a model freshly trained by the script.
"""

import pytest
import torch

from utils.data import all_tiny_world_sentences, nsp_input
from utils.nsp import (
    NSP_CHECKPOINT,
    NSP_DECAY,
    NSP_STEPS,
    NSP_WARMUP,
    encode_nsp_pairs,
    nsp_classifier,
    nsp_datasets,
    nsp_held_out_sentences,
    nsp_lr_multiplier,
    nsp_tokenizer,
    save_nsp_classifier,
    train_nsp_classifier,
)


def held_out_accuracy(model, tokenizer, seed: int = 11) -> float:
    ids, labels = encode_nsp_pairs(nsp_datasets(seed=seed)[1], tokenizer)
    with torch.no_grad():
        return (model(ids).argmax(dim=-1) == labels).float().mean().item()


@pytest.fixture(scope="module")
def shipped():
    return nsp_classifier()


def test_encoding_is_nsp_input_looked_up_word_by_word():
    tok = nsp_tokenizer()
    pairs = nsp_datasets(n_train=50, n_test=50, seed=3)[0][:5]
    ids, labels = encode_nsp_pairs(pairs, tok)
    assert ids.shape == (5, 21) and labels.tolist() == [label for *_, label in pairs]
    assert [tok.id_to_token[i] for i in ids[2].tolist()] == nsp_input(*pairs[2][:2])[0]
    with pytest.raises(ValueError, match="pairs"):
        encode_nsp_pairs([], tok)
    with pytest.raises(ValueError, match="same number of tokens"):
        encode_nsp_pairs([("the cat ate .", "the dog ate .", 1), *pairs[:1]], tok)


def test_held_out_first_sentences_never_start_a_training_pair():
    held_out = set(nsp_held_out_sentences())
    assert len(held_out) == 54 and held_out <= set(all_tiny_world_sentences())
    for seed in (11, 5):
        train_pairs, test_pairs = nsp_datasets(seed=seed)
        assert not {a for a, _, _ in train_pairs} & held_out
        assert {a for a, _, _ in test_pairs} <= held_out and len(test_pairs) > 800
    with pytest.raises(ValueError, match="n_train"):
        nsp_datasets(n_train=0)


def test_schedule_warms_up_holds_and_decays_to_zero():
    rates = [nsp_lr_multiplier(s) for s in range(NSP_STEPS)]
    assert rates[0] == pytest.approx(1 / NSP_WARMUP) and rates[NSP_WARMUP - 1] == 1.0
    assert set(rates[NSP_WARMUP - 1 : NSP_STEPS - NSP_DECAY + 1]) == {1.0}  # held at the peak
    assert all(a > b for a, b in zip(rates[-NSP_DECAY:], rates[-NSP_DECAY + 1 :], strict=False))
    assert rates[-1] == pytest.approx(1 / NSP_DECAY)  # the last step uses the last sliver of the rate


def test_checkpoint_is_small_and_loads_with_weights_only():
    assert NSP_CHECKPOINT.exists(), "run `python -m utils.nsp` to make the checkpoint"
    assert NSP_CHECKPOINT.stat().st_size < 500_000
    payload = torch.load(NSP_CHECKPOINT, map_location="cpu", weights_only=True)
    assert set(payload) >= {"config", "vocabulary", "state_dict", "history", "held_out"}


def test_shipped_model_has_the_stated_quality(shipped):
    assert held_out_accuracy(shipped.model, shipped.tokenizer) > 0.9
    assert held_out_accuracy(shipped.model, shipped.tokenizer, seed=2024) > 0.9  # other pairs, same rule
    assert max(shipped.history.evals[:2]) < 0.6  # the flat start is in its stored learning curve
    assert len(shipped.history.losses) == NSP_STEPS


def test_save_and_load_round_trip(shipped, tmp_path):
    again = nsp_classifier(path=save_nsp_classifier(shipped, tmp_path / "nsp.pt"))
    ids, _ = encode_nsp_pairs(nsp_datasets(n_test=200)[1], shipped.tokenizer)
    torch.testing.assert_close(again.model(ids), shipped.model(ids), rtol=0, atol=0)
    assert again.history.evals == shipped.history.evals
    with pytest.raises(FileNotFoundError, match="python -m utils.nsp"):
        nsp_classifier(path=tmp_path / "missing.pt")


@pytest.mark.recipe
def test_the_script_still_trains_a_model_of_the_stated_quality(one_thread):
    trained = train_nsp_classifier(progress=False)
    assert held_out_accuracy(trained.model, trained.tokenizer) > 0.9
