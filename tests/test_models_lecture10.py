"""The KV cache of TinyGPT (Lecture 10, Q50). Oracles: the model's own forward pass on the whole sequence
(the cache must give its logits and attention, fed in any pieces), ``utils.decoding.greedy_decode`` (the
same tokens, in float64 so that rounding cannot break a near-tie), ``utils.sizing.kv_cache_bytes`` for the
bytes the cache holds, and properties (inputs unchanged, errors name the argument)."""

from __future__ import annotations

import pytest
import torch

from utils.attention import KVCache, LayerKVCache, MultiHeadAttention, RotaryMultiHeadAttention
from utils.decoding import greedy_decode
from utils.models import GPTConfig, TinyGPT, cached_greedy_decode, generation_step_times
from utils.sizing import kv_cache_bytes


def make_model(seed: int, dtype=torch.float32, **sizes) -> TinyGPT:
    torch.manual_seed(seed)
    config = GPTConfig(**{"vocab_size": 11, "block_size": 24, "d_model": 16, "n_heads": 4, "n_layers": 2,
                          **sizes})
    model = TinyGPT(config).to(dtype).eval()
    with torch.no_grad():  # larger weights than GPT-2's 0.02, so that tokens and positions matter
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("pieces", [[24], [1] * 24, [5, 1, 1, 9, 8], [10, 14], [3, 3, 3, 15]])
def test_feeding_pieces_through_the_cache_gives_the_whole_sequence_logits(pieces):
    model = make_model(0)
    ids = torch.randint(11, (2, 24), generator=torch.Generator().manual_seed(1))
    whole = model(ids)  # (2, 24, V)
    cache, start, parts = KVCache(2), 0, []
    with torch.no_grad():
        for size in pieces:
            parts.append(model(ids[:, start:start + size], kv_cache=cache))
            start += size
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, atol=1e-5, rtol=1e-5)
    assert cache.length == 24


def test_cached_attention_is_the_whole_sequence_attention():
    model = make_model(1, torch.float64)
    ids = torch.randint(11, (1, 12), generator=torch.Generator().manual_seed(2))
    _, whole = model(ids, return_attention=True)  # per layer (1, H, 12, 12)
    cache = KVCache(2)
    model(ids[:, :7], kv_cache=cache)
    _, rows = model(ids[:, 7:], kv_cache=cache, return_attention=True)  # per layer (1, H, 5, 12)
    for w, r in zip(whole, rows, strict=True):
        assert r.shape == (1, 4, 5, 12)
        torch.testing.assert_close(r, w[:, :, 7:], atol=1e-12, rtol=0)


@pytest.mark.parametrize("seed", range(6))
def test_cached_greedy_decode_writes_the_same_tokens_as_greedy_decode(seed):
    model = make_model(seed, torch.float64)
    prompt = torch.randint(11, (1, 1 + seed), generator=torch.Generator().manual_seed(seed))
    new = 24 - prompt.shape[1] + 1  # up to the last position the model can read
    expected = greedy_decode(model, prompt, new)
    assert torch.equal(cached_greedy_decode(model, prompt, new), expected)
    eos = int(expected[0, prompt.shape[1] + 2])  # stop at the third written token (or earlier)
    assert torch.equal(cached_greedy_decode(model, prompt, new, eos_id=eos), greedy_decode(model, prompt, new,
                                                                                            eos_id=eos))
    assert torch.equal(cached_greedy_decode(model, prompt, 0), prompt)


def test_cached_decoding_in_float32_agrees_with_the_whole_sequence_logits():
    model = make_model(3)
    prompt = torch.tensor([[1, 2, 3]])
    out = cached_greedy_decode(model, prompt, 15)
    logits = model(out[:, :-1])  # what the uncached model predicts at every position of that text
    # each written token is the uncached model's best guess, to float rounding
    chosen = logits[0, 2:].gather(-1, out[0, 3:, None]).squeeze(-1)
    torch.testing.assert_close(chosen, logits[0, 2:].max(dim=-1).values, atol=1e-5, rtol=0)


def test_the_cache_holds_what_kv_cache_bytes_says():
    model = make_model(4, n_layers=3, d_model=24, n_heads=3)
    cache = KVCache(3)
    with torch.no_grad():
        model(torch.randint(11, (2, 9)), kv_cache=cache)
        model(torch.randint(11, (2, 1)), kv_cache=cache)
    assert cache.length == 10
    assert cache.nbytes == kv_cache_bytes(3, 3, 8, 10, batch=2, bytes_per_value=4)  # float32: 4 bytes
    assert [tuple(layer.keys.shape) for layer in cache.layers] == [(2, 3, 10, 8)] * 3


def test_forward_without_a_cache_is_unchanged_and_inputs_are_not_modified():
    model = make_model(5)
    ids = torch.randint(11, (1, 10))
    before = ids.clone()
    torch.testing.assert_close(model(ids, kv_cache=None), model(ids), atol=0, rtol=0)
    cached_greedy_decode(model, ids, 5)
    assert torch.equal(ids, before)


def test_generation_step_times():
    model = make_model(6)
    for use_cache in (True, False):
        times = generation_step_times(model, torch.tensor([[1, 2]]), 6, use_cache=use_cache)
        assert len(times) == 6 and all(t > 0 for t in times)
    with pytest.raises(TypeError, match="use_cache"):
        generation_step_times(model, torch.tensor([[1, 2]]), 6, use_cache=1)


def test_bad_caches_and_arguments():
    model = make_model(7)
    with pytest.raises(TypeError, match="kv_cache must be a KVCache"):
        model(torch.tensor([[1]]), kv_cache=[])
    with pytest.raises(ValueError, match="layers"):
        model(torch.tensor([[1]]), kv_cache=KVCache(3))
    full = KVCache(2)
    model(torch.randint(11, (1, 24)), kv_cache=full)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.tensor([[1]]), kv_cache=full)
    with pytest.raises(ValueError, match="batch size"):
        model(torch.tensor([[1], [2]]), kv_cache=_half(model))
    with pytest.raises(TypeError, match="TinyGPT"):
        cached_greedy_decode(lambda ids: ids, torch.tensor([[1]]), 3)
    with pytest.raises(ValueError, match="block_size"):
        cached_greedy_decode(model, torch.tensor([[1, 2]]), 24)
    with pytest.raises(ValueError, match="max_new_tokens"):
        cached_greedy_decode(model, torch.tensor([[1, 2]]), -1)
    with pytest.raises(ValueError, match="n_layers"):
        KVCache(0)
    mha, cache = MultiHeadAttention(8, 2), LayerKVCache()
    with pytest.raises(ValueError, match="self-attention"):
        mha(torch.randn(1, 2, 8), context=torch.randn(1, 3, 8), kv_cache=cache)
    with pytest.raises(ValueError, match="positions"):
        RotaryMultiHeadAttention(8, 2)(torch.randn(1, 2, 8), kv_cache=cache)
    with pytest.raises(TypeError, match="LayerKVCache"):
        mha(torch.randn(1, 2, 8), kv_cache=KVCache(1))


def _half(model: TinyGPT) -> KVCache:
    cache = KVCache(model.config.n_layers)
    model(torch.tensor([[1, 2]]), kv_cache=cache)  # batch size 1
    return cache


def test_a_later_token_never_changes_a_decoder_output_but_changes_an_encoder_output():
    from utils.models import TinyEncoder

    config = GPTConfig(vocab_size=11, block_size=10, d_model=16, n_heads=4, n_layers=2)
    torch.manual_seed(8)
    decoder, encoder = TinyGPT(config).eval(), TinyEncoder(config).eval()
    ids = torch.randint(11, (1, 10), generator=torch.Generator().manual_seed(8))
    for t in range(9):
        changed = ids.clone()
        changed[0, t + 1:] = (changed[0, t + 1:] + 1) % 11  # every token after t
        with torch.no_grad():
            assert torch.equal(decoder(changed)[0, : t + 1], decoder(ids)[0, : t + 1])
            assert not torch.allclose(encoder(changed)[0, : t + 1], encoder(ids)[0, : t + 1])
