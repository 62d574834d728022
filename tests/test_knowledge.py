"""utils.knowledge: the triple store's lookups against brute force, traversal, verification, drawing."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from utils.data import KB_RELATIONS, knowledge_world  # noqa: E402
from utils.knowledge import (  # noqa: E402
    CONTRADICTED,
    SUPPORTED,
    UNKNOWN,
    Triple,
    TripleStore,
    draw_graph,
    layered_layout,
)

WORLD = knowledge_world(seed=3)
STORE = TripleStore(WORLD)


def test_match_equals_brute_force_for_every_pattern():
    subjects = ["abelo", "vessa", "orrin", "nobody"]
    relations = [*KB_RELATIONS, "likes"]
    objects = ["vessa", "baker", "norvania", "nothing"]
    for s, r, o in itertools.product([None, *subjects], [None, *relations], [None, *objects]):
        expected = [t for t in WORLD if (s is None or t.subject == s) and (r is None or t.relation == r)
                    and (o is None or t.object == o)]
        assert STORE.match(s, r, o) == expected, (s, r, o)


def test_follow_is_the_composition_of_the_hops():
    for person in ["abelo", "brisa", "nilsa"]:
        city = STORE.objects(person, "born_in")
        assert len(city) == 1
        assert STORE.follow(person, ["born_in", "located_in"]) == STORE.objects(city[0], "located_in")
        company = STORE.objects(person, "works_for")[0]
        base = STORE.objects(company, "based_in")[0]
        country = STORE.objects(base, "located_in")
        assert STORE.follow(person, ["works_for", "based_in", "located_in"]) == country
        path = STORE.paths(person, ["works_for", "based_in"])
        assert path == [[Triple(person, "works_for", company), Triple(company, "based_in", base)]]
    assert STORE.follow("abelo", ["located_in"]) == []  # a person is not located in anything
    assert STORE.follow("nobody", ["born_in"]) == []


def test_paths_branch_and_backwards_lookups_invert_forwards():
    store = TripleStore([("a", "r", "b"), ("a", "r", "c"), ("b", "s", "d"), ("c", "s", "d"), ("c", "s", "e")])
    assert store.follow("a", ["r", "s"]) == ["d", "e"]  # d reached twice, listed once
    assert len(store.paths("a", ["r", "s"])) == 3
    for t in WORLD:
        assert t.subject in STORE.subjects(t.relation, t.object)
        assert t.object in STORE.objects(t.subject, t.relation)


def test_verify_supported_contradicted_unknown():
    fact = WORLD[0]
    assert STORE.verify(fact) == SUPPORTED and fact in STORE
    other_city = next(t.object for t in WORLD if t.relation == "born_in" and t.object != fact.object)
    assert STORE.verify((fact.subject, fact.relation, other_city)) == CONTRADICTED
    assert STORE.verify(("nobody", "born_in", other_city)) == UNKNOWN
    assert STORE.verify((fact.subject, "likes", "tea")) == UNKNOWN


def test_store_keeps_triples_once_in_order_and_does_not_change_its_input():
    triples = [("a", "r", "b"), ("c", "r", "d"), ("a", "r", "b")]
    copy = list(triples)
    store = TripleStore(triples)
    assert list(store) == [Triple("a", "r", "b"), Triple("c", "r", "d")] and triples == copy
    assert store.entities == ["a", "b", "c", "d"] and store.relations == ["r"]
    assert ("a", "r", "b") in store and ("a", "r") not in store


def test_neighbourhood():
    person = "abelo"
    one = STORE.neighbourhood(person, hops=1)
    assert set(one) == {t for t in WORLD if person in (t.subject, t.object)}
    two = STORE.neighbourhood(person, hops=2)
    near = {x for t in one for x in (t.subject, t.object)}
    assert set(two) == {t for t in WORLD if t.subject in near or t.object in near}


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="triples"):
        TripleStore("abc")
    with pytest.raises(TypeError, match=r"triples\[1\]"):
        TripleStore([("a", "r", "b"), ("a", "r")])
    with pytest.raises(TypeError, match="relations must be a list"):
        STORE.follow("abelo", "born_in")
    with pytest.raises(ValueError, match="at least one hop"):
        STORE.follow("abelo", [])
    with pytest.raises(TypeError, match="subject must be a str"):
        STORE.match(subject=3)
    with pytest.raises(ValueError, match="hops"):
        STORE.neighbourhood("abelo", hops=0)


def test_layout_and_drawing():
    positions = layered_layout([["a", "b", "c"], ["d"], ["a", "e"]])
    assert positions == {"a": (0.0, 1.0), "b": (0.0, 0.5), "c": (0.0, 0.0), "d": (1.0, 0.5), "e": (2.0, 0.5)}
    triples = [("a", "r", "d"), ("b", "r", "d"), ("d", "s", "e")]
    ax = draw_graph(triples, positions, highlight=[("a", "r", "d")])
    labels = [t.get_text() for t in ax.texts]
    assert {"a", "b", "d", "e", "r", "s"} <= set(labels)
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="'e'"):
        draw_graph([("d", "s", "e")], {"d": (0, 0)})
