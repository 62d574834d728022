"""Tests for utils.training. Oracles: F.cross_entropy and log(V) for a uniform guess, a learnable toy task
(the loss must fall far below chance), History lengths counted by hand, frozen parameters compared
bit-for-bit, accuracy counted by hand, and the train/eval mode as a property."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.models import GPTConfig, TinyGPT
from utils.training import History, batch_sampler, evaluate_accuracy, lm_loss, stream_batches, train


def test_lm_loss_equals_cross_entropy_and_ignores_minus_100():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, generator=g)
    targets = torch.tensor([[0, 4, -100], [2, -100, 1]])
    keep = targets != -100
    expected = F.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(lm_loss(logits, targets), expected)
    assert lm_loss(torch.zeros(1, 4, 7), torch.zeros(1, 4, dtype=torch.long)).item() == pytest.approx(
        math.log(7))
    with pytest.raises(ValueError, match="targets"):
        lm_loss(logits, targets[:, :2])


def _copy_task(seed: int = 0):
    """Sequences whose second half repeats the first: predicting it needs attention to earlier tokens."""
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(0, 6, (512, 4), generator=g)
    seq = torch.cat([first, first], dim=1)  # (N, 8)
    inputs, targets = seq[:, :-1], seq[:, 1:].clone()
    targets[:, :3] = -100  # the first half is random: not learnable, so not scored
    return inputs, targets


def test_training_learns_a_copy_task():
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=6, block_size=8, d_model=32, n_heads=2, n_layers=2))
    inputs, targets = _copy_task()
    chance = evaluate_accuracy(model, inputs, targets)
    history = train(model, batch_sampler(inputs, targets, 64, generator=torch.Generator().manual_seed(0)),
                    steps=60, lr=3e-3, progress=False)
    assert history.losses[0] > 0.8 * math.log(6)  # starts near a uniform guess
    assert history.final_loss < 0.3 * math.log(6)
    assert chance < 0.4 < 0.9 < evaluate_accuracy(model, inputs, targets)
    assert not model.training  # left in eval mode


def test_history_lengths_and_eval_schedule():
    model = nn.Linear(2, 1)
    x = torch.randn(8, 2)
    calls = []

    def eval_fn() -> float:
        calls.append(model.training)
        return 0.5

    history = train(model, lambda: (x, x.sum(1, keepdim=True)), steps=23, lr=0.01,
                    loss_fn=F.mse_loss, eval_fn=eval_fn, eval_every=10, progress=False)
    assert isinstance(history, History)
    assert history.steps == list(range(1, 24)) and len(history.losses) == 23
    assert history.eval_steps == [10, 20, 23] and history.evals == [0.5, 0.5, 0.5]
    assert calls == [False, False, False]  # evaluation runs in eval mode
    assert history.final_loss == history.losses[-1]
    assert math.isnan(History().final_loss)


def test_train_optimises_only_trainable_parameters():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    for p in model[0].parameters():
        p.requires_grad_(False)
    frozen = [p.clone() for p in model[0].parameters()]
    trained = [p.clone() for p in model[2].parameters()]
    x = torch.randn(16, 3)
    train(model, lambda: (x, x[:, :1]), steps=5, loss_fn=F.mse_loss, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(model[0].parameters(), frozen, strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(model[2].parameters(), trained, strict=True))


def test_train_uses_a_given_optimizer_and_switches_modes():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    modes = []
    x = torch.randn(4, 2)

    def loss_fn(out, target):
        modes.append(model.training)
        return F.mse_loss(out, target)

    sgd = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the weights must not move
    before = [p.clone() for p in model.parameters()]
    train(model, lambda: (x, x), steps=3, loss_fn=loss_fn, optimizer=sgd, progress=False)
    assert modes == [True, True, True] and not model.training
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before, strict=True))


def test_train_rejects_bad_arguments():
    model = nn.Linear(1, 1)
    batch = lambda: (torch.ones(1, 1), torch.ones(1, 1))
    with pytest.raises(ValueError, match="steps"):
        train(model, batch, steps=0)
    with pytest.raises(ValueError, match="lr"):
        train(model, batch, steps=1, lr=0.0)
    with pytest.raises(ValueError, match="eval_every"):
        train(model, batch, steps=1, eval_every=0)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="trainable"):
        train(model, batch, steps=1)


class _Lookup(nn.Module):
    """A 'model' whose predictions we choose: logits are one-hot of a fixed table (B, T) -> (B, T, V)."""

    def __init__(self, predictions: torch.Tensor, vocab: int = 4):
        super().__init__()
        self.register_buffer("logits", F.one_hot(predictions, vocab).float())
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, idx):
        return self.logits[: idx.shape[0]] + 0 * self.weight


def test_evaluate_accuracy_counts_by_hand_and_restores_the_mode():
    predictions = torch.tensor([[0, 1, 2], [3, 3, 3]])
    targets = torch.tensor([[0, 2, 2], [3, -100, 0]])
    model = _Lookup(predictions).train()
    inputs = torch.zeros(2, 3, dtype=torch.long)
    assert evaluate_accuracy(model, inputs, targets) == pytest.approx(3 / 5)  # -100 not counted
    assert model.training  # restored
    assert evaluate_accuracy(model.eval(), inputs, targets, positions=2) == pytest.approx(1 / 2)
    assert evaluate_accuracy(model, inputs, targets, positions=[0, 1]) == pytest.approx(2 / 3)
    assert not model.training
    with pytest.raises(ValueError, match="positions"):
        evaluate_accuracy(model, inputs, targets, positions=3)
    with pytest.raises(ValueError, match="targets"):
        evaluate_accuracy(model, inputs, targets[:, :2])


def test_batch_sampler_draws_matching_rows():
    inputs = torch.arange(20).view(10, 2)
    targets = inputs * 10
    fn = batch_sampler(inputs, targets, batch_size=6, generator=torch.Generator().manual_seed(0))
    x, y = fn()
    assert x.shape == (6, 2) and torch.equal(y, x * 10)  # rows stay paired
    with pytest.raises(ValueError, match="batch_size"):
        batch_sampler(inputs, targets, batch_size=0)
    with pytest.raises(ValueError, match="rows"):
        batch_sampler(inputs, targets[:3], batch_size=2)


def test_stream_batches_cuts_shifted_windows_from_the_stream():
    stream = torch.arange(50) * 3  # every window of it is an arithmetic run, so we can check by hand
    fn = stream_batches(stream, block_size=6, batch_size=8, generator=torch.Generator().manual_seed(0))
    x, y = fn()
    assert x.shape == y.shape == (8, 6)
    assert torch.equal(y, x + 3)  # y is x shifted by one token
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.full((8, 5), 3))  # contiguous windows
    assert (x % 3 == 0).all() and x.min() >= 0 and y.max() <= 147  # inside the stream
    starts = torch.cat([fn()[0][:, 0] for _ in range(200)]) // 3
    assert starts.min() == 0 and starts.max() == 50 - 6 - 1  # every start, including both ends, is possible
    with pytest.raises(ValueError, match="block_size"):
        stream_batches(torch.arange(5), block_size=5, batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        stream_batches(stream, block_size=4, batch_size=0)


# --- Lecture 4: validation loss, early stopping, weight decay and L1 ---------------------------------------

from utils.training import EarlyStopping, early_stopping_point, evaluate_loss, l1_penalty  # noqa: E402


class _Scripted(nn.Module):
    """A model whose validation loss follows a script: its output is the (trainable) scalar ``w`` and an
    SGD step of lr 0 keeps it put, so the loss sequence is exactly what ``targets`` make it."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.w.expand(len(x), 1) + x


def test_early_stopping_rule_by_hand():
    assert early_stopping_point([5, 4, 3, 2, 1], patience=1) == (4, 4)  # never stops: always better
    assert early_stopping_point([5, 4, 4, 4], patience=2) == (1, 3)  # equal is not better
    assert early_stopping_point([5, 6, 7, 1], patience=2) == (0, 2)  # stops before the late best
    assert early_stopping_point([3.0], patience=3) == (0, 0)
    stopper = EarlyStopping(3)
    assert [stopper.update(v) for v in [2, 1, 1.5, 1.2, 0.9, 1, 1, 1]] == [False] * 7 + [True]
    assert stopper.best_index == 4
    with pytest.raises(ValueError, match="val_losses"):
        early_stopping_point([], patience=1)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(0)


def test_train_records_validation_losses_on_the_eval_schedule():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    x = torch.randn(32, 2)
    val = (torch.randn(16, 2), torch.randn(16, 1))
    history = train(model, lambda: (x, x.sum(1, keepdim=True)), steps=23, lr=0.01, loss_fn=F.mse_loss,
                    eval_every=10, progress=False, val_data=val)
    assert history.val_steps == [10, 20, 23] and len(history.val_losses) == 3
    assert history.val_losses[-1] == pytest.approx(F.mse_loss(model(val[0]), val[1]).item())
    assert history.best_val_loss == min(history.val_losses)
    assert history.best_step == history.val_steps[history.val_losses.index(history.best_val_loss)]
    assert history.stopped_at is None and history.eval_steps == []  # no eval_fn: no evals
    assert evaluate_loss(model, *val, loss_fn=F.mse_loss) == pytest.approx(history.val_losses[-1])


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    # fit w to 1 on training data; the validation target is 0.3, so the val loss falls, then rises
    torch.manual_seed(0)
    model = _Scripted()
    x = torch.zeros(8, 1)
    snapshots = {}

    def batch():
        return x, torch.ones(8, 1)

    def eval_fn() -> float:
        snapshots[len(snapshots) + 1] = model.w.item()
        return 0.0

    history = train(model, batch, steps=200, lr=0.05, loss_fn=F.mse_loss, eval_every=1, progress=False,
                    val_data=(x, torch.full((8, 1), 0.3)), patience=4, eval_fn=eval_fn, weight_decay=0.0)
    best, stop = early_stopping_point(history.val_losses, patience=4)
    assert history.stopped_at == history.val_steps[stop] == stop + 1 < 200  # it stopped early
    assert len(history.losses) == history.stopped_at  # ... and took no step after that
    assert history.best_step == best + 1 and stop - best == 4
    assert model.w.item() == pytest.approx(snapshots[history.best_step])  # the best weights are back
    assert abs(model.w.item() - 0.3) < 0.1
    kept = train(_Scripted(), batch, steps=200, lr=0.05, loss_fn=F.mse_loss, eval_every=1, progress=False,
                 val_data=(x, torch.full((8, 1), 0.3)), patience=4, restore_best=False, weight_decay=0.0)
    assert kept.stopped_at == history.stopped_at  # the same run, the last weights kept


def test_weight_decay_default_is_unchanged_and_zero_means_none():
    seen = {}
    original = torch.optim.AdamW

    class Spy(original):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            seen["weight_decay"] = self.param_groups[0]["weight_decay"]

    torch.optim.AdamW = Spy
    try:
        batch = lambda: (torch.ones(2, 1), torch.ones(2, 1))
        train(nn.Linear(1, 1), batch, steps=1, loss_fn=F.mse_loss, progress=False)
        assert seen["weight_decay"] == 0.01  # PyTorch's default, as before Lecture 4
        train(nn.Linear(1, 1), batch, steps=1, loss_fn=F.mse_loss, progress=False, weight_decay=0.0)
        assert seen["weight_decay"] == 0.0
    finally:
        torch.optim.AdamW = original


def test_l1_penalty_by_hand_and_its_gradient_is_the_sign():
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0]], requires_grad=True)
    assert l1_penalty([w, torch.tensor([-3.0])]).item() == 6.5
    l1_penalty([w]).backward()
    assert w.grad.tolist() == [[1.0, -1.0], [1.0, 0.0]]
    # in train: one SGD step of lr 0.1 on a zero data loss moves each weight by -0.1 * l1 * sign(w)
    model = nn.Linear(2, 1, bias=True)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -0.5]]))
        model.bias.fill_(0.25)
    zero_loss = lambda out, target: 0.0 * out.sum()
    train(model, lambda: (torch.ones(1, 2), torch.ones(1, 1)), steps=1, loss_fn=zero_loss, progress=False,
          optimizer=torch.optim.SGD(model.parameters(), lr=0.1), l1=0.2)
    torch.testing.assert_close(model.weight, torch.tensor([[0.48, -0.48]]))
    assert model.bias.item() == 0.25  # biases are not penalised


def test_new_train_arguments_are_checked():
    model = nn.Linear(1, 1)
    batch = lambda: (torch.ones(1, 1), torch.ones(1, 1))
    with pytest.raises(ValueError, match="val_data"):
        train(model, batch, steps=1, patience=2)
    with pytest.raises(TypeError, match="val_data"):
        train(model, batch, steps=1, val_data=torch.ones(2))
    with pytest.raises(ValueError, match="l1"):
        train(model, batch, steps=1, l1=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        train(model, batch, steps=1, weight_decay=0.1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
