"""Tests for utils.sizing. Oracles: the same architectures built as PyTorch modules on the meta device
(no memory) and their parameters counted, ``transformers``' ``LlamaForCausalLM`` when it is installed,
published model sizes (the papers' tables, the released GPT-2 weights), hand arithmetic (Llama 2 7B's KV
cache, fine-tuning bytes), NumPy's polyfit, and properties (C = 6ND inverted)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from utils.lora import bits_per_parameter
from utils.models import GPTConfig, TinyGPT
from utils.sizing import (
    ACCELERATORS,
    BYTES_PER_PARAMETER,
    GPT_SHAPES,
    LLAMA_SHAPES,
    PUBLISHED_SIZES,
    TransformerShape,
    chinchilla_optimal,
    finetune_memory,
    fit_power_law,
    full_finetune_memory,
    gpt2_parameter_count,
    inference_resources,
    kv_cache_bytes,
    training_flops,
    weight_bytes,
)

GIB = 2**30


# ----------------------------------------------------------------------------------------------------
# one home: the old modules hand out the same objects
# ----------------------------------------------------------------------------------------------------

def test_lora_and_attention_import_the_moved_names_back():
    import utils.attention
    import utils.lora
    import utils.sizing

    moved = ("TransformerShape", "LLAMA_SHAPES", "WEIGHT_FORMATS", "finetune_memory", "full_finetune_memory")
    for name in moved:
        assert getattr(utils.lora, name) is getattr(utils.sizing, name)
    assert utils.attention.kv_cache_bytes is utils.sizing.kv_cache_bytes


# ----------------------------------------------------------------------------------------------------
# parameter counts
# ----------------------------------------------------------------------------------------------------

class _MetaLlama(nn.Module):
    """LLaMA's modules, built independently of the closed form: embeddings, per block q/k/v/o and the three
    SwiGLU matrices without biases and two RMSNorms, a final RMSNorm and an untied head."""

    def __init__(self, s: TransformerShape):
        super().__init__()
        d = s.d_model
        self.embed = nn.Embedding(s.vocab_size, d)
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "q": nn.Linear(d, d, bias=False), "k": nn.Linear(d, s.kv_dim, bias=False),
            "v": nn.Linear(d, s.kv_dim, bias=False), "o": nn.Linear(d, d, bias=False),
            "gate": nn.Linear(d, s.d_ff, bias=False), "up": nn.Linear(d, s.d_ff, bias=False),
            "down": nn.Linear(s.d_ff, d, bias=False), "norm1": nn.RMSNorm(d), "norm2": nn.RMSNorm(d),
        }) for _ in range(s.n_layers))
        self.norm = nn.RMSNorm(d)
        self.head = nn.Linear(d, s.vocab_size, bias=False)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", list(LLAMA_SHAPES))
def test_llama_count_equals_the_modules_counted(name):
    shape = LLAMA_SHAPES[name]
    with torch.device("meta"):  # shapes only: 70 billion parameters cost no memory
        model = _MetaLlama(shape)
    assert shape.n_params == _count(model)
    assert shape.block_params == _count(model.blocks[0])


def test_llama_7b_is_transformers_count():
    # LlamaForCausalLM with LLaMA 7B's configuration has 6,738,415,616 parameters (Hugging Face's count of
    # meta-llama/Llama-2-7b-hf, which has the same shapes as LLaMA 7B)
    assert LLAMA_SHAPES["7B"].n_params == 6_738_415_616


@pytest.mark.parametrize("d, layers, ff, kv, vocab", [(64, 2, 172, 64, 100), (96, 3, 256, 32, 250)])
def test_transformer_shape_equals_transformers_llama(d, layers, ff, kv, vocab):
    transformers = pytest.importorskip("transformers")
    heads = d // 16
    config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=d, intermediate_size=ff,
                                      num_hidden_layers=layers, num_attention_heads=heads,
                                      num_key_value_heads=kv // 16, tie_word_embeddings=False)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(config)
    assert TransformerShape(d, layers, ff, kv, vocab).n_params == _count(model)


@pytest.mark.parametrize("name", [n for n in GPT_SHAPES if n.startswith("GPT-2")] + ["GPT-3 175B"])
def test_gpt2_count_is_tinygpt_without_its_untied_head(name):
    # TinyGPT is GPT-2's architecture (biases, LayerNorms, learned positions, 4x MLP) with an untied head
    s = GPT_SHAPES[name]
    with torch.device("meta"):
        model = TinyGPT(GPTConfig(s["vocab_size"], s["block_size"], s["d_model"], n_heads=4,
                                  n_layers=s["n_layers"]))
    assert gpt2_parameter_count(**s) == _count(model) - s["vocab_size"] * s["d_model"]


def test_gpt2_small_and_the_released_sizes():
    assert gpt2_parameter_count(**GPT_SHAPES["GPT-2 small"]) == 124_439_808
    released = [gpt2_parameter_count(**GPT_SHAPES[f"GPT-2 {s}"]) for s in ("medium", "large", "XL")]
    assert released == [354_823_168, 774_030_080, 1_557_611_200]


@pytest.mark.parametrize("name", list(GPT_SHAPES))
def test_gpt_counts_match_published_sizes(name):
    published, _source = PUBLISHED_SIZES[name]
    # the tables round (GPT-3 Medium: 355.9M is printed 350M); within 2 %
    assert gpt2_parameter_count(**GPT_SHAPES[name]) == pytest.approx(published, rel=0.02)


@pytest.mark.parametrize("name, key", [("7B", "LLaMA 7B"), ("13B", "LLaMA 13B"), ("65B", "LLaMA 65B"),
                                       ("70B", "Llama 2 70B")])
def test_llama_shapes_match_published_sizes(name, key):
    # LLaMA paper (Touvron et al. 2023a) Table 2: 6.7B, 13.0B, 65.2B; Llama 2 70B: 68.98B
    assert LLAMA_SHAPES[name].n_params == pytest.approx(PUBLISHED_SIZES[key][0], abs=0.1e9)


def test_llama_lora_params_hand_computed():
    shape = LLAMA_SHAPES["7B"]  # MHA: q, k, v, o are 4096 x 4096; MLP 4096 <-> 11008
    assert shape.lora_params(8) == 32 * 8 * (4 * 8192 + 3 * (4096 + 11008))


@pytest.mark.parametrize("field", ["d_model", "n_layers", "d_ff", "kv_dim", "vocab_size"])
def test_sizes_must_be_positive(field):
    sizes = {"d_model": 8, "n_layers": 1, "d_ff": 16, "kv_dim": 8, "vocab_size": 10, field: 0}
    with pytest.raises(ValueError, match=field):
        TransformerShape(**sizes)
    gpt2 = {"vocab_size": 10, "block_size": 4, "d_model": 8, "n_layers": 1}
    if field in gpt2:
        with pytest.raises(ValueError, match=field):
            gpt2_parameter_count(**{**gpt2, field: -1})
    with pytest.raises(TypeError, match="d_model"):
        gpt2_parameter_count(10, 4, 8.0, 1)


# ----------------------------------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------------------------------

def test_finetune_memory_components():
    n, lora = 1e9, 2e6
    fp16 = finetune_memory(n, "fp16", lora)
    assert fp16 == {"weights": 2e9, "quant_constants": 0.0, "adapters": 4e6, "adapter_gradients": 4e6,
                    "optimizer_state": 16e6}
    assert finetune_memory(n, "int8", lora, blocksize=64)["quant_constants"] == 4 * n / 64
    nf4 = finetune_memory(n, "nf4", lora, double_quant=True)
    assert nf4["weights"] + nf4["quant_constants"] == pytest.approx(n * bits_per_parameter(64, True) / 8)
    assert finetune_memory(n, "nf4", lora, optimizer="sgd")["optimizer_state"] == 0
    assert sum(full_finetune_memory(n).values()) == 16 * n


def test_finetune_memory_errors():
    with pytest.raises(ValueError, match="weight_format"):
        finetune_memory(1e9, "fp8")
    with pytest.raises(ValueError, match="optimizer"):
        finetune_memory(1e9, "nf4", optimizer="adagrad")
    with pytest.raises(ValueError, match="n_params"):
        finetune_memory(0, "nf4")
    with pytest.raises(ValueError, match="lora_params"):
        finetune_memory(1e9, "nf4", lora_params=-1)
    with pytest.raises(ValueError, match="optimizer"):
        full_finetune_memory(1e9, optimizer="lion")


def test_kv_cache_of_llama_2_7b_by_hand():
    # Llama 2 7B (Touvron et al. 2023): 32 layers, 32 heads of dimension 128, fp16 (2 bytes)
    assert kv_cache_bytes(32, 32, 128, 4096) == 2 * 32 * 32 * 128 * 4096 * 2 == 2_147_483_648 == 2 * GIB
    assert kv_cache_bytes(32, 32, 128, 32_768) == 16 * GIB
    assert kv_cache_bytes(32, 32, 128, 4096, batch=3, bytes_per_value=4) == 3 * 2 * 2 * GIB
    assert LLAMA_SHAPES["7B"].kv_cache_bytes(4096) == kv_cache_bytes(32, 32, 128, 4096)
    # Llama 2 70B: 8 KV heads of 128 (grouped-query attention) for 64 query heads
    assert LLAMA_SHAPES["70B"].kv_cache_bytes(4096) == kv_cache_bytes(80, 8, 128, 4096) == 1.25 * GIB
    with pytest.raises(ValueError, match="seq_len"):
        kv_cache_bytes(32, 32, 128, 0)
    with pytest.raises(TypeError, match="n_layers"):
        kv_cache_bytes(32.0, 32, 128, 16)


def test_weight_bytes():
    assert [weight_bytes(1000, f) for f in ("fp32", "fp16", "int8", "int4")] == [4000, 2000, 1000, 500]
    assert set(BYTES_PER_PARAMETER) == {"fp32", "fp16", "int8", "int4"}
    with pytest.raises(ValueError, match="weight_format"):
        weight_bytes(1000, "fp8")
    with pytest.raises(ValueError, match="n_params"):
        weight_bytes(0)


def test_inference_resources_by_hand():
    shape, a100 = LLAMA_SHAPES["7B"], ACCELERATORS["A100 (80 GB)"]
    r = inference_resources(shape, 2048, batch=4, weight_format="int8", accelerator=a100)
    weights, kv = shape.n_params * 1.0, 4 * kv_cache_bytes(32, 32, 128, 2048)
    assert r["weights"] == weights and r["kv_cache"] == kv and r["total"] == weights + kv
    assert r["seconds_per_step"] == pytest.approx((weights + kv) / a100.bandwidth)  # memory-bound
    assert r["tokens_per_second"] == pytest.approx(4 / r["seconds_per_step"]) and r["fits"] == 1.0
    # a huge batch at a short context becomes compute-bound: 2 N FLOPs per token
    big = inference_resources(shape, 1, batch=4096, accelerator=a100)
    assert big["seconds_per_step"] == pytest.approx(2 * shape.n_params * 4096 / a100.flops)
    assert inference_resources(LLAMA_SHAPES["70B"], 4096, accelerator=a100)["fits"] == 0.0  # 138 GB fp16
    assert "seconds_per_step" not in inference_resources(shape, 16)
    with pytest.raises(ValueError, match="seq_len"):
        inference_resources(shape, 0)
    with pytest.raises(TypeError, match="shape"):
        inference_resources("7B", 16)


# ----------------------------------------------------------------------------------------------------
# compute and scaling
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compute", [1e18, 5.88e23, 3.14e23])
def test_chinchilla_optimal_inverts_six_n_d(compute):
    n, d = chinchilla_optimal(compute)
    assert training_flops(n, d) == pytest.approx(compute) and d / n == pytest.approx(20)
    n10, d10 = chinchilla_optimal(compute, tokens_per_parameter=10)
    assert training_flops(n10, d10) == pytest.approx(compute) and n10 > n


def test_chinchilla_and_gopher_budgets():
    # Chinchilla (Hoffmann et al. 2022): 70B parameters on 1.4T tokens is 20 tokens per parameter
    n, d = chinchilla_optimal(training_flops(70e9, 1.4e12))
    assert n == pytest.approx(70e9) and d == pytest.approx(1.4e12)
    with pytest.raises(ValueError, match="compute_flops"):
        chinchilla_optimal(0)
    with pytest.raises(ValueError, match="tokens_per_parameter"):
        chinchilla_optimal(1e20, tokens_per_parameter=-1)
    with pytest.raises(ValueError, match="n_tokens"):
        training_flops(1e9, 0)


def test_fit_power_law_recovers_exponents_and_agrees_with_polyfit():
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        a, b = float(torch.rand(1, generator=g)) * 10 + 0.1, float(torch.randn(1, generator=g))
        x = torch.rand(6, generator=g).mul(1000).add(1).tolist()
        coefficient, exponent = fit_power_law(x, [a * v**b for v in x])
        assert coefficient == pytest.approx(a, rel=1e-9) and exponent == pytest.approx(b, abs=1e-9)
        noisy = [a * v**b * math.exp(0.1 * float(torch.randn(1, generator=g))) for v in x]
        slope, intercept = np.polyfit(np.log(x), np.log(noisy), 1)
        got = fit_power_law(x, noisy)
        assert got[1] == pytest.approx(slope, abs=1e-9) and got[0] == pytest.approx(math.exp(intercept))
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1, 2], [1, 0])
    with pytest.raises(ValueError, match="same length"):
        fit_power_law([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="two different"):
        fit_power_law([2, 2], [1, 3])


def test_gpt2_count_equals_transformers_gpt2():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=300, n_positions=64, n_embd=48, n_layer=3, n_head=4)
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(config)  # ties its head to the token embeddings
    assert gpt2_parameter_count(300, 64, 48, 3) == _count(model)
