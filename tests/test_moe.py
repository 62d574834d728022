"""utils.moe: the MoE layer against the dense weighted sum, the balancing loss in closed form, sizes.

Oracles: with ``top_k = n_experts`` the layer must equal ``Σᵢ softmax(logits)ᵢ · expertᵢ(x)`` computed
densely; with ``top_k = 1`` the output of the single best expert; the balancing loss is 1 for even
routing and ``n_experts`` for a collapsed router (closed forms), and equals the formula worked by hand;
Mixtral's published size (Jiang et al. 2024) from its configuration.
"""

import pytest
import torch
import torch.nn.functional as F

from utils.moe import (
    MIXTRAL_8X7B,
    MoELayer,
    SparseTransformerShape,
    expert_usage,
    load_balancing_loss,
    moe_parameter_counts,
    top_k_gating,
)


def dense_mixture(layer: MoELayer, x: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, weighted by the softmax over all router logits."""
    tokens = x.reshape(-1, x.shape[-1])
    weights = F.softmax(layer.gate(tokens), dim=-1)  # (N, E)
    outputs = torch.stack([expert(tokens) for expert in layer.experts], dim=1)  # (N, E, C)
    return (weights[..., None] * outputs).sum(dim=1).reshape(x.shape)


def test_all_experts_equals_the_dense_weighted_sum():
    torch.manual_seed(0)
    layer = MoELayer(d_model=6, d_hidden=10, n_experts=4, top_k=4)
    x = torch.randn(3, 5, 6)
    y, info = layer(x)
    torch.testing.assert_close(y, dense_mixture(layer, x))
    torch.testing.assert_close(info["router_probs"], F.softmax(layer.gate(x.reshape(15, 6)), dim=-1))


def test_top_1_is_the_best_expert_alone():
    torch.manual_seed(1)
    layer = MoELayer(d_model=4, d_hidden=8, n_experts=3, top_k=1)
    x = torch.randn(2, 7, 4)
    y, info = layer(x)
    tokens = x.reshape(14, 4)
    best = layer.gate(tokens).argmax(dim=-1)
    expected = torch.stack([layer.experts[int(e)](t) for t, e in zip(tokens, best, strict=True)])
    torch.testing.assert_close(y.reshape(14, 4), expected)
    assert torch.equal(info["expert_index"][:, 0], best)


def test_top_2_mixes_the_two_best_with_renormalised_weights():
    torch.manual_seed(2)
    layer = MoELayer(d_model=4, d_hidden=8, n_experts=5, top_k=2)
    x = torch.randn(1, 6, 4)
    y, info = layer(x)
    tokens = x.reshape(6, 4)
    logits = layer.gate(tokens)
    for n in range(6):
        order = logits[n].argsort(descending=True)[:2]
        w = F.softmax(logits[n, order], dim=0)
        first, second = (layer.experts[int(e)](tokens[n]) for e in order)
        expected = w[0] * first + w[1] * second
        torch.testing.assert_close(y[0, n], expected)
        assert info["expert_index"][n].tolist() == order.tolist()  # largest logit first


def test_gating_weights_sum_to_one_and_follow_the_logits():
    logits = torch.tensor([[0.0, 2.0, 1.0], [5.0, 5.0 - torch.log(torch.tensor(3.0)).item(), -1.0]])
    weights, index = top_k_gating(logits, k=2)
    assert index.tolist() == [[1, 2], [0, 1]]
    torch.testing.assert_close(weights[1], torch.tensor([0.75, 0.25]))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))


def test_balancing_loss_closed_forms():
    # perfectly even routing: f = P = 1/E -> E * E * (1/E)^2 = 1
    E = 4
    probs = torch.full((8, E), 1 / E)
    first = torch.arange(8).remainder(E)[:, None]
    assert load_balancing_loss(probs, first).item() == pytest.approx(1.0)
    # a collapsed router: every token to expert 2 with certainty -> E
    collapsed = F.one_hot(torch.full((8,), 2), E).float()
    assert load_balancing_loss(collapsed, torch.full((8, 1), 2)).item() == pytest.approx(E)
    # worked by hand: E = 2, tokens to experts 0, 0, 1; P = mean of [.9 .1], [.6 .4], [.3 .7] = [.6 .4]
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    by_hand = 2 * (2 / 3 * 0.6 + 1 / 3 * 0.4)
    assert load_balancing_loss(probs, torch.tensor([[0], [0], [1]])).item() == pytest.approx(by_hand)


def test_layer_reports_the_balancing_loss_and_gradients_reach_the_router():
    torch.manual_seed(3)
    layer = MoELayer(d_model=4, d_hidden=8, n_experts=4, top_k=2)
    y, info = layer(torch.randn(2, 16, 4))
    expected = load_balancing_loss(info["router_probs"], info["expert_index"])
    torch.testing.assert_close(info["load_balancing_loss"], expected)
    assert info["load_balancing_loss"].dim() == 0 and info["load_balancing_loss"].item() >= 1.0 - 1e-6
    info["load_balancing_loss"].backward(retain_graph=True)
    assert layer.gate.weight.grad is not None and layer.gate.weight.grad.abs().sum() > 0
    layer.zero_grad()
    y.sum().backward()  # the task loss also reaches the router, through the top-k weights
    assert layer.gate.weight.grad.abs().sum() > 0


def test_an_expert_no_token_chose_gets_no_gradient():
    torch.manual_seed(4)
    layer = MoELayer(d_model=3, d_hidden=4, n_experts=3, top_k=1)
    with torch.no_grad():
        layer.gate.weight.zero_()
        layer.gate.weight[0, 0] = 10.0  # every token with x_0 > 0 goes to expert 0
    x = torch.rand(1, 10, 3) + 0.1
    y, info = layer(x)
    assert info["expert_index"].unique().tolist() == [0]
    y.sum().backward()
    assert layer.experts[1][0].weight.grad is None and layer.experts[2][0].weight.grad is None
    assert layer.experts[0][0].weight.grad.abs().sum() > 0


def test_input_is_not_modified_and_device_follows_the_input():
    layer = MoELayer(d_model=4, d_hidden=8, n_experts=2, top_k=1)
    x = torch.randn(2, 3, 4)
    before = x.clone()
    y, _ = layer(x)
    assert torch.equal(x, before) and y.device == x.device


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="top_k must be <= n_experts"):
        MoELayer(d_model=4, d_hidden=8, n_experts=2, top_k=3)
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        MoELayer(d_model=4, d_hidden=8, n_experts=2, top_k=0)
    with pytest.raises(TypeError, match="n_experts must be an int"):
        MoELayer(d_model=4, d_hidden=8, n_experts=2.0)
    layer = MoELayer(d_model=4, d_hidden=8, n_experts=2)
    with pytest.raises(ValueError, match=r"\(B, T, d_model=4\)"):
        layer(torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"\(B, T, d_model=4\)"):
        layer(torch.randn(1, 3, 5))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(1, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="k must be <= n_experts"):
        top_k_gating(torch.randn(2, 3), k=4)


def test_usage_and_parameter_counts():
    index = torch.tensor([[0, 1], [0, 2], [2, 0], [1, 0]])
    torch.testing.assert_close(expert_usage(index, 3), torch.tensor([0.5, 0.25, 0.25]))
    every_choice = expert_usage(index, 3, first_choice_only=False)  # 0 four times, 1 and 2 twice each
    torch.testing.assert_close(every_choice, torch.tensor([0.5, 0.25, 0.25]))
    layer = MoELayer(d_model=8, d_hidden=16, n_experts=4, top_k=2)
    active, total = moe_parameter_counts(layer)
    per_expert = 8 * 16 + 16 + 16 * 8 + 8
    assert (active, total) == (8 * 4 + 2 * per_expert, 8 * 4 + 4 * per_expert)
    assert total == sum(p.numel() for p in layer.parameters())


def test_mixtral_size_from_its_configuration():
    # Jiang et al. 2024: 46.7B parameters, 12.9B used per token (the abstract rounds to 47B and 13B)
    assert round(MIXTRAL_8X7B.n_params / 1e9, 1) == 46.7
    assert round(MIXTRAL_8X7B.n_active_params / 1e9, 1) == 12.9
    # one expert and top-1 is a dense model: Mistral 7B's 7.24B parameters (Jiang et al. 2023)
    dense = SparseTransformerShape(4096, 32, 14336, 32, 1024, 32000, n_experts=1, top_k=1)
    assert dense.n_params == dense.n_active_params
    assert round(dense.n_params / 1e9, 2) == 7.24
