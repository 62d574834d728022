"""Attention, the way Vaswani et al. (2017, "Attention Is All You Need", arXiv:1706.03762) wrote it down.

Every token asks a question (its *query*), every token offers a label (its *key*) and a content (its
*value*). A token's output is the average of all values, weighted by how well its query matches each key:

    Attention(Q, K, V) = softmax(Q Kᵀ / √d) V

This module is the readable reference path: it materialises the ``(Tq, Tk)`` weight matrix so the
notebooks can draw it. ``torch.nn.functional.scaled_dot_product_attention`` is PyTorch's fast path; the
tests check that both agree. The last functions count what attention costs (time, score-matrix memory,
KV-cache memory), which is the price of a long context window.

>>> q = k = v = torch.eye(2).unsqueeze(0)               # (B=1, T=2, d=2)
>>> out, weights = scaled_dot_product_attention(q, k, v, mask=causal_mask(2))
>>> weights[0, 0].tolist()                               # the first token can only see itself
[1.0, 0.0]
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_positive_int

__all__ = [
    "softmax",
    "scaled_dot_product_attention",
    "causal_mask",
    "sinusoidal_positional_encoding",
    "MultiHeadAttention",
    "visible_window",
    "attention_cost",
    "kv_cache_bytes",
    "attention_scores_bytes",
    "transformer_flops",
]


# ----------------------------------------------------------------------------------------------------
# The pieces
# ----------------------------------------------------------------------------------------------------

def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Turn scores into probabilities along ``dim``: ``exp(x_i) / sum_j exp(x_j)``.

    Subtracting the row maximum first changes nothing mathematically (it cancels between numerator and
    denominator) but keeps ``exp`` from overflowing: ``exp(1000)`` is ``inf`` in float32, ``exp(0)`` is 1.
    Like ``torch.softmax``, a row made only of ``-inf`` gives NaN (there is nothing to normalise);
    ``scaled_dot_product_attention`` handles that case itself.

    >>> softmax(torch.tensor([1000.0, 1000.0])).tolist()
    [0.5, 0.5]
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    shifted = x - x.amax(dim=dim, keepdim=True)  # the largest entry becomes 0, so exp(...) <= 1
    exps = shifted.exp()
    return exps / exps.sum(dim=dim, keepdim=True)


def _check_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        _check_tensor(name, t)
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., T, d) with at least 2 dimensions, "
                             f"got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same last dimension d (queries are compared with keys), "
                         f"got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of positions Tk (one value per key), "
                         f"got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if 0 in (q.shape[-2], k.shape[-2], q.shape[-1]):
        raise ValueError(f"q, k and v must have T >= 1 and d >= 1, "
                         f"got q {tuple(q.shape)}, k {tuple(k.shape)}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(f"the leading (batch, head) dimensions of q, k and v must broadcast, got "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}") from None


def _check_mask(mask: torch.Tensor, scores_shape: torch.Size) -> None:
    _check_tensor("mask", mask)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}")
    try:
        fits = torch.broadcast_shapes(mask.shape, scores_shape) == scores_shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask must broadcast to the scores' shape (..., Tq, Tk) = {tuple(scores_shape)}, "
                         f"got shape {tuple(mask.shape)}")


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q kᵀ / √d) v`` with an optional boolean ``mask`` (True = may attend) -> ``(out, weights)``.

    Shapes: ``q (..., Tq, d)``, ``k (..., Tk, d)``, ``v (..., Tk, dv)`` -> ``out (..., Tq, dv)``,
    ``weights (..., Tq, Tk)`` (each row sums to 1). Dividing by √d (Vaswani et al. 2017, section 3.2.1)
    keeps the scores' variance near 1 whatever the head size, so the softmax does not saturate.

    A query whose row of ``mask`` is entirely False may attend to nothing: its weights and output are
    zeros. That is what ``torch.nn.functional.scaled_dot_product_attention`` returns since PyTorch 2.5
    (older versions returned NaN there); ``torch.softmax`` alone would give NaN.

    >>> q = torch.tensor([[1.0, 0.0]]); k = torch.tensor([[1.0, 0.0], [0.0, 1.0]]); v = torch.eye(2)
    >>> out, w = scaled_dot_product_attention(q, k, v)
    >>> round(w[0, 0].item(), 4)                        # exp(1/√2) / (exp(1/√2) + exp(0))
    0.6698
    """
    _check_qkv(q, k, v)
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Tq, d) @ (..., d, Tk) -> (..., Tq, Tk)
    if mask is not None:
        _check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))  # a forbidden key gets exp(-inf) = 0 weight
    weights = softmax(scores, dim=-1)
    if mask is not None:
        # rows with no allowed key are 0/0 = NaN after the softmax: they attend to nothing instead
        weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    out = weights @ v  # (..., Tq, Tk) @ (..., Tk, dv) -> (..., Tq, dv)
    return out, weights


def causal_mask(T: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The ``(T, T)`` boolean mask of a left-to-right model: position ``i`` may see ``j <= i``.

    A language model predicts the next token, so it must not peek at it (Radford et al. 2018, GPT).

    >>> causal_mask(3).int().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    if isinstance(T, bool) or not isinstance(T, int):
        raise TypeError(f"T must be an int, got {type(T).__name__}")
    if T < 1:
        raise ValueError(f"T must be >= 1 (the number of positions), got {T}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def sinusoidal_positional_encoding(num_positions: int, d_model: int) -> torch.Tensor:
    """The fixed position signal of Vaswani et al. (2017, section 3.5), shape ``(num_positions, d_model)``.

    ``PE[p, 2i] = sin(p / 10000^(2i/d))`` and ``PE[p, 2i+1] = cos(p / 10000^(2i/d))``: each pair of
    columns is a clock ticking at its own speed, from one turn every 2π positions down to one every
    10000·2π, so every position gets a distinct pattern. An odd ``d_model`` drops the last cosine.

    >>> pe = sinusoidal_positional_encoding(2, 4)
    >>> pe[0].tolist()                                   # sin(0) = 0, cos(0) = 1
    [0.0, 1.0, 0.0, 1.0]
    """
    for name, value in (("num_positions", num_positions), ("d_model", d_model)):
        check_positive_int(name, value)
    positions = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)  # (P, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d/2),)
    angles = positions / 10000.0 ** (two_i / d_model)  # (P, 1) / (ceil(d/2),) -> (P, ceil(d/2))
    pe = torch.zeros(num_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = angles.sin()
    pe[:, 1::2] = angles.cos()[:, : d_model // 2]
    return pe.float()


class MultiHeadAttention(nn.Module):
    """``n_heads`` attentions side by side, each on its own ``d_model / n_heads`` slice (Vaswani et al. 2017).

    One head can only produce one weighted average per token; several heads let a token gather several
    things at once (say, its verb and its subject). Queries come from ``x``; keys and values come from
    ``context`` (``x`` itself for self-attention, an encoder's output for cross-attention).

    >>> mha = MultiHeadAttention(d_model=8, n_heads=2)
    >>> out, weights = mha(torch.randn(1, 3, 8), mask=causal_mask(3))
    >>> tuple(out.shape), tuple(weights.shape)          # (B, T, C) and (B, H, T, Tk)
    ((1, 3, 8), (1, 2, 3, 3))
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("n_heads", n_heads)):
            check_positive_int(name, value)
        if d_model % n_heads:
            raise ValueError(f"d_model must be divisible by n_heads (each head gets d_model / n_heads "
                             f"dimensions), got d_model={d_model}, n_heads={n_heads}")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _check_input(self, name: str, t: torch.Tensor) -> None:
        _check_tensor(name, t)
        if t.dim() != 3 or t.shape[-1] != self.d_model or t.shape[1] < 1:
            raise ValueError(f"{name} must have shape (B, T, d_model={self.d_model}) with T >= 1, "
                             f"got {tuple(t.shape)}")

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        B, T, C = t.shape
        return t.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, T, C) -> (B, H, T, D)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x (B, T, C)``, ``context (B, Tk, C)`` or None, ``mask`` broadcastable to ``(B, H, T, Tk)``.

        Returns ``(out (B, T, C), weights (B, H, T, Tk))``. With ``need_weights=False`` the weights are not
        materialised: the heads go through PyTorch's fused ``F.scaled_dot_product_attention`` (the fast
        path used for training, as nanoGPT's "flash" branch) and ``None`` is returned in their place. Both
        paths compute the same function; they differ only in float rounding (``tests/test_attention.py``).
        """
        self._check_input("x", x)
        context = x if context is None else context
        self._check_input("context", context)
        if context.shape[0] != x.shape[0]:
            raise ValueError(f"context must have the same batch size as x, got {context.shape[0]} "
                             f"and {x.shape[0]}")
        if not isinstance(need_weights, bool):
            raise TypeError(f"need_weights must be a bool, got {type(need_weights).__name__}")
        B, T, C = x.shape
        q = self._split_heads(self.q_proj(x))  # (B, H, T, D)
        k = self._split_heads(self.k_proj(context))  # (B, H, Tk, D)
        v = self._split_heads(self.v_proj(context))  # (B, H, Tk, D)
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask=mask)  # (B, H, T, D), (B, H, T, Tk)
        else:
            if mask is not None:
                _check_mask(mask, torch.Size((B, self.n_heads, T, k.shape[-2])))
            out, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None  # (B, H, T, D)
        out = out.transpose(1, 2).reshape(B, T, C)  # (B, H, T, D) -> (B, T, H, D) -> (B, T, C)
        return self.out_proj(out), weights

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, head_dim={self.head_dim}"


# ----------------------------------------------------------------------------------------------------
# The context window and what it costs
# ----------------------------------------------------------------------------------------------------

def visible_window(tokens: Sequence | torch.Tensor, window: int) -> tuple[Sequence, Sequence]:
    """Split ``tokens`` into ``(hidden, visible)``: a model with a context window of ``window`` tokens
    sees only the last ``window`` of them; everything earlier is simply not in its input.

    >>> visible_window(["the", "cat", "chased", "the", "mouse"], 2)
    (['the', 'cat', 'chased'], ['the', 'mouse'])
    """
    if isinstance(tokens, str) or not isinstance(tokens, (Sequence, torch.Tensor)):
        raise TypeError(f"tokens must be a list (or tensor) of tokens, got {type(tokens).__name__}")
    if isinstance(window, bool) or not isinstance(window, int):
        raise TypeError(f"window must be an int, got {type(window).__name__}")
    if window < 1:
        raise ValueError(f"window must be >= 1 (a model sees at least one token), got {window}")
    cut = max(len(tokens) - window, 0)
    return tokens[:cut], tokens[cut:]


def attention_cost(
    seq_len: int,
    d_head: int = 64,
    n_heads: int = 4,
    repeats: int = 3,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Measure one attention forward on random ``q, k, v`` of shape ``(1, n_heads, seq_len, d_head)``.

    Returns ``{"seconds": the fastest of ``repeats`` runs, "bytes": memory of the score matrices}``.
    The minimum, as ``timeit`` recommends: other programs can only ever add time to a run, so the fastest
    one is the best estimate of what attention itself costs.
    ``bytes`` is ``2 * n_heads * seq_len² * element_size`` (the scores and the weights, each
    ``(H, T, T)``) on CPU, and the measured peak increase of ``torch.cuda.max_memory_allocated`` on CUDA.
    Both grow with ``seq_len²``: doubling the window quadruples the cost (the "quadratic" in every
    long-context paper). One warm-up run is not timed.

    >>> attention_cost(64, repeats=1)["bytes"]          # 2 * 4 * 64 * 64 * 4 bytes (float32)
    131072
    """
    for name, value in (("seq_len", seq_len), ("d_head", d_head), ("n_heads", n_heads), ("repeats", repeats)):
        check_positive_int(name, value)
    device = torch.device("cpu") if device is None else torch.device(device)
    on_cuda = device.type == "cuda"
    generator = torch.Generator().manual_seed(0)  # a CPU generator works for every device
    q, k, v = (torch.randn(1, n_heads, seq_len, d_head, generator=generator).to(device) for _ in range(3))

    def sync() -> None:
        if on_cuda:  # CUDA kernels run asynchronously: wait for them before reading the clock
            torch.cuda.synchronize(device)

    with torch.no_grad():
        scaled_dot_product_attention(q, k, v)  # warm-up: first-call allocations and kernel selection
        if on_cuda:
            sync()
            torch.cuda.reset_peak_memory_stats(device)
            baseline = torch.cuda.memory_allocated(device)
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            scaled_dot_product_attention(q, k, v)
            sync()
            times.append(time.perf_counter() - start)
        if on_cuda:
            n_bytes = torch.cuda.max_memory_allocated(device) - baseline
        else:
            n_bytes = 2 * n_heads * seq_len * seq_len * q.element_size()
    return {"seconds": min(times), "bytes": int(n_bytes)}


def kv_cache_bytes(
    n_layers: int, n_kv_heads: int, head_dim: int, seq_len: int, batch: int = 1, bytes_per_value: int = 2
) -> int:
    """Bytes of the key/value cache a decoder keeps while generating: for every layer, a key and a value
    vector of every kv head for every token seen so far. It grows linearly with the window.

    ``2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_value`` (the 2 = keys and values).

    >>> kv_cache_bytes(32, 32, 128, 4096) == 2 * 2**30   # Llama 2 7B, 4096 tokens, fp16: 2 GiB
    True
    """
    args = {"n_layers": n_layers, "n_kv_heads": n_kv_heads, "head_dim": head_dim, "seq_len": seq_len,
            "batch": batch, "bytes_per_value": bytes_per_value}
    for name, value in args.items():
        check_positive_int(name, value)
    return 2 * n_layers * n_kv_heads * head_dim * seq_len * batch * bytes_per_value


def attention_scores_bytes(n_heads: int, seq_len: int, batch: int = 1, bytes_per_value: int = 2) -> int:
    """Bytes of one layer's ``(T, T)`` score matrices if they were materialised: ``n_heads * T² * batch *
    bytes_per_value``. This grows with the square of the window, which is why FlashAttention (Dao et al.
    2022) computes attention in tiles and never stores the whole matrix.

    >>> attention_scores_bytes(1, 32_768) == 2 * 2**30   # one head at 32k tokens in fp16: 2 GiB
    True
    """
    args = {"n_heads": n_heads, "seq_len": seq_len, "batch": batch, "bytes_per_value": bytes_per_value}
    for name, value in args.items():
        check_positive_int(name, value)
    return n_heads * seq_len * seq_len * batch * bytes_per_value


# --- Lecture 4: what a longer window costs, in arithmetic -------------------------------------------------

def transformer_flops(
    seq_len: int, d_model: int, n_layers: int = 1, d_ff: int | None = None
) -> dict[str, int]:
    """Forward FLOPs of ``n_layers`` transformer blocks on one sequence of ``seq_len`` tokens, split into
    the part that grows linearly with the window and the part that grows with its square (one
    multiply-add = 2 FLOPs, as Kaplan et al. 2020, table 1, count; LayerNorm, softmax and biases left out).

    - ``linear = 2 · T · (4 d² + 2 d · d_ff) · n_layers``: every token through the query, key, value and
      output projections and the MLP (``d_ff = 4 d`` by default, as in GPT-2 and GPT-3);
    - ``quadratic = 2 · 2 · T² · d · n_layers``: every query against every key (``Q Kᵀ``) and the weighted
      sum of the values, for the whole ``(T, T)`` matrix (causal masking hides half of it, but dense
      kernels compute it all).

    Doubling the window doubles the first and quadruples the second; the second overtakes the first
    when ``T > 6 d`` (with ``d_ff = 4 d``).

    >>> transformer_flops(seq_len=32, d_model=16)      # a TinyGPT block, counted by FlopCounterMode too
    {'linear': 196608, 'quadratic': 65536, 'total': 262144}
    """
    for name, value in (("seq_len", seq_len), ("d_model", d_model), ("n_layers", n_layers)):
        check_positive_int(name, value)
    d_ff = 4 * d_model if d_ff is None else d_ff
    check_positive_int("d_ff", d_ff)
    linear = 2 * seq_len * (4 * d_model * d_model + 2 * d_model * d_ff) * n_layers
    quadratic = 2 * 2 * seq_len * seq_len * d_model * n_layers
    return {"linear": linear, "quadratic": quadratic, "total": linear + quadratic}
