"""Lecture 10's deployment tools: int8 weights (utils.lora), exposure (utils.privacy), hidden states and
saliency (utils.interpretability). Oracles: rounding bounds, brute-force enumeration of every candidate, a
hand-ranked list, the model's own forward pass, autograd through a hand-written copy of its forward."""

import math

import pytest
import torch

from utils.interpretability import hidden_states, token_saliency
from utils.lora import dequantize_int8, int8_copy, quantize_int8
from utils.models import GPTConfig, TinyGPT
from utils.privacy import candidate_log_probs, exposure


def model(seed=0):
    torch.manual_seed(seed)
    return TinyGPT(GPTConfig(vocab_size=9, block_size=8, d_model=16, n_heads=2, n_layers=2)).eval()


def test_int8_round_trip_is_within_half_a_step():
    w = torch.randn(7, 33, generator=torch.Generator().manual_seed(0))
    codes, scale = quantize_int8(w)
    assert codes.dtype == torch.int8 and codes.abs().max(dim=1).values.tolist() == [127] * 7
    assert ((dequantize_int8(codes, scale) - w).abs() <= scale[:, None] / 2 + 1e-7).all()
    with pytest.raises(ValueError, match="2-D"):
        quantize_int8(torch.randn(3))


def test_int8_copy_changes_only_linear_weights_and_not_the_original():
    m = model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    q = int8_copy(m)
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
    for name, value in q.state_dict().items():
        if name.endswith("weight") and value.dim() == 2 and "emb" not in name:
            assert not torch.equal(value, before[name])
        else:
            assert torch.equal(value, before[name])


def test_exposure_by_hand():
    scores = torch.tensor([-2.0, -0.5, -1.0, -3.0])  # ranks 3, 1, 2, 4
    assert [exposure(scores, i) for i in range(4)] == pytest.approx([2 - math.log2(r) for r in (3, 1, 2, 4)])
    assert exposure(torch.zeros(8), 5) == 3.0  # ties count in the canary's favour
    with pytest.raises(ValueError, match="true_index"):
        exposure(scores, 4)


def test_candidate_log_probs_equal_brute_force_enumeration():
    m, prefix, digits = model(1), torch.tensor([[1, 2]]), [3, 5, 7]
    got = candidate_log_probs(m, prefix, digits, n_digits=3)  # 27 candidates
    expected = []
    for i in range(27):
        d = [digits[i // 9], digits[i // 3 % 3], digits[i % 3]]
        ids = torch.tensor([[1, 2, *d]])
        with torch.no_grad():
            log_p = torch.log_softmax(m(ids[:, :-1]).double(), -1)[0]
        expected.append(sum(log_p[1 + j, d[j]].item() for j in range(3)))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), atol=1e-5, rtol=0)


def test_hidden_states_are_the_residual_stream():
    m, ids = model(2), torch.tensor([[1, 4, 2, 6]])
    states = hidden_states(m, ids)
    assert len(states) == 3
    torch.testing.assert_close(m.lm_head(m.ln_f(states[-1])), m(ids), atol=1e-6, rtol=0)
    torch.testing.assert_close(states[0], m.tok_emb(ids) + m.pos_emb(torch.arange(4)))


def test_saliency_is_the_gradient_norm_and_causal():
    m, ids = model(3), torch.tensor([[1, 4, 2, 6, 3, 3]])
    saliency = token_saliency(m, ids, position=3, target=5, other=2)
    assert all(p.grad is None for p in m.parameters())  # the model's gradients are left alone
    x = (m.tok_emb(ids) + m.pos_emb(torch.arange(6))).detach().requires_grad_(True)  # by hand
    h = x
    for block in m.blocks:
        h = block(h, torch.ones(6, 6, dtype=torch.bool).tril())[0]
    logits = m.lm_head(m.ln_f(h))
    (logits[0, 3, 5] - logits[0, 3, 2]).backward()
    torch.testing.assert_close(saliency, x.grad.norm(dim=-1), atol=1e-6, rtol=1e-5)
    assert (saliency[0, 4:] == 0).all() and (saliency[0, :4] > 0).all()
