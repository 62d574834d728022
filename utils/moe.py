"""Mixture of experts (Lecture 8, Q37): a sparse MLP layer with top-k routing and the balancing loss.

A mixture-of-experts layer (Shazeer et al. 2017) replaces a transformer's one MLP by ``n_experts``
MLPs and a small **router** (the gate). For each token the router scores every expert and only the
``top_k`` best run; their outputs are mixed with weights from a softmax over those ``top_k`` scores
(Mixtral, Jiang et al. 2024). The layer has ``n_experts`` times the parameters of one MLP, but each
token pays for ``top_k`` of them: capacity grows without the compute per token growing.

Routers left alone tend to send most tokens to a few experts (those get trained more, so they win more
often). The **load-balancing loss** of the Switch Transformer (Fedus et al. 2022, eq. 4) pushes back:
``n_experts · Σᵢ fᵢ · Pᵢ`` with ``fᵢ`` the share of tokens whose first choice is expert ``i`` and ``Pᵢ``
the mean router probability of ``i``. It is 1 when the routing is even and ``n_experts`` when every
token goes to one expert with certainty.

>>> layer = MoELayer(d_model=8, d_hidden=16, n_experts=4, top_k=2)
>>> y, info = layer(torch.randn(2, 5, 8))
>>> tuple(y.shape), tuple(info["router_probs"].shape), tuple(info["expert_index"].shape)
((2, 5, 8), (10, 4), (10, 2))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_positive_int

__all__ = ["expert_mlp", "top_k_gating", "load_balancing_loss", "MoELayer", "expert_usage",
           "moe_parameter_counts", "SparseTransformerShape", "MIXTRAL_8X7B"]


def expert_mlp(d_model: int, d_hidden: int) -> nn.Sequential:
    """One expert: the transformer's position-wise MLP ``d_model -> d_hidden -> d_model`` with GELU
    (a dense layer of the same width is the baseline an MoE is compared with)."""
    check_positive_int("d_model", d_model)
    check_positive_int("d_hidden", d_hidden)
    return nn.Sequential(nn.Linear(d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_model))


def top_k_gating(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixtral's routing for router ``logits (N, E)``: the ``k`` experts with the largest logits, largest
    first, and their weights, a softmax over those ``k`` logits only. Returns ``(weights (N, k),
    expert_index (N, k))``; every row of weights sums to 1.

    >>> weights, index = top_k_gating(torch.tensor([[1.0, 3.0, 0.0, 3.0 - 0.6931]]), k=2)
    >>> index.tolist(), [round(w, 3) for w in weights[0].tolist()]
    ([[1, 3]], [0.667, 0.333])
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() != 2:
        raise TypeError("logits must be a floating-point tensor (N, n_experts)")
    check_positive_int("k", k)
    if k > logits.shape[1]:
        raise ValueError(f"k must be <= n_experts ({logits.shape[1]}), got {k}")
    top_logits, expert_index = logits.topk(k, dim=-1)  # (N, k), sorted: largest first
    return F.softmax(top_logits, dim=-1), expert_index


def load_balancing_loss(router_probs: torch.Tensor, expert_index: torch.Tensor) -> torch.Tensor:
    """Switch Transformer's auxiliary loss ``n_experts · Σᵢ fᵢ Pᵢ`` (Fedus et al. 2022, eq. 4):
    ``router_probs (N, E)`` (softmax over all experts), ``expert_index (N, k)`` (first choice in column 0).

    ``fᵢ`` (a count) has no gradient; the gradient flows through ``Pᵢ``, lowering the probability of the
    experts that already receive more than their share of tokens.

    >>> even = torch.full((4, 2), 0.5)                       # the router cannot tell the experts apart
    >>> load_balancing_loss(even, torch.tensor([[0], [1], [0], [1]])).item()
    1.0
    >>> load_balancing_loss(torch.tensor([[1.0, 0.0]] * 4), torch.zeros(4, 1, dtype=torch.long)).item()
    2.0
    """
    if router_probs.dim() != 2 or expert_index.dim() != 2 or len(router_probs) != len(expert_index):
        raise ValueError(f"router_probs must be (N, E) and expert_index (N, k), got "
                         f"{tuple(router_probs.shape)} and {tuple(expert_index.shape)}")
    n_experts = router_probs.shape[1]
    f = F.one_hot(expert_index[:, 0], n_experts).to(router_probs.dtype).mean(dim=0)  # (E,) share of tokens
    P = router_probs.mean(dim=0)  # (E,) mean router probability
    return n_experts * (f * P).sum()


class MoELayer(nn.Module):
    """A sparse mixture-of-experts MLP: ``forward(x (B, T, d_model)) -> (y (B, T, d_model), info)``.

    Submodules: ``gate = nn.Linear(d_model, n_experts, bias=False)`` (the router) and ``experts``, an
    ``nn.ModuleList`` of ``expert_mlp(d_model, d_hidden)``. Each token runs through its ``top_k``
    experts (``top_k_gating``), and ``y`` is their weighted sum. ``info`` holds

    - ``router_probs (B·T, n_experts)``: the softmax over all router logits,
    - ``expert_index (B·T, top_k)``: the chosen experts, largest logit first,
    - ``load_balancing_loss``: a scalar tensor, 1 for even routing (add it, scaled, to the task loss).

    Only the chosen experts compute: each expert runs once, on the tokens routed to it.
    """

    def __init__(self, d_model: int, d_hidden: int, n_experts: int, top_k: int = 2) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("d_hidden", d_hidden), ("n_experts", n_experts),
                            ("top_k", top_k)):
            check_positive_int(name, value)
        if top_k > n_experts:
            raise ValueError(f"top_k must be <= n_experts ({n_experts}), got {top_k}")
        self.d_model, self.n_experts, self.top_k = d_model, n_experts, top_k
        self.gate = nn.Linear(d_model, n_experts, bias=False)
        self.experts = nn.ModuleList(expert_mlp(d_model, d_hidden) for _ in range(n_experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError("x must be a floating-point torch.Tensor (B, T, d_model)")
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, d_model={self.d_model}), got {tuple(x.shape)}")
        B, T, C = x.shape
        tokens = x.reshape(B * T, C)  # (B, T, C) -> (N, C): routing is per token
        logits = self.gate(tokens)  # (N, E)
        router_probs = F.softmax(logits, dim=-1)  # (N, E)
        weights, expert_index = top_k_gating(logits, self.top_k)  # (N, k), (N, k)
        out = torch.zeros_like(tokens)  # (N, C)
        for e, expert in enumerate(self.experts):
            token, slot = (expert_index == e).nonzero(as_tuple=True)  # the tokens that chose e, and where
            if token.numel():
                out = out.index_add(0, token, weights[token, slot, None] * expert(tokens[token]))
        info = {"router_probs": router_probs, "expert_index": expert_index,
                "load_balancing_loss": load_balancing_loss(router_probs, expert_index)}
        return out.reshape(B, T, C), info  # (N, C) -> (B, T, C)


def expert_usage(expert_index: torch.Tensor, n_experts: int, first_choice_only: bool = True) -> torch.Tensor:
    """The share of tokens routed to each expert: ``(n_experts,)``, summing to 1. By default only the
    first choice counts (the ``fᵢ`` of the balancing loss); otherwise every one of the ``k`` choices.

    >>> expert_usage(torch.tensor([[0, 1], [0, 2], [2, 0]]), n_experts=3) * 3
    tensor([2., 0., 1.])
    """
    check_positive_int("n_experts", n_experts)
    if not isinstance(expert_index, torch.Tensor) or expert_index.dim() != 2:
        raise TypeError("expert_index must be a LongTensor (N, k)")
    chosen = expert_index[:, 0] if first_choice_only else expert_index.reshape(-1)  # (N,) or (N*k,)
    return torch.bincount(chosen, minlength=n_experts).float() / len(chosen)


def moe_parameter_counts(layer: MoELayer) -> tuple[int, int]:
    """``(active, total)`` parameters of ``layer``: a token uses the router and ``top_k`` experts.

    >>> moe_parameter_counts(MoELayer(d_model=4, d_hidden=8, n_experts=4, top_k=1))   # 16 + 76 of 16 + 4*76
    (92, 320)
    """
    if not isinstance(layer, MoELayer):
        raise TypeError(f"layer must be a MoELayer, got {type(layer).__name__}")
    gate = sum(p.numel() for p in layer.gate.parameters())
    per_expert = sum(p.numel() for p in layer.experts[0].parameters())
    return gate + layer.top_k * per_expert, gate + layer.n_experts * per_expert


@dataclass(frozen=True)
class SparseTransformerShape:
    """The sizes of a decoder-only MoE transformer of the LLaMA / Mistral family (pre-RMSNorm,
    grouped-query attention, SwiGLU experts with three ``d_model x d_ff`` matrices, untied embeddings),
    enough to count its parameters.

    ``kv_dim`` is the width of the keys and values (``n_kv_heads · head_dim``).
    """

    d_model: int
    n_layers: int
    d_ff: int
    n_heads: int
    kv_dim: int
    vocab_size: int
    n_experts: int
    top_k: int

    def _counts(self) -> tuple[int, int, int]:
        C = self.d_model
        attention = 2 * C * C + 2 * C * self.kv_dim  # W_q, W_o (C x C); W_k, W_v (C x kv_dim)
        expert = 3 * C * self.d_ff  # SwiGLU: gate, up and down projections
        shared = self.n_layers * (attention + 2 * C + C * self.n_experts)  # + 2 RMSNorms, the router
        shared += 2 * self.vocab_size * C + C  # input embedding, output head, final RMSNorm
        return shared, expert, self.n_layers

    @property
    def n_params(self) -> int:
        """Every parameter: all experts of every layer."""
        shared, expert, layers = self._counts()
        return shared + layers * self.n_experts * expert

    @property
    def n_active_params(self) -> int:
        """The parameters one token uses: everything but the experts it is not routed to."""
        shared, expert, layers = self._counts()
        return shared + layers * self.top_k * expert


# Mixtral 8x7B (Jiang et al. 2024, table 1): dim 4096, 32 layers, head_dim 128, hidden_dim 14336, 32
# heads, 8 KV heads, vocabulary 32000, 8 experts, top-2. The paper reports 47B parameters, 13B active.
MIXTRAL_8X7B = SparseTransformerShape(d_model=4096, n_layers=32, d_ff=14336, n_heads=32, kv_dim=8 * 128,
                                      vocab_size=32000, n_experts=8, top_k=2)
