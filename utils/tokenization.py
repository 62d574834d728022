"""Tokenizers: byte-level BPE (trained from scratch), and character- and word-level baselines.

Byte-pair encoding (Sennrich et al. 2016, after Gage 1994) starts from small symbols and repeatedly
merges the most frequent adjacent pair into a new symbol. Working on UTF-8 bytes (Radford et al. 2019,
GPT-2) means the 256 byte values are the first 256 tokens, so every string can be encoded: nothing is
ever "unknown". Text is first split into chunks (words, numbers, punctuation, whitespace) with a
GPT-2-like regular expression, and merges never cross a chunk boundary.

The structure follows Karpathy's minbpe: ``get_pair_counts`` and ``merge_pair`` are the two steps the
training loop repeats, and ``encode`` replays the learned merges in the order they were learned.

>>> tok = BPETokenizer().train("aaabdaaabac", vocab_size=256 + 3)
>>> [tok.vocab[i] for i in tok.merges.values()]
[b'aa', b'ab', b'aaab']
>>> tok.decode(tok.encode("aaabdaaabac")) == "aaabdaaabac"
True
"""

from __future__ import annotations

import heapq
import operator
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise

__all__ = [
    "SPLIT_PATTERN",
    "split_chunks",
    "get_pair_counts",
    "merge_pair",
    "train_incremental",
    "BPETokenizer",
    "CharTokenizer",
    "WordTokenizer",
    "pair_count_changes",
    "unknown_rate",
    "compare_tokenizers",
]

# GPT-2's pre-tokenization pattern (Radford et al. 2019), rewritten for Python's `re`, which has no \p{L}:
# [^\W\d_] is "a word character that is neither a digit nor an underscore", i.e. a letter.
#   's 't 're 've 'm 'll 'd  | optional space + letters | optional space + digits |
#   optional space + other symbols | whitespace not followed by a non-space | remaining whitespace.
# Every character falls in one of the alternatives, so the chunks always join back to the text.
SPLIT_PATTERN = re.compile(r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")

_FILE_HEADER = "byte-level-bpe v1"


def split_chunks(text: str) -> list[str]:
    """Cut ``text`` into the chunks BPE works inside (words keep their leading space).

    >>> split_chunks("The cat's 3 hats!")
    ['The', ' cat', "'s", ' 3', ' hats', '!']
    """
    return SPLIT_PATTERN.findall(text)


def get_pair_counts(
    ids: Sequence[int], counts: dict[tuple[int, int], int] | None = None
) -> dict[tuple[int, int], int]:
    """Count each adjacent pair in ``ids``, added to a copy of ``counts`` if given (never modified).

    >>> get_pair_counts([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    >>> get_pair_counts([1, 2], counts={(1, 2): 5})
    {(1, 2): 6}
    """
    result = dict(counts) if counts is not None else {}
    for pair in pairwise(ids):
        result[pair] = result.get(pair, 0) + 1
    return result


def merge_pair(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``new_id``, left to right, without overlaps.

    >>> merge_pair([5, 6, 5, 6, 7], (5, 6), 9)
    [9, 9, 7]
    >>> merge_pair([5, 5, 5], (5, 5), 9)
    [9, 5]
    """
    merged = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


def _to_bytes(text: str) -> bytes:
    # "surrogatepass" lets lone surrogates (valid in a Python str, invalid in UTF-8) round-trip.
    return text.encode("utf-8", errors="surrogatepass")


def _from_bytes(data: bytes) -> str:
    try:
        return data.decode("utf-8", errors="surrogatepass")
    except UnicodeDecodeError:  # ids that are not whole characters (e.g. half of "é"): show U+FFFD
        return data.decode("utf-8", errors="replace")


def _check_text(text: str) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")


def _chunk_counts(text: str, vocab_size: int) -> Counter[str]:
    """How often each distinct chunk occurs in ``text`` (the arguments of ``train`` checked first)."""
    _check_text(text)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be >= 256 (the 256 byte tokens), got {vocab_size}")
    return Counter(split_chunks(text))


def train_incremental(
    words: Sequence[Sequence[int]], freqs: Sequence[int], num_merges: int, first_id: int = 256
) -> dict[tuple[int, int], int]:
    """BPE merges learned from distinct ``words`` (token ids) occurring ``freqs`` times, the fast way.

    The result is exactly that of the readable loop (count all pairs, merge the most frequent, ties to
    the smallest pair, repeat), but each step costs only what the merge changed, as fast trainers
    (Hugging Face ``tokenizers``, SentencePiece) do it:

    - ``counts[pair]`` is kept up to date, and ``where[pair]`` knows which words contain the pair, so a
      merge visits only those words (a rare pair touches a handful, not the whole text);
    - in each visited word the pairs before and after the merge are compared, and only the counts that
      changed are updated (weighted by the word's frequency);
    - the most frequent pair comes from a heap of ``(-count, pair)``, whose smallest entry is the most
      frequent pair and, among equals, the smallest one: the readable loop's tie-breaking. A count that
      changes is pushed again instead of being updated in place ("lazy deletion"), and a popped entry
      whose count is out of date is skipped.

    Words and frequencies are not modified. Stops early when no pair is left.

    >>> train_incremental([[97, 97, 97, 98], [97, 98]], [2, 1], num_merges=2)   # "aaab" x2, "ab" x1
    {(97, 97): 256, (97, 98): 257}
    """
    words = [list(w) for w in words]  # our own copies: merging rewrites them
    counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    for i, (ids, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in pairwise(ids):
            counts[pair] = counts.get(pair, 0) + freq
            where.setdefault(pair, set()).add(i)
    heap = [(-count, pair) for pair, count in counts.items()]
    heapq.heapify(heap)
    merges: dict[tuple[int, int], int] = {}
    new_id = first_id
    while len(merges) < num_merges and heap:
        neg_count, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg_count:
            continue  # an out-of-date entry: this pair's count has changed since it was pushed
        merges[pair] = new_id
        left, right = pair
        changes: dict[tuple[int, int], int] = {}
        for i in where.pop(pair):
            ids = words[i]
            n = len(ids)
            merged, j = [], 0
            while j < n:  # merge_pair, inlined: this loop is the trainer's innermost one
                if j + 1 < n and ids[j] == left and ids[j + 1] == right:
                    merged.append(new_id)
                    j += 2
                else:
                    merged.append(ids[j])
                    j += 1
            if len(merged) == n:
                continue  # the pair was here once, but an earlier merge took it apart
            freq = freqs[i]
            for old in pairwise(ids):
                changes[old] = changes.get(old, 0) - freq
            for new in pairwise(merged):
                changes[new] = changes.get(new, 0) + freq
                if new_id in new:  # pairs without the new token were already in this word
                    where.setdefault(new, set()).add(i)
            words[i] = merged
        for changed, delta in changes.items():
            if delta:
                count = counts.get(changed, 0) + delta
                if count:
                    counts[changed] = count
                    heapq.heappush(heap, (-count, changed))
                else:
                    del counts[changed]
        new_id += 1
    return merges


class BPETokenizer:
    """Byte-level BPE. Ids 0..255 are the raw bytes; id ``256 + k`` is the k-th merge learned.

    Attributes:
        merges: ``{(left_id, right_id): new_id}`` in creation order (the order ``encode`` replays).
        vocab: ``{id: bytes}`` for every id; ``vocab[new_id] == vocab[left_id] + vocab[right_id]``.

    >>> tok = BPETokenizer().train("the cat, the hat, the mat", vocab_size=258)
    >>> [tok.piece(i) for i in tok.merges.values()]  # "at" and "he" occur 3 times; ties: smallest pair
    ['at', 'he']
    >>> tok.tokens(" the hat")
    [' ', 't', 'he', ' ', 'h', 'at']
    """

    def __init__(self) -> None:
        self.merges: dict[tuple[int, int], int] = {}
        self.vocab: dict[int, bytes] = self._build_vocab({})

    @staticmethod
    def _build_vocab(merges: dict[tuple[int, int], int]) -> dict[int, bytes]:
        vocab = {i: bytes([i]) for i in range(256)}
        for (left, right), new_id in merges.items():
            vocab[new_id] = vocab[left] + vocab[right]
        return vocab

    @property
    def vocab_size(self) -> int:
        """256 byte tokens plus one token per merge."""
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"

    def train(self, text: str, vocab_size: int) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text`` (replacing any earlier ones); return ``self``.

        Each step merges the most frequent adjacent pair inside the chunks; ties go to the smallest
        pair ``(a, b)``, so training is deterministic. If the text runs out of pairs (every chunk is
        a single token) training stops early, with a smaller vocabulary than asked for.

        This is the fast trainer (``train_incremental``): it learns exactly the merges of the readable
        loop ``train_readable`` (the tests check it on many texts), but instead of recounting every pair
        after every merge it updates the counts only in the chunks that the merge changed.

        >>> BPETokenizer().train("aaabdaaabac", vocab_size=257).merges
        {(97, 97): 256}
        """
        chunks = _chunk_counts(text, vocab_size)
        self.merges = train_incremental([list(_to_bytes(chunk)) for chunk in chunks], list(chunks.values()),
                                        num_merges=vocab_size - 256)
        self.vocab = self._build_vocab(self.merges)
        return self

    def train_readable(self, text: str, vocab_size: int) -> BPETokenizer:
        """The readable trainer: the same merges as ``train``, by recounting every pair at every step.

        Speed: identical chunks ("the" appears hundreds of times) are stored once with their count, and
        a chunk that has become a single token is dropped (it has no pairs left to count). Still, each
        of the ``vocab_size - 256`` steps reads all the remaining chunks, which is what ``train``
        avoids.

        >>> BPETokenizer().train_readable("aaabdaaabac", vocab_size=257).merges
        {(97, 97): 256}
        """
        # [(byte ids of a distinct chunk, how often it occurs)]
        chunks = [(list(_to_bytes(chunk)), freq) for chunk, freq in _chunk_counts(text, vocab_size).items()]
        merges: dict[tuple[int, int], int] = {}
        for new_id in range(256, vocab_size):
            chunks = [(ids, freq) for ids, freq in chunks if len(ids) > 1]
            if not chunks:
                break  # every chunk is one token: nothing left to merge
            counts: dict[tuple[int, int], int] = {}
            for ids, freq in chunks:  # get_pair_counts, weighted by how often each chunk occurs
                for pair in pairwise(ids):
                    counts[pair] = counts.get(pair, 0) + freq
            best = min(counts, key=lambda pair: (-counts[pair], pair))  # most frequent; ties: smallest
            merges[best] = new_id
            chunks = [(merge_pair(ids, best, new_id), freq) for ids, freq in chunks]
        self.merges = merges
        self.vocab = self._build_vocab(merges)
        return self

    def _check_num_merges(self, num_merges: int | None) -> int:
        if num_merges is None:
            return len(self.merges)
        if isinstance(num_merges, bool) or not isinstance(num_merges, int):
            raise TypeError(f"num_merges must be an int or None, got {type(num_merges).__name__}")
        if not 0 <= num_merges <= len(self.merges):
            raise ValueError(f"num_merges must be between 0 and {len(self.merges)} (the merges learned), "
                             f"got {num_merges}")
        return num_merges

    def _encode_chunk(self, data: bytes, max_id: int) -> list[int]:
        ids = list(data)
        while len(ids) >= 2:
            # the pair that was merged EARLIEST in training goes first, exactly as training built it
            pair = min(pairwise(ids), key=lambda p: self.merges.get(p, max_id))
            new_id = self.merges.get(pair, max_id)
            if new_id >= max_id:
                break  # no learned (and allowed) merge applies any more
            ids = merge_pair(ids, pair, new_id)
        return ids

    def encode(self, text: str, num_merges: int | None = None) -> list[int]:
        """Token ids of ``text``, using all merges or only the first ``num_merges`` of them.

        ``num_merges=0`` gives the raw UTF-8 bytes; more merges never give more tokens.

        >>> tok = BPETokenizer().train("aaabdaaabac", vocab_size=259)
        >>> tok.encode("aaab"), tok.encode("aaab", num_merges=1), tok.encode("aaab", num_merges=0)
        ([258], [256, 97, 98], [97, 97, 97, 98])
        """
        _check_text(text)
        max_id = 256 + self._check_num_merges(num_merges)
        cache: dict[str, list[int]] = {}  # a chunk repeated in the text is encoded once
        ids: list[int] = []
        for chunk in split_chunks(text):
            if chunk not in cache:
                cache[chunk] = self._encode_chunk(_to_bytes(chunk), max_id)
            ids.extend(cache[chunk])
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; ``decode(encode(s)) == s`` for every string ``s``.

        Ids that do not form whole UTF-8 characters decode to U+FFFD (as minbpe does).

        >>> BPETokenizer().decode([104, 105, 0xC3, 0xA9])
        'hié'
        """
        try:
            data = b"".join(self.vocab[operator.index(i)] for i in ids)
        except KeyError as error:
            raise ValueError(f"ids contains {error.args[0]}, which is not in the vocabulary "
                             f"(ids must be in 0..{self.vocab_size - 1})") from None
        except TypeError:
            raise TypeError("ids must be a sequence of integers") from None
        return _from_bytes(data)

    def piece(self, token_id: int) -> str:
        """The text of one token, for display (bytes that are not whole characters shown as U+FFFD).

        >>> BPETokenizer().piece(104)
        'h'
        """
        if token_id not in self.vocab:
            raise ValueError(f"token_id must be in 0..{self.vocab_size - 1}, got {token_id}")
        return self.vocab[token_id].decode("utf-8", errors="replace")

    def tokens(self, text: str, num_merges: int | None = None) -> list[str]:
        """The text piece of each token of ``text`` (for showing token boundaries).

        >>> BPETokenizer().train("aaabdaaabac", vocab_size=257).tokens("aaab")
        ['aa', 'a', 'b']
        """
        return [self.piece(i) for i in self.encode(text, num_merges=num_merges)]

    def save(self, path: str | os.PathLike) -> None:
        """Write the merges as text: a header line, then one ``left right`` pair per line, in order."""
        lines = [_FILE_HEADER] + [f"{left} {right}" for left, right in self.merges]
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a tokenizer written by ``save`` (the merge on line k + 1 gets id 256 + k)."""
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if not lines or lines[0] != _FILE_HEADER:
            raise ValueError(f"path {os.fspath(path)!r} is not a saved BPETokenizer "
                             f"(expected first line {_FILE_HEADER!r})")
        merges: dict[tuple[int, int], int] = {}
        for new_id, line in enumerate(lines[1:], start=256):
            parts = line.split()
            if len(parts) != 2 or not all(p.isdigit() and int(p) < new_id for p in parts):
                raise ValueError(f"path {os.fspath(path)!r}: line {new_id - 254} must be two earlier ids "
                                 f"'left right', got {line!r}")
            merges[(int(parts[0]), int(parts[1]))] = new_id
        tok = cls()
        tok.merges = merges
        tok.vocab = cls._build_vocab(merges)
        return tok


class CharTokenizer:
    """One token per character; the vocabulary is the sorted set of characters seen by ``fit``.

    >>> tok = CharTokenizer().fit("hello")
    >>> tok.vocab_size, tok.encode("hole"), tok.decode([1, 2])
    (4, [1, 3, 2, 0], 'hl')
    """

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.char_to_id: dict[str, int] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def fit(self, text: str) -> CharTokenizer:
        """Set the vocabulary to the sorted distinct characters of ``text``; return ``self``."""
        _check_text(text)
        self.chars = sorted(set(text))
        self.char_to_id = {c: i for i, c in enumerate(self.chars)}
        return self

    def encode(self, text: str) -> list[int]:
        _check_text(text)
        unknown = sorted(set(text) - self.char_to_id.keys())
        if unknown:
            raise ValueError(f"text contains characters not in the vocabulary: {unknown[:10]}")
        return [self.char_to_id[c] for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        bad = [i for i in ids if not 0 <= i < len(self.chars)]
        if bad:
            raise ValueError(f"ids must be in 0..{len(self.chars) - 1}, got {bad[:10]}")
        return "".join(self.chars[i] for i in ids)


# Words are runs of letters/digits; each punctuation mark is a word of its own.
_WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


class WordTokenizer:
    """One token per word (split on whitespace and punctuation); unknown words become ``<unk>``.

    Ids: the ``specials`` first, in order, then ``words`` in the given order. Case is kept.

    >>> tok = WordTokenizer(["the", "cat", "."])
    >>> tok.encode("the dog ."), tok.decode([3, 4]), tok.vocab_size
    ([3, 2, 5], 'the cat', 6)
    """

    REQUIRED_SPECIALS = ("<pad>", "<bos>", "<unk>")

    def __init__(self, words: Iterable[str], specials: Sequence[str] = ("<pad>", "<bos>", "<unk>")) -> None:
        if isinstance(words, str):
            raise TypeError("words must be a list of words, not one str")
        words = list(words)
        missing = [s for s in self.REQUIRED_SPECIALS if s not in specials]
        if missing:
            raise ValueError(f"specials must include {self.REQUIRED_SPECIALS}, missing {missing}")
        self.id_to_token: list[str] = list(dict.fromkeys([*specials, *words]))
        if len(self.id_to_token) != len(specials) + len(words):
            raise ValueError("words must be distinct and must not repeat a special token")
        self.token_to_id: dict[str, int] = {t: i for i, t in enumerate(self.id_to_token)}
        self.specials = tuple(specials)

    @classmethod
    def fit(cls, text: str, max_vocab: int | None = None,
            specials: Sequence[str] = ("<pad>", "<bos>", "<unk>")) -> WordTokenizer:
        """A tokenizer for the words of ``text``, most frequent first (ties: alphabetical).

        ``max_vocab`` caps ``vocab_size`` (specials included): the rarest words are left out.

        >>> WordTokenizer.fit("b a b c", max_vocab=5).id_to_token
        ['<pad>', '<bos>', '<unk>', 'b', 'a']
        """
        _check_text(text)
        counts = Counter(_WORD_PATTERN.findall(text))
        for special in specials:
            counts.pop(special, None)
        words = sorted(counts, key=lambda w: (-counts[w], w))
        if max_vocab is not None:
            if max_vocab <= len(specials):
                raise ValueError(f"max_vocab must be > {len(specials)} (the special tokens), got {max_vocab}")
            words = words[: max_vocab - len(specials)]
        return cls(words, specials=specials)

    @property
    def vocab_size(self) -> int:
        return len(self.id_to_token)

    @property
    def pad_id(self) -> int:
        return self.token_to_id["<pad>"]

    @property
    def bos_id(self) -> int:
        return self.token_to_id["<bos>"]

    @property
    def unk_id(self) -> int:
        return self.token_to_id["<unk>"]

    def split(self, text: str) -> list[str]:
        """The words of ``text`` (what ``encode`` looks up).

        >>> WordTokenizer([]).split("The cat, sat.")
        ['The', 'cat', ',', 'sat', '.']
        """
        _check_text(text)
        return _WORD_PATTERN.findall(text)

    def encode(self, text: str) -> list[int]:
        unk = self.unk_id
        return [self.token_to_id.get(word, unk) for word in self.split(text)]

    def decode(self, ids: Sequence[int], skip_specials: bool = False) -> str:
        """The tokens of ``ids`` joined by single spaces (``skip_specials`` drops ``<pad>`` etc.)."""
        bad = [i for i in ids if not 0 <= i < len(self.id_to_token)]
        if bad:
            raise ValueError(f"ids must be in 0..{len(self.id_to_token) - 1}, got {bad[:10]}")
        tokens = [self.id_to_token[i] for i in ids]
        if skip_specials:
            tokens = [t for t in tokens if t not in self.specials]
        return " ".join(tokens)


# --- Lecture 4: what a merge changes, and words a tokenizer does not know --------------------------------

def pair_count_changes(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> dict[tuple[int, int], int]:
    """How merging ``pair`` into ``new_id`` changes the pair counts of ``ids``: ``{pair: new - old}``,
    only the pairs whose count changed. This is all the fast trainer (``train_incremental``) needs to
    know about a word after a merge, instead of counting every pair again.

    >>> pair_count_changes([5, 6, 7, 5, 6], (5, 6), 9)    # (5,6) x2 and (6,7), (7,5) become (9,7), (7,9)
    {(5, 6): -2, (6, 7): -1, (7, 5): -1, (9, 7): 1, (7, 9): 1}
    """
    before, after = get_pair_counts(ids), get_pair_counts(merge_pair(ids, pair, new_id))
    changes = {p: after.get(p, 0) - n for p, n in before.items()}
    changes.update({p: n for p, n in after.items() if p not in before})
    return {p: d for p, d in changes.items() if d}


def _unknown_flags(text: str, tokenizer) -> list[tuple[str, bool]]:
    """``[(piece, unknown)]``: the pieces ``tokenizer`` cuts ``text`` into, and whether each is unknown."""
    _check_text(text)
    if isinstance(tokenizer, WordTokenizer):
        return [(w, w not in tokenizer.token_to_id) for w in tokenizer.split(text)]
    if isinstance(tokenizer, CharTokenizer):
        return [(c, c not in tokenizer.char_to_id) for c in text]
    if isinstance(tokenizer, BPETokenizer):
        return [(piece, False) for piece in tokenizer.tokens(text)]  # bytes: nothing is ever unknown
    raise TypeError(f"tokenizer must be a WordTokenizer, CharTokenizer or BPETokenizer, got "
                    f"{type(tokenizer).__name__}")


def unknown_rate(tokenizer, text: str) -> float:
    """The share of ``text``'s tokens that ``tokenizer`` cannot represent (the out-of-vocabulary rate):
    words that become ``<unk>``, characters outside a ``CharTokenizer``'s vocabulary; always 0 for
    byte-level BPE. 0.0 for a text without tokens.

    >>> unknown_rate(WordTokenizer(["the", "cat"]), "the cat saw the dog")
    0.4
    """
    flags = _unknown_flags(text, tokenizer)
    return sum(unknown for _, unknown in flags) / len(flags) if flags else 0.0


def compare_tokenizers(text: str, tokenizers: dict[str, object]) -> dict[str, list[tuple[str, bool]]]:
    """For each named tokenizer, the pieces of ``text`` and whether each is unknown (what Lecture 4's
    out-of-vocabulary widget draws).

    >>> compare_tokenizers("the cats", {"word": WordTokenizer(["the", "cat"])})
    {'word': [('the', False), ('cats', True)]}
    """
    return {name: _unknown_flags(text, tok) for name, tok in tokenizers.items()}
