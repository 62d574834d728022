"""Tests for utils.continual. Oracles: closed-form Fisher information of a logistic and a Gaussian model,
a naive per-example / per-class backward loop, hand-computed penalties, the analytic gradient of the
penalty, plain ``train`` on a copy, and properties (no in-place change, zero at the anchor)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.continual import (
    continual_finetune,
    diagonal_fisher,
    ewc_penalty,
    parameter_snapshot,
    rehearsal_batches,
)
from utils.models import GPTConfig, TinyGPT
from utils.training import batch_sampler, train


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Logistic(nn.Module):
    """p(y = 1 | x) = σ(w x) with ONE parameter w, written as 2-class logits (0, w x)."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (N,) -> logits (N, 2)
        return torch.stack([torch.zeros_like(x), self.w * x], dim=-1)


class GaussianMean(nn.Module):
    """y ~ N(μ, σ²) with ONE parameter μ; forward returns μ for every example."""

    def __init__(self, mu: float) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(mu))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mu.expand(len(x))


def _gaussian_nll(sigma: float):
    return lambda mu, y: ((y - mu) ** 2).sum() / (2 * sigma**2)  # − log N(y; μ, σ²) up to a constant


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def _data(n: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    return torch.randn(n, 4, generator=g), torch.randint(3, (n,), generator=g)


def _naive_fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor, labels: str) -> dict[str, torch.Tensor]:
    """The definition, spelled out: one backward (.backward(), not autograd.grad) per example and class."""
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(x)):
        classes = [int(y[i])] if labels == "given" else range(model(x[i : i + 1]).shape[-1])
        for c in classes:
            model.zero_grad()
            log_p = F.log_softmax(model(x[i : i + 1]), dim=-1)[0]
            weight = 1.0 if labels == "given" else log_p[c].exp().item()
            log_p[c].backward()
            for n, p in model.named_parameters():
                total[n] += weight * p.grad**2
    model.zero_grad()
    return {n: t / len(x) for n, t in total.items()}


# ----------------------------------------------------------------------------------------------------
# diagonal_fisher: closed forms
# ----------------------------------------------------------------------------------------------------

def test_fisher_of_logistic_model_matches_closed_forms():
    g = _gen(1)
    x = torch.randn(40, generator=g)
    y = torch.randint(2, (40,), generator=g)
    w = 0.7
    model = Logistic(w)
    s = torch.sigmoid(w * x)
    # model Fisher: E_y~p[(y − σ)²] x² = σ(1 − σ) x²; empirical: (y − σ)² x² at the given labels
    expected_model = (s * (1 - s) * x**2).mean()
    expected_empirical = ((y - s) ** 2 * x**2).mean()
    got_model = diagonal_fisher(model, (x, y), labels="model")["w"]
    got_empirical = diagonal_fisher(model, (x, y), F.cross_entropy)["w"]
    torch.testing.assert_close(got_model, expected_model)
    torch.testing.assert_close(got_empirical, expected_empirical)
    assert not torch.allclose(got_model, got_empirical)  # the two variants are different numbers


def test_empirical_fisher_of_gaussian_mean_matches_closed_form_and_converges_to_one_over_variance():
    mu, sigma = 0.5, 2.0
    y = mu + sigma * torch.randn(20_000, generator=_gen(2))
    x = torch.zeros(len(y))  # the model ignores its input
    fisher = diagonal_fisher(GaussianMean(mu), (x, y), _gaussian_nll(sigma))["mu"]
    # ∂/∂μ log N(y; μ, σ²) = (y − μ)/σ², so the empirical Fisher is mean((y − μ)²)/σ⁴ ...
    torch.testing.assert_close(fisher, ((y - mu) ** 2).mean() / sigma**4)
    # ... and with labels drawn from the model itself it estimates the true Fisher 1/σ² (std ≈ 1 %)
    assert abs(fisher.item() - 1 / sigma**2) < 0.05 / sigma**2


def test_fisher_matches_a_naive_backward_loop_for_both_label_choices():
    model = _mlp()
    x, y = _data()
    for labels in ("given", "model"):
        got = diagonal_fisher(model, (x, y), F.cross_entropy, labels=labels)
        expected = _naive_fisher(model, x, y, labels)
        assert set(got) == set(expected)
        for name in got:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-8)


def test_fisher_works_on_a_transformer_language_model():
    torch.manual_seed(0)
    lm = TinyGPT(GPTConfig(vocab_size=7, block_size=6, d_model=8, n_heads=2, n_layers=1))
    ids = torch.randint(7, (5, 4), generator=_gen(3))
    nxt = torch.randint(7, (5,), generator=_gen(4))
    last = lambda logits, target: F.cross_entropy(logits[:, -1], target)  # noqa: E731 (the next token)
    fisher = diagonal_fisher(lm, (ids, nxt), last)
    expected = {n: torch.zeros_like(p) for n, p in lm.named_parameters()}
    for i in range(5):
        lm.zero_grad()
        last(lm(ids[i : i + 1]), nxt[i : i + 1]).backward()
        for n, p in lm.named_parameters():
            expected[n] += p.grad**2 / 5
    for name in expected:
        torch.testing.assert_close(fisher[name], expected[name], rtol=1e-5, atol=1e-10)


def test_fisher_is_an_average_over_examples_however_they_are_batched():
    model = _mlp()
    x, y = _data(10)
    whole = diagonal_fisher(model, [(x, y)], F.cross_entropy)
    split = diagonal_fisher(model, [(x[:3], y[:3]), (x[3:], y[3:])], F.cross_entropy)
    for name in whole:
        torch.testing.assert_close(whole[name], split[name])


def test_fisher_changes_nothing_and_skips_frozen_parameters():
    model = _mlp()
    model[0].weight.requires_grad_(False)
    model.train()
    before = copy.deepcopy(model.state_dict())
    x, y = _data()
    x_before, y_before = x.clone(), y.clone()
    fisher = diagonal_fisher(model, (x, y), F.cross_entropy)
    assert set(fisher) == {"0.bias", "2.weight", "2.bias"}
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])
    assert torch.equal(x, x_before) and torch.equal(y, y_before)
    assert all((f >= 0).all() for f in fisher.values())


def test_fisher_of_a_parameter_the_output_does_not_use_is_zero():
    class WithSpare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(2, 3)
            self.spare = nn.Parameter(torch.ones(4))

        def forward(self, x):
            return self.used(x)

    x, y = torch.randn(5, 2, generator=_gen()), torch.tensor([0, 1, 2, 0, 1])
    for labels in ("given", "model"):
        fisher = diagonal_fisher(WithSpare(), (x, y), F.cross_entropy, labels=labels)
        assert torch.equal(fisher["spare"], torch.zeros(4))
        assert fisher["used.weight"].sum() > 0


def test_fisher_rejects_bad_arguments():
    model = _mlp()
    x, y = _data()
    with pytest.raises(TypeError, match="model"):
        diagonal_fisher("model", (x, y), F.cross_entropy)
    with pytest.raises(ValueError, match="labels"):
        diagonal_fisher(model, (x, y), F.cross_entropy, labels="sampled")
    with pytest.raises(TypeError, match="loss_fn"):
        diagonal_fisher(model, (x, y))
    with pytest.raises(ValueError, match="no example"):
        diagonal_fisher(model, (x[:0], y[:0]), F.cross_entropy)
    with pytest.raises(ValueError, match="same number of rows"):
        diagonal_fisher(model, (x, y[:3]), F.cross_entropy)
    with pytest.raises(TypeError, match="pairs"):
        diagonal_fisher(model, [x, y, x], F.cross_entropy)
    with pytest.raises(ValueError, match="one number"):
        diagonal_fisher(model, (x, y), lambda out, t: F.cross_entropy(out, t, reduction="none").repeat(2))
    with pytest.raises(ValueError, match=r"\(1, V\)"):
        diagonal_fisher(GaussianMean(0.0), (x, y), labels="model")
    with pytest.raises(ValueError, match="trainable"):
        diagonal_fisher(_mlp().requires_grad_(False), (x, y), F.cross_entropy)


# ----------------------------------------------------------------------------------------------------
# ewc_penalty
# ----------------------------------------------------------------------------------------------------

def _layer() -> nn.Linear:
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        layer.bias.copy_(torch.tensor([0.5, -0.5]))
    return layer


def test_penalty_matches_a_hand_computation():
    layer = _layer()
    anchor = {"weight": torch.tensor([[1.0, 0.0], [3.0, 1.0]]), "bias": torch.tensor([0.0, 0.0])}
    fisher = {"weight": torch.tensor([[9.0, 0.5], [7.0, 2.0]]), "bias": torch.tensor([4.0, 0.0])}
    # differences: weight [[0, 2], [0, 3]], bias [0.5, -0.5]
    # Σ F d² = 0.5·4 + 2·9 + 4·0.25 + 0·0.25 = 2 + 18 + 1 = 21;  λ/2 · 21 with λ = 3  ->  31.5
    assert ewc_penalty(layer, fisher, anchor, lam=3.0).item() == pytest.approx(31.5)
    assert ewc_penalty(layer, fisher, anchor, lam=0).item() == 0.0


def test_penalty_is_zero_at_the_anchor_and_counts_only_named_parameters():
    model = _mlp()
    fisher = {n: torch.rand(p.shape, generator=_gen(5)) for n, p in model.named_parameters()}
    assert ewc_penalty(model, fisher, parameter_snapshot(model), lam=10.0).item() == 0.0
    only_bias = {"2.bias": torch.ones(3)}
    anchor = {"2.bias": model[2].bias.detach() + 1.0}
    assert ewc_penalty(model, only_bias, anchor, lam=2.0).item() == pytest.approx(3.0)  # 2/2 · 3 · 1²


def test_penalty_gradient_is_lam_times_fisher_times_displacement():
    model = _mlp()
    g = _gen(6)
    anchor = {n: p.detach() + torch.randn(p.shape, generator=g) for n, p in model.named_parameters()}
    fisher = {n: torch.rand(p.shape, generator=g) for n, p in model.named_parameters()}
    lam = 2.5
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(ewc_penalty(model, fisher, anchor, lam), list(params.values()))
    for (name, p), grad in zip(params.items(), grads, strict=True):
        torch.testing.assert_close(grad, lam * fisher[name] * (p.detach() - anchor[name]))


def test_penalty_modifies_nothing():
    model = _mlp()
    g = _gen(7)
    anchor = {n: torch.randn(p.shape, generator=g) for n, p in model.named_parameters()}
    fisher = {n: torch.rand(p.shape, generator=g) for n, p in model.named_parameters()}
    copies = copy.deepcopy((model.state_dict(), anchor, fisher))
    ewc_penalty(model, fisher, anchor, lam=1.0).backward()
    for now, then in zip((model.state_dict(), anchor, fisher), copies, strict=True):
        assert all(torch.equal(now[k], then[k]) for k in then)


def test_penalty_rejects_bad_arguments():
    layer = _layer()
    fisher = {"weight": torch.ones(2, 2)}
    anchor = {"weight": torch.zeros(2, 2)}
    with pytest.raises(ValueError, match="lam"):
        ewc_penalty(layer, fisher, anchor, lam=-1.0)
    with pytest.raises(ValueError, match="lam"):
        ewc_penalty(layer, fisher, anchor, lam=math.nan)
    with pytest.raises(TypeError, match="lam"):
        ewc_penalty(layer, fisher, anchor, lam=True)
    with pytest.raises(ValueError, match="same parameters"):
        ewc_penalty(layer, fisher, {"bias": torch.zeros(2)}, lam=1.0)
    with pytest.raises(ValueError, match="does not have"):
        ewc_penalty(layer, {"nope": torch.ones(1)}, {"nope": torch.ones(1)}, lam=1.0)
    with pytest.raises(ValueError, match="shape"):
        ewc_penalty(layer, {"weight": torch.ones(3)}, anchor, lam=1.0)
    with pytest.raises(ValueError, match="empty"):
        ewc_penalty(layer, {}, {}, lam=1.0)
    with pytest.raises(TypeError, match="dicts"):
        ewc_penalty(layer, [torch.ones(2, 2)], anchor, lam=1.0)


# ----------------------------------------------------------------------------------------------------
# parameter_snapshot and rehearsal_batches
# ----------------------------------------------------------------------------------------------------

def test_snapshot_is_a_detached_copy_of_the_trainable_parameters():
    model = _mlp()
    model[2].bias.requires_grad_(False)
    snapshot = parameter_snapshot(model)
    assert set(snapshot) == {"0.weight", "0.bias", "2.weight"}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert torch.equal(snapshot["0.weight"] + 1.0, model[0].weight.detach())


def test_rehearsal_appends_buffer_rows_and_keeps_the_new_batch_first():
    new_x, new_y = torch.zeros(4, 3), torch.full((4,), 7)
    buffer_x = torch.arange(30.0).view(10, 3)
    buffer_y = torch.arange(10)
    before = buffer_x.clone(), buffer_y.clone()
    fn = rehearsal_batches(lambda: (new_x, new_y), buffer_x, buffer_y, n_replay=5, generator=_gen(8))
    x, y = fn()
    assert x.shape == (9, 3) and y.shape == (9,)
    assert torch.equal(x[:4], new_x) and torch.equal(y[:4], new_y)
    rows = y[4:]
    assert torch.equal(x[4:], buffer_x[rows])  # inputs and targets of the SAME buffer rows
    # the rows are the ones torch.randint draws with the same generator
    assert torch.equal(rows, torch.randint(10, (5,), generator=_gen(8)))
    assert torch.equal(buffer_x, before[0]) and torch.equal(buffer_y, before[1])


def test_rehearsal_with_no_replay_returns_the_new_batch_unchanged():
    new = torch.ones(2, 3), torch.ones(2, dtype=torch.long)
    x, y = rehearsal_batches(lambda: new, torch.zeros(5, 3), torch.zeros(5, dtype=torch.long), 0)()
    assert x is new[0] and y is new[1]


def test_rehearsal_rejects_bad_arguments():
    new = lambda: (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))  # noqa: E731
    bx, by = torch.zeros(5, 3), torch.zeros(5, dtype=torch.long)
    with pytest.raises(TypeError, match="new_batch_fn"):
        rehearsal_batches("batches", bx, by, 1)
    with pytest.raises(ValueError, match="same number of rows"):
        rehearsal_batches(new, bx, by[:2], 1)
    with pytest.raises(ValueError, match="same number of rows"):
        rehearsal_batches(new, bx[:0], by[:0], 1)
    with pytest.raises(ValueError, match="n_replay"):
        rehearsal_batches(new, bx, by, -1)
    with pytest.raises(TypeError, match="n_replay"):
        rehearsal_batches(new, bx, by, 1.5)
    with pytest.raises(ValueError, match="must match"):
        rehearsal_batches(new, torch.zeros(5, 4), by, 1)()


# ----------------------------------------------------------------------------------------------------
# continual_finetune
# ----------------------------------------------------------------------------------------------------

def test_continual_finetune_without_ewc_is_plain_training_of_a_copy():
    model = _mlp()
    before = copy.deepcopy(model.state_dict())
    x, y = _data(32)
    tuned, history = continual_finetune(model, batch_sampler(x, y, 8, generator=_gen(9)), 20, 1e-2)
    reference = copy.deepcopy(model)
    expected = train(reference, batch_sampler(x, y, 8, generator=_gen(9)), 20, 1e-2,
                     loss_fn=F.cross_entropy, progress=False)
    assert history.losses == expected.losses
    for name, value in tuned.state_dict().items():
        assert torch.equal(value, reference.state_dict()[name])
    for name, value in model.state_dict().items():  # the input model is untouched
        assert torch.equal(value, before[name])
    assert tuned is not model


def test_continual_finetune_with_ewc_adds_the_penalty_and_holds_stiff_weights():
    model = _mlp()
    x, y = _data(32)
    fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    fisher["2.weight"] = torch.full_like(model[2].weight, 1e6)  # only the last layer is stiff
    tuned, history = continual_finetune(model, batch_sampler(x, y, 8, generator=_gen(10)), 30, 1e-2,
                                        fisher=fisher, lam=1.0, eval_fn=lambda m: 0.5, eval_every=10)
    assert (tuned[2].weight - model[2].weight).abs().max() < 0.02
    assert (tuned[0].weight - model[0].weight).abs().max() > 0.05  # free weights still learn
    assert history.eval_steps == [10, 20, 30] and history.evals == [0.5, 0.5, 0.5]
    # the recorded first loss includes the penalty, which is 0 at the anchor: it equals plain CE
    first_x, first_y = batch_sampler(x, y, 8, generator=_gen(10))()
    with torch.no_grad():
        assert history.losses[0] == pytest.approx(F.cross_entropy(model(first_x), first_y).item(), rel=1e-6)


def test_continual_finetune_with_zero_fisher_equals_no_ewc():
    model = _mlp()
    x, y = _data(32)
    zero = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    a, _ = continual_finetune(model, batch_sampler(x, y, 8, generator=_gen(11)), 10, 1e-2,
                              fisher=zero, lam=5.0)
    b, _ = continual_finetune(model, batch_sampler(x, y, 8, generator=_gen(11)), 10, 1e-2)
    for name, value in a.state_dict().items():
        torch.testing.assert_close(value, b.state_dict()[name])


def test_continual_finetune_rejects_bad_arguments():
    model = _mlp()
    x, y = _data()
    batches = batch_sampler(x, y, 4)
    with pytest.raises(TypeError, match="model"):
        continual_finetune(None, batches, 5, 1e-2)
    with pytest.raises(ValueError, match="lam"):
        continual_finetune(model, batches, 5, 1e-2, lam=-2.0)
    with pytest.raises(TypeError, match="fisher"):
        continual_finetune(model, batches, 5, 1e-2, fisher=[1.0], lam=1.0)
    with pytest.raises(TypeError, match="eval_fn"):
        continual_finetune(model, batches, 5, 1e-2, eval_fn=3)
