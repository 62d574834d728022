"""The course language model: the shipped checkpoint and the script that makes it.

Oracle: the weighted tiny world's exact next-word distributions (``utils.data.next_word_probabilities``),
computed in closed form from ``WORLD_WEIGHTS``. The model is scored on every prefix of every grammatical
sentence, weighting each prefix by how often the world produces it.
"""

import pytest
import torch

from utils.data import all_tiny_world_sentences, next_word_probabilities, sentence_probability
from utils.models import (
    COURSE_LM_CHECKPOINT,
    CourseLM,
    TinyGPT,
    course_language_model,
    save_course_language_model,
    train_course_language_model,
)

STATED_MEAN_TV = 0.05  # what train_course_language_model's docstring promises


def total_variation_by_prefix(course: CourseLM) -> dict[str, tuple[float, float]]:
    """{prefix: (its probability, total variation of the model's from the exact next-word distribution)}."""
    sentences = all_tiny_world_sentences()
    ids = torch.cat([course.encode(s) for s in sentences])  # (240, 10): <bos> + 9 words
    with torch.no_grad():
        probs = torch.softmax(course(ids).float(), dim=-1).cpu()  # (240, 10, V)
    vocab = course.tokenizer.id_to_token
    result: dict[str, tuple[float, float]] = {}
    for row, sentence in enumerate(sentences):
        words = sentence.split()
        weight = sentence_probability(sentence, weighted=True)
        for t in range(9):  # position t has read <bos> + words[:t] and predicts words[t]
            prefix = " ".join(words[:t])
            exact = next_word_probabilities(prefix, weighted=True)
            target = torch.tensor([exact.get(word, 0.0) for word in vocab])
            tv = 0.5 * (probs[row, t] - target).abs().sum().item()
            previous = result.get(prefix, (0.0, tv))
            result[prefix] = (previous[0] + weight, tv)
    return result


def mean_tv(course: CourseLM) -> float:
    by_prefix = total_variation_by_prefix(course)
    return sum(w * tv for w, tv in by_prefix.values()) / sum(w for w, _ in by_prefix.values())


@pytest.fixture(scope="module")
def shipped() -> CourseLM:
    return course_language_model(device="cpu")


def test_checkpoint_is_small_and_loads_with_weights_only():
    assert COURSE_LM_CHECKPOINT.exists(), "run `python -m utils.models` to make the checkpoint"
    assert COURSE_LM_CHECKPOINT.stat().st_size < 2_000_000  # a few hundred kB, well under "a few MB"
    payload = torch.load(COURSE_LM_CHECKPOINT, map_location="cpu", weights_only=True)  # no pickled code
    assert set(payload) >= {"config", "vocabulary", "state_dict", "losses"}


def test_shipped_model_matches_the_exact_distributions(shipped):
    assert isinstance(shipped.model, TinyGPT) and not shipped.model.training
    assert mean_tv(shipped) < STATED_MEAN_TV
    # the decisive choices the decoding lectures rely on
    decisive = [("the cat", "chased"), ("the cat ate the", "apple"), ("the cat ate the apple", "at")]
    for prefix, word in decisive:
        logits = shipped(shipped.encode(prefix))[0, -1]
        assert shipped.tokenizer.id_to_token[int(logits.argmax())] == word


def test_call_reads_only_the_last_block_of_a_long_input(shipped):
    long = shipped.encode(" ".join(["the cat ate the apple at the table ."] * 5))  # (1, 46)
    block = shipped.model.config.block_size
    logits = shipped(long)
    assert logits.shape == (1, block, shipped.tokenizer.vocab_size)
    torch.testing.assert_close(logits, shipped.model(long[:, -block:]))


def test_encode_decode_round_trip(shipped):
    sentence = "the owl watched the moon from the window ."
    ids = shipped.encode(sentence)
    assert ids[0, 0].item() == shipped.tokenizer.bos_id and ids.shape == (1, 10)
    assert shipped.decode(ids) == sentence == shipped.decode(ids[0].tolist())
    with pytest.raises(ValueError, match="ids must be"):
        shipped.decode(torch.zeros(2, 3, dtype=torch.long))


def test_save_and_load_round_trip(shipped, tmp_path):
    path = save_course_language_model(shipped, tmp_path / "lm.pt")
    again = course_language_model(device="cpu", path=path)
    ids = shipped.encode("the dog found the key")
    torch.testing.assert_close(again(ids), shipped(ids), rtol=0, atol=0)
    assert again.history.losses == shipped.history.losses


def test_missing_checkpoint_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m utils.models"):
        course_language_model(device="cpu", path=tmp_path / "nothing.pt")


@pytest.mark.recipe
def test_the_script_still_trains_a_model_of_the_stated_quality(one_thread):
    # The same recipe the checkpoint was made with (python -m utils.models), from scratch.
    trained = train_course_language_model(device="cpu", progress=False)
    assert mean_tv(trained) < STATED_MEAN_TV
    assert trained.history.final_loss < trained.history.losses[0] / 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        train_course_language_model(steps=0, progress=False)
