"""Memorisation of secrets (Lecture 10, Q50): the *exposure* of a planted canary (Carlini et al. 2019).

Plant a random secret, a *canary* ("the pin of abelo is 3 1 4 1"), in a model's training data, train, then
ask how the model ranks the true secret among every secret it could have been: all ``10^k`` pins of ``k``
digits. If it ranks the true one first, the model has memorised it and anyone who can query the model can
extract it by trying the likeliest pins. Carlini et al. define the exposure

    exposure = log2 |R| − log2 rank(canary)

with ``R`` the candidate space and rank 1 for the most likely: it is 0 for the least likely, about 1.44
(= 1 / ln 2) on average for a canary the model knows nothing about, and ``log2 |R|`` (13.3 bits for
four digits) when it is ranked first.

>>> exposure(torch.tensor([-3.0, -1.0, -2.0, -4.0]), true_index=1)      # ranked first of 4: log2 4
2.0
"""

from __future__ import annotations

import math

import torch

from ._validation import check_positive_int

__all__ = ["exposure", "candidate_log_probs"]


def exposure(candidate_log_probs: torch.Tensor, true_index: int) -> float:
    """``log2 |R| − log2 rank`` of candidate ``true_index`` among ``candidate_log_probs (|R|,)``; the rank
    counts 1 plus the candidates strictly more likely (ties are resolved in the canary's favour).

    >>> round(exposure(torch.tensor([0.0, 0.0, -1.0, -1.0]), true_index=2), 6)     # rank 3 of 4: log2(4/3)
    0.415037
    """
    if not isinstance(candidate_log_probs, torch.Tensor) or candidate_log_probs.dim() != 1:
        raise ValueError("candidate_log_probs must be a 1-D tensor, one log-probability per candidate")
    n = candidate_log_probs.numel()
    if isinstance(true_index, bool) or not isinstance(true_index, int) or not 0 <= true_index < n:
        raise ValueError(f"true_index must be an int in [0, {n}), got {true_index!r}")
    rank = 1 + int((candidate_log_probs > candidate_log_probs[true_index]).sum())
    return math.log2(n) - math.log2(rank)


@torch.no_grad()
def candidate_log_probs(model: torch.nn.Module, prefix: torch.Tensor, digit_ids: list[int],
                        n_digits: int) -> torch.Tensor:
    """``log p(d1 .. dk | prefix)`` under ``model`` (ids ``(B, T)`` -> logits ``(B, T, V)``) for every one of
    the ``len(digit_ids)^k`` candidates, in lexicographic order (candidate ``i`` is ``i`` written in base
    ``len(digit_ids)``, most significant digit first). ``prefix`` is ``(1, T)``.

    Computed level by level: the ``10^(j-1)`` prefixes of length ``j - 1`` are extended together, so the
    model runs on ``1 + 10 + ... + 10^(k-1)`` rows instead of ``10^k`` (a digit tree).
    """
    check_positive_int("n_digits", n_digits)
    if not isinstance(prefix, torch.Tensor) or prefix.dim() != 2 or prefix.shape[0] != 1:
        raise ValueError("prefix must be a LongTensor (1, T)")
    device = next(model.parameters()).device
    digits = torch.tensor(digit_ids, device=device)  # (D,)
    rows, scores = prefix.to(device), torch.zeros(1, dtype=torch.float64, device=device)  # (1, T), (1,)
    was_training = model.training
    model.eval()
    try:
        for _ in range(n_digits):
            log_p = torch.log_softmax(model(rows)[:, -1].double(), dim=-1)[:, digits]  # (N, D)
            scores = (scores[:, None] + log_p).reshape(-1)  # (N * D,): each row extended by each digit
            rows = torch.cat([rows.repeat_interleave(len(digit_ids), dim=0),
                              digits.repeat(rows.shape[0])[:, None]], dim=1)  # (N * D, T + 1)
    finally:
        model.train(was_training)
    return scores.cpu()
