"""Decoding: turning a language model's next-token logits into text.

A *model* here is any callable mapping token ids ``LongTensor (B, T)`` to logits ``FloatTensor (B, T', V)``.
Only the logits of the LAST position are read, so a model may return fewer positions than it was given
(``T' <= T``, e.g. a model that crops its input to its context window). Decoders run the model in eval
mode without gradients and give an ``nn.Module`` back in the mode it was in.

Three families of decoders (all take a prompt ``input_ids`` of shape ``(1, T)`` and return sequences
that include the prompt):

- **greedy** (``greedy_decode``): always the most probable next token;
- **beam search** (``beam_search``, ``beam_search_tree``): keeps the ``num_beams`` best partial
  sequences by total log-probability (a heuristic search, see its docstring);
- **sampling** (``sample``, ``sample_batch``): draws each token from the softmax, after reshaping it with
  a temperature (``apply_temperature``) and truncating it with top-k (Fan et al. 2018) and/or top-p
  (nucleus sampling, Holtzman et al. 2020): ``top_k_filter``, ``top_p_filter``.

>>> table = torch.log(torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]]))
>>> bigram = lambda ids: table[ids]                     # (B, T) -> (B, T, V): next token depends on the last
>>> greedy_decode(bigram, torch.tensor([[0]]), max_new_tokens=3).tolist()
[[0, 1, 2, 0]]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn

__all__ = [
    "apply_temperature",
    "softmax_with_temperature",
    "entropy",
    "top_k_filter",
    "top_p_filter",
    "filter_logits",
    "greedy_decode",
    "beam_step",
    "BeamStep",
    "BeamSearchTrace",
    "beam_search_tree",
    "beam_search",
    "beam_tree_nodes",
    "draw_beam_tree",
    "sample",
    "sample_batch",
    "sequence_log_prob",
    "sequence_log_probs",
    "KeptSet",
    "kept_set",
    "next_token_logits",
]

Model = Callable[[torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------------------
# argument checks (every message names the argument and what was expected)

def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def _check_temperature(temperature: object) -> float:
    t = _check_number("temperature", temperature)
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"temperature must be > 0 (and finite), got {temperature}")
    return t


def _check_p(p: object) -> float:
    value = _check_number("p", p)
    if not 0 < value <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    return value


def _check_logits(logits: object) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., V) with V >= 1, got {tuple(logits.shape)}")


def _check_prompt(input_ids: object, name: str = "input_ids") -> None:
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(input_ids).__name__}")
    if input_ids.dtype != torch.long:
        raise TypeError(f"{name} must be a LongTensor of token ids, got dtype {input_ids.dtype}")
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise ValueError(f"{name} must have shape (1, T) (one prompt), got {tuple(input_ids.shape)}")
    if input_ids.shape[1] < 1:
        raise ValueError(f"{name} must not be empty (T >= 1, e.g. a <bos> token), got shape "
                         f"{tuple(input_ids.shape)}")


def _check_model(model: object) -> None:
    if not callable(model):
        raise TypeError(f"model must be callable (ids (B, T) -> logits (B, T, V)), got "
                        f"{type(model).__name__}")


def _check_decoding_args(model: object, input_ids: object, max_new_tokens: object, eos_id: object) -> None:
    _check_model(model)
    _check_prompt(input_ids)
    _check_int("max_new_tokens", max_new_tokens, 0)
    if eos_id is not None:
        _check_int("eos_id", eos_id, 0)


# ---------------------------------------------------------------------------------------------------------
# running the model

@contextmanager
def _evaluating(model: object) -> Iterator[None]:
    """Eval mode (no dropout) and no gradients; every submodule's own mode is restored afterwards."""
    modes = [(m, m.training) for m in model.modules()] if isinstance(model, nn.Module) else []
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _last_logits(model: Model, ids: torch.Tensor) -> torch.Tensor:
    """The model's logits for the token after each row of ``ids (B, T)``: ``(B, V)``."""
    logits = model(ids)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or logits.shape[0] != ids.shape[0] \
            or logits.shape[1] < 1 or logits.shape[2] < 1:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"model must return logits of shape (B, T', V) with B={ids.shape[0]}, T' >= 1, "
                         f"got {shape}")
    return logits[:, -1, :]  # (B, T', V) -> (B, V): only the last position predicts the next token


# ---------------------------------------------------------------------------------------------------------
# reshaping and truncating a distribution

def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature`` (a new tensor). ``temperature < 1`` sharpens the softmax, ``> 1`` flattens it;
    ``temperature == 1`` changes nothing. ``temperature`` must be a finite number ``> 0``.

    >>> apply_temperature(torch.tensor([2.0, 1.0]), 0.5).tolist()
    [4.0, 2.0]
    """
    _check_logits(logits)
    t = _check_temperature(temperature)
    return logits / t


def softmax_with_temperature(logits: torch.Tensor, temperature: float, dim: int = -1) -> torch.Tensor:
    """``softmax(logits / temperature)`` along ``dim``: the distribution a sampler draws from.

    >>> softmax_with_temperature(torch.tensor([0.0, 2.0]), 2.0)      # softmax([0, 1])
    tensor([0.2689, 0.7311])
    """
    return torch.softmax(apply_temperature(logits, temperature), dim=dim)


def entropy(probs: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy ``-sum p log p`` in nats along ``dim`` (with ``0 log 0 = 0``).

    It is 0 for a certain outcome and ``log V`` (the maximum) for a uniform distribution over ``V``.

    >>> round(entropy(torch.full((4,), 0.25)).item(), 4), round(math.log(4), 4)
    (1.3863, 1.3863)
    >>> entropy(torch.tensor([1.0, 0.0])).item()
    0.0
    """
    if not isinstance(probs, torch.Tensor) or not probs.is_floating_point():
        raise TypeError("probs must be a floating-point torch.Tensor of probabilities")
    if (probs < 0).any():
        raise ValueError("probs must be non-negative (probabilities)")
    return 0.0 - torch.special.xlogy(probs, probs).sum(dim=dim)  # 0.0 - x: no "-0.0" for certainty


def _sort_descending(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # stable: among equal logits the lower token id comes first, so every filter breaks ties the same way
    return torch.sort(logits, dim=-1, descending=True, stable=True)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits along the last dim, set the rest to ``-inf`` (Fan et al. 2018).

    Exactly ``min(k, V)`` tokens are kept: among equal logits the lower token id wins. ``k >= V`` keeps
    everything. Returns a new tensor.

    >>> top_k_filter(torch.tensor([1.0, 3.0, 2.0, 3.0]), k=2).tolist()
    [-inf, 3.0, -inf, 3.0]
    """
    _check_logits(logits)
    _check_int("k", k, 1)
    if k >= logits.shape[-1]:
        return logits.clone()
    _, order = _sort_descending(logits)  # (..., V)
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, order[..., :k], True)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al. 2020): keep the smallest set of most-probable tokens whose total
    probability reaches ``p`` (``>= p``), set the rest to ``-inf``. ``0 < p <= 1``.

    Tokens are taken in order of decreasing probability, a token is kept if the tokens before it have
    less than ``p`` in total, so the most probable token is always kept and ``p == 1`` keeps every token.
    Ties: among equally probable tokens the lower token id comes first (deterministic). Probabilities are
    accumulated in float64. Returns a new tensor.

    >>> logits = torch.log(torch.tensor([0.1, 0.5, 0.15, 0.25]))
    >>> top_p_filter(logits, 0.7).isfinite().tolist()       # 0.5 + 0.25 = 0.75 reaches 0.7
    [False, True, False, True]
    >>> top_p_filter(logits, 0.3).isfinite().tolist()       # the most probable token alone
    [False, True, False, False]
    """
    _check_logits(logits)
    p = _check_p(p)
    if p == 1:
        return logits.clone()
    sorted_logits, order = _sort_descending(logits)  # (..., V)
    sorted_probs = torch.softmax(sorted_logits.double(), dim=-1)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # (..., V): probability of the better tokens
    keep_sorted = mass_before < p
    keep_sorted[..., 0] = True  # the most probable token, even if rounding said otherwise
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """What ``sample`` draws from, as logits: temperature first, then top-k, then top-p (the order used
    by Hugging Face ``transformers``). ``None`` skips a filter.

    >>> filter_logits(torch.tensor([4.0, 2.0, 0.0]), temperature=2.0, top_k=2).tolist()
    [2.0, 1.0, -inf]
    """
    out = apply_temperature(logits, temperature)
    if top_k is not None:
        out = top_k_filter(out, top_k)
    if top_p is not None:
        out = top_p_filter(out, top_p)
    return out


@dataclass(frozen=True)
class KeptSet:
    """A next-token distribution sorted from most to least probable, and what a filter keeps of it.

    ``order (V,)`` token ids, ``probs (V,)`` their probabilities (after temperature), ``kept (V,)`` bool,
    ``filtered (V,)`` the renormalised distribution a sampler would draw from (0 where not kept).
    """

    order: torch.Tensor
    probs: torch.Tensor
    kept: torch.Tensor
    filtered: torch.Tensor

    @property
    def size(self) -> int:
        """How many tokens are kept."""
        return int(self.kept.sum())

    @property
    def mass(self) -> float:
        """The probability (before renormalising) of the kept tokens."""
        return float(self.probs[self.kept].sum())


def kept_set(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None) -> KeptSet:
    """Sort one distribution ``logits (V,)`` and mark the tokens that survive ``filter_logits``.

    >>> ks = kept_set(torch.log(torch.tensor([0.1, 0.6, 0.3])), top_p=0.8)
    >>> ks.order.tolist(), ks.kept.tolist(), ks.size, round(ks.mass, 3)
    ([1, 2, 0], [True, True, False], 2, 0.9)
    """
    _check_logits(logits)
    if logits.dim() != 1:
        raise ValueError(f"logits must be one distribution of shape (V,), got {tuple(logits.shape)}")
    scaled = apply_temperature(logits.detach().float().cpu(), temperature)
    filtered = filter_logits(scaled, 1.0, top_k, top_p)
    _, order = _sort_descending(scaled)
    return KeptSet(order=order, probs=torch.softmax(scaled, -1)[order], kept=filtered[order].isfinite(),
                   filtered=torch.softmax(filtered, -1)[order])


def next_token_logits(model: Model, input_ids: torch.Tensor) -> torch.Tensor:
    """The model's logits ``(V,)`` for the token after the prompt ``input_ids (1, T)`` (on the CPU, float32),
    computed in eval mode without gradients.

    >>> table = torch.log(torch.tensor([[0.2, 0.8], [0.6, 0.4]]))
    >>> next_token_logits(lambda ids: table[ids], torch.tensor([[0, 1]])).exp().tolist()
    [0.6000000238418579, 0.4000000059604645]
    """
    _check_model(model)
    _check_prompt(input_ids)
    with _evaluating(model):
        return _last_logits(model, input_ids)[0].detach().float().cpu()


# ---------------------------------------------------------------------------------------------------------
# greedy decoding

def greedy_decode(model: Model, input_ids: torch.Tensor, max_new_tokens: int,
                  eos_id: int | None = None) -> torch.LongTensor:
    """Append the most probable next token ``max_new_tokens`` times (or until ``eos_id``, which is
    included). Ties go to the lower token id (``torch.argmax``). Returns ``(1, T')``, prompt included.

    >>> table = torch.log(torch.tensor([[0.1, 0.9], [0.7, 0.3]]))
    >>> greedy_decode(lambda ids: table[ids], torch.tensor([[1]]), max_new_tokens=4).tolist()
    [[1, 0, 1, 0, 1]]
    """
    _check_decoding_args(model, input_ids, max_new_tokens, eos_id)
    ids = input_ids.clone()
    with _evaluating(model):
        for _ in range(max_new_tokens):
            next_id = _last_logits(model, ids).argmax(dim=-1, keepdim=True).to(ids.device)  # (1, 1)
            ids = torch.cat([ids, next_id], dim=1)  # (1, T) -> (1, T + 1)
            if eos_id is not None and next_id.item() == eos_id:
                break
    return ids


# ---------------------------------------------------------------------------------------------------------
# beam search

def _rank_extensions(beam_scores: torch.Tensor, log_probs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every one-token extension of every beam, best first: (beam index, token id, new score), each (N*V,).
    Ties keep the order beam 0 token 0, beam 0 token 1, ..., beam 1 token 0, ... (stable sort)."""
    N, V = log_probs.shape
    total = beam_scores[:, None] + log_probs  # (N, 1) + (N, V) -> (N, V)
    scores, flat = _sort_descending(total.reshape(N * V))  # (N, V) -> (N*V,)
    return flat // V, flat % V, scores


def beam_step(beam_scores: torch.Tensor, log_probs: torch.Tensor,
              num_beams: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of beam search: the ``num_beams`` best one-token extensions of the current beams.

    ``beam_scores (N,)`` are the beams' total log-probabilities, ``log_probs (N, V)`` each beam's
    next-token log-probabilities. An extension of beam ``b`` by token ``v`` scores
    ``beam_scores[b] + log_probs[b, v]``. Returns ``(beam indices, token ids, scores)``, each of length
    ``K = min(num_beams, N * V)``, best first (ties: lower beam index, then lower token id).

    >>> b, v, s = beam_step(torch.tensor([-0.5, -1.0]), torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]])), 2)
    >>> b.tolist(), v.tolist(), [round(x, 3) for x in s.tolist()]
    ([1, 0], [0, 0], [-1.105, -1.193])
    """
    if not isinstance(beam_scores, torch.Tensor) or not isinstance(log_probs, torch.Tensor):
        raise TypeError("beam_scores and log_probs must be torch.Tensors")
    if log_probs.dim() != 2 or beam_scores.shape != (log_probs.shape[0],) or log_probs.shape[0] < 1:
        raise ValueError(f"beam_scores must be (N,) and log_probs (N, V) with N >= 1, got "
                         f"{tuple(beam_scores.shape)} and {tuple(log_probs.shape)}")
    _check_int("num_beams", num_beams, 1)
    beams, tokens, scores = _rank_extensions(beam_scores, log_probs)
    return beams[:num_beams], tokens[:num_beams], scores[:num_beams]


@dataclass(frozen=True)
class BeamStep:
    """What one step of beam search saw and kept.

    ``beams``: the live hypotheses entering the step, as (generated token ids, score), best first;
    ``candidates``: every extension (beam index, token id, score), best first;
    ``kept``: positions in ``candidates`` that survived (the ``num_beams`` best; those ending in
    ``eos_id`` are finished, the others live on).
    """

    beams: list[tuple[list[int], float]]
    candidates: list[tuple[int, int, float]]
    kept: list[int]


@dataclass(frozen=True)
class BeamSearchTrace:
    """A whole beam search: its steps (for drawing the tree) and the finished hypotheses it returns."""

    prompt: torch.Tensor
    num_beams: int
    eos_id: int | None
    steps: list[BeamStep] = field(default_factory=list)
    hypotheses: list[tuple[torch.Tensor, float]] = field(default_factory=list)


def beam_search_tree(model: Model, input_ids: torch.Tensor, max_new_tokens: int, num_beams: int,
                     eos_id: int | None = None) -> BeamSearchTrace:
    """``beam_search`` that also records every step's candidates and kept beams (``BeamSearchTrace``).

    >>> table = torch.log(torch.tensor([[0.0, 0.6, 0.4], [0.0, 0.5, 0.5], [0.0, 0.1, 0.9]]))
    >>> trace = beam_search_tree(lambda ids: table[ids], torch.tensor([[0]]), max_new_tokens=2, num_beams=2)
    >>> [(step.candidates[i][1], round(step.candidates[i][2], 3)) for step in trace.steps for i in step.kept]
    [(1, -0.511), (2, -0.916), (2, -1.022), (1, -1.204)]
    """
    _check_decoding_args(model, input_ids, max_new_tokens, eos_id)
    _check_int("num_beams", num_beams, 1)
    prompt = input_ids.clone()
    alive: list[list[int]] = [[]]  # generated tokens of each live hypothesis
    alive_scores = torch.zeros(1, dtype=torch.float64)
    finished: list[tuple[list[int], float]] = []
    steps: list[BeamStep] = []
    with _evaluating(model):
        for _ in range(max_new_tokens):
            generated = torch.tensor(alive, dtype=torch.long, device=prompt.device)  # (N, t)
            ids = torch.cat([prompt.expand(len(alive), -1), generated], dim=1)  # (N, T + t)
            # float64 log-probs: distinct logits never collapse into a tie, so num_beams=1 is greedy exactly
            log_probs = torch.log_softmax(_last_logits(model, ids).double(), dim=-1).cpu()  # (N, V)
            beams, tokens, scores = _rank_extensions(alive_scores, log_probs)
            K = min(num_beams, len(scores))
            steps.append(BeamStep(beams=[(list(a), float(s)) for a, s in zip(alive, alive_scores.tolist(),
                                                                             strict=True)],
                                  candidates=list(zip(beams.tolist(), tokens.tolist(), scores.tolist(),
                                                      strict=True)),
                                  kept=list(range(K))))
            next_alive, next_scores = [], []
            for b, v, s in zip(beams[:K].tolist(), tokens[:K].tolist(), scores[:K].tolist(), strict=True):
                if eos_id is not None and v == eos_id:
                    finished.append((alive[b] + [v], s))  # emitted eos: finished, takes no further steps
                else:
                    next_alive.append(alive[b] + [v])
                    next_scores.append(s)
            alive, alive_scores = next_alive, torch.tensor(next_scores, dtype=torch.float64)
            if not alive:
                break
    finished.extend(zip(alive, alive_scores.tolist(), strict=True))  # reached max_new_tokens: finished too
    finished.sort(key=lambda h: -h[1])  # stable: among equal scores, the one finished first comes first
    hypotheses = [(torch.cat([prompt, torch.tensor([g], dtype=torch.long, device=prompt.device)], dim=1),
                   float(s)) for g, s in finished[:num_beams]]
    return BeamSearchTrace(prompt=prompt, num_beams=num_beams, eos_id=eos_id, steps=steps,
                           hypotheses=hypotheses)


def beam_search(model: Model, input_ids: torch.Tensor, max_new_tokens: int, num_beams: int,
                eos_id: int | None = None) -> list[tuple[torch.LongTensor, float]]:
    """Beam search: keep the ``num_beams`` most probable partial sequences at every step.

    At each step every live hypothesis is extended by every token; the ``num_beams`` best extensions
    (``beam_step``) survive. One that ends in ``eos_id`` is finished; the others live on. A hypothesis is
    also finished when it has ``max_new_tokens`` generated tokens. Returns the best ``num_beams`` finished
    hypotheses (all of them if fewer finished) as ``(ids (1, T'), score)``, best first, where ``score`` is
    the sum of the log-probabilities of the generated tokens. There is **no length penalty**, so a shorter
    hypothesis (one that emitted ``eos_id`` early) is favoured over a longer one of the same per-token
    quality.

    ``num_beams=1`` is greedy decoding. With ``num_beams >= V ** max_new_tokens`` nothing is ever pruned and
    the search is exhaustive; in between it is a heuristic: it may miss the most probable sequence, and a
    wider beam is not guaranteed to find a better one (Meister et al. 2020, "If beam search is the answer,
    what was the question?").

    >>> table = torch.log(torch.tensor([[0.0, 0.6, 0.4], [0.0, 0.5, 0.5], [0.0, 0.1, 0.9]]))
    >>> model = lambda ids: table[ids]                  # token 0 starts; 0.6 * 0.5 < 0.4 * 0.9
    >>> greedy_decode(model, torch.tensor([[0]]), 2).tolist()
    [[0, 1, 1]]
    >>> hypotheses = beam_search(model, torch.tensor([[0]]), max_new_tokens=2, num_beams=2)
    >>> [(ids.tolist(), round(math.exp(score), 2)) for ids, score in hypotheses]
    [([[0, 2, 2]], 0.36), ([[0, 1, 1]], 0.3)]
    """
    return beam_search_tree(model, input_ids, max_new_tokens, num_beams, eos_id).hypotheses


def beam_tree_nodes(trace: BeamSearchTrace, top_per_beam: int = 3) -> list[dict]:
    """The nodes of a beam-search tree, for drawing: the root (the prompt), then for every step the
    ``top_per_beam`` best extensions of each live beam plus every kept one.

    Each node is a dict: ``id``, ``parent`` (node id, ``None`` for the root), ``step`` (0 = root),
    ``token`` (id, ``None`` for the root), ``score`` (total log-probability), ``kept`` (survived the step),
    ``finished`` (kept and ended in eos, or kept at the last step), ``y`` (a vertical position: children
    follow their parents' order, best first).

    >>> table = torch.log(torch.tensor([[0.0, 0.6, 0.4], [0.0, 0.5, 0.5], [0.0, 0.1, 0.9]]))
    >>> nodes = beam_tree_nodes(beam_search_tree(lambda ids: table[ids], torch.tensor([[0]]), 2, 1), 2)
    >>> [(n["step"], n["token"], n["kept"]) for n in nodes]
    [(0, None, True), (1, 1, True), (1, 2, False), (2, 1, True), (2, 2, False)]
    """
    _check_int("top_per_beam", top_per_beam, 1)
    nodes = [{"id": 0, "parent": None, "step": 0, "token": None, "score": 0.0, "kept": True,
              "finished": not trace.steps, "y": 0.0}]
    beam_nodes = [0]  # node id of each live beam entering the current step
    last = len(trace.steps) - 1
    for s, step in enumerate(trace.steps, start=1):
        kept = set(step.kept)
        shown: list[int] = []
        per_beam = [0] * len(step.beams)
        for i, (b, _, _) in enumerate(step.candidates):
            if i in kept or per_beam[b] < top_per_beam:
                shown.append(i)
                per_beam[b] += 1
        # order: by the parent's position, then best first
        shown.sort(key=lambda i: (nodes[beam_nodes[step.candidates[i][0]]]["y"], i))
        next_beams = []
        for rank, i in enumerate(shown):
            b, token, score = step.candidates[i]
            ends = trace.eos_id is not None and token == trace.eos_id
            node = {"id": len(nodes), "parent": beam_nodes[b], "step": s, "token": token, "score": score,
                    "kept": i in kept, "finished": i in kept and (ends or s - 1 == last),
                    "y": rank - (len(shown) - 1) / 2}
            nodes.append(node)
            if i in kept and not ends:
                next_beams.append((i, node["id"]))
        beam_nodes = [node_id for _, node_id in sorted(next_beams)]  # live beams in candidate (score) order
    return nodes


def draw_beam_tree(trace: BeamSearchTrace, token_label: Callable[[int], str], top_per_beam: int = 3,
                   ax=None, prompt_label: str = "prompt"):
    """Draw ``beam_tree_nodes(trace, top_per_beam)`` with matplotlib: one column per step, each node a
    token (``token_label(id)``) and its total log-probability; kept beams in blue, finished ones orange
    and bold, pruned ones grey. The root is labelled ``prompt_label``. Returns the axes."""
    import matplotlib.pyplot as plt

    nodes = beam_tree_nodes(trace, top_per_beam)
    if ax is None:
        _, ax = plt.subplots(figsize=(2.2 * (len(trace.steps) + 1), 0.45 * max(6, len(nodes) / 2)))
    by_id = {n["id"]: n for n in nodes}
    for n in nodes:
        if n["parent"] is not None:
            parent = by_id[n["parent"]]
            ax.plot([parent["step"], n["step"]], [parent["y"], n["y"]], zorder=1,
                    color="#4c72b0" if n["kept"] else "#ccc", linewidth=2.0 if n["kept"] else 0.8)
    for n in nodes:
        label = prompt_label if n["token"] is None else f"{token_label(n['token'])}\n{n['score']:.2f}"
        colour = "#ffd27f" if n["finished"] else ("#cfe8ff" if n["kept"] else "#f2f2f2")
        ax.text(n["step"], n["y"], label, ha="center", va="center", fontsize=8,
                fontweight="bold" if n["finished"] else "normal", color="black" if n["kept"] else "#888",
                bbox={"boxstyle": "round,pad=0.25", "facecolor": colour,
                      "edgecolor": "#4c72b0" if n["kept"] else "#ccc"}, zorder=2)
    ys = [n["y"] for n in nodes]
    ax.set_xlim(-0.5, len(trace.steps) + 0.5)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.invert_yaxis()  # best (first) at the top
    ax.set_xticks(range(len(trace.steps) + 1))
    ax.set_xlabel("step (tokens generated)")
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return ax


# ---------------------------------------------------------------------------------------------------------
# sampling

def sample_batch(model: Model, input_ids: torch.Tensor, num_samples: int, max_new_tokens: int,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 generator: torch.Generator | None = None, eos_id: int | None = None) -> torch.LongTensor:
    """``num_samples`` independent continuations of one prompt ``(1, T)``, drawn in one batch:
    ``(num_samples, T')``. A row that has emitted ``eos_id`` is padded with ``eos_id`` until every row has
    (or ``max_new_tokens`` is reached). Same ``generator`` state, same samples; see ``sample``.

    >>> table = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    >>> g = torch.Generator().manual_seed(0)
    >>> ids = sample_batch(lambda ids: table[ids], torch.tensor([[0]]), 3, max_new_tokens=4, generator=g)
    >>> tuple(ids.shape), ids[:, 0].tolist()
    ((3, 5), [0, 0, 0])
    """
    _check_decoding_args(model, input_ids, max_new_tokens, eos_id)
    _check_int("num_samples", num_samples, 1)
    _check_temperature(temperature)
    if top_k is not None:
        _check_int("top_k", top_k, 1)
    if top_p is not None and not 0 < _check_number("top_p", top_p) <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    draw_device = generator.device if generator is not None else torch.device("cpu")
    ids = input_ids.expand(num_samples, -1).clone()  # (1, T) -> (N, T)
    done = torch.zeros(num_samples, dtype=torch.bool)
    with _evaluating(model):
        for _ in range(max_new_tokens):
            logits = filter_logits(_last_logits(model, ids).float(), temperature, top_k, top_p)  # (N, V)
            # draw where the generator lives (the CPU by default), so a CPU generator serves a GPU model
            probs = torch.softmax(logits, dim=-1).to(draw_device)
            next_ids = torch.multinomial(probs, 1, generator=generator).cpu()  # (N, 1)
            if eos_id is not None:
                next_ids[done] = eos_id
                done |= next_ids[:, 0] == eos_id
            ids = torch.cat([ids, next_ids.to(ids.device)], dim=1)  # (N, T) -> (N, T + 1)
            if done.all():
                break
    return ids


def sample(model: Model, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None,
           eos_id: int | None = None) -> torch.LongTensor:
    """Sample a continuation token by token from ``softmax(filter_logits(logits))``: temperature first,
    then top-k, then top-p (``None`` skips a filter). Stops after ``max_new_tokens`` or at ``eos_id``
    (included). Returns ``(1, T')``, prompt included.

    Reproducible: the same ``generator`` state gives the same tokens. Tokens are drawn with
    ``torch.multinomial(..., generator=generator)`` on the generator's device (a CPU generator works with a
    model on a GPU; ``None`` uses torch's global CPU generator).

    >>> table = torch.log(torch.tensor([[0.2, 0.8], [0.6, 0.4]]))
    >>> a = sample(lambda ids: table[ids], torch.tensor([[0]]), 6, generator=torch.Generator().manual_seed(1))
    >>> b = sample(lambda ids: table[ids], torch.tensor([[0]]), 6, generator=torch.Generator().manual_seed(1))
    >>> torch.equal(a, b), tuple(a.shape)
    (True, (1, 7))
    """
    return sample_batch(model, input_ids, 1, max_new_tokens, temperature, top_k, top_p, generator, eos_id)


# ---------------------------------------------------------------------------------------------------------
# scoring

def sequence_log_prob(model: Model, input_ids: torch.Tensor, continuation_ids: torch.Tensor) -> float:
    """The model's log-probability of ``continuation_ids`` (``(1, L)`` or ``(L,)``) following the prompt
    ``input_ids (1, T)``: ``sum_i log p(c_i | prompt, c_<i)``, one model call per token (so models that
    return only the last position work too). ``L = 0`` gives 0.

    >>> table = torch.log(torch.tensor([[0.2, 0.8], [0.6, 0.4]]))
    >>> log_p = sequence_log_prob(lambda ids: table[ids], torch.tensor([[0]]), torch.tensor([1, 0]))
    >>> round(math.exp(log_p), 4)                           # 0.8 * 0.6
    0.48
    """
    _check_model(model)
    _check_prompt(input_ids)
    if not isinstance(continuation_ids, torch.Tensor) or continuation_ids.dtype != torch.long:
        raise TypeError("continuation_ids must be a LongTensor of token ids")
    if continuation_ids.dim() == 2 and continuation_ids.shape[0] == 1:
        continuation_ids = continuation_ids[0]  # (1, L) -> (L,)
    if continuation_ids.dim() != 1:
        raise ValueError(f"continuation_ids must have shape (1, L) or (L,), got "
                         f"{tuple(continuation_ids.shape)}")
    ids = input_ids.clone()
    total = 0.0
    with _evaluating(model):
        for token in continuation_ids.tolist():
            log_probs = torch.log_softmax(_last_logits(model, ids)[0].double(), dim=-1)  # (V,)
            total += float(log_probs[token])
            ids = torch.cat([ids, torch.tensor([[token]], dtype=torch.long, device=ids.device)], dim=1)
    return total


# --- Lecture 8: scoring many sequences at once (Q39: a generative model as a classifier) -------------

@torch.no_grad()
def sequence_log_probs(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log p(targets | inputs)`` under a causal language model for a whole batch in one call (Lecture
    8): per row, the sum over positions of ``log softmax(model(inputs))[t, targets[t]]``; targets equal
    to -100 are skipped. ``inputs``, ``targets``: ``(B, T)``, the targets being the inputs shifted by one
    (as ``utils.training.train`` uses them). Teacher forcing gives every position at once, so it equals
    ``sequence_log_prob`` (one model call per token) row by row. The model's mode is restored.

    >>> class Uniform(nn.Module):
    ...     def forward(self, idx): return torch.zeros(*idx.shape, 4)       # p = 1/4 for every token
    >>> sequence_log_probs(Uniform(), torch.zeros(1, 3, dtype=torch.long), torch.tensor([[1, 2, -100]]))
    tensor([-2.7726])
    """
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError("inputs and targets must be torch.Tensors")
    if inputs.dim() != 2 or targets.shape != inputs.shape:
        raise ValueError(f"inputs and targets must both be (B, T), got {tuple(inputs.shape)} and "
                         f"{tuple(targets.shape)}")
    _check_model(model)
    with _evaluating(model):
        logits = model(inputs)  # (B, T, V)
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    targets = targets.to(log_probs.device)
    scored = targets != -100  # (B, T)
    picked = log_probs.gather(-1, targets.clamp_min(0)[..., None])[..., 0]  # (B, T): log p of each target
    return (picked * scored).sum(dim=1)
