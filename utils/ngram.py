"""n-gram language models: counting, add-alpha (Laplace) smoothing and interpolated Kneser–Ney.

Before neural networks, a language model was a table of counts. An n-gram model assumes that a word
depends only on the ``n − 1`` words before it and estimates ``p(w | context)`` from how often the n-gram
occurred in the training text. The trouble is the n-grams that never occurred: most of them, once ``n`` is
3 or more (Q47 measures it). Smoothing moves some probability to them:

- **Laplace** (add-``alpha``): pretend every word of the vocabulary followed every context ``alpha`` more
  times than it did: ``p(w | h) = (c(h w) + α) / (c(h) + α |V|)``. Simple, and far too generous to the
  unseen when the vocabulary is large;
- **interpolated Kneser–Ney** (Kneser & Ney 1995; the interpolated form of Chen & Goodman 1998, eq. 17):
  subtract a fixed discount ``D`` from every count and give what was subtracted to a lower-order model,

      p(w | h) = max(c(h w) − D, 0) / c(h)  +  D · N1+(h •) / c(h) · p_lower(w | h')

  where ``N1+(h •)`` is the number of distinct words seen after ``h`` and ``h'`` is ``h`` without its first
  word. Its one new idea is what the lower orders count: not how often a word occurs, but in how many
  different contexts (its *continuation count* ``N1+(• w)``). "francisco" may be frequent, yet only after
  "san": as a guess for a new context it deserves little. The recursion ends with the uniform
  distribution over the vocabulary, so every word, ``"<unk>"`` included, gets some probability.

Sentences are lists of words; ``fit`` pads each with ``n − 1`` ``"<s>"`` and one ``"</s>"``: the model
predicts every word and the end of the sentence, never the start.

>>> lm = NGramLM(2, smoothing="laplace").fit([["a", "b"], ["a", "c"]])
>>> lm.vocabulary
['a', 'b', 'c', '</s>', '<unk>']
>>> lm.prob("a", ("<s>",))                 # (2 + 1) / (2 + 5)
0.42857142857142855
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

__all__ = ["NGramLM", "BOS", "EOS", "UNK", "SMOOTHING", "padded", "ngrams", "continuation_counts",
           "unseen_rate"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SMOOTHING = ("laplace", "kneser-ney")


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int (the order of the model), got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1 (1 = unigram, 2 = bigram, ...), got {n}")
    return n


def _check_sentences(sentences: object, name: str = "sentences") -> list[list[str]]:
    if isinstance(sentences, str) or not isinstance(sentences, Sequence) or not sentences:
        raise TypeError(f"{name} must be a non-empty list of sentences, each a list of words")
    for sentence in sentences:
        if isinstance(sentence, str) or not isinstance(sentence, Sequence):
            raise TypeError(f"each sentence in {name} must be a list of words (str), got "
                            f"{type(sentence).__name__}: split a string with .split()")
        for word in sentence:
            if not isinstance(word, str):
                raise TypeError(f"words must be str, got {type(word).__name__} in {name}")
            if word in (BOS, EOS):
                raise ValueError(f"sentences must not contain {BOS!r} or {EOS!r}: the model adds them")
    return [list(s) for s in sentences]


def padded(sentence: Sequence[str], n: int) -> list[str]:
    """``n − 1`` ``"<s>"``, the words, one ``"</s>"``: the first word gets a full context of starts.

    >>> padded(["the", "cat"], 3)
    ['<s>', '<s>', 'the', 'cat', '</s>']
    """
    return [BOS] * (_check_n(n) - 1) + list(sentence) + [EOS]


def ngrams(sentence: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The n-grams of the padded sentence that end in a predicted position (each word and ``"</s>"``).

    >>> ngrams(["the", "cat"], 2)
    [('<s>', 'the'), ('the', 'cat'), ('cat', '</s>')]
    """
    words = padded(sentence, n)
    return [tuple(words[i - n + 1: i + 1]) for i in range(n - 1, len(words))]


def continuation_counts(sentences: Sequence[Sequence[str]]) -> Counter:
    """Kneser–Ney's continuation count of every word: ``N1+(• w)``, the number of *distinct* words seen
    right before ``w`` (the start ``"<s>"`` counts as a word before the first one).

    >>> counts = continuation_counts([["san", "francisco"]] * 2 + [["a", "cat"], ["the", "cat"]])
    >>> counts["francisco"], counts["cat"]      # "francisco" twice, but only ever after "san"
    (1, 2)
    """
    bigrams = {g for s in _check_sentences(sentences) for g in ngrams(s, 2)}
    return Counter(w for _, w in bigrams)


def unseen_rate(train: Sequence[Sequence[str]], test: Sequence[Sequence[str]], n: int) -> float:
    """The share of the test n-grams (one per predicted position) that never occur in ``train``: the
    positions where an unsmoothed n-gram model would give probability 0.

    >>> unseen_rate([["a", "b"]], [["a", "b"], ["b", "a"]], 2)   # ("<s>","b"), ("b","a"), ("a","</s>") unseen
    0.5
    """
    _check_n(n)
    seen = {g for s in _check_sentences(train, "train") for g in ngrams(s, n)}
    grams = [g for s in _check_sentences(test, "test") for g in ngrams(s, n)]
    return sum(g not in seen for g in grams) / len(grams)


class NGramLM:
    """An n-gram language model with Laplace or interpolated Kneser–Ney smoothing.

    - ``NGramLM(n, smoothing="kneser-ney", discount=0.75, alpha=1.0)``: ``discount`` is Kneser–Ney's
      ``D`` in ``(0, 1]`` (Chen & Goodman's estimate ``n1 / (n1 + 2 n2)`` is usually near 0.75), ``alpha``
      Laplace's pseudo-count ``> 0``;
    - ``fit(sentences)`` counts the n-grams of the padded sentences and returns ``self``;
    - ``vocabulary``: the training words (sorted), then ``"</s>"`` and ``"<unk>"``; any other word is
      read as ``"<unk>"``;
    - ``prob(word, context)``: ``p(word | the last n − 1 words of context)``; for every context these
      sum to 1 over ``vocabulary``; ``distribution(context)`` gives them all;
    - ``perplexity(sentences)``: ``exp`` of the mean ``−log p`` over every predicted position (each word
      and the ``"</s>"``).

    >>> lm = NGramLM(3).fit([["the", "cat", "sat"], ["the", "dog", "sat"]])
    >>> round(sum(lm.prob(w, ("<s>", "the")) for w in lm.vocabulary), 12)
    1.0
    """

    def __init__(self, n: int, smoothing: str = "kneser-ney", discount: float = 0.75, alpha: float = 1.0):
        self.n = _check_n(n)
        if smoothing not in SMOOTHING:
            raise ValueError(f"smoothing must be one of {SMOOTHING}, got {smoothing!r}")
        for name, value in (("discount", discount), ("alpha", alpha)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        if not 0 < discount <= 1:
            raise ValueError(f"discount must be in (0, 1] (subtracted from counts of at least 1), "
                             f"got {discount}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0 (the pseudo-count added to every n-gram), got {alpha}")
        self.smoothing, self.discount, self.alpha = smoothing, float(discount), float(alpha)
        self.vocabulary: list[str] = []
        # tables[k][context of k - 1 words] = Counter of next words: raw counts for k = n, continuation
        # counts for k < n (Kneser–Ney); totals[k][context] = (sum of that Counter, number of its words)
        self._tables: dict[int, dict[tuple[str, ...], Counter]] = {}
        self._totals: dict[int, dict[tuple[str, ...], tuple[int, int]]] = {}

    def __repr__(self) -> str:
        return f"NGramLM(n={self.n}, smoothing={self.smoothing!r}, vocabulary of {len(self.vocabulary)})"

    # -- training ----------------------------------------------------------------------------------

    def fit(self, sentences: Sequence[Sequence[str]]) -> NGramLM:
        """Count the n-grams of ``sentences`` (a list of lists of words); returns ``self``."""
        sentences = _check_sentences(sentences)
        words = sorted({w for s in sentences for w in s} - {UNK})
        self.vocabulary = [*words, EOS, UNK]
        self._known = set(self.vocabulary)
        grams = [g for s in sentences for g in ngrams(s, self.n)]
        tables: dict[int, dict[tuple[str, ...], Counter]] = {k: defaultdict(Counter) for k in
                                                              range(1, self.n + 1)}
        for g in grams:  # the highest order: how often each word followed each context
            tables[self.n][g[:-1]][g[-1]] += 1
        if self.smoothing == "kneser-ney":
            distinct = set(grams)
            for k in range(1, self.n):  # lower orders: in how many distinct contexts a k-gram followed
                for g in {g[-(k + 1):] for g in distinct}:
                    tables[k][g[1:-1]][g[-1]] += 1
        self._tables = {k: dict(t) for k, t in tables.items()}
        self._totals = {k: {h: (sum(c.values()), len(c)) for h, c in t.items()}
                        for k, t in self._tables.items()}
        return self

    # -- probabilities -----------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not self.vocabulary:
            raise ValueError("this NGramLM has not been fitted: call fit(sentences) first")

    def _context(self, context: Sequence[str]) -> tuple[str, ...]:
        if isinstance(context, str) or not isinstance(context, Sequence):
            raise TypeError(f"context must be a tuple of words, got {type(context).__name__}")
        if len(context) < self.n - 1:
            raise ValueError(f"context must hold at least n - 1 = {self.n - 1} words (pad the start of a "
                             f"sentence with {BOS!r}), got {len(context)}")
        last = tuple(context[len(context) - (self.n - 1):]) if self.n > 1 else ()
        return tuple(w if w == BOS or w in self._known else UNK for w in last)

    def _word(self, word: str) -> str:
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__}")
        return word if word in self._known else UNK

    def _kneser_ney(self, word: str, context: tuple[str, ...], k: int) -> float:
        # the order-k estimate of p(word | its last k - 1 context words), interpolated down to uniform
        if k == 0:
            return 1.0 / len(self.vocabulary)
        h = context[len(context) - (k - 1):] if k > 1 else ()
        lower = self._kneser_ney(word, context, k - 1)
        table = self._tables[k].get(h)
        if table is None:  # never seen this context: all the mass goes to the lower order
            return lower
        total, types = self._totals[k][h]
        return max(table.get(word, 0) - self.discount, 0.0) / total + self.discount * types / total * lower

    def _laplace(self, word: str, context: tuple[str, ...]) -> float:
        table = self._tables[self.n].get(context)
        count, total = (table.get(word, 0), self._totals[self.n][context][0]) if table else (0, 0)
        return (count + self.alpha) / (total + self.alpha * len(self.vocabulary))

    def prob(self, word: str, context: Sequence[str]) -> float:
        """``p(word | context)``, reading the last ``n − 1`` words of ``context``; unknown words are
        ``"<unk>"``; ``"<s>"`` may appear in the context (the start of a sentence)."""
        self._check_fitted()
        word, context = self._word(word), self._context(context)
        if self.smoothing == "laplace":
            return self._laplace(word, context)
        return self._kneser_ney(word, context, self.n)

    def distribution(self, context: Sequence[str]) -> dict[str, float]:
        """``{word: p(word | context)}`` over the whole vocabulary (the values sum to 1)."""
        self._check_fitted()
        return {w: self.prob(w, context) for w in self.vocabulary}

    def sentence_log_prob(self, sentence: Sequence[str]) -> float:
        """``log p(sentence)``: the sum over its predicted positions (each word and ``"</s>"``)."""
        self._check_fitted()
        return sum(math.log(self.prob(g[-1], g[:-1])) for g in ngrams(sentence, self.n))

    def perplexity(self, sentences: Sequence[Sequence[str]]) -> float:
        """``exp`` of the mean negative log-probability over every predicted position of ``sentences``."""
        self._check_fitted()
        sentences = _check_sentences(sentences)
        log_probs = [math.log(self.prob(g[-1], g[:-1])) for s in sentences for g in ngrams(s, self.n)]
        return math.exp(-sum(log_probs) / len(log_probs))
