"""LoRA, 4-bit NormalFloat (NF4) quantization, QLoRA, and the arithmetic of fine-tuning memory.

Three ideas, each small enough to read in one sitting:

1. **LoRA** (Hu et al. 2021, arXiv:2106.09685). Freeze a linear layer ``W`` and learn a low-rank update:
   ``y = W x + (alpha / r) * B A x`` with ``A (r, in)`` random and ``B (out, r)`` zero, so the adapted
   layer starts as exactly the base layer. Only ``r * (in + out)`` numbers are trained, and after training
   ``B A`` can be folded into ``W`` (``merge``), so inference costs nothing extra.
2. **NF4** (Dettmers et al. 2023, QLoRA, arXiv:2305.14314). Store each weight as a 4-bit index into 16
   levels placed at quantiles of a normal distribution, after dividing each block of 64 weights by the
   block's largest absolute value (its *absmax*). *Double quantization* stores those absmax constants in
   8 bits as well, bringing the cost from 4.5 to about 4.127 bits per weight.
3. **QLoRA** = a frozen NF4 base (dequantized on the fly in ``forward``) + LoRA adapters in full precision.

>>> layer = LoRALinear(nn.Linear(8, 4), r=2, alpha=4)
>>> count_parameters(layer)          # (trainable = 2*8 + 4*2, total = that + 8*4 + 4)
(24, 60)
>>> x = torch.randn(3, 8)
>>> torch.equal(layer(x), layer.base(x))   # B = 0: the adapter starts as a no-op
True
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_positive_int

__all__ = [
    # LoRA
    "LoRALinear", "lora_linear", "add_lora", "merge_lora", "remove_lora", "count_parameters", "every_linear",
    "lora_parameter_count", "model_lora_parameter_count", "lora_rank_summary", "max_lora_rank",
    # NF4 and friends
    "NF4_LEVELS", "NF4_OFFSET", "UNIFORM4_LEVELS", "nf4_levels_from_quantiles",
    "quantize_nf4", "dequantize_nf4", "quantize_int4_uniform", "dequantize_int4_uniform",
    "pack_nibbles", "unpack_nibbles", "double_quantize_absmax", "dequantize_absmax",
    "bits_per_parameter", "nf4_storage_bytes", "quantize_int8", "dequantize_int8", "int8_copy",
    # QLoRA
    "QLoRALinear", "add_qlora",
    # memory accounting
    "TransformerShape", "LLAMA_SHAPES", "WEIGHT_FORMATS", "finetune_memory", "full_finetune_memory",
]

Target = Callable[[str, nn.Module], bool]


def every_linear(name: str, module: nn.Module) -> bool:
    """The default ``target`` of ``add_lora`` / ``add_qlora``: every ``nn.Linear`` (QLoRA's choice)."""
    return isinstance(module, nn.Linear)


# ----------------------------------------------------------------------------------------------------
# LoRA
# ----------------------------------------------------------------------------------------------------

def _check_rank(r: int, in_features: int, out_features: int) -> None:
    if isinstance(r, bool) or not isinstance(r, int):
        raise TypeError(f"r must be an int, got {type(r).__name__}")
    limit = min(in_features, out_features)
    if not 1 <= r <= limit:
        # a rank above min(in, out) adds parameters without adding expressiveness: B A is already full rank
        raise ValueError(f"r must be between 1 and min(in_features, out_features) = {limit}, got {r}")


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha must be a number, got {type(alpha).__name__}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")


def _check_dropout(dropout: float) -> None:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise TypeError(f"dropout must be a number, got {type(dropout).__name__}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def lora_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, lora_A: torch.Tensor,
                lora_B: torch.Tensor, scaling: float) -> torch.Tensor:
    """The LoRA forward as one function: ``x Wᵀ + b + scaling · x Aᵀ Bᵀ`` (Hu et al. 2021, eq. 3).

    ``x (..., in)``, ``weight (out, in)``, ``lora_A (r, in)``, ``lora_B (out, r)``. Multiplying ``x`` by
    ``Aᵀ`` first keeps the cost at ``r · (in + out)`` per row instead of forming the ``(out, in)`` product.

    >>> x, W, A, B = torch.ones(1, 2), torch.eye(2), torch.ones(1, 2), torch.ones(2, 1)
    >>> lora_linear(x, W, None, A, B, scaling=0.5)   # x + 0.5 * (1 + 1)
    tensor([[2., 2.]])
    """
    return F.linear(x, weight, bias) + scaling * ((x @ lora_A.T) @ lora_B.T)


def _attach_adapter(module: nn.Module, base: nn.Linear, r: int, alpha: float, dropout: float,
                    generator: torch.Generator | None) -> None:
    """Validate the LoRA arguments and give ``module`` its adapter: ``lora_A`` (random), ``lora_B`` (zeros),
    ``scaling = alpha / r`` and the adapter's input dropout. Shared by ``LoRALinear`` and ``QLoRALinear``."""
    if not isinstance(base, nn.Linear):
        raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
    _check_rank(r, base.in_features, base.out_features)
    _check_alpha(alpha)
    _check_dropout(dropout)
    module.r, module.alpha = r, alpha
    module.scaling = alpha / r  # Hu et al.: dividing by r lets one alpha work across ranks
    weight = base.weight.detach()
    module.lora_A = nn.Parameter(_lora_A_init(r, base.in_features, weight, generator))
    module.lora_B = nn.Parameter(weight.new_zeros(base.out_features, r))  # B = 0: starts as a no-op
    module.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()


def _adapter_output(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``scaling · dropout(x) Aᵀ Bᵀ``, computed in the adapters' precision and returned in ``x``'s."""
    h = module.dropout(x).to(module.lora_A.dtype)
    # (..., in) @ (in, r) @ (r, out) -> (..., out): never materialise the (out, in) update
    return (module.scaling * ((h @ module.lora_A.T) @ module.lora_B.T)).to(x.dtype)


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``(alpha / r) · B A`` (Hu et al. 2021).

    The wrapper takes ownership of ``base``, as peft does: it keeps the same object (no copy, so no extra
    memory) and **freezes its parameters in place** (``requires_grad = False``); their values are never
    changed. ``lora_A (r, in_features)`` starts random (Kaiming-uniform, peft's default) and
    ``lora_B (out_features, r)`` starts at zero, so the wrapped layer initially computes exactly
    ``base(x)``. ``dropout`` applies to the input of the adapter branch only.

    >>> layer = LoRALinear(nn.Linear(6, 3), r=2, alpha=8)
    >>> layer.scaling, tuple(layer.lora_A.shape), tuple(layer.lora_B.shape)
    (4.0, (2, 6), (3, 2))
    >>> layer.base.weight.requires_grad
    False
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.base = base  # registered first, so it prints first; validated just below
        _attach_adapter(self, base, r, alpha, dropout, generator)
        self.base.requires_grad_(False)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + _adapter_output(self, x)

    def delta_weight(self) -> torch.Tensor:
        """The update ``scaling · B A`` (out, in) that ``merge`` adds to the base weight."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def merge(self) -> nn.Linear:
        """A NEW plain ``nn.Linear`` with ``W + scaling · B A`` folded in; ``self.base`` is left untouched.

        Merged outputs equal unmerged ones up to float rounding (dropout is inactive in eval mode).
        """
        base = self.base
        merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                           device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            merged.weight.copy_(base.weight + self.delta_weight())
            if base.bias is not None:
                merged.bias.copy_(base.bias)
        return merged

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, scaling={self.scaling:g}"


def _lora_A_init(r: int, in_features: int, like: torch.Tensor,
                 generator: torch.Generator | None) -> torch.Tensor:
    """A fresh ``(r, in_features)`` matrix, Kaiming-uniform as peft initialises ``lora_A``."""
    # draw on the generator's device (a CPU generator cannot fill a CUDA tensor), then move
    on = generator.device if generator is not None else like.device
    tensor = torch.empty(r, in_features, device=on, dtype=torch.float32)
    nn.init.kaiming_uniform_(tensor, a=math.sqrt(5), generator=generator)
    return tensor.to(device=like.device, dtype=like.dtype)


def _check_target(target: Target) -> None:
    if not callable(target):
        raise TypeError(f"target must be a callable (name, module) -> bool, got {type(target).__name__}")


def _matching_linears(model: nn.Module, target: Target) -> list[str]:
    """Names of the ``nn.Linear`` submodules that ``target`` selects, skipping layers already wrapped."""
    _check_target(target)
    wrapped = [name for name, m in model.named_modules() if isinstance(m, (LoRALinear, QLoRALinear))]
    names = []
    for name, module in model.named_modules():
        if name == "" or not isinstance(module, nn.Linear):
            continue  # the root cannot be replaced in place; wrap a bare nn.Linear with LoRALinear instead
        if any(name.startswith(prefix + ".") for prefix in wrapped):
            continue  # the base inside a LoRALinear: never wrap twice
        if target(name, module):
            names.append(name)
    return names


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _swap_linears(model: nn.Module, target: Target, make: Callable[[nn.Linear], nn.Module]) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    names = _matching_linears(model, target)
    if not names:
        raise ValueError("target matched no nn.Linear submodule of model (the root module itself is never "
                         "replaced); check the names with [n for n, _ in model.named_modules()]")
    model.requires_grad_(False)
    for name in names:
        _replace(model, name, make(model.get_submodule(name)))
    return model


def add_lora(model: nn.Module, r: int, alpha: float, target: Target = every_linear, dropout: float = 0.0,
             generator: torch.Generator | None = None) -> nn.Module:
    """Model surgery: wrap every ``nn.Linear`` that ``target(name, module)`` selects in a ``LoRALinear``.

    Works **in place** and returns ``model`` (as peft's ``get_peft_model`` does): all existing parameters
    are frozen, so after the call only the adapters train. Pass ``copy.deepcopy(model)`` to keep the
    original. Raises ``ValueError`` when ``target`` selects nothing.

    >>> net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> net = add_lora(net, r=1, alpha=1, target=lambda name, m: name == "2")
    >>> type(net[0]).__name__, type(net[2]).__name__, count_parameters(net)
    ('Linear', 'LoRALinear', (6, 36))
    """
    return _swap_linears(model, target, lambda layer: LoRALinear(layer, r, alpha, dropout, generator))


def merge_lora(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every ``LoRALinear`` replaced by its merged ``nn.Linear``.

    The input model is not modified. The merged model has the architecture of the original base model
    (no adapter left), so it runs at the base model's speed.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    merged = copy.deepcopy(model)
    if isinstance(merged, LoRALinear):
        return merged.merge()
    names = [name for name, m in merged.named_modules() if isinstance(m, LoRALinear)]
    for name in names:
        _replace(merged, name, merged.get_submodule(name).merge())
    return merged


def remove_lora(model: nn.Module) -> nn.Module:
    """Undo ``add_lora``: put every ``LoRALinear``'s base layer back in its place, **unmerged**, in place;
    returns ``model`` (or, when ``model`` itself is a ``LoRALinear``, its base layer).

    The base layers are the very objects ``add_lora`` wrapped and LoRA training never changes them, so the
    model computes exactly what it computed before ``add_lora``, bit for bit, whatever the adapters learned
    (compare ``merge_lora``, which folds the adapters in). This is why a LoRA adapter cannot make the base
    model forget: the knowledge it had is still there, one call away. Parameters stay frozen as
    ``add_lora`` left them (``model.requires_grad_(True)`` makes them trainable again). ``QLoRALinear``
    layers are not touched (their base is stored in 4 bits, so it is no longer the original). A model
    without any ``LoRALinear`` is a ``ValueError``.

    >>> net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> x = torch.randn(2, 3)
    >>> before = net(x)
    >>> net = add_lora(net, r=1, alpha=1)
    >>> with torch.no_grad():
    ...     _ = net[2].lora_B.fill_(1.0)                    # pretend the adapter learned something
    >>> torch.equal(net(x), before), torch.equal(remove_lora(net)(x), before)
    (False, True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if isinstance(model, LoRALinear):
        return model.base
    names = [name for name, m in model.named_modules() if isinstance(m, LoRALinear)]
    if not names:
        raise ValueError("model holds no LoRALinear to remove (add_lora puts them in)")
    for name in names:  # outer names first; a LoRALinear never holds another, so any order works
        _replace(model, name, model.get_submodule(name).base)
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameters (shared parameters counted once; buffers not counted).

    >>> count_parameters(nn.Linear(3, 2))
    (8, 8)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    params = list(model.parameters())  # .parameters() already de-duplicates tied weights
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def lora_parameter_count(in_features: int, out_features: int, r: int) -> int:
    """Parameters of one LoRA adapter: ``r · (in + out)`` (A is r × in, B is out × r).

    >>> lora_parameter_count(4096, 4096, 8)   # one LLaMA-7B attention projection at rank 8
    65536
    """
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    _check_rank(r, in_features, out_features)
    return r * (in_features + out_features)


def model_lora_parameter_count(model: nn.Module, r: int, target: Target = every_linear) -> int:
    """Trainable parameters ``add_lora(model, r, ...)`` would create, computed without touching ``model``.

    >>> model_lora_parameter_count(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2)), r=2)
    28
    """
    names = _matching_linears(model, target)
    if not names:
        raise ValueError("target matched no nn.Linear submodule of model")
    layers = [model.get_submodule(name) for name in names]
    return sum(lora_parameter_count(m.in_features, m.out_features, r) for m in layers)


def max_lora_rank(model: nn.Module, target: Target = every_linear) -> int:
    """The largest rank ``add_lora`` accepts for these targets: the smallest ``min(in, out)`` among them.

    >>> max_lora_rank(nn.Sequential(nn.Linear(8, 3), nn.Linear(3, 8)))
    3
    """
    names = _matching_linears(model, target)
    if not names:
        raise ValueError("target matched no nn.Linear submodule of model")
    layers = [model.get_submodule(name) for name in names]
    return min(min(m.in_features, m.out_features) for m in layers)


def lora_rank_summary(model: nn.Module, r: int, target: Target = every_linear) -> dict[str, float]:
    """What ``add_lora(model, r, ...)`` would give, without touching ``model``: the number of trainable
    parameters, the total, and the trainable fraction (``trainable / total``), as ``count_parameters``
    would report after the call.

    >>> lora_rank_summary(nn.Sequential(nn.Linear(4, 4, bias=False)), r=1)   # 8 adapter + 16 frozen
    {'trainable': 8, 'total': 24, 'fraction': 0.3333333333333333}
    """
    trainable = model_lora_parameter_count(model, r, target)
    total = count_parameters(model)[1] + trainable
    return {"trainable": trainable, "total": total, "fraction": trainable / total}


# ----------------------------------------------------------------------------------------------------
# NF4: 4-bit NormalFloat (Dettmers et al. 2023, Section 3)
# ----------------------------------------------------------------------------------------------------

# The 16 levels of bitsandbytes' NF4 data type (bitsandbytes.functional.create_normal_map), ascending.
NF4_LEVELS = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
])
# Probability of the outermost quantile. It equals 1 - (1/30 + 1/32) / 2 to seven digits: halfway
# between the centres of the end bins of a 15-bin and a 16-bin split of [0, 1].
NF4_OFFSET = 0.9677083
# The baseline: 16 evenly spaced levels on [-1, 1] (bitsandbytes' uniform 4-bit map). Same storage as NF4,
# only the placement of the levels differs, so comparing the two isolates the benefit of normal quantiles.
UNIFORM4_LEVELS = torch.linspace(-1.0, 1.0, 16)


def nf4_levels_from_quantiles(offset: float = NF4_OFFSET) -> torch.Tensor:
    """Derive the 16 NF4 levels from quantiles of N(0, 1), as QLoRA does (Dettmers et al. 2023, Sec. 3).

    An exact zero is wanted (padding and zero weights stay exact), and 16 levels cannot be symmetric
    around it, so the positive side gets 8 levels and the negative side 7: the quantiles of N(0, 1) at 9
    evenly spaced probabilities from ``offset`` down to 0.5 (dropping the one at 0.5, which is 0) on the
    positive side, the mirrored quantiles of 8 probabilities on the negative side, plus 0. Dividing by
    the largest puts them on [-1, 1]. ``offset < 1`` avoids the infinite quantile at probability 1.

    >>> levels = nf4_levels_from_quantiles()
    >>> levels.shape, levels[0].item(), levels[7].item(), levels[-1].item()
    (torch.Size([16]), -1.0, 0.0, 1.0)
    """
    if not 0.5 < offset < 1.0:
        raise ValueError(f"offset must be in (0.5, 1), got {offset}")
    inv_cdf = statistics.NormalDist().inv_cdf
    positive = [inv_cdf(p) for p in torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1].tolist()]
    negative = [-inv_cdf(p) for p in torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1].tolist()]
    values = torch.tensor(sorted(positive + [0.0] + negative), dtype=torch.float64)
    return (values / values.max()).float()


def _check_blocksize(blocksize: int, name: str = "blocksize") -> None:
    check_positive_int(name, blocksize)


def _blocks(flat: torch.Tensor, blocksize: int) -> torch.Tensor:
    """(N,) -> (n_blocks, blocksize), zero-padding the last block (zeros never change a block's absmax)."""
    pad = (-flat.numel()) % blocksize
    return F.pad(flat, (0, pad)).view(-1, blocksize)  # (n_blocks, blocksize)


def _quantize_blockwise(weight: torch.Tensor, levels: torch.Tensor, blocksize: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if not weight.is_floating_point():
        raise ValueError(f"weight must be a floating-point tensor, got dtype {weight.dtype}")
    if weight.numel() == 0:
        raise ValueError("weight must have at least one element")
    _check_blocksize(blocksize)
    n = weight.numel()
    blocks = _blocks(weight.detach().reshape(-1).float(), blocksize)  # (n_blocks, blocksize)
    absmax = blocks.abs().amax(dim=1)  # (n_blocks,)
    # an all-zero block has absmax 0: divide by 1 instead (its values are 0 and map to the level 0 anyway)
    normalized = blocks / torch.where(absmax > 0, absmax, torch.ones_like(absmax)).unsqueeze(1)
    levels = levels.to(normalized.device)
    midpoints = (levels[1:] + levels[:-1]) / 2
    # nearest level = number of midpoints strictly below the value (a tie goes to the lower level)
    codes = torch.bucketize(normalized, midpoints).to(torch.uint8)
    return codes.reshape(-1)[:n], absmax


def _dequantize_blockwise(codes: torch.Tensor, absmax: torch.Tensor, shape: tuple[int, ...],
                          levels: torch.Tensor, blocksize: int, dtype: torch.dtype) -> torch.Tensor:
    _check_blocksize(blocksize)
    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.uint8:
        raise ValueError(f"codes must be a torch.uint8 tensor, got {getattr(codes, 'dtype', type(codes))}")
    shape = tuple(shape)
    n = math.prod(shape)
    if codes.numel() != n:
        raise ValueError(f"codes has {codes.numel()} elements but shape {shape} needs {n}")
    n_blocks = math.ceil(n / blocksize)
    if absmax.numel() != n_blocks:
        raise ValueError(f"absmax must have ceil({n} / {blocksize}) = {n_blocks} elements (one per block), "
                         f"got {absmax.numel()}")
    if codes.numel() and int(codes.max()) >= len(levels):
        raise ValueError(f"codes must be in [0, {len(levels) - 1}], got a {int(codes.max())}")
    values = levels.to(absmax.device)[codes.reshape(-1).long()]  # (N,) in [-1, 1]
    blocks = _blocks(values, blocksize) * absmax.float().reshape(-1, 1)  # (n_blocks, blocksize)
    return blocks.reshape(-1)[:n].reshape(shape).to(dtype)


def quantize_nf4(weight: torch.Tensor, blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-wise NF4: ``(codes uint8 (N,) in [0, 15], absmax float32 (ceil(N / blocksize),))``.

    The flattened weight is cut into blocks of ``blocksize`` values; each block is divided by its absmax
    (so it lies in [-1, 1]) and every value is replaced by the index of the nearest of the 16
    ``NF4_LEVELS``. ``N = weight.numel()`` need not be a multiple of ``blocksize``: the last block is just
    shorter. Small blocks keep one outlier from flattening a whole matrix onto the zero level.

    >>> codes, absmax = quantize_nf4(torch.tensor([0.0, -2.0, 2.0, 1.1]), blocksize=4)
    >>> codes.tolist(), absmax.tolist()     # 1.1 / 2.0 = 0.55 is nearest to level 13 (0.5626)
    ([7, 0, 15, 13], [2.0])
    """
    return _quantize_blockwise(weight, NF4_LEVELS, blocksize)


def dequantize_nf4(codes: torch.Tensor, absmax: torch.Tensor, shape: tuple[int, ...] | torch.Size,
                   blocksize: int = 64, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Invert ``quantize_nf4`` up to rounding: ``NF4_LEVELS[code] * absmax[block]``, reshaped to ``shape``.

    >>> dequantize_nf4(torch.tensor([7, 0, 15], dtype=torch.uint8), torch.tensor([2.0]), (3,), blocksize=4)
    tensor([ 0., -2.,  2.])
    """
    return _dequantize_blockwise(codes, absmax, shape, NF4_LEVELS, blocksize, dtype)


def quantize_int4_uniform(weight: torch.Tensor, blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The baseline: block-wise absmax 4-bit quantization onto 16 evenly spaced levels (``UNIFORM4_LEVELS``).

    >>> quantize_int4_uniform(torch.tensor([-1.0, 1.0, 0.1]), blocksize=3)[0].tolist()
    [0, 15, 8]
    """
    return _quantize_blockwise(weight, UNIFORM4_LEVELS, blocksize)


def dequantize_int4_uniform(codes: torch.Tensor, absmax: torch.Tensor, shape: tuple[int, ...] | torch.Size,
                            blocksize: int = 64, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Invert ``quantize_int4_uniform`` up to rounding."""
    return _dequantize_blockwise(codes, absmax, shape, UNIFORM4_LEVELS, blocksize, dtype)


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise absmax int8 (the "vector-wise" quantization of LLM.int8, Dettmers et al. 2022, without its
    outlier handling): each row of ``weight (out, in)`` is divided by its largest absolute value, scaled to
    127 and rounded. Returns ``(codes int8 (out, in), scale (out,))`` with ``weight ≈ codes · scale``.

    >>> codes, scale = quantize_int8(torch.tensor([[0.5, -1.0, 0.25]]))
    >>> codes.tolist(), round(scale.item() * 127, 6)
    ([[64, -127, 32]], 1.0)
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError("weight must be a 2-D floating-point tensor (out_features, in_features)")
    absmax = weight.detach().abs().amax(dim=1).clamp_min(torch.finfo(weight.dtype).tiny)  # (out,)
    scale = absmax / 127.0
    codes = torch.round(weight.detach() / scale[:, None]).clamp(-127, 127).to(torch.int8)  # (out, in)
    return codes, scale


def dequantize_int8(codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``codes (out, in) · scale (out,)``: the weights ``quantize_int8`` stands for, in ``scale``'s dtype."""
    return codes.to(scale.dtype) * scale[:, None]


def int8_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose every ``nn.Linear`` weight is replaced by its int8 round trip
    (``dequantize_int8(*quantize_int8(w))``): the model a server storing int8 weights would run, simulated
    in floating point. Embeddings, norms and biases are kept."""
    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        for module in copy_.modules():
            if isinstance(module, nn.Linear):
                module.weight.copy_(dequantize_int8(*quantize_int8(module.weight)))
    return copy_


def pack_nibbles(codes: torch.Tensor) -> torch.Tensor:
    """Pack 4-bit codes two per byte: ``ceil(N / 2)`` uint8 values, the first code in the high nibble.

    This is where the "4 bits" of NF4 become real: a uint8 tensor of codes spends 8 bits on each.
    An odd count is padded with one zero nibble.

    >>> pack_nibbles(torch.tensor([1, 2, 15], dtype=torch.uint8)).tolist()   # 0x12, 0xF0
    [18, 240]
    """
    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.uint8:
        raise ValueError(f"codes must be a torch.uint8 tensor, got {getattr(codes, 'dtype', type(codes))}")
    flat = codes.reshape(-1)
    if flat.numel() and int(flat.max()) > 15:
        raise ValueError(f"codes must be in [0, 15] to fit in 4 bits, got a {int(flat.max())}")
    pairs = F.pad(flat, (0, flat.numel() % 2)).view(-1, 2)  # (ceil(N/2), 2)
    return (pairs[:, 0] << 4) | pairs[:, 1]


def unpack_nibbles(packed: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of ``pack_nibbles``: the first ``n`` 4-bit codes, as uint8 (N,).

    >>> unpack_nibbles(torch.tensor([18, 240], dtype=torch.uint8), 3).tolist()
    [1, 2, 15]
    """
    if not isinstance(packed, torch.Tensor) or packed.dtype != torch.uint8:
        raise ValueError(f"packed must be a torch.uint8 tensor, got {getattr(packed, 'dtype', type(packed))}")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 2 * packed.numel() or \
            math.ceil(n / 2) != packed.numel():
        raise ValueError(f"n must be {2 * packed.numel() - 1} or {2 * packed.numel()} for "
                         f"{packed.numel()} packed bytes, got {n!r}")
    flat = packed.reshape(-1)
    pairs = torch.stack([flat >> 4, flat & 0x0F], dim=1)  # (ceil(N/2), 2)
    return pairs.reshape(-1)[:n]


def double_quantize_absmax(absmax: torch.Tensor, blocksize: int = 256
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize the absmax constants themselves to 8 bits: ``(codes int8, scales float32, offset float32)``.

    QLoRA's double quantization (Dettmers et al. 2023, Sec. 3): the constants are all positive, so their
    mean (``offset``) is subtracted first to centre them on zero, then each block of ``blocksize`` (256)
    constants is quantized symmetrically with its own fp32 scale. The paper stores the second level as
    8-bit *floats*; we use plain int8 steps (``scale = block absmax / 127``), which costs the same bits.

    >>> codes, scales, offset = double_quantize_absmax(torch.tensor([1.0, 2.0, 3.0]))
    >>> codes.tolist(), scales.tolist(), offset.item()    # centred: [-1, 0, 1] -> [-127, 0, 127]
    ([-127, 0, 127], [0.007874015718698502], 2.0)
    """
    if not isinstance(absmax, torch.Tensor) or not absmax.is_floating_point() or absmax.dim() != 1:
        raise ValueError("absmax must be a 1-D floating-point tensor")
    if absmax.numel() == 0:
        raise ValueError("absmax must have at least one element")
    _check_blocksize(blocksize)
    offset = absmax.float().mean()
    centred = _blocks(absmax.float() - offset, blocksize)  # (n_blocks2, blocksize)
    scales = centred.abs().amax(dim=1) / 127  # (n_blocks2,)
    safe = torch.where(scales > 0, scales, torch.ones_like(scales)).unsqueeze(1)
    codes = torch.round(centred / safe).clamp(-127, 127).to(torch.int8)
    return codes.reshape(-1)[: absmax.numel()], scales, offset


def dequantize_absmax(codes: torch.Tensor, scales: torch.Tensor, offset: torch.Tensor,
                      blocksize: int = 256) -> torch.Tensor:
    """Invert ``double_quantize_absmax``: ``codes * scale[block] + offset`` (float32, one per code).

    >>> dequantize_absmax(torch.tensor([-127, 0, 127], dtype=torch.int8), torch.tensor([1 / 127]),
    ...                   torch.tensor(2.0)).tolist()
    [1.0, 2.0, 3.0]
    """
    _check_blocksize(blocksize)
    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.int8:
        raise ValueError(f"codes must be a torch.int8 tensor, got {getattr(codes, 'dtype', type(codes))}")
    if scales.numel() != math.ceil(codes.numel() / blocksize):
        raise ValueError(f"scales must have ceil({codes.numel()} / {blocksize}) elements (one per block), "
                         f"got {scales.numel()}")
    blocks = _blocks(codes.float(), blocksize) * scales.float().reshape(-1, 1)  # (n_blocks2, blocksize)
    return blocks.reshape(-1)[: codes.numel()] + offset.float()


def bits_per_parameter(blocksize: int = 64, double_quant: bool = False, dq_blocksize: int = 256) -> float:
    """Bits of storage per weight for NF4, in closed form (Dettmers et al. 2023, Sec. 3).

    Without double quantization: 4 bits of code + one fp32 absmax per block = ``4 + 32 / blocksize``
    (4.5 at 64). With it: an 8-bit absmax per block plus one fp32 scale per ``dq_blocksize`` absmaxes:
    ``4 + 8 / blocksize + 32 / (blocksize · dq_blocksize)`` (≈ 4.127 at 64 and 256). The single fp32
    offset of the whole tensor is left out, as in the paper (it vanishes per parameter).

    >>> bits_per_parameter(64), round(bits_per_parameter(64, double_quant=True), 4)
    (4.5, 4.127)
    """
    _check_blocksize(blocksize)
    _check_blocksize(dq_blocksize, "dq_blocksize")
    if not double_quant:
        return 4 + 32 / blocksize
    return 4 + 8 / blocksize + 32 / (blocksize * dq_blocksize)


def nf4_storage_bytes(weight: torch.Tensor, blocksize: int = 64, double_quant: bool = False,
                      dq_blocksize: int = 256) -> dict[str, int]:
    """Quantize ``weight`` for real and measure the bytes of every stored tensor (``.nbytes``).

    Keys: ``codes`` (packed, two per byte) and either ``absmax`` (fp32) or, with double quantization,
    ``absmax_codes`` (int8), ``absmax_scales`` (fp32) and ``offset`` (one fp32).

    >>> nf4_storage_bytes(torch.randn(128))   # 64 code bytes + 2 fp32 absmax
    {'codes': 64, 'absmax': 8}
    """
    codes, absmax = quantize_nf4(weight, blocksize)
    sizes = {"codes": pack_nibbles(codes).nbytes}
    if not double_quant:
        sizes["absmax"] = absmax.nbytes
        return sizes
    q, scales, offset = double_quantize_absmax(absmax, dq_blocksize)
    sizes.update(absmax_codes=q.nbytes, absmax_scales=scales.nbytes, offset=offset.nbytes)
    return sizes


# ----------------------------------------------------------------------------------------------------
# QLoRA
# ----------------------------------------------------------------------------------------------------

class QLoRALinear(nn.Module):
    """QLoRA's layer: a frozen NF4 copy of ``base``'s weight + trainable LoRA adapters (Dettmers et al. 2023).

    The weight is stored as packed 4-bit codes (buffer ``weight_packed``) with its absmax constants
    (``absmax``, or with ``double_quant`` ``absmax_codes`` / ``absmax_scales`` / ``absmax_offset``). They are
    buffers, not parameters: integer codes cannot be trained. ``forward`` dequantizes the weight to the
    input's dtype on the fly (QLoRA's "storage type NF4, computation type BF16"), then adds the adapter
    exactly as ``LoRALinear`` does. The bias, if any, stays in full precision and frozen. ``base`` itself is
    only read, never modified or kept.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0, blocksize: int = 64,
                 double_quant: bool = True, dq_blocksize: int = 256,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        _attach_adapter(self, base, r, alpha, dropout, generator)
        _check_blocksize(blocksize)
        _check_blocksize(dq_blocksize, "dq_blocksize")
        self.in_features, self.out_features = base.in_features, base.out_features
        self.blocksize, self.double_quant, self.dq_blocksize = blocksize, double_quant, dq_blocksize
        weight = base.weight.detach()
        codes, absmax = quantize_nf4(weight, blocksize)
        self.register_buffer("weight_packed", pack_nibbles(codes))
        if double_quant:
            q, scales, offset = double_quantize_absmax(absmax, dq_blocksize)
            self.register_buffer("absmax_codes", q)
            self.register_buffer("absmax_scales", scales)
            self.register_buffer("absmax_offset", offset)
        else:
            self.register_buffer("absmax", absmax)
        bias = None if base.bias is None else base.bias.detach().clone()
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)

    def absmax_values(self) -> torch.Tensor:
        """The fp32 absmax per block (decoded from 8 bits first when double quantization is on)."""
        if self.double_quant:
            return dequantize_absmax(self.absmax_codes, self.absmax_scales, self.absmax_offset,
                                     self.dq_blocksize)
        return self.absmax

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The NF4 weight decoded to ``dtype``, (out_features, in_features)."""
        n = self.in_features * self.out_features
        codes = unpack_nibbles(self.weight_packed, n)
        return dequantize_nf4(codes, self.absmax_values(), (self.out_features, self.in_features),
                              self.blocksize, dtype)

    def quantized_nbytes(self) -> int:
        """Bytes that store the frozen weight (codes and constants; the bias is not included)."""
        names = ["weight_packed"] + (["absmax_codes", "absmax_scales", "absmax_offset"]
                                     if self.double_quant else ["absmax"])
        return sum(getattr(self, name).nbytes for name in names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.dequantized_weight(x.dtype)  # (out, in), rebuilt each call: only 4-bit codes persist
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, weight, bias) + _adapter_output(self, x)  # the adapters keep their own precision

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, r={self.r}, "
                f"alpha={self.alpha}, blocksize={self.blocksize}, double_quant={self.double_quant}")


def add_qlora(model: nn.Module, r: int, alpha: float, target: Target = every_linear, blocksize: int = 64,
              double_quant: bool = True, dropout: float = 0.0,
              generator: torch.Generator | None = None) -> nn.Module:
    """Like ``add_lora`` but each selected ``nn.Linear`` becomes a ``QLoRALinear`` (frozen NF4 + adapters).

    In place, returns ``model``; every other parameter is frozen (kept in its precision, as QLoRA keeps
    embeddings and norms in 16 bits). ``ValueError`` when ``target`` selects nothing.
    """
    return _swap_linears(model, target, lambda layer: QLoRALinear(
        layer, r, alpha, dropout, blocksize, double_quant, generator=generator))


# ----------------------------------------------------------------------------------------------------
# Memory accounting for real model sizes: its home is utils.sizing (Lecture 10 gathers the arithmetic of
# real models there); imported back so that ``from utils.lora import LLAMA_SHAPES`` keeps working.
# ----------------------------------------------------------------------------------------------------

from .sizing import (  # noqa: E402  (after the LoRA helpers that utils.sizing itself calls)
    LLAMA_SHAPES,
    WEIGHT_FORMATS,
    TransformerShape,
    finetune_memory,
    full_finetune_memory,
)
