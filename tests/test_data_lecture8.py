"""utils.data, Lecture 8: the world of facts, reading exercises, chains of operations, dialect examples.

Oracles: the world's structure counted directly (three cities per country, one fact per person and
relation), the templates read back word by word, chains evaluated by hand, and word counts of the two
dialects compared exactly.
"""

import random
from collections import Counter

import pytest

from utils.data import (
    CHAIN_OPERATIONS,
    DIALECTS,
    KB_CITIES,
    KB_COMPANIES,
    KB_COUNTRIES,
    KB_PEOPLE,
    KB_QUESTION_TEMPLATES,
    KB_RELATIONS,
    ChainProblem,
    all_tiny_world_sentences,
    arithmetic_chains,
    chain_vocabulary,
    dialect_examples,
    fact_passage,
    fact_question,
    knowledge_vocabulary,
    knowledge_world,
    reading_examples,
)

KINDS = {"person": KB_PEOPLE, "city": KB_CITIES, "country": KB_COUNTRIES, "company": KB_COMPANIES}


def test_world_structure():
    for seed in (0, 1, 7):
        world = knowledge_world(seed)
        assert len(world) == len(set(world)) == 3 * len(KB_PEOPLE) + len(KB_CITIES) + len(KB_COMPANIES)
        pairs = Counter((t.subject, t.relation) for t in world)
        assert set(pairs.values()) == {1}  # one object per subject and relation
        for t in world:
            subject_kind, object_kind = KB_RELATIONS[t.relation]
            assert t.subject in KINDS[subject_kind]
            assert t.object in KINDS.get(object_kind, ()) or object_kind == "job"
        per_country = Counter(t.object for t in world if t.relation == "located_in")
        assert per_country == {country: 3 for country in KB_COUNTRIES}
    assert knowledge_world(0) == knowledge_world(0) != knowledge_world(1)


def test_the_world_does_not_touch_the_global_random_state():
    random.seed(5)
    expected = random.random()
    random.seed(5)
    knowledge_world(2)
    assert random.random() == expected


def test_passages_state_the_fact_and_questions_ask_for_it():
    world = knowledge_world(4)
    vocab = set(knowledge_vocabulary())
    for fact in world:
        words = fact_passage(fact).split()
        assert words[0] == fact.subject and words[-2] == fact.object and words[-1] == "."
        for paraphrase in (False, True):
            question = fact_question(fact, paraphrase).split()
            assert fact.subject in question and fact.object not in question and question[-1] == "?"
            assert set(question) <= vocab
        assert set(words) <= vocab
    # the paraphrase shares no word with the passage but the name and the function words
    for relation in KB_QUESTION_TEMPLATES:
        fact = next(f for f in world if f.relation == relation)
        shared = set(fact_question(fact, True).split()) & set(fact_passage(fact).split())
        assert shared <= {fact.subject, "is", "the", "a", "in"}, (relation, shared)
    with pytest.raises(ValueError, match="relation"):
        fact_passage(("abelo", "likes", "tea"))
    with pytest.raises(TypeError, match="fact"):
        fact_question("abelo born_in vessa")


def test_reading_examples():
    examples = reading_examples(300, world_seeds=[11, 12], seed=3)
    assert examples == reading_examples(300, world_seeds=[11, 12], seed=3)
    worlds = knowledge_world(11) + knowledge_world(12)
    passages = {fact_passage(f): f for f in worlds}
    for ex in examples:
        assert len(ex.passages) == 3 and len(set(ex.passages)) == 3
        gold = passages[ex.passages[ex.answer_slot]]
        assert gold.object == ex.answer
        assert ex.question in (fact_question(gold), fact_question(gold, True))
        for slot, passage in enumerate(ex.passages):  # look-alikes: the same name, or the same relation
            if slot != ex.answer_slot:
                other = passages[passage]
                assert gold.subject in passage.split() or (other.relation == gold.relation
                                                           and other.subject != gold.subject)
    assert {ex.answer_slot for ex in examples} == {0, 1, 2}
    kinds = Counter(gold_subject_in for ex in examples for gold_subject_in in
                    [passages[p].subject == passages[ex.passages[ex.answer_slot]].subject
                     for i, p in enumerate(ex.passages) if i != ex.answer_slot])
    assert kinds[True] > 100 and kinds[False] > 100  # both kinds of look-alike are common
    with pytest.raises(ValueError, match="world_seeds"):
        reading_examples(1, world_seeds=[])


def test_chains_are_evaluated_left_to_right_modulo_10():
    p = ChainProblem(7, (("*", 8), ("-", 9), ("+", 5)))
    assert p.steps == (56 % 10, (6 - 9) % 10, (7 + 5) % 10) == (6, 7, 2)
    assert p.question == "7 * 8 - 9 + 5 ="
    assert p.text(scratchpad=False) == "7 * 8 - 9 + 5 = 2 ."
    assert p.text(scratchpad=True) == "7 * 8 - 9 + 5 = 6 7 2 ; 2 ."
    with pytest.raises(TypeError, match="scratchpad"):
        p.text("yes")
    assert ChainProblem.parse(p.question) == p == ChainProblem.parse("7 * 8 - 9 + 5")
    for bad in ("7 *", "7 / 8", "12 + 3", "", "7 + 8 9"):
        with pytest.raises(ValueError, match="text must read"):
            ChainProblem.parse(bad)


def test_random_chains():
    problems = arithmetic_chains(2000, n_operations=4, seed=1)
    assert problems == arithmetic_chains(2000, n_operations=4, seed=1)
    vocab = set(chain_vocabulary())
    for p in problems:
        assert 0 <= p.start <= 9 and len(p.operations) == 4
        for op, operand in p.operations:
            assert op in CHAIN_OPERATIONS and (2 if op == "*" else 1) <= operand <= 9
        value = p.start
        for op, operand in p.operations:
            value = {"+": value + operand, "-": value - operand, "*": value * operand}[op] % 10
        assert p.answer == value
        assert set(p.text(True).split()) <= vocab
    ops = Counter(op for p in problems for op, _ in p.operations)
    assert all(abs(n / 8000 - 1 / 3) < 0.03 for n in ops.values())


def test_dialects_use_every_word_equally_often():
    standard, shifted = (all_tiny_world_sentences(d) for d in DIALECTS)
    assert not set(standard) & set(shifted)  # no sentence belongs to both
    assert Counter(w for s in standard for w in s.split()) == Counter(w for s in shifted for w in s.split())


def test_dialect_examples():
    examples = dialect_examples(1000, seed=2)
    pools = {d: set(all_tiny_world_sentences(d)) for d in DIALECTS}
    assert all(sentence in pools[DIALECTS[label]] for sentence, label in examples)
    assert abs(sum(label for _, label in examples) / 1000 - 0.5) < 0.05
    few = {"standard": ["a ."], "shifted": ["b ."]}
    assert {s for s, _ in dialect_examples(50, seed=0, sentences=few)} == {"a .", "b ."}
    with pytest.raises(ValueError, match="sentences must map"):
        dialect_examples(3, sentences={"standard": ["a ."]})
