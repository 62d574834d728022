"""utils.decoding: temperature, top-k / top-p filters, greedy, beam search, sampling, and their widgets.

Oracles: hand-made "models" (fixed bigram tables: the next token depends only on the last one) whose
greedy path and most probable sequence are worked out by hand and by brute-force enumeration of every
sequence; sort-based reference filters written in plain Python; closed forms (softmax limits, entropy of a
uniform distribution); PyTorch's own ``topk`` and ``Categorical``; sampling frequencies against the
filtered softmax (a chi-square bound); and properties (no input modified, same generator, same samples).
"""

import itertools
import math
import tempfile
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from utils.decoding import (
    BeamSearchTrace,
    apply_temperature,
    beam_search,
    beam_search_tree,
    beam_step,
    beam_tree_nodes,
    draw_beam_tree,
    entropy,
    filter_logits,
    greedy_decode,
    kept_set,
    sample,
    sample_batch,
    sequence_log_prob,
    softmax_with_temperature,
    top_k_filter,
    top_p_filter,
)

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "llm-building-blocks-hypothesis")


# --- toy models -----------------------------------------------------------------------------------------

class Bigram:
    """A fixed transition table as a model: logits for the token after each position = table[token]."""

    def __init__(self, probs: torch.Tensor) -> None:
        self.table = torch.log(probs)  # (V, V); log(0) = -inf: an impossible transition

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids]  # (B, T) -> (B, T, V)


class LastOnly(Bigram):
    """Returns only the last position's logits, (B, 1, V), like a model that crops its context."""

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids[:, -1:]]


class NaNPast(Bigram):
    """Garbage (NaN) everywhere except the last position: a decoder must read only the last one."""

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.table[ids].clone()
        out[:, :-1] = float("nan")
        return out


class ModuleBigram(nn.Module):
    """A bigram as an nn.Module with dropout: in train mode its logits are random, in eval mode exact."""

    def __init__(self, probs: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.log(probs))
        self.dropout = nn.Dropout(0.5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        assert not torch.is_grad_enabled(), "decoders must run without gradients"
        return self.dropout(self.table[ids])


def random_table(V: int, seed: int, scale: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(V, V, generator=g), dim=-1)  # (V, V), rows sum to 1


S, A, B, C = 0, 1, 2, 3
# Worked out by hand. From S: A 0.6, B 0.4. After A: A and B tie at 0.35 (the lower id, A, wins), C 0.3.
# After B: C 0.9. So greedy goes S A A (0.6 * 0.35 = 0.21) but the best 2-token continuation is
# S B C (0.4 * 0.9 = 0.36).
HAND = torch.tensor([
    [0.00, 0.60, 0.40, 0.00],  # after S
    [0.00, 0.35, 0.35, 0.30],  # after A
    [0.00, 0.10, 0.00, 0.90],  # after B
    [0.25, 0.25, 0.25, 0.25],  # after C
])
PROMPT = torch.tensor([[S]])


def brute_force(probs: torch.Tensor, prompt_token: int, length: int, eos_id: int | None = None):
    """Every possible continuation (ending at eos_id, or of exactly ``length`` tokens) with its
    log-probability, most probable first."""
    log_table = torch.log_softmax(Bigram(probs).table.double(), dim=-1)  # the model's own (float32) numbers
    results = []
    V = probs.shape[0]
    for n in range(1, length + 1):
        for seq in itertools.product(range(V), repeat=n):
            if eos_id is not None and eos_id in seq[:-1]:
                continue  # nothing follows eos
            if n < length and (eos_id is None or seq[-1] != eos_id):
                continue  # too short and not finished
            score, last = 0.0, prompt_token
            for token in seq:
                score += float(log_table[last, token])
                last = token
            results.append((list(seq), score))
    return sorted(results, key=lambda r: -r[1])


# --- temperature and entropy ----------------------------------------------------------------------------

def test_temperature_one_is_the_identity_and_others_divide():
    x = torch.randn(3, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(apply_temperature(x, 1.0), x)
    assert torch.equal(apply_temperature(x, 1), x)
    torch.testing.assert_close(apply_temperature(x, 0.3), x / 0.3)
    assert apply_temperature(x, 1.0) is not x  # a new tensor


def test_softmax_with_temperature_limits():
    x = torch.tensor([1.0, 3.0, 2.0, -1.0])  # a unique argmax (index 1)
    cold = softmax_with_temperature(x, 1e-3)
    assert torch.equal(cold, torch.tensor([0.0, 1.0, 0.0, 0.0]))  # T -> 0: all mass on the argmax
    hot = softmax_with_temperature(x, 1e6)
    torch.testing.assert_close(hot, torch.full((4,), 0.25), atol=1e-5, rtol=0)  # T -> inf: uniform
    torch.testing.assert_close(softmax_with_temperature(x, 0.7), torch.softmax(x / 0.7, dim=-1))


def test_entropy_against_categorical_and_closed_forms():
    probs = torch.softmax(torch.randn(5, 9, generator=torch.Generator().manual_seed(1)), dim=-1)
    torch.testing.assert_close(entropy(probs), torch.distributions.Categorical(probs=probs).entropy())
    assert entropy(torch.full((8,), 1 / 8)).item() == pytest.approx(math.log(8))
    assert entropy(torch.tensor([0.0, 1.0, 0.0])).item() == 0.0  # 0 log 0 = 0, no nan
    with pytest.raises(ValueError, match="probs"):
        entropy(torch.tensor([-0.1, 1.1]))
    with pytest.raises(TypeError, match="probs"):
        entropy([0.5, 0.5])


def test_entropy_grows_with_temperature():
    x = torch.randn(20, generator=torch.Generator().manual_seed(2))
    temperatures = [0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 5.0, 20.0]
    h = [entropy(softmax_with_temperature(x, t)).item() for t in temperatures]
    assert all(a < b for a, b in zip(h[:-1], h[1:], strict=True))
    assert h[-1] < math.log(20)  # never above the uniform's entropy


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, float("inf"), float("nan")])
def test_temperature_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(torch.zeros(3), bad)


def test_temperature_type_and_logits_type():
    with pytest.raises(TypeError, match="temperature"):
        apply_temperature(torch.zeros(3), "hot")
    with pytest.raises(TypeError, match="temperature"):
        apply_temperature(torch.zeros(3), True)
    with pytest.raises(TypeError, match="logits"):
        apply_temperature([1.0, 2.0], 1.0)
    with pytest.raises(TypeError, match="logits"):
        apply_temperature(torch.tensor([1, 2]), 1.0)  # integer logits


# --- top-k / top-p --------------------------------------------------------------------------------------

def reference_kept(values: list[float], k: int | None = None, p: float | None = None) -> list[bool]:
    """Plain-Python reference: sort by (value descending, index ascending), keep a prefix."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    if k is not None:
        keep = order[:k]
    else:
        m = max(values)
        weights = [math.exp(v - m) for v in values]
        total = sum(weights)
        keep, mass = [], 0.0
        for i in order:
            keep.append(i)
            mass += weights[i] / total
            if mass >= p:
                break
    return [i in keep for i in range(len(values))]


def test_top_k_hand_examples():
    x = torch.tensor([1.0, 3.0, 2.0, 3.0, -5.0])
    inf = float("-inf")
    assert top_k_filter(x, 1).tolist() == [inf, 3.0, inf, inf, inf]  # tie at 3.0: the lower id (1) wins
    assert top_k_filter(x, 2).tolist() == [inf, 3.0, inf, 3.0, inf]
    assert top_k_filter(x, 3).tolist() == [inf, 3.0, 2.0, 3.0, inf]
    assert torch.equal(top_k_filter(x, 5), x) and torch.equal(top_k_filter(x, 50), x)  # k >= V keeps all


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=12), st.integers(1, 15))
def test_top_k_matches_a_sort_based_reference(values, k):
    x = torch.tensor(values, dtype=torch.float64)
    kept = top_k_filter(x, k).isfinite().tolist()
    assert kept == reference_kept(values, k=k)
    assert sum(kept) == min(k, len(values))


def test_top_k_agrees_with_torch_topk_on_distinct_logits_and_rows_are_independent():
    x = torch.randn(4, 30, generator=torch.Generator().manual_seed(3))  # distinct values: no ties
    out = top_k_filter(x, 7)
    expected = torch.full_like(x, float("-inf")).scatter(-1, x.topk(7).indices, x.topk(7).values)
    assert torch.equal(out, expected)


def test_top_p_hand_examples():
    logits = torch.log(torch.tensor([0.1, 0.5, 0.15, 0.25]))  # sorted: 0.5, 0.25, 0.15, 0.1
    keeps = {p: top_p_filter(logits, p).isfinite().tolist() for p in (0.3, 0.45, 0.7, 0.8, 0.95, 1.0)}
    assert keeps[0.3] == [False, True, False, False]  # 0.5 alone reaches 0.3
    assert keeps[0.45] == [False, True, False, False]
    assert keeps[0.7] == [False, True, False, True]  # 0.75
    assert keeps[0.8] == [False, True, True, True]  # 0.9
    assert keeps[0.95] == [True, True, True, True]  # only all four reach 0.95
    assert keeps[1.0] == [True, True, True, True]
    kept = top_p_filter(logits, 0.7)
    assert torch.equal(kept[kept.isfinite()], logits[[1, 3]])  # kept logits are unchanged


def test_top_p_keeps_the_most_probable_token_even_for_tiny_p_and_breaks_ties_by_id():
    x = torch.tensor([0.0, 5.0, 1.0])
    assert top_p_filter(x, 1e-9).isfinite().tolist() == [False, True, False]
    uniform = torch.zeros(4)  # four ties of exactly 0.25
    assert top_p_filter(uniform, 0.5).isfinite().tolist() == [True, True, False, False]
    assert top_p_filter(uniform, 0.6).isfinite().tolist() == [True, True, True, False]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=12), st.floats(0.001, 1.0))
def test_top_p_matches_a_sort_based_reference(values, p):
    x = torch.tensor(values, dtype=torch.float64)
    probs = torch.softmax(x, -1).sort(descending=True).values.cumsum(0)
    assume(bool((probs - p).abs().min() > 1e-9))  # a cumulative sum within rounding of p: either is right
    kept = top_p_filter(x, p).isfinite()
    assert kept.tolist() == reference_kept(values, p=p)
    # smallest: the kept mass reaches p, and without its least probable member it would not
    kept_probs = torch.softmax(x, -1)[kept]
    assert kept_probs.sum() >= p - 1e-12
    assert kept_probs.sum() - kept_probs.min() < p


def test_filters_work_on_batches_and_with_minus_inf_already_present():
    x = torch.log(torch.tensor([[0.7, 0.2, 0.1, 0.0], [0.1, 0.1, 0.1, 0.7]]))  # (2, 4), one -inf
    # row 2: 0.7, then the tied 0.1s by id: 0.8 < 0.85, 0.9 reaches it
    expected = [[True, True, False, False], [True, True, False, True]]
    assert top_p_filter(x, 0.85).isfinite().tolist() == expected
    assert top_k_filter(x, 2).isfinite().tolist() == [[True, True, False, False], [True, False, False, True]]
    composed = filter_logits(x, temperature=1.0, top_k=3, top_p=0.5)
    assert composed.isfinite().tolist() == [[True, False, False, False], [False, False, False, True]]


def test_filters_never_modify_their_input():
    x = torch.randn(3, 10, generator=torch.Generator().manual_seed(4))
    before = x.clone()
    apply_temperature(x, 0.5), top_k_filter(x, 3), top_p_filter(x, 0.5), filter_logits(x, 2.0, 4, 0.9)
    top_k_filter(x, 10), top_p_filter(x, 1.0), kept_set(x[0], 0.5, 3, 0.9)
    assert torch.equal(x, before)
    assert top_k_filter(x, 10) is not x and top_p_filter(x, 1.0) is not x


@pytest.mark.parametrize("k", [0, -3])
def test_top_k_rejects_k_below_one(k):
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_filter(torch.zeros(3), k)


def test_top_k_rejects_non_int_k():
    with pytest.raises(TypeError, match="k must be an int"):
        top_k_filter(torch.zeros(3), 2.0)
    with pytest.raises(TypeError, match="k must be an int"):
        top_k_filter(torch.zeros(3), True)


@pytest.mark.parametrize("p", [0, 0.0, -0.5, 1.0001, 2, float("nan")])
def test_top_p_rejects_p_outside_zero_one(p):
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\]"):
        top_p_filter(torch.zeros(3), p)


def test_filters_reject_empty_or_scalar_logits():
    for bad in (torch.tensor(1.0), torch.zeros(2, 0)):
        with pytest.raises(ValueError, match="logits"):
            top_k_filter(bad, 1)
        with pytest.raises(ValueError, match="logits"):
            top_p_filter(bad, 0.5)


def test_kept_set_sorts_and_marks_what_the_filters_keep():
    logits = torch.log(torch.tensor([0.05, 0.4, 0.1, 0.3, 0.15]))
    ks = kept_set(logits, top_k=3)
    assert ks.order.tolist() == [1, 3, 4, 2, 0]
    torch.testing.assert_close(ks.probs, torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05]))
    assert ks.kept.tolist() == [True, True, True, False, False] and ks.size == 3
    assert ks.mass == pytest.approx(0.85)
    torch.testing.assert_close(ks.filtered, torch.tensor([0.4, 0.3, 0.15, 0, 0]) / 0.85)
    ks = kept_set(logits, top_p=0.75)
    assert ks.size == 3 and ks.mass == pytest.approx(0.85)  # 0.4 + 0.3 = 0.7 < 0.75
    ks = kept_set(logits, temperature=0.5, top_p=0.75)  # sharper: 0.4 and 0.3 now reach 0.75
    assert ks.size == 2
    torch.testing.assert_close(ks.probs, torch.softmax(logits / 0.5, -1)[ks.order])
    with pytest.raises(ValueError, match="logits"):
        kept_set(torch.zeros(2, 3))


# --- greedy ---------------------------------------------------------------------------------------------

def test_greedy_follows_the_hand_computed_path():
    out = greedy_decode(Bigram(HAND), PROMPT, max_new_tokens=2)
    assert out.tolist() == [[S, A, A]]  # A (0.6), then the A/B tie goes to A
    assert greedy_decode(Bigram(HAND), PROMPT, max_new_tokens=0).tolist() == [[S]]
    long = greedy_decode(Bigram(HAND), torch.tensor([[S, C, B]]), max_new_tokens=3)
    assert long.tolist() == [[S, C, B, C, S, A]]  # B -> C (0.9), C -> S (uniform tie: lowest id), S -> A


def test_greedy_stops_at_eos_and_includes_it():
    out = greedy_decode(Bigram(HAND), torch.tensor([[B]]), max_new_tokens=10, eos_id=C)
    assert out.tolist() == [[B, C]]


def test_greedy_reads_only_the_last_position():
    table = random_table(6, seed=5)
    prompt = torch.tensor([[0, 3, 2]])
    expected = greedy_decode(Bigram(table), prompt, 8)
    assert torch.equal(greedy_decode(LastOnly(table), prompt, 8), expected)
    assert torch.equal(greedy_decode(NaNPast(table), prompt, 8), expected)
    # the oracle: argmax of the table, step by step
    last, path = 2, []
    for _ in range(8):
        last = int(table[last].argmax())
        path.append(last)
    assert expected[0, 3:].tolist() == path


def test_decoders_run_a_module_in_eval_mode_and_restore_its_mode():
    table = random_table(5, seed=6)
    module = ModuleBigram(table)
    module.train()
    out = greedy_decode(module, torch.tensor([[0]]), 6)  # dropout off: the exact table's path
    assert torch.equal(out, greedy_decode(Bigram(table), torch.tensor([[0]]), 6))
    assert module.training and module.dropout.training  # restored
    beam_search(module, torch.tensor([[0]]), 3, 2)
    sample(module, torch.tensor([[0]]), 3, generator=torch.Generator().manual_seed(0))
    sequence_log_prob(module, torch.tensor([[0]]), torch.tensor([1, 2]))
    assert module.training
    module.eval()
    module.dropout.train()  # a mixed state is restored exactly too
    greedy_decode(module, torch.tensor([[0]]), 2)
    assert not module.training and module.dropout.training


# --- beam search ----------------------------------------------------------------------------------------

def test_beam_search_finds_the_hand_computed_best_sequence():
    hyps = beam_search(Bigram(HAND), PROMPT, max_new_tokens=2, num_beams=2)
    assert [h[0].tolist() for h in hyps] == [[[S, B, C]], [[S, A, A]]]
    assert math.exp(hyps[0][1]) == pytest.approx(0.36) and math.exp(hyps[1][1]) == pytest.approx(0.21)
    greedy = greedy_decode(Bigram(HAND), PROMPT, 2)
    assert hyps[0][1] > sequence_log_prob(Bigram(HAND), PROMPT, greedy[:, 1:])


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("eos_id", [None, 2])
def test_beam_width_one_is_greedy(seed, eos_id):
    table = random_table(5, seed=seed, scale=1.5)
    prompt = torch.tensor([[seed % 5]])
    (ids, score), = beam_search(Bigram(table), prompt, max_new_tokens=7, num_beams=1, eos_id=eos_id)
    greedy = greedy_decode(Bigram(table), prompt, max_new_tokens=7, eos_id=eos_id)
    assert torch.equal(ids, greedy)
    assert score == pytest.approx(sequence_log_prob(Bigram(table), prompt, greedy[:, 1:]))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("eos_id", [None, 1])
def test_exhaustive_beam_search_equals_brute_force(seed, eos_id):
    V, L = 3, 4
    table = random_table(V, seed=100 + seed)
    hyps = beam_search(Bigram(table), torch.tensor([[0]]), max_new_tokens=L, num_beams=V ** L, eos_id=eos_id)
    expected = brute_force(table, 0, L, eos_id)
    assert len(hyps) == len(expected)  # every finished hypothesis (fewer than num_beams with eos)
    assert hyps[0][0][0, 1:].tolist() == expected[0][0]  # the optimum
    for (_, score), (_, best) in zip(hyps, expected, strict=True):
        assert score == pytest.approx(best, abs=1e-9)
    assert sorted(h[0][0, 1:].tolist() for h in hyps) == sorted(seq for seq, _ in expected)


@pytest.mark.parametrize("seed", range(8))
def test_beam_hypotheses_are_sorted_scored_and_finished(seed):
    table = random_table(6, seed=200 + seed, scale=1.0)
    prompt = torch.tensor([[0, 4]])
    eos = 5
    hyps = beam_search(Bigram(table), prompt, max_new_tokens=5, num_beams=3, eos_id=eos)
    assert 1 <= len(hyps) <= 3
    scores = [s for _, s in hyps]
    assert scores == sorted(scores, reverse=True)
    for ids, score in hyps:
        assert torch.equal(ids[:, :2], prompt)
        generated = ids[0, 2:].tolist()
        assert len(generated) == 5 or generated[-1] == eos  # finished: eos or max_new_tokens
        assert eos not in generated[:-1]
        assert score == pytest.approx(sequence_log_prob(Bigram(table), prompt, ids[:, 2:]))
    (ids, score), = beam_search(Bigram(table), prompt, 0, 3)  # nothing to generate: the prompt, score 0
    assert torch.equal(ids, prompt) and score == 0.0


def test_beam_search_has_no_length_penalty():
    # after S: eos (3) with 0.3, or A (1) with 0.7 and then A forever with 0.5: the short hypothesis wins
    table = torch.tensor([[0.0, 0.7, 0.0, 0.3], [0.0, 0.5, 0.5, 0.0], [0.0, 0.5, 0.5, 0.0],
                          [0.25, 0.25, 0.25, 0.25]])
    hyps = beam_search(Bigram(table), PROMPT, max_new_tokens=4, num_beams=2, eos_id=3)
    assert hyps[0][0].tolist() == [[S, 3]] and math.exp(hyps[0][1]) == pytest.approx(0.3)
    assert math.exp(hyps[1][1]) == pytest.approx(0.7 * 0.5 ** 3)


def test_beam_search_is_a_heuristic_wider_is_not_always_better():
    # found by searching random bigram tables; the scores are checked against brute force
    table = torch.softmax(2 * torch.randn(3, 3, generator=torch.Generator().manual_seed(136)), -1)
    scores = {k: beam_search(Bigram(table), PROMPT, 3, k)[0][1] for k in (1, 2, 27)}
    assert scores[2] < scores[1]  # two beams end worse than greedy
    assert scores[27] == pytest.approx(brute_force(table, 0, 3)[0][1])  # exhaustive: the optimum
    table = torch.softmax(2 * torch.randn(4, 4, generator=torch.Generator().manual_seed(221)), -1)
    assert beam_search(Bigram(table), PROMPT, 4, 3)[0][1] < beam_search(Bigram(table), PROMPT, 4, 2)[0][1]


def test_beam_search_reads_only_the_last_position_and_keeps_the_input():
    table = random_table(5, seed=7)
    prompt = torch.tensor([[1, 2, 3]])
    before = prompt.clone()
    expected = beam_search(Bigram(table), prompt, 4, 3, eos_id=0)
    for model in (LastOnly(table), NaNPast(table)):
        got = beam_search(model, prompt, 4, 3, eos_id=0)
        assert [h[0].tolist() for h in got] == [h[0].tolist() for h in expected]
        assert [h[1] for h in got] == pytest.approx([h[1] for h in expected])
    assert torch.equal(prompt, before)


def test_beam_step_against_torch_topk():
    g = torch.Generator().manual_seed(8)
    for _ in range(20):
        N, V, K = (int(torch.randint(1, 6, (1,), generator=g)) for _ in range(3))
        scores = torch.randn(N, generator=g)
        log_probs = torch.log_softmax(torch.randn(N, V, generator=g), -1)
        beams, tokens, new = beam_step(scores, log_probs, K)
        top = (scores[:, None] + log_probs).reshape(-1).topk(min(K, N * V))
        assert torch.equal(beams * V + tokens, top.indices)
        torch.testing.assert_close(new, top.values)


def test_beam_step_hand_example_and_errors():
    beams, tokens, scores = beam_step(torch.tensor([-0.5, -1.0]),
                                      torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]])), 3)
    assert beams.tolist() == [1, 0, 0] and tokens.tolist() == [0, 0, 1]  # tie: lower token first
    torch.testing.assert_close(scores, torch.tensor([-1.0 + math.log(0.9), -0.5 + math.log(0.5),
                                                     -0.5 + math.log(0.5)]))
    with pytest.raises(ValueError, match="num_beams"):
        beam_step(torch.zeros(1), torch.zeros(1, 3), 0)
    with pytest.raises(ValueError, match="beam_scores"):
        beam_step(torch.zeros(2), torch.zeros(1, 3), 1)


def test_beam_trace_records_every_step():
    trace = beam_search_tree(Bigram(HAND), PROMPT, max_new_tokens=3, num_beams=2, eos_id=C)
    assert isinstance(trace, BeamSearchTrace)
    hyps = beam_search(Bigram(HAND), PROMPT, 3, 2, eos_id=C)
    assert [h[0].tolist() for h in trace.hypotheses] == [h[0].tolist() for h in hyps]
    first = trace.steps[0]
    assert first.beams == [([], 0.0)] and len(first.candidates) == 4 and first.kept == [0, 1]
    assert [c[1] for c in first.candidates[:2]] == [A, B]
    second = trace.steps[1]
    assert [b for b, _ in second.beams] == [[A], [B]]  # the kept extensions live on, best first
    kept = [second.candidates[i] for i in second.kept]
    assert [(b, v) for b, v, _ in kept] == [(1, C), (0, A)]  # S B C (0.36, eos: finished), S A A (0.21)
    assert [b for b, _ in trace.steps[2].beams] == [[A, A]]  # only the unfinished one goes on
    for step in trace.steps:
        scores = [c[2] for c in step.candidates]
        assert scores == sorted(scores, reverse=True)


def test_beam_tree_nodes_and_drawing():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trace = beam_search_tree(Bigram(HAND), PROMPT, max_new_tokens=3, num_beams=2, eos_id=C)
    nodes = beam_tree_nodes(trace, top_per_beam=2)
    assert nodes[0]["parent"] is None and nodes[0]["step"] == 0
    by_id = {n["id"]: n for n in nodes}
    for n in nodes[1:]:
        parent = by_id[n["parent"]]
        assert parent["step"] == n["step"] - 1 and parent["kept"]  # pruned nodes have no children
    assert sum(n["kept"] for n in nodes if n["step"] == 1) == 2
    finished = [n for n in nodes if n["finished"]]
    assert {(n["step"], n["token"]) for n in finished} == {(2, C), (3, A), (3, B)}  # eos at 2; max at 3
    best = max(finished, key=lambda n: n["score"])
    assert best["score"] == pytest.approx(trace.hypotheses[0][1])
    ax = draw_beam_tree(trace, token_label="SABC".__getitem__, top_per_beam=2)
    assert len(ax.texts) == len(nodes)
    assert any("-1.02" in t.get_text() for t in ax.texts)  # log 0.36
    plt.close("all")
    with pytest.raises(ValueError, match="top_per_beam"):
        beam_tree_nodes(trace, 0)


# --- sampling -------------------------------------------------------------------------------------------

def test_same_generator_same_samples():
    table = random_table(8, seed=9, scale=0.5)
    run = lambda seed, **kw: sample(Bigram(table), torch.tensor([[0]]), 20,
                                    generator=torch.Generator().manual_seed(seed), **kw)
    assert torch.equal(run(1), run(1))
    filtered = dict(temperature=0.7, top_k=5, top_p=0.9)
    assert torch.equal(run(1, **filtered), run(1, **filtered))
    assert not torch.equal(run(1), run(2))
    g = torch.Generator().manual_seed(3)
    first = sample(Bigram(table), torch.tensor([[0]]), 20, generator=g)
    second = sample(Bigram(table), torch.tensor([[0]]), 20, generator=g)
    assert not torch.equal(first, second)  # the generator moved on


def test_sample_is_sample_batch_of_one_and_batch_rows_are_plausible():
    table = random_table(8, seed=10, scale=0.5)
    one = sample(Bigram(table), torch.tensor([[0]]), 12, top_k=4, generator=torch.Generator().manual_seed(4))
    batch = sample_batch(Bigram(table), torch.tensor([[0]]), 1, 12, top_k=4,
                         generator=torch.Generator().manual_seed(4))
    assert torch.equal(one, batch)
    many = sample_batch(Bigram(table), torch.tensor([[0]]), 50, 12, top_k=4,
                        generator=torch.Generator().manual_seed(5))
    allowed = top_k_filter(table.log(), 4).isfinite()  # (V, V): the transitions top-k permits
    assert many.shape == (50, 13) and bool(allowed[many[:, :-1], many[:, 1:]].all())


def test_top_k_one_and_tiny_temperature_are_greedy():
    table = random_table(7, seed=11)
    greedy = greedy_decode(Bigram(table), torch.tensor([[3]]), 15)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(sample(Bigram(table), torch.tensor([[3]]), 15, top_k=1, generator=g), greedy)
    assert torch.equal(sample(Bigram(table), torch.tensor([[3]]), 15, temperature=1e-4, generator=g), greedy)
    assert torch.equal(sample(Bigram(table), torch.tensor([[3]]), 15, top_p=1e-6, generator=g), greedy)


@pytest.mark.parametrize("settings_", [dict(), dict(temperature=0.5), dict(temperature=2.0), dict(top_k=3),
                                       dict(top_p=0.7), dict(temperature=1.5, top_k=4, top_p=0.8)])
def test_sampling_frequencies_match_the_filtered_softmax(settings_):
    V, N = 6, 30_000
    probs = torch.tensor([0.35, 0.25, 0.15, 0.12, 0.08, 0.05])
    table = probs.expand(V, V)
    g = torch.Generator().manual_seed(12)
    draws = sample_batch(Bigram(table), torch.tensor([[0]]), N, 1, generator=g, **settings_)[:, 1]
    counts = torch.bincount(draws, minlength=V).double()
    expected = torch.softmax(filter_logits(probs.log(), **settings_), -1).double() * N
    assert counts[expected == 0].sum() == 0  # filtered tokens are never drawn
    support = expected > 0
    chi2 = float(((counts[support] - expected[support]) ** 2 / expected[support]).sum())
    dof = int(support.sum()) - 1
    assert chi2 < dof + 6 * math.sqrt(2 * max(dof, 1)) + 5  # far beyond the 99.9th percentile


def test_sample_stops_at_eos_and_batch_pads_with_it():
    # after 0: token 1 (0.5) or eos 2 (0.5); after 1: back to 0
    table = torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    out = sample(Bigram(table), torch.tensor([[0]]), 50, eos_id=2, generator=torch.Generator().manual_seed(0))
    assert out[0, -1].item() == 2 and 2 not in out[0, :-1].tolist()
    many = sample_batch(Bigram(table), torch.tensor([[0]]), 40, 50, eos_id=2,
                        generator=torch.Generator().manual_seed(1))
    for row in many.tolist():
        first = row.index(2)
        assert all(t == 2 for t in row[first:])  # padded with eos after it
    assert (many[:, -1] == 2).all()  # stopped as soon as every row finished
    assert many.shape[1] < 51


def test_sampling_reads_only_the_last_position_and_keeps_the_input():
    table = random_table(6, seed=13)
    prompt = torch.tensor([[0, 1, 2]])
    before = prompt.clone()
    expected = sample(Bigram(table), prompt, 10, generator=torch.Generator().manual_seed(7))
    for model in (LastOnly(table), NaNPast(table)):
        assert torch.equal(sample(model, prompt, 10, generator=torch.Generator().manual_seed(7)), expected)
    assert torch.equal(prompt, before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cpu_generator_samples_from_a_gpu_model():
    table = random_table(6, seed=14).cuda()
    out = sample(Bigram(table), torch.tensor([[0]], device="cuda"), 10,
                 generator=torch.Generator().manual_seed(0))
    cpu = sample(Bigram(table.cpu()), torch.tensor([[0]]), 10, generator=torch.Generator().manual_seed(0))
    assert out.device.type == "cuda" and torch.equal(out.cpu(), cpu)


# --- sequence log-probability ---------------------------------------------------------------------------

def test_sequence_log_prob_by_hand():
    model = Bigram(HAND)
    assert math.exp(sequence_log_prob(model, PROMPT, torch.tensor([[B, C]]))) == pytest.approx(0.36)
    log_p = sequence_log_prob(model, PROMPT, torch.tensor([A, C, S]))
    assert math.exp(log_p) == pytest.approx(0.6 * 0.3 * 0.25)
    assert sequence_log_prob(model, PROMPT, torch.tensor([], dtype=torch.long)) == 0.0
    assert sequence_log_prob(model, PROMPT, torch.tensor([C])) == float("-inf")  # impossible
    assert sequence_log_prob(LastOnly(HAND), PROMPT, torch.tensor([B, C])) == pytest.approx(math.log(0.36))
    with pytest.raises(ValueError, match="continuation_ids"):
        sequence_log_prob(model, PROMPT, torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="continuation_ids"):
        sequence_log_prob(model, PROMPT, [1, 2])


# --- argument errors ------------------------------------------------------------------------------------

DECODERS = {
    "greedy": lambda m, ids, n=3, **kw: greedy_decode(m, ids, n, **kw),
    "beam": lambda m, ids, n=3, **kw: beam_search(m, ids, n, num_beams=2, **kw),
    "sample": lambda m, ids, n=3, **kw: sample(m, ids, n, **kw),
}


@pytest.mark.parametrize("name", DECODERS)
def test_decoders_reject_bad_prompts_and_lengths(name):
    decode = DECODERS[name]
    model = Bigram(HAND)
    with pytest.raises(ValueError, match="input_ids"):
        decode(model, torch.zeros(1, 0, dtype=torch.long))  # empty prompt
    with pytest.raises(ValueError, match="input_ids"):
        decode(model, torch.zeros(3, dtype=torch.long))  # (T,), not (1, T)
    with pytest.raises(ValueError, match="input_ids"):
        decode(model, torch.zeros(2, 3, dtype=torch.long))  # a batch of two prompts
    with pytest.raises(TypeError, match="input_ids"):
        decode(model, torch.zeros(1, 3))  # float ids
    with pytest.raises(TypeError, match="input_ids"):
        decode(model, [[0, 1]])
    with pytest.raises(ValueError, match="max_new_tokens"):
        decode(model, PROMPT, -1)
    with pytest.raises(TypeError, match="max_new_tokens"):
        decode(model, PROMPT, 2.0)
    with pytest.raises(ValueError, match="eos_id"):
        decode(model, PROMPT, eos_id=-1)
    with pytest.raises(TypeError, match="model"):
        decode("not a model", PROMPT)
    with pytest.raises(ValueError, match="model must return logits"):
        decode(lambda ids: torch.zeros(ids.shape[0], 4), PROMPT)  # (B, V): no time axis


def test_beam_search_rejects_bad_num_beams():
    for bad in (0, -2):
        with pytest.raises(ValueError, match="num_beams"):
            beam_search(Bigram(HAND), PROMPT, 3, bad)
    with pytest.raises(TypeError, match="num_beams"):
        beam_search(Bigram(HAND), PROMPT, 3, 2.5)


def test_sample_rejects_bad_settings():
    model = Bigram(HAND)
    for bad in (0, -0.5, float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            sample(model, PROMPT, 3, temperature=bad)
    with pytest.raises(ValueError, match="top_k"):
        sample(model, PROMPT, 3, top_k=0)
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match="top_p"):
            sample(model, PROMPT, 3, top_p=bad)
    with pytest.raises(TypeError, match="generator"):
        sample(model, PROMPT, 3, generator=0)
    with pytest.raises(ValueError, match="num_samples"):
        sample_batch(model, PROMPT, 0, 3)


def test_decoders_never_modify_their_input():
    table = random_table(5, seed=15)
    prompt = torch.tensor([[0, 1]])
    before = prompt.clone()
    greedy_decode(Bigram(table), prompt, 4)
    beam_search(Bigram(table), prompt, 4, 3)
    sample(Bigram(table), prompt, 4)
    sample_batch(Bigram(table), prompt, 3, 4)
    sequence_log_prob(Bigram(table), prompt, torch.tensor([1, 2]))
    assert torch.equal(prompt, before)
    out = greedy_decode(Bigram(table), prompt, 0)
    assert torch.equal(out, prompt) and out.data_ptr() != prompt.data_ptr()  # a copy, not the input


# --- widgets (utils.widgets, over the compute functions above) ------------------------------------------

def letters(ids: torch.Tensor) -> str:
    """decode() for the HAND model: ids -> "S A A"."""
    return " ".join("SABC"[i] for i in ids.reshape(-1).tolist())


def test_hypotheses_and_samples_html_escape_and_show_probabilities():
    from utils.widgets import hypotheses_html, samples_html

    out = hypotheses_html([("a <b>", math.log(0.25)), ("c", math.log(0.5))], caption="x & y")
    assert "a &lt;b&gt;" in out and "a <b>" not in out
    assert "0.2500" in out and "-1.386" in out and "x &amp; y" in out and out.count("<tr>") == 3
    assert samples_html(["<i>", "b"], caption="c").count("<li") == 2 and "&lt;i&gt;" in samples_html(["<i>"])
    with pytest.raises(TypeError, match="rows"):
        hypotheses_html("abc")
    with pytest.raises(TypeError, match="texts"):
        samples_html("abc")


def test_beam_width_explorer_follows_beam_search():
    from utils.widgets import beam_width_explorer

    box = beam_width_explorer(Bigram(HAND), PROMPT, letters, max_new_tokens=2, max_beams=4)
    slider, out = box.children
    assert (slider.min, slider.max, slider.value) == (1, 4, 1)
    assert slider.style.description_width == "initial"  # the label is shown whole, not cut to "num_be…"
    assert "S A A" in out.value and "ties with greedy" in out.value and "S B C" not in out.value
    slider.value = 2
    assert "S B C" in out.value and "0.3600" in out.value and "beats greedy by +0.539" in out.value
    assert f"{math.log(0.36):.3f}" in out.value
    with pytest.raises(ValueError, match="value"):
        beam_width_explorer(Bigram(HAND), PROMPT, letters, 2, max_beams=2, value=3)


def test_temperature_explorer_resamples_with_its_generator():
    from utils.decoding import entropy, softmax_with_temperature
    from utils.widgets import samples_html, temperature_explorer

    table = random_table(4, seed=16, scale=1.0)
    box = temperature_explorer(Bigram(table), PROMPT, letters, max_new_tokens=6, num_samples=3, seed=5)
    (slider, button), out = box.children[0].children, box.children[1]
    assert slider.style.description_width == "initial"  # the label is shown whole, not cut to "temperat…"
    g = torch.Generator().manual_seed(5)  # the oracle replays the widget's draws
    expected = lambda t: samples_html([letters(r) for r in sample_batch(Bigram(table), PROMPT, 3, 6,
                                                                        temperature=t, generator=g)])
    assert expected(0.8) in out.value and "temperature 0.80" in out.value
    slider.value = 1.5
    assert expected(1.5) in out.value and "temperature 1.50" in out.value
    h = entropy(softmax_with_temperature(torch.log(table[S]), 1.5)).item()
    assert f"entropy {h:.2f} nats" in out.value and f"at most {math.log(4):.2f}" in out.value
    button.click()  # same temperature, new samples
    assert expected(1.5) in out.value
    with pytest.raises(ValueError, match="value"):
        temperature_explorer(Bigram(table), PROMPT, letters, value=5.0)


def test_top_k_top_p_explorer_shows_the_kept_set_and_samples():
    from utils.widgets import kept_set_svg, samples_html, top_k_top_p_explorer

    table = random_table(8, seed=17, scale=1.5)
    box = top_k_top_p_explorer(Bigram(table), PROMPT, lambda ids: str(ids.tolist()), max_new_tokens=4,
                               num_samples=2, seed=3)
    k, p, t = box.children[0].children
    out = box.children[1]
    kept_bars = lambda: out.value.count('fill="#4c72b0"')
    assert (k.value, k.max, p.value, t.value) == (8, 8, 1.0, 1.0)
    assert all(c.style.description_width == "initial" for c in (k, p, t))  # "temperature" is not cut short
    assert kept_bars() == 8 and "kept <b>8</b> of 8 tokens, 100.0 %" in out.value
    k.value = 3
    ks = kept_set(torch.log(table[S]), top_k=3)
    assert kept_bars() == 3 and f"kept <b>3</b> of 8 tokens, {100 * ks.mass:.1f} %" in out.value
    assert kept_set_svg(ks, [str(int(i)) for i in ks.order]) in out.value
    draws = sample_batch(Bigram(table), PROMPT, 2, 4, top_k=3, generator=torch.Generator().manual_seed(3))
    assert samples_html([str(r.tolist()) for r in draws]) in out.value
    k.value, p.value = 8, 0.05  # only the most probable token reaches 5 %
    assert kept_bars() == 1 and "kept <b>1</b> of 8" in out.value
    t.value = 3.0  # flatter: more tokens are needed to reach the same p
    p.value = 0.6
    assert kept_bars() == kept_set(torch.log(table[S]), temperature=3.0, top_p=0.6).size > \
        kept_set(torch.log(table[S]), top_p=0.6).size


def test_kept_set_svg_draws_show_bars_with_tooltips():
    from utils.widgets import kept_set_svg

    ks = kept_set(torch.randn(50, generator=torch.Generator().manual_seed(18)), top_p=0.5)
    svg = kept_set_svg(ks, [f"<w{i}>" for i in range(50)], show=20)
    assert svg.count("<rect") == 20 and svg.count('fill="#4c72b0"') == min(ks.size, 20)
    assert "&lt;w0&gt;" in svg and "<w0>" not in svg
    with pytest.raises(ValueError, match="show"):
        kept_set_svg(ks, show=0)


def test_kept_set_svg_writes_readable_labels_below_the_bars():
    import re

    from utils.widgets import kept_set_svg

    ks = kept_set(torch.randn(50, generator=torch.Generator().manual_seed(19)), top_k=10)
    svg = kept_set_svg(ks, [f"word{i}" for i in range(50)], show=30)
    rects = re.findall(r'<rect x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)"', svg)
    bottoms = {round(float(y) + float(h), 1) for y, h in rects}
    assert len(bottoms) == 1  # every bar stands on the same baseline ...
    label_ys = [float(y) for y in re.findall(r'<text x="[^"]+" y="([^"]+)" dominant-baseline="hanging"', svg)]
    assert len(label_ys) == 30 and min(label_ys) > bottoms.pop()  # ... and every label hangs below it
    assert "font-size:11px" in svg  # not the 9 px that was too small to read
