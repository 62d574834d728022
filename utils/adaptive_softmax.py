"""The adaptive softmax (Grave et al. 2017, "Efficient softmax approximation for GPUs"), Lecture 9, Q42.

A language model's last layer scores every word of the vocabulary: ``V`` dot products of size ``d`` per
token, then a softmax over ``V``. With ``V`` in the tens of thousands that layer costs more than the rest
of a small model. But word frequencies follow Zipf's law: a few thousand words make up most of a text,
and the tens of thousands of others are each rare. The adaptive softmax spends its work accordingly:

- the **head** is an ordinary softmax over the ``cutoffs[0]`` most frequent words (the *shortlist*) plus
  one entry per **cluster** of rarer words, which stands for "the word is somewhere in this cluster";
- each cluster ``i`` has its own small softmax, the **tail** ``i``, over its words, computed from a
  *projection* of the hidden state to ``d / div_value**(i + 1)`` dimensions: rare words get less
  capacity, and their tail runs only for the tokens that need it.

So ``log p(w | x) = log p_head(w | x)`` for a shortlist word, and for a word of cluster ``i``
``log p(w | x) = log p_head(cluster i | x) + log p_tail_i(w | x)``: the probabilities still sum to 1 over
the whole vocabulary, and the loss needs the head for every token but a tail only for the tokens whose
target is in it (most tokens are shortlist words). Class ids must be sorted by frequency, 0 the most
frequent, as PyTorch's ``AdaptiveLogSoftmaxWithLoss`` also asks.

``AdaptiveSoftmax`` has the parameters of ``torch.nn.AdaptiveLogSoftmaxWithLoss`` (without a head bias,
PyTorch's default) under the same names (``head``, ``tail.{i}.0``, ``tail.{i}.1``), so a ``state_dict``
loads into either, and it computes the same numbers.

>>> torch.manual_seed(0) and None
>>> asm = AdaptiveSoftmax(in_features=8, n_classes=10, cutoffs=[4, 7], div_value=2.0)
>>> for name, p in asm.named_parameters():
...     print(name, tuple(p.shape))
head.weight (6, 8)
tail.0.0.weight (4, 8)
tail.0.1.weight (3, 4)
tail.1.0.weight (2, 8)
tail.1.1.weight (3, 2)
>>> x = torch.randn(3, 8)
>>> round(asm.log_prob(x).exp().sum(dim=1).tolist()[0], 5)        # a distribution over all 10 classes
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_positive_int

__all__ = ["AdaptiveSoftmax", "cluster_log_probs", "multiply_adds_per_token", "cluster_shares"]


def _check_cutoffs(cutoffs: object, n_classes: int) -> list[int]:
    if isinstance(cutoffs, (str, bytes)) or not isinstance(cutoffs, Sequence):
        raise TypeError(f"cutoffs must be a sequence of ints (e.g. [2000, 10000]), "
                        f"got {type(cutoffs).__name__}")
    cutoffs = list(cutoffs)
    if not cutoffs:
        raise ValueError("cutoffs must hold at least one cutoff (the size of the shortlist)")
    for c in cutoffs:
        if isinstance(c, bool) or not isinstance(c, int):
            raise TypeError(f"cutoffs must hold ints, got {c!r} ({type(c).__name__})")
    if any(b <= a for a, b in zip(cutoffs, cutoffs[1:], strict=False)):
        raise ValueError(f"cutoffs must be strictly increasing, got {cutoffs}")
    if cutoffs[0] < 1 or cutoffs[-1] > n_classes - 1:
        raise ValueError(f"cutoffs must lie between 1 and n_classes - 1 = {n_classes - 1} (every cluster "
                         f"holds at least one class), got {cutoffs}")
    return cutoffs


def cluster_log_probs(head_log_probs: torch.Tensor, tail_logits: torch.Tensor,
                      cluster_index: int) -> torch.Tensor:
    """``log p(w | x)`` for every word ``w`` of one cluster, ``(N, cluster size)``: the head's
    log-probability of the cluster's entry (column ``cluster_index`` of ``head_log_probs (N, head_size)``)
    plus the tail's own log-softmax over its words (``tail_logits (N, cluster size)``).

    >>> head = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))          # two shortlist words, one cluster
    >>> cluster_log_probs(head, torch.log(torch.tensor([[0.75, 0.25]])), cluster_index=2).exp()
    tensor([[0.1500, 0.0500]])
    """
    if not isinstance(head_log_probs, torch.Tensor) or not isinstance(tail_logits, torch.Tensor):
        raise TypeError("head_log_probs and tail_logits must be torch.Tensors")
    if head_log_probs.dim() != 2 or tail_logits.dim() != 2 or head_log_probs.shape[0] != tail_logits.shape[0]:
        raise ValueError(f"head_log_probs (N, head_size) and tail_logits (N, cluster size) must be 2-D with "
                         f"the same N, got {tuple(head_log_probs.shape)} and {tuple(tail_logits.shape)}")
    if isinstance(cluster_index, bool) or not isinstance(cluster_index, int):
        raise TypeError(f"cluster_index must be an int, got {type(cluster_index).__name__}")
    if not 0 <= cluster_index < head_log_probs.shape[1]:
        raise ValueError(f"cluster_index must be a column of head_log_probs, in "
                         f"[0, {head_log_probs.shape[1]}), got {cluster_index}")
    # p(w | x) = p(cluster | x) * p(w | cluster, x): a product of probabilities, a sum of logs
    return head_log_probs[:, cluster_index : cluster_index + 1] + F.log_softmax(tail_logits, dim=1)


class AdaptiveSoftmax(nn.Module):
    """An adaptive softmax output layer over ``n_classes`` classes sorted by frequency (0 = most frequent).

    ``cutoffs`` (strictly increasing, each in ``1 .. n_classes - 1``) split the classes into the shortlist
    ``[0, cutoffs[0])`` and clusters ``[cutoffs[i], cutoffs[i + 1])`` (the last ending at ``n_classes``);
    cluster ``i``'s projection has ``in_features // div_value**(i + 1)`` dimensions.

    - ``head``: ``nn.Linear(in_features, cutoffs[0] + n_clusters, bias=False)``;
    - ``tail[i]``: ``nn.Sequential(nn.Linear(in_features, hidden_i, bias=False),
      nn.Linear(hidden_i, cluster size, bias=False))``;
    - ``log_prob(x (N, in_features)) -> (N, n_classes)``: every class's log-probability;
    - ``forward(x (N, in_features), target (N,)) -> (target_log_prob (N,), loss)``, ``loss`` the mean of
      ``-target_log_prob``; each tail runs only on the rows whose target is in its cluster.

    >>> asm = AdaptiveSoftmax(16, 100, cutoffs=[10, 50])
    >>> x, target = torch.randn(4, 16), torch.tensor([0, 9, 10, 99])
    >>> target_log_prob, loss = asm(x, target)
    >>> torch.allclose(target_log_prob, asm.log_prob(x).gather(1, target[:, None])[:, 0])
    True
    """

    def __init__(self, in_features: int, n_classes: int, cutoffs: Sequence[int],
                 div_value: float = 4.0) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("n_classes", n_classes)
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2 (a shortlist and a cluster), got {n_classes}")
        cutoffs = _check_cutoffs(cutoffs, n_classes)
        if isinstance(div_value, bool) or not isinstance(div_value, (int, float)):
            raise TypeError(f"div_value must be a number, got {type(div_value).__name__}")
        if not div_value > 0 or math.isinf(div_value):
            raise ValueError(f"div_value must be a finite number > 0, got {div_value}")
        self.in_features, self.n_classes, self.div_value = in_features, n_classes, float(div_value)
        self.cutoffs = cutoffs + [n_classes]  # as PyTorch stores them: every boundary, the last one included
        self.shortlist_size = cutoffs[0]
        self.n_clusters = len(cutoffs)
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = nn.Linear(in_features, self.head_size, bias=False)
        self.tail = nn.ModuleList()
        for i in range(self.n_clusters):
            hidden = int(in_features // (self.div_value ** (i + 1)))  # rarer clusters, smaller projections
            size = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(nn.Sequential(nn.Linear(in_features, hidden, bias=False),
                                           nn.Linear(hidden, size, bias=False)))

    def _check_input(self, x: object) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError("x must be a floating-point torch.Tensor (N, in_features)")
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape (N, in_features={self.in_features}), got {tuple(x.shape)}")

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``x (N, in_features)`` -> ``(N, n_classes)``: ``log p(class | x)`` for every class."""
        self._check_input(x)
        head = F.log_softmax(self.head(x), dim=1)  # (N, shortlist + clusters)
        parts = [head[:, : self.shortlist_size]]  # the shortlist's words: the head alone
        for i, tail in enumerate(self.tail):
            parts.append(cluster_log_probs(head, tail(x), self.shortlist_size + i))  # (N, cluster size)
        return torch.cat(parts, dim=1)  # (N, n_classes)

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(target_log_prob (N,), loss)`` for ``x (N, in_features)`` and class ids ``target (N,)``."""
        self._check_input(x)
        if not isinstance(target, torch.Tensor) or target.dtype != torch.long:
            raise TypeError("target must be a LongTensor of class ids (N,)")
        if target.shape != x.shape[:1]:
            raise ValueError(f"target must have shape (N,) = {tuple(x.shape[:1])}, got {tuple(target.shape)}")
        if target.numel() and (target.min() < 0 or target.max() >= self.n_classes):
            raise ValueError(f"target must hold class ids in [0, n_classes={self.n_classes}), got min "
                             f"{target.min().item()} and max {target.max().item()}")
        head = F.log_softmax(self.head(x), dim=1)  # (N, head_size): every token needs the head
        head_column = target.clone()  # the head entry each token's probability goes through
        tail_part = x.new_zeros(target.shape)  # log p_tail(w | cluster, x); 0 for shortlist words
        for i, tail in enumerate(self.tail):
            low, high = self.cutoffs[i], self.cutoffs[i + 1]
            rows = ((target >= low) & (target < high)).nonzero().flatten()  # (n_i,) tokens of cluster i
            if rows.numel() == 0:
                continue  # no token needs this tail: it costs nothing
            tail_log_probs = F.log_softmax(tail(x[rows]), dim=1)  # (n_i, cluster size), only those rows
            picked = tail_log_probs.gather(1, (target[rows] - low)[:, None])[:, 0]  # (n_i,)
            tail_part = tail_part.index_put((rows,), picked)
            head_column[rows] = self.shortlist_size + i
        target_log_prob = head.gather(1, head_column[:, None])[:, 0] + tail_part  # (N,)
        return target_log_prob, -target_log_prob.mean()


def cluster_shares(counts: torch.Tensor, cutoffs: Sequence[int]) -> torch.Tensor:
    """The share of tokens whose class falls in the shortlist and in each cluster, ``(1 + n_clusters,)``,
    from per-class token ``counts (n_classes,)`` (e.g. ``torch.bincount`` of a corpus).

    >>> cluster_shares(torch.tensor([5.0, 3.0, 1.0, 1.0]), cutoffs=[2, 3])
    tensor([0.8000, 0.1000, 0.1000])
    """
    if not isinstance(counts, torch.Tensor) or counts.dim() != 1:
        raise TypeError("counts must be a 1-D torch.Tensor (one count per class)")
    bounds = [0, *_check_cutoffs(cutoffs, len(counts)), len(counts)]
    counts = counts.double()
    totals = torch.stack([counts[a:b].sum() for a, b in zip(bounds, bounds[1:], strict=False)])
    return (totals / counts.sum()).float()


def multiply_adds_per_token(in_features: int, n_classes: int, cutoffs: Sequence[int] | None = None,
                            div_value: float = 4.0,
                            shares: Sequence[float] | torch.Tensor | None = None) -> float:
    """The expected multiply-adds per token of an output layer (the matrix products, which dominate):
    a full softmax (``cutoffs=None``) costs ``in_features · n_classes``; an adaptive softmax costs its head
    for every token plus, for cluster ``i``, ``in_features · hidden_i + hidden_i · size_i`` for the share
    ``shares[1 + i]`` of tokens whose target is in it (``shares`` as ``cluster_shares`` returns them).

    >>> multiply_adds_per_token(64, 1000)
    64000.0
    >>> multiply_adds_per_token(64, 1000, cutoffs=[100], shares=[0.9, 0.1])  # 64*101 + .1*(64*16 + 16*900)
    8006.4
    """
    check_positive_int("in_features", in_features)
    check_positive_int("n_classes", n_classes)
    if cutoffs is None:
        return float(in_features * n_classes)
    cuts = _check_cutoffs(cutoffs, n_classes)
    if shares is None or len(shares) != len(cuts) + 1:
        raise ValueError(f"shares must give the share of tokens of the shortlist and of each of the "
                         f"{len(cuts)} clusters ({len(cuts) + 1} numbers)")
    bounds = cuts + [n_classes]
    cost = float(in_features * (cuts[0] + len(cuts)))
    for i in range(len(cuts)):
        hidden = int(in_features // (div_value ** (i + 1)))
        cost += float(shares[1 + i]) * (in_features * hidden + hidden * (bounds[i + 1] - bounds[i]))
    return cost
