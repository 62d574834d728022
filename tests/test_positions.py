"""Tests for the position schemes of Lecture 5 (utils.attention, utils.models, utils.data).

Oracles: the closed forms of the sinusoidal table (cosine of a difference, rotation by ωk), complex
multiplication (RoPE as Su et al. 2021 and Meta's LLaMA code write it), the identity of shifting both
positions, ``MultiHeadAttention`` itself (RoPE with angle 0 must equal it), and permutations (a model
without positions is permutation-equivariant, one with positions is not)."""

from __future__ import annotations

import math

import pytest
import torch

from utils.attention import (
    MultiHeadAttention,
    RotaryMultiHeadAttention,
    apply_rope,
    causal_mask,
    rope_angles,
    sinusoidal_dot_product,
    sinusoidal_positional_encoding,
    sinusoidal_shift_matrix,
)
from utils.data import AGENTS, ROLE_TEST_PAIRS, role_sentences, role_vocabulary, swap_roles
from utils.models import POSITION_KINDS, GPTConfig, TinyClassifier


@pytest.fixture
def g() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ----------------------------------------------------------------------------------------------------
# sinusoidal encodings: what a shift does
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("d_model", [2, 8, 64])
def test_sinusoidal_dot_product_depends_only_on_the_offset(d_model):
    pe = sinusoidal_positional_encoding(200, d_model).double()
    for k in (0, 1, 5, 37):
        dots = (pe[: 200 - k] * pe[k:]).sum(dim=-1)  # PE[p] · PE[p + k] for every p
        expected = sinusoidal_dot_product(k, d_model).double()
        torch.testing.assert_close(dots, expected.expand_as(dots), atol=1e-5, rtol=0)
    assert sinusoidal_dot_product(0, d_model).item() == d_model / 2  # sin² + cos² = 1 per pair


def test_sinusoidal_dot_product_closed_form_by_hand():
    # d_model = 4: frequencies 1 and 1/100, so PE[p]·PE[p+k] = cos(k) + cos(k / 100)
    got = sinusoidal_dot_product(torch.tensor([[1, 2], [3, -3]]), 4)
    expected = torch.tensor([[math.cos(1) + math.cos(0.01), math.cos(2) + math.cos(0.02)],
                             [math.cos(3) + math.cos(0.03), math.cos(3) + math.cos(0.03)]])
    assert got.shape == (2, 2)
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="d_model must be even"):
        sinusoidal_dot_product(1, 5)
    with pytest.raises(TypeError, match="offsets"):
        sinusoidal_dot_product(torch.tensor([0.5]), 4)


@pytest.mark.parametrize("offset", [0, 1, 7, -3])
def test_shift_matrix_moves_every_position_by_the_offset(offset):
    d = 16
    pe = sinusoidal_positional_encoding(64, d)
    M = sinusoidal_shift_matrix(offset, d)
    lo, hi = max(0, -offset), 64 - max(0, offset)
    torch.testing.assert_close(pe[lo:hi] @ M.T, pe[lo + offset: hi + offset], atol=2e-5, rtol=0)
    torch.testing.assert_close(M @ M.T, torch.eye(d), atol=1e-6, rtol=0)  # a rotation: orthogonal


def test_shift_matrices_compose_and_reject_bad_arguments():
    torch.testing.assert_close(sinusoidal_shift_matrix(2, 8) @ sinusoidal_shift_matrix(3, 8),
                               sinusoidal_shift_matrix(5, 8), atol=1e-6, rtol=0)
    torch.testing.assert_close(sinusoidal_shift_matrix(0, 6), torch.eye(6))
    with pytest.raises(ValueError, match="even"):
        sinusoidal_shift_matrix(1, 7)
    with pytest.raises(TypeError, match="offset"):
        sinusoidal_shift_matrix(1.0, 8)


# ----------------------------------------------------------------------------------------------------
# RoPE
# ----------------------------------------------------------------------------------------------------

def _rope_by_complex_numbers(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """The LLaMA reference: adjacent pairs as complex numbers, multiplied by exp(i · position · θ)."""
    D = x.shape[-1]
    theta = 1.0 / base ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
    rotation = torch.polar(torch.ones(len(positions), D // 2, dtype=torch.float64),
                           positions.double()[:, None] * theta)  # (T, D/2) complex
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], D // 2, 2).contiguous())
    return torch.view_as_real(z * rotation).flatten(-2).to(x.dtype)


def test_rope_equals_complex_multiplication(g):
    x = torch.randn(2, 3, 9, 8, generator=g)  # (B, H, T, D)
    positions = torch.tensor([0, 1, 2, 5, 8, 13, 100, 1000, 4095])
    torch.testing.assert_close(apply_rope(x, positions), _rope_by_complex_numbers(x, positions))
    torch.testing.assert_close(apply_rope(x), _rope_by_complex_numbers(x, torch.arange(9)))
    torch.testing.assert_close(apply_rope(x, positions, base=500.0),
                               _rope_by_complex_numbers(x, positions, base=500.0))


def test_rope_scores_depend_only_on_the_offset(g):
    q, k = torch.randn(16, generator=g).double(), torch.randn(16, generator=g).double()

    def score(m: int, n: int) -> float:
        rq = apply_rope(q.view(1, 16), torch.tensor([m]))
        rk = apply_rope(k.view(1, 16), torch.tensor([n]))
        return (rq @ rk.T).item()

    for m, n in [(3, 1), (10, 2), (0, 7)]:
        for shift in (1, 50, 999):
            assert math.isclose(score(m, n), score(m + shift, n + shift), rel_tol=1e-9, abs_tol=1e-9)
    assert not math.isclose(score(3, 1), score(4, 1), rel_tol=1e-3)  # but the offset itself matters
    assert math.isclose(score(5, 5), (q @ k).item(), rel_tol=1e-9)  # offset 0: the plain dot product


def test_rope_keeps_lengths_and_inputs_and_validates(g):
    x = torch.randn(4, 6, generator=g)
    before = x.clone()
    out = apply_rope(x)
    assert torch.equal(x, before)
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))  # rotations keep lengths
    torch.testing.assert_close(out[0], x[0])  # position 0: angle 0
    assert rope_angles(torch.tensor([2]), 4).tolist() == [[2.0, 0.02]]  # θ = 1 and 1/100
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.randn(3, 5))
    with pytest.raises(ValueError, match="positions"):
        apply_rope(x, torch.arange(3))
    with pytest.raises(ValueError, match="positions"):
        rope_angles(torch.tensor([0.5]), 4)
    with pytest.raises(ValueError, match="base"):
        rope_angles(torch.arange(3), 4, base=1.0)
    with pytest.raises(TypeError, match="x"):
        apply_rope([1.0, 2.0])


def test_rotary_attention_rotates_queries_and_keys_of_multi_head_attention(g):
    torch.manual_seed(0)
    rotary = RotaryMultiHeadAttention(d_model=16, n_heads=2)
    plain = MultiHeadAttention(d_model=16, n_heads=2)
    plain.load_state_dict(rotary.state_dict())  # the same parameters, by name
    x = torch.randn(2, 5, 16, generator=g)
    out, weights = rotary(x, mask=causal_mask(5))
    # by hand: split heads, rotate q and k by their positions, attend, merge, project
    q, k, v = (plain._split_heads(layer(x)) for layer in (plain.q_proj, plain.k_proj, plain.v_proj))
    scores = apply_rope(q) @ apply_rope(k).transpose(-2, -1) / math.sqrt(8)
    expected_weights = torch.softmax(scores.masked_fill(~causal_mask(5), float("-inf")), dim=-1)
    torch.testing.assert_close(weights, expected_weights)
    expected = plain.out_proj((expected_weights @ v).transpose(1, 2).reshape(2, 5, 16))
    torch.testing.assert_close(out, expected)
    # the fused path agrees, and position 0 alone is plain attention (angle 0)
    fast, _ = rotary(x, mask=causal_mask(5), need_weights=False)
    torch.testing.assert_close(fast, out, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(rotary(x[:, :1])[0], plain(x[:, :1])[0])
    with pytest.raises(ValueError, match="head dimension"):
        RotaryMultiHeadAttention(d_model=6, n_heads=2)


def test_rotary_attention_is_blind_to_where_a_sequence_starts(g):
    # Shifting every position by the same amount changes nothing: only offsets matter.
    torch.manual_seed(0)
    rotary = RotaryMultiHeadAttention(d_model=8, n_heads=2)
    q = k = rotary._split_heads(torch.randn(1, 4, 8, generator=g))
    q0, k0 = rotary._position_queries_and_keys(q, k)
    shifted_q = apply_rope(q, torch.arange(10, 14))
    shifted_k = apply_rope(k, torch.arange(10, 14))
    torch.testing.assert_close(q0 @ k0.transpose(-2, -1), shifted_q @ shifted_k.transpose(-2, -1),
                               atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------
# TinyClassifier and the "who did it" data
# ----------------------------------------------------------------------------------------------------

def _classifier(positions: str) -> TinyClassifier:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=12, block_size=7, d_model=16, n_heads=2, n_layers=2)
    return TinyClassifier(config, n_classes=4, positions=positions).eval()


def test_without_positions_the_classifier_is_permutation_equivariant_and_invariant(g):
    model = _classifier("none")
    ids = torch.randint(12, (3, 7), generator=g)
    perm = torch.randperm(7, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(ids[:, perm]), model.encode(ids)[:, perm],
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model(ids[:, perm]), model(ids), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rope"])
def test_with_positions_the_order_changes_the_output(g, positions):
    model = _classifier(positions)
    # GPT-2's initialisation (std 0.02) makes positions and scores tiny at first: make them count
    if positions == "learned":
        torch.nn.init.normal_(model.pos_emb.weight, std=1.0)
    for block in model.blocks:
        for layer in (block.attn.q_proj, block.attn.k_proj):
            torch.nn.init.normal_(layer.weight, std=1.0)
    ids = torch.randint(12, (3, 7), generator=g)
    with torch.no_grad():
        assert not torch.allclose(model(ids.flip(1)), model(ids), atol=1e-4)
        assert model(ids).shape == (3, 4)
        _, attention = model(ids, return_attention=True)
    assert len(attention) == 2 and attention[0].shape == (3, 2, 7, 7)


def test_classifier_inputs_are_tokens_plus_the_chosen_positions(g):
    ids = torch.randint(12, (2, 5), generator=g)
    models = {kind: _classifier(kind) for kind in POSITION_KINDS}
    with torch.no_grad():
        tokens = {kind: model.tok_emb(ids) for kind, model in models.items()}  # (B, T, C) each
        torch.testing.assert_close(models["none"].embed(ids), tokens["none"])
        torch.testing.assert_close(models["rope"].embed(ids), tokens["rope"])  # RoPE acts inside attention
        learned = models["learned"]
        torch.testing.assert_close(learned.embed(ids), tokens["learned"] + learned.pos_emb.weight[:5])
        table = sinusoidal_positional_encoding(7, 16)[:5]
        expected = tokens["sinusoidal"] * math.sqrt(16) + table  # Vaswani et al. 2017, section 3.4
        torch.testing.assert_close(models["sinusoidal"].embed(ids), expected)


def test_classifier_parts_and_validation():
    assert POSITION_KINDS == ("none", "learned", "sinusoidal", "rope")
    assert _classifier("none").pos_emb is None and _classifier("learned").pos_emb.weight.shape == (7, 16)
    assert isinstance(_classifier("rope").blocks[0].attn, RotaryMultiHeadAttention)
    sinusoidal = _classifier("sinusoidal")
    assert "pos_table" not in sinusoidal.state_dict()  # fixed, so not saved and not trained
    assert sinusoidal.num_parameters() == _classifier("none").num_parameters()
    config = GPTConfig(vocab_size=12, block_size=7, d_model=16, n_heads=2)
    with pytest.raises(ValueError, match="positions"):
        TinyClassifier(config, 3, positions="alibi")
    with pytest.raises(ValueError, match="n_classes"):
        TinyClassifier(config, 0)
    with pytest.raises(TypeError, match="config"):
        TinyClassifier({"vocab_size": 12}, 3)
    with pytest.raises(ValueError, match="block_size"):
        _classifier("none")(torch.zeros(1, 8, dtype=torch.long))


def test_role_sentences_follow_their_template_and_split():
    train, test = role_sentences(300, seed=0), role_sentences(300, seed=0, split="test")
    held_out = {frozenset(pair) for pair in ROLE_TEST_PAIRS}
    for examples, in_test in ((train, False), (test, True)):
        for sentence, agent in examples:
            words = sentence.split()
            assert len(words) == 7 and words[0] == words[4] == "the" and words[2] == agent
            assert words[2] != words[6] and words[2] in AGENTS and words[6] in AGENTS
            assert (frozenset((words[2], words[6])) in held_out) == in_test
            assert set(words) <= set(role_vocabulary())
    assert role_sentences(5, seed=3) == role_sentences(5, seed=3) != role_sentences(5, seed=4)
    with pytest.raises(ValueError, match="split"):
        role_sentences(3, split="validation")


def test_swap_roles_exchanges_the_noun_phrases_and_keeps_the_words():
    sentence = "the old fox watched the happy owl"
    swapped = swap_roles(sentence)
    assert swapped == "the happy owl watched the old fox"
    assert sorted(swapped.split()) == sorted(sentence.split())  # a permutation of the same words
    assert swap_roles(swapped) == sentence
    with pytest.raises(ValueError, match="expected a sentence"):
        swap_roles("the cat chased the mouse across the garden .")
