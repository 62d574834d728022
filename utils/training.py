"""One training loop for every model in the course, and the two measurements the notebooks need.

``train`` runs AdamW (Loshchilov & Hutter 2019) on the parameters that require gradients, so the same
loop does full training and LoRA fine-tuning (where everything but the adapters is frozen). It shows a
``tqdm.auto`` progress bar (a widget in Jupyter) and returns a ``History`` to plot.

>>> model = torch.nn.Linear(1, 1)
>>> x = torch.linspace(-1, 1, 16).unsqueeze(1)
>>> history = train(model, lambda: (x, 3 * x), steps=200, lr=0.1,
...                 loss_fn=torch.nn.functional.mse_loss, progress=False)
>>> len(history.losses), history.final_loss < 1e-3
(200, True)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

__all__ = [
    "History", "train", "lm_loss", "evaluate_accuracy", "batch_sampler", "stream_batches", "IGNORE_INDEX",
    "EarlyStopping", "early_stopping_point", "l1_penalty", "evaluate_loss",
]

IGNORE_INDEX = -100  # targets with this value do not count in the loss (PyTorch's default ignore_index)


@dataclass
class History:
    """What happened during training: the loss after every step and the evaluations every few steps.

    ``steps[i]`` is the number of optimizer steps taken when ``losses[i]`` was measured (1, 2, ...).
    ``losses`` is the training loss of each step's batch, as the optimizer saw it (in train mode, so with
    dropout active; without any L1 penalty). With ``val_data``, ``val_losses[i]`` is the validation loss
    after ``val_steps[i]`` steps (eval mode, no dropout), ``best_step`` / ``best_val_loss`` the lowest of
    them, and ``stopped_at`` the step at which early stopping ended training (``None``: it ran to the end).
    """

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    evals: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    best_step: int | None = None
    best_val_loss: float = math.nan
    stopped_at: int | None = None

    @property
    def final_loss(self) -> float:
        """The loss of the last step (NaN before any step)."""
        return self.losses[-1] if self.losses else math.nan


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy: ``logits (B, T, V)``, ``targets (B, T)``; targets equal to -100
    are ignored (padding, or positions we do not want to learn).

    >>> round(lm_loss(torch.zeros(1, 2, 4), torch.tensor([[0, 3]])).item(), 4)   # uniform guess: log 4
    1.3863
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError("logits and targets must be torch.Tensors")
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (B, T, V) and targets (B, T), got logits {tuple(logits.shape)} "
                         f"and targets {tuple(targets.shape)}")
    B, T, V = logits.shape
    return F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T),  # (B, T, V) -> (B*T, V)
                           ignore_index=IGNORE_INDEX)


def _check_positive(name: str, value, kind: type = int) -> None:
    if isinstance(value, bool) or not isinstance(value, (kind, int)):
        raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def train(
    model: nn.Module,
    batch_fn: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    lr: float = 3e-3,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = lm_loss,
    optimizer: torch.optim.Optimizer | None = None,
    eval_fn: Callable[[], float] | None = None,
    eval_every: int = 50,
    progress: bool = True,
    desc: str = "training",
    *,
    val_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    weight_decay: float | None = None,
    l1: float = 0.0,
) -> History:
    """Take ``steps`` optimizer steps on ``loss_fn(model(inputs), targets)``, batches from ``batch_fn()``.

    - optimizer: AdamW on the trainable parameters (``requires_grad``) unless one is given, so frozen
      weights (a LoRA base) never change; ``weight_decay`` is AdamW's (decoupled) weight decay, by
      default PyTorch's 0.01; pass ``0.0`` for none;
    - gradients are clipped to norm 1 (as in GPT-2 / nanoGPT), which keeps a tiny model's first steps
      from blowing up at a high learning rate;
    - ``eval_fn()`` (e.g. a validation accuracy) runs every ``eval_every`` steps and after the last one,
      with the model in eval mode and without gradients;
    - ``val_data = (inputs, targets)``: the validation loss ``loss_fn(model(inputs), targets)`` is
      measured on the same schedule (eval mode, no gradients) into ``history.val_losses``;
    - ``patience`` (needs ``val_data``): early stopping. Training ends once the validation loss has not
      improved on its best for ``patience`` evaluations in a row (``EarlyStopping``), and with
      ``restore_best`` the model gets back the weights of its best evaluation;
    - ``l1``: adds ``l1 · Σ|w|`` over the trainable weight matrices (parameters with 2 or more
      dimensions; biases and norms are left alone) to the loss that is differentiated;
      ``history.losses`` records the loss without it;
    - the model is in train mode during training and left in eval mode afterwards.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(batch_fn):
        raise TypeError("batch_fn must be a function returning (inputs, targets)")
    _check_positive("steps", steps)
    _check_positive("lr", lr, float)
    _check_positive("eval_every", eval_every)
    _check_val_data(val_data)
    stopper = None
    if patience is not None:
        _check_positive("patience", patience)
        if val_data is None:
            raise ValueError("patience needs val_data: early stopping watches the validation loss")
        stopper = EarlyStopping(patience)
    _check_non_negative("l1", l1)
    if weight_decay is not None:
        _check_non_negative("weight_decay", weight_decay)
        if optimizer is not None:
            raise ValueError("give weight_decay to your own optimizer, not to train (one was passed)")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("model has no trainable parameters (every parameter has requires_grad=False)")
    if optimizer is None:
        optimizer = torch.optim.AdamW(trainable, lr=lr) if weight_decay is None else \
            torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay)
    matrices = [p for p in trainable if p.dim() >= 2]

    history = History()
    best_state = None
    model.train()
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress)
    for step in bar:
        inputs, targets = batch_fn()
        loss = loss_fn(model(inputs), targets)
        objective = loss + l1 * l1_penalty(matrices) if l1 else loss
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        torch.nn.utils.clip_grad_norm_(trainable, max_norm=1.0)
        optimizer.step()
        history.steps.append(step)
        history.losses.append(loss.item())
        if step % 10 == 0 or step == steps:
            bar.set_postfix(loss=f"{history.losses[-1]:.3f}", refresh=False)
        if step % eval_every == 0 or step == steps:
            if eval_fn is not None:
                model.eval()
                with torch.no_grad():
                    history.evals.append(float(eval_fn()))
                history.eval_steps.append(step)
                model.train()
            if val_data is not None:
                val_loss = evaluate_loss(model, *val_data, loss_fn=loss_fn)
                history.val_steps.append(step)
                history.val_losses.append(val_loss)
                if history.best_step is None or val_loss < history.best_val_loss:
                    history.best_step, history.best_val_loss = step, val_loss
                    if stopper is not None and restore_best:
                        best_state = copy.deepcopy(model.state_dict())
                if stopper is not None and stopper.update(val_loss):
                    history.stopped_at = step
                    break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def _check_non_negative(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _check_val_data(val_data) -> None:
    if val_data is None:
        return
    if (not isinstance(val_data, (tuple, list)) or len(val_data) != 2
            or not all(isinstance(t, torch.Tensor) for t in val_data)):
        raise TypeError("val_data must be a pair of tensors (inputs, targets)")
    if len(val_data[0]) != len(val_data[1]) or len(val_data[0]) == 0:
        raise ValueError(f"val_data's inputs and targets must have the same number of rows (>= 1), got "
                         f"{len(val_data[0])} and {len(val_data[1])}")


def l1_penalty(parameters: Sequence[torch.Tensor]) -> torch.Tensor:
    """``Σ |w|`` over all entries of ``parameters``: the L1 norm that pushes weights to exactly zero
    (Tibshirani 1996, the lasso), where L2 only shrinks them.

    >>> l1_penalty([torch.tensor([[1.0, -2.0]]), torch.tensor([[-0.5]])]).item()
    3.5
    """
    parameters = list(parameters)
    if not parameters:
        return torch.tensor(0.0)
    return sum(p.abs().sum() for p in parameters)


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = lm_loss,
) -> float:
    """``loss_fn(model(inputs), targets)`` in eval mode (no dropout) and without gradients, on the
    model's device; the model's train/eval mode is restored afterwards.

    >>> model = torch.nn.Linear(1, 1)
    >>> evaluate_loss(model, torch.ones(4, 1), model(torch.ones(4, 1)).detach(), torch.nn.functional.mse_loss)
    0.0
    """
    was_training = model.training
    model.eval()
    try:
        device = _model_device(model)
        return float(loss_fn(model(inputs.to(device)), targets.to(device)))
    finally:
        model.train(was_training)


class EarlyStopping:
    """Early stopping's rule (Prechelt 1998, "Early stopping, but when?"): stop once the validation loss
    has gone ``patience`` evaluations in a row without beating its best so far.

    ``update(loss)`` records one evaluation and returns ``True`` when training should stop;
    ``best_index`` is the evaluation (0, 1, ...) with the lowest loss so far (the first of equals).

    >>> stopper = EarlyStopping(patience=2)
    >>> [stopper.update(loss) for loss in [3.0, 2.0, 2.5, 2.1]], stopper.best_index   # 2 without a new best
    ([False, False, False, True], 1)
    """

    def __init__(self, patience: int) -> None:
        _check_positive("patience", patience)
        self.patience = patience
        self.best_index: int | None = None
        self.best_loss = math.inf
        self.count = 0  # evaluations recorded

    def update(self, loss: float) -> bool:
        if loss < self.best_loss or self.best_index is None:
            self.best_index, self.best_loss = self.count, float(loss)
        self.count += 1
        return self.count - 1 - self.best_index >= self.patience


def early_stopping_point(val_losses: Sequence[float], patience: int) -> tuple[int, int]:
    """``(best, stop)``: the indices into ``val_losses`` of the best evaluation before stopping and of
    the evaluation at which ``EarlyStopping(patience)`` stops (the last index if it never does).

    >>> early_stopping_point([3.0, 2.0, 2.5, 2.1, 1.0], patience=2)
    (1, 3)
    >>> early_stopping_point([3.0, 2.0, 1.0], patience=2)
    (2, 2)
    """
    if isinstance(val_losses, (str, bytes)) or len(val_losses) == 0:
        raise ValueError("val_losses must be a non-empty list of numbers")
    stopper = EarlyStopping(patience)
    for i, loss in enumerate(val_losses):
        if stopper.update(loss):
            return stopper.best_index, i
    return stopper.best_index, len(val_losses) - 1


def _model_device(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    positions: int | Sequence[int] | None = None,
) -> float:
    """Fraction of predictions ``argmax model(inputs)`` equal to ``targets`` (``inputs``, ``targets (B, T)``).

    ``positions`` (an int or a list of ints along T) restricts the count to those positions, e.g. the one
    position where a sentence's ending is predicted; targets equal to -100 never count. The model's
    train/eval mode is restored afterwards.
    """
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError("inputs and targets must be torch.Tensors")
    if inputs.dim() != 2 or targets.shape != inputs.shape:
        raise ValueError(f"inputs and targets must both be (B, T), got inputs {tuple(inputs.shape)} and "
                         f"targets {tuple(targets.shape)}")
    T = inputs.shape[1]
    if positions is not None:
        positions = [positions] if isinstance(positions, int) else list(positions)
        if not positions or any(isinstance(p, bool) or not isinstance(p, int) or not -T <= p < T
                                for p in positions):
            raise ValueError(f"positions must be ints in [-{T}, {T}) (positions along T), got {positions}")
    was_training = model.training
    model.eval()
    try:
        device = _model_device(model)
        logits = model(inputs.to(device))  # (B, T, V)
    finally:
        model.train(was_training)
    predictions = logits.argmax(dim=-1).cpu()  # (B, T)
    targets = targets.cpu()
    if positions is not None:
        predictions, targets = predictions[:, positions], targets[:, positions]  # (B, P)
    counted = targets != IGNORE_INDEX
    if not counted.any():
        raise ValueError("targets has no position to score (all are -100 at the given positions)")
    return (predictions[counted] == targets[counted]).float().mean().item()


def batch_sampler(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A ``batch_fn`` for ``train``: each call returns ``batch_size`` random rows (with replacement) of
    ``inputs`` and ``targets``, moved to ``device`` (default: where ``inputs`` already are).

    >>> fn = batch_sampler(torch.arange(10).view(5, 2), torch.arange(10).view(5, 2), batch_size=3)
    >>> tuple(fn()[0].shape)
    (3, 2)
    """
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError("inputs and targets must be torch.Tensors")
    if len(inputs) != len(targets) or len(inputs) == 0:
        raise ValueError(f"inputs and targets must have the same number of rows (>= 1), got {len(inputs)} "
                         f"and {len(targets)}")
    _check_positive("batch_size", batch_size)
    device = inputs.device if device is None else torch.device(device)
    inputs, targets = inputs.to(device), targets.to(device)

    def batch_fn() -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randint(len(inputs), (batch_size,), generator=generator)
        rows = rows.to(device)
        return inputs[rows], targets[rows]

    return batch_fn


def stream_batches(
    stream: torch.Tensor,
    block_size: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A ``batch_fn`` that cuts random windows out of one long token ``stream`` (nanoGPT's ``get_batch``).

    Each call returns ``(x, y)``, both ``(batch_size, block_size)``, with ``y`` = ``x`` shifted by one
    token: every position of every window is a next-token example. Windows start anywhere, so the model
    learns to read text that begins mid-sentence, as GPT models are trained on fixed-length chunks of a
    concatenated corpus (Radford et al. 2019).

    >>> x, y = stream_batches(torch.arange(100), block_size=4, batch_size=2)()
    >>> torch.equal(y, x + 1)
    True
    """
    if not isinstance(stream, torch.Tensor):
        raise TypeError(f"stream must be a 1-D torch.Tensor of token ids, got {type(stream).__name__}")
    _check_positive("block_size", block_size)
    _check_positive("batch_size", batch_size)
    if stream.dim() != 1 or len(stream) <= block_size:
        raise ValueError(f"stream must be 1-D and longer than block_size={block_size}, "
                         f"got shape {tuple(stream.shape)}")
    device = stream.device if device is None else torch.device(device)
    stream = stream.to(device)
    offsets = torch.arange(block_size, device=device)  # (T,)

    def batch_fn() -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(len(stream) - block_size, (batch_size, 1), generator=generator)  # (B, 1)
        rows = starts.to(device) + offsets  # (B, 1) + (T,) -> (B, T) indices into the stream
        return stream[rows], stream[rows + 1]

    return batch_fn
