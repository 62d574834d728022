"""The losses of the course, written out: cross-entropy, KL divergence, distillation, and MLM masking.

Each function is the readable version of a formula; the tests check it against PyTorch's own
(``F.cross_entropy``, ``F.kl_div``) or against a closed form.

- ``cross_entropy``: the next-token loss, ``-log softmax(logits)[target]`` averaged over the counted rows.
- ``kl_divergence``: ``KL(p‖q) = Σ p log(p / q)``, how many extra nats ``q`` costs when the truth is ``p``.
- ``distillation_loss``: a student matches a teacher's *softened* distribution (Hinton, Vinyals & Dean
  2015, "Distilling the Knowledge in a Neural Network", arXiv:1503.02531).
- ``mask_tokens``: BERT's masked-language-model corruption (Devlin et al. 2019, "BERT: Pre-training of
  Deep Bidirectional Transformers for Language Understanding", NAACL).

>>> logits = torch.tensor([[2.0, 0.0, 0.0]])
>>> round(cross_entropy(logits, torch.tensor([0])).item(), 4)      # -log(e² / (e² + 2))
0.2395
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from ._validation import check_positive_int

__all__ = [
    "IGNORE_INDEX",
    "cross_entropy",
    "kl_divergence",
    "distillation_loss",
    "mask_draws",
    "mask_tokens",
    "MASK_FRACTION",
    "RANDOM_FRACTION",
    "log_gaussian_on_grid",
    "kl_divergence_from_logs",
    "GaussianFit",
    "fit_gaussian_kl",
    "kl_landscape",


    "perplexity",
    "contrastive_loss",
]

IGNORE_INDEX = -100  # PyTorch's default ignore_index: a label that does not count in the loss

# BERT's split of the selected positions (Devlin et al. 2019, section 3.1): 80 % become [MASK], 10 % a
# random token, 10 % stay as they are. The last two make the model keep a useful representation of every
# input token, because at fine-tuning time there is no [MASK] and any token might be the one to fix.
MASK_FRACTION = 0.8
RANDOM_FRACTION = 0.1


# ----------------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------------

def _check_tensor(name: str, value: object) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")


def _check_float_tensor(name: str, value: object) -> None:
    _check_tensor(name, value)
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")


def _check_distribution(name: str, p: torch.Tensor) -> None:
    """Entries >= 0 and every row (last dim) summing to 1, within float tolerance."""
    if p.dim() < 1 or p.shape[-1] == 0:
        raise ValueError(f"{name} must have at least one dimension with >= 1 entries, got shape "
                         f"{tuple(p.shape)}")
    if (p < 0).any() or p.isnan().any():
        raise ValueError(f"{name} must hold probabilities (>= 0, no NaN), got min {p.min().item():.4g}")
    sums = p.sum(dim=-1, dtype=torch.float64)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        worst = sums[(sums - 1).abs().argmax()].item() if sums.dim() else sums.item()
        raise ValueError(f"{name} must sum to 1 over its last dimension, got a row summing to {worst:.6g}")


# ----------------------------------------------------------------------------------------------------
# Cross-entropy and KL divergence
# ----------------------------------------------------------------------------------------------------

def cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Mean of ``-log softmax(logits)[n, targets[n]]`` over the rows whose target is not ``ignore_index``.

    ``logits (N, V)`` (scores, any real numbers), ``targets (N,)`` (class ids in ``[0, V)`` or
    ``ignore_index``). Equals ``torch.nn.functional.cross_entropy(logits, targets,
    ignore_index=ignore_index)``, including NaN when every row is ignored (0 / 0, as PyTorch).

    Numerically stable: ``log softmax(z)_i = z_i - logsumexp(z)`` and ``logsumexp`` subtracts the row
    maximum before exponentiating, so logits of 1000 do not overflow (``exp(1000)`` is ``inf``).

    >>> logits = torch.tensor([[1000.0, 0.0], [0.0, 0.0], [5.0, 1.0]])
    >>> round(cross_entropy(logits, torch.tensor([0, 1, -100])).item(), 4)   # (0 + log 2) / 2
    0.3466
    """
    _check_float_tensor("logits", logits)
    _check_tensor("targets", targets)
    _check_int("ignore_index", ignore_index)
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, V), got shape {tuple(logits.shape)}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool or targets.is_complex():
        raise TypeError(f"targets must be an integer tensor of class ids, got dtype {targets.dtype}")
    N, V = logits.shape
    if targets.shape != (N,):
        raise ValueError(f"targets must be (N,) = ({N},) to match logits {tuple(logits.shape)}, "
                         f"got shape {tuple(targets.shape)}")
    counted = targets != ignore_index  # (N,)
    bad = counted & ((targets < 0) | (targets >= V))
    if bad.any():
        raise ValueError(f"targets must be class ids in [0, {V}) or ignore_index={ignore_index}, "
                         f"got {targets[bad][:5].tolist()}")
    log_probs = logits - torch.logsumexp(logits, dim=-1, keepdim=True)  # (N, V): log softmax, stable
    picked = log_probs[counted].gather(1, targets[counted].long().unsqueeze(1))  # (N', V) -> (N', 1)
    return -picked.mean()  # mean over the counted rows (empty mean is NaN, as in PyTorch)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``KL(p‖q) = Σ_i p_i log(p_i / q_i)`` over the last dimension, one value per row: ``p.shape[:-1]``.

    ``p`` and ``q`` are probability tensors of the same shape (entries >= 0, rows summing to 1).
    By the limit ``x log x -> 0``, terms with ``p_i = 0`` contribute 0, whatever ``q_i`` is; a term with
    ``p_i > 0`` and ``q_i = 0`` is ``+inf`` (``q`` says impossible what ``p`` says happens). KL is >= 0,
    0 only when ``p == q``, and not symmetric. ``torch.xlogy(a, b) = a log b`` with ``0 log 0 = 0`` does
    exactly that bookkeeping (and keeps gradients finite at ``p_i = 0``).

    >>> p = torch.tensor([0.5, 0.5, 0.0])
    >>> q = torch.tensor([0.25, 0.5, 0.25])
    >>> round(kl_divergence(p, q).item(), 4)            # 0.5 log 2: the third term is 0, not 0·log 0
    0.3466
    >>> kl_divergence(q, p).item()                      # q puts mass where p has none
    inf
    """
    _check_float_tensor("p", p)
    _check_float_tensor("q", q)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got p {tuple(p.shape)} and q {tuple(q.shape)}")
    _check_distribution("p", p)
    _check_distribution("q", q)
    terms = torch.xlogy(p, p) - torch.xlogy(p, q)  # p log p - p log q, elementwise; 0 where p == 0
    return terms.sum(dim=-1)


# ----------------------------------------------------------------------------------------------------
# Distillation
# ----------------------------------------------------------------------------------------------------

def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T² · KL(softmax(teacher / T) ‖ softmax(student / T))``, averaged over rows (Hinton et al. 2015).

    ``student_logits`` and ``teacher_logits`` have the same shape ``(..., V)``; every position of the
    leading dimensions is one row (so ``(N, V)`` and ``(B, T, V)`` both work).

    **Why T > 1.** A confident teacher puts almost all its probability on one class; dividing its logits
    by T flattens the distribution so the small probabilities ("a 2 looks a bit like a 7, not at all
    like a 4", the teacher's *dark knowledge*) become large enough to learn from.

    **Why T².** The gradient of the KL term with respect to a student logit ``z_i`` is
    ``(q_i - p_i) / T``; for large T, ``q_i - p_i`` itself shrinks like ``1/T`` (both softmaxes approach
    uniform), so the soft-target gradients scale as ``1/T²``. Multiplying by T² keeps their size roughly
    independent of T, so T can be changed without retuning the learning rate or the weight of a mixed-in
    hard-label loss (Hinton et al. 2015, section 2).

    The teacher is a fixed target: compute ``teacher_logits`` under ``torch.no_grad()``. Log-softmaxes
    keep it stable (no ``log 0`` when a probability underflows).

    >>> s = torch.tensor([[1.0, 2.0, 3.0]])
    >>> distillation_loss(s, s, temperature=2.0).item()      # a student that copies the teacher
    0.0
    >>> teacher = torch.tensor([[1.0, 9.0]]).log()            # at T = 2: softmax gives (1/4, 3/4)
    >>> round(distillation_loss(torch.zeros(1, 2), teacher, 2.0).item(), 4)   # 4 · KL((¼, ¾) ‖ (½, ½))
    0.5232
    """
    _check_float_tensor("student_logits", student_logits)
    _check_float_tensor("teacher_logits", teacher_logits)
    _check_number("temperature", temperature)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    if student_logits.dim() < 1 or student_logits.shape[-1] == 0:
        raise ValueError(f"student_logits must be (..., V) with V >= 1, got {tuple(student_logits.shape)}")
    T = float(temperature)
    log_p = torch.log_softmax(teacher_logits / T, dim=-1)  # (..., V): the softened teacher, in logs
    log_q = torch.log_softmax(student_logits / T, dim=-1)  # (..., V): the softened student
    kl_per_row = (log_p.exp() * (log_p - log_q)).sum(dim=-1)  # (...,): KL(p‖q) of each row
    return T**2 * kl_per_row.mean()


# ----------------------------------------------------------------------------------------------------
# Masked language modelling
# ----------------------------------------------------------------------------------------------------

def mask_draws(
    shape: tuple[int, ...] | torch.Size, vocab_size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random numbers ``mask_tokens`` uses, in the order it draws them: ``(select, action, random_ids)``.

    ``select`` and ``action`` are uniform in ``[0, 1)`` (float, ``shape``), ``random_ids`` uniform
    integers in ``[0, vocab_size)`` (long, ``shape``); all on the generator's device (CPU by default).
    Separated out so that an exercise can receive the same draws and be checked exactly.

    >>> select, action, random_ids = mask_draws((2, 3), 5, generator=torch.Generator().manual_seed(0))
    >>> tuple(select.shape), bool((random_ids < 5).all())
    ((2, 3), True)
    """
    _check_int("vocab_size", vocab_size)
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    device = generator.device if generator is not None else torch.device("cpu")
    shape = tuple(shape)
    select = torch.rand(shape, generator=generator, device=device)
    action = torch.rand(shape, generator=generator, device=device)
    random_ids = torch.randint(vocab_size, shape, generator=generator, device=device)
    return select, action, random_ids


def mask_tokens(
    input_ids: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    mask_prob: float = 0.15,
    special_ids: Iterable[int] = (),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking (Devlin et al. 2019): returns new ``(inputs, labels)``, both shaped like ``input_ids``.

    Every position whose id is not in ``special_ids`` is *selected* with probability ``mask_prob``.
    A selected position becomes ``mask_token_id`` with probability 0.8, a uniformly random id in
    ``[0, vocab_size)`` with probability 0.1, and stays unchanged with probability 0.1. ``labels`` holds
    the original id at selected positions and ``-100`` (ignored by the loss) everywhere else, so the
    model is graded only where something was hidden or might have been changed.

    Reproducible: the same ``generator`` state gives the same result (draws from ``mask_draws``).
    ``input_ids`` is never modified; the results are on its device.

    >>> ids = torch.tensor([[1, 5, 6, 7, 8, 2]])          # 1 and 2: special tokens, never selected
    >>> inputs, labels = mask_tokens(ids, mask_token_id=3, vocab_size=9, mask_prob=1.0,
    ...                              special_ids=(1, 2), generator=torch.Generator().manual_seed(0))
    >>> labels.tolist()                                      # every non-special position is graded
    [[-100, 5, 6, 7, 8, -100]]
    >>> inputs[0, 0].item(), inputs[0, -1].item()           # specials untouched
    (1, 2)
    """
    _check_tensor("input_ids", input_ids)
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool or input_ids.is_complex():
        raise TypeError(f"input_ids must be an integer tensor of token ids, got dtype {input_ids.dtype}")
    _check_int("vocab_size", vocab_size)
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    _check_int("mask_token_id", mask_token_id)
    if not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id must be in [0, vocab_size={vocab_size}), got {mask_token_id}")
    _check_number("mask_prob", mask_prob)
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob}")
    if isinstance(special_ids, (str, bytes)) or not isinstance(special_ids, Iterable):
        raise TypeError(f"special_ids must be a sequence of ints, got {type(special_ids).__name__}")
    special_ids = tuple(special_ids)
    for s in special_ids:
        _check_int("special_ids", s)
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= vocab_size):
        raise ValueError(f"input_ids must hold ids in [0, vocab_size={vocab_size}), got min "
                         f"{input_ids.min().item()} and max {input_ids.max().item()}")

    select, action, random_ids = (d.to(input_ids.device) for d in
                                  mask_draws(input_ids.shape, vocab_size, generator=generator))
    specials = torch.tensor(special_ids, dtype=input_ids.dtype, device=input_ids.device)
    is_special = torch.isin(input_ids, specials)
    selected = (select < mask_prob) & ~is_special
    to_mask = selected & (action < MASK_FRACTION)  # 80 %
    to_random = selected & (action >= MASK_FRACTION) & (action < MASK_FRACTION + RANDOM_FRACTION)  # 10 %
    # the remaining 10 % of the selected keep their token, but are still graded (their label is set)
    inputs = torch.where(to_random, random_ids.to(input_ids.dtype), input_ids)
    inputs = inputs.masked_fill(to_mask, mask_token_id)  # masked_fill returns a new tensor
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return inputs, labels


# --- Lecture 6: forward and reverse KL, fitted by gradient descent --------------------------------------
# A Gaussian q fitted to a two-peaked p behaves very differently depending on which KL is minimised
# (Bishop 2006, section 10.1.2 and figure 10.3; Murphy 2012, section 21.2.2). Distributions live on a
# grid of points so that every KL is a finite sum; they are handled as log-probabilities, because a
# narrow Gaussian underflows to exactly 0 far from its mean and KL(p‖q) would then read +inf.

def log_gaussian_on_grid(grid: torch.Tensor, mean: float | torch.Tensor,
                         std: float | torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``(..., G)`` of a Gaussian discretised on ``grid (G,)``: ``log_softmax`` of
    ``-(x - mean)² / (2 std²)`` over the grid, so the probabilities sum to exactly 1 on it.

    ``mean`` and ``std`` may be tensors (differentiable, for fitting), broadcast against a trailing grid
    dimension: ``mean (M, 1)`` and ``std (S, 1, 1)`` give ``(S, M, G)``, one distribution per pair.

    >>> grid = torch.tensor([-1.0, 0.0, 1.0])
    >>> log_gaussian_on_grid(grid, 0.0, 1.0).exp()          # weights e^-0.5 : 1 : e^-0.5, normalised
    tensor([0.2741, 0.4519, 0.2741])
    """
    _check_float_tensor("grid", grid)
    if grid.dim() != 1 or grid.numel() < 2:
        raise ValueError(f"grid must be 1-D with at least 2 points, got shape {tuple(grid.shape)}")
    std_t = torch.as_tensor(std, dtype=grid.dtype, device=grid.device)
    if (std_t <= 0).any():
        raise ValueError(f"std must be > 0, got min {std_t.min().item():.4g}")
    z = (grid - torch.as_tensor(mean, dtype=grid.dtype, device=grid.device)) / std_t  # (..., G)
    return torch.log_softmax(-0.5 * z**2, dim=-1)


def kl_divergence_from_logs(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """``KL(p‖q) = Σ p (log p - log q)`` over the last dimension, from log-probabilities: the same number
    as ``kl_divergence(p, q)``, but it stays finite when ``q`` is so small that it rounds to 0.

    >>> log_p = torch.log(torch.tensor([0.5, 0.5]))
    >>> log_q = torch.tensor([-200.0, 0.0])                 # q = (e^-200, 1): q₀ underflows in float32
    >>> round(kl_divergence_from_logs(log_p, log_q).item(), 4)     # 0.5 (log 0.5 + 200) + 0.5 log 0.5
    99.3069
    >>> kl_divergence(log_p.exp(), log_q.exp()).item()             # from the rounded probabilities
    inf
    """
    _check_float_tensor("log_p", log_p)
    _check_float_tensor("log_q", log_q)
    if log_p.dim() < 1 or log_p.shape != log_q.shape:
        raise ValueError(f"log_p and log_q must have the same shape (..., n), got {tuple(log_p.shape)} and "
                         f"{tuple(log_q.shape)}")
    p = log_p.exp()
    # where p is exactly 0 (log p = -inf) the term is 0 by the limit p log p -> 0, whatever log_q is
    terms = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    return terms.sum(dim=-1)


_DIRECTIONS = ("forward", "reverse")


def _kl_in_direction(log_target: torch.Tensor, log_q: torch.Tensor, direction: str) -> torch.Tensor:
    # forward: KL(p‖q), the expectation under the target; reverse: KL(q‖p), under the model
    if direction == "forward":
        return kl_divergence_from_logs(log_target.expand_as(log_q), log_q)
    return kl_divergence_from_logs(log_q, log_target.expand_as(log_q))


def _check_fit_inputs(log_target: object, grid: object, direction: object) -> None:
    _check_float_tensor("log_target", log_target)
    _check_float_tensor("grid", grid)
    if grid.dim() != 1 or log_target.shape != grid.shape:
        raise ValueError(f"log_target and grid must both be 1-D of the same length, got shapes "
                         f"{tuple(log_target.shape)} and {tuple(grid.shape)}")
    total = torch.logsumexp(log_target, dim=0).item()
    if not abs(total) < 1e-3:
        raise ValueError(f"log_target must be log-probabilities (exp sums to 1), got exp summing to "
                         f"{math.exp(total):.6g}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be 'forward' (KL(p‖q)) or 'reverse' (KL(q‖p)), got {direction!r}")


@dataclass
class GaussianFit:
    """The Gaussian ``q`` that gradient descent found, the KL it reached, and the path it took."""

    mean: float
    std: float
    kl: float
    direction: str
    path: list[tuple[float, float]] = field(default_factory=list)  # (mean, std) before every step


def fit_gaussian_kl(log_target: torch.Tensor, grid: torch.Tensor, direction: str, mean: float = 0.5,
                    std: float = 1.0, steps: int = 300, lr: float = 0.05) -> GaussianFit:
    """Fit a Gaussian ``q`` on ``grid (G,)`` to a target given by ``log_target (G,)`` (log-probabilities on
    the same grid), by ``steps`` Adam steps on its mean and log standard deviation, from ``(mean, std)``.

    - ``direction="forward"`` minimises ``KL(p‖q)``: an expectation under ``p``, so ``q`` pays dearly
      wherever ``p`` has mass and ``q`` has little. The best ``q`` covers all of ``p``: for a Gaussian
      family it matches ``p``'s mean and variance (*mean-covering*, or moment matching).
    - ``direction="reverse"`` minimises ``KL(q‖p)``: an expectation under ``q``, so ``q`` pays wherever it
      puts mass that ``p`` lacks, and nothing for ignoring part of ``p``. ``q`` settles on one peak
      (*mode-seeking*); which one depends on where it starts.

    >>> grid = torch.linspace(-5, 5, 101)
    >>> fit = fit_gaussian_kl(log_gaussian_on_grid(grid, 1.0, 0.8), grid, "reverse", mean=0.0, std=2.0)
    >>> round(fit.mean, 2), round(fit.std, 2), fit.kl < 1e-4      # one Gaussian: found exactly
    (1.0, 0.8, True)
    """
    _check_fit_inputs(log_target, grid, direction)
    check_positive_int("steps", steps)
    for name, value in (("std", std), ("lr", lr)):
        _check_number(name, value)
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    _check_number("mean", mean)
    target = log_target.detach()
    mu = torch.tensor(float(mean), dtype=grid.dtype, device=grid.device, requires_grad=True)
    log_std = torch.tensor(math.log(std), dtype=grid.dtype, device=grid.device, requires_grad=True)
    optimizer = torch.optim.Adam([mu, log_std], lr=lr)
    path = []
    for _ in range(steps):
        path.append((mu.item(), log_std.exp().item()))
        loss = _kl_in_direction(target, log_gaussian_on_grid(grid, mu, log_std.exp()), direction)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final = _kl_in_direction(target, log_gaussian_on_grid(grid, mu, log_std.exp()), direction).item()
    path.append((mu.item(), log_std.exp().item()))
    return GaussianFit(mean=mu.item(), std=log_std.exp().item(), kl=final, direction=direction, path=path)


def kl_landscape(log_target: torch.Tensor, grid: torch.Tensor, means: torch.Tensor, stds: torch.Tensor,
                 direction: str) -> torch.Tensor:
    """The KL ``(S, M)`` between the target and the Gaussian ``q`` with each mean of ``means (M,)`` and
    each standard deviation of ``stds (S,)``, in ``direction`` (``"forward"``: KL(p‖q), ``"reverse"``:
    KL(q‖p)): the surface that ``fit_gaussian_kl`` descends, to draw as a heatmap.

    >>> grid = torch.linspace(-4, 4, 81)
    >>> table = kl_landscape(log_gaussian_on_grid(grid, 1.0, 1.0), grid, torch.tensor([0.0, 1.0]),
    ...                      torch.tensor([1.0]), "forward")
    >>> table.shape, round(table[0, 1].item(), 6)           # zero where q is the target itself
    (torch.Size([1, 2]), 0.0)
    """
    _check_fit_inputs(log_target, grid, direction)
    for name, values in (("means", means), ("stds", stds)):
        _check_float_tensor(name, values)
        if values.dim() != 1 or values.numel() == 0:
            raise ValueError(f"{name} must be a non-empty 1-D tensor, got shape {tuple(values.shape)}")
    log_q = log_gaussian_on_grid(grid, means[None, :, None], stds[:, None, None])  # (S, M, G)
    return _kl_in_direction(log_target, log_q, direction)  # (S, M)


# --- Lecture 5: perplexity ----------------------------------------------------------------------------

def perplexity(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> float:
    """``exp`` of the mean cross-entropy over the positions whose target is not ``ignore_index``.

    ``logits (N, V)``, ``targets (N,)`` as in ``cross_entropy``. Perplexity reads a loss as a number of
    choices: a model that spreads its probability evenly over ``k`` tokens, whatever the right one is,
    has cross-entropy ``log k`` and perplexity ``k``; a uniform guess over the vocabulary scores ``V``, a
    perfect model 1. ``nan`` when every position is ignored.

    >>> round(perplexity(torch.zeros(3, 50), torch.tensor([4, 7, 9])), 4)     # uniform over 50 tokens
    50.0
    >>> round(perplexity(torch.tensor([[0.0, 0.0], [5.0, -5.0]]), torch.tensor([0, -100])), 4)   # only row 0
    2.0
    """
    return math.exp(cross_entropy(logits, targets, ignore_index=ignore_index).item())


# --- Lecture 7: CLIP's contrastive loss -----------------------------------------------------------------

def contrastive_loss(image_features: torch.Tensor, text_features: torch.Tensor,
                     temperature: float | torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric contrastive loss (Radford et al. 2021, "Learning Transferable Visual Models From
    Natural Language Supervision", Figure 3): in a batch of ``N`` matching (image, text) pairs, each image
    should pick its own text among the ``N`` texts, and each text its own image.

    Both feature sets ``(N, D)`` are L2-normalised, ``logits = img @ txtᵀ / temperature`` ``(N, N)`` (cosine
    similarities, sharpened), and the loss is the mean of ``CE(logits, arange(N))`` (images choose texts)
    and ``CE(logitsᵀ, arange(N))`` (texts choose images). ``temperature > 0`` is a float or a 0-d tensor
    (CLIP learns it: pass ``log_temperature.exp()``). A uniform guess scores ``log N``.

    >>> same = torch.eye(3)
    >>> round(contrastive_loss(same, same, temperature=1.0).item(), 4)   # -log(e / (e + 2)) both ways
    0.5514
    >>> round(contrastive_loss(torch.ones(4, 2), torch.ones(4, 2), 0.5).item(), 4)   # all alike: log 4
    1.3863
    """
    _check_float_tensor("image_features", image_features)
    _check_float_tensor("text_features", text_features)
    shape = image_features.shape
    if image_features.dim() != 2 or shape != text_features.shape or shape[0] < 1:
        raise ValueError(f"image_features and text_features must both have shape (N, D) with N >= 1, got "
                         f"{tuple(image_features.shape)} and {tuple(text_features.shape)}")
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"temperature must be one number, got a tensor of shape "
                             f"{tuple(temperature.shape)}")
        positive = bool(temperature.detach() > 0)
    else:
        _check_number("temperature", temperature)
        positive = temperature > 0
    if not positive:
        raise ValueError(f"temperature must be > 0, got {float(temperature)}")
    img = torch.nn.functional.normalize(image_features, dim=-1)  # (N, D), unit rows
    txt = torch.nn.functional.normalize(text_features, dim=-1)  # (N, D)
    logits = img @ txt.T / temperature  # (N, N): row i = image i against every text
    labels = torch.arange(len(logits), device=logits.device)  # the matching pairs sit on the diagonal
    return (torch.nn.functional.cross_entropy(logits, labels)
            + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
