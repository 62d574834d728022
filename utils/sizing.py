"""The arithmetic of real model sizes: parameters, memory, the KV cache, latency and compute budgets.

Lecture 1 needs it to say why a 65-billion-parameter model does not fit on one GPU (fine-tuning memory, the
KV cache of a long window); Lecture 10 to say what makes a model *large* and what it costs to serve. A model
of billions of parameters cannot be built on a laptop, but its size is a closed form of its configuration:

- ``TransformerShape``: a LLaMA-style decoder (Touvron et al. 2023), its exact parameter count (equal to
  ``transformers``' ``LlamaForCausalLM`` built from the same configuration) and its LoRA adapters;
- ``gpt2_parameter_count``: GPT-2 / GPT-3 (Radford et al. 2019; Brown et al. 2020), tied embeddings;
- ``finetune_memory`` / ``full_finetune_memory``: bytes to fine-tune (QLoRA's and ZeRO's accounting);
- ``kv_cache_bytes``, ``weight_bytes``, ``inference_resources``: what serving a model needs, and a
  lower bound on its time per token (reading every weight once per step);
- ``training_flops``, ``chinchilla_optimal``: the compute of training, and Chinchilla's rule of about
  20 tokens per parameter (Hoffmann et al. 2022); ``fit_power_law`` for scaling curves (Kaplan et al. 2020).

>>> gpt2_parameter_count(vocab_size=50257, block_size=1024, d_model=768, n_layers=12)   # GPT-2 small
124439808
>>> LLAMA_SHAPES["7B"].n_params
6738415616
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._validation import check_positive_int

__all__ = [
    # parameters
    "TransformerShape", "LLAMA_SHAPES", "gpt2_parameter_count", "GPT_SHAPES", "PUBLISHED_SIZES",
    # memory
    "WEIGHT_FORMATS", "finetune_memory", "full_finetune_memory", "kv_cache_bytes", "BYTES_PER_PARAMETER",
    "weight_bytes",
    # serving
    "Accelerator", "ACCELERATORS", "inference_resources",
    # training compute
    "training_flops", "CHINCHILLA_TOKENS_PER_PARAMETER", "chinchilla_optimal", "fit_power_law",
]


# ----------------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TransformerShape:
    """The sizes of a LLaMA-style decoder (no biases, SwiGLU MLP with 3 matrices, untied output head).

    ``kv_dim`` is the width of the key/value projections (``d_model`` for multi-head attention, smaller
    with grouped-query attention as in Llama 2 70B).
    """

    d_model: int
    n_layers: int
    d_ff: int
    kv_dim: int
    vocab_size: int = 32000

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layers", "d_ff", "kv_dim", "vocab_size"):
            check_positive_int(name, getattr(self, name))

    def linear_shapes(self) -> list[tuple[int, int]]:
        """``(in, out)`` of the seven linear layers of one block: q, k, v, o, gate, up, down."""
        d, kv, ff = self.d_model, self.kv_dim, self.d_ff
        return [(d, d), (d, kv), (d, kv), (d, d), (d, ff), (d, ff), (ff, d)]

    @property
    def block_params(self) -> int:
        """Parameters of one block: its seven linear layers and its two RMSNorm gains (``d_model`` each).

        >>> TransformerShape(d_model=4, n_layers=1, d_ff=8, kv_dim=4, vocab_size=10).block_params
        168
        """
        return sum(i * o for i, o in self.linear_shapes()) + 2 * self.d_model

    @property
    def n_params(self) -> int:
        """All parameters: embeddings, output head, the blocks' linears and RMSNorm gains."""
        return 2 * self.vocab_size * self.d_model + self.n_layers * self.block_params + self.d_model

    def lora_params(self, r: int) -> int:
        """Adapter parameters with LoRA of rank ``r`` on every linear layer of every block (QLoRA's setup)."""
        from .lora import lora_parameter_count  # noqa: PLC0415 (utils.lora imports this module)

        return self.n_layers * sum(lora_parameter_count(i, o, r) for i, o in self.linear_shapes())

    def kv_cache_bytes(self, seq_len: int, batch: int = 1, bytes_per_value: int = 2) -> int:
        """Bytes of this model's KV cache for ``batch`` sequences of ``seq_len`` tokens (``kv_cache_bytes``
        with ``n_kv_heads · head_dim = kv_dim``).

        >>> LLAMA_SHAPES["7B"].kv_cache_bytes(4096) == 2 * 2**30     # 2 GiB at Llama 2's window, fp16
        True
        """
        return kv_cache_bytes(self.n_layers, 1, self.kv_dim, seq_len, batch, bytes_per_value)


# Published architectures (Touvron et al. 2023a, LLaMA, Table 2; 2023b, Llama 2 for 70B with 8 KV heads).
LLAMA_SHAPES: dict[str, TransformerShape] = {
    "7B": TransformerShape(d_model=4096, n_layers=32, d_ff=11008, kv_dim=4096),
    "13B": TransformerShape(d_model=5120, n_layers=40, d_ff=13824, kv_dim=5120),
    "65B": TransformerShape(d_model=8192, n_layers=80, d_ff=22016, kv_dim=8192),
    "70B": TransformerShape(d_model=8192, n_layers=80, d_ff=28672, kv_dim=1024),
}


def gpt2_parameter_count(vocab_size: int, block_size: int, d_model: int, n_layers: int) -> int:
    """Parameters of GPT-2 (Radford et al. 2019) with these sizes; GPT-3 (Brown et al. 2020) has the same.

    Token embeddings ``V·d`` (tied to the output head, so counted once), learned positions
    ``block_size·d``, and per block ``12 d² + 13 d``: the query/key/value projection ``d × 3d`` and the
    output projection ``d × d`` (4 d² and 4 d of biases), the MLP ``d × 4d`` and ``4d × d`` (8 d² and
    5 d of biases), two LayerNorms (4 d); a final LayerNorm (2 d).

    >>> gpt2_parameter_count(50257, 1024, 1600, 48)      # GPT-2 XL, the "1.5B" model
    1557611200
    """
    for name, value in (("vocab_size", vocab_size), ("block_size", block_size), ("d_model", d_model),
                        ("n_layers", n_layers)):
        check_positive_int(name, value)
    d = d_model
    per_block = 12 * d * d + 13 * d
    return vocab_size * d + block_size * d + n_layers * per_block + 2 * d


# GPT-2 (Radford et al. 2019, Table 2: layers and d_model; vocabulary 50,257, context 1,024) and GPT-3
# (Brown et al. 2020, Table 2.1: n_layers and d_model of each size; context 2,048, the same vocabulary).
GPT_SHAPES: dict[str, dict[str, int]] = {
    "GPT-2 small": {"vocab_size": 50257, "block_size": 1024, "d_model": 768, "n_layers": 12},
    "GPT-2 medium": {"vocab_size": 50257, "block_size": 1024, "d_model": 1024, "n_layers": 24},
    "GPT-2 large": {"vocab_size": 50257, "block_size": 1024, "d_model": 1280, "n_layers": 36},
    "GPT-2 XL": {"vocab_size": 50257, "block_size": 1024, "d_model": 1600, "n_layers": 48},
    "GPT-3 Small": {"vocab_size": 50257, "block_size": 2048, "d_model": 768, "n_layers": 12},
    "GPT-3 Medium": {"vocab_size": 50257, "block_size": 2048, "d_model": 1024, "n_layers": 24},
    "GPT-3 Large": {"vocab_size": 50257, "block_size": 2048, "d_model": 1536, "n_layers": 24},
    "GPT-3 XL": {"vocab_size": 50257, "block_size": 2048, "d_model": 2048, "n_layers": 24},
    "GPT-3 2.7B": {"vocab_size": 50257, "block_size": 2048, "d_model": 2560, "n_layers": 32},
    "GPT-3 6.7B": {"vocab_size": 50257, "block_size": 2048, "d_model": 4096, "n_layers": 32},
    "GPT-3 13B": {"vocab_size": 50257, "block_size": 2048, "d_model": 5140, "n_layers": 40},
    "GPT-3 175B": {"vocab_size": 50257, "block_size": 2048, "d_model": 12288, "n_layers": 96},
}

# What the sources say each model has, and where they say it. GPT-2's paper gave 117M, 345M, 762M and
# 1542M; the released weights have 124M, 355M, 774M and 1558M parameters, and OpenAI's gpt-2 repository
# (README) says the original counts were wrong. The sizes below are the released ones for GPT-2, and the
# papers' tables for GPT-3 (Brown et al. 2020, Table 2.1) and LLaMA (Touvron et al. 2023a, Table 2; Llama 2:
# Touvron et al. 2023b, Table 1, and its model card, 69.0B for "70B").
PUBLISHED_SIZES: dict[str, tuple[float, str]] = {
    "GPT-2 small": (124e6, "released weights (openai/gpt-2 README: not the paper's 117M)"),
    "GPT-2 medium": (355e6, "released weights (the paper: 345M)"),
    "GPT-2 large": (774e6, "released weights (the paper: 762M)"),
    "GPT-2 XL": (1558e6, "released weights (the paper: 1542M)"),
    "GPT-3 Small": (125e6, "Brown et al. 2020, Table 2.1"),
    "GPT-3 Medium": (350e6, "Brown et al. 2020, Table 2.1"),
    "GPT-3 Large": (760e6, "Brown et al. 2020, Table 2.1"),
    "GPT-3 XL": (1.3e9, "Brown et al. 2020, Table 2.1"),
    "GPT-3 2.7B": (2.7e9, "Brown et al. 2020, Table 2.1"),
    "GPT-3 6.7B": (6.7e9, "Brown et al. 2020, Table 2.1"),
    "GPT-3 13B": (13.0e9, "Brown et al. 2020, Table 2.1"),
    "GPT-3 175B": (175.0e9, "Brown et al. 2020, Table 2.1"),
    "LLaMA 7B": (6.7e9, "Touvron et al. 2023a, Table 2"),
    "LLaMA 13B": (13.0e9, "Touvron et al. 2023a, Table 2"),
    "LLaMA 65B": (65.2e9, "Touvron et al. 2023a, Table 2"),
    "Llama 2 70B": (69.0e9, "Touvron et al. 2023b; model card"),
}


# ----------------------------------------------------------------------------------------------------
# Memory
# ----------------------------------------------------------------------------------------------------

WEIGHT_FORMATS = ("fp16", "int8", "nf4")
_OPTIMIZER_BYTES = {"adam": 8, "sgd": 0}  # Adam keeps two fp32 moments per trained parameter


def _check_count(name: str, value: int | float, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"{name} must be a number >= {minimum}, got {value!r}")


def finetune_memory(n_params: int | float, weight_format: str, lora_params: int | float = 0,
                    optimizer: str = "adam", blocksize: int = 64, double_quant: bool = True
                    ) -> dict[str, float]:
    """Bytes needed to fine-tune adapters on a frozen base, component by component.

    Assumptions (the QLoRA recipe, Dettmers et al. 2023): the frozen base weights are stored in
    ``weight_format`` — ``fp16`` (2 bytes), ``int8`` (1 byte + one fp32 absmax per ``blocksize``) or ``nf4``
    (4 bits + constants, ``bits_per_parameter(blocksize, double_quant)``); the adapters and their
    gradients are 16-bit (2 bytes each); the optimizer keeps two fp32 moments per adapter parameter
    (``"adam"``, 8 bytes) or none (``"sgd"``). **Not** counted: activations (they grow with batch size and
    sequence length), temporary dequantized weights, framework overhead. Returns a dict with keys
    ``weights``, ``quant_constants``, ``adapters``, ``adapter_gradients``, ``optimizer_state``
    (sum the values for the total).

    >>> m = finetune_memory(1e9, "nf4", lora_params=1e6, double_quant=False)
    >>> m["weights"], m["quant_constants"], m["optimizer_state"]
    (500000000.0, 62500000.0, 8000000.0)
    """
    from .lora import _check_blocksize, bits_per_parameter  # noqa: PLC0415 (utils.lora imports this module)

    _check_count("n_params", n_params, 1)
    _check_count("lora_params", lora_params, 0)
    if weight_format not in WEIGHT_FORMATS:
        raise ValueError(f"weight_format must be one of {WEIGHT_FORMATS}, got {weight_format!r}")
    if optimizer not in _OPTIMIZER_BYTES:
        raise ValueError(f"optimizer must be one of {tuple(_OPTIMIZER_BYTES)}, got {optimizer!r}")
    _check_blocksize(blocksize)
    n = float(n_params)
    if weight_format == "fp16":
        weights, constants = 2 * n, 0.0
    elif weight_format == "int8":
        weights, constants = n, 4 * n / blocksize
    else:
        weights, constants = n / 2, n * (bits_per_parameter(blocksize, double_quant) - 4) / 8
    return {
        "weights": weights,
        "quant_constants": constants,
        "adapters": 2.0 * lora_params,
        "adapter_gradients": 2.0 * lora_params,
        "optimizer_state": float(_OPTIMIZER_BYTES[optimizer] * lora_params),
    }


def full_finetune_memory(n_params: int | float, optimizer: str = "adam") -> dict[str, float]:
    """Bytes to fine-tune ALL parameters with mixed-precision Adam, for contrast with ``finetune_memory``.

    fp16 weights (2) + fp16 gradients (2) + an fp32 master copy (4) + two fp32 Adam moments (8) = 16 bytes
    per parameter (the ZeRO paper's accounting, Rajbhandari et al. 2020); activations not counted.

    >>> sum(full_finetune_memory(1e9).values()) / 1e9
    16.0
    """
    _check_count("n_params", n_params, 1)
    if optimizer not in _OPTIMIZER_BYTES:
        raise ValueError(f"optimizer must be one of {tuple(_OPTIMIZER_BYTES)}, got {optimizer!r}")
    n = float(n_params)
    return {"weights": 2 * n, "gradients": 2 * n, "master_weights": 4 * n,
            "optimizer_state": float(_OPTIMIZER_BYTES[optimizer]) * n}


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


# Bytes of one stored weight. int8 and int4 keep a scale per row (LLM.int8, Dettmers et al. 2022) or per
# block of weights besides; one fp16 scale per row of 4,096 weights adds 0.05 %, left out here.
BYTES_PER_PARAMETER: dict[str, float] = {"fp32": 4.0, "fp16": 2.0, "int8": 1.0, "int4": 0.5}


def weight_bytes(n_params: int | float, weight_format: str = "fp16") -> float:
    """Bytes to store ``n_params`` weights in ``weight_format`` (a key of ``BYTES_PER_PARAMETER``).

    >>> weight_bytes(7e9, "fp16") / 1e9, weight_bytes(7e9, "int8") / 1e9
    (14.0, 7.0)
    """
    _check_count("n_params", n_params, 1)
    if weight_format not in BYTES_PER_PARAMETER:
        raise ValueError(f"weight_format must be one of {tuple(BYTES_PER_PARAMETER)}, got {weight_format!r}")
    return float(n_params) * BYTES_PER_PARAMETER[weight_format]


# ----------------------------------------------------------------------------------------------------
# Serving: memory and a lower bound on the time per token
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Accelerator:
    """What bounds generation speed: memory (bytes), memory bandwidth (bytes/s), peak dense fp16 FLOP/s."""

    memory: float
    bandwidth: float
    flops: float


# Vendors' data sheets: NVIDIA A100 80GB SXM (2,039 GB/s, 312 TFLOP/s dense BF16), H100 SXM (3.35 TB/s,
# 989 TFLOP/s dense BF16), GeForce RTX 4090 (24 GB, 1,008 GB/s, 165 TFLOP/s dense FP16 with FP32
# accumulate); a laptop with two channels of DDR5-5600 reads about 90 GB/s (2 x 8 bytes x 5.6 GT/s).
ACCELERATORS: dict[str, Accelerator] = {
    "laptop CPU (32 GB DDR5)": Accelerator(memory=32e9, bandwidth=89.6e9, flops=1e12),
    "RTX 4090 (24 GB)": Accelerator(memory=24e9, bandwidth=1008e9, flops=165e12),
    "A100 (80 GB)": Accelerator(memory=80e9, bandwidth=2039e9, flops=312e12),
    "H100 SXM (80 GB)": Accelerator(memory=80e9, bandwidth=3350e9, flops=989e12),
}


def inference_resources(shape: TransformerShape, seq_len: int, batch: int = 1, weight_format: str = "fp16",
                        kv_bytes_per_value: int = 2, accelerator: Accelerator | None = None
                        ) -> dict[str, float]:
    """Memory and speed of generating with ``shape`` at ``seq_len`` tokens of context for ``batch``
    sequences. Returns bytes ``weights``, ``kv_cache``, ``total``, and, given an ``accelerator``,
    ``seconds_per_step`` and ``tokens_per_second`` (``batch`` tokens per step) and ``fits`` (1.0 or 0.0).

    Each decoding step reads every weight once (for the whole batch) and each sequence's KV cache, and
    does about ``2 · n_params`` FLOPs per token (Kaplan et al. 2020). The step takes at least the longer
    of the two: ``max(bytes / bandwidth, FLOPs / peak)`` (the roofline). At batch 1 the bytes win by far,
    so generation is bound by memory bandwidth, not arithmetic. This is a lower bound: real kernels
    reach a fraction of the peaks.

    >>> r = inference_resources(LLAMA_SHAPES["7B"], 4096, accelerator=ACCELERATORS["A100 (80 GB)"])
    >>> round(r["weights"] / 1e9, 1), round(r["kv_cache"] / 2**30, 1), round(1000 * r["seconds_per_step"], 1)
    (13.5, 2.0, 7.7)
    """
    if not isinstance(shape, TransformerShape):
        raise TypeError(f"shape must be a TransformerShape, got {type(shape).__name__}")
    check_positive_int("seq_len", seq_len)
    check_positive_int("batch", batch)
    weights = weight_bytes(shape.n_params, weight_format)
    kv = float(shape.kv_cache_bytes(seq_len, batch, kv_bytes_per_value))
    result = {"weights": weights, "kv_cache": kv, "total": weights + kv}
    if accelerator is not None:
        if not isinstance(accelerator, Accelerator):
            raise TypeError(f"accelerator must be an Accelerator, got {type(accelerator).__name__}")
        memory_time = (weights + kv) / accelerator.bandwidth
        compute_time = 2.0 * shape.n_params * batch / accelerator.flops
        step = max(memory_time, compute_time)
        result |= {"seconds_per_step": step, "tokens_per_second": batch / step,
                   "fits": float(weights + kv <= accelerator.memory)}
    return result


# ----------------------------------------------------------------------------------------------------
# Training compute and scaling
# ----------------------------------------------------------------------------------------------------

CHINCHILLA_TOKENS_PER_PARAMETER = 20.0  # Hoffmann et al. 2022: Chinchilla, 70B parameters, 1.4T tokens


def training_flops(n_params: int | float, n_tokens: int | float) -> float:
    """``C ≈ 6 N D``: a forward pass costs about 2 FLOPs per parameter per token, the backward pass twice
    that (Kaplan et al. 2020, section 2.1).

    >>> training_flops(70e9, 1.4e12)           # Chinchilla
    5.88e+23
    """
    _check_count("n_params", n_params, 1)
    _check_count("n_tokens", n_tokens, 1)
    return 6.0 * float(n_params) * float(n_tokens)


def chinchilla_optimal(compute_flops: float,
                       tokens_per_parameter: float = CHINCHILLA_TOKENS_PER_PARAMETER) -> tuple[float, float]:
    """The compute-optimal ``(n_params, n_tokens)`` for a budget of ``compute_flops``, by Hoffmann et al.'s
    (2022) rule of thumb: train on ``tokens_per_parameter`` (about 20) tokens per parameter. With
    ``C = 6 N D`` and ``D = 20 N``: ``N = sqrt(C / 120)``.

    >>> n, d = chinchilla_optimal(5.88e23)
    >>> round(n / 1e9), round(d / 1e12, 1)     # Chinchilla: 70B parameters, 1.4T tokens
    (70, 1.4)
    """
    for name, value in (("compute_flops", compute_flops), ("tokens_per_parameter", tokens_per_parameter)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    n_params = math.sqrt(compute_flops / (6.0 * tokens_per_parameter))
    return n_params, tokens_per_parameter * n_params


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least squares of ``log y = log a + b log x``: returns ``(a, b)`` with ``y ≈ a · x^b``.

    Kaplan et al. (2020) found a language model's loss to fall as a power of its size, ``L ∝ N^-0.076``:
    a straight line on log-log axes, whose slope is the exponent.

    >>> a, b = fit_power_law([1, 10, 100], [5.0, 0.5, 0.05])
    >>> round(a, 6), round(b, 6)
    (5.0, -1.0)
    """
    xs, ys = [float(v) for v in x], [float(v) for v in y]
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"x and y must have the same length >= 2, got {len(xs)} and {len(ys)}")
    if min(xs) <= 0 or min(ys) <= 0:
        raise ValueError("x and y must be positive for a power-law fit (their logarithms are fitted)")
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((v - mx) ** 2 for v in lx)
    if sxx == 0:
        raise ValueError("x must hold at least two different values")
    slope = sum((u - mx) * (v - my) for u, v in zip(lx, ly, strict=True)) / sxx
    return math.exp(my - slope * mx), slope
