"""Tests for utils.lora. Oracles: closed forms of the LoRA update, PyTorch's F.linear, brute-force nearest
level search, hand-computed parameter counts and byte sizes, published model sizes, round trips."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.lora import (
    NF4_LEVELS,
    UNIFORM4_LEVELS,
    LoRALinear,
    QLoRALinear,
    add_lora,
    add_qlora,
    bits_per_parameter,
    count_parameters,
    dequantize_absmax,
    dequantize_int4_uniform,
    dequantize_nf4,
    double_quantize_absmax,
    lora_linear,
    lora_parameter_count,
    lora_rank_summary,
    max_lora_rank,
    merge_lora,
    model_lora_parameter_count,
    nf4_levels_from_quantiles,
    nf4_storage_bytes,
    pack_nibbles,
    quantize_int4_uniform,
    quantize_nf4,
    unpack_nibbles,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randomise_adapter(layer: LoRALinear | QLoRALinear, seed: int = 1) -> None:
    g = _gen(seed)
    with torch.no_grad():
        layer.lora_A.copy_(torch.randn(layer.lora_A.shape, generator=g))
        layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g))


class TwoBlocks(nn.Module):
    """A small model with named linears (attention-like names) and a non-linear parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"q_proj": nn.Linear(8, 8), "v_proj": nn.Linear(8, 8), "mlp": nn.Linear(8, 16)})
            for _ in range(2)
        )
        self.head = nn.Linear(16, 10, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.emb(idx)
        for block in self.blocks:
            x = x + block["q_proj"](x) * torch.sigmoid(block["v_proj"](x))
        return self.head(torch.relu(self.blocks[-1]["mlp"](x)))


# ----------------------------------------------------------------------------------------------------
# LoRALinear
# ----------------------------------------------------------------------------------------------------

def test_lora_equals_base_at_init():
    base = nn.Linear(12, 5)
    layer = LoRALinear(base, r=3, alpha=6)
    x = torch.randn(4, 7, 12, generator=_gen())
    assert torch.equal(layer(x), base(x))  # B = 0 exactly
    assert torch.count_nonzero(layer.lora_B) == 0 and torch.count_nonzero(layer.lora_A) > 0


def test_lora_matches_closed_form():
    base = nn.Linear(12, 5)
    layer = LoRALinear(base, r=3, alpha=6)
    _randomise_adapter(layer)
    x = torch.randn(4, 12, generator=_gen(2))
    expected = F.linear(x, base.weight, base.bias) + 2.0 * x @ layer.lora_A.T @ layer.lora_B.T
    torch.testing.assert_close(layer(x), expected)
    functional = lora_linear(x, base.weight, base.bias, layer.lora_A, layer.lora_B, 2.0)
    torch.testing.assert_close(functional, expected)
    assert layer.scaling == 6 / 3


def test_lora_init_follows_generator_and_kaiming_bound():
    a = LoRALinear(nn.Linear(20, 6), r=4, alpha=1, generator=_gen(5))
    b = LoRALinear(nn.Linear(20, 6), r=4, alpha=1, generator=_gen(5))
    assert torch.equal(a.lora_A, b.lora_A)
    # kaiming_uniform(a=sqrt(5)) draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as nn.Linear's own init
    assert a.lora_A.abs().max() <= 1 / math.sqrt(20)


def test_lora_freezes_base_and_gradients_reach_only_adapters():
    base = nn.Linear(6, 4)
    before = base.weight.detach().clone()
    layer = LoRALinear(base, r=2, alpha=2)
    _randomise_adapter(layer)
    layer(torch.randn(3, 6, generator=_gen())).pow(2).sum().backward()
    assert base.weight.grad is None and base.bias.grad is None
    assert layer.lora_A.grad is not None and layer.lora_B.grad is not None
    assert torch.equal(base.weight, before)
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]


def test_lora_dropout_only_touches_the_adapter_branch():
    base = nn.Linear(6, 4)
    layer = LoRALinear(base, r=2, alpha=2, dropout=0.5)
    x = torch.randn(3, 6, generator=_gen())
    layer.train()
    torch.manual_seed(0)
    assert torch.equal(layer(x), base(x))  # B = 0, so dropout cannot show yet
    _randomise_adapter(layer)
    layer.eval()
    expected = base(x) + layer.scaling * x @ layer.lora_A.T @ layer.lora_B.T
    torch.testing.assert_close(layer(x), expected)  # eval: dropout off


def test_merge_equals_unmerged_and_leaves_base_unchanged():
    base = nn.Linear(10, 7)
    snapshot = copy.deepcopy(base.state_dict())
    layer = LoRALinear(base, r=4, alpha=8)
    _randomise_adapter(layer)
    merged = layer.merge()
    x = torch.randn(5, 10, generator=_gen(3))
    assert type(merged) is nn.Linear and merged is not base
    torch.testing.assert_close(merged(x), layer(x), rtol=1e-5, atol=1e-5)
    for key, value in base.state_dict().items():
        assert torch.equal(value, snapshot[key])
    torch.testing.assert_close(merged.weight, base.weight + 2.0 * layer.lora_B @ layer.lora_A)


def test_merge_without_bias():
    layer = LoRALinear(nn.Linear(4, 3, bias=False), r=2, alpha=2)
    _randomise_adapter(layer)
    merged = layer.merge()
    assert merged.bias is None
    x = torch.randn(2, 4, generator=_gen())
    torch.testing.assert_close(merged(x), layer(x))


@pytest.mark.parametrize("r", [0, -1, 6])
def test_lora_rank_out_of_range(r):
    with pytest.raises(ValueError, match="r must be between 1 and"):
        LoRALinear(nn.Linear(8, 5), r=r, alpha=1)


def test_lora_bad_arguments():
    with pytest.raises(TypeError, match="base"):
        LoRALinear(nn.Conv1d(2, 2, 1), r=1, alpha=1)
    with pytest.raises(TypeError, match="r must be an int"):
        LoRALinear(nn.Linear(4, 4), r=2.0, alpha=1)
    with pytest.raises(ValueError, match="alpha"):
        LoRALinear(nn.Linear(4, 4), r=2, alpha=0)
    with pytest.raises(ValueError, match="dropout"):
        LoRALinear(nn.Linear(4, 4), r=2, alpha=1, dropout=1.0)


# ----------------------------------------------------------------------------------------------------
# add_lora, merge_lora, counting
# ----------------------------------------------------------------------------------------------------

def test_count_parameters_hand_computed():
    model = TwoBlocks()
    # emb 10*8, per block q 8*8+8, v 8*8+8, mlp 8*16+16, head 16*10
    total = 80 + 2 * (72 + 72 + 144) + 160
    assert count_parameters(model) == (total, total)
    model.emb.weight.requires_grad_(False)
    assert count_parameters(model) == (total - 80, total)


def test_add_lora_replaces_exactly_the_targets_and_freezes_the_rest():
    model = TwoBlocks()
    total_before = count_parameters(model)[1]
    out = add_lora(model, r=2, alpha=4, target=lambda name, m: name.endswith(("q_proj", "v_proj")))
    assert out is model
    wrapped = sorted(n for n, m in model.named_modules() if isinstance(m, LoRALinear))
    assert wrapped == ["blocks.0.q_proj", "blocks.0.v_proj", "blocks.1.q_proj", "blocks.1.v_proj"]
    assert isinstance(model.blocks[0]["mlp"], nn.Linear) and isinstance(model.head, nn.Linear)
    per_adapter = 2 * (8 + 8)
    assert count_parameters(model) == (4 * per_adapter, total_before + 4 * per_adapter)
    assert all(("lora_" in n) == p.requires_grad for n, p in model.named_parameters())


def test_add_lora_default_targets_every_linear_and_output_unchanged_at_init():
    model = TwoBlocks()
    reference = copy.deepcopy(model)
    idx = torch.randint(0, 10, (2, 5), generator=_gen())
    add_lora(model, r=2, alpha=2)
    assert sum(isinstance(m, LoRALinear) for m in model.modules()) == 7
    assert torch.equal(model(idx), reference(idx))
    assert count_parameters(model)[0] == model_lora_parameter_count(reference, r=2)


def test_add_lora_never_wraps_twice():
    model = add_lora(TwoBlocks(), r=1, alpha=1, target=lambda n, m: n == "head")
    with pytest.raises(ValueError, match="target"):
        add_lora(model, r=1, alpha=1, target=lambda n, m: n.startswith("head"))


def test_add_lora_errors():
    with pytest.raises(ValueError, match="target"):
        add_lora(TwoBlocks(), r=1, alpha=1, target=lambda n, m: False)
    with pytest.raises(TypeError, match="target"):
        add_lora(TwoBlocks(), r=1, alpha=1, target="q_proj")
    with pytest.raises(TypeError, match="model"):
        add_lora("model", r=1, alpha=1)
    with pytest.raises(ValueError, match="r must be between"):
        add_lora(TwoBlocks(), r=9, alpha=1)  # 8 is the smallest dimension of the targeted layers


def test_merge_lora_model_matches_and_input_model_unchanged():
    model = add_lora(TwoBlocks(), r=2, alpha=4)
    for seed, m in enumerate(m for m in model.modules() if isinstance(m, LoRALinear)):
        _randomise_adapter(m, seed=seed)
    idx = torch.randint(0, 10, (3, 6), generator=_gen())
    merged = merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())
    assert sum(isinstance(m, LoRALinear) for m in model.modules()) == 7
    torch.testing.assert_close(merged(idx), model(idx), rtol=1e-4, atol=1e-4)
    single = LoRALinear(nn.Linear(3, 3), r=1, alpha=1)
    assert type(merge_lora(single)) is nn.Linear


def test_parameter_counts():
    assert lora_parameter_count(4096, 4096, 8) == 8 * 8192
    model = TwoBlocks()
    # q, v: r*(8+8) each, mlp r*(8+16), head r*(16+10); two blocks
    assert model_lora_parameter_count(model, r=3) == 3 * (2 * (16 + 16 + 24) + 26)
    assert model_lora_parameter_count(model, r=3, target=lambda n, m: n.endswith("q_proj")) == 2 * 3 * 16
    with pytest.raises(ValueError, match="r must be between"):
        lora_parameter_count(4, 8, 5)
    with pytest.raises(ValueError, match="in_features"):
        lora_parameter_count(0, 8, 1)
    with pytest.raises(ValueError, match="target"):
        model_lora_parameter_count(model, r=1, target=lambda n, m: False)


def test_rank_summary_and_max_rank_agree_with_add_lora():
    model = TwoBlocks()
    target = lambda n, m: n.endswith(("mlp", "head"))  # 8 -> 16 and 16 -> 10
    assert max_lora_rank(model, target) == 8
    summary = lora_rank_summary(model, 5, target)
    trainable, total = count_parameters(add_lora(copy.deepcopy(model), r=5, alpha=1, target=target))
    assert (summary["trainable"], summary["total"]) == (trainable, total)
    assert summary["fraction"] == trainable / total
    with pytest.raises(ValueError, match="target"):
        max_lora_rank(model, lambda n, m: False)


# ----------------------------------------------------------------------------------------------------
# NF4
# ----------------------------------------------------------------------------------------------------

def test_nf4_levels_from_normal_quantiles_match_the_constant():
    derived = nf4_levels_from_quantiles()
    torch.testing.assert_close(derived, NF4_LEVELS, atol=1e-6, rtol=0)
    assert NF4_LEVELS[0] == -1 and NF4_LEVELS[7] == 0 and NF4_LEVELS[-1] == 1
    assert bool((NF4_LEVELS[1:] > NF4_LEVELS[:-1]).all())
    assert (NF4_LEVELS > 0).sum() == 8 and (NF4_LEVELS < 0).sum() == 7
    with pytest.raises(ValueError, match="offset"):
        nf4_levels_from_quantiles(1.0)


def test_nf4_levels_split_normal_mass_evenly():
    # the 8 positive levels (before normalising) are quantiles at evenly spaced probabilities
    from statistics import NormalDist

    norm = NormalDist()
    scale = norm.inv_cdf(0.9677083)
    probs = [norm.cdf(v * scale) for v in NF4_LEVELS[8:].tolist()]
    gaps = [b - a for a, b in zip(probs[:-1], probs[1:], strict=True)]
    assert max(gaps) - min(gaps) < 1e-6


@pytest.mark.parametrize("n, blocksize", [(256, 64), (100, 64), (7, 3), (64, 1)])
def test_nf4_codes_are_nearest_levels_brute_force(n, blocksize):
    w = torch.randn(n, generator=_gen(n)) * 0.05
    codes, absmax = quantize_nf4(w, blocksize)
    assert codes.dtype == torch.uint8 and codes.shape == (n,)
    assert int(codes.min()) >= 0 and int(codes.max()) <= 15
    n_blocks = math.ceil(n / blocksize)
    padded = F.pad(w, (0, n_blocks * blocksize - n)).view(n_blocks, blocksize)
    torch.testing.assert_close(absmax, padded.abs().amax(1))
    normalized = (padded / absmax[:, None]).reshape(-1)[:n]
    distances = (normalized[:, None] - NF4_LEVELS[None, :]).abs()  # (n, 16)
    chosen = distances.gather(1, codes.long()[:, None]).squeeze(1)
    assert bool((chosen <= distances.min(1).values + 1e-7).all())


def test_nf4_round_trip_error_is_bounded_per_block():
    w = torch.randn(33, 50, generator=_gen()) * 0.02  # 1650 values: the last block is short
    codes, absmax = quantize_nf4(w, 64)
    w_hat = dequantize_nf4(codes, absmax, w.shape, 64)
    assert w_hat.shape == w.shape and w_hat.dtype == torch.float32
    half_gap = (NF4_LEVELS[1:] - NF4_LEVELS[:-1]).max() / 2
    bound = (absmax * half_gap).repeat_interleave(64)[: w.numel()].view_as(w)
    assert bool(((w - w_hat).abs() <= bound + 1e-7).all())
    # block maxima are exact (they map to +-1)
    assert torch.isclose(w_hat.abs().max(), w.abs().max())


def test_nf4_zero_block_and_dtype_and_input_untouched():
    w = torch.cat([torch.zeros(64), torch.randn(64, generator=_gen())]).half()
    before = w.clone()
    codes, absmax = quantize_nf4(w, 64)
    assert torch.equal(w, before)
    assert absmax[0] == 0 and bool((codes[:64] == 7).all())
    w_hat = dequantize_nf4(codes, absmax, (128,), 64, dtype=torch.float16)
    assert w_hat.dtype == torch.float16 and bool((w_hat[:64] == 0).all())


def test_nf4_beats_uniform_int4_on_normal_weights():
    w = torch.randn(1 << 16, generator=_gen(7))
    nf4 = dequantize_nf4(*quantize_nf4(w), w.shape)
    uni = dequantize_int4_uniform(*quantize_int4_uniform(w), w.shape)
    assert F.mse_loss(nf4, w) < 0.9 * F.mse_loss(uni, w)


def test_uniform_int4_levels_and_nearest():
    torch.testing.assert_close(UNIFORM4_LEVELS[1:] - UNIFORM4_LEVELS[:-1], torch.full((15,), 2 / 15))
    w = torch.randn(300, generator=_gen())
    codes, absmax = quantize_int4_uniform(w, 100)
    w_hat = dequantize_int4_uniform(codes, absmax, w.shape, 100)
    bound = absmax.repeat_interleave(100) * (1 / 15)
    assert bool(((w - w_hat).abs() <= bound + 1e-7).all())


def test_quantize_errors():
    with pytest.raises(ValueError, match="blocksize"):
        quantize_nf4(torch.randn(8), blocksize=0)
    with pytest.raises(TypeError, match="blocksize"):
        quantize_nf4(torch.randn(8), blocksize=2.5)
    with pytest.raises(ValueError, match="weight"):
        quantize_nf4(torch.arange(8))
    with pytest.raises(ValueError, match="weight"):
        quantize_nf4(torch.randn(0))
    codes, absmax = quantize_nf4(torch.randn(10), 4)
    with pytest.raises(ValueError, match="shape"):
        dequantize_nf4(codes, absmax, (11,), 4)
    with pytest.raises(ValueError, match="absmax"):
        dequantize_nf4(codes, absmax[:2], (10,), 4)
    with pytest.raises(ValueError, match="codes"):
        dequantize_nf4(codes.long(), absmax, (10,), 4)
    with pytest.raises(ValueError, match="codes"):
        dequantize_nf4(torch.full((10,), 16, dtype=torch.uint8), absmax, (10,), 4)
    with pytest.raises(ValueError, match="blocksize"):
        dequantize_nf4(codes, absmax, (10,), -1)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 64])
def test_pack_unpack_round_trip(n):
    codes = torch.randint(0, 16, (n,), generator=_gen(n), dtype=torch.uint8)
    packed = pack_nibbles(codes)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(n / 2)
    assert torch.equal(unpack_nibbles(packed, n), codes)
    if n >= 2:  # first code in the high nibble, as bitsandbytes stores it
        assert int(packed[0]) == 16 * int(codes[0]) + int(codes[1])


def test_pack_errors():
    with pytest.raises(ValueError, match="codes"):
        pack_nibbles(torch.tensor([16], dtype=torch.uint8))
    with pytest.raises(ValueError, match="codes"):
        pack_nibbles(torch.tensor([1, 2]))
    packed = pack_nibbles(torch.tensor([1, 2, 3], dtype=torch.uint8))
    with pytest.raises(ValueError, match="n must be"):
        unpack_nibbles(packed, 5)
    with pytest.raises(ValueError, match="n must be"):
        unpack_nibbles(packed, 2)
    with pytest.raises(ValueError, match="packed"):
        unpack_nibbles(packed.long(), 3)


def test_double_quant_round_trip_error_is_small():
    absmax = torch.rand(1000, generator=_gen()) * 0.1 + 0.02  # positive, like real absmax constants
    codes, scales, offset = double_quantize_absmax(absmax, 256)
    assert codes.dtype == torch.int8 and codes.shape == (1000,) and scales.shape == (4,)
    torch.testing.assert_close(offset, absmax.mean())
    restored = dequantize_absmax(codes, scales, offset, 256)
    # symmetric int8 rounding: at most half a step (scale / 2) per block
    bound = (scales / 2).repeat_interleave(256)[:1000]
    assert bool(((restored - absmax).abs() <= bound + 1e-7).all())
    assert (restored - absmax).abs().max() < 1e-3


def test_double_quant_errors():
    with pytest.raises(ValueError, match="absmax"):
        double_quantize_absmax(torch.ones(2, 2))
    with pytest.raises(ValueError, match="blocksize"):
        double_quantize_absmax(torch.ones(4), blocksize=0)
    codes, scales, offset = double_quantize_absmax(torch.rand(300, generator=_gen()))
    with pytest.raises(ValueError, match="scales"):
        dequantize_absmax(codes, scales[:1], offset)
    with pytest.raises(ValueError, match="codes"):
        dequantize_absmax(codes.to(torch.uint8), scales, offset)


def test_bits_per_parameter_closed_form_and_measured():
    assert bits_per_parameter(64) == 4.5
    assert bits_per_parameter(64, double_quant=True) == pytest.approx(4 + 8 / 64 + 32 / (64 * 256))
    assert round(bits_per_parameter(64, double_quant=True), 3) == 4.127  # the paper's number
    n = 64 * 256 * 3  # divisible by both block sizes
    w = torch.randn(n, generator=_gen())
    plain = nf4_storage_bytes(w, 64)
    assert plain == {"codes": n // 2, "absmax": 4 * n // 64}
    assert 8 * sum(plain.values()) / n == bits_per_parameter(64)
    dq = nf4_storage_bytes(w, 64, double_quant=True)
    assert dq["offset"] == 4
    # the single fp32 offset per tensor is the only difference from the per-block closed form
    assert 8 * (sum(dq.values()) - dq["offset"]) / n == pytest.approx(bits_per_parameter(64, True), abs=1e-12)
    with pytest.raises(ValueError, match="dq_blocksize"):
        bits_per_parameter(64, True, dq_blocksize=0)


# ----------------------------------------------------------------------------------------------------
# QLoRA
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("double_quant", [False, True])
def test_qlora_linear_equals_dequantized_linear_plus_lora(double_quant):
    base = nn.Linear(24, 10)
    before = copy.deepcopy(base.state_dict())
    layer = QLoRALinear(base, r=3, alpha=6, blocksize=16, double_quant=double_quant, dq_blocksize=4)
    _randomise_adapter(layer)
    codes, absmax = quantize_nf4(base.weight, 16)
    w_hat = dequantize_nf4(codes, absmax, base.weight.shape, 16)
    x = torch.randn(5, 24, generator=_gen(4))
    expected = F.linear(x, w_hat, base.bias) + 2.0 * x @ layer.lora_A.T @ layer.lora_B.T
    tol = 2e-3 if double_quant else 1e-5  # double quantization perturbs the absmax slightly
    torch.testing.assert_close(layer(x), expected, rtol=tol, atol=tol)
    torch.testing.assert_close(layer.dequantized_weight(), w_hat, rtol=tol, atol=tol)
    for key, value in base.state_dict().items():
        assert torch.equal(value, before[key])
    assert layer.weight_packed.numel() == 24 * 10 // 2


def test_qlora_linear_gradients_and_storage():
    layer = QLoRALinear(nn.Linear(64, 32), r=4, alpha=4, blocksize=64, double_quant=False)
    layer(torch.randn(2, 64, generator=_gen())).sum().backward()
    assert layer.bias.grad is None and layer.lora_A.grad is not None and layer.lora_B.grad is not None
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    assert layer.quantized_nbytes() == 64 * 32 // 2 + 4 * (64 * 32 // 64)
    x = torch.randn(2, 64, generator=_gen()).double()
    assert layer(x).dtype == torch.float64  # dequantized to the input's dtype


def test_add_qlora_replaces_targets():
    model = TwoBlocks()
    reference = copy.deepcopy(model)
    add_qlora(model, r=2, alpha=2, blocksize=8, target=lambda n, m: "proj" in n)
    assert sum(isinstance(m, QLoRALinear) for m in model.modules()) == 4
    assert count_parameters(model)[0] == 4 * 2 * 16
    idx = torch.randint(0, 10, (2, 5), generator=_gen())
    assert (model(idx) - reference(idx)).abs().max() < 0.1  # 4-bit weights: close, not equal
    with pytest.raises(ValueError, match="target"):
        add_qlora(TwoBlocks(), r=1, alpha=1, target=lambda n, m: False)
    with pytest.raises(ValueError, match="blocksize"):
        add_qlora(TwoBlocks(), r=1, alpha=1, blocksize=0)
