"""Tests for Lecture 5's cross-entropy figures: ``utils.losses.perplexity``, the tiny world's exact entropy
(``utils.data.tiny_world_entropy``) and the course model's sentence log-probabilities
(``utils.models.sentence_log_probs``).

Oracles: ``F.cross_entropy``, closed forms (a uniform model's perplexity is V, the uniform world's entropy
is log 240), the model's own next-token distributions multiplied out word by word, and Gibbs' inequality."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from utils.data import all_tiny_world_sentences, sentence_probability, tiny_world_entropy
from utils.losses import perplexity
from utils.models import course_language_model, next_token_probs, sentence_log_probs


@pytest.fixture(scope="module")
def course():
    return course_language_model(device="cpu")


def test_perplexity_is_exp_of_pytorch_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, targets = 3 * torch.randn(20, 7, generator=g), torch.randint(7, (20,), generator=g)
    targets[::4] = -100
    expected = math.exp(F.cross_entropy(logits, targets, ignore_index=-100).item())
    assert math.isclose(perplexity(logits, targets), expected, rel_tol=1e-6)
    targets[targets == -100] = 5
    assert math.isclose(perplexity(logits, torch.where(targets == 5, -1, targets), ignore_index=-1),
                        math.exp(F.cross_entropy(logits, targets, ignore_index=5).item()), rel_tol=1e-6)


def test_perplexity_counts_choices():
    assert math.isclose(perplexity(torch.zeros(4, 50), torch.tensor([0, 1, 2, 49])), 50, rel_tol=1e-5)
    even_over_three = torch.tensor([[0.0, 0.0, 0.0, -math.inf]])  # three equal choices, one impossible
    assert math.isclose(perplexity(even_over_three, torch.tensor([1])), 3, rel_tol=1e-5)
    assert math.isclose(perplexity(torch.tensor([[50.0, 0.0]]), torch.tensor([0])), 1.0, rel_tol=1e-6)
    assert math.isnan(perplexity(torch.zeros(2, 3), torch.tensor([-100, -100])))
    with pytest.raises(ValueError, match="targets"):
        perplexity(torch.zeros(2, 3), torch.tensor([0, 3]))


def test_world_entropy_by_hand():
    assert math.isclose(tiny_world_entropy(), math.log(240))  # 240 equally likely sentences
    p = [sentence_probability(s, weighted=True) for s in all_tiny_world_sentences()]
    assert math.isclose(sum(p), 1.0)
    assert math.isclose(tiny_world_entropy(weighted=True), -sum(x * math.log(x) for x in p))
    assert tiny_world_entropy(weighted=True) < math.log(240)  # a skewed world is more predictable
    with pytest.raises(TypeError, match="weighted"):
        tiny_world_entropy(weighted=1)


def test_sentence_log_probs_multiply_the_next_word_probabilities(course):
    sentence = "the dog found the key under the bed ."
    ids = course.encode(sentence)[0].tolist()  # <bos> + 9 words
    by_hand = sum(math.log(next_token_probs(course.model, ids[:t])[ids[t]].item())
                  for t in range(1, len(ids)))
    got = sentence_log_probs(course, [sentence, "the cat ate the apple at the table ."])
    assert got.dtype == torch.float64 and got.shape == (2,)
    assert math.isclose(got[0].item(), by_hand, rel_tol=1e-5)


def test_course_model_cross_entropy_is_at_least_the_world_entropy_and_close(course):
    sentences = all_tiny_world_sentences()
    p = torch.tensor([sentence_probability(s, weighted=True) for s in sentences], dtype=torch.float64)
    log_q = sentence_log_probs(course, sentences)
    cross_entropy = -(p * log_q).sum().item()
    entropy = tiny_world_entropy(weighted=True)
    assert entropy <= cross_entropy < entropy + 9 * 0.05  # Gibbs; and within 0.05 nats per word
    assert log_q.exp().sum() <= 1.0  # the model's probability of the 240 sentences: at most all of it
    sharper = -(p * sentence_log_probs(course, sentences, temperature=0.5)).sum().item()
    assert sharper > cross_entropy  # sharpening a well-calibrated model costs


def test_sentence_log_probs_validates(course):
    with pytest.raises(ValueError, match="same number of words"):
        sentence_log_probs(course, ["the cat ate the apple at the table .", "the cat"])
    with pytest.raises(ValueError, match="temperature"):
        sentence_log_probs(course, ["the cat"], temperature=0)
    with pytest.raises(ValueError, match="sentences"):
        sentence_log_probs(course, "the cat")
