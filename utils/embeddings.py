"""Embedding geometry (Lecture 2, Q10): cosine similarity, nearest neighbours, a 2-D map of a table.

An embedding table ``E (V, C)`` holds one learned row per token; looking a token up is the same as
multiplying its one-hot vector by ``E``. Two tokens are "similar" when their rows point the same way,
which is what cosine similarity measures: the dot product of the rows divided by their lengths, so
that a row's length (which training also changes, e.g. with a token's frequency) does not count.

>>> E = torch.tensor([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0]])
>>> cosine_similarity_matrix(E).round(decimals=3)
tensor([[1.0000, 0.9990, 0.0000],
        [0.9990, 1.0000, 0.0500],
        [0.0000, 0.0500, 1.0000]])
>>> nearest_neighbours(E, 0, k=1)
(tensor([1]), tensor([0.9988]))

``project_2d`` draws a table on paper: principal component analysis (PCA), the two directions along
which the rows vary most (Pearson 1901), computed by ``utils.linalg.pca`` from the eigenvectors of the
covariance (Lecture 6 builds it). ``embedding_map`` plots the result with one colour per word class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes

from .linalg import pca

__all__ = [
    "cosine_similarity_matrix", "nearest_neighbours", "principal_axes", "project_2d", "spread_labels",
    "embedding_map", "neighbour_overlap", "association", "WEATResult", "weat",
]


def _check_table(name: str, E: object, min_rows: int = 1, min_cols: int = 1) -> None:
    if not isinstance(E, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (rows = vectors), got {type(E).__name__}")
    if not E.is_floating_point():
        raise TypeError(f"{name} must hold floating-point numbers, got dtype {E.dtype}")
    if E.dim() != 2 or E.shape[0] < min_rows or E.shape[1] < min_cols:
        raise ValueError(f"{name} must be a 2-D table (N, C) with N >= {min_rows} rows and C >= {min_cols} "
                         f"columns, got shape {tuple(E.shape)}")


def cosine_similarity_matrix(A: torch.Tensor, B: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine similarity of every row of ``A (N, C)`` with every row of ``B (M, C)`` (default ``A``):
    ``S[i, j] = A[i] · B[j] / (|A[i]| |B[j]|)``, a ``(N, M)`` table of numbers in [-1, 1].

    A zero row has no direction: its similarity to everything is 0 (as in ``F.cosine_similarity``).

    >>> cosine_similarity_matrix(torch.tensor([[3.0, 4.0]]), torch.tensor([[6.0, 8.0], [-4.0, 3.0]]))
    tensor([[1., 0.]])
    """
    _check_table("A", A)
    B = A if B is None else B
    _check_table("B", B)
    if B.shape[1] != A.shape[1]:
        raise ValueError(f"A and B must have the same number of columns, got {A.shape[1]} and {B.shape[1]}")
    # Divide each row by its length first (eps keeps a zero row at zero), then one matrix product
    # computes every dot product at once.
    A_unit = F.normalize(A, dim=-1, eps=1e-8)  # (N, C), rows of length 1
    B_unit = F.normalize(B, dim=-1, eps=1e-8)  # (M, C)
    return (A_unit @ B_unit.T).clamp(-1.0, 1.0)  # (N, C) @ (C, M) -> (N, M)


def nearest_neighbours(E: torch.Tensor, index: int, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` rows of ``E (N, C)`` most similar (by cosine) to row ``index``, itself excluded.

    Returns ``(indices LongTensor (k,), similarities (k,))``, most similar first.

    >>> E = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    >>> idx, sim = nearest_neighbours(E, 0, k=3)
    >>> idx.tolist(), [round(x, 3) for x in sim.tolist()]
    ([2, 1, 3], [0.707, 0.0, -1.0])
    """
    _check_table("E", E, min_rows=2)
    N = E.shape[0]
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError(f"index must be an int (a row of E), got {type(index).__name__}")
    if not -N <= index < N:
        raise ValueError(f"index must be a row of E, in [-{N}, {N}), got {index}")
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= k <= N - 1:
        raise ValueError(f"k must be between 1 and {N - 1} (the other rows of E), got {k}")
    index = index % N
    similarities = cosine_similarity_matrix(E[index : index + 1], E)[0]  # (1, N) -> (N,)
    similarities[index] = float("-inf")  # a word is not its own neighbour
    top = torch.topk(similarities, k)  # sorted, largest first
    return top.indices, top.values


def principal_axes(E: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` directions along which the rows of ``E (N, C)`` vary most, and their share of the variance.

    Returns ``(components (k, C), explained_variance_ratio (k,))``: orthonormal rows, largest variance
    first. This is principal component analysis, ``utils.linalg.pca`` (Lecture 6): the components are the
    top eigenvectors of the covariance of the rows, each eigenvalue the variance along its direction, and
    the ratio divides it by the total variance (the sum of all eigenvalues, the trace of the covariance).
    An eigenvector's sign is arbitrary, so each component has its entry of largest magnitude positive:
    the same table always gives the same picture.

    >>> X = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    >>> components, ratio = principal_axes(X, k=2)
    >>> components.tolist(), [round(x, 4) for x in ratio.tolist()]
    ([[1.0, 0.0], [0.0, 1.0]], [0.8, 0.2])
    """
    _check_table("E", E, min_rows=2)
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= k <= min(E.shape):
        raise ValueError(f"k must be between 1 and min(N, C) = {min(E.shape)}, got {k}")
    components, variance, _ = pca(E, k)  # (k, C), (k,)
    total = E.var(dim=0).sum()  # the trace of the covariance: the variance summed over every direction
    return components, variance / total.clamp_min(torch.finfo(E.dtype).tiny)


def project_2d(E: torch.Tensor) -> torch.Tensor:
    """Coordinates ``(N, 2)`` of the rows of ``E (N, C)`` on its first two principal axes (PCA).

    The map keeps as much of the spread of the rows as any flat picture can; when the rows lie in a
    plane it keeps their distances exactly (the picture is the plane, possibly rotated or mirrored).

    >>> E = torch.tensor([[0.0, 0.0, 5.0], [4.0, 0.0, 5.0], [2.0, 1.0, 5.0], [2.0, -1.0, 5.0]])
    >>> project_2d(E).round(decimals=4)       # four points in the plane z = 5: the plane itself
    tensor([[-2.,  0.],
            [ 2.,  0.],
            [ 0.,  1.],
            [ 0., -1.]])
    """
    _check_table("E", E, min_rows=2)
    k = min(2, *E.shape)
    _, _, coordinates = pca(E, k)  # (N, k): the centred rows along the top k components
    if k < 2:  # C = 1: the second coordinate is 0
        coordinates = torch.cat([coordinates, coordinates.new_zeros(len(E), 2 - k)], dim=1)  # (N, 2)
    return coordinates


def spread_labels(points, min_dx: float = 0.09, min_dy: float = 0.035) -> torch.Tensor:
    """Positions ``(N, 2)`` for the labels of ``points (N, 2)`` such that no two labels overlap.

    Words that share a place on a map (a tight cluster) would print on top of each other. Each label
    starts at its point and, in order of the points from top to bottom, moves down until it is at least
    ``min_dy`` (vertically) or ``min_dx`` (horizontally) away from every label already placed; both are
    fractions of the points' span.

    >>> at = spread_labels(torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]))   # two points coincide
    >>> [[round(v, 3) for v in row] for row in at.tolist()]
    [[0.0, 1.0], [0.0, 0.965], [1.0, 0.0]]
    """
    points = torch.as_tensor(points).detach().float().cpu()
    if points.dim() != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (N, 2), got shape {tuple(points.shape)}")
    span = (points.max(dim=0).values - points.min(dim=0).values).clamp_min(1e-12) if len(points) else None
    placed: list[torch.Tensor] = []
    out = points.clone()
    for i in sorted(range(len(points)), key=lambda j: (-points[j, 1].item(), points[j, 0].item())):
        position = points[i].clone()
        gap_x, gap_y = min_dx * span[0] * (1 - 1e-4), min_dy * span[1] * (1 - 1e-4)  # tolerance for rounding
        while any(abs(position[0] - q[0]) < gap_x and abs(position[1] - q[1]) < gap_y for q in placed):
            position[1] -= min_dy * span[1]  # one line down
        placed.append(position)
        out[i] = position
    return out


def embedding_map(
    points,
    labels: Sequence[str],
    groups: Sequence[str] | None = None,
    highlight: str | None = None,
    neighbours: Sequence[str] = (),
    ax: Axes | None = None,
    title: str | None = None,
    group_order: Sequence[str] | None = None,
) -> Axes:
    """Scatter 2-D ``points (N, 2)`` with each word's label, one colour per group (e.g. word class).

    ``highlight`` draws one word large, with lines to each word in ``neighbours``; the other words fade,
    so a widget can show "this word and its nearest neighbours". Labels of points that coincide are
    stacked (``spread_labels``) with a thin line back to their point. ``group_order`` fixes the order of
    the colours and of the legend (default: order of first appearance).
    """
    points = torch.as_tensor(points).detach().float().cpu()
    if points.dim() != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (N, 2), got shape {tuple(points.shape)}")
    labels = list(labels)
    if len(labels) != len(points):
        raise ValueError(f"labels must have one entry per point ({len(points)}), got {len(labels)}")
    groups = ["words"] * len(labels) if groups is None else list(groups)
    if len(groups) != len(points):
        raise ValueError(f"groups must have one entry per point ({len(points)}), got {len(groups)}")
    if highlight is not None and highlight not in labels:
        raise ValueError(f"highlight must be one of labels, got {highlight!r}")
    unknown = [w for w in neighbours if w not in labels]
    if unknown:
        raise ValueError(f"neighbours must be labels, got unknown {unknown}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    order = list(dict.fromkeys(groups)) if group_order is None else list(group_order)
    missing = set(groups) - set(order)
    if missing:
        raise ValueError(f"group_order must list every group, missing {sorted(missing)}")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    focus = {highlight, *neighbours} if highlight is not None else set(labels)
    for g, group in enumerate(order):
        rows = [i for i, name in enumerate(groups) if name == group]
        alpha = [1.0 if labels[i] in focus else 0.25 for i in rows]
        ax.scatter(points[rows, 0], points[rows, 1], s=30, color=colours[g % len(colours)], alpha=alpha,
                   label=group)
    label_at = spread_labels(points)  # (N, 2)
    low, high = torch.minimum(points.min(0).values, label_at.min(0).values), points.max(0).values
    span = (high - low).clamp_min(1e-12)  # (2,)
    shift = 0.015 * span[0].item()  # labels start just right of their point
    for (x, y), (lx, ly), word in zip(points.tolist(), label_at.tolist(), labels, strict=True):
        ax.text(lx + shift, ly, word, fontsize=8, alpha=1.0 if word in focus else 0.35, va="center")
        if (lx, ly) != (x, y):  # a stacked label: a thin leader line back to its point
            ax.plot([x, lx + shift], [y, ly], color="#bbbbbb", linewidth=0.5, zorder=0)
    ax.set_xlim(low[0].item() - 0.05 * span[0].item(), high[0].item() + 0.15 * span[0].item())  # text room
    ax.set_ylim(low[1].item() - 0.05 * span[1].item(), high[1].item() + 0.05 * span[1].item())
    if highlight is not None:
        centre = points[labels.index(highlight)]
        for word in neighbours:
            other = points[labels.index(word)]
            ax.plot([centre[0], other[0]], [centre[1], other[1]], color="grey", linewidth=0.8, zorder=0,
                    gid="neighbour")
        ax.scatter([centre[0]], [centre[1]], s=180, facecolors="none", edgecolors="black", linewidths=1.5)
    ax.legend(fontsize=8, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("principal axis 1")
    ax.set_ylabel("principal axis 2")
    if title:
        ax.set_title(title)
    return ax


# --- Lecture 6: how much of the neighbourhood survives a compression ------------------------------------

def neighbour_overlap(A: torch.Tensor, B: torch.Tensor, k: int = 5) -> float:
    """The mean share of each row's ``k`` nearest neighbours (by cosine) that two tables ``A (N, C)`` and
    ``B (N, C')`` agree on, row ``i`` of one standing for the same word as row ``i`` of the other: 1.0 when
    every word keeps its neighbours (e.g. ``B`` is ``A`` rebuilt from its principal components), about
    ``k / (N - 1)`` for unrelated tables.

    >>> A = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> neighbour_overlap(A, A, k=1), neighbour_overlap(A, A[[0, 2, 1, 3]], k=1)   # rows 1 and 2 swapped
    (1.0, 0.0)
    """
    _check_table("A", A, min_rows=2)
    _check_table("B", B, min_rows=2)
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"A and B must have one row per word each (the same N), got {A.shape[0]} and "
                         f"{B.shape[0]}")
    N = A.shape[0]
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= k <= N - 1:
        raise ValueError(f"k must be between 1 and {N - 1} (the other rows), got {k}")
    def top_k(E: torch.Tensor) -> torch.Tensor:  # (N, k): every row's k nearest others, as nearest_neighbours
        S = cosine_similarity_matrix(E)  # (N, N)
        S.fill_diagonal_(float("-inf"))  # a word is not its own neighbour
        return S.topk(k, dim=1).indices

    in_a = F.one_hot(top_k(A), N).sum(dim=1)  # (N, k) -> (N, k, N) -> (N, N): 1 where j is a neighbour of i
    in_b = F.one_hot(top_k(B), N).sum(dim=1)
    return (in_a * in_b).sum().item() / (N * k)  # neighbours that both tables list, as a share of N·k


# --- Lecture 9 (Q45): the Word Embedding Association Test (Caliskan et al. 2017) -------------------------

def association(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``s(w, A, B) = mean_a cos(w, a) − mean_b cos(w, b)`` for every row ``w`` of ``W (n, C)``: how much
    closer a word's vector is to the attribute words ``A (na, C)`` than to ``B (nb, C)`` (Caliskan et al.
    2017, "Semantics derived automatically from language corpora contain human-like biases").

    >>> association(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
    tensor([1.])
    """
    for name, value in (("W", W), ("A", A), ("B", B)):
        _check_table(name, value)
    return cosine_similarity_matrix(W, A).mean(dim=1) - cosine_similarity_matrix(W, B).mean(dim=1)


@dataclass(frozen=True)
class WEATResult:
    """``statistic``: ``Σ_x s(x, A, B) − Σ_y s(y, A, B)``; ``effect_size``: ``(mean_x s − mean_y s) /
    std_{w ∈ X ∪ Y} s(w)`` (sample standard deviation), Cohen's d in [-2, 2]; ``p_value``: the share of
    the equal-size splits of ``X ∪ Y`` whose statistic is at least the observed one (the one-sided
    permutation test, exact: every split is counted)."""

    statistic: float
    effect_size: float
    p_value: float


def weat(X: torch.Tensor, Y: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> WEATResult:
    """The Word Embedding Association Test of target words ``X``, ``Y`` (rows: their vectors, the same
    number of each) against attribute words ``A``, ``B``. A positive statistic: ``X`` is closer to ``A``
    (and ``Y`` to ``B``) than the other way round. See ``WEATResult``.

    >>> X, Y = torch.tensor([[1.0, 0.1], [1.0, 0.2]]), torch.tensor([[0.1, 1.0], [0.2, 1.0]])
    >>> A, B = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    >>> result = weat(X, Y, A, B)
    >>> result.statistic > 0, round(result.p_value, 3)               # 1 of the 6 splits is as extreme
    (True, 0.167)
    """
    for name, value in (("X", X), ("Y", Y), ("A", A), ("B", B)):
        _check_table(name, value)
    if len(X) != len(Y) or len(X) < 2:
        raise ValueError(f"X and Y must hold the same number (>= 2) of target words, "
                         f"got {len(X)} and {len(Y)}")
    s = association(torch.cat([X, Y]).double(), A.double(), B.double())  # (2n,)
    n = len(X)
    statistic = (s[:n].sum() - s[n:].sum()).item()
    effect = ((s[:n].mean() - s[n:].mean()) / s.std()).item()
    total = s.sum()
    splits = torch.combinations(torch.arange(2 * n), r=n)  # (C(2n, n), n): every choice of the "X" half
    permuted = 2 * s[splits].sum(dim=1) - total  # Σ_x' s − Σ_y' s for every split
    p_value = (permuted >= statistic - 1e-12).double().mean().item()
    return WEATResult(statistic, effect, p_value)
