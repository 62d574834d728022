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
import weakref
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ._validation import check_positive_int
from .sizing import kv_cache_bytes  # its home since Lecture 10; imported back for Lecture 1

__all__ = [
    "softmax",
    "scaled_dot_product_attention",
    "causal_mask",
    "sinusoidal_positional_encoding",
    "MultiHeadAttention",
    "KVCache",
    "LayerKVCache",
    "visible_window",
    "attention_cost",
    "kv_cache_bytes",
    "attention_scores_bytes",
    "transformer_flops",


    # Lecture 5
    "split_heads",
    "merge_heads",
    "sinusoidal_dot_product",
    "sinusoidal_shift_matrix",
    "rope_angles",
    "apply_rope",
    "RotaryMultiHeadAttention",
    "lookback_distance",
    "attention_entropy",
    "sliding_window_mask",
    "strided_mask",
    "online_softmax_step",
    "chunked_attention",
    "sliding_window_attention",
    "peak_memory_bytes",
    # Lecture 7
    "attention_steps",
    "score_saturation",
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


class LayerKVCache:
    """The keys and values one attention layer has computed so far: ``keys``, ``values`` ``(B, H, T, D)``
    (``None`` before the first token). ``append(k, v)`` adds the new positions and returns all of them.

    >>> cache = LayerKVCache()
    >>> k, v = cache.append(torch.zeros(1, 2, 3, 4), torch.ones(1, 2, 3, 4))    # 3 positions
    >>> k, v = cache.append(torch.zeros(1, 2, 1, 4), torch.ones(1, 2, 1, 4))    # then one more
    >>> tuple(k.shape), cache.length
    ((1, 2, 4, 4), 4)
    """

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """The number of positions cached."""
        return 0 if self.keys is None else self.keys.shape[-2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``k``, ``v (B, H, T_new, D)`` -> all keys and values ``(B, H, length + T_new, D)``."""
        for name, t in (("k", k), ("v", v)):
            if not isinstance(t, torch.Tensor) or t.dim() != 4:
                raise ValueError(f"{name} must be a tensor (B, H, T, D)")
        if self.keys is None:
            self.keys, self.values = k, v
        else:
            if k.shape[:2] != self.keys.shape[:2] or k.shape[-1] != self.keys.shape[-1]:
                raise ValueError(f"k must match the cached (B, H, _, D) = {tuple(self.keys.shape)}, "
                                 f"got {tuple(k.shape)}")
            self.keys = torch.cat([self.keys, k], dim=-2)  # (B, H, T, D) -> (B, H, T + T_new, D)
            self.values = torch.cat([self.values, v], dim=-2)
        return self.keys, self.values


class KVCache:
    """The key/value cache of a decoder: one ``LayerKVCache`` per layer (``layers``).

    A causal model never changes what it computed for an earlier position when a token is added (the
    token cannot be seen from before it), so the keys and values of the prefix can be kept instead of
    recomputed: each generation step then processes only the new token. ``nbytes`` is the memory this
    costs, which ``utils.sizing.kv_cache_bytes`` computes for real models.

    >>> cache = KVCache(n_layers=2)
    >>> cache.length, len(cache.layers)
    (0, 2)
    """

    def __init__(self, n_layers: int) -> None:
        check_positive_int("n_layers", n_layers)
        self.layers = [LayerKVCache() for _ in range(n_layers)]

    @property
    def length(self) -> int:
        """The number of positions cached (the same in every layer)."""
        return self.layers[0].length

    @property
    def nbytes(self) -> int:
        """Bytes held: every layer's keys and values."""
        return sum(t.nbytes for layer in self.layers for t in (layer.keys, layer.values) if t is not None)


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
        return split_heads(t, self.n_heads)  # (B, T, C) -> (B, H, T, D)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
        need_weights: bool = True, kv_cache: LayerKVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x (B, T, C)``, ``context (B, Tk, C)`` or None, ``mask`` broadcastable to ``(B, H, T, Tk)``.

        Returns ``(out (B, T, C), weights (B, H, T, Tk))``. With ``need_weights=False`` the weights are not
        materialised: the heads go through PyTorch's fused ``F.scaled_dot_product_attention`` (the fast
        path used for training, as nanoGPT's "flash" branch) and ``None`` is returned in their place. Both
        paths compute the same function; they differ only in float rounding (``tests/test_attention.py``).

        With a ``kv_cache`` (self-attention only) the keys and values of ``x`` are appended to those of
        the earlier positions, and the queries of ``x`` attend over all of them: ``Tk = past + T``, and
        ``mask``, if any, is ``(T, past + T)``. Generation then feeds one new token per step.
        """
        self._check_input("x", x)
        context = x if context is None else context
        self._check_input("context", context)
        if context.shape[0] != x.shape[0]:
            raise ValueError(f"context must have the same batch size as x, got {context.shape[0]} "
                             f"and {x.shape[0]}")
        if not isinstance(need_weights, bool):
            raise TypeError(f"need_weights must be a bool, got {type(need_weights).__name__}")
        B, T, _ = x.shape
        q = self._split_heads(self.q_proj(x))  # (B, H, T, D)
        k = self._split_heads(self.k_proj(context))  # (B, H, Tk, D)
        v = self._split_heads(self.v_proj(context))  # (B, H, Tk, D)
        if kv_cache is not None:
            self._check_cache(kv_cache, context is x)
            k, v = kv_cache.append(k, v)  # (B, H, past + T, D): every position so far, computed once
        else:
            q, k = self._position_queries_and_keys(q, k)  # unchanged here; RoPE rotates them (Lecture 5)
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask=mask)  # (B, H, T, D), (B, H, T, Tk)
        else:
            if mask is not None:
                _check_mask(mask, torch.Size((B, self.n_heads, T, k.shape[-2])))
            out, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None  # (B, H, T, D)
        out = merge_heads(out)  # (B, H, T, D) -> (B, T, C)
        return self.out_proj(out), weights

    def _check_cache(self, kv_cache: object, self_attention: bool) -> None:
        if not isinstance(kv_cache, LayerKVCache):
            raise TypeError(f"kv_cache must be a LayerKVCache (one layer of a KVCache), got "
                            f"{type(kv_cache).__name__}")
        if not self_attention:
            raise ValueError("kv_cache works for self-attention only: pass context=None")
        if type(self)._position_queries_and_keys is not MultiHeadAttention._position_queries_and_keys:
            raise ValueError(f"{type(self).__name__} moves queries and keys by their positions; this "
                             "KV cache supports attention without (positions added to the embeddings)")

    def _position_queries_and_keys(
        self, q: torch.Tensor, k: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Where a relative position scheme acts on the split heads ``q (B, H, T, D)``, ``k (B, H, Tk, D)``.
        Plain attention knows no positions (they are added to the token embeddings, if at all), so this
        returns them unchanged; ``RotaryMultiHeadAttention`` rotates them."""
        return q, k

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
    *,
    cpu_time: bool = False,
) -> dict[str, float]:
    """Measure one attention forward on random ``q, k, v`` of shape ``(1, n_heads, seq_len, d_head)``.

    Returns ``{"seconds": the fastest of ``repeats`` runs, "bytes": memory of the score matrices}``.
    The minimum, as ``timeit`` recommends: other programs can only ever add time to a run, so the fastest
    one is the best estimate of what attention itself costs. On a busy machine even the fastest of a
    long run is interrupted, so the long runs look slower than they are: ``cpu_time=True`` (CPU only)
    reads the CPU time of this thread (``time.thread_time``), which stands still while another program
    has the CPU, and runs the measurement on one torch thread (restored afterwards) so that this thread
    does all the work. (A process's CPU time would not do: idle OpenMP threads spin, and count.)
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
    if cpu_time and device.type != "cpu":
        raise ValueError(f"cpu_time=True measures the CPU, but device is {device}: pass cpu_time=False")
    clock = time.thread_time if cpu_time else time.perf_counter
    threads = torch.get_num_threads()
    generator = torch.Generator().manual_seed(0)  # a CPU generator works for every device
    q, k, v = (torch.randn(1, n_heads, seq_len, d_head, generator=generator).to(device) for _ in range(3))

    def sync() -> None:
        if on_cuda:  # CUDA kernels run asynchronously: wait for them before reading the clock
            torch.cuda.synchronize(device)

    if cpu_time:
        torch.set_num_threads(1)  # the thread whose clock we read does all the work
    try:
        with torch.no_grad():
            scaled_dot_product_attention(q, k, v)  # warm-up: first-call allocations and kernel selection
            if on_cuda:
                sync()
                torch.cuda.reset_peak_memory_stats(device)
                baseline = torch.cuda.memory_allocated(device)
            times = []
            for _ in range(repeats):
                sync()
                start = clock()
                scaled_dot_product_attention(q, k, v)
                sync()
                times.append(clock() - start)
    finally:
        if cpu_time:
            torch.set_num_threads(threads)
    if on_cuda:
        n_bytes = torch.cuda.max_memory_allocated(device) - baseline
    else:
        n_bytes = 2 * n_heads * seq_len * seq_len * q.element_size()
    return {"seconds": min(times), "bytes": int(n_bytes)}


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


# --- Lecture 5: positions, sparse patterns, memory-saving attention -----------------------------------
# Q21 builds on the sinusoidal table above (what a shift does to it) and adds rotary embeddings (RoPE);
# Q22 measures what each head looks at; Q24 adds the sparse masks of the Sparse Transformer and attention
# that visits the keys a chunk at a time with an online softmax (the idea behind FlashAttention), and a
# counter of the bytes a computation holds at its peak.

def _check_int_arg(name: str, value: object) -> int:
    check_positive_int(name, value)
    return value


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Cut the last dimension into ``n_heads`` slices, one per head: ``(B, T, C)`` -> ``(B, H, T, D)``
    with ``D = C / H``. Head ``h`` gets columns ``h·D .. (h+1)·D - 1`` of every token.

    >>> x = torch.arange(8.0).view(1, 2, 4)                 # (B=1, T=2, C=4)
    >>> split_heads(x, 2)[0, 1].tolist()                    # head 1: the last two columns of each token
    [[2.0, 3.0], [6.0, 7.0]]
    """
    _check_tensor("x", x)
    check_positive_int("n_heads", n_heads)
    if x.dim() != 3 or x.shape[-1] % n_heads:
        raise ValueError(f"x must be (B, T, C) with C divisible by n_heads={n_heads}, got {tuple(x.shape)}")
    B, T, C = x.shape
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)  # (B, T, C) -> (B, T, H, D) -> (B, H, T, D)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Put the heads side by side again (the "concat" of Vaswani et al.): ``(B, H, T, D)`` -> ``(B, T, H·D)``;
    ``merge_heads(split_heads(x, H))`` is ``x``.

    >>> x = torch.randn(2, 5, 6)
    >>> torch.equal(merge_heads(split_heads(x, 3)), x)
    True
    """
    _check_tensor("x", x)
    if x.dim() != 4:
        raise ValueError(f"x must be (B, H, T, D), got {tuple(x.shape)}")
    B, H, T, D = x.shape
    return x.transpose(1, 2).reshape(B, T, H * D)  # (B, H, T, D) -> (B, T, H, D) -> (B, T, C)


def _sinusoid_frequencies(d_model: int) -> torch.Tensor:
    """``ω_i = 1 / 10000^(2i / d_model)`` for ``i = 0 .. d_model/2 - 1`` (float64), one per column pair."""
    return 1.0 / 10000.0 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)


def _check_even_width(name: str, value: object) -> None:
    check_positive_int(name, value)
    if value % 2:
        raise ValueError(f"{name} must be even (the columns come in (sin, cos) pairs), got {value}")


def sinusoidal_dot_product(offsets: torch.Tensor | int, d_model: int) -> torch.Tensor:
    """``PE[p] · PE[p + k]`` in closed form: ``Σ_i cos(ω_i k)``, the same for every position ``p``.

    Each (sin, cos) column pair contributes ``sin(ω p) sin(ω (p+k)) + cos(ω p) cos(ω (p+k)) = cos(ω k)``
    (the cosine of a difference), so the similarity of two positions depends only on how far apart they
    are. ``offsets`` is an int or an integer tensor of offsets ``k``; the result has its shape (float32).

    >>> sinusoidal_dot_product(0, 8).item()              # PE[p] · PE[p] = d_model / 2, for every p
    4.0
    >>> sinusoidal_dot_product(torch.tensor([3, -3]), 8).tolist() == [sinusoidal_dot_product(3, 8).item()] * 2
    True
    """
    _check_even_width("d_model", d_model)
    k = torch.as_tensor(offsets)
    if k.is_floating_point() or k.dtype == torch.bool or k.is_complex():
        raise TypeError(f"offsets must be an int or an integer tensor, got dtype {k.dtype}")
    angles = k.to(torch.float64).unsqueeze(-1) * _sinusoid_frequencies(d_model)  # (..., d/2)
    return angles.cos().sum(dim=-1).float()


def sinusoidal_shift_matrix(offset: int, d_model: int) -> torch.Tensor:
    """The ``(d_model, d_model)`` matrix ``M`` with ``PE[p + offset] = M @ PE[p]`` for every position ``p``.

    Vaswani et al. (2017, section 3.5) chose sinusoids because "for any fixed offset k, PE(pos+k) can be
    represented as a linear function of PE(pos)". Here is that function: for each frequency ω, the pair
    ``(sin ωp, cos ωp)`` is a point on a circle and a shift by ``k`` turns it by the angle ``ωk``::

        sin(ω(p+k)) =  cos(ωk) sin(ωp) + sin(ωk) cos(ωp)
        cos(ω(p+k)) = -sin(ωk) sin(ωp) + cos(ωk) cos(ωp)

    so ``M`` is block-diagonal with one 2×2 rotation per column pair. It does not depend on ``p``.

    >>> pe = sinusoidal_positional_encoding(10, 4)
    >>> torch.allclose(sinusoidal_shift_matrix(3, 4) @ pe[2], pe[5], atol=1e-6)
    True
    """
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError(f"offset must be an int, got {type(offset).__name__}")
    _check_even_width("d_model", d_model)
    angles = offset * _sinusoid_frequencies(d_model)  # (d/2,)
    c, s = angles.cos(), angles.sin()
    blocks = torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)  # (d/2, 2, 2)
    return torch.block_diag(*blocks).float()  # (d, d)


def rope_angles(positions: torch.Tensor, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """The rotation angles of rotary embeddings: ``positions[t] · θ_i`` with ``θ_i = base^(-2i/head_dim)``.

    ``positions`` is an integer tensor ``(T,)``; the result is ``(T, head_dim / 2)`` in float64 (angles
    reach thousands of radians at long contexts, where float32 would already round them).

    >>> rope_angles(torch.tensor([0, 1, 2]), 4)[:, 0].tolist()      # θ_0 = 1: one radian per position
    [0.0, 1.0, 2.0]
    """
    _check_even_width("head_dim", head_dim)
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 1:
        raise ValueError(f"base must be a number > 1, got {base!r}")
    positions = _check_tensor("positions", positions)
    if positions.dim() != 1 or positions.is_floating_point() or positions.dtype == torch.bool:
        raise ValueError(f"positions must be a 1-D integer tensor (T,), got shape {tuple(positions.shape)} "
                         f"and dtype {positions.dtype}")
    theta = 1.0 / float(base) ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device)
                                  / head_dim)  # (D/2,)
    return positions.to(torch.float64).unsqueeze(1) * theta  # (T, 1) * (D/2,) -> (T, D/2)


def apply_rope(x: torch.Tensor, positions: torch.Tensor | None = None, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (RoPE, Su et al. 2021, "RoFormer", arXiv:2104.09864).

    ``x (..., T, D)`` is a query or key per position; each pair ``(x_2i, x_2i+1)`` of position ``t`` is
    rotated by the angle ``positions[t] · θ_i`` (``positions`` defaults to ``0 .. T-1``). A rotation keeps
    lengths, and the dot product of a query rotated by ``mθ`` with a key rotated by ``nθ`` sees only the
    difference ``(m - n)θ``: attention scores depend on how far apart two tokens are, not where they are.
    Pairs are adjacent columns, as in the paper and Meta's LLaMA code (Hugging Face pairs column ``i``
    with ``i + D/2`` instead: the same idea on permuted columns).

    >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.0]])            # (T=2, D=2): the same vector twice
    >>> [round(value, 4) for value in apply_rope(x)[1].tolist()]    # position 1: turned by 1 radian
    [0.5403, 0.8415]
    """
    _check_tensor("x", x)
    if x.dim() < 2 or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor (..., T, D), got shape {tuple(x.shape)} "
                         f"and dtype {x.dtype}")
    T, D = x.shape[-2], x.shape[-1]
    _check_even_width("x.shape[-1] (the head dimension)", D)
    positions = torch.arange(T) if positions is None else positions
    angles = rope_angles(_check_tensor("positions", positions).cpu(), D, base)  # (T, D/2), float64 on the CPU
    if angles.shape[0] != T:
        raise ValueError(f"positions must have one entry per position of x (T={T}), got {angles.shape[0]}")
    # the angles in float64 (MPS has no float64), then cos and sin in x's dtype on x's device
    cos, sin = (f(angles).to(device=x.device, dtype=x.dtype) for f in (torch.cos, torch.sin))  # (T, D/2) each
    pairs = x.unflatten(-1, (D // 2, 2))  # (..., T, D) -> (..., T, D/2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]  # (..., T, D/2) each
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)  # (..., T, D/2, 2)
    return rotated.flatten(-2)  # (..., T, D/2, 2) -> (..., T, D)


class RotaryMultiHeadAttention(MultiHeadAttention):
    """``MultiHeadAttention`` whose queries and keys are rotated by their positions (RoPE), as in LLaMA.

    Nothing is added to the token embeddings: positions enter only through the rotation, inside every
    attention layer, so scores depend on relative offsets. The queries are taken to be the last ``T`` of
    the ``Tk`` key positions (``T == Tk`` in self-attention). Same parameters as ``MultiHeadAttention``.

    >>> mha = RotaryMultiHeadAttention(d_model=8, n_heads=2)
    >>> out, weights = mha(torch.randn(1, 3, 8), mask=causal_mask(3))
    >>> tuple(out.shape), tuple(weights.shape)
    ((1, 3, 8), (1, 2, 3, 3))
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, base: float = 10000.0) -> None:
        super().__init__(d_model, n_heads, bias=bias)
        _check_even_width("d_model / n_heads (the head dimension)", self.head_dim)
        rope_angles(torch.zeros(1, dtype=torch.long), self.head_dim, base)  # validates base
        self.base = float(base)

    def _position_queries_and_keys(
        self, q: torch.Tensor, k: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        T, Tk = q.shape[-2], k.shape[-2]
        if T > Tk:
            raise ValueError(f"RoPE needs queries at key positions: got {T} queries for {Tk} keys")
        key_positions = torch.arange(Tk, device=k.device)  # (Tk,)
        return (apply_rope(q, key_positions[Tk - T:], self.base),  # (B, H, T, D)
                apply_rope(k, key_positions, self.base))  # (B, H, Tk, D)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", rope_base={self.base:g}"


def lookback_distance(weights: torch.Tensor) -> torch.Tensor:
    """How far back each query looks on average: ``Σ_j w[i, j] · (i - j)``, shape ``weights.shape[:-1]``.

    ``weights (..., Tq, Tk)`` are attention weights of self-attention; query ``i`` sits at key position
    ``i + Tk - Tq`` (the last ``Tq`` positions). A head that reads the previous token scores 1, one that
    reads the first token of the sequence scores its position. Keys after the query count negative.

    >>> lookback_distance(torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])).tolist()
    [0.0, 1.0, 0.5]
    """
    _check_tensor("weights", weights)
    if weights.dim() < 2 or not weights.is_floating_point():
        raise ValueError(f"weights must be a floating-point tensor (..., Tq, Tk), got shape "
                         f"{tuple(weights.shape)}")
    Tq, Tk = weights.shape[-2:]
    query_at = torch.arange(Tk - Tq, Tk, device=weights.device).unsqueeze(1)  # (Tq, 1)
    distance = (query_at - torch.arange(Tk, device=weights.device)).to(weights.dtype)  # (Tq, Tk)
    return (weights * distance).sum(dim=-1)


def attention_entropy(weights: torch.Tensor) -> torch.Tensor:
    """The entropy ``-Σ_j w_ij log w_ij`` (nats) of each query's attention row, shape ``weights.shape[:-1]``.

    0 for a head that looks at exactly one token, ``log n`` for one that spreads evenly over ``n``.

    >>> [round(h, 4) for h in attention_entropy(torch.tensor([[1.0, 0.0], [0.5, 0.5]])).tolist()]  # 0, log 2
    [0.0, 0.6931]
    """
    _check_tensor("weights", weights)
    if weights.dim() < 1 or not weights.is_floating_point():
        raise ValueError(f"weights must be a floating-point tensor (..., Tk), got shape "
                         f"{tuple(weights.shape)}")
    return 0.0 - torch.xlogy(weights, weights).sum(dim=-1)  # 0 log 0 = 0; "0.0 -" keeps +0.0, not -0.0


def sliding_window_mask(T: int, window: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Causal local attention: ``(T, T)`` boolean, ``True`` where ``0 <= i - j < window``.

    Each token sees itself and the ``window - 1`` tokens before it (Longformer's and Mistral's sliding
    window), so a row has at most ``window`` entries whatever the length: ``T · window`` pairs instead
    of ``T²``. Information from further back still arrives, one window per layer.

    >>> sliding_window_mask(4, 2).int().tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    """
    _check_int_arg("T", T)
    _check_int_arg("window", window)
    offset = torch.arange(T, device=device).unsqueeze(1) - torch.arange(T, device=device)  # (T, T): i - j
    return (offset >= 0) & (offset < window)


def strided_mask(T: int, stride: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The Sparse Transformer's two patterns in one mask (Child et al. 2019, arXiv:1904.10509):
    ``(T, T)`` boolean, ``True`` where ``j <= i`` and (``i - j < stride`` or ``(i - j) % stride == 0``).

    The *local* part sees the last ``stride`` tokens, the *strided* part every ``stride``-th token before
    that; with ``stride ≈ √T`` each row has about ``2√T`` entries, and any token reaches any earlier one in
    two steps (first along the stride, then locally).

    >>> strided_mask(5, 2).int().tolist()
    [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [1, 0, 1, 1, 1]]
    """
    _check_int_arg("T", T)
    _check_int_arg("stride", stride)
    offset = torch.arange(T, device=device).unsqueeze(1) - torch.arange(T, device=device)  # (T, T): i - j
    return (offset >= 0) & ((offset < stride) | (offset % stride == 0))


def online_softmax_step(
    running_max: torch.Tensor, running_sum: torch.Tensor, running_out: torch.Tensor,
    scores: torch.Tensor, values: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fold one chunk of keys into a running softmax-weighted sum (Milakov & Gimelshein 2018, "Online
    normalizer calculation for softmax"; the update FlashAttention is built on, Dao et al. 2022).

    The state after some chunks is ``running_max m (..., Tq, 1)``, the largest score seen so far;
    ``running_sum l (..., Tq, 1) = Σ exp(s - m)`` and ``running_out (..., Tq, dv) = Σ exp(s - m) v`` over
    the keys seen so far. A new chunk brings ``scores (..., Tq, c)`` (``-inf`` where masked) and
    ``values (..., c, dv)``. If its largest score exceeds ``m``, everything summed so far was exponentiated
    against too small a maximum; multiplying it by ``exp(m_old - m_new)`` corrects that exactly. Start from
    ``(-inf, 0, 0)``; after the last chunk ``running_out / running_sum`` is the attention output.

    >>> s, v = torch.tensor([[1.0, 3.0]]), torch.tensor([[10.0], [20.0]])
    >>> m, l, o = online_softmax_step(torch.full((1, 1), -math.inf), torch.zeros(1, 1), torch.zeros(1, 1),
    ...                               s[:, :1], v[:1])            # the first key alone
    >>> m, l, o = online_softmax_step(m, l, o, s[:, 1:], v[1:])    # then the second
    >>> torch.allclose(o / l, torch.softmax(s, -1) @ v)
    True
    """
    block_max = scores.amax(dim=-1, keepdim=True)  # (..., Tq, 1)
    new_max = torch.maximum(running_max, block_max)
    # a row that has seen only masked keys keeps m = -inf: subtract 0 there, so exp(-inf) = 0, not NaN
    shift = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))  # (..., Tq, 1)
    correction = torch.exp(running_max - shift)  # (..., Tq, 1): rescales what was summed so far
    p = torch.exp(scores - shift)  # (..., Tq, c)
    new_sum = running_sum * correction + p.sum(dim=-1, keepdim=True)  # (..., Tq, 1)
    new_out = running_out * correction + p @ values  # (..., Tq, c) @ (..., c, dv) -> (..., Tq, dv)
    return new_max, new_sum, new_out


def _scores_shape(q: torch.Tensor, k: torch.Tensor) -> torch.Size:
    return torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2])


def chunked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk_size: int, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Attention that visits the keys ``chunk_size`` at a time and never holds the ``(Tq, Tk)`` scores.

    The output equals ``scaled_dot_product_attention(q, k, v, mask)[0]`` (to float rounding): the same
    softmax, computed with ``online_softmax_step``. At any moment it holds one ``(Tq, chunk_size)`` block
    of scores and the running ``(Tq, dv)`` output, so its memory grows like ``Tq · (chunk_size + dv)``,
    linearly in the length, where the readable path's grows like ``Tq · Tk``. (FlashAttention also tiles
    the queries and keeps every tile in a GPU's fast on-chip memory; the arithmetic is this.)

    ``mask`` as in ``scaled_dot_product_attention`` (boolean, ``True`` = may attend); a query whose row
    of ``mask`` is all ``False`` has nothing to average and is a ``ValueError`` here.

    >>> g = torch.Generator().manual_seed(0)
    >>> q, k, v = (torch.randn(2, 7, 4, generator=g) for _ in range(3))
    >>> torch.allclose(chunked_attention(q, k, v, chunk_size=3), scaled_dot_product_attention(q, k, v)[0],
    ...                atol=1e-6)
    True
    """
    _check_qkv(q, k, v)
    _check_int_arg("chunk_size", chunk_size)
    Tk = k.shape[-2]
    if mask is not None:
        _check_mask(mask, _scores_shape(q, k))
        if not mask.any(dim=-1).all():
            raise ValueError("mask has a query row that is all False (a query with no key to attend to); "
                             "chunked_attention needs at least one allowed key in every row")
    scale = 1.0 / math.sqrt(q.shape[-1])
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    running_max = torch.full((*lead, q.shape[-2], 1), -math.inf, dtype=q.dtype, device=q.device)
    running_sum = torch.zeros_like(running_max)  # (..., Tq, 1)
    running_out = torch.zeros((*lead, q.shape[-2], v.shape[-1]), dtype=q.dtype, device=q.device)
    for start in range(0, Tk, chunk_size):
        stop = min(start + chunk_size, Tk)
        scores = (q @ k[..., start:stop, :].transpose(-2, -1)) * scale  # (..., Tq, d) @ (..., d, c)
        if mask is not None:
            block = mask if mask.shape[-1] == 1 else mask[..., start:stop]  # (..., Tq, c) or broadcast
            scores = scores.masked_fill(~block, float("-inf"))
        running_max, running_sum, running_out = online_softmax_step(
            running_max, running_sum, running_out, scores, v[..., start:stop, :])
        del scores  # only one block of scores is ever alive
    return running_out / running_sum  # (..., Tq, dv)


def sliding_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int, chunk_size: int = 64
) -> torch.Tensor:
    """Self-attention under ``sliding_window_mask(T, window)`` that only computes the scores it keeps.

    A mask alone saves nothing: the masked scores are still computed and then thrown away. Here the
    queries go ``chunk_size`` at a time, and each block scores only the keys that its window can reach
    (``chunk_size + window - 1`` of them), so time and memory grow like ``T · (chunk_size + window)``
    instead of ``T²``. Equals ``scaled_dot_product_attention(q, k, v, sliding_window_mask(T, window))[0]``.

    >>> g = torch.Generator().manual_seed(0)
    >>> q, k, v = (torch.randn(1, 10, 4, generator=g) for _ in range(3))
    >>> full = scaled_dot_product_attention(q, k, v, mask=sliding_window_mask(10, 3))[0]
    >>> torch.allclose(sliding_window_attention(q, k, v, window=3, chunk_size=4), full, atol=1e-6)
    True
    """
    _check_qkv(q, k, v)
    _check_int_arg("window", window)
    _check_int_arg("chunk_size", chunk_size)
    T = q.shape[-2]
    if k.shape[-2] != T:
        raise ValueError(f"sliding_window_attention is self-attention: q and k must have the same length, "
                         f"got {T} and {k.shape[-2]}")
    outputs = []
    for start in range(0, T, chunk_size):
        stop = min(start + chunk_size, T)
        first = max(0, start - window + 1)  # the earliest key any query of this block may see
        offset = (torch.arange(start, stop, device=q.device).unsqueeze(1)
                  - torch.arange(first, stop, device=q.device))  # (c, c + w - 1): i - j
        local = (offset >= 0) & (offset < window)
        out, _ = scaled_dot_product_attention(q[..., start:stop, :], k[..., first:stop, :],
                                              v[..., first:stop, :], mask=local)  # (..., c, dv)
        outputs.append(out)
    return torch.cat(outputs, dim=-2)  # (..., T, dv)


class _LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of every tensor storage created under it while it is alive, and the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage address -> [bytes, live tensors using it]
        self.current = self.peak = 0

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
            if key in self.live:  # a view of (or in-place result on) a tensor made under the counter
                self.live[key][1] += 1
            elif key in inputs or size == 0:  # a view of a tensor that existed before: nothing new
                continue
            else:  # a fresh allocation
                self.live[key] = [size, 1]
                self.current += size
                self.peak = max(self.peak, self.current)
            weakref.finalize(t, self._release, key)
        return out


def peak_memory_bytes(fn, *args, **kwargs) -> int:
    """The most bytes of tensors that ``fn(*args, **kwargs)`` had alive at one time, its result included.

    On a CUDA device (found from the tensors in ``args``) this is ``torch.cuda.max_memory_allocated``
    above what was allocated before the call. On the CPU, PyTorch keeps no such statistic, so every
    operation's result is counted as it is created and discounted when it is freed (a
    ``TorchDispatchMode``): the bytes that the Python-visible computation holds, which is what differs
    between attention paths. Scratch buffers inside a single kernel (a fused attention's tiles, a matrix
    multiply's packing) are not seen. Runs under ``torch.no_grad()`` (autograd would keep intermediates).

    >>> peak_memory_bytes(lambda x: (x + 1) * 2, torch.zeros(1000))   # x + 1 and its double: 2 x 4000 bytes
    8000
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    with torch.no_grad():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            result = fn(*args, **kwargs)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - before
            del result
            return int(peak)
        counter = _LiveTensorBytes()
        with counter:
            result = fn(*args, **kwargs)
        del result
        return int(counter.peak)


# --- Lecture 7: the attention formula step by step, and why it divides by √d_k (Q32) ----------------------

def attention_steps(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every intermediate of ``softmax(Q Kᵀ / √d_k) V``, for drawing: ``scores = Q Kᵀ`` ``(..., Tq, Tk)``,
    ``scaled = scores / √d_k``, ``weights = softmax(scaled)`` (masked keys get weight 0) and ``output =
    weights V`` ``(..., Tq, dv)``. ``output`` and ``weights`` are those of ``scaled_dot_product_attention``.

    >>> steps = attention_steps(torch.ones(1, 4), torch.ones(2, 4), torch.eye(2))
    >>> steps["scores"].tolist(), steps["scaled"].tolist(), steps["output"].tolist()   # 4 / √4 = 2
    ([[4.0, 4.0]], [[2.0, 2.0]], [[0.5, 0.5]])
    """
    output, weights = scaled_dot_product_attention(q, k, v, mask)  # checks the arguments
    scores = q @ k.transpose(-2, -1)  # (..., Tq, d) @ (..., d, Tk) -> (..., Tq, Tk)
    return {"scores": scores, "scaled": scores / math.sqrt(q.shape[-1]), "weights": weights, "output": output}


def score_saturation(d_k: int, n_keys: int = 16, n_samples: int = 2000, scaled: bool = True,
                     generator: torch.Generator | None = None) -> dict[str, float]:
    """What happens to one query's attention over ``n_keys`` keys when ``q`` and the keys have independent
    standard-normal entries in ``d_k`` dimensions, averaged over ``n_samples`` draws:

    - ``score_variance``: the variance of a score ``q · k`` (divided by √d_k when ``scaled``). Unscaled it
      is ``d_k``: a sum of ``d_k`` independent products of variance 1; scaled it is 1, whatever ``d_k``;
    - ``max_weight``: the mean largest softmax weight, from ``1 / n_keys`` (uniform) to 1 (one-hot);
    - ``jacobian_norm``: the mean Frobenius norm of the softmax's Jacobian ``diag(s) − s sᵀ``, the factor
      every gradient flowing back through the softmax is multiplied by; it tends to 0 as ``s`` saturates.

    >>> stats = score_saturation(64, scaled=False, generator=torch.Generator().manual_seed(0))
    >>> 50 < stats["score_variance"] < 80, stats["max_weight"] > 0.8
    (True, True)
    """
    for name, value in (("d_k", d_k), ("n_keys", n_keys), ("n_samples", n_samples)):
        check_positive_int(name, value)
    if not isinstance(scaled, bool):
        raise TypeError(f"scaled must be a bool, got {type(scaled).__name__}")
    q = torch.randn(n_samples, 1, d_k, generator=generator, dtype=torch.float64)  # (S, 1, d_k)
    k = torch.randn(n_samples, n_keys, d_k, generator=generator, dtype=torch.float64)  # (S, n, d_k)
    scores = (q @ k.transpose(1, 2))[:, 0]  # (S, n)
    if scaled:
        scores = scores / math.sqrt(d_k)
    s = torch.softmax(scores, dim=-1)  # (S, n)
    jacobians = torch.diag_embed(s) - s[:, :, None] * s[:, None, :]  # (S, n, n): diag(s) - s sᵀ per sample
    return {"score_variance": scores.var().item(), "max_weight": s.max(dim=-1).values.mean().item(),
            "jacobian_norm": torch.linalg.matrix_norm(jacobians).mean().item()}
