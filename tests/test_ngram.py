"""Tests for utils.ngram. Oracles: probabilities worked out by hand (Laplace and Kneser–Ney on a two-sentence
corpus), a brute-force Kneser–Ney written straight from Chen & Goodman's (1998) recursion that rescans the
n-grams for every query, and properties: every distribution sums to one over the vocabulary, unknown words
are <unk>, an unseen n-gram's longer extension is unseen too, inputs are never modified."""

from __future__ import annotations

import copy
import math
import random

import pytest

from utils.data import tiny_world_sentences
from utils.ngram import BOS, EOS, UNK, NGramLM, continuation_counts, ngrams, padded, unseen_rate

CORPUS = [["a", "b"], ["b", "b"]]  # padded: <s> a b </s>, <s> b b </s>


def random_corpus(seed: int, n_sentences: int = 30, vocabulary: int = 6) -> list[list[str]]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocabulary)]
    return [[rng.choice(words) for _ in range(rng.randint(1, 7))] for _ in range(n_sentences)]


# ----------------------------------------------------------------------------------------------------
# worked by hand
# ----------------------------------------------------------------------------------------------------

def test_laplace_by_hand():
    lm = NGramLM(2, smoothing="laplace", alpha=1.0).fit(CORPUS)
    assert lm.vocabulary == ["a", "b", EOS, UNK]
    assert lm.prob("b", ("a",)) == pytest.approx((1 + 1) / (1 + 4))
    assert lm.prob("a", (BOS,)) == pytest.approx((1 + 1) / (2 + 4))
    assert lm.prob("a", ("never-seen",)) == pytest.approx(1 / 4)  # an unknown context: uniform
    half = NGramLM(2, smoothing="laplace", alpha=0.5).fit(CORPUS)
    assert half.prob(EOS, ("b",)) == pytest.approx((2 + 0.5) / (3 + 0.5 * 4))


def test_kneser_ney_bigram_by_hand():
    lm = NGramLM(2, discount=0.5).fit(CORPUS)
    # continuation counts: a after {<s>}, b after {a, <s>, b}, </s> after {b}: 5 in all, 3 words
    unigram = {w: max(c - 0.5, 0) / 5 + 0.5 * 3 / 5 / 4 for w, c in {"a": 1, "b": 3, EOS: 1, UNK: 0}.items()}
    assert unigram == pytest.approx({"a": 0.175, "b": 0.575, EOS: 0.175, UNK: 0.075})
    assert lm.prob("b", ("a",)) == pytest.approx(0.5 + 0.5 * 0.575)  # c(a b) = 1 of 1, one word after a
    assert lm.prob(EOS, ("b",)) == pytest.approx(1.5 / 3 + 0.5 * 2 / 3 * 0.175)  # c(b </s>) = 2 of 3
    assert lm.prob("a", ("b",)) == pytest.approx(0.5 * 2 / 3 * 0.175)  # never after b: the lower order
    assert lm.prob("a", ("zebra",)) == pytest.approx(0.175)  # unseen context: the unigram level
    assert lm.prob(UNK, ("a",)) == pytest.approx(0.5 * 0.075)


def test_unigram_perplexity_by_hand():
    lm = NGramLM(1, smoothing="laplace").fit([["a"]])  # a: 1, </s>: 1; V = {a, </s>, <unk>}
    assert lm.prob("a", ()) == pytest.approx(2 / 5)
    assert lm.perplexity([["a"]]) == pytest.approx(2.5)  # exp(-(log .4 + log .4) / 2)
    expected = math.exp(-(math.log(0.2) + 2 * math.log(0.4)) / 3)  # zebra is <unk>: (0 + 1) / 5
    assert lm.perplexity([["zebra", "a"]]) == pytest.approx(expected)


def test_continuation_counts_by_hand():
    counts = continuation_counts([["san", "francisco"]] * 5 + [["a", "cat"], ["the", "cat"]])
    assert counts["francisco"] == 1 and counts["cat"] == 2 and counts[EOS] == 2 and counts["san"] == 1


# ----------------------------------------------------------------------------------------------------
# against a brute-force recursion
# ----------------------------------------------------------------------------------------------------

def brute_force_kneser_ney(sentences, n, D, word, context):
    """Chen & Goodman (1998), interpolated KN, computed from scratch by scanning all n-grams."""
    vocabulary = sorted({w for s in sentences for w in s}) + [EOS, UNK]
    known = set(vocabulary)
    word = word if word in known else UNK
    context = tuple(w if w == BOS or w in known else UNK for w in context)
    all_grams = [g for s in sentences for g in ngrams(s, n)]
    distinct = set(all_grams)

    def count(k, h, w):  # raw counts at the top order, continuation counts below
        if k == n:
            return sum(1 for g in all_grams if g[:-1] == h and g[-1] == w)
        return len({g[-(k + 1)] for g in distinct if g[-k:-1] == h and g[-1] == w})

    def p(k):
        if k == 0:
            return 1 / len(vocabulary)
        h = context[len(context) - (k - 1):] if k > 1 else ()
        counts = {v: count(k, h, v) for v in vocabulary}
        total = sum(counts.values())
        if total == 0:
            return p(k - 1)
        types = sum(c > 0 for c in counts.values())
        return max(counts[word] - D, 0) / total + D * types / total * p(k - 1)

    return p(n)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_kneser_ney_equals_the_brute_force_recursion(n):
    corpus = random_corpus(seed=n, n_sentences=12, vocabulary=4)
    lm = NGramLM(n, discount=0.8).fit(corpus)
    rng = random.Random(0)
    contexts = [tuple(rng.choice(lm.vocabulary[:-2] + [BOS, "zebra"]) for _ in range(n - 1))
                for _ in range(6)] + [(BOS,) * (n - 1)]
    for context in contexts:
        for word in lm.vocabulary + ["zebra"]:
            expected = brute_force_kneser_ney(corpus, n, 0.8, word, context)
            assert lm.prob(word, context) == pytest.approx(expected)


# ----------------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("smoothing", ["laplace", "kneser-ney"])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_every_context_sums_to_one(smoothing, n):
    corpus = random_corpus(seed=10 + n)
    lm = NGramLM(n, smoothing=smoothing, discount=0.6, alpha=0.3).fit(corpus)
    seen = {g[:-1] for s in corpus for g in ngrams(s, n)}  # every context of the training data
    rng = random.Random(n)
    unseen = {tuple(rng.choice(lm.vocabulary + [BOS, "zebra"]) for _ in range(n - 1)) for _ in range(40)}
    for context in seen | unseen:
        total = sum(lm.prob(w, context) for w in lm.vocabulary)
        assert total == pytest.approx(1.0, abs=1e-12), context
        assert all(p > 0 for p in lm.distribution(context).values())


def test_unknown_words_are_unk_and_longer_contexts_use_their_end():
    lm = NGramLM(3).fit(random_corpus(seed=3))
    assert lm.prob("zebra", (BOS, "w1")) == lm.prob(UNK, (BOS, "w1"))
    assert lm.prob("w2", ("w0", "w5", "w1", "w3")) == lm.prob("w2", ("w1", "w3"))
    assert lm.prob("w2", ("w1", "giraffe")) == lm.prob("w2", ("w1", UNK))


def test_perplexity_is_the_mean_log_probability_of_every_predicted_position():
    corpus, test = random_corpus(seed=5), random_corpus(seed=6, n_sentences=5)
    lm = NGramLM(2).fit(corpus)
    log_probs = [math.log(lm.prob(w, padded(s, 2)[i - 1:i])) for s in test
                 for i, w in enumerate(padded(s, 2)) if i >= 1]
    assert len(log_probs) == sum(len(s) + 1 for s in test)  # each word and </s>, never <s>
    assert lm.perplexity(test) == pytest.approx(math.exp(-sum(log_probs) / len(log_probs)))
    assert lm.perplexity(test) == pytest.approx(
        math.exp(-sum(lm.sentence_log_prob(s) for s in test) / len(log_probs)))


def test_unseen_rate_never_falls_as_n_grows():
    sentences = [s.split() for s in tiny_world_sentences(600, seed=0)]
    train, test = sentences[:500], sentences[500:]
    rates = [unseen_rate(train, test, n) for n in range(1, 6)]
    assert rates == sorted(rates) and rates[0] == 0.0 and rates[-1] > rates[1]


def test_fit_does_not_modify_its_input():
    corpus = random_corpus(seed=7)
    before = copy.deepcopy(corpus)
    NGramLM(3).fit(corpus)
    NGramLM(2, smoothing="laplace").fit(corpus).perplexity(corpus)
    assert corpus == before


# ----------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------

def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match="n must be >= 1"):
        NGramLM(0)
    with pytest.raises(TypeError, match="n must be an int"):
        NGramLM(2.0)
    with pytest.raises(TypeError, match="n must be an int"):
        NGramLM(True)
    with pytest.raises(ValueError, match="smoothing must be one of"):
        NGramLM(2, smoothing="good-turing")
    with pytest.raises(ValueError, match="discount"):
        NGramLM(2, discount=0.0)
    with pytest.raises(ValueError, match="discount"):
        NGramLM(2, discount=1.5)
    with pytest.raises(ValueError, match="alpha"):
        NGramLM(2, smoothing="laplace", alpha=0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        unseen_rate([["a"]], [["a"]], 0)


def test_bad_data_and_unfitted_models():
    lm = NGramLM(2)
    with pytest.raises(ValueError, match="call fit"):
        lm.prob("a", (BOS,))
    with pytest.raises(TypeError, match="list of words"):
        lm.fit(["the cat sat"])
    with pytest.raises(TypeError, match="non-empty list"):
        lm.fit("the cat sat")
    with pytest.raises(TypeError, match="non-empty list"):
        lm.fit([])
    with pytest.raises(ValueError, match="must not contain"):
        lm.fit([[BOS, "a"]])
    lm.fit(CORPUS)
    with pytest.raises(ValueError, match="at least n - 1"):
        lm.prob("a", ())
    with pytest.raises(TypeError, match="context"):
        lm.prob("a", "b")
    with pytest.raises(TypeError, match="word"):
        lm.prob(3, ("a",))
