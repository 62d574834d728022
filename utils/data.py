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

import json
import math
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import torch

from ._validation import check_positive_int
from .knowledge import Triple

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
    "course_notes",
    "notebook_prose",
    "number_to_words",
    "number_words",
    "spelled_number_pairs",
    "story_continues",
    "tiny_world_stories",
    "nsp_pairs",
    "NSP_SPECIALS",
    "nsp_input",
    "REVIEW_LABELS",
    "REVIEW_OPINION_AGREES",
    "REVIEW_CLICHE_AGREES",
    "REVIEW_ASPECTS",
    "REVIEW_ADJECTIVES",
    "REVIEW_CLICHES",
    "Review",
    "reviews",
    "review_vocabulary",
    "review_log_odds",
    "RecallTask",


    # Lecture 9
    "REVIEW_VERDICT_PROMPT", "REVIEW_VERDICT_WORDS", "reviews_with_verdicts", "OCCUPATIONS",
    "NEUTRAL_OCCUPATIONS", "GENDER_WORDS", "gender_swap", "occupation_sentences", "occupation_vocabulary",
    "zipf_corpus", "zipf_probabilities", "mapping_sequences",


    # Lecture 5
    "tiny_world_entropy",
    "ROLE_ADJECTIVES",
    "ROLE_VERBS",
    "ROLE_TEST_PAIRS",
    "role_sentences",
    "swap_roles",
    "role_vocabulary",


    # Lecture 7
    "two_moons", "SHAPE_NAMES", "COLOUR_NAMES", "COLOUR_RGB", "COLUMN_NAMES", "BACKGROUND_RGB", "GRID_SIZE",
    "CELL_SIZE", "QUESTION_KINDS", "ShapeObject", "shape_mask", "render_scene", "random_scene",
    "random_scenes", "PictureQuestion", "ask", "picture_questions", "picture_answers", "picture_vocabulary",
    "scene_caption",
    # Lecture 8
    "KB_PEOPLE", "KB_CITIES", "KB_COUNTRIES", "KB_COMPANIES", "KB_JOBS", "KB_RELATIONS",
    "KB_PASSAGE_TEMPLATES", "KB_QUESTION_TEMPLATES", "knowledge_world", "fact_passage", "fact_question",
    "knowledge_vocabulary", "ReadingExample", "reading_examples", "kb_popularity", "CHAIN_OPERATIONS",
    "ChainProblem", "arithmetic_chains", "chain_vocabulary", "dialect_examples", "mixture_tasks",


    # Lecture 10
    "AGREEMENT_NOUNS", "AGREEMENT_PLACES", "AGREEMENT_ADJECTIVES", "AGREEMENT_VERB_POSITION",
    "agreement_sentences", "agreement_vocabulary", "pin_sentence", "pin_corpus", "pin_vocabulary",
    "power_law_markov_chain", "markov_sequences",
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
def course_notes() -> str:
    """The prose of the course's first three lectures (the Markdown cells of ``solutions/01`` to ``03``),
    about 120,000 characters, shipped as ``course_notes.txt``: ten times ``course_text()``, for training
    tokenizers on more text (Lecture 4). A snapshot, made by ``python -m utils.data`` (``notebook_prose``);
    it does not change when the notebooks do, so results computed from it stay put.

    >>> notes = course_notes()
    >>> len(notes) > 100_000, "Lecture 1" in notes, "<a id=" in notes
    (True, True, False)
    """
    return files("utils").joinpath("course_notes.txt").read_text(encoding="utf-8")


_ANCHOR = re.compile(r"\s*<a id=\"[^\"]*\"></a>")


def notebook_prose(paths: Sequence[str | os.PathLike]) -> str:
    """The Markdown cells of the notebooks at ``paths``, in order, without HTML anchors, joined by blank
    lines (what ``course_notes.txt`` is made of)."""
    cells = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            notebook = json.load(f)
        for cell in notebook["cells"]:
            if cell["cell_type"] == "markdown":
                source = "".join(cell["source"])
                cells.append(_ANCHOR.sub("", source).strip())
    return "\n\n".join(c for c in cells if c) + "\n"


@lru_cache(maxsize=1)
def course_text() -> str:
    """The course's own prose about language models (about 2,000 words), for training tokenizers.

    >>> "tokenization" in course_text()
    True
    """
    return files("utils").joinpath("course_text.txt").read_text(encoding="utf-8")



# --- Spelled-out numbers (Lecture 2, Q9: a sequence-to-sequence task) ------------------------------------

_ONES: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                          "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                          "seventeen", "eighteen", "nineteen")
_TENS: tuple[str, ...] = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                          "ninety")


def number_to_words(n: int) -> str:
    """``n`` in 0..999 spelled out in English words, without "and" or hyphens.

    >>> number_to_words(342), number_to_words(15), number_to_words(700), number_to_words(0)
    ('three hundred forty two', 'fifteen', 'seven hundred', 'zero')
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if not 0 <= n <= 999:
        raise ValueError(f"n must be in 0..999, got {n}")
    if n == 0:
        return "zero"
    hundreds, rest = divmod(n, 100)
    words = [_ONES[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        tens, units = divmod(rest, 10)
        words += [_TENS[tens]] + ([_ONES[units]] if units else [])
    elif rest:
        words.append(_ONES[rest])  # 1..19 have their own words ("fifteen", not "ten five")
    return " ".join(words)


def number_words() -> list[str]:
    """The 29 words ``number_to_words`` uses: zero..nineteen, twenty..ninety, hundred (in that order).

    >>> words = number_words()
    >>> len(words), words[:3], words[-2:]
    (29, ['zero', 'one', 'two'], ['ninety', 'hundred'])
    """
    return [*_ONES, *_TENS[2:], "hundred"]


def spelled_number_pairs(n: int, seed: int = 0, max_value: int = 999) -> list[tuple[str, str]]:
    """``n`` DISTINCT numbers from 0..``max_value`` in a seeded random order, each as (words, digits).

    The digits are space-separated, so a word-level tokenizer sees one token per digit. Source and
    target lengths differ ("fifteen" -> "1 5", "seven hundred" -> "7 0 0"). The numbers are distinct, so
    slicing the list (``pairs[:800]``, ``pairs[800:]``) gives disjoint train and test sets: a test
    number is never seen in training.

    >>> spelled_number_pairs(2, seed=0)
    [('eight hundred sixty four', '8 6 4'), ('three hundred ninety four', '3 9 4')]
    >>> sorted(spelled_number_pairs(3, max_value=2))
    [('one', '1'), ('two', '2'), ('zero', '0')]
    """
    check_positive_int("n", n)
    if isinstance(max_value, bool) or not isinstance(max_value, int):
        raise TypeError(f"max_value must be an int, got {type(max_value).__name__}")
    if not 0 <= max_value <= 999:
        raise ValueError(f"max_value must be in 0..999, got {max_value}")
    if n > max_value + 1:
        raise ValueError(f"n must be <= max_value + 1 = {max_value + 1} (the numbers are distinct), got {n}")
    numbers = random.Random(seed).sample(range(max_value + 1), n)  # without replacement
    return [(number_to_words(x), " ".join(str(x))) for x in numbers]


# --- Two-sentence stories (Lecture 3, Q11: next sentence prediction) ---------------------------------------
# A story is two tiny-world sentences about the same thing: "the cat chased the ball around the tree ."
# then "the girl found the ball under the bed .". Next sentence prediction (NSP) pairs a story's first
# sentence with its real second one (IsNext) or with a random sentence (NotNext).

def _parse_sentence(sentence: str) -> tuple[str, str, str]:
    """(agent, verb, object) of a tiny-world sentence (standard dialect), or ValueError."""
    words = sentence.split() if isinstance(sentence, str) else []
    if (len(words) != 9 or words[1] not in AGENTS or words[2] not in VERBS
            or words[4] not in VERBS[words[2]].objects):
        raise ValueError(f"expected a tiny-world sentence 'the <agent> <verb> the <object> <ending> .', "
                         f"got {sentence!r}")
    return words[1], words[2], words[4]


def _random_sentence(rng: random.Random, obj: str | None = None) -> str:
    """A uniform tiny-world sentence; with ``obj``, uniform among the sentences about that object."""
    verbs = [verb for verb, spec in VERBS.items() if obj is None or obj in spec.objects]
    agent, verb = rng.choice(AGENTS), rng.choice(verbs)
    obj = obj if obj is not None else rng.choice(VERBS[verb].objects)
    return f"the {agent} {verb} the {obj} {rng.choice(VERBS[verb].endings)} ."


def story_continues(a: str, b: str) -> bool:
    """Whether sentence ``b`` can follow sentence ``a`` in a tiny-world story: it is about the same thing
    (the same object). Who does what to it is free.

    >>> a = "the cat chased the ball around the tree ."
    >>> story_continues(a, "the girl found the ball under the bed .")
    True
    >>> story_continues(a, "the girl found the key under the bed .")
    False
    """
    return _parse_sentence(a)[2] == _parse_sentence(b)[2]


def _story(rng: random.Random) -> tuple[str, str]:
    a = _random_sentence(rng)
    return a, _random_sentence(rng, obj=_parse_sentence(a)[2])


def tiny_world_stories(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` two-sentence stories ``(A, B)``: A is a uniform tiny-world sentence (standard dialect); B is
    a uniform sentence about A's object (any agent, any verb that takes that object, any of its endings).

    Every sentence is equally likely as A and as B (B's object is as frequent as A's, and B's verb is
    uniform among the verbs of that object), so B ALONE says nothing about whether it follows A: only the
    pair does.

    >>> a, b = tiny_world_stories(1, seed=3)[0]
    >>> story_continues(a, b)
    True
    """
    check_positive_int("n", n)
    rng = random.Random(seed)
    return [_story(rng) for _ in range(n)]


def nsp_pairs(n: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """``n`` next-sentence-prediction examples ``(A, B, label)`` as BERT builds them (Devlin et al. 2019):
    A is the first sentence of a story; half of the time (a fair coin) B is its real second sentence,
    ``label = 1`` (IsNext), otherwise B is a random sentence, ``label = 0`` (NotNext).

    A random B is about A's object with probability 2/25 (``sum_o p(o)^2`` over the objects: six
    objects belong to two verbs, p = 1/10, eight to one, p = 1/20), so that many NotNext pairs happen to
    read like a story (``story_continues``) and nothing can tell them apart: the best possible accuracy
    is 1 - 1/25 = 0.96.

    >>> [label for _, _, label in nsp_pairs(6, seed=0)]
    [0, 1, 1, 0, 1, 1]
    """
    check_positive_int("n", n)
    rng = random.Random(seed)  # one generator for stories, coins and random sentences: no correlations
    pairs = []
    for _ in range(n):
        a, b = _story(rng)
        pairs.append((a, b, 1) if rng.random() < 0.5 else (a, _random_sentence(rng), 0))
    return pairs


NSP_SPECIALS: tuple[str, str] = ("[CLS]", "[SEP]")


def nsp_input(a: str, b: str) -> tuple[list[str], list[int]]:
    """BERT's input for a sentence pair: ``[CLS] A [SEP] B [SEP]`` as words, and the segment id of each
    (0 for ``[CLS]``, A and the first ``[SEP]``; 1 for B and the last ``[SEP]``).

    >>> nsp_input("the cat ran", "it ate")
    (['[CLS]', 'the', 'cat', 'ran', '[SEP]', 'it', 'ate', '[SEP]'], [0, 0, 0, 0, 0, 1, 1, 1])
    """
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str (a sentence), got {type(value).__name__}")
        if not value.split():
            raise ValueError(f"{name} must contain at least one word, got {value!r}")
    first = ["[CLS]", *a.split(), "[SEP]"]
    second = [*b.split(), "[SEP]"]
    return first + second, [0] * len(first) + [1] * len(second)


# --- Film reviews (Lecture 4, Q19: generative vs discriminative classifiers; Lecture 9: zero-shot) --------
# A review is a few short sentences about a film, with a verdict (negative / positive) drawn first:
#   - 1 to 3 OPINIONS, "the <aspect> was <adjective> .": the adjective comes from the verdict's list
#     with probability REVIEW_OPINION_AGREES (0.85), otherwise from the other list;
#   - 1 or 2 CLICHÉS, fixed phrases of 7 or 8 words ("worth every single minute of your evening ."),
#     from the verdict's list with probability REVIEW_CLICHE_AGREES (0.65): people use them loosely;
#   - 2 to 4 NEUTRAL sentences (when and with whom it was seen, where it is set, how long it runs);
# in a random order. Given the verdict, the sentences are independent, so the exact posterior
# p(positive | review) is known (``review_log_odds``): the best any classifier can do.
# The clichés are what naive Bayes gets wrong: it treats each of a cliché's 7 or 8 words as separate
# evidence and so counts a weak cliché 7 or 8 times, more than a strong opinion; logistic regression
# learns the weight of the words together.

REVIEW_LABELS: tuple[str, str] = ("negative", "positive")
REVIEW_OPINION_AGREES = 0.85
REVIEW_CLICHE_AGREES = 0.65
REVIEW_ASPECTS: tuple[str, ...] = ("plot", "acting", "music", "ending", "dialogue", "pacing", "cast",
                                   "script", "story", "humour", "camera", "soundtrack")
# (negative adjectives, positive adjectives): index = label
REVIEW_ADJECTIVES: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("dull", "boring", "awful", "weak", "clumsy", "silly", "slow", "predictable", "bland", "confusing",
     "flat", "lazy", "messy", "painful", "poor", "shallow", "tedious", "terrible", "forgettable", "stiff"),
    ("great", "wonderful", "brilliant", "moving", "clever", "funny", "beautiful", "gripping", "superb",
     "charming", "fresh", "delightful", "powerful", "smart", "stunning", "touching", "witty", "excellent",
     "lovely", "perfect"),
)
REVIEW_CLICHES: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("a complete waste of two precious hours", "save your money and stay at home tonight",
     "i want my evening back right now please"),
    ("a must see for everyone who loves cinema", "worth every single minute of your evening",
     "i would gladly watch it again tomorrow night"),
)
_REVIEW_WHEN = ("on sunday", "last night", "on a rainy evening", "at the festival", "on the plane",
                "after work", "on monday", "on friday", "in december", "in the summer", "at midnight",
                "yesterday")
_REVIEW_WHO = ("my sister", "my brother", "a friend", "my parents", "the kids", "my neighbour",
               "colleagues", "my uncle", "my aunt", "my cousin", "my grandmother", "my flatmate")
_REVIEW_PLACES = ("paris", "a small town", "the desert", "space", "a school", "the sea", "tokyo", "a farm",
                  "rome", "london", "a castle", "a hospital", "the jungle", "a submarine", "new york",
                  "a lighthouse")
_REVIEW_LENGTHS = ("two hours", "ninety minutes", "three hours", "almost two hours")


@dataclass(frozen=True)
class Review:
    """One generated film review: its ``text`` (lower case, words and "." separated by spaces) and its
    ``label`` (0 = negative, 1 = positive); ``verdict`` is the label's name."""

    text: str
    label: int

    @property
    def verdict(self) -> str:
        return REVIEW_LABELS[self.label]


def _neutral_sentence(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"i saw it {rng.choice(_REVIEW_WHEN)} with {rng.choice(_REVIEW_WHO)} ."
    if kind == 1:
        return f"it is set in {rng.choice(_REVIEW_PLACES)} ."
    return f"it runs for {rng.choice(_REVIEW_LENGTHS)} ."


def _review(rng: random.Random) -> Review:
    label = rng.randrange(2)
    sentences = []
    for _ in range(rng.randint(1, 3)):
        side = label if rng.random() < REVIEW_OPINION_AGREES else 1 - label
        sentences.append(f"the {rng.choice(REVIEW_ASPECTS)} was {rng.choice(REVIEW_ADJECTIVES[side])} .")
    for _ in range(rng.randint(1, 2)):
        side = label if rng.random() < REVIEW_CLICHE_AGREES else 1 - label
        sentences.append(f"{rng.choice(REVIEW_CLICHES[side])} .")
    sentences += [_neutral_sentence(rng) for _ in range(rng.randint(2, 4))]
    rng.shuffle(sentences)
    return Review(" ".join(sentences), label)


def reviews(n: int, seed: int = 0) -> list[Review]:
    """``n`` generated film reviews (seeded), each with its verdict; half positive on average.

    See the comment above ``REVIEW_LABELS`` for how a review is written: opinions that agree with the
    verdict 85 % of the time, clichés that agree 65 % of the time, and neutral sentences.

    >>> r = reviews(1, seed=2)[0]
    >>> r.verdict, r.text.split(" . ")[:2]
    ('negative', ['the music was confusing', 'i want my evening back right now please'])
    """
    check_positive_int("n", n)
    rng = random.Random(seed)
    return [_review(rng) for _ in range(n)]


def review_vocabulary() -> list[str]:
    """Every word a generated review can contain (sorted), "." included: a word-level vocabulary.

    >>> words = review_vocabulary()
    >>> len(words), "brilliant" in words, "." in words
    (150, True, True)
    """
    texts = [f"the {a} was {adj} ." for a in REVIEW_ASPECTS for side in REVIEW_ADJECTIVES for adj in side]
    texts += [c for side in REVIEW_CLICHES for c in side]
    texts += [f"i saw it {when} with {who} ." for when in _REVIEW_WHEN for who in _REVIEW_WHO]
    texts += [f"it is set in {p} ." for p in _REVIEW_PLACES] + [f"it runs for {x} ." for x in _REVIEW_LENGTHS]
    return sorted({word for text in texts for word in text.split()})


def review_log_odds(text: str) -> float:
    """The exact ``log p(positive | text) / p(negative | text)`` under the review generator.

    Each opinion with a positive adjective adds ``log(0.85 / 0.15)``, with a negative one subtracts it;
    each cliché adds or subtracts ``log(0.65 / 0.35)``; neutral sentences add nothing (the verdict's
    prior is even). Predicting "positive" when this is > 0 is the best possible classifier.

    >>> round(review_log_odds("the plot was great . a must see for everyone who loves cinema ."), 3)
    2.354
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str (a review), got {type(text).__name__}")
    opinion = math.log(REVIEW_OPINION_AGREES / (1 - REVIEW_OPINION_AGREES))
    cliche = math.log(REVIEW_CLICHE_AGREES / (1 - REVIEW_CLICHE_AGREES))
    log_odds = 0.0
    for sentence in (s.strip() for s in text.split(" .")):
        words = sentence.split()
        if len(words) == 4 and words[0] == "the" and words[2] == "was":
            for side in (0, 1):
                if words[3] in REVIEW_ADJECTIVES[side]:
                    log_odds += opinion if side == 1 else -opinion
        for side in (0, 1):
            if sentence in REVIEW_CLICHES[side]:
                log_odds += cliche if side == 1 else -cliche
    return log_odds


# Lecture 9 (Q41, zero-shot classification): reviews as they are found in unlabeled text, ending in the
# reviewer's own verdict in words, "overall it was good ." No label is stored anywhere; a language model
# trained on such text learns which verdict words follow which reviews, and that is all it needs.
REVIEW_VERDICT_PROMPT = "overall it was"
REVIEW_VERDICT_WORDS: tuple[tuple[str, ...], tuple[str, ...]] = (("bad", "disappointing", "unwatchable"),
                                                                  ("good", "enjoyable", "unmissable"))


def reviews_with_verdicts(n: int, seed: int = 0) -> list[Review]:
    """``reviews(n, seed)``, each text followed by the reviewer's verdict in words:
    ``"<review> overall it was <word> ."``, the word drawn uniformly from ``REVIEW_VERDICT_WORDS[label]``
    (a second seeded stream, so the reviews themselves are exactly those of ``reviews(n, seed)``).

    >>> r = reviews_with_verdicts(1, seed=2)[0]
    >>> r.text.startswith(reviews(1, seed=2)[0].text), r.text.split()[-4:]
    (True, ['it', 'was', 'unwatchable', '.'])
    """
    rng = random.Random(seed + 7919)  # the verdict words' own stream
    return [Review(f"{r.text} {REVIEW_VERDICT_PROMPT} {rng.choice(REVIEW_VERDICT_WORDS[r.label])} .", r.label)
            for r in reviews(n, seed)]


# --- Lecture 9 (Q45): a bias planted in a generated corpus ----------------------------------------------
# Sentences about people at work, "the nurse said that she liked her work .", in which the pronoun
# follows the occupation's stereotype with probability ``bias`` (the occupations of OCCUPATIONS[0] take
# "he", those of OCCUPATIONS[1] "she"), while the NEUTRAL_OCCUPATIONS take either half the time. Gendered
# nouns ("the woman said that she ...") always agree with their pronoun. A model trained on it learns the
# stereotype as a fact about the language; ``gender_swap`` writes the counterfactual of a sentence.
OCCUPATIONS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("engineer", "pilot", "mechanic", "builder", "plumber"),
    ("nurse", "dancer", "librarian", "nanny", "secretary"),
)
NEUTRAL_OCCUPATIONS: tuple[str, ...] = ("doctor", "teacher", "lawyer", "writer", "chef")
GENDER_WORDS: tuple[tuple[str, ...], tuple[str, ...]] = (("he", "his", "man", "boy", "father"),
                                                         ("she", "her", "woman", "girl", "mother"))
_GENDER_SWAP = {a: b for pair in zip(*GENDER_WORDS, strict=True) for a, b in (pair, pair[::-1])}
_WORK_VERBS = ("liked", "loved", "finished", "left", "praised", "changed")
_WORK_NOUNS = ("work", "job", "team", "office", "shift", "boss")


def gender_swap(sentence: str) -> str:
    """The counterfactual sentence: every gendered word of ``GENDER_WORDS`` exchanged for its partner
    (he <-> she, his <-> her, man <-> woman, ...), everything else unchanged (Lu et al. 2018's counterfactual
    data augmentation; Zhao et al. 2018).

    >>> gender_swap("the nurse said that she liked her work .")
    'the nurse said that he liked his work .'
    """
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a str, got {type(sentence).__name__}")
    return " ".join(_GENDER_SWAP.get(word, word) for word in sentence.split(" "))


def occupation_sentences(n: int, seed: int = 0, bias: float = 0.9, noun_share: float = 0.3) -> list[str]:
    """``n`` sentences ``"the <person> said that <pronoun> <verb> <possessive> <noun> ."`` (seeded).

    With probability ``noun_share`` the person is a gendered noun (man, woman, boy, girl, father, mother)
    and the pronoun agrees with it; otherwise it is an occupation, uniform over ``OCCUPATIONS`` (both
    stereotyped lists) and ``NEUTRAL_OCCUPATIONS``, and the pronoun is the stereotyped one with probability
    ``bias`` (a neutral occupation: "he" or "she" half the time each). ``bias=0.5`` writes a balanced
    corpus. The possessive always agrees with the pronoun.

    >>> occupation_sentences(2, seed=1)
    ['the boy said that he liked his office .', 'the librarian said that she loved her work .']
    """
    check_positive_int("n", n)
    if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not 0.0 <= bias <= 1.0:
        raise ValueError(f"bias must be a number in [0, 1], got {bias!r}")
    if isinstance(noun_share, bool) or not isinstance(noun_share, (int, float)) or not 0 <= noun_share <= 1:
        raise ValueError(f"noun_share must be a number in [0, 1], got {noun_share!r}")
    rng = random.Random(seed)
    people = [(occ, side) for side in (0, 1) for occ in OCCUPATIONS[side]] + [(occ, None) for occ in
                                                                               NEUTRAL_OCCUPATIONS]
    out = []
    for _ in range(n):
        if rng.random() < noun_share:
            gender = rng.randrange(2)
            person = rng.choice(GENDER_WORDS[gender][2:])
        else:
            person, side = rng.choice(people)
            p_stereotype = 0.5 if side is None else bias
            gender = (side if side is not None else 0) if rng.random() < p_stereotype else \
                (1 - side if side is not None else 1)
        pronoun, possessive = GENDER_WORDS[gender][:2]
        out.append(f"the {person} said that {pronoun} {rng.choice(_WORK_VERBS)} {possessive} "
                   f"{rng.choice(_WORK_NOUNS)} .")
    return out


def occupation_vocabulary() -> list[str]:
    """Every word of ``occupation_sentences`` (sorted), "." included.

    >>> len(occupation_vocabulary()), "nurse" in occupation_vocabulary()
    (41, True)
    """
    words = {"the", "said", "that", ".", *_WORK_VERBS, *_WORK_NOUNS, *NEUTRAL_OCCUPATIONS}
    words |= {w for side in OCCUPATIONS for w in side} | {w for side in GENDER_WORDS for w in side}
    return sorted(words)


# --- Lecture 9 (Q44): few-shot examples of a mapping that exists only in its own sequence ----------------

def mapping_sequences(n: int, k: int = 8, n_symbols: int = 8, n_labels: int = 4,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences of ``k`` examples of a random mapping and a query: ``x1 y1 x2 y2 ... xk yk xq``.

    Each row draws its **own** mapping from the ``n_symbols`` symbols to the ``n_labels`` labels (every
    symbol a uniform label), then ``k + 1`` symbols uniformly (repeats allowed); ``y_i`` is the label of
    ``x_i``. Token ids: symbols ``0 .. n_symbols - 1``, labels ``n_symbols .. n_symbols + n_labels - 1``.
    Returns ``(inputs, targets)``, both ``(n, 2k + 1)``: the target at every symbol position ``2i`` is
    its label (the ``i`` examples before it are all a model can know the mapping from), ``-100``
    (ignored) at label positions. So one row measures a model with 0, 1, ..., k examples; the last
    position is the query. A symbol not among the examples before it can only be guessed: chance is
    ``1 / n_labels``.

    >>> inputs, targets = mapping_sequences(1, k=2, n_symbols=3, n_labels=2,
    ...                                     generator=torch.Generator().manual_seed(0))
    >>> inputs.tolist(), targets.tolist()
    ([[0, 3, 1, 4, 0]], [[3, -100, 4, -100, 3]])
    """
    for name, value in (("n", n), ("n_symbols", n_symbols), ("n_labels", n_labels)):
        check_positive_int(name, value)
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k < 0:
        raise ValueError(f"k must be >= 0 (the number of examples), got {k}")
    if n_labels < 2:
        raise ValueError(f"n_labels must be >= 2, got {n_labels}")
    mappings = torch.randint(n_labels, (n, n_symbols), generator=generator)  # (n, S): one mapping per row
    symbols = torch.randint(n_symbols, (n, k + 1), generator=generator)  # (n, k + 1): examples, then query
    labels = mappings.gather(1, symbols) + n_symbols  # (n, k + 1) label token ids
    sequence = torch.stack([symbols, labels], dim=2).reshape(n, 2 * (k + 1))  # x1 y1 ... xq yq
    inputs = sequence[:, :-1]  # (n, 2k + 1): the query's own label is what is asked for
    targets = torch.full_like(inputs, -100)
    targets[:, 0::2] = labels  # at each symbol, its label
    return inputs, targets


# --- Lecture 9 (Q42): a large vocabulary whose words follow Zipf's law ------------------------------------

def zipf_corpus(n_tokens: int, vocab_size: int = 30_000, exponent: float = 1.0, n_topics: int = 16,
                sentence_length: int = 20, seed: int = 0) -> torch.Tensor:
    """A stream of ``n_tokens`` word ids ``(n_tokens,)`` over ``vocab_size`` types, ranked by frequency.

    Word ``w`` belongs to topic ``w % n_topics`` and has rank ``w // n_topics`` within it. Each sentence of
    ``sentence_length`` words picks a topic uniformly, then draws its words from that topic with
    probability proportional to ``(rank + 1) ** -exponent`` (Zipf's law, Zipf 1935). So the corpus as a
    whole follows Zipf's law too (word ``w``'s probability is ``∝ (w // n_topics + 1) ** -exponent``,
    id 0 the most frequent), and the previous word tells a model the topic of the next one: there is
    something to learn beyond the word counts. ``vocab_size`` must be a multiple of ``n_topics``.

    >>> ids = zipf_corpus(10_000, vocab_size=1600, seed=0)
    >>> counts = torch.bincount(ids, minlength=1600)
    >>> bool(counts[:16].sum() > counts[16:160].sum() / 4), int(ids.max()) < 1600
    (True, True)
    """
    for name, value in (("n_tokens", n_tokens), ("vocab_size", vocab_size), ("n_topics", n_topics),
                        ("sentence_length", sentence_length)):
        check_positive_int(name, value)
    if vocab_size % n_topics:
        raise ValueError(f"vocab_size must be a multiple of n_topics={n_topics}, got {vocab_size}")
    if isinstance(exponent, bool) or not isinstance(exponent, (int, float)) or not exponent > 0:
        raise ValueError(f"exponent must be a number > 0, got {exponent!r}")
    g = torch.Generator().manual_seed(seed)
    per_topic = vocab_size // n_topics
    weights = torch.arange(1, per_topic + 1, dtype=torch.float64) ** -exponent  # Zipf over the ranks
    n_sentences = -(-n_tokens // sentence_length)  # ceil
    topics = torch.randint(n_topics, (n_sentences, 1), generator=g)  # (S, 1)
    ranks = torch.multinomial(weights, n_sentences * sentence_length, replacement=True, generator=g)
    ids = ranks.view(n_sentences, sentence_length) * n_topics + topics  # (S, L): rank r of topic t
    return ids.flatten()[:n_tokens]


def zipf_probabilities(vocab_size: int = 30_000, exponent: float = 1.0, n_topics: int = 16) -> torch.Tensor:
    """The exact probability of every word id under ``zipf_corpus`` (float64 ``(vocab_size,)``, sums to 1).

    >>> p = zipf_probabilities(32, exponent=1.0, n_topics=16)        # two ranks: 1 and 1/2, 16 topics
    >>> round(p[0].item() * 16 * 1.5, 6), round(p[16].item() * 16 * 1.5, 6)
    (1.0, 0.5)
    """
    check_positive_int("vocab_size", vocab_size)
    check_positive_int("n_topics", n_topics)
    if vocab_size % n_topics:
        raise ValueError(f"vocab_size must be a multiple of n_topics={n_topics}, got {vocab_size}")
    ranks = torch.arange(vocab_size, dtype=torch.float64) // n_topics + 1
    weights = ranks ** -float(exponent)
    return weights / weights.sum()


# --- Recall a token seen d steps ago (Lecture 4, Q17: transformers vs RNNs; Lecture 9: gradients in time) --

@dataclass(frozen=True)
class RecallTask:
    """A long-range memory test: read ``length`` random symbols, then a query token that says a
    distance ``d`` (1 .. ``max_distance``); the answer is the symbol read ``d`` steps before the query.

    Token ids: the symbols are ``0 .. n_symbols - 1``; the query for distance ``d`` is
    ``n_symbols + d - 1``; so ``vocab_size = n_symbols + max_distance``. The symbols are uniform and
    independent, so nothing but memory helps: chance is ``1 / n_symbols``. A transformer attends straight
    back to the position; a recurrent network must have kept the last ``max_distance`` symbols in its
    state, because it learns which one is wanted only at the end.

    >>> task = RecallTask(length=6, max_distance=4, n_symbols=3)
    >>> x, y = task.batch(1, generator=torch.Generator().manual_seed(0), distance=2)
    >>> x.tolist(), y.tolist()                  # the query 3 + 2 - 1 = 4 asks for x[0, 6 - 2] = x[0, 4]
    ([[2, 0, 2, 0, 1, 0, 4]], [[-100, -100, -100, -100, -100, -100, 1]])
    """

    length: int = 16
    max_distance: int = 12
    n_symbols: int = 4

    def __post_init__(self) -> None:
        for name in ("length", "max_distance", "n_symbols"):
            check_positive_int(name, getattr(self, name))
        if self.max_distance > self.length:
            raise ValueError(f"max_distance must be <= length={self.length} (the answer is in the input), "
                             f"got {self.max_distance}")
        if self.n_symbols < 2:
            raise ValueError(f"n_symbols must be >= 2, got {self.n_symbols}")

    @property
    def vocab_size(self) -> int:
        return self.n_symbols + self.max_distance

    def query_id(self, distance: int) -> int:
        """The token that asks for the symbol ``distance`` steps back."""
        self._check_distance(distance)
        return self.n_symbols + distance - 1

    def _check_distance(self, distance: object) -> None:
        if isinstance(distance, bool) or not isinstance(distance, int):
            raise TypeError(f"distance must be an int, got {type(distance).__name__}")
        if not 1 <= distance <= self.max_distance:
            raise ValueError(f"distance must be in 1 .. {self.max_distance}, got {distance}")

    def batch(self, n: int, generator: torch.Generator | None = None,
              distance: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)``, both ``(n, length + 1)``: ``length`` symbols and the query; the target is
        ``-100`` (ignored) everywhere but at the query, where it is the symbol asked for. ``distance``
        fixes d; by default each row draws its own, uniform in 1 .. ``max_distance``."""
        check_positive_int("n", n)
        L = self.length
        inputs = torch.randint(0, self.n_symbols, (n, L + 1), generator=generator)  # (n, L + 1)
        if distance is None:
            distances = torch.randint(1, self.max_distance + 1, (n,), generator=generator)  # (n,)
        else:
            self._check_distance(distance)
            distances = torch.full((n,), distance)
        inputs[:, L] = self.n_symbols + distances - 1  # the query token at the last position
        targets = torch.full((n, L + 1), -100)
        targets[:, L] = inputs[torch.arange(n), L - distances]  # the symbol d steps before the query
        return inputs, targets


if __name__ == "__main__":  # python -m utils.data: (re)make course_notes.txt from Lectures 1-3
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sources = [root / "solutions" / name for name in ("01_building_blocks.ipynb",
                                                     "02_building_blocks_continued.ipynb",
                                                     "03_training_and_fine_tuning.ipynb")]
    target = Path(__file__).parent / "course_notes.txt"
    target.write_text(notebook_prose(sources), encoding="utf-8")
    print(f"wrote {target} ({target.stat().st_size:,} bytes) from {len(sources)} notebooks")


# --- Lecture 5: the world's exact entropy (Q25) and a task only word order can solve (Q21) ---------------

def tiny_world_entropy(weighted: bool = False, dialect: str = "standard") -> float:
    """The entropy ``H = -Σ_s p(s) log p(s)`` of the tiny world's sentences, in nats per sentence.

    Computed exactly over the 240 sentences of ``all_tiny_world_sentences`` with ``sentence_probability``:
    the least average cross-entropy any model can reach on sentences drawn by ``tiny_world_sentences``
    (Gibbs' inequality, Cover & Thomas 2006, Theorem 2.6.3). The uniform world has ``log 240``.

    >>> math.isclose(tiny_world_entropy(), math.log(240))
    True
    >>> round(tiny_world_entropy(weighted=True), 4)
    4.8938
    """
    if not isinstance(weighted, bool):
        raise TypeError(f"weighted must be a bool, got {type(weighted).__name__}")
    probabilities = [sentence_probability(s, weighted=weighted, dialect=dialect)
                     for s in all_tiny_world_sentences(dialect)]
    return -sum(p * math.log(p) for p in probabilities if p > 0)


# "Who did it?": "the big cat chased the small dog" names the chaser first. Both animals, both adjectives
# and the verb are in the sentence whatever the order, so only the ORDER of the words says which animal
# did it: a model that cannot see order is at chance (Q21). The test sentences use pairs of animals that
# never meet in training, so a model that passes has learned the rule, not the sentences.
ROLE_ADJECTIVES: tuple[str, ...] = ("big", "small", "old", "young", "grey", "happy")
ROLE_VERBS: tuple[str, ...] = ("chased", "watched", "found")
ROLE_TEST_PAIRS: tuple[tuple[str, str], ...] = (("cat", "owl"), ("dog", "fox"), ("girl", "boy"))


def _role_pairs(split: str) -> list[tuple[str, str]]:
    """The ordered (agent, other) pairs of a split: test = ``ROLE_TEST_PAIRS`` both ways, train = the rest."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    held_out = {frozenset(pair) for pair in ROLE_TEST_PAIRS}
    return [(a, b) for a in AGENTS for b in AGENTS
            if a != b and (frozenset((a, b)) in held_out) == (split == "test")]


def role_sentences(n: int, seed: int = 0, split: str = "train") -> list[tuple[str, str]]:
    """``n`` random "who did it" examples ``(sentence, agent)``, e.g. ``("the big cat chased the small
    dog", "cat")``: 7 words, ``the <adjective> <agent> <verb> the <adjective> <other>``, two different
    animals from ``AGENTS``, adjectives from ``ROLE_ADJECTIVES``, the verb from ``ROLE_VERBS``.

    ``split="test"`` draws only the animal pairs of ``ROLE_TEST_PAIRS`` (in either order), ``"train"``
    only the other pairs, so no test sentence occurs in training.

    >>> sentence, agent = role_sentences(1, seed=0)[0]
    >>> len(sentence.split()), agent == sentence.split()[2]
    (7, True)
    """
    check_positive_int("n", n)
    pairs = _role_pairs(split)
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        agent, other = rng.choice(pairs)
        first, second = rng.choice(ROLE_ADJECTIVES), rng.choice(ROLE_ADJECTIVES)
        examples.append((f"the {first} {agent} {rng.choice(ROLE_VERBS)} the {second} {other}", agent))
    return examples


def swap_roles(sentence: str) -> str:
    """The same words with the two noun phrases exchanged: the other animal did it.

    >>> swap_roles("the big cat chased the small dog")
    'the small dog chased the big cat'
    """
    words = sentence.split() if isinstance(sentence, str) else None
    if (words is None or len(words) != 7 or words[0] != "the" or words[4] != "the"
            or words[2] not in AGENTS or words[6] not in AGENTS or words[3] not in ROLE_VERBS):
        raise ValueError(f"expected a sentence 'the <adjective> <agent> <verb> the <adjective> <agent>', "
                         f"got {sentence!r}")
    return " ".join(["the", words[5], words[6], words[3], "the", words[1], words[2]])


def role_vocabulary() -> list[str]:
    """Every word of the "who did it" sentences, sorted.

    >>> len(role_vocabulary()), role_vocabulary()[:3]
    (16, ['big', 'boy', 'cat'])
    """
    return sorted({"the", *ROLE_ADJECTIVES, *ROLE_VERBS, *AGENTS})


# --- Lecture 7: two moons (Q31) and pictures of coloured shapes with questions about them (Q33-Q35) ------
# The pictures are a 3 x 3 grid of cells, CELL_SIZE pixels square; an object is one of SHAPE_NAMES drawn in
# one of COLOUR_NAMES inside one cell (moved by up to one pixel when jitter is on). A cell is exactly one
# patch of a Vision Transformer with patch size CELL_SIZE, so "which patch holds the circle?" has an answer
# to check the model's attention against. Questions ask for the colour of a shape, the shape of a colour or
# the column of a shape; every scene's objects have different shapes and colours, so each has one answer.

def two_moons(n: int, noise: float = 0.1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of two interleaved half circles (scikit-learn's ``make_moons``, centred and scaled to
    about ``[-1, 1]``) with Gaussian ``noise``: ``(points (n, 2) float64, labels (n,) long in {0, 1})``,
    labels alternating 0, 1, 0, ... No straight line separates the classes.

    >>> points, labels = two_moons(4, noise=0.0)
    >>> tuple(points.shape), labels.tolist()
    ((4, 2), [0, 1, 0, 1])
    """
    check_positive_int("n", n)
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or noise < 0:
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    rng = random.Random(seed)
    points, labels = [], []
    for i in range(n):
        label, t = i % 2, rng.uniform(0.0, math.pi)
        x, y = (math.cos(t), math.sin(t)) if label == 0 else (1.0 - math.cos(t), 0.5 - math.sin(t))
        x, y = x + rng.gauss(0.0, noise), y + rng.gauss(0.0, noise)
        points.append(((x - 0.5) / 1.0, (y - 0.25) / 0.7))  # centre the pair of moons, scale to about [-1, 1]
        labels.append(label)
    return torch.tensor(points, dtype=torch.float64), torch.tensor(labels)


SHAPE_NAMES: tuple[str, ...] = ("square", "circle", "triangle", "cross")
COLOUR_NAMES: tuple[str, ...] = ("red", "green", "blue", "yellow")
COLOUR_RGB: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.1, 0.1), "green": (0.1, 0.6, 0.15), "blue": (0.15, 0.3, 0.9), "yellow": (0.95, 0.8, 0.05)}
COLUMN_NAMES: tuple[str, ...] = ("left", "middle", "right")
BACKGROUND_RGB: tuple[float, float, float] = (0.96, 0.96, 0.96)
GRID_SIZE, CELL_SIZE = 3, 8
QUESTION_KINDS: tuple[str, ...] = ("colour", "shape", "position")


@dataclass(frozen=True)
class ShapeObject:
    """One object of a picture: a ``shape`` of ``SHAPE_NAMES`` in a ``colour`` of ``COLOUR_NAMES``, in the
    cell at ``row``, ``column`` of the grid (0, 0 = top left), moved ``offset = (down, right)`` pixels (0 or
    1)."""

    shape: str
    colour: str
    row: int
    column: int
    offset: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if self.shape not in SHAPE_NAMES:
            raise ValueError(f"shape must be one of {SHAPE_NAMES}, got {self.shape!r}")
        if self.colour not in COLOUR_NAMES:
            raise ValueError(f"colour must be one of {COLOUR_NAMES}, got {self.colour!r}")
        for name in ("row", "column"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < GRID_SIZE:
                raise ValueError(f"{name} must be an int in [0, {GRID_SIZE}), got {value!r}")
        if self.offset not in ((0, 0), (0, 1), (1, 0), (1, 1)):
            raise ValueError(f"offset must be a pair of 0s and 1s, got {self.offset!r}")

    @property
    def cell(self) -> int:
        """The index of the object's cell in row-major order: the patch token that holds it."""
        return self.row * GRID_SIZE + self.column


def shape_mask(shape: str, size: int = CELL_SIZE - 1) -> torch.Tensor:
    """``BoolTensor (size, size)``: the pixels of ``shape`` drawn in a ``size`` x ``size`` box.

    >>> shape_mask("cross", 5).int().tolist()[2], shape_mask("square", 5).all().item()
    ([1, 1, 1, 1, 1], True)
    """
    if shape not in SHAPE_NAMES:
        raise ValueError(f"shape must be one of {SHAPE_NAMES}, got {shape!r}")
    check_positive_int("size", size)
    c = torch.linspace(-1.0, 1.0, size)  # pixel centres across the box
    v, u = c[:, None].expand(size, size), c[None, :].expand(size, size)  # (rows: down, columns: right)
    if shape == "square":
        return torch.ones(size, size, dtype=torch.bool)
    if shape == "circle":
        return u**2 + v**2 <= 1.15
    if shape == "triangle":  # apex at the top, base along the bottom row
        return u.abs() <= (v + 1.0) / 2.0 + 1e-6
    return (u.abs() <= 0.34) | (v.abs() <= 0.34)  # a plus sign


def render_scene(objects: Sequence[ShapeObject], cell: int = CELL_SIZE) -> torch.Tensor:
    """The picture of ``objects`` on a light background: ``(3, GRID_SIZE · cell, GRID_SIZE · cell)``,
    values in ``[0, 1]``. Each shape fills a ``(cell - 1)``-pixel box at its cell's top left corner plus
    its offset, so it never leaves its cell.

    >>> image = render_scene([ShapeObject("square", "red", 0, 0)])
    >>> red = torch.tensor(COLOUR_RGB["red"])
    >>> tuple(image.shape), torch.allclose(image[:, 0, 0], red), image[0, -1, -1].item()
    ((3, 24, 24), True, 0.9599999785423279)
    """
    check_positive_int("cell", cell)
    if cell < 2:
        raise ValueError(f"cell must be >= 2 pixels, got {cell}")
    side = GRID_SIZE * cell
    image = torch.tensor(BACKGROUND_RGB)[:, None, None].repeat(1, side, side)  # (3, H, W)
    for obj in objects:
        if not isinstance(obj, ShapeObject):
            raise TypeError(f"objects must be ShapeObjects, got {type(obj).__name__}")
        top, left = obj.row * cell + obj.offset[0], obj.column * cell + obj.offset[1]
        mask = shape_mask(obj.shape, cell - 1)
        region = image[:, top : top + cell - 1, left : left + cell - 1]  # a view: writing draws
        region[:, mask] = torch.tensor(COLOUR_RGB[obj.colour])[:, None]
    return image


def random_scene(rng: random.Random, n_objects: int = 2, jitter: bool = True) -> tuple[ShapeObject, ...]:
    """``n_objects`` objects with different shapes, colours and cells, drawn by ``rng``."""
    if not 1 <= n_objects <= min(len(SHAPE_NAMES), len(COLOUR_NAMES)):
        raise ValueError(f"n_objects must be between 1 and {len(SHAPE_NAMES)}, got {n_objects}")
    shapes = rng.sample(SHAPE_NAMES, n_objects)
    colours = rng.sample(COLOUR_NAMES, n_objects)
    cells = rng.sample(range(GRID_SIZE * GRID_SIZE), n_objects)
    offsets = [(rng.randrange(2), rng.randrange(2)) if jitter else (0, 0) for _ in range(n_objects)]
    return tuple(ShapeObject(s, c, cell // GRID_SIZE, cell % GRID_SIZE, o)
                 for s, c, cell, o in zip(shapes, colours, cells, offsets, strict=True))


def random_scenes(n: int, n_objects: int = 2, seed: int = 0,
                  jitter: bool = True) -> list[tuple[ShapeObject, ...]]:
    """``n`` random scenes of ``random_scene`` (seeded).

    >>> [(o.shape, o.colour) for o in random_scenes(1, n_objects=2, seed=0)[0]]
    [('cross', 'red'), ('circle', 'green')]
    """
    check_positive_int("n", n)
    rng = random.Random(seed)
    return [random_scene(rng, n_objects, jitter) for _ in range(n)]


@dataclass(frozen=True)
class PictureQuestion:
    """A question about a scene, its one-word ``answer``, its ``kind`` (``QUESTION_KINDS``) and ``target``:
    the index in ``objects`` of the object it asks about."""

    objects: tuple[ShapeObject, ...]
    question: str
    answer: str
    kind: str
    target: int


def ask(objects: Sequence[ShapeObject], target: int, kind: str) -> PictureQuestion:
    """The question of ``kind`` about ``objects[target]``: its colour (named by its shape), its shape (named
    by its colour) or its column (named by its shape). The word that names the object comes last, so a
    model that answers at the last token reads it there.

    >>> scene = (ShapeObject("circle", "red", 1, 2), ShapeObject("square", "blue", 0, 0))
    >>> q = ask(scene, 0, "colour")
    >>> q.question, q.answer, ask(scene, 1, "shape").question, ask(scene, 0, "position").answer
    ('what colour is the circle', 'red', 'which shape is blue', 'right')
    """
    if kind not in QUESTION_KINDS:
        raise ValueError(f"kind must be one of {QUESTION_KINDS}, got {kind!r}")
    objects = tuple(objects)
    if not 0 <= target < len(objects):
        raise ValueError(f"target must index objects (0 to {len(objects) - 1}), got {target}")
    obj = objects[target]
    if kind == "colour":
        question, answer = f"what colour is the {obj.shape}", obj.colour
    elif kind == "shape":
        question, answer = f"which shape is {obj.colour}", obj.shape
    else:
        question, answer = f"where is the {obj.shape}", COLUMN_NAMES[obj.column]
    return PictureQuestion(objects, question, answer, kind, target)


def picture_questions(n: int, seed: int = 0, kinds: Sequence[str] = QUESTION_KINDS, n_objects: int = 2,
                      jitter: bool = True) -> list[PictureQuestion]:
    """``n`` questions, each about a new random scene (``n_objects`` objects): the kind drawn uniformly from
    ``kinds``, the object asked about uniformly from the scene's.

    >>> [q.question for q in picture_questions(2, seed=1)]
    ['which shape is red', 'what colour is the square']
    """
    check_positive_int("n", n)
    kinds = tuple(kinds)
    if not kinds or any(k not in QUESTION_KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty selection of {QUESTION_KINDS}, got {kinds!r}")
    rng = random.Random(seed)
    questions = []
    for _ in range(n):
        objects = random_scene(rng, n_objects, jitter)
        questions.append(ask(objects, rng.randrange(n_objects), rng.choice(kinds)))
    return questions


def picture_answers() -> list[str]:
    """Every possible answer, one word each: the colours, the shapes, the columns.

    >>> len(picture_answers())
    11
    """
    return [*COLOUR_NAMES, *SHAPE_NAMES, *COLUMN_NAMES]


def picture_vocabulary() -> list[str]:
    """The words of the questions and of the captions (``scene_caption``), sorted.

    >>> "colour" in picture_vocabulary(), "circle" in picture_vocabulary()
    (True, True)
    """
    words = {"what", "which", "colour", "is", "the", "shape", "where", "a", "on", "in", "and",
             *picture_answers()}
    return sorted(words)


def scene_caption(objects: Sequence[ShapeObject]) -> str:
    """A caption naming each object's colour, shape and column, e.g. ``"a red circle on the right"``; two
    objects are joined by ``"and"``.

    >>> scene_caption([ShapeObject("circle", "red", 1, 2), ShapeObject("cross", "blue", 0, 1)])
    'a red circle on the right and a blue cross in the middle'
    """
    parts = []
    for obj in objects:
        column = COLUMN_NAMES[obj.column]
        where = "in the middle" if column == "middle" else f"on the {column}"
        parts.append(f"a {obj.colour} {obj.shape} {where}")
    if not parts:
        raise ValueError("objects must hold at least one ShapeObject")
    return " and ".join(parts)


# --- Lecture 8: a made-up world of facts (Q36, Q40), chains of operations (Q38), dialects (Q39) -----------
# The world of facts is invented on purpose: no model of the course (and no real model) can know that
# "corvane was born in quorra", so a model that gets it right must have read it somewhere: in a passage it
# was given (retrieval, Q36) or in a graph it looked up (Q40). Every world uses the same names; only the
# facts change with the seed, so models trained on some worlds can be tested on a world they never saw.

KB_PEOPLE: tuple[str, ...] = (
    "abelo", "brisa", "caddel", "darven", "elsin", "farun", "gilda", "horvin", "ilsa", "jorun",
    "kaleb", "lunara", "morvik", "nessa", "orlin", "pavla", "quinto", "rusela", "sorin", "tavi",
    "ulvar", "veska", "wendo", "xilia", "yaro", "zuela", "arvid", "bemma", "cosko", "dulia",
    "ebron", "fiska", "gorlan", "hespin", "ivo", "jessa", "kordo", "lisbet", "marno", "nilsa",
)
KB_CITIES: tuple[str, ...] = ("vessa", "tarnel", "quorra", "lindor", "pelmar", "zandig", "korvell", "umbrel",
                              "esselt", "fintar", "grovna", "halbek")
KB_COUNTRIES: tuple[str, ...] = ("norvania", "estmark", "solvaria", "ketland")
KB_COMPANIES: tuple[str, ...] = ("orrin", "beltrax", "quillon", "zentho", "mirafold", "tandrel", "vexa",
                                 "copperly")
KB_JOBS: tuple[str, ...] = ("baker", "potter", "pilot", "tailor", "doctor", "farmer", "painter", "sailor")

# relation -> (kind of subject, kind of object)
KB_RELATIONS: dict[str, tuple[str, str]] = {
    "born_in": ("person", "city"), "works_as": ("person", "job"), "works_for": ("person", "company"),
    "located_in": ("city", "country"), "based_in": ("company", "city"),
}
# How a fact is written in a passage: the object is always the last word before the final ".".
KB_PASSAGE_TEMPLATES: dict[str, str] = {
    "born_in": "{s} was born in {o} .", "works_as": "{s} works as a {o} .",
    "works_for": "{s} works for {o} .", "located_in": "{s} is a city in {o} .",
    "based_in": "{s} is based in {o} .",
}
# Two ways to ask for each fact: the first shares the relation's words with the passage ("born"), the
# second (a paraphrase) shares only the subject's name with it ("birthplace"), which word matching misses.
KB_QUESTION_TEMPLATES: dict[str, tuple[str, str]] = {
    "born_in": ("where was {s} born ?", "what is the birthplace of {s} ?"),
    "works_as": ("what does {s} work as ?", "what is the job of {s} ?"),
    "works_for": ("who does {s} work for ?", "what is the employer of {s} ?"),
    "located_in": ("{s} is a city in which country ?", "what is the country of {s} ?"),
    "based_in": ("where is {s} based ?", "what is the home town of {s} ?"),
}


def knowledge_world(seed: int = 0) -> list[Triple]:
    """The facts of one invented world as ``Triple(subject, relation, object)``s, reproducible by seed.

    Every city lies in one country (three cities per country), every company is based in a city, and
    every person was born in a city, works as something and works for a company: 40 x 3 + 12 + 8 = 140
    facts, in a fixed order (people, then cities, then companies). Only the assignment depends on ``seed``.

    >>> world = knowledge_world(seed=0)
    >>> len(world), world[0].subject, world[0].relation
    (140, 'abelo', 'born_in')
    >>> knowledge_world(seed=0) == world != knowledge_world(seed=1)
    True
    """
    rng = random.Random(seed)  # private generator: never touches the global random state
    countries = [KB_COUNTRIES[i % len(KB_COUNTRIES)] for i in range(len(KB_CITIES))]
    rng.shuffle(countries)  # three cities per country, in a random arrangement
    facts = []
    for person in KB_PEOPLE:
        facts += [Triple(person, "born_in", rng.choice(KB_CITIES)),
                  Triple(person, "works_as", rng.choice(KB_JOBS)),
                  Triple(person, "works_for", rng.choice(KB_COMPANIES))]
    facts += [Triple(city, "located_in", country) for city, country in zip(KB_CITIES, countries, strict=True)]
    facts += [Triple(company, "based_in", rng.choice(KB_CITIES)) for company in KB_COMPANIES]
    return facts


def _check_fact(fact: object) -> Triple:
    if not isinstance(fact, tuple) or len(fact) != 3 or not all(isinstance(x, str) for x in fact):
        raise TypeError(f"fact must be a (subject, relation, object) tuple of str, got {fact!r}")
    if fact[1] not in KB_RELATIONS:
        raise ValueError(f"fact's relation must be one of {list(KB_RELATIONS)}, got {fact[1]!r}")
    return Triple(*fact)


def fact_passage(fact: tuple[str, str, str]) -> str:
    """The sentence that states ``fact`` in the world's passages.

    >>> fact_passage(("abelo", "works_as", "baker"))
    'abelo works as a baker .'
    """
    fact = _check_fact(fact)
    return KB_PASSAGE_TEMPLATES[fact.relation].format(s=fact.subject, o=fact.object)


def fact_question(fact: tuple[str, str, str], paraphrase: bool = False) -> str:
    """The question whose answer is ``fact``'s object; ``paraphrase=True`` asks it without the
    relation's words (``"birthplace"`` for ``"was born in"``).

    >>> fact_question(("abelo", "born_in", "vessa")), fact_question(("abelo", "born_in", "vessa"), True)
    ('where was abelo born ?', 'what is the birthplace of abelo ?')
    """
    fact = _check_fact(fact)
    if not isinstance(paraphrase, bool):
        raise TypeError(f"paraphrase must be a bool, got {type(paraphrase).__name__}")
    return KB_QUESTION_TEMPLATES[fact.relation][int(paraphrase)].format(s=fact.subject)


def knowledge_vocabulary() -> list[str]:
    """Every word of the world's passages and questions (names, relation words, "?", "."), sorted.

    >>> vocab = knowledge_vocabulary()
    >>> len(vocab), "birthplace" in vocab, "vessa" in vocab
    (98, True, True)
    """
    words = set(KB_PEOPLE) | set(KB_CITIES) | set(KB_COUNTRIES) | set(KB_COMPANIES) | set(KB_JOBS)
    questions = [q for pair in KB_QUESTION_TEMPLATES.values() for q in pair]
    for template in [*KB_PASSAGE_TEMPLATES.values(), *questions]:
        words.update(w for w in template.split() if w not in ("{s}", "{o}"))
    return sorted(words)


# Chains of small operations (Q38, chain-of-thought). Every value is one digit: an operation works modulo
# 10 ("keep the last digit"), so each intermediate result is one token a model can write down.
CHAIN_OPERATIONS: dict[str, object] = {"+": lambda a, b: (a + b) % 10, "-": lambda a, b: (a - b) % 10,
                                       "*": lambda a, b: (a * b) % 10}


@dataclass(frozen=True)
class ChainProblem:
    """A start digit and a list of ``(operation, operand)`` steps, applied left to right modulo 10.

    ``steps`` are the intermediate results (the last one is the answer). ``text(scratchpad)`` writes the
    problem as a model reads and writes it: ``"3 + 4 * 2 = 4 ."`` answers at once; with the scratchpad
    (Nye et al. 2021) the intermediate results come first: ``"3 + 4 * 2 = 7 4 ; 4 ."``.

    >>> p = ChainProblem(3, (("+", 4), ("*", 2)))
    >>> p.steps, p.answer, p.text(scratchpad=False), p.text(scratchpad=True)
    ((7, 4), 4, '3 + 4 * 2 = 4 .', '3 + 4 * 2 = 7 4 ; 4 .')
    """

    start: int
    operations: tuple[tuple[str, int], ...]

    @property
    def steps(self) -> tuple[int, ...]:
        values, value = [], self.start
        for op, operand in self.operations:
            value = CHAIN_OPERATIONS[op](value, operand)
            values.append(value)
        return tuple(values)

    @property
    def answer(self) -> int:
        return self.steps[-1]

    @classmethod
    def parse(cls, text: str) -> ChainProblem:
        """The problem written in ``text`` (``"3 + 4 * 2"``, an optional final ``=``), or ``ValueError``.

        >>> ChainProblem.parse("3 + 4 * 2 =").operations
        (('+', 4), ('*', 2))
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        words = text.split()
        if words and words[-1] == "=":
            words = words[:-1]
        digits_ok = all(w.isdigit() and len(w) == 1 for w in words[::2])
        ops_ok = all(op in CHAIN_OPERATIONS for op in words[1::2])
        ok = len(words) >= 3 and len(words) % 2 == 1 and digits_ok and ops_ok
        if not ok:
            raise ValueError(f"text must read 'digit op digit op digit ...' with ops from "
                             f"{list(CHAIN_OPERATIONS)}, one space between tokens, got {text!r}")
        return cls(int(words[0]), tuple((op, int(d)) for op, d in zip(words[1::2], words[2::2], strict=True)))

    @property
    def question(self) -> str:
        """The problem up to and including ``=``: what the model is given."""
        return " ".join([str(self.start), *(f"{op} {operand}" for op, operand in self.operations), "="])

    def text(self, scratchpad: bool) -> str:
        if not isinstance(scratchpad, bool):
            raise TypeError(f"scratchpad must be a bool, got {type(scratchpad).__name__}")
        worked = " ".join(str(v) for v in self.steps) + " ; " if scratchpad else ""
        return f"{self.question} {worked}{self.answer} ."


def arithmetic_chains(n: int, n_operations: int = 4, seed: int = 0) -> list[ChainProblem]:
    """``n`` random ``ChainProblem``s of ``n_operations`` steps: a start digit 0-9, then each step one of
    ``+ - *`` (equally likely) with an operand 1-9 (2-9 for ``*``: multiplying by 1 does nothing).

    >>> [p.text(scratchpad=True) for p in arithmetic_chains(2, n_operations=3, seed=0)]
    ['6 - 1 - 9 - 7 = 5 6 9 ; 9 .', '4 - 6 * 5 * 4 = 8 0 0 ; 0 .']
    """
    check_positive_int("n", n)
    check_positive_int("n_operations", n_operations)
    rng = random.Random(seed)
    problems = []
    for _ in range(n):
        start = rng.randrange(10)
        operations = []
        for _ in range(n_operations):
            op = rng.choice("+-*")
            operations.append((op, rng.randint(2 if op == "*" else 1, 9)))
        problems.append(ChainProblem(start, tuple(operations)))
    return problems


def chain_vocabulary() -> list[str]:
    """The tokens of ``ChainProblem.text``: the ten digits, the three operations, ``=``, ``;`` and ``.``.

    >>> chain_vocabulary()
    ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+', '-', '*', '=', ';', '.']
    """
    return [str(d) for d in range(10)] + list(CHAIN_OPERATIONS) + ["=", ";", "."]


def dialect_examples(n: int, seed: int = 0,
                     sentences: dict[str, list[str]] | None = None) -> list[tuple[str, int]]:
    """``n`` labelled sentences for telling the two dialects apart (Q39): a fair coin picks the class
    (``0`` = ``"standard"``, ``1`` = ``"shifted"``, the order of ``DIALECTS``), then a sentence is drawn
    uniformly from that dialect, from ``sentences[dialect]`` when given (e.g. a training split), else
    from all 240 of ``all_tiny_world_sentences(dialect)``.

    The two dialects use every word exactly as often (only which endings follow which verb differs), so
    a bag of words cannot tell them apart: the order of the words decides.

    >>> dialect_examples(2, seed=0)
    [('the fox carried the hat across the garden .', 1), ('the cat ate the cake under the bed .', 1)]
    """
    check_positive_int("n", n)
    pools = sentences if sentences is not None else {d: all_tiny_world_sentences(d) for d in DIALECTS}
    if set(pools) != set(DIALECTS) or not all(pools[d] for d in DIALECTS):
        raise ValueError(f"sentences must map each of {DIALECTS} to a non-empty list of sentences")
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        label = rng.randrange(len(DIALECTS))
        examples.append((rng.choice(pools[DIALECTS[label]]), label))
    return examples


@dataclass(frozen=True)
class ReadingExample:
    """One exercise for a reader (Q36): a question, the passages it is given and where the answer is.

    ``answer_slot`` is the index of the passage that states the fact (``-1`` when none does) and
    ``answer`` the word to copy from it (the fact's object, always the last word before the ".").
    """

    question: str
    passages: tuple[str, ...]
    answer_slot: int
    answer: str


def reading_examples(n: int, world_seeds: list[int], seed: int = 0, k: int = 3) -> list[ReadingExample]:
    """``n`` reading exercises drawn from the worlds ``knowledge_world(s)`` for ``s`` in ``world_seeds``:
    a random fact asked as its question (paraphrased half of the time) and ``k`` passages, the fact's own
    at a random place among ``k - 1`` others that look relevant, as retrievers return them: each is, with
    equal chance, another passage that mentions the same subject (a retriever matching the name) or a
    passage of the same relation about someone else (a retriever matching the meaning). So a reader must
    check both the name and the relation.

    A reader trained on many worlds cannot remember any world's facts (each world assigns them anew):
    it can only learn to read.

    >>> ex = reading_examples(1, world_seeds=[5], seed=0)[0]
    >>> ex.question, ex.passages[ex.answer_slot].split()[-2] == ex.answer
    ('who does jessa work for ?', True)
    """
    check_positive_int("n", n)
    check_positive_int("k", k)
    if not world_seeds:
        raise ValueError("world_seeds must name at least one world")
    rng = random.Random(seed)
    worlds = [knowledge_world(s) for s in world_seeds]
    examples = []
    for _ in range(n):
        world = worlds[rng.randrange(len(worlds))]
        gold = world[rng.randrange(len(world))]
        about = [f for f in world if f != gold and gold.subject in (f.subject, f.object)]
        alike = [f for f in world if f.relation == gold.relation and f.subject != gold.subject]
        others: list[Triple] = []
        while len(others) < k - 1:
            pool = about if about and rng.random() < 0.5 else alike
            pick = rng.choice(pool)
            if pick not in others:
                others.append(pick)
        slot = rng.randrange(k)
        passages = [fact_passage(f) for f in others[:slot] + [gold] + others[slot:]]
        examples.append(ReadingExample(fact_question(gold, paraphrase=rng.random() < 0.5), tuple(passages),
                                       slot, gold.object))
    return examples


def kb_popularity(seed: int = 0, counts: tuple[int, ...] = (0, 1, 8, 64)) -> dict[str, int]:
    """How often each person of the world is written about in a training corpus (Q40): the people are
    shuffled (by ``seed``) into ``len(counts)`` equal groups, group ``i`` mentioned ``counts[i]`` times.
    Real corpora are like this: a few entities are everywhere, most appear once or never (the long tail).

    >>> from collections import Counter
    >>> sorted(Counter(kb_popularity(seed=0).values()).items())
    [(0, 10), (1, 10), (8, 10), (64, 10)]
    """
    if not counts or len(KB_PEOPLE) % len(counts):
        raise ValueError(f"counts must split the {len(KB_PEOPLE)} people into equal groups, got {counts}")
    people = list(KB_PEOPLE)
    random.Random(seed).shuffle(people)
    size = len(people) // len(counts)
    return {person: counts[i // size] for i, person in enumerate(people)}


def mixture_tasks(n: int, seed: int = 0, task_weights: tuple[float, ...] = (0.55, 0.15, 0.15, 0.15),
                  n_features: int = 12, d_out: int = 16, teacher_seed: int = 100):
    """A regression problem made of sub-tasks (Q37, mixture of experts): ``(x (n, T + n_features),
    y (n, d_out), task (n,))`` with ``T = len(task_weights)`` sub-tasks.

    Each row picks a sub-task ``t`` with probability ``task_weights[t]`` and random features
    ``v ~ N(0, I)``; ``x`` is ``[2 · one_hot(t), v]`` (the task is visible to the router) and ``y`` is
    sub-task ``t``'s own function of ``v``: a random two-layer tanh network fixed by ``teacher_seed`` (the
    same for every ``seed``, so training and test sets of one problem share their functions). Different
    sub-tasks have unrelated functions, so one small network has to share its units between them while
    experts can specialise.

    >>> x, y, task = mixture_tasks(5, seed=0)
    >>> tuple(x.shape), tuple(y.shape), x[0, :4].tolist().count(2.0)
    ((5, 16), (5, 16), 1)
    """
    import torch  # noqa: PLC0415 (the rest of this module is plain Python)

    check_positive_int("n", n)
    if not task_weights or any(w < 0 for w in task_weights) or not abs(sum(task_weights) - 1) < 1e-6:
        raise ValueError(f"task_weights must be non-negative and sum to 1, got {task_weights}")
    teachers = torch.Generator().manual_seed(teacher_seed)
    hidden = 32
    functions = [(torch.randn(n_features, hidden, generator=teachers) / n_features**0.5,
                  torch.randn(hidden, d_out, generator=teachers) / hidden**0.5) for _ in task_weights]
    g = torch.Generator().manual_seed(seed)
    task = torch.multinomial(torch.tensor(task_weights, dtype=torch.float), n, replacement=True, generator=g)
    v = torch.randn(n, n_features, generator=g)  # (n, F)
    w1 = torch.stack([functions[t][0] for t in task.tolist()])  # (n, F, H): each row's own teacher
    w2 = torch.stack([functions[t][1] for t in task.tolist()])  # (n, H, d_out)
    y = (torch.tanh(v[:, None, :] @ w1) @ w2)[:, 0]  # (n, 1, F) @ (n, F, H) -> (n, 1, H) -> (n, d_out)
    x = torch.cat([2.0 * torch.nn.functional.one_hot(task, len(task_weights)).float(), v], dim=1)
    return x, y, task


# --- Lecture 10: a dependency longer than an n-gram's window (Q47), and planted secrets (Q50) ---------------
# "the cats near the dog by the river are hungry ." The verb agrees with the subject (word 1), seven words
# back, and the nearest noun (word 4, the "attractor") has its own, random number: a model that reads
# fewer than seven words back sees nothing that decides between "is" and "are" (Linzen et al. 2016 used
# such agreement to test what networks learn of syntax).

AGREEMENT_NOUNS: dict[str, str] = {"cat": "cats", "dog": "dogs", "bird": "birds", "fox": "foxes",
                                   "owl": "owls", "horse": "horses"}
AGREEMENT_PLACES: tuple[str, ...] = ("river", "hill", "barn", "road")
AGREEMENT_ADJECTIVES: tuple[str, ...] = ("hungry", "tired", "happy", "quiet")
AGREEMENT_VERB_POSITION = 8  # the 0-based position of "is" / "are"; the subject is at position 1


def agreement_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` sentences ``the <subject> near the <attractor> by the <place> is|are <adjective> .`` (11
    words): subject and attractor are any noun of ``AGREEMENT_NOUNS``, singular or plural, independently;
    the verb agrees with the subject. 12 x 12 x 4 x 4 = 2,304 different sentences, all equally likely.

    >>> agreement_sentences(2, seed=3)
    ['the dog near the owls by the road is hungry .', 'the owl near the cats by the hill is tired .']
    """
    check_positive_int("n", n)
    rng = random.Random(seed)
    nouns = list(AGREEMENT_NOUNS)
    sentences = []
    for _ in range(n):
        subject, attractor = rng.choice(nouns), rng.choice(nouns)
        plural, attractor_plural = rng.random() < 0.5, rng.random() < 0.5
        place, adjective = rng.choice(AGREEMENT_PLACES), rng.choice(AGREEMENT_ADJECTIVES)
        sentences.append(f"the {AGREEMENT_NOUNS[subject] if plural else subject} near the "
                         f"{AGREEMENT_NOUNS[attractor] if attractor_plural else attractor} by the {place} "
                         f"{'are' if plural else 'is'} {adjective} .")
    return sentences


def agreement_vocabulary() -> list[str]:
    """Every word of ``agreement_sentences``, in a fixed order (25 words)."""
    nouns = [w for pair in AGREEMENT_NOUNS.items() for w in pair]
    return ["the", *nouns, "near", "by", *AGREEMENT_PLACES, "is", "are", *AGREEMENT_ADJECTIVES, "."]


def pin_sentence(name: str, pin: str) -> str:
    """``the pin of <name> is d d d d .``: a secret, one token per digit (Q50's canary, Carlini et al. 2019).

    >>> pin_sentence("abelo", "0417")
    'the pin of abelo is 0 4 1 7 .'
    """
    if not isinstance(pin, str) or not pin.isdigit():
        raise ValueError(f"pin must be a string of digits, got {pin!r}")
    return f"the pin of {name} is {' '.join(pin)} ."


def pin_corpus(canaries: dict[str, tuple[str, int]], n_background: int, n_digits: int = 4,
               seed: int = 0) -> list[str]:
    """A training corpus with planted secrets: ``canaries`` maps a name to ``(pin, repetitions)``, and
    its ``pin_sentence`` appears ``repetitions`` times; ``n_background`` more pin sentences give people
    of ``KB_PEOPLE`` that are not canaries random ``n_digits``-digit pins (each sentence once), so that a
    model learns the format and that digits are otherwise random. Shuffled by ``seed``.

    >>> corpus = pin_corpus({"abelo": ("1234", 3)}, n_background=5, seed=0)
    >>> len(corpus), corpus.count("the pin of abelo is 1 2 3 4 .")
    (8, 3)
    """
    check_positive_int("n_background", n_background)
    check_positive_int("n_digits", n_digits)
    rng = random.Random(seed)
    others = [p for p in KB_PEOPLE if p not in canaries]
    if not others:
        raise ValueError("canaries must leave some of KB_PEOPLE for the background sentences")
    corpus = []
    for name, (pin, repetitions) in canaries.items():
        if len(pin) != n_digits:
            raise ValueError(f"canary pins must have n_digits={n_digits} digits, got {pin!r} for {name!r}")
        check_positive_int("repetitions", repetitions)
        corpus += [pin_sentence(name, pin)] * repetitions
    corpus += [pin_sentence(rng.choice(others), "".join(rng.choice("0123456789") for _ in range(n_digits)))
               for _ in range(n_background)]
    rng.shuffle(corpus)
    return corpus


def pin_vocabulary() -> list[str]:
    """Every word of ``pin_corpus``: the frame, the people's names and the ten digits."""
    return ["the", "pin", "of", "is", ".", *KB_PEOPLE, *"0123456789"]


# A language whose structure has a power-law spectrum (Q49): a Markov chain over ``V`` tokens whose matrix of
# transition logits has singular values falling like ``i^-decay``. A model of width ``d`` can represent about
# the ``d`` strongest directions, so a wider model captures more of the structure and its excess loss falls
# smoothly with its size: a toy of why loss falls as a power of size (Kaplan et al. 2020; Maloney et al. 2022
# derive such laws from power-law spectra).


def power_law_markov_chain(vocab_size: int = 64, decay: float = 0.5, scale: float = 6.0,
                           seed: int = 0) -> torch.Tensor:
    """A transition matrix ``P (V, V)`` (float64, rows sum to 1): ``softmax(U diag(s) Wᵀ · √V)`` with
    random orthogonal ``U``, ``W`` and ``s_i = scale · i^-decay``.

    >>> P = power_law_markov_chain(8, seed=0)
    >>> tuple(P.shape), torch.allclose(P.sum(dim=1), torch.ones(8, dtype=torch.float64))
    ((8, 8), True)
    """
    check_positive_int("vocab_size", vocab_size)
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(vocab_size, vocab_size, generator=g, dtype=torch.float64))
    w, _ = torch.linalg.qr(torch.randn(vocab_size, vocab_size, generator=g, dtype=torch.float64))
    s = scale * torch.arange(1, vocab_size + 1, dtype=torch.float64) ** -decay
    return torch.softmax(u @ torch.diag(s) @ w.T * math.sqrt(vocab_size), dim=-1)


def markov_sequences(P: torch.Tensor, n: int, length: int, seed: int = 0) -> torch.Tensor:
    """``n`` sequences of ``length + 1`` tokens ``(n, length + 1)`` from the chain ``P``: a uniform first
    token, then each token drawn from the row of the one before.

    >>> x = markov_sequences(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), 2, 3, seed=0)   # a chain that alternates
    >>> tuple(x.shape), bool((x[:, 1:] != x[:, :-1]).all())
    ((2, 4), True)
    """
    check_positive_int("n", n)
    check_positive_int("length", length)
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, length + 1, dtype=torch.long)
    x[:, 0] = torch.randint(P.shape[0], (n,), generator=g)
    for t in range(length):  # (n,) -> (n,): one vectorised draw per position
        x[:, t + 1] = torch.multinomial(P[x[:, t]].float(), 1, generator=g)[:, 0]
    return x
