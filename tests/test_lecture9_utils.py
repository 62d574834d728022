"""Lecture 9 additions to utils.linalg (DeepStack, layer_gradient_norms), utils.embeddings (WEAT),
utils.prompting (the verbalizer) and utils.models (gradient_by_position). Oracles: autograd on the same
graph, hand-computed values, a brute-force permutation test, the definitions written out."""

import itertools

import pytest
import torch
import torch.nn as nn

from utils.embeddings import association, weat
from utils.linalg import STACK_KINDS, DeepStack, layer_gradient_norms
from utils.models import GPTConfig, RNNConfig, TinyGPT, TinyRNN, gradient_by_position
from utils.prompting import last_position_log_probs, verbalizer_scores


@pytest.mark.parametrize("kind", STACK_KINDS)
def test_deep_stack_wiring_and_layer_gradient_norms_match_autograd(kind):
    torch.manual_seed(0)
    stack = DeepStack(kind, depth=4, width=6, in_features=3, out_features=2)
    x = torch.randn(5, 3)
    # the wiring, written out
    h = stack.inp(x)
    for i, layer in enumerate(stack.layers):
        inner = stack.norms[i](h) if kind == "residual + LayerNorm" else h
        h = torch.tanh(layer(inner)) if kind == "plain" else h + torch.tanh(layer(inner))
    torch.testing.assert_close(stack(x), stack.out(h))
    loss = stack(x).pow(2).mean()
    norms = layer_gradient_norms(stack.layers, loss)
    stack(x).pow(2).mean().backward()  # the oracle: autograd's own .grad, from a fresh graph
    torch.testing.assert_close(norms, torch.stack([layer.weight.grad.norm() for layer in stack.layers]))


def test_layer_gradient_norms_leave_grad_alone_and_check_input():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
    layers[0].weight.grad = torch.ones(2, 2)
    layer_gradient_norms(layers, layers[1](layers[0](torch.ones(1, 2))).sum())
    assert torch.equal(layers[0].weight.grad, torch.ones(2, 2))
    with pytest.raises(ValueError, match="scalar"):
        layer_gradient_norms(layers, torch.ones(2, requires_grad=True))
    with pytest.raises(ValueError, match="kind"):
        DeepStack("dense", 2, 2, 2, 2)


def test_plain_stack_gradients_vanish_and_residual_ones_do_not():
    torch.manual_seed(0)
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    ratios = {}
    for kind in STACK_KINDS:
        stack = DeepStack(kind, depth=20, width=16, in_features=8, out_features=1)
        norms = layer_gradient_norms(stack.layers, nn.functional.mse_loss(stack(x), y))
        ratios[kind] = (norms[0] / norms[-1]).item()
    assert ratios["plain"] < 1e-3 and ratios["residual"] > 0.1 and ratios["residual + LayerNorm"] > 0.1


def test_association_and_weat_against_the_definitions():
    g = torch.Generator().manual_seed(0)
    X, Y, A, B = (torch.randn(n, 5, generator=g) for n in (4, 4, 3, 2))
    cos = nn.functional.cosine_similarity
    s = torch.stack([torch.stack([cos(w, a, dim=0) for a in A]).mean() - torch.stack([cos(w, b, dim=0)
                                                                                       for b in B]).mean()
                     for w in torch.cat([X, Y])])
    torch.testing.assert_close(association(torch.cat([X, Y]), A, B), s)
    result = weat(X, Y, A, B)
    s = s.double()
    assert result.statistic == pytest.approx((s[:4].sum() - s[4:].sum()).item())
    assert result.effect_size == pytest.approx(((s[:4].mean() - s[4:].mean()) / s.std(unbiased=True)).item())
    # the permutation test by brute force over every split of the 8 targets into two groups of 4
    stats = [sum(s[list(c)]) - sum(s[[i for i in range(8) if i not in c]])
             for c in itertools.combinations(range(8), 4)]
    assert result.p_value == pytest.approx(sum(t >= result.statistic - 1e-12 for t in stats) / len(stats))
    swapped = weat(Y, X, A, B)
    assert swapped.statistic == pytest.approx(-result.statistic)
    with pytest.raises(ValueError, match="same number"):
        weat(X, Y[:3], A, B)


def test_verbalizer_scores_sum_the_words_probabilities():
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    scores = verbalizer_scores(probs.log(), [[0, 2], [1], [3]])
    torch.testing.assert_close(scores.exp(), torch.tensor([[0.4, 0.2, 0.4], [0.5, 0.25, 0.25]]))
    with pytest.raises(ValueError, match="at least two"):
        verbalizer_scores(probs.log(), [[0]])
    with pytest.raises(ValueError, match=r"label_words\[1\]"):
        verbalizer_scores(probs.log(), [[0], [4]])


def test_last_position_log_probs_equal_one_prompt_at_a_time():
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=7, block_size=6, d_model=8, n_heads=2, n_layers=1))
    prompts = [[1, 2, 3], [4], [5, 6, 1, 2, 3]]
    batched = last_position_log_probs(model, prompts, pad_id=0, batch_size=2)
    for row, p in zip(batched, prompts, strict=True):
        torch.testing.assert_close(row, torch.log_softmax(model(torch.tensor([p]))[0, -1], dim=-1))


def test_gradient_by_position_matches_autograd_through_step():
    torch.manual_seed(0)
    rnn = TinyRNN(RNNConfig(vocab_size=6, d_model=4, hidden_size=5, cell="rnn"))
    ids, targets = torch.tensor([[1, 2, 3, 4], [5, 1, 2, 0]]), torch.tensor([2, 3])
    got = gradient_by_position(rnn, ids, targets)
    # oracle: the embedded tokens as leaves, fed through TinyRNN.step one at a time
    embedded = rnn.embed(ids).detach().requires_grad_(True)  # (B, T, C)
    state, h = rnn.initial_state(2), None
    for t in range(4):
        h, state = rnn.rnn(embedded[:, t:t + 1], state)
    loss = nn.functional.cross_entropy(rnn.head(h[:, 0]), targets, reduction="sum")  # each row's own gradient
    (grad,) = torch.autograd.grad(loss, [embedded])
    torch.testing.assert_close(got, grad.norm(dim=-1).mean(dim=0))
    assert rnn.embed.weight.grad is None
    with pytest.raises(TypeError, match="TinyGPT or a TinyRNN"):
        gradient_by_position(nn.Linear(2, 2), ids, targets)
    with pytest.raises(ValueError, match="targets"):
        gradient_by_position(rnn, ids, torch.tensor([1]))


def test_attention_reaches_back_evenly_where_the_recurrence_fades():
    g = torch.Generator().manual_seed(0)
    ids, targets = torch.randint(16, (16, 30), generator=g), torch.randint(16, (16,), generator=g)
    torch.manual_seed(0)
    rnn = gradient_by_position(TinyRNN(RNNConfig(16, d_model=16, hidden_size=32, cell="rnn")), ids, targets)
    gpt = gradient_by_position(TinyGPT(GPTConfig(16, block_size=30, d_model=32, n_heads=4)), ids, targets)
    assert rnn[0] < 1e-4 * rnn[-1]
    assert gpt[:-1].min() > 0.3 * gpt[:-1].max()
