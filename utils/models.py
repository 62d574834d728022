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
from pathlib import Path

import torch
import torch.nn as nn

from ._validation import check_positive_int
from .attention import MultiHeadAttention, causal_mask, visible_window
from .data import tiny_world_sentences, tiny_world_vocabulary
from .tokenization import WordTokenizer
from .training import History, stream_batches, train

__all__ = ["GPTConfig", "Block", "TinyGPT", "next_token_probs", "CourseLM",
           "course_language_model", "train_course_language_model", "save_course_language_model"]


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = course.model.config
    payload = {
        "config": {name: getattr(config, name) for name in
                   ("vocab_size", "block_size", "d_model", "n_heads", "n_layers", "dropout", "bias")},
        "vocabulary": course.tokenizer.id_to_token,
        "specials": list(course.tokenizer.specials),
        "state_dict": {k: v.detach().cpu() for k, v in course.model.state_dict().items()},
        "losses": course.history.losses,
        "torch_version": str(torch.__version__),
    }
    torch.save(payload, path)
    return path


def course_language_model(device: torch.device | str | None = None,
                          path: str | Path = COURSE_LM_CHECKPOINT) -> CourseLM:
    """The course's language model, loaded from the checkpoint the course ships (made by
    ``python -m utils.models``; see ``train_course_language_model`` for how it is trained).

    >>> course = course_language_model(device="cpu")
    >>> course.decode(course.encode("the cat")), course(course.encode("the cat")).shape[-1]
    ('the cat', 49)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no course model at {path}: run `python -m utils.models` "
                                "(or `make course-lm`) to train it (under a minute)")
    device = _default_device() if device is None else torch.device(device)
    payload = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    specials = payload["specials"]
    tokenizer = WordTokenizer(payload["vocabulary"][len(specials):], specials=specials)
    model = TinyGPT(GPTConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    losses = list(payload["losses"])
    return CourseLM(model, tokenizer, History(steps=list(range(1, len(losses) + 1)), losses=losses))


if __name__ == "__main__":  # python -m utils.models: (re)make the shipped checkpoint, on the CPU
    import time

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    start = time.perf_counter()
    trained = train_course_language_model(device="cpu")
    where = save_course_language_model(trained)
    print(f"trained in {time.perf_counter() - start:.0f} s, final loss {trained.history.final_loss:.3f}; "
          f"wrote {where} ({where.stat().st_size / 1e6:.2f} MB)")
