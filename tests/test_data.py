"""utils.data: the tiny world's grammar, its two dialects, and the course text.

Oracles: the grammar written in the module docstring (checked word by word against the constants), seed
reproducibility, and the shifted dialect built by hand from ``VERBS`` order.
"""

import math
import random
import re
from collections import Counter, defaultdict

import pytest
import torch

from utils.data import (
    AGENTS,
    NSP_SPECIALS,
    VERBS,
    VerbSpec,
    all_tiny_world_sentences,
    course_text,
    dialect_endings,
    ending_position,
    next_word_probabilities,
    nsp_input,
    nsp_pairs,
    number_to_words,
    number_words,
    sentence_probability,
    spelled_number_pairs,
    story_continues,
    tiny_world_sentences,
    tiny_world_stories,
    tiny_world_vocabulary,
)

N = 2000


def parse(sentence: str) -> tuple[str, str, str, str]:
    """(agent, verb, object, ending) of a sentence, asserting the fixed words of the grammar."""
    words = sentence.split(" ")
    assert len(words) == 9, sentence
    assert words[0] == "the" and words[3] == "the" and words[8] == ".", sentence
    return words[1], words[2], words[4], " ".join(words[5:8])


def test_every_sentence_follows_the_grammar():
    for sentence in tiny_world_sentences(N, seed=3):
        assert sentence == sentence.lower() and "  " not in sentence
        agent, verb, obj, ending = parse(sentence)
        assert agent in AGENTS
        assert verb in VERBS
        assert obj in VERBS[verb].objects
        assert ending in VERBS[verb].endings


def test_the_first_ending_word_is_determined_by_the_verb():
    verbs_before = defaultdict(set)
    for sentence in tiny_world_sentences(N, seed=4):
        _, verb, _, ending = parse(sentence)
        verbs_before[ending.split()[0]].add(verb)
    assert all(len(verbs) == 1 for verbs in verbs_before.values()), verbs_before
    # ...but not by the object alone: some objects are shared by verbs with different endings
    objects = Counter(obj for spec in VERBS.values() for obj in spec.objects)
    assert any(count > 1 for count in objects.values())


def test_constants_have_the_documented_shape():
    assert len(AGENTS) == len(set(AGENTS)) >= 4
    assert all(isinstance(spec, VerbSpec) for spec in VERBS.values())
    first_words = [ending.split()[0] for spec in VERBS.values() for ending in spec.endings]
    assert len(first_words) == len(set(first_words))  # disjoint across (and within) verbs
    assert all(len(ending.split()) == 3 for spec in VERBS.values() for ending in spec.endings)
    with pytest.raises(AttributeError):
        VERBS["chased"].objects = ()  # frozen dataclass


def test_the_cat_chased_the_mouse_is_a_valid_prefix_that_occurs():
    assert "cat" in AGENTS and "mouse" in VERBS["chased"].objects
    assert any(s.startswith("the cat chased the mouse ") for s in tiny_world_sentences(N, seed=0))


def test_choices_are_roughly_uniform():
    verbs = Counter(parse(s)[1] for s in tiny_world_sentences(5000, seed=5))
    assert set(verbs) == set(VERBS)
    expected = 5000 / len(VERBS)
    assert all(abs(count - expected) < 0.15 * expected for count in verbs.values()), verbs


def test_seeds_are_reproducible_and_do_not_touch_the_global_random_state():
    state = random.getstate()
    assert tiny_world_sentences(50, seed=7) == tiny_world_sentences(50, seed=7)
    assert tiny_world_sentences(50, seed=7) != tiny_world_sentences(50, seed=8)
    assert random.getstate() == state


def test_shifted_dialect_differs_exactly_in_the_endings():
    verbs = list(VERBS)
    standard = tiny_world_sentences(N, seed=9)
    shifted = tiny_world_sentences(N, seed=9, dialect="shifted")
    for a, b in zip(standard, shifted, strict=True):
        wa, wb = a.split(), b.split()
        assert wa[:5] == wb[:5] and wa[8] == wb[8]
        assert wa[5] != wb[5] and wa[7] != wb[7]  # the ending's first and last words change
        verb = wa[2]
        following = verbs[(verbs.index(verb) + 1) % len(verbs)]
        k = VERBS[verb].endings.index(" ".join(wa[5:8]))
        assert " ".join(wb[5:8]) == VERBS[following].endings[k]


def test_dialect_endings_cycles_through_verbs():
    shifted = dialect_endings("shifted")
    assert shifted["chased"] == VERBS["ate"].endings
    assert shifted[list(VERBS)[-1]] == VERBS[list(VERBS)[0]].endings
    assert dialect_endings("standard") == {verb: spec.endings for verb, spec in VERBS.items()}


def test_vocabulary_is_exactly_the_words_both_dialects_produce():
    seen = set()
    for dialect in ("standard", "shifted"):
        for sentence in tiny_world_sentences(N, seed=10, dialect=dialect):
            seen.update(sentence.split())
    vocab = tiny_world_vocabulary()
    assert vocab == sorted(vocab) == sorted(seen)
    assert tiny_world_vocabulary() == vocab


def test_ending_position_points_at_the_first_ending_word():
    for sentence in tiny_world_sentences(20, seed=11):
        ending = parse(sentence)[3]
        assert sentence.split()[ending_position()] == ending.split()[0]


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n must be >= 1"):
        tiny_world_sentences(0)
    with pytest.raises(TypeError, match="n must be an int"):
        tiny_world_sentences(2.5)
    with pytest.raises(ValueError, match="dialect"):
        tiny_world_sentences(3, dialect="pirate")
    with pytest.raises(ValueError, match="dialect"):
        dialect_endings("Standard")


def test_course_text_is_our_prose_with_the_words_the_course_needs():
    text = course_text()
    words = re.findall(r"[^\W\d_]+", text)
    assert 1500 <= len(words) <= 2500
    lower = text.lower()
    for word in ("artificial", "intelligence", "tokenization", "attention"):
        assert lower.count(word) >= 3, word
    assert "naïve" in text and "café" in text and "—" in text
    assert any("\u0370" <= c <= "\u03ff" for c in text)  # a Greek letter
    assert len(text.encode("utf-8")) > len(text)  # byte-level tokenization has multi-byte characters


# --- the weighted world and its exact probabilities (Lecture 2, 3) ---

@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dialect", ["standard", "shifted"])
def test_sentence_probabilities_sum_to_one_over_all_sentences(weighted, dialect):
    sentences = all_tiny_world_sentences(dialect)
    assert len(sentences) == len(set(sentences)) == 6 * 5 * 4 * 2
    assert math.isclose(sum(sentence_probability(s, weighted, dialect) for s in sentences), 1.0)


def test_uniform_world_gives_every_sentence_the_same_probability():
    assert all(math.isclose(sentence_probability(s), 1 / 240) for s in all_tiny_world_sentences())


@pytest.mark.parametrize("weighted", [False, True])
def test_next_word_probabilities_multiply_to_the_sentence_probability(weighted):
    # the chain rule: P(w1..w9) = prod_t P(w_t | w_<t), an independent route to the same number
    for sentence in all_tiny_world_sentences()[::7]:
        words = sentence.split()
        steps = [next_word_probabilities(" ".join(words[:t]), weighted)[words[t]] for t in range(9)]
        chained = math.prod(steps)
        assert math.isclose(chained, sentence_probability(sentence, weighted))


def test_weighted_sampling_matches_the_exact_probabilities():
    sentences = tiny_world_sentences(60_000, seed=3, weighted=True)
    counts = Counter(sentences)
    for sentence in ["the cat ate the apple at the table .", "the cat chased the mouse across the garden .",
                     "the owl carried the key into the barn ."]:
        p = sentence_probability(sentence, weighted=True)
        tolerance = 4 * math.sqrt(p * (1 - p) / len(sentences))  # 4 standard deviations of a frequency
        assert abs(counts[sentence] / len(sentences) - p) < tolerance
    assert set(counts) <= set(all_tiny_world_sentences())


def test_weighted_world_has_a_garden_path_for_greedy_decoding():
    # the most probable sentence does not start with the most probable verb (what Lecture 2's Q6 relies on)
    best = max(all_tiny_world_sentences(), key=lambda s: sentence_probability(s, weighted=True))
    verbs = next_word_probabilities("the cat", weighted=True)
    assert best == "the cat ate the apple at the table ."
    assert max(verbs, key=verbs.get) == "chased"


def test_uniform_sentences_unchanged_by_the_weighted_option():
    assert tiny_world_sentences(50, seed=4) == tiny_world_sentences(50, seed=4, weighted=False)
    assert tiny_world_sentences(50, seed=4) != tiny_world_sentences(50, seed=4, weighted=True)


def test_probability_functions_reject_bad_input():
    assert sentence_probability("the cat ate the moon at the table .") == 0.0  # cats do not eat moons
    assert sentence_probability("the cat ate the apple across the garden .") == 0.0  # wrong ending
    with pytest.raises(ValueError, match="does not fit"):
        next_word_probabilities("the table")
    with pytest.raises(ValueError, match="0 to 8 words"):
        next_word_probabilities("the cat ate the apple at the table .")
    with pytest.raises(TypeError, match="prefix"):
        next_word_probabilities(["the"])
    with pytest.raises(TypeError, match="weighted"):
        tiny_world_sentences(3, weighted="yes")


# --- Spelled-out numbers (Q9) ---------------------------------------------------------------------------

_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen seventeen eighteen nineteen").split()
_DECADES = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
            "ninety": 90}


def words_to_number(text: str) -> int:
    """An independent oracle: read English number words back into an int ("hundred" multiplies)."""
    value = 0
    for word in text.split(" "):
        if word == "hundred":
            assert 1 <= value <= 9, text  # only a single digit word comes before "hundred"
            value *= 100
        elif word in _DECADES:
            assert value % 100 == 0, text
            value += _DECADES[word]
        else:
            assert value % 10 == 0 and (value % 100 == 0 or value % 100 >= 20), text
            value += _UNITS.index(word)
    return value


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"), (7, "seven"), (13, "thirteen"), (19, "nineteen"), (20, "twenty"), (21, "twenty one"),
        (99, "ninety nine"), (100, "one hundred"), (101, "one hundred one"), (110, "one hundred ten"),
        (115, "one hundred fifteen"), (342, "three hundred forty two"), (500, "five hundred"),
        (860, "eight hundred sixty"), (999, "nine hundred ninety nine"),
    ],
)
def test_number_to_words_by_hand(n, words):
    assert number_to_words(n) == words


def test_number_words_read_back_to_every_number():
    spelled = [number_to_words(n) for n in range(1000)]
    assert [words_to_number(s) for s in spelled] == list(range(1000))  # round trip, all 1000 numbers
    assert len(set(spelled)) == 1000
    used = {w for s in spelled for w in s.split(" ")}
    assert used == set(number_words()) and len(number_words()) == 29 == len(set(number_words()))
    assert max(len(s.split()) for s in spelled) == 4


def test_spelled_number_pairs():
    pairs = spelled_number_pairs(1000, seed=3)
    numbers = [words_to_number(w) for w, _ in pairs]
    assert sorted(numbers) == list(range(1000))  # distinct: every number exactly once
    assert all(d == " ".join(str(n)) for n, (_, d) in zip(numbers, pairs, strict=True))
    assert pairs == spelled_number_pairs(1000, seed=3) and pairs != spelled_number_pairs(1000, seed=4)
    assert spelled_number_pairs(10, seed=3) == pairs[:10]  # a shorter list is a prefix
    assert any(len(w.split()) != len(d.split()) for w, d in pairs)  # lengths differ
    assert all(words_to_number(w) <= 50 for w, _ in spelled_number_pairs(51, max_value=50))
    with pytest.raises(ValueError, match="n must be <="):
        spelled_number_pairs(52, max_value=50)
    with pytest.raises(ValueError, match="max_value"):
        spelled_number_pairs(3, max_value=1000)
    with pytest.raises(TypeError, match="n"):
        spelled_number_pairs(2.0)
    with pytest.raises(ValueError, match="n"):
        number_to_words(1000)
    with pytest.raises(TypeError, match="n"):
        number_to_words("3")


# --- Two-sentence stories and next sentence prediction (Q11) ------------------------------------------------

def test_stories_are_about_the_same_object_and_follow_the_grammar():
    for a, b in tiny_world_stories(500, seed=1):
        (_, _, obj_a, _), (_, verb_b, obj_b, ending_b) = parse(a), parse(b)
        assert obj_a == obj_b and obj_b in VERBS[verb_b].objects and ending_b in VERBS[verb_b].endings
        assert story_continues(a, b)
    assert tiny_world_stories(5, seed=2) == tiny_world_stories(5, seed=2) != tiny_world_stories(5, seed=3)


def test_the_second_sentence_alone_is_uniform():
    # oracle: the design says every (verb, object) is equally likely for B, as for A (1/20 each)
    counts = Counter(parse(b)[1:3] for _, b in tiny_world_stories(20_000, seed=0))
    assert len(counts) == 20
    expected, sd = 20_000 / 20, math.sqrt(20_000 * (1 / 20) * (19 / 20))
    assert all(abs(c - expected) < 5 * sd for c in counts.values()), counts


def test_nsp_pairs_labels_and_coincidences():
    pairs = nsp_pairs(20_000, seed=0)
    labels = [label for *_, label in pairs]
    assert set(labels) == {0, 1} and abs(sum(labels) / len(labels) - 0.5) < 0.02
    assert all(story_continues(a, b) for a, b, label in pairs if label == 1)
    # NotNext: a random B is about A's object with probability exactly 2/25 (enumerated here)
    sentences = all_tiny_world_sentences()
    objects = Counter(parse(s)[2] for s in sentences)
    coincidence = sum((c / len(sentences)) ** 2 for c in objects.values())
    assert math.isclose(coincidence, 2 / 25)
    not_next = [story_continues(a, b) for a, b, label in pairs if label == 0]
    sd = math.sqrt(coincidence * (1 - coincidence) / len(not_next))
    assert abs(sum(not_next) / len(not_next) - coincidence) < 5 * sd
    assert nsp_pairs(50, seed=9) == nsp_pairs(50, seed=9)


def test_nsp_input():
    a, b = "the cat ate the fish at the table .", "the dog found the key under the bed ."
    tokens, segments = nsp_input(a, b)
    assert tokens[0] == "[CLS]" and tokens[10] == "[SEP]" and tokens[-1] == "[SEP]" and len(tokens) == 21
    assert segments == [0] * 11 + [1] * 10
    assert set(NSP_SPECIALS) == {"[CLS]", "[SEP]"}
    with pytest.raises(ValueError, match="b"):
        nsp_input("the cat", "  ")
    with pytest.raises(TypeError, match="a"):
        nsp_input(["the"], "cat")
    with pytest.raises(ValueError, match="sentence"):
        story_continues("the cat", "the dog")


# --- Lecture 4: film reviews, the recall task, the course notes ------------------------------------------

from utils.data import (  # noqa: E402
    REVIEW_ADJECTIVES,
    REVIEW_CLICHES,
    RecallTask,
    course_notes,
    review_log_odds,
    review_vocabulary,
    reviews,
)


def test_reviews_are_seeded_balanced_and_use_only_the_vocabulary():
    first = reviews(400, seed=3)
    assert first == reviews(400, seed=3) and first != reviews(400, seed=4)
    assert reviews(5, seed=3) == first[:5]  # a longer list starts with the shorter one
    labels = [r.label for r in first]
    assert set(labels) == {0, 1} and abs(sum(labels) / len(labels) - 0.5) < 0.07
    vocabulary = set(review_vocabulary())
    assert all(set(r.text.split()) <= vocabulary for r in first)
    assert {r.verdict for r in first} == {"negative", "positive"}
    assert all(r.text.endswith(" .") for r in first)
    used = {w for r in reviews(3000, seed=0) for w in r.text.split()}
    assert used == vocabulary  # every word of the vocabulary does occur


def test_review_sentences_agree_with_the_verdict_at_the_stated_rates():
    opinion_agrees = opinions = cliche_agrees = cliches = 0
    for r in reviews(4000, seed=1):
        for sentence in r.text.split(" ."):
            words = sentence.split()
            if len(words) == 4 and words[2] == "was":
                opinions += 1
                opinion_agrees += words[3] in REVIEW_ADJECTIVES[r.label]
            elif sentence.strip() in REVIEW_CLICHES[r.label] + REVIEW_CLICHES[1 - r.label]:
                cliches += 1
                cliche_agrees += sentence.strip() in REVIEW_CLICHES[r.label]
    assert abs(opinion_agrees / opinions - 0.85) < 0.02 and abs(cliche_agrees / cliches - 0.65) < 0.02
    assert 1.9 < opinions / 4000 < 2.1 and 1.4 < cliches / 4000 < 1.6  # uniform 1..3 and 1..2 sentences


def test_review_log_odds_by_hand_and_it_is_the_best_classifier():
    strong, weak = math.log(0.85 / 0.15), math.log(0.65 / 0.35)
    text = ("the plot was dull . the music was great . the cast was great . "
            "save your money and stay at home tonight .")
    assert review_log_odds(text) == pytest.approx(strong - weak)
    assert review_log_odds("it runs for two hours . i saw it yesterday with my aunt .") == 0.0
    # the exact posterior is the best rule: on many reviews it beats rules that weigh the clues otherwise
    data = reviews(4000, seed=2)

    def rule_accuracy(opinion_weight: float, cliche_weight: float) -> float:
        right = 0.0
        for r in data:
            score = 0.0
            for sentence in r.text.split(" ."):
                words = sentence.split()
                if len(words) == 4 and words[2] == "was":
                    score += opinion_weight if words[3] in REVIEW_ADJECTIVES[1] else -opinion_weight
                elif sentence.strip() in REVIEW_CLICHES[1]:
                    score += cliche_weight
                elif sentence.strip() in REVIEW_CLICHES[0]:
                    score -= cliche_weight
            right += 0.5 if abs(score) < 1e-9 else float((score > 0) == (r.label == 1))  # a tie: a coin
        return right / len(data)

    bayes = rule_accuracy(strong, weak)
    assert bayes == pytest.approx(rule_accuracy(1.0, weak / strong))  # only the ratio of weights matters
    assert bayes > 0.87
    for other in [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 7.0)]:  # opinions only, clichés only, equal, x7
        assert rule_accuracy(*other) < bayes - 0.01
    with pytest.raises(TypeError, match="text"):
        review_log_odds(None)


def test_recall_task_targets_are_the_symbols_d_steps_back():
    task = RecallTask(length=10, max_distance=7, n_symbols=5)
    assert task.vocab_size == 12 and task.query_id(1) == 5 and task.query_id(7) == 11
    x, y = task.batch(300, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (300, 11)
    assert (y[:, :-1] == -100).all() and (x[:, :-1] < 5).all()
    distances = x[:, -1] - 5 + 1  # the query says d
    assert distances.min() == 1 and distances.max() == 7  # every distance drawn
    assert torch.equal(y[:, -1], x[torch.arange(300), 10 - distances])
    x3, y3 = task.batch(50, generator=torch.Generator().manual_seed(1), distance=3)
    assert (x3[:, -1] == task.query_id(3)).all() and torch.equal(y3[:, -1], x3[:, 7])
    again = task.batch(300, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], x) and torch.equal(again[1], y)


def test_recall_task_bad_arguments():
    with pytest.raises(ValueError, match="max_distance"):
        RecallTask(length=4, max_distance=5)
    with pytest.raises(ValueError, match="n_symbols"):
        RecallTask(n_symbols=1)
    with pytest.raises(ValueError, match="distance"):
        RecallTask(length=4, max_distance=3).batch(2, distance=4)
    with pytest.raises(TypeError, match="distance"):
        RecallTask().query_id(1.0)


def test_course_notes_are_the_prose_of_lectures_1_to_3():
    notes = course_notes()
    assert 100_000 < len(notes) < 200_000 and "<a id=" not in notes
    assert notes.startswith("# Lecture 1") and "# Lecture 3" in notes and "```python" in notes
    assert course_text()[:200] not in notes  # a text of its own, not the course text again


def test_notebook_prose_keeps_markdown_only_without_anchors(tmp_path):
    import nbformat

    from utils.data import notebook_prose

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell('## Q1 · Title <a id="q1"></a>\n\nSome prose.'),
                nbformat.v4.new_code_cell("print('code is left out')"),
                nbformat.v4.new_markdown_cell("  More prose.  ")]
    path = tmp_path / "one.ipynb"
    nbformat.write(nb, path)
    assert notebook_prose([path, path]) == "## Q1 · Title\n\nSome prose.\n\nMore prose.\n\n" \
                                           "## Q1 · Title\n\nSome prose.\n\nMore prose.\n"
