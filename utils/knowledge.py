"""Knowledge graphs (Lecture 8, Q40): a triple store, multi-hop traversal, fact checking, a drawing.

A knowledge graph stores facts as **triples** ``(subject, relation, object)``, the data model of RDF
(W3C 2014): ``("corvane", "born_in", "quorra")`` is an edge labelled ``born_in`` from the node
``corvane`` to the node ``quorra``. A question that needs several facts ("in which country was corvane
born?") becomes a walk along edges: ``born_in``, then ``located_in``. A statement a language model
writes can be checked against the graph: *supported* (the triple is stored), *contradicted* (the graph
holds another object for the same subject and relation) or *unknown* (the graph says nothing).

>>> store = TripleStore([("ada", "born_in", "rome"), ("rome", "located_in", "italy")])
>>> store.follow("ada", ["born_in", "located_in"])
['italy']
>>> store.verify(("ada", "born_in", "paris")), store.verify(("bob", "born_in", "paris"))
('contradicted', 'unknown')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # matplotlib is imported only when a graph is drawn: utils.data needs Triple, not plots
    from matplotlib.axes import Axes

__all__ = ["Triple", "TripleStore", "SUPPORTED", "CONTRADICTED", "UNKNOWN", "layered_layout", "draw_graph"]

SUPPORTED, CONTRADICTED, UNKNOWN = "supported", "contradicted", "unknown"


class Triple(NamedTuple):
    """One fact: an edge ``relation`` from ``subject`` to ``object``."""

    subject: str
    relation: str
    object: str


def _check_triple(name: str, triple: object) -> Triple:
    if not isinstance(triple, tuple) or len(triple) != 3 or not all(isinstance(x, str) for x in triple):
        raise TypeError(f"{name} must be a (subject, relation, object) tuple of three str, got {triple!r}")
    return Triple(*triple)


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


class TripleStore:
    """A set of triples with the three lookups a graph needs, each answered from an index.

    - ``match(subject=None, relation=None, object=None)``: every triple that fits the pattern (``None``
      is a wildcard, like a variable in a SPARQL query), in insertion order;
    - ``follow(start, relations)``: the entities reached from ``start`` by following the relations in
      order (a multi-hop question), and ``paths(start, relations)``: the triples along each way there;
    - ``verify(triple)``: ``"supported"``, ``"contradicted"`` or ``"unknown"``.

    ``verify`` reads the graph as complete for the (subject, relation) pairs it knows and assumes that
    every relation has one object per subject (a person is born in one city): another stored object
    contradicts the statement. The store is immutable; duplicates are kept once.

    >>> store = TripleStore([("a", "r", "b"), ("a", "r", "b"), ("b", "s", "c")])
    >>> len(store), store.match(relation="s")
    (2, [Triple(subject='b', relation='s', object='c')])
    """

    def __init__(self, triples: Iterable[tuple[str, str, str]]) -> None:
        if isinstance(triples, (str, bytes)) or not isinstance(triples, Iterable):
            raise TypeError(f"triples must be an iterable of (subject, relation, object), got "
                            f"{type(triples).__name__}")
        checked = [_check_triple(f"triples[{i}]", t) for i, t in enumerate(triples)]
        self._triples: tuple[Triple, ...] = tuple(dict.fromkeys(checked))  # dedupe, keep the order
        self._out: dict[tuple[str, str], list[str]] = {}  # (subject, relation) -> objects
        self._in: dict[tuple[str, str], list[str]] = {}  # (relation, object) -> subjects
        for s, r, o in self._triples:
            self._out.setdefault((s, r), []).append(o)
            self._in.setdefault((r, o), []).append(s)

    def __len__(self) -> int:
        return len(self._triples)

    def __iter__(self):
        return iter(self._triples)

    def __contains__(self, triple: object) -> bool:
        return isinstance(triple, tuple) and len(triple) == 3 and tuple(triple) in self._set

    @property
    def _set(self) -> set[Triple]:
        if not hasattr(self, "_cached_set"):
            self._cached_set = set(self._triples)
        return self._cached_set

    @property
    def relations(self) -> list[str]:
        """The distinct relations, in order of first appearance."""
        return list(dict.fromkeys(t.relation for t in self._triples))

    @property
    def entities(self) -> list[str]:
        """Every subject and object, in order of first appearance."""
        return list(dict.fromkeys(x for t in self._triples for x in (t.subject, t.object)))

    def match(self, subject: str | None = None, relation: str | None = None,
              object: str | None = None) -> list[Triple]:  # noqa: A002 (the triple's own field name)
        """Every stored triple equal to the pattern where it is not ``None``.

        >>> TripleStore([("a", "r", "b"), ("c", "r", "b")]).match(object="b", subject="c")
        [Triple(subject='c', relation='r', object='b')]
        """
        for name, value in (("subject", subject), ("relation", relation), ("object", object)):
            if value is not None:
                _check_str(name, value)
        if subject is not None and relation is not None:  # the index answers the common lookup
            return [Triple(subject, relation, o) for o in self._out.get((subject, relation), [])
                    if object is None or o == object]
        return [t for t in self._triples if (subject is None or t.subject == subject)
                and (relation is None or t.relation == relation) and (object is None or t.object == object)]

    def objects(self, subject: str, relation: str) -> list[str]:
        """The objects of ``(subject, relation, ?)`` (an empty list when the graph knows none)."""
        return list(self._out.get((_check_str("subject", subject), _check_str("relation", relation)), []))

    def subjects(self, relation: str, object: str) -> list[str]:  # noqa: A002
        """The subjects of ``(?, relation, object)``: the edge walked backwards."""
        return list(self._in.get((_check_str("relation", relation), _check_str("object", object)), []))

    def paths(self, start: str, relations: Sequence[str]) -> list[list[Triple]]:
        """Every walk from ``start`` along ``relations`` in order, as the list of triples it uses.

        >>> store = TripleStore([("a", "r", "b"), ("a", "r", "c"), ("c", "s", "d")])
        >>> store.paths("a", ["r", "s"])
        [[Triple(subject='a', relation='r', object='c'), Triple(subject='c', relation='s', object='d')]]
        """
        _check_str("start", start)
        if isinstance(relations, str) or not isinstance(relations, Sequence):
            raise TypeError("relations must be a list of relation names (one per hop), not "
                            f"{type(relations).__name__}")
        if not relations:
            raise ValueError("relations must name at least one hop")
        walks: list[list[Triple]] = [[]]
        for hop, relation in enumerate(relations):
            _check_str(f"relations[{hop}]", relation)
            walks = [walk + [Triple(at, relation, o)] for walk in walks
                     for at in [walk[-1].object if walk else start]  # where this walk stands now
                     for o in self._out.get((at, relation), [])]
        return walks

    def follow(self, start: str, relations: Sequence[str]) -> list[str]:
        """The entities at the end of the walks from ``start`` along ``relations`` (each once, in the
        order found); empty when some hop leads nowhere.

        >>> TripleStore([("a", "r", "b"), ("b", "s", "c")]).follow("a", ["r", "s"])
        ['c']
        """
        return list(dict.fromkeys(walk[-1].object for walk in self.paths(start, relations)))

    def verify(self, triple: tuple[str, str, str]) -> str:
        """``"supported"`` if the graph holds ``triple``, ``"contradicted"`` if it holds another object
        for the same subject and relation, else ``"unknown"`` (the graph cannot say).

        >>> store = TripleStore([("a", "r", "b")])
        >>> [store.verify(t) for t in [("a", "r", "b"), ("a", "r", "x"), ("a", "q", "x")]]
        ['supported', 'contradicted', 'unknown']
        """
        s, r, o = _check_triple("triple", triple)
        known = self._out.get((s, r), [])
        if o in known:
            return SUPPORTED
        return CONTRADICTED if known else UNKNOWN

    def neighbourhood(self, entity: str, hops: int = 1) -> list[Triple]:
        """The triples within ``hops`` edges of ``entity``, in either direction (for drawing a part)."""
        _check_str("entity", entity)
        if isinstance(hops, bool) or not isinstance(hops, int) or hops < 1:
            raise ValueError(f"hops must be an int >= 1, got {hops!r}")
        reached, frontier, found = {entity}, {entity}, set()
        for _ in range(hops):
            new = {t for t in self._triples if (t.subject in frontier or t.object in frontier)} - found
            found |= new
            frontier = {x for t in new for x in (t.subject, t.object)} - reached
            reached |= frontier
        return [t for t in self._triples if t in found]


def layered_layout(layers: Sequence[Sequence[str]], width: float = 1.0,
                   height: float = 1.0) -> dict[str, tuple[float, float]]:
    """Positions for a graph drawn in columns: ``layers[i]`` (a list of entities) at ``x = i``, spread
    evenly from top to bottom in the given order. An entity listed twice keeps its first place.

    >>> layered_layout([["a", "b"], ["c"]])
    {'a': (0.0, 1.0), 'b': (0.0, 0.0), 'c': (1.0, 0.5)}
    """
    positions: dict[str, tuple[float, float]] = {}
    for column, layer in enumerate(layers):
        layer = [e for e in dict.fromkeys(layer) if e not in positions]
        for row, entity in enumerate(layer):
            y = 0.5 if len(layer) == 1 else 1 - row / (len(layer) - 1)
            positions[entity] = (column * width, y * height)
    return positions


def draw_graph(triples: Iterable[tuple[str, str, str]], positions: dict[str, tuple[float, float]],
               highlight: Iterable[tuple[str, str, str]] = (), ax: Axes | None = None,
               title: str | None = None, edge_labels: bool = True) -> Axes:
    """Draw ``triples`` as labelled arrows between entities at ``positions`` (``layered_layout``);
    the triples in ``highlight`` (a path) are drawn thick and red, the others grey.

    Every entity of ``triples`` needs a position (``ValueError`` names the first one that has none).
    """
    triples = [_check_triple("triple", t) for t in triples]
    marked = {_check_triple("highlight", t) for t in highlight}
    missing = [x for t in triples for x in (t.subject, t.object) if x not in positions]
    if missing:
        raise ValueError(f"positions has no place for {missing[0]!r} (give every entity a position)")
    if ax is None:
        import matplotlib.pyplot as plt  # noqa: PLC0415 (see the import note at the top)

        _, ax = plt.subplots(figsize=(9, 5))
    for t in triples:
        (x0, y0), (x1, y1) = positions[t.subject], positions[t.object]
        hot = t in marked
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "color": "tab:red" if hot else "#b0b0b0",
                                "lw": 2.2 if hot else 0.8, "shrinkA": 14, "shrinkB": 14}, zorder=1)
        if edge_labels:
            ax.text(0.55 * x0 + 0.45 * x1, 0.55 * y0 + 0.45 * y1, t.relation, fontsize=7, ha="center",
                    va="center", color="tab:red" if hot else "#808080",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8}, zorder=2)
    on_path = {x for t in marked for x in (t.subject, t.object)}
    for entity in dict.fromkeys(x for t in triples for x in (t.subject, t.object)):
        x, y = positions[entity]
        ax.text(x, y, entity, ha="center", va="center", fontsize=9, zorder=3,
                bbox={"boxstyle": "round,pad=0.3", "fc": "#ffe0e0" if entity in on_path else "#e8f0fe",
                      "ec": "tab:red" if entity in on_path else "#4a74c9"})
    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]
    ax.set_xlim(min(xs) - 0.4, max(xs) + 0.4)
    ax.set_ylim(min(ys) - 0.1, max(ys) + 0.1)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax
