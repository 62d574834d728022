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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

__all__ = [
    "History", "train", "lm_loss", "evaluate_accuracy", "batch_sampler", "stream_batches", "IGNORE_INDEX",
]

IGNORE_INDEX = -100  # targets with this value do not count in the loss (PyTorch's default ignore_index)


@dataclass
class History:
    """What happened during training: the loss after every step and the evaluations every few steps.

    ``steps[i]`` is the number of optimizer steps taken when ``losses[i]`` was measured (1, 2, ...).
    """

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    evals: list[float] = field(default_factory=list)

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
) -> History:
    """Take ``steps`` optimizer steps on ``loss_fn(model(inputs), targets)``, batches from ``batch_fn()``.

    - optimizer: AdamW on the trainable parameters (``requires_grad``) unless one is given, so frozen
      weights (a LoRA base) never change;
    - gradients are clipped to norm 1 (as in GPT-2 / nanoGPT), which keeps a tiny model's first steps
      from blowing up at a high learning rate;
    - ``eval_fn()`` (e.g. a validation accuracy) runs every ``eval_every`` steps and after the last one,
      with the model in eval mode and without gradients;
    - the model is in train mode during training and left in eval mode afterwards.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(batch_fn):
        raise TypeError("batch_fn must be a function returning (inputs, targets)")
    _check_positive("steps", steps)
    _check_positive("lr", lr, float)
    _check_positive("eval_every", eval_every)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("model has no trainable parameters (every parameter has requires_grad=False)")
    optimizer = optimizer if optimizer is not None else torch.optim.AdamW(trainable, lr=lr)

    history = History()
    model.train()
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress)
    for step in bar:
        inputs, targets = batch_fn()
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, max_norm=1.0)
        optimizer.step()
        history.steps.append(step)
        history.losses.append(loss.item())
        if step % 10 == 0 or step == steps:
            bar.set_postfix(loss=f"{history.losses[-1]:.3f}", refresh=False)
        if eval_fn is not None and (step % eval_every == 0 or step == steps):
            model.eval()
            with torch.no_grad():
                history.evals.append(float(eval_fn()))
            history.eval_steps.append(step)
            model.train()
    bar.close()
    model.eval()
    return history


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
