"""Retrieval for retrieval-augmented generation (Lecture 8, Q36): BM25, a dense retriever, recall@k.

RAG (Lewis et al. 2020) answers a question in three steps: **retrieve** candidate passages from a
knowledge base, **rank** them by relevance, **generate** the answer from the best ones. This module holds
the first two.

**BM25** (Robertson & Zaragoza 2009) scores a document ``d`` for a query ``q`` by the words they share,
each weighted by how rare it is in the collection (``idf``) and by how often it occurs in ``d``, with
diminishing returns (``k1``) and a discount for long documents (``b``)::

    score(q, d) = sum over distinct terms t of q of
                  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))

with ``N`` documents, ``n(t)`` of them containing ``t``, ``|d|`` the length of ``d`` and ``avgdl`` the
mean length. This ``idf`` is Lucene's variant (Kamphuis et al. 2020): the ``1 +`` keeps it positive even
for a term in more than half of the documents.

>>> bm25 = BM25([["the", "cat", "sat"], ["the", "dog"], ["a", "cat", "and", "a", "cat"]])
>>> [(i, round(score, 4)) for i, score in bm25.top_k(["cat"], k=2)]   # two cats in a long text win
[(2, 0.2314), (0, 0.1969)]

A **dense** retriever (Karpukhin et al. 2020) maps queries and passages to vectors and ranks by cosine
similarity, so it can match a question to a passage that shares no word with it ("birthplace" and
"born"), if training has taught it that the two mean the same. ``BagOfWordsEncoder`` is the smallest
such encoder: the mean of learned word vectors.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_positive_int
from .embeddings import cosine_similarity_matrix

__all__ = ["BM25", "bm25_term_score", "rank", "recall_at_k", "BagOfWordsEncoder", "encode_bags",
           "dense_scores", "in_batch_contrastive_loss", "READER_SPECIALS", "passage_marker", "reader_tokens",
           "ExtractiveReader", "ReaderBatch", "reader_batch", "reader_targets", "read_answers", "RAGAnswer",
           "retrieve_and_read"]


def _check_terms(name: str, terms: object) -> list[str]:
    if isinstance(terms, str):
        raise TypeError(f"{name} must be a list of terms, not one str (split it first: text.split())")
    if not isinstance(terms, Sequence) or not all(isinstance(t, str) for t in terms):
        raise TypeError(f"{name} must be a list of str terms, got {terms!r:.80}")
    return list(terms)


def bm25_term_score(tf: int, df: int, n_documents: int, doc_length: int, avgdl: float,
                    k1: float = 1.5, b: float = 0.75) -> float:
    """One term's BM25 contribution to one document's score: ``idf · tf / (tf + k1 (1 − b + b |d| / avgdl))``
    with Lucene's ``idf = ln(1 + (N − df + 0.5) / (df + 0.5))``.

    ``tf`` is the term's count in the document, ``df`` the number of documents that contain it.

    >>> round(bm25_term_score(tf=1, df=1, n_documents=3, doc_length=2, avgdl=2.0), 4)   # ln(8/3) * 1/2.5
    0.3923
    """
    idf = math.log(1 + (n_documents - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + k1 * (1 - b + b * doc_length / avgdl))


class BM25:
    """Okapi BM25 over ``documents`` (each a list of terms), with Lucene's ``idf`` (see the module docstring).

    - ``idf(term)``: the weight of a term (0 for a term no document contains: it cannot match);
    - ``scores(query) -> Tensor (N,)``: every document's score for ``query`` (a list of terms; a term
      repeated in the query counts once);
    - ``top_k(query, k) -> [(index, score), ...]``: the ``k`` best documents, best first, ties to the
      lower index.

    A query with no term the collection knows scores 0 everywhere.

    >>> bm25 = BM25([["a", "b"], ["b", "c", "c"]])
    >>> bm25.scores(["c", "c", "z"])                  # "c" counted once, "z" unknown
    tensor([0.0000, 0.3722], dtype=torch.float64)
    """

    def __init__(self, documents: list[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        if isinstance(documents, str) or not isinstance(documents, Sequence):
            raise TypeError(f"documents must be a list of documents (each a list of terms), got "
                            f"{type(documents).__name__}")
        if len(documents) == 0:
            raise ValueError("documents must hold at least one document (the corpus is empty)")
        for name, value in (("k1", k1), ("b", b)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        if k1 < 0:
            raise ValueError(f"k1 must be >= 0 (term-frequency saturation), got {k1}")
        if not 0 <= b <= 1:
            raise ValueError(f"b must be in [0, 1] (length normalisation), got {b}")
        self.documents = [_check_terms(f"documents[{i}]", d) for i, d in enumerate(documents)]
        self.k1, self.b = float(k1), float(b)
        self.n_documents = len(self.documents)
        self.lengths = [len(d) for d in self.documents]
        self.avgdl = sum(self.lengths) / self.n_documents
        if self.avgdl == 0:
            raise ValueError("documents must contain at least one term (every document is empty)")
        self.term_counts = [Counter(d) for d in self.documents]  # tf(t, d) for each document
        self.doc_freq: Counter[str] = Counter(t for counts in self.term_counts for t in counts)  # n(t)

    def idf(self, term: str) -> float:
        """Lucene's ``ln(1 + (N − n + 0.5) / (n + 0.5))``; 0 for a term in no document."""
        n = self.doc_freq.get(term, 0)
        return 0.0 if n == 0 else math.log(1 + (self.n_documents - n + 0.5) / (n + 0.5))

    def scores(self, query: list[str]) -> torch.Tensor:
        """Every document's BM25 score for ``query``: a float64 tensor ``(N,)``."""
        terms = [t for t in dict.fromkeys(_check_terms("query", query)) if t in self.doc_freq]
        scores = torch.zeros(self.n_documents, dtype=torch.float64)
        for i, (counts, length) in enumerate(zip(self.term_counts, self.lengths, strict=True)):
            norm = self.k1 * (1 - self.b + self.b * length / self.avgdl)  # the length discount of d
            scores[i] = sum(self.idf(t) * counts[t] / (counts[t] + norm) for t in terms if counts[t])
        return scores

    def top_k(self, query: list[str], k: int) -> list[tuple[int, float]]:
        """The ``k`` highest-scoring documents as ``(index, score)``, best first, ties to the lower index."""
        check_positive_int("k", k)
        if k > self.n_documents:
            raise ValueError(f"k must be <= the number of documents ({self.n_documents}), got {k}")
        scores = self.scores(query)
        order = rank(scores)[:k]
        return [(int(i), float(scores[i])) for i in order]


def rank(scores: torch.Tensor) -> torch.Tensor:
    """Document indices ordered by ``scores`` along the last dimension, highest first, ties to the
    lower index (a stable sort).

    >>> rank(torch.tensor([0.5, 2.0, 0.5, 1.0])).tolist()
    [1, 3, 0, 2]
    """
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"scores must be a torch.Tensor, got {type(scores).__name__}")
    return torch.sort(scores, dim=-1, descending=True, stable=True).indices


def recall_at_k(rankings: torch.Tensor, relevant: torch.Tensor, k: int) -> float:
    """The share of queries whose relevant document is among the first ``k`` of their ranking:
    ``rankings (Q, N)`` (document indices, best first), ``relevant (Q,)`` (one index per query).

    >>> recall_at_k(torch.tensor([[2, 0, 1], [1, 2, 0]]), torch.tensor([0, 0]), k=2)
    0.5
    """
    if not isinstance(rankings, torch.Tensor) or not isinstance(relevant, torch.Tensor):
        raise TypeError("rankings and relevant must be torch.Tensors")
    if rankings.dim() != 2 or relevant.shape != rankings.shape[:1]:
        raise ValueError(f"rankings must be (Q, N) and relevant (Q,), got {tuple(rankings.shape)} and "
                         f"{tuple(relevant.shape)}")
    check_positive_int("k", k)
    if k > rankings.shape[1]:
        raise ValueError(f"k must be <= the number of ranked documents ({rankings.shape[1]}), got {k}")
    hits = (rankings[:, :k] == relevant[:, None]).any(dim=1)  # (Q, k) vs (Q, 1) -> (Q,)
    return hits.float().mean().item()


class BagOfWordsEncoder(nn.Module):
    """The smallest dense encoder: a text's vector is the mean of its words' learned vectors
    (``nn.EmbeddingBag`` in ``"mean"`` mode), one table shared by queries and passages.

    ``forward(ids (B, T), lengths=None)`` -> ``(B, dim)``; with padded rows, pass ``mask (B, T)`` (True =
    a real word) and padding is left out of the mean.

    >>> encoder = BagOfWordsEncoder(vocab_size=5, dim=3)
    >>> tuple(encoder(torch.tensor([[1, 2, 0]]), torch.tensor([[True, True, False]])).shape)
    (1, 3)
    """

    def __init__(self, vocab_size: int, dim: int = 32) -> None:
        super().__init__()
        check_positive_int("vocab_size", vocab_size)
        check_positive_int("dim", dim)
        self.embedding = nn.Embedding(vocab_size, dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.dim() != 2:
            raise TypeError("ids must be a LongTensor (B, T) of word ids")
        vectors = self.embedding(ids)  # (B, T, D)
        if mask is None:
            return vectors.mean(dim=1)
        if mask.shape != ids.shape:
            raise ValueError(f"mask must have the shape of ids {tuple(ids.shape)}, got {tuple(mask.shape)}")
        weights = mask.float() / mask.sum(dim=1, keepdim=True).clamp_min(1)  # (B, T), rows sum to 1
        return (vectors * weights[..., None]).sum(dim=1)  # (B, T, D) -> (B, D)


def encode_bags(texts: Sequence[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad lists of word ids into ``(ids (B, T), mask (B, T))`` for ``BagOfWordsEncoder``.

    >>> encode_bags([[4, 5], [6]])
    (tensor([[4, 5],
            [6, 0]]), tensor([[ True,  True],
            [ True, False]]))
    """
    if not texts:
        raise ValueError("texts must hold at least one text")
    width = max(len(t) for t in texts)
    ids = torch.full((len(texts), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(texts), width, dtype=torch.bool)
    for row, text in enumerate(texts):
        ids[row, : len(text)] = torch.as_tensor(text, dtype=torch.long)
        mask[row, : len(text)] = True
    return ids, mask


def dense_scores(query_vectors: torch.Tensor, document_vectors: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every query ``(Q, D)`` with every document ``(N, D)``: ``(Q, N)``."""
    return cosine_similarity_matrix(query_vectors, document_vectors)


def in_batch_contrastive_loss(query_vectors: torch.Tensor, passage_vectors: torch.Tensor,
                              temperature: float = 0.05) -> torch.Tensor:
    """DPR's training loss (Karpukhin et al. 2020): query ``i`` should pick passage ``i`` among all
    passages of the batch, by cosine similarity over ``temperature``; the other passages are the
    negatives. ``query_vectors``, ``passage_vectors``: ``(B, D)``.

    >>> q = torch.eye(3)
    >>> in_batch_contrastive_loss(q, q, temperature=0.01).item() < 1e-6      # each finds its own
    True
    """
    if query_vectors.shape != passage_vectors.shape or query_vectors.dim() != 2:
        raise ValueError(f"query_vectors and passage_vectors must both be (B, D), got "
                         f"{tuple(query_vectors.shape)} and {tuple(passage_vectors.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = cosine_similarity_matrix(query_vectors, passage_vectors) / temperature  # (B, B)
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


# --- The reader: answer by pointing at a word of a passage, and cite that passage -------------------------
# The generation step of RAG, in its simplest honest form: an extractive reader (Chen et al. 2017; the
# reader of DPR, Karpukhin et al. 2020) reads the question and the retrieved passages together and points
# at the word that answers. Its answer is copied from a passage by construction, so it always comes with
# the passage it came from: the citation.

READER_SPECIALS: tuple[str, ...] = ("<pad>", "<bos>", "<unk>", "[CLS]", "[SEP]")


def passage_marker(slot: int) -> str:
    """The token that opens the ``slot``-th passage (0-based) of a reader's input: ``[1]``, ``[2]``, ...

    >>> passage_marker(0)
    '[1]'
    """
    return f"[{slot + 1}]"


def reader_tokens(question: str, passages: Sequence[str]) -> tuple[list[str], list[int]]:
    """The reader's input ``[CLS] question [SEP] [1] passage 1 [2] passage 2 ...`` as words, and for each
    word the passage it belongs to (``-1`` for the question, the specials and the markers: only passage
    words can be an answer).

    >>> tokens, slots = reader_tokens("who ?", ["a b .", "c ."])
    >>> tokens
    ['[CLS]', 'who', '?', '[SEP]', '[1]', 'a', 'b', '.', '[2]', 'c', '.']
    >>> slots
    [-1, -1, -1, -1, -1, 0, 0, 0, -1, 1, 1]
    """
    if not isinstance(question, str) or isinstance(passages, str):
        raise TypeError("question must be a str and passages a list of str")
    tokens, slots = ["[CLS]", *question.split(), "[SEP]"], [-1] * (len(question.split()) + 2)
    for slot, passage in enumerate(passages):
        words = passage.split()
        tokens += [passage_marker(slot), *words]
        slots += [-1] + [slot] * len(words)
    return tokens, slots


class ExtractiveReader(nn.Module):
    """A ``TinyEncoder`` with one score per position: ``forward(idx (B, T), answer_mask=None)`` -> logits
    ``(B, T)``, ``-inf`` where ``answer_mask`` is False. The answer is the word at the argmax, the citation
    the passage that word is in.

    Without ``answer_mask`` the candidates are read off the ids: every position after the first
    ``[SEP]`` that is a passage word (not padding, not a passage marker).

    One hand-made feature helps, in the spirit of DrQA's *exact match* features (Chen et al. 2017,
    section 3.2): every word of a passage that **names something the question names** (a word of
    ``match_ids``, the world's names, found in both) is marked, through the encoder's segment embedding
    (so the encoder needs ``n_segments=2``). The encoder then only has to learn which relation the
    question asks for; without the mark, telling whose fact a passage states takes a model this small
    thousands of steps to learn.
    """

    def __init__(self, encoder: nn.Module, pad_id: int, sep_id: int, marker_ids: Sequence[int],
                 match_ids: Sequence[int]) -> None:
        super().__init__()
        from .models import TinyEncoder  # noqa: PLC0415 (models imports training; keep this module light)

        if not isinstance(encoder, TinyEncoder):
            raise TypeError(f"encoder must be a TinyEncoder, got {type(encoder).__name__}")
        if encoder.n_segments != 2:
            raise ValueError(f"encoder must have n_segments=2 (the name-match feature), "
                             f"got {encoder.n_segments}")
        self.encoder, self.pad_id, self.sep_id = encoder, pad_id, sep_id
        for name, ids in (("marker_ids", marker_ids), ("match_ids", match_ids)):
            self.register_buffer(name, torch.as_tensor(list(ids), dtype=torch.long), persistent=False)
        self.scorer = nn.Linear(encoder.config.d_model, 1)

    def _after_sep(self, idx: torch.Tensor) -> torch.Tensor:
        return (idx == self.sep_id).long().cumsum(dim=1) > 0  # (B, T), True from the first [SEP] on

    def candidate_mask(self, idx: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` True on passage words: after the first ``[SEP]``, not padding, not a marker."""
        is_marker = (idx[..., None] == self.marker_ids).any(dim=-1)  # (B, T, M) -> (B, T)
        return self._after_sep(idx) & (idx != self.sep_id) & (idx != self.pad_id) & ~is_marker

    def name_match(self, idx: torch.Tensor) -> torch.Tensor:
        """``(B, T)``: 1 on every word of a passage that contains a name (``match_ids``) the question also
        contains, 0 elsewhere (the question, markers, padding, other passages)."""
        in_question = ~self._after_sep(idx)  # (B, T)
        is_name = (idx[..., None] == self.match_ids).any(dim=-1)  # (B, T)
        in_both = ((idx[:, :, None] == idx[:, None, :]) & in_question[:, None, :]).any(dim=-1)  # (B, T)
        hit = (is_name & in_both & self.candidate_mask(idx)).long()  # (B, T): a shared name, in a passage
        passage = (idx[..., None] == self.marker_ids).any(dim=-1).long().cumsum(dim=1)  # (B, T): 0 = question
        per_passage = hit.new_zeros(idx.shape[0], len(self.marker_ids) + 1)  # (B, P + 1)
        per_passage = per_passage.scatter_reduce(1, passage, hit, reduce="amax")  # does passage p have a hit?
        return per_passage.gather(1, passage) * self.candidate_mask(idx).long()  # spread over its words

    def forward(self, idx: torch.Tensor, answer_mask: torch.Tensor | None = None) -> torch.Tensor:
        if answer_mask is None:
            answer_mask = self.candidate_mask(idx)
        if not isinstance(answer_mask, torch.Tensor) or answer_mask.dtype != torch.bool:
            raise TypeError("answer_mask must be a BoolTensor (B, T): True where a word may be the answer")
        if answer_mask.shape != idx.shape:
            raise ValueError(f"answer_mask must have the shape of idx {tuple(idx.shape)}, got "
                             f"{tuple(answer_mask.shape)}")
        if not answer_mask.any(dim=1).all():
            raise ValueError("every row of answer_mask needs at least one candidate word")
        marks = self.name_match(idx)  # (B, T), read as segment ids
        hidden = self.encoder.encode(idx, marks, attention_mask=idx != self.pad_id)  # (B, T, C)
        scores = self.scorer(hidden).squeeze(-1)  # (B, T, 1) -> (B, T)
        return scores.masked_fill(~answer_mask, float("-inf"))


@dataclass
class ReaderBatch:
    """Reader inputs for a batch of (question, passages): ``ids``, ``answer_mask`` and ``slots`` are
    ``(B, T)`` (padded to ``T``); ``slots`` holds each position's passage (``-1`` outside passages)."""

    ids: torch.Tensor
    answer_mask: torch.Tensor
    slots: torch.Tensor
    tokens: list[list[str]]


def reader_batch(items: Sequence[tuple[str, Sequence[str]]], tokenizer, length: int) -> ReaderBatch:
    """Encode ``(question, passages)`` pairs with a ``WordTokenizer`` that knows the reader's specials and
    markers, padded to ``length`` positions (``ValueError`` if an input is longer).

    >>> from utils.tokenization import WordTokenizer
    >>> tok = WordTokenizer(["who", "?", "a", "b", ".", "[1]"], specials=READER_SPECIALS)
    >>> batch = reader_batch([("who ?", ["a b ."])], tok, length=9)
    >>> batch.answer_mask[0].int().tolist(), batch.slots[0].tolist()
    ([0, 0, 0, 0, 0, 1, 1, 1, 0], [-1, -1, -1, -1, -1, 0, 0, 0, -1])
    """
    check_positive_int("length", length)
    if not items:
        raise ValueError("items must hold at least one (question, passages) pair")
    ids = torch.full((len(items), length), tokenizer.pad_id, dtype=torch.long)
    slots = torch.full((len(items), length), -1, dtype=torch.long)
    all_tokens = []
    for row, (question, passages) in enumerate(items):
        tokens, token_slots = reader_tokens(question, passages)
        if len(tokens) > length:
            raise ValueError(f"length must be >= {len(tokens)} for item {row} "
                             "(its input has that many words)")
        unknown = [t for t in tokens if t not in tokenizer.token_to_id]
        if unknown:
            raise ValueError(f"the tokenizer does not know {unknown[:5]} (item {row})")
        ids[row, : len(tokens)] = torch.tensor([tokenizer.token_to_id[t] for t in tokens])
        slots[row, : len(tokens)] = torch.tensor(token_slots)
        all_tokens.append(tokens)
    return ReaderBatch(ids, slots >= 0, slots, all_tokens)


def reader_targets(batch: ReaderBatch, answer_slots: Sequence[int]) -> torch.Tensor:
    """The position of each row's answer: the last word before the final "." of passage
    ``answer_slots[row]`` (where every fact of the world keeps its object). ``LongTensor (B,)``."""
    targets = []
    for row, slot in enumerate(answer_slots):
        where = (batch.slots[row] == slot).nonzero().flatten()
        if slot < 0 or len(where) < 2:
            raise ValueError(f"answer_slots[{row}] = {slot} is not a passage of that row")
        targets.append(int(where[-1]) - 1)  # a passage ends with its "."; the answer is just before
    return torch.tensor(targets)


@torch.no_grad()
def read_answers(reader: ExtractiveReader, batch: ReaderBatch) -> list[tuple[str, int]]:
    """The reader's ``(answer word, cited passage index)`` for every row of ``batch``."""
    was_training = reader.training
    reader.eval()
    try:
        device = next(reader.parameters()).device
        logits = reader(batch.ids.to(device), batch.answer_mask.to(device)).cpu()  # (B, T)
    finally:
        reader.train(was_training)
    positions = logits.argmax(dim=1).tolist()
    rows = zip(batch.tokens, positions, strict=True)
    return [(tokens[p], int(batch.slots[row, p])) for row, (tokens, p) in enumerate(rows)]


@dataclass
class RAGAnswer:
    """What the pipeline did for one question: the ranked passages it kept (``(index, score)``, best
    first), the reader's answer and the knowledge-base index of the passage it cites."""

    retrieved: list[tuple[int, float]]
    answer: str
    cited: int


def retrieve_and_read(question: str, scores: torch.Tensor, passages: Sequence[str], reader: ExtractiveReader,
                      tokenizer, k: int = 3, length: int = 36,
                      planted: tuple[int, int] | None = None) -> RAGAnswer:
    """RAG's three steps for one question: **retrieve** (``scores``, one per passage of the knowledge
    base, from any retriever), **rank** (keep the ``k`` best, ties to the lower index), **generate** (the
    reader answers from them and cites a passage, translated back to its knowledge-base index).

    ``planted = (position, index)`` replaces the ``position``-th retrieved passage by passage ``index``:
    the experiment with a deliberately wrong passage.
    """
    if not isinstance(scores, torch.Tensor) or scores.shape != (len(passages),):
        raise ValueError(f"scores must be a tensor with one score per passage ({len(passages)})")
    check_positive_int("k", k)
    if k > len(passages):
        raise ValueError(f"k must be <= the number of passages ({len(passages)}), got {k}")
    order = rank(scores)[:k].tolist()
    if planted is not None:
        position, index = planted
        order[position] = index
    batch = reader_batch([(question, [passages[i] for i in order])], tokenizer, length)
    answer, slot = read_answers(reader, batch)[0]
    return RAGAnswer([(i, float(scores[i])) for i in order], answer, order[slot])
