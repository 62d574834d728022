"""utils.data, Lecture 9: reviews ending in their verdict, the planted-bias corpus and its counterfactual,
the few-shot mapping sequences, the Zipfian corpus. Oracles: the generators' own definitions, counted."""

import math
from collections import Counter

import pytest
import torch

from utils.data import (
    GENDER_WORDS,
    NEUTRAL_OCCUPATIONS,
    OCCUPATIONS,
    REVIEW_VERDICT_PROMPT,
    REVIEW_VERDICT_WORDS,
    gender_swap,
    mapping_sequences,
    occupation_sentences,
    occupation_vocabulary,
    reviews,
    reviews_with_verdicts,
    zipf_corpus,
    zipf_probabilities,
)


def test_reviews_with_verdicts_are_the_reviews_plus_their_verdict():
    plain, told = reviews(300, seed=4), reviews_with_verdicts(300, seed=4)
    for r, v in zip(plain, told, strict=True):
        assert v.label == r.label and v.text.startswith(r.text + f" {REVIEW_VERDICT_PROMPT} ")
        word = v.text.split()[-2]
        assert word in REVIEW_VERDICT_WORDS[r.label] and v.text.endswith(" .")
    used = Counter(v.text.split()[-2] for v in told)
    assert set(used) == {w for side in REVIEW_VERDICT_WORDS for w in side}  # every verdict word is used


def test_occupation_sentences_follow_the_planted_rates():
    sentences = occupation_sentences(20000, seed=3, bias=0.9)
    she = {occ: [] for side in OCCUPATIONS for occ in side} | {occ: [] for occ in NEUTRAL_OCCUPATIONS}
    for s in sentences:
        words = s.split()
        assert len(words) == 9 and words[:1] == ["the"] and words[2:4] == ["said", "that"]
        pronoun, possessive = words[4], words[6]
        side = 0 if pronoun == "he" else 1
        assert pronoun == GENDER_WORDS[side][0] and possessive == GENDER_WORDS[side][1]  # they agree
        if words[1] in GENDER_WORDS[0][2:] + GENDER_WORDS[1][2:]:
            assert words[1] in GENDER_WORDS[side]  # a gendered noun always agrees
        else:
            she[words[1]].append(side)
    for occ in OCCUPATIONS[0]:
        assert abs(sum(she[occ]) / len(she[occ]) - 0.1) < 0.04
    for occ in OCCUPATIONS[1]:
        assert abs(sum(she[occ]) / len(she[occ]) - 0.9) < 0.04
    for occ in NEUTRAL_OCCUPATIONS:
        assert abs(sum(she[occ]) / len(she[occ]) - 0.5) < 0.06
    assert {w for s in sentences for w in s.split()} <= set(occupation_vocabulary())


def test_balanced_corpus_and_bad_arguments():
    balanced = occupation_sentences(8000, seed=5, bias=0.5, noun_share=0.0)
    nurse = [s.split()[4] for s in balanced if s.split()[1] == "nurse"]
    assert abs(nurse.count("she") / len(nurse) - 0.5) < 0.08
    with pytest.raises(ValueError, match="bias"):
        occupation_sentences(3, bias=1.5)
    with pytest.raises(ValueError, match="noun_share"):
        occupation_sentences(3, noun_share=-0.1)


def test_gender_swap_is_an_involution_that_changes_only_gendered_words():
    for s in occupation_sentences(200, seed=6):
        swapped = gender_swap(s)
        assert gender_swap(swapped) == s
        changed = [(a, b) for a, b in zip(s.split(), swapped.split(), strict=True) if a != b]
        assert changed and all(a in sum(GENDER_WORDS, ()) and b in sum(GENDER_WORDS, ()) for a, b in changed)
    with pytest.raises(TypeError, match="sentence"):
        gender_swap(["he"])


def test_mapping_sequences_targets_are_the_row_mapping():
    g = torch.Generator().manual_seed(0)
    inputs, targets = mapping_sequences(500, k=6, n_symbols=5, n_labels=3, generator=g)
    assert inputs.shape == targets.shape == (500, 13)
    assert (inputs[:, 0::2] < 5).all() and (inputs[:, 1::2] >= 5).all() and (inputs[:, 1::2] < 8).all()
    assert (targets[:, 1::2] == -100).all()
    torch.testing.assert_close(targets[:, 0:-1:2], inputs[:, 1::2])  # each example's label is its target
    for row_in, row_t in zip(inputs.tolist(), targets.tolist(), strict=True):
        seen = {}
        for x, y in zip(row_in[0::2], row_t[0::2], strict=True):
            assert seen.setdefault(x, y) == y  # one mapping per row: a symbol always has the same label
    # the mappings differ between rows: the first symbol's label is not always the same
    assert len({(r[0], r[1]) for r in inputs.tolist()}) > 5
    zero_shot, _ = mapping_sequences(3, k=0, generator=g)
    assert zero_shot.shape == (3, 1)
    with pytest.raises(ValueError, match="k must be >= 0"):
        mapping_sequences(3, k=-1)
    with pytest.raises(ValueError, match="n_labels"):
        mapping_sequences(3, n_labels=1)


def test_zipf_corpus_follows_its_exact_distribution():
    V = 1600
    ids = zipf_corpus(200_000, vocab_size=V, seed=1)
    p = zipf_probabilities(V)
    assert math.isclose(p.sum().item(), 1.0) and bool((p[:-1] >= p[1:]).all())  # ranked by frequency
    counts = torch.bincount(ids, minlength=V).double()
    # grouped by rank band, the empirical frequencies are within 5 % of the exact ones
    for lo, hi in ((0, 16), (16, 160), (160, 1600)):
        assert abs(counts[lo:hi].sum() / len(ids) - p[lo:hi].sum()) < 0.05 * p[lo:hi].sum()
    # within a sentence every word has the same topic (id % 16)
    sentences = ids.view(-1, 20) % 16
    assert (sentences == sentences[:, :1]).all()
    assert torch.equal(ids, zipf_corpus(200_000, vocab_size=V, seed=1))
    with pytest.raises(ValueError, match="multiple of n_topics"):
        zipf_corpus(10, vocab_size=1000, n_topics=16)
    with pytest.raises(ValueError, match="exponent"):
        zipf_corpus(10, exponent=0)
