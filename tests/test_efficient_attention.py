"""Tests for the Lecture 5 attention tools: heads split and merged, per-head statistics, sparse masks,
the online softmax, chunked and sliding-window attention, and the peak-memory counter.

Oracles: ``F.scaled_dot_product_attention`` (with the masks), the index definitions of the masks and
their pair counts in closed form, ``torch.softmax`` for the online softmax, hand-computed byte counts for
``peak_memory_bytes``, hand-computed look-back distances and entropies."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from utils.attention import (
    MultiHeadAttention,
    attention_entropy,
    causal_mask,
    chunked_attention,
    lookback_distance,
    merge_heads,
    online_softmax_step,
    peak_memory_bytes,
    scaled_dot_product_attention,
    sliding_window_attention,
    sliding_window_mask,
    split_heads,
    strided_mask,
)


@pytest.fixture
def g() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ----------------------------------------------------------------------------------------------------
# heads
# ----------------------------------------------------------------------------------------------------

def test_split_heads_gives_each_head_its_columns_and_merge_undoes_it(g):
    x = torch.randn(2, 5, 12, generator=g)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    for h in range(3):
        assert torch.equal(heads[:, h], x[..., 4 * h: 4 * (h + 1)])
    assert torch.equal(merge_heads(heads), x)
    mha = MultiHeadAttention(12, 3)
    assert torch.equal(mha._split_heads(x), heads)  # the module uses the same function
    with pytest.raises(ValueError, match="divisible"):
        split_heads(x, 5)
    with pytest.raises(ValueError, match="n_heads"):
        split_heads(x, 0)
    with pytest.raises(ValueError, match=r"\(B, H, T, D\)"):
        merge_heads(x)


def test_lookback_distance_and_entropy_by_hand():
    w = torch.tensor([[1.0, 0.0, 0.0], [0.25, 0.75, 0.0], [0.5, 0.0, 0.5]])  # (Tq=3, Tk=3), causal
    torch.testing.assert_close(lookback_distance(w), torch.tensor([0.0, 0.25, 1.0]))
    torch.testing.assert_close(attention_entropy(w), torch.tensor(
        [0.0, -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), math.log(2)]))
    # the last two queries of four keys sit at positions 2 and 3
    last = torch.tensor([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(lookback_distance(last), torch.tensor([0.0, 3.0]))
    batch = torch.softmax(torch.randn(2, 4, 5, 5), dim=-1)  # (B, H, T, T)
    assert lookback_distance(batch).shape == attention_entropy(batch).shape == (2, 4, 5)
    with pytest.raises(ValueError, match="weights"):
        lookback_distance(torch.ones(3, dtype=torch.long))


# ----------------------------------------------------------------------------------------------------
# sparse masks
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("T, window", [(1, 1), (6, 1), (7, 3), (5, 9)])
def test_sliding_window_mask_matches_its_definition_and_pair_count(T, window):
    mask = sliding_window_mask(T, window)
    expected = torch.tensor([[0 <= i - j < window for j in range(T)] for i in range(T)])
    assert mask.dtype == torch.bool and torch.equal(mask, expected)
    w = min(window, T)
    assert mask.sum().item() == w * T - w * (w - 1) // 2  # each row: min(i + 1, window) keys
    if window >= T:
        assert torch.equal(mask, causal_mask(T))


@pytest.mark.parametrize("T, stride", [(1, 1), (9, 1), (10, 3), (16, 4), (4, 8)])
def test_strided_mask_matches_its_definition_and_pair_count(T, stride):
    mask = strided_mask(T, stride)
    expected = torch.tensor([[j <= i and (i - j < stride or (i - j) % stride == 0) for j in range(T)]
                             for i in range(T)])
    assert torch.equal(mask, expected)
    s = min(stride, T)
    local = s * T - s * (s - 1) // 2
    strided = sum(i // stride for i in range(T)) if stride <= T else 0  # offsets stride, 2·stride, ...
    assert mask.sum().item() == local + strided
    assert (mask <= causal_mask(T)).all()  # never looks ahead


def test_masks_reject_bad_sizes():
    with pytest.raises(ValueError, match="window must be >= 1"):
        sliding_window_mask(4, 0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        strided_mask(4, 0)
    with pytest.raises(ValueError, match="T must be >= 1"):
        strided_mask(0, 2)
    with pytest.raises(TypeError, match="window"):
        sliding_window_mask(4, 2.0)


# ----------------------------------------------------------------------------------------------------
# the online softmax and chunked attention
# ----------------------------------------------------------------------------------------------------

def test_online_softmax_over_chunks_equals_the_softmax(g):
    scores = 10 * torch.randn(3, 5, 11, generator=g)  # (..., Tq, Tk), large scores on purpose
    values = torch.randn(3, 11, 4, generator=g)
    state = (torch.full((3, 5, 1), -math.inf), torch.zeros(3, 5, 1), torch.zeros(3, 5, 4))
    for start in range(0, 11, 4):  # chunks of 4, 4, 3
        state = online_softmax_step(*state, scores[..., start:start + 4], values[:, start:start + 4])
    running_max, running_sum, running_out = state
    torch.testing.assert_close(running_max, scores.amax(-1, keepdim=True))
    torch.testing.assert_close(running_out / running_sum, torch.softmax(scores, -1) @ values)


def test_online_softmax_step_survives_chunks_that_are_entirely_masked():
    minus_inf = -math.inf
    state = (torch.full((1, 1), minus_inf), torch.zeros(1, 1), torch.zeros(1, 1))
    state = online_softmax_step(*state, torch.tensor([[minus_inf, minus_inf]]), torch.ones(2, 1))
    assert state[0].item() == minus_inf and state[1].item() == 0 and not state[2].isnan().any()
    state = online_softmax_step(*state, torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[1.0], [5.0]]))
    assert math.isclose((state[2] / state[1]).item(), (1 + 3 * 5) / 4, rel_tol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 64])
@pytest.mark.parametrize("mask_kind", ["none", "causal", "window", "padding"])
def test_chunked_attention_equals_pytorch(g, chunk_size, mask_kind):
    q = torch.randn(2, 3, 9, 8, generator=g)  # (B, H, Tq, d)
    k, v = torch.randn(2, 3, 9, 8, generator=g), torch.randn(2, 3, 9, 5, generator=g)
    padding = torch.ones(2, 1, 1, 9, dtype=torch.bool)
    padding[0, ..., 6:] = False  # batch item 0 has 3 padded keys
    mask = {"none": None, "causal": causal_mask(9), "window": sliding_window_mask(9, 3),
            "padding": padding}[mask_kind]
    ours = chunked_attention(q, k, v, chunk_size=chunk_size, mask=mask)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    torch.testing.assert_close(ours, scaled_dot_product_attention(q, k, v, mask=mask)[0])


def test_chunked_attention_handles_cross_attention_shapes_and_keeps_inputs(g):
    q, k, v = torch.randn(4, 3, generator=g), torch.randn(10, 3, generator=g), torch.randn(10, 6, generator=g)
    before = [t.clone() for t in (q, k, v)]
    out = chunked_attention(q, k, v, chunk_size=4)
    assert out.shape == (4, 6)
    torch.testing.assert_close(out, scaled_dot_product_attention(q, k, v)[0])
    assert all(torch.equal(a, b) for a, b in zip((q, k, v), before, strict=True))


def test_chunked_attention_rejects_bad_input(g):
    q = k = v = torch.randn(1, 4, 8, generator=g)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        chunked_attention(q, k, v, chunk_size=0)
    mask = causal_mask(4).clone()
    mask[2] = False  # query 2 may look nowhere
    with pytest.raises(ValueError, match="all False"):
        chunked_attention(q, k, v, chunk_size=2, mask=mask)
    with pytest.raises(ValueError, match="mask must broadcast"):
        chunked_attention(q, k, v, chunk_size=2, mask=causal_mask(5))
    with pytest.raises(ValueError, match="same last dimension"):
        chunked_attention(q, torch.randn(1, 4, 7), v, chunk_size=2)


def test_chunked_attention_keeps_gradients(g):
    q, k, v = (torch.randn(6, 4, generator=g, requires_grad=True) for _ in range(3))
    chunked_attention(q, k, v, chunk_size=2, mask=causal_mask(6)).sum().backward()
    ours = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
    for mine, theirs in zip(ours, (q.grad, k.grad, v.grad), strict=True):
        torch.testing.assert_close(mine, theirs)


@pytest.mark.parametrize("T, window, chunk_size",
                         [(1, 1, 1), (10, 3, 4), (17, 5, 16), (8, 20, 3), (12, 1, 5)])
def test_sliding_window_attention_equals_the_masked_full_attention(g, T, window, chunk_size):
    q, k, v = (torch.randn(2, 2, T, 4, generator=g) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=sliding_window_mask(T, window))
    torch.testing.assert_close(sliding_window_attention(q, k, v, window, chunk_size), expected)


def test_sliding_window_attention_rejects_bad_input(g):
    q = torch.randn(1, 5, 4, generator=g)
    with pytest.raises(ValueError, match="window must be >= 1"):
        sliding_window_attention(q, q, q, window=0)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        sliding_window_attention(q, q, q, window=2, chunk_size=0)
    with pytest.raises(ValueError, match="self-attention"):
        sliding_window_attention(q, torch.randn(1, 6, 4), torch.randn(1, 6, 4), window=2)


# ----------------------------------------------------------------------------------------------------
# peak memory
# ----------------------------------------------------------------------------------------------------

def test_peak_memory_counts_what_is_alive_at_once():
    x = torch.zeros(1000)  # 4,000 bytes, made before: not counted

    def one_after_the_other(x):
        a = x + 1
        del a  # freed before b exists
        return x + 2

    assert peak_memory_bytes(lambda x: x + 1, x) == 4000
    assert peak_memory_bytes(lambda x: (x + 1) * 2, x) == 8000  # the temporary and the result
    assert peak_memory_bytes(one_after_the_other, x) == 4000
    assert peak_memory_bytes(lambda x: x.view(10, 100).t()[0], x) == 0  # views allocate nothing
    assert peak_memory_bytes(lambda x: x.double().add_(1), x) == 8000  # in place: no new storage
    assert peak_memory_bytes(lambda: torch.zeros(10, 10)) == 400
    with pytest.raises(TypeError, match="fn"):
        peak_memory_bytes(3)


def test_peak_memory_of_attention_paths_by_hand(g):
    T, d, c = 256, 16, 32
    q, k, v = (torch.randn(T, d, generator=g) for _ in range(3))
    full = peak_memory_bytes(lambda: scaled_dot_product_attention(q, k, v))
    chunked = peak_memory_bytes(lambda: chunked_attention(q, k, v, chunk_size=c))
    # the readable path holds several (T, T) float32 matrices at once (scores, shifted, exps, weights)
    assert 2 * T * T * 4 <= full <= 5 * T * T * 4
    # chunked holds a few (T, c) blocks and (T, d) running outputs: far less than one (T, T) matrix
    assert chunked <= 4 * T * (c + d) * 4 + 4 * T * 4 < T * T * 4
    # and doubling T doubles it (linear), where the full path's quadruples
    q2, k2, v2 = (torch.randn(2 * T, d, generator=g) for _ in range(3))
    assert peak_memory_bytes(lambda: chunked_attention(q2, k2, v2, chunk_size=c)) == 2 * chunked
    assert peak_memory_bytes(lambda: scaled_dot_product_attention(q2, k2, v2)) > 3.9 * full
