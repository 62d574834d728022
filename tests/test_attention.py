"""Tests for utils.attention. Oracles: torch.softmax, F.scaled_dot_product_attention, nn.MultiheadAttention
with copied weights, torch.tril, the sinusoid closed form at hand-computed entries, hand arithmetic for the
memory formulas (Llama 2 7B), and properties (rows sum to one, inputs unchanged)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.attention import (
    MultiHeadAttention,
    attention_cost,
    attention_scores_bytes,
    causal_mask,
    scaled_dot_product_attention,
    sinusoidal_positional_encoding,
    softmax,
    visible_window,
)

GIB = 2**30


@pytest.fixture
def g() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ----------------------------------------------------------------------------------------------------
# softmax
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_equals_torch_softmax(g, dim):
    x = torch.randn(4, 5, 6, generator=g) * 5
    torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim))


def test_softmax_does_not_overflow_on_large_inputs():
    x = torch.tensor([1000.0, 1000.0, 999.0])
    naive = x.exp() / x.exp().sum()  # what the textbook formula gives: inf / inf
    assert naive.isnan().all()
    out = softmax(x)
    assert torch.isfinite(out).all()
    e = math.exp(-1.0)  # hand-computed: shifting by the max gives exp([0, 0, -1])
    torch.testing.assert_close(out, torch.tensor([1 / (2 + e), 1 / (2 + e), e / (2 + e)]))


def test_softmax_leaves_its_input_unchanged_and_checks_types(g):
    x = torch.randn(3, 4, generator=g)
    before = x.clone()
    softmax(x)
    assert torch.equal(x, before)
    with pytest.raises(TypeError, match="x"):
        softmax([1.0, 2.0])
    with pytest.raises(TypeError, match="x"):
        softmax(torch.tensor([1, 2]))


# ----------------------------------------------------------------------------------------------------
# scaled dot-product attention
# ----------------------------------------------------------------------------------------------------

def test_attention_equals_pytorch_without_mask(g):
    q = torch.randn(2, 3, 5, 8, generator=g)
    k = torch.randn(2, 3, 7, 8, generator=g)
    v = torch.randn(2, 3, 7, 4, generator=g)  # dv differs from d on purpose
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    assert weights.shape == (2, 3, 5, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))


def test_attention_equals_pytorch_with_a_causal_mask(g):
    q, k, v = (torch.randn(2, 4, 6, 8, generator=g) for _ in range(3))
    mask = causal_mask(6)
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert (weights[..., ~mask] == 0).all()  # nothing above the diagonal: no peeking at the future


def test_attention_equals_pytorch_with_a_broadcast_padding_mask(g):
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))
    keep = torch.tensor([[True] * 5, [True, True, True, False, False]])  # (B, Tk): batch 1 has padding
    mask = keep[:, None, None, :]  # (B, 1, 1, Tk) broadcasts over heads and queries
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert (weights[1, :, :, 3:] == 0).all()


def test_attention_weights_match_the_formula_by_hand():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[10.0], [20.0]])
    out, weights = scaled_dot_product_attention(q, k, v)
    a = math.exp(1 / math.sqrt(2))  # score of key 0 is 1/sqrt(2), of key 1 is 0
    expected_w = torch.tensor([[a / (a + 1), 1 / (a + 1)]])
    torch.testing.assert_close(weights, expected_w)
    torch.testing.assert_close(out, expected_w @ v)


def test_a_fully_masked_row_attends_to_nothing(g):
    q, k, v = (torch.randn(1, 3, 4, generator=g) for _ in range(3))
    mask = torch.ones(3, 3, dtype=torch.bool)
    mask[1] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert torch.equal(weights[0, 1], torch.zeros(3)) and torch.equal(out[0, 1], torch.zeros(4))
    # the other rows are untouched by the empty one (oracle: attention over only those rows)
    keep = [0, 2]
    expected, _ = scaled_dot_product_attention(q[:, keep], k, v)
    torch.testing.assert_close(out[:, keep], expected)
    if tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 5):  # PyTorch's convention since 2.5
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_attention_leaves_inputs_unchanged(g):
    q, k, v = (torch.randn(2, 5, 4, generator=g) for _ in range(3))
    mask = causal_mask(5)
    copies = [t.clone() for t in (q, k, v, mask)]
    scaled_dot_product_attention(q, k, v, mask=mask)
    assert all(torch.equal(a, b) for a, b in zip((q, k, v, mask), copies, strict=True))


def test_attention_rejects_mismatched_shapes(g):
    q = torch.randn(2, 5, 8, generator=g)
    with pytest.raises(ValueError, match="q and k"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 7), torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="k and v"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 8), torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="q"):
        scaled_dot_product_attention(torch.randn(8), torch.randn(8), torch.randn(8))
    with pytest.raises(ValueError, match="broadcast"):
        scaled_dot_product_attention(q, torch.randn(3, 5, 8), torch.randn(3, 5, 8))
    with pytest.raises(TypeError, match="k"):
        scaled_dot_product_attention(q, q.tolist(), q)


def test_attention_rejects_bad_masks(g):
    q, k, v = (torch.randn(2, 5, 8, generator=g) for _ in range(3))
    with pytest.raises(ValueError, match="mask"):
        scaled_dot_product_attention(q, k, v, mask=causal_mask(4))  # wrong shape
    with pytest.raises(ValueError, match="mask"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 5, 5, dtype=torch.bool))  # batch 3 vs 2
    with pytest.raises(ValueError, match="mask"):
        scaled_dot_product_attention(q, k, v, mask=causal_mask(5).float())  # additive masks not accepted


# ----------------------------------------------------------------------------------------------------
# masks and positions
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("T", [1, 2, 7])
def test_causal_mask_is_the_lower_triangle(T):
    assert torch.equal(causal_mask(T), torch.tril(torch.ones(T, T)).bool())


def test_causal_mask_rejects_bad_sizes():
    with pytest.raises(ValueError, match="T"):
        causal_mask(0)
    with pytest.raises(TypeError, match="T"):
        causal_mask(2.0)


def test_positional_encoding_matches_the_closed_form_at_hand_picked_entries():
    pe = sinusoidal_positional_encoding(50, 16)
    assert pe.shape == (50, 16)
    assert pe[0, 0] == 0 and pe[0, 1] == 1  # sin 0, cos 0
    assert pe[1, 0].item() == pytest.approx(math.sin(1.0), abs=1e-6)  # i = 0: frequency 1
    assert pe[3, 1].item() == pytest.approx(math.cos(3.0), abs=1e-6)
    assert pe[7, 4].item() == pytest.approx(math.sin(7 / 10000 ** (4 / 16)), abs=1e-6)  # 2i = 4
    assert pe[49, 15].item() == pytest.approx(math.cos(49 / 10000 ** (14 / 16)), abs=1e-6)  # 2i+1 = 15


def test_positional_encoding_handles_odd_width_and_rejects_bad_sizes():
    odd = sinusoidal_positional_encoding(5, 7)
    assert odd.shape == (5, 7)
    assert odd[2, 6].item() == pytest.approx(math.sin(2 / 10000 ** (6 / 7)), abs=1e-6)
    with pytest.raises(ValueError, match="num_positions"):
        sinusoidal_positional_encoding(0, 4)
    with pytest.raises(ValueError, match="d_model"):
        sinusoidal_positional_encoding(4, 0)


# ----------------------------------------------------------------------------------------------------
# multi-head attention
# ----------------------------------------------------------------------------------------------------

def _torch_mha_with_our_weights(ours: MultiHeadAttention) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(ours.d_model, ours.n_heads, bias=True, batch_first=True)
    with torch.no_grad():
        # PyTorch stacks the three input projections into one (3C, C) matrix: rows q, then k, then v
        ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ref


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_equals_torch_multihead_attention(g, causal):
    torch.manual_seed(0)
    ours = MultiHeadAttention(d_model=16, n_heads=4)
    ref = _torch_mha_with_our_weights(ours)
    x = torch.randn(3, 6, 16, generator=g)
    mask = causal_mask(6) if causal else None
    out, weights = ours(x, mask=mask)
    # nn.MultiheadAttention's boolean attn_mask means the opposite: True = may NOT attend
    ref_out, ref_weights = ref(x, x, x, attn_mask=None if mask is None else ~mask,
                               need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(weights, ref_weights)
    assert weights.shape == (3, 4, 6, 6)


def test_cross_attention_uses_context_for_keys_and_values(g):
    torch.manual_seed(1)
    ours = MultiHeadAttention(d_model=8, n_heads=2)
    ref = _torch_mha_with_our_weights(ours)
    x, context = torch.randn(2, 3, 8, generator=g), torch.randn(2, 5, 8, generator=g)
    out, weights = ours(x, context=context)
    ref_out, ref_weights = ref(x, context, context, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(weights, ref_weights)
    assert weights.shape == (2, 2, 3, 5)


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding"])
def test_the_fused_fast_path_equals_the_readable_path_with_gradients(g, mask_kind):
    # need_weights=False goes through F.scaled_dot_product_attention: the same function, other rounding
    torch.manual_seed(2)
    mha = MultiHeadAttention(d_model=16, n_heads=4)
    x = torch.randn(3, 6, 16, generator=g)
    context = torch.randn(3, 5, 16, generator=g) if mask_kind == "padding" else None
    keys = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]).bool()  # (B, Tk): padded keys
    mask = {"none": None, "causal": causal_mask(6), "padding": keys[:, None, None]}  # (B, 1, 1, Tk)
    results = []
    for need_weights in (True, False):
        xi = x.clone().requires_grad_(True)
        mha.zero_grad()
        out, weights = mha(xi, context=context, mask=mask[mask_kind], need_weights=need_weights)
        assert (weights is None) == (not need_weights)
        (out * torch.linspace(-1, 1, 16)).sum().backward()
        results.append((out.detach(), xi.grad, [p.grad.clone() for p in mha.parameters()]))
    (slow_out, slow_dx, slow_dp), (fast_out, fast_dx, fast_dp) = results
    torch.testing.assert_close(fast_out, slow_out, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fast_dx, slow_dx, atol=1e-6, rtol=1e-5)
    for fast, slow in zip(fast_dp, slow_dp, strict=True):
        torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)


def test_the_fast_path_checks_its_mask_and_flag(g):
    mha = MultiHeadAttention(d_model=8, n_heads=2)
    x = torch.randn(1, 3, 8, generator=g)
    with pytest.raises(ValueError, match="mask must broadcast"):
        mha(x, mask=torch.ones(4, 4, dtype=torch.bool), need_weights=False)
    with pytest.raises(ValueError, match="mask must be a boolean"):
        mha(x, mask=torch.ones(3, 3), need_weights=False)
    with pytest.raises(TypeError, match="need_weights must be a bool"):
        mha(x, need_weights=0)


def test_multi_head_attention_has_the_api_submodules_and_validates():
    mha = MultiHeadAttention(12, 3, bias=False)
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        layer = getattr(mha, name)
        assert isinstance(layer, nn.Linear) and layer.weight.shape == (12, 12) and layer.bias is None
    with pytest.raises(ValueError, match="d_model"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="n_heads"):
        MultiHeadAttention(8, 0)
    with pytest.raises(ValueError, match="x"):
        mha(torch.randn(2, 5, 8))  # wrong width
    with pytest.raises(ValueError, match="x"):
        mha(torch.randn(2, 0, 12))  # T = 0
    with pytest.raises(ValueError, match="context"):
        mha(torch.randn(2, 5, 12), context=torch.randn(3, 5, 12))
    with pytest.raises(ValueError, match="mask"):
        mha(torch.randn(2, 5, 12), mask=causal_mask(4))


# ----------------------------------------------------------------------------------------------------
# context window and costs
# ----------------------------------------------------------------------------------------------------

def test_visible_window_keeps_the_last_tokens():
    tokens = ["a", "b", "c", "d"]
    for window in range(1, 7):
        hidden, visible = visible_window(tokens, window)
        assert hidden + visible == tokens  # nothing lost, nothing reordered
        assert len(visible) == min(window, len(tokens))
        assert visible == tokens[len(tokens) - len(visible):]
    hidden, visible = visible_window(torch.arange(5), 2)
    assert hidden.tolist() == [0, 1, 2] and visible.tolist() == [3, 4]
    with pytest.raises(ValueError, match="window"):
        visible_window(tokens, 0)
    with pytest.raises(TypeError, match="tokens"):
        visible_window("abcd", 2)


def test_attention_scores_bytes_by_hand():
    assert attention_scores_bytes(1, 32_768) == 32_768 * 32_768 * 2 == 2 * GIB
    assert attention_scores_bytes(32, 32_768) == 64 * GIB
    assert attention_scores_bytes(2, 10, batch=3, bytes_per_value=4) == 2 * 100 * 3 * 4
    with pytest.raises(ValueError, match="n_heads"):
        attention_scores_bytes(0, 10)


def test_attention_cost_reports_time_and_quadratic_bytes():
    small, large = attention_cost(32, d_head=8, n_heads=2, repeats=2), attention_cost(64, d_head=8, n_heads=2)
    assert small["bytes"] == 2 * 2 * 32 * 32 * 4  # scores + weights, float32
    assert large["bytes"] == 4 * small["bytes"]  # doubling T quadruples the matrices
    assert small["seconds"] > 0
    with pytest.raises(ValueError, match="seq_len"):
        attention_cost(0)
    with pytest.raises(ValueError, match="repeats"):
        attention_cost(8, repeats=0)


def test_attention_cost_can_count_cpu_time_instead_of_the_wall_clock(monkeypatch):
    import itertools

    import utils.attention

    ticks = itertools.count(start=10.0, step=0.5)  # a CPU clock that advances 0.5 s per reading
    threads_seen = []
    monkeypatch.setattr(utils.attention.time, "thread_time",
                        lambda: threads_seen.append(torch.get_num_threads()) or next(ticks))
    threads = torch.get_num_threads()
    assert attention_cost(16, d_head=4, n_heads=1, repeats=3, cpu_time=True)["seconds"] == 0.5
    assert set(threads_seen) == {1} and torch.get_num_threads() == threads  # one thread, then restored
    assert attention_cost(16, d_head=4, n_heads=1, repeats=1)["seconds"] < 0.5  # the wall clock: untouched
    with pytest.raises(ValueError, match="cpu_time"):
        attention_cost(16, device="meta", cpu_time=True)


# --- Lecture 4: FLOPs of a longer window -------------------------------------------------------------------

def test_transformer_flops_equal_pytorchs_flop_counter_on_a_block():
    from torch.utils.flop_counter import FlopCounterMode

    from utils.attention import transformer_flops
    from utils.models import Block, GPTConfig

    for T, d in [(32, 16), (10, 24)]:
        block = Block(GPTConfig(vocab_size=5, block_size=T, d_model=d, n_heads=2, n_layers=1))
        with FlopCounterMode(display=False) as counter:
            block(torch.randn(1, T, d), causal_mask(T), need_weights=True)  # the explicit path: countable
        counts = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
        expected = transformer_flops(T, d)
        assert counts["aten.addmm"] == expected["linear"]  # projections and MLP
        assert counts["aten.bmm"] == expected["quadratic"]  # Q K^T and weights @ V
        assert counter.get_total_flops() == expected["total"]


def test_transformer_flops_scaling_by_hand():
    from utils.attention import transformer_flops

    small, large = transformer_flops(2048, 12288, 96), transformer_flops(4096, 12288, 96)
    assert large["linear"] == 2 * small["linear"] and large["quadratic"] == 4 * small["quadratic"]
    d = 64
    at = transformer_flops(6 * d, d)
    assert at["linear"] == at["quadratic"]  # the crossover at T = 6 d (d_ff = 4 d)
    assert transformer_flops(10, 8, d_ff=8)["linear"] == 2 * 10 * (4 * 64 + 2 * 64)
    with pytest.raises(ValueError, match="seq_len"):
        transformer_flops(0, 8)
