"""The course's data: a seeded "tiny world" of simple sentences, and the course's own English text.

The tiny world
--------------
Every sentence follows one grammar and has exactly 9 words (the final "." counts as a word)::

    the <agent> <verb> the <object> <ending> .
     0     1      2     3     4     5  6  7  8      <- word positions

    e.g.  "the cat chased the mouse across the garden ."

- ``<agent>`` is any of ``AGENTS``;
- ``<verb>`` is any key of ``VERBS``;
- ``<object>`` must be one the verb allows (``VERBS[verb].objects``): cats chase mice, not apples;
- ``<ending>`` is a 3-word phrase the verb selects (``VERBS[verb].endings``), the way a verb selects its
  complement. The first ending word (position ``ending_position() == 5``) is therefore determined by the
  verb alone: the first words of different verbs' endings are disjoint ("across/around" only follow
  "chased", "at/in" only follow "ate", ...). Several objects are shared between verbs ("ball", "bird",
  ...), so the object does not give the ending away: a model has to look back at the verb, 3 words earlier.
  That long-ish dependency is what the attention (Q2) and fine-tuning (Q4, Q5) sections look at.

Choices are uniform: agent, verb, object among the verb's objects, ending among the verb's endings.

The "shifted" dialect is a new task for fine-tuning: each verb takes the endings of the NEXT verb in
``VERBS`` order (cyclically; the last verb takes the first verb's endings). Everything else is unchanged,
and for the same seed the two dialects produce the same sentences except for their endings.

>>> tiny_world_sentences(2, seed=0)[0].split()[0], len(tiny_world_sentences(2, seed=0)[0].split())
('the', 9)

The course text
---------------
``course_text()`` returns ``course_text.txt`` (shipped with the package): about 2,000 words of the
course's own prose on how language models work, used to train tokenizers. It contains some non-ASCII
text (naïve, café, α, an em dash) so that byte-level tokenization matters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

__all__ = [
    "VerbSpec",
    "AGENTS",
    "VERBS",
    "DIALECTS",
    "dialect_endings",
    "tiny_world_sentences",
    "tiny_world_vocabulary",
    "ending_position",
    "course_text",
]


@dataclass(frozen=True)
class VerbSpec:
    """What a verb allows: the objects it takes and the 3-word endings it selects."""

    objects: tuple[str, ...]
    endings: tuple[str, ...]


# Who does things: position 1 of every sentence.
AGENTS: tuple[str, ...] = ("cat", "dog", "girl", "boy", "fox", "owl")

# Each verb's objects and endings. Endings' first words are disjoint across verbs; objects overlap on
# purpose (so the ending depends on the verb, not the object). The order matters: it defines the
# "shifted" dialect. Every verb has the same number of endings, so both dialects draw the same numbers.
VERBS: dict[str, VerbSpec] = {
    "chased": VerbSpec(("mouse", "ball", "bird", "rabbit"), ("across the garden", "around the tree")),
    "ate": VerbSpec(("apple", "cake", "fish", "bread"), ("at the table", "in the kitchen")),
    "found": VerbSpec(("key", "ball", "hat", "coin"), ("under the bed", "behind the door")),
    "watched": VerbSpec(("bird", "moon", "rabbit", "fish"), ("from the window", "through the fence")),
    "carried": VerbSpec(("box", "hat", "basket", "key"), ("to the house", "into the barn")),
}

DIALECTS: tuple[str, ...] = ("standard", "shifted")


def dialect_endings(dialect: str = "standard") -> dict[str, tuple[str, ...]]:
    """The endings each verb selects in ``dialect``.

    >>> dialect_endings("shifted")["chased"] == VERBS["ate"].endings
    True
    """
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
    verbs = list(VERBS)
    if dialect == "standard":
        return {verb: VERBS[verb].endings for verb in verbs}
    # shifted: verb i takes the endings of verb i + 1 (cyclic)
    return {verb: VERBS[verbs[(i + 1) % len(verbs)]].endings for i, verb in enumerate(verbs)}


def tiny_world_sentences(n: int, seed: int = 0, dialect: str = "standard") -> list[str]:
    """``n`` random tiny-world sentences (see the module docstring for the grammar), reproducible by seed.

    >>> s = tiny_world_sentences(3, seed=1)
    >>> s == tiny_world_sentences(3, seed=1), all(len(x.split()) == 9 for x in s)
    (True, True)
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1 (the number of sentences), got {n}")
    endings = dialect_endings(dialect)
    rng = random.Random(seed)  # private generator: never touches the global random state
    verbs = list(VERBS)
    sentences = []
    for _ in range(n):
        agent = rng.choice(AGENTS)
        verb = rng.choice(verbs)
        obj = rng.choice(VERBS[verb].objects)
        ending = rng.choice(endings[verb])
        sentences.append(f"the {agent} {verb} the {obj} {ending} .")
    return sentences


def tiny_world_vocabulary() -> list[str]:
    """Every word either dialect can produce (including "the" and "."), sorted.

    >>> vocab = tiny_world_vocabulary()
    >>> vocab[0], "chased" in vocab, "garden" in vocab
    ('.', True, True)
    """
    words = {"the", "."} | set(AGENTS) | set(VERBS)
    for spec in VERBS.values():
        words.update(spec.objects)
        for ending in spec.endings:
            words.update(ending.split())
    return sorted(words)


def ending_position() -> int:
    """Index (0-based, in words) of the first ending word: the word the verb selects.

    >>> "the cat chased the mouse across the garden .".split()[ending_position()]
    'across'
    """
    return 5


@lru_cache(maxsize=1)
def course_text() -> str:
    """The course's own prose about language models (about 2,000 words), for training tokenizers.

    >>> "tokenization" in course_text()
    True
    """
    return files("utils").joinpath("course_text.txt").read_text(encoding="utf-8")
