"""Continual learning: learn task B after task A without forgetting A (Lecture 3, Q14).

A network trained on task A and then on task B forgets A ("catastrophic forgetting", McCloskey & Cohen
1989): the gradient of B's loss says nothing about A, and A lives in the same weights. Two of the
remedies the course builds live here, as small tested pieces:

- **rehearsal** (Robins 1995; "experience replay"): keep a small buffer of A's examples and mix a few
  into every batch of B, so that B's gradient also "hears" A. ``rehearsal_batches`` wraps a ``batch_fn``.
- **Elastic Weight Consolidation** (Kirkpatrick et al. 2017): after A, measure how much each parameter
  matters to A with the diagonal of the Fisher information (``diagonal_fisher``), then learn B with a
  quadratic pull back towards A's weights, strong where the Fisher is large (``ewc_penalty``):

      L(θ) = L_B(θ) + Σ_i λ/2 · F_i · (θ_i − θ*_A,i)²          (Kirkpatrick et al. 2017, eq. 3)

``continual_finetune`` trains a copy of a model on the new task with both (the notebook's widget calls
it). The third remedy, a module per task over a frozen shared base, uses ``utils.lora``.

>>> model = torch.nn.Linear(2, 1, bias=False)
>>> with torch.no_grad():                               # exact weights: (w + 1) - w is 1 only for some w
...     _ = model.weight.copy_(torch.tensor([[0.5, -0.25]]))
>>> anchor = parameter_snapshot(model)
>>> fisher = {"weight": torch.tensor([[4.0, 0.0]])}
>>> with torch.no_grad():
...     _ = model.weight.add_(1.0)                       # move both weights by 1
>>> ewc_penalty(model, fisher, anchor, lam=0.5).item()  # 0.5/2 * (4*1 + 0*1): only weight 0 matters
1.0
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from .training import History, train

__all__ = [
    "FISHER_LABELS",
    "parameter_snapshot",
    "diagonal_fisher",
    "ewc_penalty",
    "rehearsal_batches",
    "continual_finetune",
]

# Which labels the squared gradients are taken at (see ``diagonal_fisher``).
FISHER_LABELS: tuple[str, ...] = ("given", "model")

Params = Mapping[str, torch.Tensor]


def _check_model(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def parameter_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every trainable parameter, by name: the anchor θ* that EWC pulls back to.

    Later training cannot change the snapshot (the tensors are clones, not views).

    >>> layer = torch.nn.Linear(3, 2)
    >>> snapshot = parameter_snapshot(layer)
    >>> sorted(snapshot), snapshot["weight"].requires_grad
    (['bias', 'weight'], False)
    """
    _check_model(model)
    return {name: p.detach().clone() for name, p in _trainable(model).items()}


def _check_batches(batches: object) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], torch.Tensor):
        batches = [batches]  # one (inputs, targets) pair given directly
    if not isinstance(batches, Iterable):
        raise TypeError("batches must be an iterable of (inputs, targets) pairs")
    checked = []
    for pair in batches:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                and all(isinstance(t, torch.Tensor) for t in pair)):
            raise TypeError("batches must be an iterable of (inputs, targets) pairs of tensors")
        inputs, targets = pair
        if len(inputs) != len(targets):
            raise ValueError(f"each batch's inputs and targets must have the same number of rows, got "
                             f"{len(inputs)} and {len(targets)}")
        checked.append((inputs, targets))
    if sum(len(inputs) for inputs, _ in checked) == 0:
        raise ValueError("batches holds no example: the Fisher is an average over at least one")
    return checked


def diagonal_fisher(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]] | tuple[torch.Tensor, torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    labels: str = "given",
) -> dict[str, torch.Tensor]:
    """The diagonal of the Fisher information of ``model``'s trainable parameters, by name.

    ``F_i = mean over examples x of E_y[(∂ log p(y | x) / ∂θ_i)²]``: the squared gradient of ONE
    example's log-likelihood, averaged over examples. (Squaring the gradient of a whole batch's mean
    loss, as some implementations do, gives a different quantity: never larger, by Jensen's inequality,
    and shrinking as the batch grows.) Which ``y`` the expectation uses is the ``labels`` choice:

    - ``"given"`` (default): the **empirical Fisher**, at each example's own target:
      ``(∂ loss_fn(model(x), y) / ∂θ)²`` where ``loss_fn`` returns one example's negative
      log-likelihood (``F.cross_entropy`` for a classifier; for a Gaussian with fixed σ,
      ``(y − μ)² / (2σ²)``). This is what many EWC implementations compute.
    - ``"model"``: the **Fisher of the model's own predictive distribution**, the one Kirkpatrick et al.
      (2017) define: ``Σ_c p(c | x) (∂ log p(c | x) / ∂θ)²`` with ``p = softmax(model(x))``, summed exactly
      over the classes (one backward pass per class, so it costs V times the empirical one). The model
      must return logits ``(1, V)`` for one example; ``loss_fn`` and the targets are not used.

    The two agree (in expectation) when the labels are distributed as the model predicts them, and
    differ otherwise (Kunstner et al. 2019; van de Ven 2025 compares both, and more variants, in EWC).

    ``batches`` is an iterable of ``(inputs, targets)`` pairs (or one pair); every row is one example.
    The model runs in eval mode (no dropout); no parameter and no ``.grad`` is changed. Parameters that
    do not influence the output get a Fisher of 0; frozen ones (``requires_grad=False``) are left out.

    Logistic regression ``p(y=1 | x) = σ(w x)`` at ``w = 0`` (σ = 1/2): the model Fisher is
    ``σ(1 − σ) x² = x²/4``, the empirical one ``(y − σ)² x² = x²/4`` too, for either label:

    >>> model = torch.nn.Linear(1, 2, bias=False)          # logits (0·x, w·x): a 2-class logistic model
    >>> with torch.no_grad():
    ...     _ = model.weight.zero_()
    >>> x, y = torch.tensor([[2.0]]), torch.tensor([1])
    >>> diagonal_fisher(model, (x, y), labels="model")["weight"][1].item()   # row 1 holds w
    1.0
    """
    _check_model(model)
    if labels not in FISHER_LABELS:
        raise ValueError(f"labels must be one of {FISHER_LABELS}, got {labels!r}")
    if labels == "given" and not callable(loss_fn):
        raise TypeError("loss_fn must be a function (outputs, targets) -> one example's negative "
                        "log-likelihood when labels='given'")
    batches = _check_batches(batches)
    params = _trainable(model)
    if not params:
        raise ValueError("model has no trainable parameters (every parameter has requires_grad=False)")
    names, tensors = list(params), list(params.values())
    device = tensors[0].device
    fisher = [torch.zeros_like(p) for p in tensors]
    count = 0
    was_training = model.training
    model.eval()
    try:
        for inputs, targets in batches:
            for i in range(len(inputs)):
                outputs = model(inputs[i : i + 1].to(device))  # ONE example: (1, ...)
                if labels == "given":
                    log_likelihood = -loss_fn(outputs, targets[i : i + 1].to(device))
                    if log_likelihood.numel() != 1:
                        raise ValueError("loss_fn must return one number (the example's negative "
                                         f"log-likelihood), got shape {tuple(log_likelihood.shape)}")
                    grads = torch.autograd.grad(log_likelihood.sum(), tensors, allow_unused=True)
                    for total, g in zip(fisher, grads, strict=True):
                        if g is not None:  # None: this parameter does not reach the output
                            total.add_(g ** 2)
                else:
                    if outputs.dim() != 2 or outputs.shape[0] != 1:
                        raise ValueError(f"labels='model' needs logits of shape (1, V) for one example, "
                                         f"got {tuple(outputs.shape)}")
                    log_p = F.log_softmax(outputs[0], dim=-1)  # (V,)
                    V = log_p.shape[0]
                    # V backward passes in one call (vmapped): row c of the identity gives ∂ log p(c|x)/∂θ
                    grads = torch.autograd.grad(log_p, tensors, grad_outputs=torch.eye(V, device=device),
                                                is_grads_batched=True, allow_unused=True)  # each (V, *shape)
                    p = log_p.detach().exp()  # (V,): the weights of the expectation over y ~ p(y|x)
                    for total, g in zip(fisher, grads, strict=True):
                        if g is not None:
                            total.add_(torch.einsum("v,v...->...", p, g ** 2))  # Σ_c p_c g_c²
                count += 1
    finally:
        model.train(was_training)
    return {name: total / count for name, total in zip(names, fisher, strict=True)}


def _check_lam(lam: object) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)):
        raise TypeError(f"lam must be a number, got {type(lam).__name__}")
    if not lam >= 0:  # also rejects NaN
        raise ValueError(f"lam must be >= 0 (the strength of the pull towards the anchor), got {lam}")
    return float(lam)


def ewc_penalty(model: nn.Module, fisher: Params, anchor_params: Params, lam: float) -> torch.Tensor:
    """``lam / 2 · Σ_i F_i (θ_i − θ*_i)²`` over the parameters named in ``fisher`` (Kirkpatrick et al. 2017).

    ``fisher`` (from ``diagonal_fisher``) and ``anchor_params`` (θ*, from ``parameter_snapshot`` right
    after task A) map parameter names of ``model`` to tensors of the parameters' shapes. The result is a
    scalar tensor that gradients flow through: its gradient is ``lam · F_i (θ_i − θ*_i)``, a spring that
    pulls each weight back to θ* with a stiffness set by how much A's likelihood depends on it. It is 0 at
    the anchor and for any weight with ``F_i = 0``. Inputs are not modified.

    >>> layer = torch.nn.Linear(1, 1)
    >>> anchor = {"weight": layer.weight.detach() - 2, "bias": layer.bias.detach()}
    >>> fisher = {"weight": torch.tensor([[3.0]]), "bias": torch.tensor([5.0])}
    >>> ewc_penalty(layer, fisher, anchor, lam=1.0).item()   # 1/2 * 3 * 2², the bias sits at its anchor
    6.0
    """
    _check_model(model)
    lam = _check_lam(lam)
    if not isinstance(fisher, Mapping) or not isinstance(anchor_params, Mapping):
        raise TypeError("fisher and anchor_params must be dicts from parameter names to tensors")
    if set(fisher) != set(anchor_params):
        raise ValueError(f"fisher and anchor_params must name the same parameters, got "
                         f"{sorted(set(fisher) ^ set(anchor_params))} in only one of them")
    params = dict(model.named_parameters())
    unknown = sorted(set(fisher) - set(params))
    if unknown:
        raise ValueError(f"fisher names parameters that model does not have: {unknown[:5]}")
    if not fisher:
        raise ValueError("fisher is empty: it must name at least one parameter of model")
    total = None
    for name, f in fisher.items():
        theta, anchor = params[name], anchor_params[name]
        if not isinstance(f, torch.Tensor) or not isinstance(anchor, torch.Tensor):
            raise TypeError(f"fisher[{name!r}] and anchor_params[{name!r}] must be tensors")
        if f.shape != theta.shape or anchor.shape != theta.shape:
            raise ValueError(f"fisher[{name!r}] and anchor_params[{name!r}] must have the parameter's shape "
                             f"{tuple(theta.shape)}, got {tuple(f.shape)} and {tuple(anchor.shape)}")
        term = (f.to(theta.device) * (theta - anchor.to(theta.device)) ** 2).sum()
        total = term if total is None else total + term
    return lam / 2 * total


def rehearsal_batches(
    new_batch_fn: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    buffer_inputs: torch.Tensor,
    buffer_targets: torch.Tensor,
    n_replay: int,
    generator: torch.Generator | None = None,
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """A ``batch_fn`` for ``train`` that appends ``n_replay`` random rows of an old task's buffer to each
    batch of the new task (rehearsal, Robins 1995; "experience replay" in Rolnick et al. 2019).

    Each call returns ``(cat(new_inputs, buffer_inputs[rows]), cat(new_targets, buffer_targets[rows]))``,
    rows drawn with replacement by ``generator``, on the new batch's device. ``n_replay = 0`` gives the
    new batches unchanged. The buffer tensors are not modified.

    >>> new = lambda: (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    >>> fn = rehearsal_batches(new, torch.ones(10, 3), torch.ones(10, dtype=torch.long), n_replay=2)
    >>> x, y = fn()
    >>> tuple(x.shape), y.tolist()
    ((6, 3), [0, 0, 0, 0, 1, 1])
    """
    if not callable(new_batch_fn):
        raise TypeError("new_batch_fn must be a function returning (inputs, targets)")
    if not isinstance(buffer_inputs, torch.Tensor) or not isinstance(buffer_targets, torch.Tensor):
        raise TypeError("buffer_inputs and buffer_targets must be torch.Tensors")
    if len(buffer_inputs) != len(buffer_targets) or len(buffer_inputs) == 0:
        raise ValueError(f"buffer_inputs and buffer_targets must have the same number of rows (>= 1), got "
                         f"{len(buffer_inputs)} and {len(buffer_targets)}")
    if isinstance(n_replay, bool) or not isinstance(n_replay, int):
        raise TypeError(f"n_replay must be an int, got {type(n_replay).__name__}")
    if n_replay < 0:
        raise ValueError(f"n_replay must be >= 0 (old examples added to each batch), got {n_replay}")

    def batch_fn() -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = new_batch_fn()
        if n_replay == 0:
            return inputs, targets
        if inputs.shape[1:] != buffer_inputs.shape[1:] or targets.shape[1:] != buffer_targets.shape[1:]:
            raise ValueError(f"the buffer's rows {tuple(buffer_inputs.shape[1:])} / "
                             f"{tuple(buffer_targets.shape[1:])} must match the new batch's rows "
                             f"{tuple(inputs.shape[1:])} / {tuple(targets.shape[1:])}")
        rows = torch.randint(len(buffer_inputs), (n_replay,), generator=generator)
        old_inputs = buffer_inputs[rows].to(inputs.device)
        old_targets = buffer_targets[rows].to(targets.device)
        return torch.cat([inputs, old_inputs]), torch.cat([targets, old_targets])

    return batch_fn


def continual_finetune(
    model: nn.Module,
    batch_fn: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    lr: float,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    fisher: Params | None = None,
    lam: float = 0.0,
    eval_fn: Callable[[nn.Module], float] | None = None,
    eval_every: int = 10,
    progress: bool = False,
    desc: str = "new task",
) -> tuple[nn.Module, History]:
    """Train a deep COPY of ``model`` on a new task; ``model`` itself is left as it is.

    With ``fisher`` and ``lam > 0`` the loss is ``loss_fn + ewc_penalty(copy, fisher, θ*, lam)`` with the
    anchor θ* = ``model``'s parameters now (EWC). For rehearsal, pass a ``rehearsal_batches`` batch_fn.
    ``eval_fn(copy)`` (e.g. the old task's accuracy) is recorded every ``eval_every`` steps and after the
    last one. Training is ``utils.training.train`` (AdamW, gradient clipping at norm 1). Returns
    ``(trained copy, History)``.

    >>> model = torch.nn.Linear(1, 1)
    >>> x = torch.linspace(-1, 1, 8).unsqueeze(1)
    >>> fisher = {name: torch.full_like(p, 1e6) for name, p in model.named_parameters()}
    >>> stiff, _ = continual_finetune(model, lambda: (x, 5 * x), 50, 0.1, torch.nn.functional.mse_loss,
    ...                               fisher=fisher, lam=1.0)
    >>> torch.allclose(stiff.weight, model.weight, atol=0.05)   # a huge Fisher keeps it at its anchor
    True
    """
    _check_model(model)
    lam = _check_lam(lam)
    if fisher is not None and not isinstance(fisher, Mapping):
        raise TypeError("fisher must be None or a dict from parameter names to tensors")
    if eval_fn is not None and not callable(eval_fn):
        raise TypeError("eval_fn must be None or a function model -> float")
    learner = copy.deepcopy(model)
    if fisher is not None and lam > 0:
        anchor = {name: p.detach().clone() for name, p in learner.named_parameters() if name in fisher}

        def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return loss_fn(outputs, targets) + ewc_penalty(learner, fisher, anchor, lam)
    else:
        loss = loss_fn
    history = train(learner, batch_fn, steps, lr, loss_fn=loss,
                    eval_fn=None if eval_fn is None else (lambda: eval_fn(learner)),
                    eval_every=eval_every, progress=progress, desc=desc)
    return learner, history
