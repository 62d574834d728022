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

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ._checkpoint import cpu_state_dict, loss_history, read_checkpoint, write_checkpoint
from ._validation import check_positive_int
from .attention import (
    KVCache,
    LayerKVCache,
    MultiHeadAttention,
    RotaryMultiHeadAttention,
    causal_mask,
    sinusoidal_positional_encoding,
    visible_window,
)
from .data import tiny_world_sentences, tiny_world_vocabulary
from .tokenization import WordTokenizer
from .training import History, lm_loss, stream_batches, train

__all__ = ["GPTConfig", "Block", "TinyGPT", "next_token_probs", "CourseLM",
           "course_language_model", "train_course_language_model", "save_course_language_model",
           "TinyEncoder", "padding_mask", "segment_ids_from_separators", "SentencePairClassifier",
           "Seq2SeqConfig", "DecoderBlock", "Seq2SeqAttention", "TinySeq2Seq", "token_embedding_gradient",
           "RNN_CELLS", "RNNConfig", "TinyRNN", "without_positions",
           "POSITION_KINDS", "TinyClassifier", "sentence_log_probs",
           "SequenceClassifier", "class_posterior", "ResidualBlock", "TinyResNet",
           "FixedWindowLM", "KVCache", "cached_greedy_decode",
           "generation_step_times", "gradient_by_position"]


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

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, need_weights: bool = True,
        kv_cache: LayerKVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x (B, T, C)`` -> ``(x (B, T, C), attention weights (B, H, T, T))``; the weights are ``None``
        with ``need_weights=False`` (the fused fast path, see ``MultiHeadAttention``). With a ``kv_cache``
        the attention reads the cached positions too (weights ``(B, H, T, past + T)``)."""
        attended, weights = self.attn(self.ln1(x), mask=mask, need_weights=need_weights, kv_cache=kv_cache)
        x = x + self.dropout(attended)
        x = x + self.dropout(self.mlp(self.ln2(x)))
        return x, weights


class TinyGPT(nn.Module):
    """A causal language model: ``forward(idx (B, T))`` -> next-token logits ``(B, T, vocab_size)``.

    ``return_attention=True`` also returns each layer's attention weights ``(B, H, T, T)``, so the
    notebooks can draw where every head looks. Without it, attention takes PyTorch's fused fast path
    (``F.scaled_dot_product_attention``), which is what training uses; the logits agree to float rounding.

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
        _init_like_gpt2(self, [layer for b in self.blocks for layer in (b.attn.out_proj, b.mlp[2])])

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # small normal weights (std 0.02) and zero biases, GPT-2's initialisation
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self, idx: torch.Tensor, kv_cache: KVCache | None = None, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``idx (B, T)`` token ids with ``1 <= T <= block_size`` -> logits ``(B, T, vocab_size)``
        (and the list of per-layer attention weights ``(B, H, T, T)`` when ``return_attention``).

        With a ``KVCache`` holding ``past`` positions, ``idx`` are the *next* ``T`` tokens (positions
        ``past .. past + T - 1``): they attend over the cached keys and values and their own, which are
        appended to the cache. Feeding a sequence in pieces this way gives the logits of feeding it whole
        (to float rounding), and a generation step costs one token's work instead of the whole prefix's.
        """
        B, T = _check_token_ids(idx, self.config.vocab_size, self.config.block_size)
        past = 0
        if kv_cache is not None:
            past = self._check_cache(kv_cache, B, T)
        positions = torch.arange(past, past + T, device=idx.device)  # (T,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(positions))  # (B, T, C) + (T, C) -> (B, T, C)
        if past == 0:
            mask = causal_mask(T, device=idx.device)  # (T, T), broadcast over (B, H)
        elif T == 1:
            mask = None  # one new token may read every cached position: nothing to hide
        else:  # query i (position past + i) reads keys 0 .. past + i: (T, past + T)
            mask = torch.ones(T, past + T, dtype=torch.bool, device=idx.device).tril(diagonal=past)
        x, attention = _run_blocks(self.blocks, x, mask, return_attention, kv_cache)  # (B, T, C), [...]
        logits = self.lm_head(self.ln_f(x))  # (B, T, C) -> (B, T, V)
        return (logits, attention) if return_attention else logits

    def _check_cache(self, kv_cache: object, B: int, T: int) -> int:
        """The number of cached positions, after checking that ``kv_cache`` fits this model and input."""
        if not isinstance(kv_cache, KVCache):
            raise TypeError(f"kv_cache must be a KVCache, got {type(kv_cache).__name__}")
        if len(kv_cache.layers) != self.config.n_layers:
            raise ValueError(f"kv_cache has {len(kv_cache.layers)} layers, the model "
                             f"{self.config.n_layers}: make it with KVCache(model.config.n_layers)")
        past = kv_cache.length
        if past + T > self.config.block_size:
            raise ValueError(f"the kv_cache holds {past} positions and idx adds {T}: more than the context "
                             f"window block_size={self.config.block_size}")
        if past and kv_cache.layers[0].keys.shape[0] != B:
            raise ValueError(f"idx has batch size {B}, the kv_cache {kv_cache.layers[0].keys.shape[0]}")
        return past

    def num_parameters(self) -> int:
        """The number of numbers the model learns (all parameters, trainable or frozen)."""
        return sum(p.numel() for p in self.parameters())


def _run_blocks(
    blocks: nn.ModuleList, x: torch.Tensor, mask: torch.Tensor | None, need_weights: bool = True,
    kv_cache: KVCache | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``x (B, T, C)`` through a stack of ``Block``s with one ``mask``; return the output and each
    layer's attention weights ``(B, H, T, T)``, so every model can hand them to a heatmap. With
    ``need_weights=False`` the blocks take the fused fast path and the list is empty. With a
    ``kv_cache``, block ``i`` reads and extends ``kv_cache.layers[i]``."""
    attention = []
    for i, block in enumerate(blocks):
        layer_cache = None if kv_cache is None else kv_cache.layers[i]
        x, weights = block(x, mask, need_weights, layer_cache)  # (B, T, C), (B, H, T, T) or None
        if need_weights:
            attention.append(weights)
    return x, attention


def _check_token_ids(
    idx: object, vocab_size: int, max_len: int, name: str = "idx", max_len_name: str = "block_size"
) -> tuple[int, int]:
    """``(B, T)`` of a valid batch of token ids ``idx``, else the error that says what is wrong.

    Shared by every model of this module, so they all word their errors the same way.

    >>> _check_token_ids(torch.tensor([[1, 2, 3]]), vocab_size=5, max_len=4)
    (1, 3)
    """
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(idx).__name__}")
    if idx.dtype != torch.long:
        raise TypeError(f"{name} must be a LongTensor of token ids, got dtype {idx.dtype}")
    if idx.dim() != 2 or idx.shape[1] < 1:
        raise ValueError(f"{name} must have shape (B, T) with T >= 1, got {tuple(idx.shape)}")
    B, T = idx.shape
    if T > max_len:
        raise ValueError(f"{name} has T={T} positions, more than the context window {max_len_name}="
                         f"{max_len}: keep only its last {max_len} tokens")
    if idx.numel() and (idx.min() < 0 or idx.max() >= vocab_size):
        raise ValueError(f"{name} must hold ids in [0, vocab_size={vocab_size}), "
                         f"got min {idx.min().item()} and max {idx.max().item()}")
    return B, T


def _check_token_id(name: str, value: object, vocab_size: int, what: str) -> None:
    """``TypeError`` unless ``value`` is an int (bools excluded), ``ValueError`` unless it is in
    ``[0, vocab_size)``; ``what`` says which ids are meant ("a target token id")."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < vocab_size:
        raise ValueError(f"{name} must be {what} in [0, {vocab_size}), got {value}")


def _check_companion(name: str, value: object, idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``value`` must be a tensor of ``dtype`` with the shape of the token ids ``idx`` (B, T)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {value.dtype}")
    if value.shape != idx.shape:
        raise ValueError(f"{name} must have the shape of idx {tuple(idx.shape)}, got {tuple(value.shape)}")
    return value


def _init_like_gpt2(model: nn.Module, *residual_streams: list[nn.Linear]) -> None:
    """GPT-2's initialisation (Radford et al. 2019), as ``TinyGPT`` does it: normal(0, 0.02) weights, zero
    biases, and the layers that write into a residual stream scaled by 1/sqrt(number of writes into that
    stream), so its variance does not grow with depth (2 writes per block: 1/sqrt(2 n_layers))."""
    model.apply(TinyGPT._init_weights)
    for writes in residual_streams:
        for layer in writes:
            nn.init.normal_(layer.weight, mean=0.0, std=0.02 / math.sqrt(len(writes)))


def padding_mask(ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Where attention may look when ``ids (B, Tk)`` are keys: ``(B, 1, 1, Tk)``, False on ``pad_id``.

    The two singleton dimensions broadcast over heads and queries: no query, in any head, may read a
    padding token, which exists only to make rows of a batch the same length.

    >>> padding_mask(torch.tensor([[5, 6, 0]]), pad_id=0).int().tolist()
    [[[[1, 1, 0]]]]
    """
    return (ids != pad_id)[:, None, None, :]  # (B, Tk) -> (B, 1, 1, Tk)


class TinyEncoder(nn.Module):
    """A BERT-style bidirectional encoder (Devlin et al. 2019), made of ``TinyGPT``'s parts without the
    causal mask: every position sees every other one, left and right.

    Token + learned position (+ segment, when ``n_segments > 0``) embeddings, ``config.n_layers``
    pre-LayerNorm ``Block``s, a final LayerNorm, and a masked-language-model head to vocabulary logits.

    - ``forward(idx, segment_ids=None, return_attention=False, attention_mask=None)`` -> MLM logits
      ``(B, T, V)`` (and the per-layer attention weights ``(B, H, T, T)``);
    - ``encode(idx, segment_ids=None, attention_mask=None)`` -> hidden states ``(B, T, C)``; a sentence
      classifier reads ``encode(...)[:, 0]``, the ``[CLS]`` position;
    - ``segment_ids (B, T)`` in ``[0, n_segments)`` say which sentence each token belongs to (BERT's
      sentence A / sentence B); omitted, they are all 0;
    - ``attention_mask (B, T)`` bool, True = real token: padding is never attended to.

    >>> encoder = TinyEncoder(GPTConfig(vocab_size=7, block_size=6, d_model=8, n_heads=2), n_segments=2)
    >>> ids, segments = torch.tensor([[1, 4, 2, 5, 2]]), torch.tensor([[0, 0, 0, 1, 1]])
    >>> tuple(encoder(ids, segments).shape), tuple(encoder.encode(ids, segments)[:, 0].shape)
    ((1, 5, 7), (1, 8))
    """

    def __init__(self, config: GPTConfig, n_segments: int = 0) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        if isinstance(n_segments, bool) or not isinstance(n_segments, int):
            raise TypeError(f"n_segments must be an int, got {type(n_segments).__name__}")
        if n_segments < 0:
            raise ValueError(f"n_segments must be >= 0 (0 = no segment embeddings), got {n_segments}")
        self.config, self.n_segments = config, n_segments
        C = config.d_model
        self.tok_emb = nn.Embedding(config.vocab_size, C)
        self.pos_emb = nn.Embedding(config.block_size, C)
        self.seg_emb = nn.Embedding(n_segments, C) if n_segments else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(C, bias=config.bias)
        self.mlm_head = nn.Linear(C, config.vocab_size, bias=False)
        _init_like_gpt2(self, [layer for b in self.blocks for layer in (b.attn.out_proj, b.mlp[2])])

    def _hidden(
        self, idx: torch.Tensor, segment_ids: torch.Tensor | None, attention_mask: torch.Tensor | None,
        need_weights: bool,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        B, T = _check_token_ids(idx, self.config.vocab_size, self.config.block_size)
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device))  # (B, T, C) + (T, C)
        if segment_ids is not None:
            if self.seg_emb is None:
                raise ValueError("segment_ids given, but this encoder has no segment embeddings "
                                 "(build it with n_segments >= 1)")
            _check_companion("segment_ids", segment_ids, idx, torch.long)
            if segment_ids.min() < 0 or segment_ids.max() >= self.n_segments:
                raise ValueError(f"segment_ids must be in [0, n_segments={self.n_segments}), got min "
                                 f"{segment_ids.min().item()} and max {segment_ids.max().item()}")
            x = x + self.seg_emb(segment_ids)  # BERT adds a learned "which sentence" vector (B, T, C)
        elif self.seg_emb is not None:
            x = x + self.seg_emb.weight[0]  # no segment ids: every token is in segment 0, as in BERT
        mask = None  # bidirectional: no causal mask, every query may read every key
        if attention_mask is not None:
            _check_companion("attention_mask", attention_mask, idx, torch.bool)
            mask = attention_mask[:, None, None, :]  # (B, T) -> (B, 1, 1, T): no query reads padding
        x, attention = _run_blocks(self.blocks, self.drop(x), mask, need_weights)  # (B, T, C), [(B, H, T, T)]
        return self.ln_f(x), attention

    def encode(
        self, idx: torch.Tensor, segment_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``idx (B, T)`` -> contextual vectors ``(B, T, C)`` after the final LayerNorm."""
        return self._hidden(idx, segment_ids, attention_mask, need_weights=False)[0]

    def forward(
        self, idx: torch.Tensor, segment_ids: torch.Tensor | None = None, return_attention: bool = False,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``idx (B, T)`` -> MLM logits ``(B, T, V)`` [, per-layer attention weights ``(B, H, T, T)``]."""
        hidden, attention = self._hidden(idx, segment_ids, attention_mask, need_weights=return_attention)
        logits = self.mlm_head(hidden)  # (B, T, C) -> (B, T, V)
        return (logits, attention) if return_attention else logits

    def num_parameters(self) -> int:
        """The number of numbers the model learns."""
        return sum(p.numel() for p in self.parameters())


def segment_ids_from_separators(idx: torch.Tensor, sep_id: int) -> torch.Tensor:
    """BERT's segment ids for ``[CLS] A [SEP] B [SEP]`` inputs ``idx (B, T)``: 0 up to and including the
    first ``[SEP]``, 1 after it (and everything after a second ``[SEP]`` stays 1).

    >>> segment_ids_from_separators(torch.tensor([[9, 4, 5, 8, 6, 8]]), sep_id=8).tolist()
    [[0, 0, 0, 0, 1, 1]]
    """
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"idx must be a torch.Tensor of token ids, got {type(idx).__name__}")
    if idx.dim() != 2:
        raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}")
    is_sep = (idx == sep_id).long()  # (B, T)
    seps_before = is_sep.cumsum(dim=1) - is_sep  # (B, T): [SEP]s strictly before each position
    return seps_before.clamp(max=1)


class SentencePairClassifier(nn.Module):
    """BERT's sentence-pair head (Devlin et al. 2019, used for next sentence prediction): the ``[CLS]``
    hidden state of a ``TinyEncoder``, through a "pooler" (linear + tanh), to ``n_classes`` logits.

    ``forward(idx (B, T), segment_ids=None, attention_mask=None)`` -> logits ``(B, n_classes)``. Without
    ``segment_ids``, they are read off the ``[SEP]`` tokens (``segment_ids_from_separators``), so that
    a training loop can pass the token ids alone.

    >>> encoder = TinyEncoder(GPTConfig(vocab_size=7, block_size=6, d_model=8, n_heads=2), n_segments=2)
    >>> tuple(SentencePairClassifier(encoder, sep_id=2)(torch.tensor([[1, 4, 2, 5, 2]])).shape)
    (1, 2)
    """

    def __init__(self, encoder: TinyEncoder, sep_id: int, n_classes: int = 2) -> None:
        super().__init__()
        if not isinstance(encoder, TinyEncoder):
            raise TypeError(f"encoder must be a TinyEncoder, got {type(encoder).__name__}")
        if encoder.n_segments < 2:
            raise ValueError(f"encoder must have n_segments >= 2 (sentences A and B), "
                             f"got {encoder.n_segments}")
        _check_token_id("sep_id", sep_id, encoder.config.vocab_size, "a token id")
        check_positive_int("n_classes", n_classes)
        C = encoder.config.d_model
        self.encoder, self.sep_id = encoder, sep_id
        self.pooler = nn.Linear(C, C)
        self.classifier = nn.Linear(C, n_classes)

    def forward(
        self, idx: torch.Tensor, segment_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``idx (B, T)`` -> class logits ``(B, n_classes)`` from the ``[CLS]`` position 0."""
        if segment_ids is None:
            _check_token_ids(idx, self.encoder.config.vocab_size, self.encoder.config.block_size)
            segment_ids = segment_ids_from_separators(idx, self.sep_id)
        cls = self.encoder.encode(idx, segment_ids, attention_mask)[:, 0]  # (B, T, C) -> (B, C)
        return self.classifier(torch.tanh(self.pooler(cls)))  # (B, C) -> (B, n_classes)


@dataclass
class Seq2SeqConfig:
    """The sizes of a ``TinySeq2Seq``: source and target vocabularies and lengths, and the transformer's.

    ``pad_id`` is the padding id of both vocabularies (``WordTokenizer`` puts ``<pad>`` at 0).

    >>> Seq2SeqConfig(src_vocab_size=30, tgt_vocab_size=14, max_src_len=4, max_tgt_len=5).n_heads
    4
    """

    src_vocab_size: int
    tgt_vocab_size: int
    max_src_len: int
    max_tgt_len: int
    d_model: int = 64
    n_heads: int = 4
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    dropout: float = 0.0
    bias: bool = True
    pad_id: int = 0

    def __post_init__(self) -> None:
        self.encoder_config(), self.decoder_config()  # GPTConfig validates the shared fields
        _check_token_id("pad_id", self.pad_id, min(self.src_vocab_size, self.tgt_vocab_size),
                        "a token id of both vocabularies,")

    def _stack(self, vocab_size: int, block_size: int, n_layers: int, names: str) -> GPTConfig:
        try:
            return GPTConfig(vocab_size, block_size, self.d_model, self.n_heads, n_layers, self.dropout,
                             self.bias)
        except (TypeError, ValueError) as error:  # name the Seq2SeqConfig fields, not GPTConfig's
            for gpt_name, ours in zip(("vocab_size", "block_size", "n_layers"), names.split(), strict=True):
                error.args = (str(error).replace(gpt_name, ours),)
            raise

    def encoder_config(self) -> GPTConfig:
        """The encoder stack's sizes as a ``GPTConfig`` (its ``Block``s are ``TinyGPT``'s)."""
        return self._stack(self.src_vocab_size, self.max_src_len, self.n_encoder_layers,
                           "src_vocab_size max_src_len n_encoder_layers")

    def decoder_config(self) -> GPTConfig:
        """The decoder stack's sizes as a ``GPTConfig``."""
        return self._stack(self.tgt_vocab_size, self.max_tgt_len, self.n_decoder_layers,
                           "tgt_vocab_size max_tgt_len n_decoder_layers")


class DecoderBlock(nn.Module):
    """A pre-LN decoder block of the original Transformer (Vaswani et al. 2017, figure 1): causal
    self-attention over what has been written so far, then cross-attention from those positions to the
    encoder's output (queries from the decoder, keys and values from the source), then the MLP."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        C = config.d_model
        self.ln1 = nn.LayerNorm(C, bias=config.bias)
        self.self_attn = MultiHeadAttention(C, config.n_heads, bias=config.bias)
        self.ln2 = nn.LayerNorm(C, bias=config.bias)
        self.cross_attn = MultiHeadAttention(C, config.n_heads, bias=config.bias)
        self.ln3 = nn.LayerNorm(C, bias=config.bias)
        self.mlp = nn.Sequential(nn.Linear(C, 4 * C, bias=config.bias), nn.GELU(),
                                 nn.Linear(4 * C, C, bias=config.bias))
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, self_mask: torch.Tensor, cross_mask: torch.Tensor,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``x (B, T, C)``, ``memory (B, S, C)`` -> ``(x, self weights (B, H, T, T), cross (B, H, T, S))``
        (the weights ``None`` with ``need_weights=False``, the fused fast path)."""
        attended, self_weights = self.self_attn(self.ln1(x), mask=self_mask, need_weights=need_weights)
        x = x + self.dropout(attended)
        # the encoder's output is already normalised (its final LayerNorm): only the queries get ln2
        attended, cross_weights = self.cross_attn(self.ln2(x), context=memory, mask=cross_mask,
                                                  need_weights=need_weights)
        x = x + self.dropout(attended)
        x = x + self.dropout(self.mlp(self.ln3(x)))
        return x, self_weights, cross_weights


@dataclass
class Seq2SeqAttention:
    """Every attention map of one ``TinySeq2Seq`` forward pass, one tensor per layer."""

    encoder: list[torch.Tensor]  # (B, H, S, S): the source reads itself, both directions
    decoder_self: list[torch.Tensor]  # (B, H, T, T): the target reads its own past (causal)
    cross: list[torch.Tensor]  # (B, H, T, S): each target position reads the source


class TinySeq2Seq(nn.Module):
    """An encoder-decoder transformer (Vaswani et al. 2017), pre-LN, small enough to train in seconds.

    The **encoder** reads the whole source at once (bidirectional ``Block``s, padding masked out); the
    **decoder** writes the target one token at a time: causal self-attention over its own past, and
    cross-attention to the encoder's output. Source and target lengths are independent.

    - ``forward(src (B, S), tgt_in (B, T), return_attention=False)`` -> logits ``(B, T, V_tgt)`` where
      position ``t`` predicts target token ``t + 1`` (``tgt_in`` starts with ``<bos>``: teacher forcing);
      with ``return_attention`` also a ``Seq2SeqAttention``;
    - ``generate(src, max_new_tokens, bos_id, eos_id)`` -> greedy output ``(B, T')``, ``<bos>`` first.

    >>> config = Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=6, max_src_len=5, max_tgt_len=4,
    ...                        d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1)
    >>> model = TinySeq2Seq(config)
    >>> src, tgt_in = torch.tensor([[3, 4, 5, 0, 0]]), torch.tensor([[1, 4]])
    >>> logits, attention = model(src, tgt_in, return_attention=True)
    >>> tuple(logits.shape), tuple(attention.cross[0].shape)     # (B, T, V_tgt), (B, H, T, S)
    ((1, 2, 6), (1, 2, 2, 5))
    >>> attention.cross[0][0, :, :, 3:].abs().sum().item()       # the two padded source positions
    0.0
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"config must be a Seq2SeqConfig, got {type(config).__name__}")
        self.config = config
        enc, dec, C = config.encoder_config(), config.decoder_config(), config.d_model
        self.src_tok_emb = nn.Embedding(config.src_vocab_size, C)
        self.src_pos_emb = nn.Embedding(config.max_src_len, C)
        self.encoder_blocks = nn.ModuleList(Block(enc) for _ in range(config.n_encoder_layers))
        self.encoder_ln = nn.LayerNorm(C, bias=config.bias)
        self.tgt_tok_emb = nn.Embedding(config.tgt_vocab_size, C)
        self.tgt_pos_emb = nn.Embedding(config.max_tgt_len, C)
        self.decoder_blocks = nn.ModuleList(DecoderBlock(dec) for _ in range(config.n_decoder_layers))
        self.decoder_ln = nn.LayerNorm(C, bias=config.bias)
        self.lm_head = nn.Linear(C, config.tgt_vocab_size, bias=False)
        self.drop = nn.Dropout(config.dropout)
        _init_like_gpt2(
            self,
            [layer for b in self.encoder_blocks for layer in (b.attn.out_proj, b.mlp[2])],
            [layer for b in self.decoder_blocks for layer in (b.self_attn.out_proj, b.cross_attn.out_proj,
                                                              b.mlp[2])],
        )

    def encode(
        self, src: torch.Tensor, need_weights: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``src (B, S)`` -> ``(memory (B, S, C), encoder attention per layer (B, H, S, S))`` (an empty
        list with ``need_weights=False``, the fused fast path)."""
        c = self.config
        _, S = _check_token_ids(src, c.src_vocab_size, c.max_src_len, "src", "max_src_len")
        x = self.drop(self.src_tok_emb(src) + self.src_pos_emb(torch.arange(S, device=src.device)))
        mask = padding_mask(src, c.pad_id)  # (B, 1, 1, S): every source token reads every real one
        x, attention = _run_blocks(self.encoder_blocks, x, mask, need_weights)  # (B, S, C), [(B, H, S, S)]
        return self.encoder_ln(x), attention

    def decode(
        self, tgt_in: torch.Tensor, memory: torch.Tensor, src: torch.Tensor, need_weights: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """``tgt_in (B, T)`` and the encoder's ``memory (B, S, C)`` of ``src (B, S)`` -> ``(logits
        (B, T, V_tgt), self-attention (B, H, T, T) per layer, cross-attention (B, H, T, S) per layer)``
        (empty lists with ``need_weights=False``, the fused fast path)."""
        c = self.config
        B, T = _check_token_ids(tgt_in, c.tgt_vocab_size, c.max_tgt_len, "tgt_in", "max_tgt_len")
        if B != src.shape[0]:
            raise ValueError(f"src and tgt_in must have the same batch size, got {src.shape[0]} and {B}")
        x = self.drop(self.tgt_tok_emb(tgt_in) + self.tgt_pos_emb(torch.arange(T, device=tgt_in.device)))
        # causal (no peeking at the next token) and no padding, combined: (T, T) & (B, 1, 1, T)
        self_mask = causal_mask(T, device=tgt_in.device) & padding_mask(tgt_in, c.pad_id)  # (B, 1, T, T)
        cross_mask = padding_mask(src, c.pad_id)  # (B, 1, 1, S)
        self_attention, cross_attention = [], []
        for block in self.decoder_blocks:
            x, self_weights, cross_weights = block(x, memory, self_mask, cross_mask, need_weights)
            if need_weights:
                self_attention.append(self_weights)
                cross_attention.append(cross_weights)
        return self.lm_head(self.decoder_ln(x)), self_attention, cross_attention  # (B, T, V_tgt)

    def forward(
        self, src: torch.Tensor, tgt_in: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Seq2SeqAttention]:
        """``src (B, S)``, ``tgt_in (B, T)`` -> logits ``(B, T, V_tgt)`` [, ``Seq2SeqAttention``]."""
        memory, encoder_attention = self.encode(src, need_weights=return_attention)
        logits, self_attention, cross_attention = self.decode(tgt_in, memory, src, return_attention)
        if return_attention:
            return logits, Seq2SeqAttention(encoder_attention, self_attention, cross_attention)
        return logits

    @torch.no_grad()
    def generate(self, src: torch.Tensor, max_new_tokens: int, bos_id: int, eos_id: int) -> torch.Tensor:
        """Greedy decoding: start every row with ``bos_id``, append the most probable next token, stop a
        row at ``eos_id`` (its later positions are ``pad_id``) and the batch when every row has stopped
        or after ``max_new_tokens``. Returns ``(B, 1 + steps taken)``, ``<bos>`` first, ``<eos>`` kept.

        The source is encoded once; only the decoder runs at every step. The model's train/eval mode is
        restored afterwards (it runs in eval mode, without dropout).
        """
        c = self.config
        check_positive_int("max_new_tokens", max_new_tokens)
        if max_new_tokens > c.max_tgt_len:
            raise ValueError(f"max_new_tokens must be <= max_tgt_len={c.max_tgt_len} (the decoder reads "
                             f"at most that many positions), got {max_new_tokens}")
        for name, value in (("bos_id", bos_id), ("eos_id", eos_id)):
            _check_token_id(name, value, c.tgt_vocab_size, "a target token id")
        was_training = self.training
        self.eval()
        try:
            memory, _ = self.encode(src, need_weights=False)  # (B, S, C), computed once
            out = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
            done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)  # (B,)
            for _ in range(max_new_tokens):
                logits, _, _ = self.decode(out, memory, src, need_weights=False)  # (B, t, V_tgt)
                next_id = logits[:, -1].argmax(dim=-1)  # (B,): the last position predicts the next token
                next_id = next_id.masked_fill(done, c.pad_id)  # finished rows only pad
                out = torch.cat([out, next_id[:, None]], dim=1)  # (B, t) -> (B, t + 1)
                done = done | (next_id == eos_id)
                if done.all():
                    break
        finally:
            self.train(was_training)
        return out

    def num_parameters(self) -> int:
        """The number of numbers the model learns."""
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


# --- Lecture 10: generation with a KV cache ---------------------------------------------------------------
# Greedy decoding (utils.decoding.greedy_decode) runs the model on the whole sequence at every step, so
# step t costs t tokens' work and n steps cost O(n²). A causal model's keys and values for the earlier
# positions never change, so they can be kept (the KV cache of every serving stack): step t then costs
# one token through the MLPs and projections, plus reading t cached keys and values.


def _check_cached_decoding(model: object, input_ids: object, max_new_tokens: object,
                           eos_id: object) -> None:
    from .decoding import _check_decoding_args  # noqa: PLC0415 (its argument checks, worded the same way)

    if not isinstance(model, TinyGPT):
        raise TypeError(f"model must be a TinyGPT (it keeps a KVCache), got {type(model).__name__}")
    _check_decoding_args(model, input_ids, max_new_tokens, eos_id)
    longest = input_ids.shape[1] + max(max_new_tokens - 1, 0)  # the last token fed is the one before last
    if longest > model.config.block_size:
        raise ValueError(f"input_ids has {input_ids.shape[1]} tokens and max_new_tokens={max_new_tokens}: "
                         f"the model would read {longest} positions, more than block_size="
                         f"{model.config.block_size}")


@torch.no_grad()
def cached_greedy_decode(model: TinyGPT, input_ids: torch.Tensor, max_new_tokens: int,
                         eos_id: int | None = None) -> torch.Tensor:
    """Greedy decoding with a ``KVCache``: the same tokens as ``utils.decoding.greedy_decode(model, ...)``
    (the most probable next token, ties to the lower id; stop after ``eos_id``, which is kept), but the
    prompt is read once and each later step feeds only the newest token. Returns ``(1, T')``.

    >>> model = TinyGPT(GPTConfig(vocab_size=7, block_size=12, d_model=8, n_heads=2)).double()
    >>> from utils.decoding import greedy_decode
    >>> prompt = torch.tensor([[1, 2, 3]])
    >>> torch.equal(cached_greedy_decode(model, prompt, 9), greedy_decode(model, prompt, 9))
    True
    """
    from .decoding import _evaluating  # noqa: PLC0415

    _check_cached_decoding(model, input_ids, max_new_tokens, eos_id)
    ids = input_ids.clone()
    if max_new_tokens == 0:
        return ids
    cache = KVCache(model.config.n_layers)
    with _evaluating(model):
        logits = model(ids, kv_cache=cache)  # the prompt, once: (1, T, V); the cache now holds T positions
        for step in range(max_new_tokens):
            next_id = logits[:, -1].argmax(dim=-1, keepdim=True)  # (1, 1)
            ids = torch.cat([ids, next_id], dim=1)  # (1, T) -> (1, T + 1)
            if (eos_id is not None and next_id.item() == eos_id) or step == max_new_tokens - 1:
                break
            logits = model(next_id, kv_cache=cache)  # one token's work: (1, 1, V)
    return ids


@torch.no_grad()
def generation_step_times(model: TinyGPT, input_ids: torch.Tensor, max_new_tokens: int,
                          use_cache: bool) -> list[float]:
    """Wall-clock seconds of each greedy step (``time.perf_counter``), with a ``KVCache`` or recomputing the
    whole prefix each step as ``greedy_decode`` does; ``[i]`` is the step that writes token
    ``T + i``. The first step of the cached run includes reading the prompt.

    >>> model = TinyGPT(GPTConfig(vocab_size=7, block_size=12, d_model=8, n_heads=2))
    >>> len(generation_step_times(model, torch.tensor([[1, 2]]), 5, use_cache=True))
    5
    """
    import time  # noqa: PLC0415

    from .decoding import _evaluating  # noqa: PLC0415

    _check_cached_decoding(model, input_ids, max_new_tokens, None)
    if not isinstance(use_cache, bool):
        raise TypeError(f"use_cache must be a bool, got {type(use_cache).__name__}")
    ids, times = input_ids.clone(), []
    cache = KVCache(model.config.n_layers) if use_cache else None
    feed = ids
    with _evaluating(model):
        for _ in range(max_new_tokens):
            start = time.perf_counter()
            logits = model(feed, kv_cache=cache) if use_cache else model(ids)  # (1, T, V) or (1, 1, V)
            next_id = logits[:, -1].argmax(dim=-1, keepdim=True)  # (1, 1)
            times.append(time.perf_counter() - start)
            ids = torch.cat([ids, next_id], dim=1)
            feed = next_id
    return times


# --- Lecture 8: one sequence, two kinds of model (Q39: discriminative vs generative) ---------------------
# A discriminative model learns p(class | sequence) and nothing else; a generative one learns
# p(sequence | class) (here a class-conditional TinyGPT: the class is the first token it reads), which is
# enough to write new sequences AND, with Bayes' rule, to classify (Ng & Jordan 2001). The likelihoods
# come from utils.decoding.sequence_log_probs.


class SequenceClassifier(nn.Module):
    """A sequence classifier: a ``TinyEncoder`` read at position 0 (a ``[CLS]`` token, as in BERT) through
    a linear layer to ``n_classes`` logits: ``forward(idx (B, T), attention_mask=None)`` ->
    ``(B, n_classes)``.

    >>> encoder = TinyEncoder(GPTConfig(vocab_size=7, block_size=6, d_model=8, n_heads=2))
    >>> tuple(SequenceClassifier(encoder, n_classes=3)(torch.tensor([[1, 4, 2, 5]])).shape)
    (1, 3)
    """

    def __init__(self, encoder: TinyEncoder, n_classes: int = 2) -> None:
        super().__init__()
        if not isinstance(encoder, TinyEncoder):
            raise TypeError(f"encoder must be a TinyEncoder, got {type(encoder).__name__}")
        check_positive_int("n_classes", n_classes)
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.config.d_model, n_classes)

    def forward(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        cls = self.encoder.encode(idx, attention_mask=attention_mask)[:, 0]  # (B, T, C) -> (B, C)
        return self.classifier(cls)  # (B, n_classes)


def class_posterior(log_likelihoods: torch.Tensor, log_prior: torch.Tensor | None = None) -> torch.Tensor:
    """Bayes' rule in log space: ``log p(c | x) = log p(x | c) + log p(c) − log Σ_c' p(x | c') p(c')``
    for ``log_likelihoods (N, C)`` and ``log_prior (C,)`` (default: uniform). Returns ``(N, C)``.

    >>> class_posterior(torch.log(torch.tensor([[0.02, 0.06]]))).exp()       # equal priors: 1 : 3
    tensor([[0.2500, 0.7500]])
    """
    if not isinstance(log_likelihoods, torch.Tensor) or log_likelihoods.dim() != 2:
        raise TypeError("log_likelihoods must be a tensor (N, C) of log p(x | c)")
    C = log_likelihoods.shape[1]
    if log_prior is None:
        log_prior = torch.full((C,), -math.log(C), dtype=log_likelihoods.dtype, device=log_likelihoods.device)
    if log_prior.shape != (C,):
        raise ValueError(f"log_prior must have shape ({C},), one entry per class, "
                         f"got {tuple(log_prior.shape)}")
    joint = log_likelihoods + log_prior  # (N, C): log p(x, c)
    return joint - torch.logsumexp(joint, dim=1, keepdim=True)  # divide by p(x)


# --- The course language model ---------------------------------------------------------------------------
# Lectures 2, 3 and later decode from one shared model. Training it takes 15 to 60 s on a laptop
# CPU, too much of a notebook's budget, so the course ships it as a small checkpoint made by this module's
# script (`python -m utils.models`, or `make course-lm`), and `course_language_model()` loads it.

COURSE_LM_CONFIG = {"block_size": 32, "d_model": 64, "n_heads": 4, "n_layers": 2}
COURSE_LM_STEPS = 400
COURSE_LM_SENTENCES = 20_000
COURSE_LM_CHECKPOINT = Path(__file__).parent / "checkpoints" / "course_lm.pt"


@dataclass
class CourseLM:
    """The course's language model: a ``TinyGPT`` trained on the weighted tiny world, with its tokenizer.

    A ``CourseLM`` is itself a *model* in the sense of ``utils.decoding``: calling it on ids ``(B, T)``
    returns next-token logits. Because its window is ``block_size`` = 32 tokens, it reads only the last 32
    tokens of a longer input (as nanoGPT's ``generate`` crops), so the logits cover ``min(T, 32)``
    positions; the last one always predicts the token after the whole input.
    """

    model: TinyGPT
    tokenizer: WordTokenizer
    history: History

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, text: str) -> torch.Tensor:
        """``<bos>`` + the word ids of ``text``, as a ``LongTensor (1, T)`` on the model's device."""
        ids = [self.tokenizer.bos_id] + self.tokenizer.encode(text)
        return torch.tensor([ids], device=self.device)

    def decode(self, ids) -> str:
        """The words of ``ids`` (a ``(1, T)`` or ``(T,)`` tensor, or a list), without ``<pad>``/``<bos>``."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() == 2 and ids.shape[0] == 1:
                ids = ids[0]
            if ids.dim() != 1:
                raise ValueError(f"ids must be (1, T) or (T,), got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        return self.tokenizer.decode(list(ids), skip_specials=True)

    @torch.no_grad()
    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, min(T, block_size), V)`` for ``ids (B, T)`` (only the last ``block_size`` tokens)."""
        block = self.model.config.block_size
        return self.model(ids[:, -block:].to(self.device))


def train_course_language_model(steps: int = COURSE_LM_STEPS, seed: int = 0,
                                device: torch.device | str | None = None, progress: bool = True) -> CourseLM:
    """Train the course's language model from scratch: a ``TinyGPT`` (block size 32, 2 layers, 4 heads,
    d_model 64, about 110k parameters) on 20,000 sentences of the **weighted** tiny world
    (``tiny_world_sentences(..., weighted=True)``) glued into one stream ``<bos> s1 <bos> s2 ...``, for
    ``steps`` AdamW steps of 64 windows of 32 tokens (nanoGPT's recipe, scaled down).

    The data, the initialisation and the batches are all seeded, so the same ``seed`` on the same machine
    and PyTorch version gives the same model. With the default steps its next-word probabilities are
    within 0.05 (total variation) of the exact ones, ``utils.data.next_word_probabilities``: the tests
    check that, so the decoding lectures can compare what a decoder finds with the truth.
    """
    check_positive_int("steps", steps)
    device = _default_device() if device is None else torch.device(device)
    tokenizer = WordTokenizer(tiny_world_vocabulary())
    sentences = tiny_world_sentences(COURSE_LM_SENTENCES, seed=seed, weighted=True)
    stream = torch.tensor([i for s in sentences for i in [tokenizer.bos_id, *tokenizer.encode(s)]])
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **COURSE_LM_CONFIG)
    torch.manual_seed(seed)
    model = TinyGPT(config).to(device)
    batches = stream_batches(stream, block_size=config.block_size, batch_size=64,
                             generator=torch.Generator().manual_seed(seed), device=device)
    history = train(model, batches, steps=steps, lr=3e-3, progress=progress,
                    desc="training the course language model")
    return CourseLM(model, tokenizer, history)


def _default_device() -> torch.device:
    from .runtime import get_device  # noqa: PLC0415 (only needed here)

    return get_device()


def save_course_language_model(course: CourseLM, path: str | Path = COURSE_LM_CHECKPOINT) -> Path:
    """Write ``course`` as a checkpoint of plain tensors, numbers and strings (no pickled classes), so
    that ``torch.load(path, weights_only=True)`` can read it safely."""
    config = course.model.config
    return write_checkpoint({
        "config": asdict(config),
        "vocabulary": course.tokenizer.id_to_token,
        "specials": list(course.tokenizer.specials),
        "state_dict": cpu_state_dict(course.model),
        "losses": course.history.losses,
    }, path)


def course_language_model(device: torch.device | str | None = None,
                          path: str | Path = COURSE_LM_CHECKPOINT) -> CourseLM:
    """The course's language model, loaded from the checkpoint the course ships (made by
    ``python -m utils.models``; see ``train_course_language_model`` for how it is trained).

    >>> course = course_language_model(device="cpu")
    >>> course.decode(course.encode("the cat")), course(course.encode("the cat")).shape[-1]
    ('the cat', 50)
    """
    payload = read_checkpoint(path, what="course model", module="utils.models", target="course-lm",
                              note=" (under a minute)")
    device = _default_device() if device is None else torch.device(device)
    specials = payload["specials"]
    tokenizer = WordTokenizer(payload["vocabulary"][len(specials):], specials=specials)
    model = TinyGPT(GPTConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    return CourseLM(model, tokenizer, loss_history(payload["losses"]))


# --- Lecture 6: the gradient of the token embedding table -------------------------------------------------

def token_embedding_gradient(model: TinyGPT, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient of the next-token loss on ``ids (B, T)`` with respect to ``model.tok_emb.weight``
    ``(V, C)``, and the gradient ``upstream (B, T - 1, C)`` that arrived at the looked-up vectors.

    The model reads ``ids[:, :-1]`` and predicts ``ids[:, 1:]`` (mean cross-entropy, ``lm_loss``), as in
    training. Returning ``upstream`` lets a notebook redo the last step of the chain rule by hand
    (``utils.linalg.embedding_gradient(ids[:, :-1], upstream, V)`` gives the same table). The model's
    parameters and their ``.grad`` are left as they were; it runs in eval mode (no dropout).

    >>> model = TinyGPT(GPTConfig(vocab_size=6, block_size=4, d_model=8, n_heads=2, n_layers=1))
    >>> grad, upstream = token_embedding_gradient(model, torch.tensor([[1, 2, 2, 5]]))
    >>> tuple(grad.shape), tuple(upstream.shape), grad.abs().sum(dim=1).nonzero().flatten().tolist()
    ((6, 8), (1, 3, 8), [1, 2])
    """
    if not isinstance(model, TinyGPT):
        raise TypeError(f"model must be a TinyGPT, got {type(model).__name__}")
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.shape[1] < 2:
        raise ValueError("ids must be a (B, T) LongTensor with T >= 2 (the model reads ids[:, :-1] and "
                         "predicts ids[:, 1:])")
    table = model.tok_emb.weight
    if not table.requires_grad:
        raise ValueError("model.tok_emb.weight is frozen (requires_grad=False): it has no gradient to show")
    looked_up: list[torch.Tensor] = []  # the output of the lookup, a node of the graph we differentiate
    handle = model.tok_emb.register_forward_hook(lambda module, inputs, output: looked_up.append(output))
    was_training = model.training
    model.eval()
    try:
        logits = model(ids[:, :-1].to(table.device))  # (B, T-1, V)
    finally:
        handle.remove()
        model.train(was_training)
    loss = lm_loss(logits, ids[:, 1:].to(table.device))
    grad, upstream = torch.autograd.grad(loss, [table, looked_up[0]])  # (V, C), (B, T-1, C)
    return grad, upstream


def gradient_by_position(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How much the last position's loss reaches back to each input token (Lecture 9, Q43): ``(T,)``, entry
    ``t`` the norm of ``∂ loss / ∂ e_t`` averaged over the batch, where ``e_t (C,)`` is the embedded token
    ``t`` and ``loss`` the cross-entropy of the prediction at the last position against ``targets (B,)``.

    Works for a ``TinyGPT`` (its ``tok_emb``) and a ``TinyRNN`` (its ``embed``). In a recurrent network
    the gradient to token ``t`` passes through the ``T - 1 - t`` state updates after it and can shrink at
    every one (Bengio et al. 1994; Hochreiter 1991); in a transformer attention connects the last position
    to every token in one step. The model's parameters, their ``.grad`` and its mode are left as they were.

    >>> model = TinyRNN(RNNConfig(vocab_size=5, d_model=4, hidden_size=6, cell="rnn"))
    >>> tuple(gradient_by_position(model, torch.tensor([[1, 2, 3, 4]]), torch.tensor([0])).shape)
    (4,)
    """
    if not isinstance(model, (TinyGPT, TinyRNN)):
        raise TypeError(f"model must be a TinyGPT or a TinyRNN, got {type(model).__name__}")
    embedding = model.tok_emb if isinstance(model, TinyGPT) else model.embed
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        raise ValueError("ids must be a (B, T) LongTensor")
    if not isinstance(targets, torch.Tensor) or targets.shape != ids.shape[:1]:
        raise ValueError(f"targets must be a (B,) LongTensor, one target per row of ids {tuple(ids.shape)}")
    looked_up: list[torch.Tensor] = []
    handle = embedding.register_forward_hook(lambda module, inputs, output: looked_up.append(output))
    was_training = model.training
    model.eval()
    try:
        device = embedding.weight.device
        logits = model(ids.to(device))[:, -1]  # (B, V): the prediction at the last position
    finally:
        handle.remove()
        model.train(was_training)
    loss = nn.functional.cross_entropy(logits, targets.to(device))
    (grad,) = torch.autograd.grad(loss, [looked_up[0]])  # (B, T, C)
    return (grad * len(ids)).norm(dim=-1).mean(dim=0).detach()  # each row's own gradient, then the mean


# --- Lecture 4: the recurrent baseline, and transformers without positions ----------------------------------
# Before transformers, sequence models were recurrent (Elman 1990; LSTM, Hochreiter & Schmidhuber 1997; GRU,
# Cho et al. 2014): one hidden state h carried from token to token, h_t = cell(h_{t-1}, x_t). Whatever the
# model knows about the past must fit in h and survive every later update, and the T steps depend on each
# other, so they cannot run at the same time. Lecture 4 (Q17) races TinyRNN against TinyGPT; Lecture 9
# (vanishing gradients) differentiates through its steps (``TinyRNN.step``).

RNN_CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


@dataclass
class RNNConfig:
    """The sizes of a ``TinyRNN``: ``cell`` is ``"gru"`` (Cho et al. 2014), ``"lstm"`` (Hochreiter &
    Schmidhuber 1997) or ``"rnn"`` (Elman's tanh network, the one whose gradients vanish fastest).

    >>> RNNConfig(vocab_size=20).hidden_size
    64
    """

    vocab_size: int
    d_model: int = 32  # the size of the token embedding that is fed in at every step
    hidden_size: int = 64
    n_layers: int = 1
    cell: str = "gru"
    dropout: float = 0.0  # between stacked layers (PyTorch's own), so only with n_layers > 1

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "hidden_size", "n_layers"):
            check_positive_int(name, getattr(self, name))
        if self.cell not in RNN_CELLS:
            raise ValueError(f"cell must be one of {sorted(RNN_CELLS)}, got {self.cell!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise TypeError(f"dropout must be a number, got {type(self.dropout).__name__}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class TinyRNN(nn.Module):
    """A recurrent language model with ``TinyGPT``'s interface: ``forward(idx (B, T))`` -> next-token
    logits ``(B, T, vocab_size)``, so the same ``train`` loop, batches and accuracy work for both.

    Embedding -> ``torch.nn.GRU`` (or LSTM / tanh RNN), ``batch_first``, -> linear head. There is no
    context window: the state ``h`` summarises everything read so far, however long the input.

    - ``forward(idx, state=None, return_hidden=False)``: with ``return_hidden`` also the top layer's
      hidden state at every position ``(B, T, hidden_size)`` (PyTorch's fused loop returns them as
      outputs: they do not feed each other in the autograd graph);
    - ``step(token_ids (B,), state)`` -> ``(logits (B, V), state)``: one step of the recurrence, the
      T dependent steps that ``forward`` runs inside PyTorch, written out; ``initial_state(B)`` is the
      zero state (a tensor ``(n_layers, B, H)``, or a pair of them for an LSTM). Run ``step`` in a
      loop and call ``.retain_grad()`` on each state to read ``∂loss/∂h_t``: the gradient flowing back
      through time (Lecture 9).

    >>> model = TinyRNN(RNNConfig(vocab_size=5, d_model=4, hidden_size=6))
    >>> logits, hidden = model(torch.tensor([[1, 2, 3]]), return_hidden=True)
    >>> tuple(logits.shape), tuple(hidden.shape)             # (B, T, V), (B, T, H)
    ((1, 3, 5), (1, 3, 6))
    """

    def __init__(self, config: RNNConfig) -> None:
        super().__init__()
        if not isinstance(config, RNNConfig):
            raise TypeError(f"config must be an RNNConfig, got {type(config).__name__}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.rnn = RNN_CELLS[config.cell](config.d_model, config.hidden_size, num_layers=config.n_layers,
                                          batch_first=True,
                                          dropout=config.dropout if config.n_layers > 1 else 0.0)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None):
        """The zero state for ``batch_size`` sequences (what ``forward`` starts from)."""
        check_positive_int("batch_size", batch_size)
        c = self.config
        device = self.head.weight.device if device is None else device
        zeros = torch.zeros(c.n_layers, batch_size, c.hidden_size, device=device)
        return (zeros, zeros.clone()) if c.cell == "lstm" else zeros

    def forward(self, idx: torch.Tensor, state=None, return_hidden: bool = False):
        """``idx (B, T)`` -> logits ``(B, T, V)`` [, top-layer hidden states ``(B, T, H)``]."""
        _check_token_ids(idx, self.config.vocab_size, max_len=idx.shape[-1] if idx.dim() == 2 else 1)
        hidden, _ = self.rnn(self.embed(idx), state)  # (B, T, C) -> (B, T, H): T dependent steps inside
        logits = self.head(hidden)  # (B, T, H) -> (B, T, V)
        return (logits, hidden) if return_hidden else logits

    def step(self, token_ids: torch.Tensor, state) -> tuple[torch.Tensor, object]:
        """One step: ``token_ids (B,)`` and the state after the previous token -> ``(logits (B, V), new
        state)``. Feeding a sequence through ``step`` token by token gives ``forward``'s logits."""
        if not isinstance(token_ids, torch.Tensor) or token_ids.dim() != 1:
            raise ValueError("token_ids must be a 1-D LongTensor (B,): one token per sequence")
        _check_token_ids(token_ids[:, None], self.config.vocab_size, max_len=1, name="token_ids")
        hidden, state = self.rnn(self.embed(token_ids[:, None]), state)  # (B, 1, C) -> (B, 1, H)
        return self.head(hidden[:, 0]), state  # (B, H) -> (B, V)

    def num_parameters(self) -> int:
        """The number of numbers the model learns."""
        return sum(p.numel() for p in self.parameters())


def without_positions(model: nn.Module) -> nn.Module:
    """A copy of a ``TinyGPT`` or ``TinyEncoder`` whose position embedding is zero and frozen: the model
    then sees its input as a *set* of tokens. Without a causal mask (``TinyEncoder``) it is
    permutation-equivariant: permuting the input tokens permutes the outputs the same way, so nothing it
    computes can depend on word order (Vaswani et al. 2017, section 3.5: "since our model contains no
    recurrence and no convolution, ... we must inject some information about the ... position").

    >>> encoder = without_positions(TinyEncoder(GPTConfig(vocab_size=5, block_size=4, d_model=8, n_heads=2)))
    >>> x = torch.tensor([[1, 2, 3, 4]]); order = torch.tensor([2, 0, 3, 1])
    >>> torch.allclose(encoder(x)[:, order], encoder(x[:, order]), atol=1e-6)
    True
    """
    if not isinstance(model, (TinyGPT, TinyEncoder)):
        raise TypeError(f"model must be a TinyGPT or a TinyEncoder, got {type(model).__name__}")
    copy_ = copy.deepcopy(model)
    with torch.no_grad():
        copy_.pos_emb.weight.zero_()
    copy_.pos_emb.weight.requires_grad_(False)
    return copy_


# --- Lecture 7: a vision model (Q34) -----------------------------------------------------------------------

class ResidualBlock(nn.Module):
    """``x + conv(relu(bn(conv(relu(bn(x))))))``: two 3 x 3 convolutions whose output is ADDED to the input
    (He et al. 2016, "Deep Residual Learning"; this pre-activation order is their 2016 follow-up's). The
    skip lets the block start as the identity and the gradient reach early layers undiminished."""

    def __init__(self, channels: int, bn_momentum: float = 0.5) -> None:
        super().__init__()
        check_positive_int("channels", channels)
        self.bn1 = nn.BatchNorm2d(channels, momentum=bn_momentum)
        self.bn2 = nn.BatchNorm2d(channels, momentum=bn_momentum)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(torch.relu(self.bn1(x)))  # (B, C, H, W)
        return x + self.conv2(torch.relu(self.bn2(h)))  # the residual connection


class TinyResNet(nn.Module):
    """A residual convolutional classifier in miniature (ResNet, He et al. 2016): a 3 x 3 stem convolution,
    ``n_blocks`` ``ResidualBlock``s, global average pooling and a linear layer:
    ``forward(images (B, C, H, W))`` -> logits ``(B, n_classes)``. The stem has stride 2, halving the
    picture, as ResNet's stem does (by 4 there). Batch normalisation keeps running averages of its batch
    statistics for eval mode; their momentum is 0.5 (PyTorch's default is 0.1), so that after a training
    of only a hundred or so steps they describe the final network rather than the early ones (with 0.1,
    the eval-mode accuracy of our 150-step training fell below 75 % for some seeds while the train-mode
    one was perfect).

    >>> model = TinyResNet(n_classes=4)
    >>> tuple(model(torch.rand(2, 3, 24, 24)).shape)
    (2, 4)
    """

    def __init__(self, n_classes: int, channels: int = 16, n_blocks: int = 1, in_channels: int = 3,
                 bn_momentum: float = 0.5) -> None:
        super().__init__()
        for name, value in (("n_classes", n_classes), ("channels", channels), ("n_blocks", n_blocks),
                            ("in_channels", in_channels)):
            check_positive_int(name, value)
        self.stem = nn.Conv2d(in_channels, channels, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(*(ResidualBlock(channels, bn_momentum) for _ in range(n_blocks)))
        self.norm = nn.BatchNorm2d(channels, momentum=bn_momentum)
        self.head = nn.Linear(channels, n_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> one vector per picture ``(B, channels)``: the average over positions."""
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise ValueError(f"images must have shape (B, C, H, W), got "
                             f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)}")
        x = self.blocks(self.stem(images))  # (B, channels, H/2, W/2)
        return torch.relu(self.norm(x)).mean(dim=(2, 3))  # global average pooling -> (B, channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


# --- Lecture 7: a fixed-window neural language model (Q35; the model of Lecture 3's forgetting experiment) --

class FixedWindowLM(nn.Module):
    """The neural language model of Bengio et al. (2003), scaled down: the embeddings of a fixed number of
    input tokens are concatenated and one hidden layer (GELU) scores every word of the vocabulary as the
    next one: ``forward(ids (B, n_inputs))`` -> logits ``(B, vocab_size)``. Trains in a fraction of a second.

    >>> model = FixedWindowLM(vocab_size=10, n_inputs=3)
    >>> tuple(model(torch.zeros(2, 3, dtype=torch.long)).shape)
    (2, 10)
    """

    def __init__(self, vocab_size: int, n_inputs: int, d_embed: int = 16, d_hidden: int = 64) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("n_inputs", n_inputs), ("d_embed", d_embed),
                            ("d_hidden", d_hidden)):
            check_positive_int(name, value)
        self.vocab_size, self.n_inputs = vocab_size, n_inputs
        self.embed = nn.Embedding(vocab_size, d_embed)
        self.hidden = nn.Linear(n_inputs * d_embed, d_hidden)
        self.out = nn.Linear(d_hidden, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _check_token_ids(ids, self.vocab_size, self.n_inputs, name="ids", max_len_name="n_inputs")
        if ids.shape[1] != self.n_inputs:
            raise ValueError(f"ids must hold exactly n_inputs={self.n_inputs} tokens per row, "
                             f"got {ids.shape[1]}")
        x = self.embed(ids).flatten(1)  # (B, T, C) -> (B, T·C): one long vector per window
        return self.out(nn.functional.gelu(self.hidden(x)))  # (B, V)


# --- Lecture 5: where positions come from (Q21) and what the course model's loss is worth (Q25) ----------

POSITION_KINDS: tuple[str, ...] = ("none", "learned", "sinusoidal", "rope")


class TinyClassifier(nn.Module):
    """A bidirectional transformer that reads a whole sequence and outputs one class: ``forward(idx (B, T))``
    -> logits ``(B, n_classes)``, from the mean of its final hidden states.

    ``positions`` says how the model learns where each token is (Q21):

    - ``"none"``: not at all. Attention is then *permutation-equivariant* (shuffle the tokens and every
      hidden state moves with its token, unchanged) and the mean over positions is *invariant*: the
      model sees a bag of words, and "the cat chased the dog" is "the dog chased the cat";
    - ``"learned"``: a learned vector per position added to the token embeddings (BERT, GPT-2);
    - ``"sinusoidal"``: the fixed table of Vaswani et al. (2017) added instead, with the token embeddings
      multiplied by ``√d_model`` as they do (section 3.4): the table's entries are of size 1 while the
      embeddings start at 0.02 (GPT-2's initialisation), and unscaled tokens drown in their positions (some
      seeds then fit the training sentences without learning the rule);
    - ``"rope"``: nothing added; queries and keys are rotated by their positions in every attention layer
      (``RotaryMultiHeadAttention``, RoFormer / LLaMA).

    ``embed(idx)`` returns what the first block reads ``(B, T, C)``, ``encode(idx)`` the final hidden states
    ``(B, T, C)``; ``return_attention=True`` also returns each layer's attention weights ``(B, H, T, T)``. No
    mask: every token sees every other one.

    >>> config = GPTConfig(vocab_size=10, block_size=6, d_model=16, n_heads=2, n_layers=1)
    >>> model = TinyClassifier(config, n_classes=3, positions="none")
    >>> ids = torch.tensor([[1, 2, 3, 4]])
    >>> torch.allclose(model(ids), model(ids.flip(1)), atol=1e-6)    # without positions, order is invisible
    True
    """

    def __init__(self, config: GPTConfig, n_classes: int, positions: str = "learned") -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        check_positive_int("n_classes", n_classes)
        if positions not in POSITION_KINDS:
            raise ValueError(f"positions must be one of {POSITION_KINDS}, got {positions!r}")
        self.config, self.n_classes, self.positions = config, n_classes, positions
        C = config.d_model
        self.tok_emb = nn.Embedding(config.vocab_size, C)
        self.pos_emb = nn.Embedding(config.block_size, C) if positions == "learned" else None
        if positions == "sinusoidal":  # fixed, not learned: a buffer moves with the model, gets no gradient
            self.register_buffer("pos_table", sinusoidal_positional_encoding(config.block_size, C),
                                 persistent=False)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        if positions == "rope":
            for block in self.blocks:
                block.attn = RotaryMultiHeadAttention(C, config.n_heads, bias=config.bias)
        self.ln_f = nn.LayerNorm(C, bias=config.bias)
        self.head = nn.Linear(C, n_classes)
        _init_like_gpt2(self, [layer for b in self.blocks for layer in (b.attn.out_proj, b.mlp[2])])

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx (B, T)`` -> the vectors the first block reads ``(B, T, C)``: tokens, and positions if any."""
        _, T = _check_token_ids(idx, self.config.vocab_size, self.config.block_size)
        x = self.tok_emb(idx)  # (B, T, C)
        if self.positions == "learned":
            x = x + self.pos_emb(torch.arange(T, device=idx.device))  # (B, T, C) + (T, C)
        elif self.positions == "sinusoidal":
            x = x * math.sqrt(self.config.d_model) + self.pos_table[:T]  # (B, T, C) + (T, C)
        return x  # "none" and "rope": the tokens alone

    def _hidden(self, idx: torch.Tensor, need_weights: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x, attention = _run_blocks(self.blocks, self.embed(idx), None, need_weights)  # (B, T, C), [...]
        return self.ln_f(x), attention

    def encode(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx (B, T)`` -> hidden states ``(B, T, C)``, one per token."""
        return self._hidden(idx, need_weights=False)[0]

    def forward(
        self, idx: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``idx (B, T)`` -> class logits ``(B, n_classes)`` (and the per-layer attention weights)."""
        hidden, attention = self._hidden(idx, need_weights=return_attention)
        logits = self.head(hidden.mean(dim=1))  # (B, T, C) -> (B, C) -> (B, n_classes)
        return (logits, attention) if return_attention else logits

    def num_parameters(self) -> int:
        """The number of numbers the model learns (the sinusoidal table is fixed, not counted)."""
        return sum(p.numel() for p in self.parameters())


@torch.no_grad()
def sentence_log_probs(course: CourseLM, sentences: list[str], temperature: float = 1.0) -> torch.Tensor:
    """``log q(s)`` of each sentence under the course model, float64 ``(N,)``: the sum over its words of
    ``log q(word | <bos> + the words before it)``, each next-word distribution at ``temperature``.

    This is the probability the model gives to producing exactly that sentence after ``<bos>``, so
    ``-Σ_s p(s) log q(s)`` over the world's sentences is its exact cross-entropy on the world (Q25).

    >>> course = course_language_model(device="cpu")
    >>> sentence_log_probs(course, ["the cat ate the apple at the table ."]).exp().item() > 0.03
    True
    """
    if not isinstance(course, CourseLM):
        raise TypeError(f"course must be a CourseLM, got {type(course).__name__}")
    if isinstance(sentences, str) or not sentences:
        raise ValueError("sentences must be a non-empty list of sentences (str)")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    rows = [[course.tokenizer.bos_id, *course.tokenizer.encode(s)] for s in sentences]
    lengths = {len(r) for r in rows}
    if len(lengths) != 1 or lengths.pop() > course.model.config.block_size:
        raise ValueError(f"sentences must all have the same number of words, at most "
                         f"{course.model.config.block_size - 1}")
    ids = torch.tensor(rows, device=course.device)  # (N, 1 + W)
    logits = course.model(ids[:, :-1]).cpu().double() / temperature  # (N, W, V): t predicts word t + 1
    log_q = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].cpu().unsqueeze(-1)).squeeze(-1)  # (N, W)
    return log_q.sum(dim=-1)  # float64 on the CPU (MPS has no float64)


if __name__ == "__main__":  # python -m utils.models: (re)make the shipped checkpoint, on the CPU
    import time

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    start = time.perf_counter()
    trained = train_course_language_model(device="cpu")
    where = save_course_language_model(trained)
    print(f"trained in {time.perf_counter() - start:.0f} s, final loss {trained.history.final_loss:.3f}; "
          f"wrote {where} ({where.stat().st_size / 1e6:.2f} MB)")
