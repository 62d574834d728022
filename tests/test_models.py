"""Tests for utils.models. Oracles: shapes from the config, causality as a property (changing a future token
leaves earlier logits unchanged), the blocks recomputed by hand from their submodules, hand-counted
parameters, and every ValueError path of the config and the forward pass."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.attention import causal_mask, scaled_dot_product_attention
from utils.models import GPTConfig, TinyGPT


def small_config(**changes) -> GPTConfig:
    sizes = dict(vocab_size=11, block_size=8, d_model=16, n_heads=4, n_layers=2)
    return GPTConfig(**{**sizes, **changes})


@pytest.fixture
def model() -> TinyGPT:
    torch.manual_seed(0)
    return TinyGPT(small_config()).eval()


def test_forward_shapes_and_attention_per_layer(model):
    idx = torch.randint(0, 11, (3, 5))
    logits = model(idx)
    assert logits.shape == (3, 5, 11)
    logits_again, attention = model(idx, return_attention=True)
    torch.testing.assert_close(logits, logits_again)
    assert len(attention) == 2 and all(w.shape == (3, 4, 5, 5) for w in attention)
    for w in attention:  # causal rows that sum to one
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 5))
        assert (w[..., ~causal_mask(5)] == 0).all()


def test_changing_a_future_token_leaves_earlier_logits_unchanged(model):
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 11, (2, 8), generator=g)
    for t in range(8):
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % 11
        before, after = model(idx), model(changed)
        torch.testing.assert_close(before[:, :t], after[:, :t], rtol=0, atol=0)  # the past cannot see t
        assert not torch.allclose(before[:, t:], after[:, t:])  # position t itself does see it


def test_forward_equals_the_blocks_recomputed_by_hand(model):
    idx = torch.tensor([[1, 4, 2, 7]])
    T = idx.shape[1]
    x = model.tok_emb(idx) + model.pos_emb(torch.arange(T))
    for block in model.blocks:
        attn = block.attn
        h = block.ln1(x)
        q, k, v = (p(h).view(1, T, 4, 4).transpose(1, 2) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
        heads = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # PyTorch's own attention
        x = x + attn.out_proj(heads.transpose(1, 2).reshape(1, T, 16))
        x = x + block.mlp(block.ln2(x))
    torch.testing.assert_close(model(idx), model.lm_head(model.ln_f(x)))


def test_the_model_uses_the_library_attention_path(model):
    # the first layer's weights equal our reference attention on the same projections
    idx = torch.tensor([[3, 3, 5]])
    _, attention = model(idx, return_attention=True)
    h = model.blocks[0].ln1(model.tok_emb(idx) + model.pos_emb(torch.arange(3)))
    attn = model.blocks[0].attn
    q, k, v = (p(h).view(1, 3, 4, 4).transpose(1, 2) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
    _, expected = scaled_dot_product_attention(q, k, v, mask=causal_mask(3))
    torch.testing.assert_close(attention[0], expected)


def test_training_path_and_heatmap_path_give_the_same_logits_and_gradients(model):
    # without return_attention the blocks use the fused attention; the function is the same
    idx = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(2))
    fast = model(idx)
    slow, attention = model(idx, return_attention=True)
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-5)
    assert len(attention) == model.config.n_layers
    grads = []
    for want_weights in (False, True):
        model.zero_grad()
        out = model(idx, return_attention=want_weights)
        (out[0] if want_weights else out).logsumexp(-1).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_num_parameters_by_hand():
    V, T, C, L = 11, 8, 16, 2
    per_block = (
        2 * 2 * C  # two LayerNorms (weight + bias)
        + 4 * (C * C + C)  # q, k, v, out projections
        + (C * 4 * C + 4 * C) + (4 * C * C + C)  # the MLP
    )
    expected = V * C + T * C + L * per_block + 2 * C + C * V  # embeddings, blocks, ln_f, lm_head (no bias)
    model = TinyGPT(small_config())
    assert model.num_parameters() == expected == sum(p.numel() for p in model.parameters())
    no_bias = TinyGPT(small_config(bias=False))
    assert no_bias.num_parameters() == expected - L * (2 * C + 4 * C + 4 * C + C) - C


def test_structure_matches_the_interface():
    model = TinyGPT(small_config(n_layers=3))
    assert isinstance(model.blocks, nn.ModuleList) and len(model.blocks) == 3
    block = model.blocks[0]
    assert isinstance(block.mlp[0], nn.Linear) and block.mlp[0].out_features == 4 * 16
    assert isinstance(block.mlp[1], nn.GELU)
    assert model.pos_emb.num_embeddings == 8 and model.lm_head.out_features == 11


def test_dropout_is_active_only_in_train_mode():
    torch.manual_seed(0)
    model = TinyGPT(small_config(dropout=0.5))
    idx = torch.randint(0, 11, (2, 6))
    model.eval()
    torch.testing.assert_close(model(idx), model(idx))
    model.train()
    assert not torch.allclose(model(idx), model(idx))


@pytest.mark.parametrize(
    "changes, name",
    [
        (dict(block_size=0), "block_size"),
        (dict(block_size=-3), "block_size"),
        (dict(vocab_size=0), "vocab_size"),
        (dict(d_model=18), "d_model"),  # 18 % 4 != 0
        (dict(n_layers=0), "n_layers"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropout=-0.1), "dropout"),
    ],
)
def test_config_rejects_bad_values(changes, name):
    with pytest.raises(ValueError, match=name):
        small_config(**changes)


def test_config_rejects_wrong_types():
    with pytest.raises(TypeError, match="block_size"):
        small_config(block_size=8.0)
    with pytest.raises(TypeError, match="config"):
        TinyGPT({"vocab_size": 3})


def test_forward_rejects_bad_inputs(model):
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))  # longer than the context window
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(4, dtype=torch.long))  # not (B, T)
    with pytest.raises(ValueError, match="idx"):
        model(torch.full((1, 3), 11))  # id outside the vocabulary
    with pytest.raises(TypeError, match="idx"):
        model(torch.zeros(1, 3))  # float ids


def test_model_follows_its_inputs_device_and_does_not_modify_them(model):
    idx = torch.randint(0, 11, (2, 4))
    before = idx.clone()
    assert model(idx).device == idx.device
    assert torch.equal(idx, before)


def test_next_token_probs_reads_only_the_last_window_tokens(model):
    from utils.models import next_token_probs

    ids = [1, 2, 3, 4, 5, 6]
    probs = next_token_probs(model, ids, window=3)
    assert probs.shape == (11,) and probs.sum().item() == pytest.approx(1.0)
    # oracle: the softmax of the model's last logits on the 3 visible tokens
    torch.testing.assert_close(probs, torch.softmax(model(torch.tensor([[4, 5, 6]]))[0, -1], -1))
    # property: tokens outside the window cannot matter
    torch.testing.assert_close(next_token_probs(model, [9, 9, 9, 4, 5, 6], window=3), probs, rtol=0, atol=0)
    assert not torch.allclose(next_token_probs(model, ids, window=4), probs)
    # default window = block_size (8): a longer input is cropped to its last 8 tokens
    long = list(range(10))
    torch.testing.assert_close(next_token_probs(model, long), next_token_probs(model, long[2:], window=8))
    model.train()
    next_token_probs(model, ids)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="window"):
        next_token_probs(model, ids, window=0)
    with pytest.raises(ValueError, match="ids"):
        next_token_probs(model, [])


# --- Lecture 6: the gradient of the token embedding table ---------------------------------------------

def test_token_embedding_gradient_equals_backward_and_the_chain_rule(model):
    from utils.linalg import embedding_gradient
    from utils.models import token_embedding_gradient
    from utils.training import lm_loss

    ids = torch.tensor([[1, 4, 4, 7, 2], [3, 4, 9, 9, 10]])  # 2 and 10 occur only as targets
    model.train()
    grad, upstream = token_embedding_gradient(model, ids)
    assert model.training and all(p.grad is None for p in model.parameters())  # mode kept, .grad untouched
    assert grad.shape == (11, 16) and upstream.shape == (2, 4, 16)
    model.eval()
    lm_loss(model(ids[:, :-1]), ids[:, 1:]).backward()  # the oracle: an ordinary backward pass
    torch.testing.assert_close(grad, model.tok_emb.weight.grad)
    by_hand = embedding_gradient(ids[:, :-1], upstream, 11)  # the last step of the chain rule, by hand
    torch.testing.assert_close(by_hand, grad)
    touched = grad.abs().sum(dim=1) > 0
    assert touched.nonzero().flatten().tolist() == [1, 3, 4, 7, 9]  # exactly the input tokens
    model.zero_grad(set_to_none=True)


def test_token_embedding_gradient_rejects_bad_input(model):
    from utils.models import token_embedding_gradient

    with pytest.raises(TypeError, match="model must be a TinyGPT"):
        token_embedding_gradient(nn.Linear(2, 2), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="T >= 2"):
        token_embedding_gradient(model, torch.zeros(1, 1, dtype=torch.long))
    model.tok_emb.weight.requires_grad_(False)
    try:
        with pytest.raises(ValueError, match="frozen"):
            token_embedding_gradient(model, torch.zeros(1, 3, dtype=torch.long))
    finally:
        model.tok_emb.weight.requires_grad_(True)


# --- Lecture 4: TinyRNN and transformers without positions -----------------------------------------------

from utils.models import RNNConfig, TinyEncoder, TinyRNN, without_positions  # noqa: E402


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_tiny_rnn_forward_equals_its_steps_one_by_one(cell):
    torch.manual_seed(0)
    model = TinyRNN(RNNConfig(vocab_size=7, d_model=5, hidden_size=6, n_layers=2, cell=cell)).eval()
    idx = torch.randint(0, 7, (3, 9))
    logits, hidden = model(idx, return_hidden=True)
    assert logits.shape == (3, 9, 7) and hidden.shape == (3, 9, 6)
    state = model.initial_state(3)
    for t in range(9):  # the T dependent steps, written out
        step_logits, state = model.step(idx[:, t], state)
        torch.testing.assert_close(step_logits, logits[:, t], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, model.head(hidden))


def test_tiny_rnn_is_causal_and_its_hidden_states_carry_gradients():
    torch.manual_seed(0)
    model = TinyRNN(RNNConfig(vocab_size=7)).eval()
    idx = torch.randint(0, 7, (2, 8))
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 7
    before, after = model(idx), model(changed)
    torch.testing.assert_close(before[:, :5], after[:, :5])  # the past does not see the future
    assert not torch.allclose(before[:, 5:], after[:, 5:])  # ... and a change reaches every later step
    state, states = model.initial_state(2), []
    for t in range(8):  # the step loop keeps every state in the graph: gradients flow back through time
        logits, state = model.step(idx[:, t], state)
        state.retain_grad()
        states.append(state)
    logits.sum().backward()
    assert all(s.grad.abs().sum() > 0 for s in states[:-1])  # the last output depends on every earlier state
    assert model(torch.randint(0, 7, (1, 500))).shape == (1, 500, 7)  # no context window


def test_tiny_rnn_parameter_count_by_hand_and_bad_arguments():
    model = TinyRNN(RNNConfig(vocab_size=10, d_model=4, hidden_size=3))
    # embedding 10*4, GRU 3 gates: W_ih (9, 4), W_hh (9, 3), two biases (9,); head 3*10 + 10
    assert model.num_parameters() == 40 + 9 * 4 + 9 * 3 + 2 * 9 + 30 + 10
    with pytest.raises(ValueError, match="cell"):
        RNNConfig(vocab_size=5, cell="transformer")
    with pytest.raises(ValueError, match="idx"):
        model(torch.tensor([[10]]))
    with pytest.raises(ValueError, match="token_ids"):
        model.step(torch.tensor([[1]]), None)
    with pytest.raises(TypeError, match="config"):
        TinyRNN(GPTConfig(vocab_size=5, block_size=4))


def test_without_positions_makes_an_encoder_permutation_equivariant():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=9, block_size=6, d_model=16, n_heads=2, n_layers=2)
    encoder = TinyEncoder(config).eval()
    blind = without_positions(encoder)
    x = torch.randint(0, 9, (4, 6))
    order = torch.randperm(6)
    torch.testing.assert_close(blind(x)[:, order], blind(x[:, order]), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(encoder(x)[:, order], encoder(x[:, order]), atol=1e-3)  # positions: not
    assert encoder.pos_emb.weight.abs().sum() > 0  # the original is left as it was
    assert not blind.pos_emb.weight.requires_grad and blind.pos_emb.weight.abs().sum() == 0
    with pytest.raises(TypeError, match="model"):
        without_positions(nn.Linear(2, 2))
