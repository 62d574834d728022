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

Choices are uniform by default: agent, verb, object among the verb's objects, ending among the verb's
endings. With ``weighted=True`` they follow ``WORLD_WEIGHTS`` instead, a skewed world built for the
decoding lectures: "chased" is the most common verb, but it spreads its probability over four objects,
while "ate" is nearly always followed by "the apple at the table". So the word-by-word greedy choice
("chased") does not lead to the most probable sentence ("the cat ate the apple at the table ."), and
``sentence_probability`` / ``next_word_probabilities`` give the exact numbers to check a model against.

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
    "WORLD_WEIGHTS",
    "tiny_world_sentences",
    "all_tiny_world_sentences",
    "sentence_probability",
    "next_word_probabilities",
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

# The skewed world (``weighted=True``). Each tuple lines up with AGENTS, VERBS, a verb's objects, or the
# endings the verb takes in the chosen dialect (first ending, second ending); each sums to 1.
WORLD_WEIGHTS: dict[str, object] = {
    "agents": (0.30, 0.25, 0.15, 0.12, 0.10, 0.08),
    "verbs": (0.34, 0.26, 0.16, 0.14, 0.10),
    "objects": {
        "chased": (0.30, 0.25, 0.25, 0.20),
        "ate": (0.85, 0.05, 0.05, 0.05),
        "found": (0.40, 0.30, 0.20, 0.10),
        "watched": (0.40, 0.30, 0.20, 0.10),
        "carried": (0.40, 0.30, 0.20, 0.10),
    },
    "endings": {"chased": (0.6, 0.4), "ate": (0.9, 0.1), "found": (0.7, 0.3), "watched": (0.6, 0.4),
                "carried": (0.7, 0.3)},
}


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


def _choices(
    verb: str | None, slot: str, weighted: bool, dialect: str
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The options for one slot of the grammar and their probabilities (uniform unless ``weighted``)."""
    if slot == "agents":
        options = AGENTS
    elif slot == "verbs":
        options = tuple(VERBS)
    elif slot == "objects":
        options = VERBS[verb].objects
    else:
        options = dialect_endings(dialect)[verb]
    if not weighted:
        return options, tuple(1.0 / len(options) for _ in options)
    table = WORLD_WEIGHTS[slot]
    return options, tuple(table[verb] if verb is not None else table)


def tiny_world_sentences(
    n: int, seed: int = 0, dialect: str = "standard", weighted: bool = False
) -> list[str]:
    """``n`` random tiny-world sentences (see the module docstring for the grammar), reproducible by seed.

    ``weighted=True`` draws every choice from ``WORLD_WEIGHTS`` instead of uniformly.

    >>> s = tiny_world_sentences(3, seed=1)
    >>> s == tiny_world_sentences(3, seed=1), all(len(x.split()) == 9 for x in s)
    (True, True)
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1 (the number of sentences), got {n}")
    if not isinstance(weighted, bool):
        raise TypeError(f"weighted must be a bool, got {type(weighted).__name__}")
    endings = dialect_endings(dialect)
    rng = random.Random(seed)  # private generator: never touches the global random state
    verbs = list(VERBS)
    sentences = []
    if not weighted:  # the uniform world: kept draw for draw as Lecture 1 was written
        for _ in range(n):
            agent = rng.choice(AGENTS)
            verb = rng.choice(verbs)
            obj = rng.choice(VERBS[verb].objects)
            ending = rng.choice(endings[verb])
            sentences.append(f"the {agent} {verb} the {obj} {ending} .")
        return sentences
    for _ in range(n):
        agent = rng.choices(*_choices(None, "agents", True, dialect))[0]
        verb = rng.choices(*_choices(None, "verbs", True, dialect))[0]
        obj = rng.choices(*_choices(verb, "objects", True, dialect))[0]
        ending = rng.choices(*_choices(verb, "endings", True, dialect))[0]
        sentences.append(f"the {agent} {verb} the {obj} {ending} .")
    return sentences


def all_tiny_world_sentences(dialect: str = "standard") -> list[str]:
    """Every grammatical sentence of the tiny world in ``dialect`` (6 agents x 5 verbs x 4 objects x 2
    endings = 240), in a fixed order.

    >>> sentences = all_tiny_world_sentences()
    >>> len(sentences), sentences[0]
    (240, 'the cat chased the mouse across the garden .')
    """
    endings = dialect_endings(dialect)
    return [f"the {agent} {verb} the {obj} {ending} ."
            for agent in AGENTS for verb in VERBS for obj in VERBS[verb].objects for ending in endings[verb]]


def _parse(words: list[str], dialect: str) -> tuple[str | None, str | None, str | None, str | None]:
    """Split a (partial) sentence's words into (agent, verb, object, ending); None where not reached yet.
    Raises ValueError at the first word the grammar does not allow."""
    template = ["the", "agent", "verb", "the", "object", "ending", "ending", "ending", "."]
    if len(words) > len(template):
        raise ValueError(f"a tiny-world sentence has {len(template)} words, got {len(words)}: {words}")
    agent = verb = obj = None
    for i, word in enumerate(words):
        slot = template[i]
        if slot in ("the", "."):
            ok = word == slot
        elif slot == "agent":
            ok, agent = word in AGENTS, word
        elif slot == "verb":
            ok, verb = word in VERBS, word
        elif slot == "object":
            ok, obj = word in VERBS[verb].objects, word
        else:
            continue  # the ending is checked as a whole below
        if not ok:
            raise ValueError(f"word {i} ({word!r}) does not fit the tiny-world grammar after {words[:i]}")
    ending = " ".join(words[5:8]) if len(words) > 5 else None
    if ending is not None and not any(e.startswith(ending) for e in dialect_endings(dialect)[verb]):
        raise ValueError(f"{ending!r} does not start an ending that {verb!r} takes in the {dialect} dialect")
    return agent, verb, obj, ending


def sentence_probability(sentence: str, weighted: bool = False, dialect: str = "standard") -> float:
    """The exact probability that ``tiny_world_sentences`` produces ``sentence`` (0.0 if ungrammatical).

    >>> sentence_probability("the cat chased the mouse across the garden .")   # 1/6 * 1/5 * 1/4 * 1/2
    0.004166666666666667
    >>> round(sentence_probability("the cat ate the apple at the table .", weighted=True), 5)
    0.05967
    """
    words = sentence.split()
    try:
        agent, verb, obj, ending = _parse(words, dialect)
    except ValueError:
        return 0.0
    if len(words) != 9 or ending not in dialect_endings(dialect)[verb]:
        return 0.0
    probability = 1.0
    for slot, key, value in (("agents", None, agent), ("verbs", None, verb), ("objects", verb, obj),
                             ("endings", verb, ending)):
        options, probs = _choices(key, slot, weighted, dialect)
        probability *= probs[options.index(value)]
    return probability


def next_word_probabilities(
    prefix: str, weighted: bool = False, dialect: str = "standard"
) -> dict[str, float]:
    """The exact distribution of the next word after ``prefix``, the first 0 to 8 words of a sentence.

    >>> next_word_probabilities("the cat", weighted=True)["chased"]
    0.34
    >>> next_word_probabilities("the cat ate the apple")
    {'at': 0.5, 'in': 0.5}
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str of words, got {type(prefix).__name__}")
    words = prefix.split()
    if len(words) > 8:
        raise ValueError(f"prefix must be 0 to 8 words of a sentence (the 9th is '.'), "
                         f"got {len(words)} words")
    agent, verb, obj, ending = _parse(words, dialect)
    position = len(words)
    if position in (0, 3):
        return {"the": 1.0}
    if position == 8:
        return {".": 1.0}
    slots = {1: ("agents", None), 2: ("verbs", None), 4: ("objects", verb)}
    slot, key = slots.get(position, ("endings", verb))
    options, probs = _choices(key, slot, weighted, dialect)
    if slot != "endings":
        return dict(zip(options, probs, strict=True))
    result: dict[str, float] = {}
    for option, p in zip(options, probs, strict=True):
        done, parts = words[5:], option.split()  # the next word of an ending that starts as written
        if parts[: len(done)] != done:
            continue
        option = parts[len(done)]
        result[option] = result.get(option, 0.0) + p
    total = sum(result.values())  # condition on the ending chosen so far
    return result if total == 1.0 else {word: p / total for word, p in result.items()}


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
