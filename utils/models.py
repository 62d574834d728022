"""A tiny decoder-only transformer (GPT), small enough to train in seconds on a laptop CPU.

The architecture follows GPT-2 (Radford et al. 2019) as nanoGPT writes it: token embedding + learned
position embedding, then ``n_layers`` pre-LayerNorm blocks (``x + attn(ln1(x))``, ``x + mlp(ln2(x))``),
a final LayerNorm and a linear head to next-token logits. Attention is causal, so the logits at position
``t`` depend only on tokens ``0..t``: that is what lets one sequence train ``T`` next-token predictions
at once.

>>> config = GPTConfig(vocab_size=10, block_size=8, d_model=16, n_heads=2, n_layers=1)
>>> model = TinyGPT(config)
>>> logits = model(torch.zeros(2, 5, dtype=torch.long))
>>> tuple(logits.shape)                                 # (B, T, vocab_size)
(2, 5, 10)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from ._validation import check_positive_int
from .attention import MultiHeadAttention, causal_mask, visible_window

__all__ = ["GPTConfig", "Block", "TinyGPT", "next_token_probs"]


@dataclass
class GPTConfig:
    """The sizes of a ``TinyGPT`` (nanoGPT's ``GPTConfig``, scaled down).

    ``block_size`` is the context window: the longest input the model accepts (it has one learned
    position embedding per position). ``d_model`` must be divisible by ``n_heads``.

    >>> GPTConfig(vocab_size=20, block_size=16).d_model
    64
    """

    vocab_size: int
    block_size: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "d_model", "n_heads", "n_layers"):
            check_positive_int(name, getattr(self, name))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got d_model={self.d_model}, "
                             f"n_heads={self.n_heads}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise TypeError(f"dropout must be a number, got {type(self.dropout).__name__}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not isinstance(self.bias, bool):
            raise TypeError(f"bias must be a bool, got {type(self.bias).__name__}")


class Block(nn.Module):
    """One transformer block, pre-LayerNorm (as in GPT-2; Xiong et al. 2020 show it trains more stably
    than the original post-LN): tokens first exchange information (attention), then each one thinks
    alone (the MLP). Both add to the residual stream instead of replacing it (He et al. 2016)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        C = config.d_model
        self.ln1 = nn.LayerNorm(C, bias=config.bias)
        self.attn = MultiHeadAttention(C, config.n_heads, bias=config.bias)
        self.ln2 = nn.LayerNorm(C, bias=config.bias)
        self.mlp = nn.Sequential(
            nn.Linear(C, 4 * C, bias=config.bias),  # 4x wider hidden layer, as in Vaswani et al. 2017
            nn.GELU(),
            nn.Linear(4 * C, C, bias=config.bias),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, T, C)`` -> ``(x (B, T, C), attention weights (B, H, T, T))``."""
        attended, weights = self.attn(self.ln1(x), mask=mask)
        x = x + self.dropout(attended)
        x = x + self.dropout(self.mlp(self.ln2(x)))
        return x, weights


class TinyGPT(nn.Module):
    """A causal language model: ``forward(idx (B, T))`` -> next-token logits ``(B, T, vocab_size)``.

    ``return_attention=True`` also returns each layer's attention weights ``(B, H, T, T)``, so the
    notebooks can draw where every head looks.

    >>> model = TinyGPT(GPTConfig(vocab_size=5, block_size=4, d_model=8, n_heads=2, n_layers=3))
    >>> logits, attention = model(torch.tensor([[1, 2, 3]]), return_attention=True)
    >>> len(attention), tuple(attention[0].shape)       # one (B, H, T, T) per layer
    (3, (1, 2, 3, 3))
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.block_size, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model, bias=config.bias)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        # GPT-2 (Radford et al. 2019) scales the layers that write into the residual stream by
        # 1/sqrt(2 n_layers), so the stream's variance does not grow with depth.
        for block in self.blocks:
            for layer in (block.attn.out_proj, block.mlp[2]):
                nn.init.normal_(layer.weight, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # small normal weights (std 0.02) and zero biases, GPT-2's initialisation
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self, idx: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``idx (B, T)`` token ids with ``1 <= T <= block_size`` -> logits ``(B, T, vocab_size)``
        (and the list of per-layer attention weights ``(B, H, T, T)`` when ``return_attention``)."""
        if not isinstance(idx, torch.Tensor):
            raise TypeError(f"idx must be a torch.Tensor of token ids, got {type(idx).__name__}")
        if idx.dtype != torch.long:
            raise TypeError(f"idx must be a LongTensor of token ids, got dtype {idx.dtype}")
        if idx.dim() != 2 or idx.shape[1] < 1:
            raise ValueError(f"idx must have shape (B, T) with T >= 1, got {tuple(idx.shape)}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"idx has T={T} positions, more than the context window block_size="
                             f"{self.config.block_size}: keep only its last {self.config.block_size} tokens")
        if idx.min() < 0 or idx.max() >= self.config.vocab_size:
            raise ValueError(f"idx must hold ids in [0, vocab_size={self.config.vocab_size}), "
                             f"got min {idx.min().item()} and max {idx.max().item()}")
        positions = torch.arange(T, device=idx.device)  # (T,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(positions))  # (B, T, C) + (T, C) -> (B, T, C)
        mask = causal_mask(T, device=idx.device)  # (T, T), broadcast over (B, H)
        attention = []
        for block in self.blocks:
            x, weights = block(x, mask)  # (B, T, C), (B, H, T, T)
            attention.append(weights)
        logits = self.lm_head(self.ln_f(x))  # (B, T, C) -> (B, T, V)
        return (logits, attention) if return_attention else logits

    def num_parameters(self) -> int:
        """The number of numbers the model learns (all parameters, trainable or frozen)."""
        return sum(p.numel() for p in self.parameters())


@torch.no_grad()
def next_token_probs(model: nn.Module, ids, window: int | None = None) -> torch.Tensor:
    """The model's probabilities ``(V,)`` for the token after ``ids`` (a list or 1-D tensor of token ids),
    reading only the last ``window`` tokens: everything earlier is outside its context window.

    ``window=None`` uses the model's whole window, ``model.config.block_size``.

    >>> model = TinyGPT(GPTConfig(vocab_size=5, block_size=4, d_model=8, n_heads=2, n_layers=1))
    >>> p = next_token_probs(model, [1, 2, 3], window=2)      # sees only [2, 3]
    >>> tuple(p.shape), round(p.sum().item(), 4)
    ((5,), 1.0)
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 1 or len(ids) < 1:
        raise ValueError(f"ids must be a non-empty list (or 1-D tensor) of token ids, "
                         f"got shape {tuple(ids.shape)}")
    window = model.config.block_size if window is None else window
    _, visible = visible_window(ids, window)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits = model(visible.unsqueeze(0).to(device))  # (1, T) -> (1, T, V)
    finally:
        model.train(was_training)
    return torch.softmax(logits[0, -1].float(), dim=-1).cpu()  # the last position predicts the next token
