"""A tiny scalar autograd engine: the chain rule made visible (Lecture 7, Q31).

Every ``Value`` holds one number and remembers how it was made: from which Values (its *children*) and by
which operation. Calling ``backward()`` on a result walks that graph from the result back to its inputs
and applies the chain rule at every node: the gradient arriving at a node, times the local derivative
of the operation that made it, is what flows on to each child. A node used twice receives both
contributions, added. That is reverse-mode automatic differentiation, the algorithm behind
backpropagation (Rumelhart, Hinton & Williams 1986) and behind ``torch.autograd``; this module is the
idea of Andrej Karpathy's *micrograd*, written for the course.

>>> a, b = Value(2.0), Value(-3.0)
>>> c = a * b + a          # a is used twice: dc/da = b + 1 = -2, dc/db = a = 2
>>> c.backward()
>>> c.data, a.grad, b.grad
(-4.0, -2.0, 2.0)

``MLP`` is a multi-layer perceptron made of Values (every weight a ``Value``), small enough to train in
seconds on a 2-D task; ``draw_graph`` draws a computation graph with each node's value and gradient.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is imported only when a graph is drawn
    from matplotlib.axes import Axes

__all__ = ["Value", "topological_order", "graph_layers", "draw_graph", "Neuron", "Layer", "MLP",
           "hinge_loss", "as_value"]

Number = int | float


def _check_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number (int or float), got {type(value).__name__}")
    return float(value)


def as_value(x: Value | Number) -> Value:
    """``x`` itself if it is a ``Value``, else a new constant ``Value(x)``; anything else is a TypeError.

    >>> as_value(3).data, as_value(Value(2.0)).data
    (3.0, 2.0)
    """
    return x if isinstance(x, Value) else Value(_check_number("operand", x))


class Value:
    """A scalar that remembers how it was computed, and so can be differentiated.

    - ``data`` (float): the number; ``grad`` (float): ``∂root/∂self`` after ``root.backward()``, 0.0 before.
    - Arithmetic with numbers or Values on either side: ``+ - * /``; ``** number`` (the exponent is a plain
      number, not a Value); unary ``-``; ``exp()``, ``log()``, ``tanh()``, ``relu()``, ``sigmoid()``.
      Each creates a new Value that keeps its ``children`` (the Values it was computed from) and its
      ``local_grads``: the derivative of the operation with respect to each child, at these inputs.
    - ``backward()`` sets ``self.grad = 1`` and fills ``grad`` of every Value this one depends on with
      the derivative of ``self`` with respect to it: the chain rule, applied in reverse topological
      order, each node once, so a Value used twice gets both contributions. The gradients of the
      graph are reset first, so calling it twice gives the same numbers, not twice the numbers.

    Storing numbers (the local derivatives) rather than a closure per node keeps the graph free of
    reference cycles, so Python frees it as soon as it is no longer used. ``label`` is an optional
    name and ``op`` the operation that made the Value (``""`` for an input), both shown by
    ``draw_graph``. Errors: ``log`` of a number <= 0 is a ValueError; dividing by a Value whose data is
    0 raises ZeroDivisionError, as for floats.

    >>> x = Value(0.5, label="x")
    >>> y = (2 * x).tanh()
    >>> y.backward()
    >>> round(y.data, 4), round(x.grad, 4)     # d tanh(2x)/dx = 2 (1 - tanh(2x)^2)
    (0.7616, 0.8399)
    >>> t = 0.25                                # an operation from outside: its value and local derivative
    >>> z = Value(t * t, children=(x,), local_grads=(2 * t,), op="square")
    """

    __slots__ = ("data", "grad", "children", "local_grads", "op", "label")

    def __init__(self, data: float, children: tuple[Value, ...] = (), local_grads: tuple[float, ...] = (),
                 op: str = "", label: str = "") -> None:
        self.data = _check_number("data", data)
        self.grad = 0.0
        if not isinstance(children, tuple) or not all(isinstance(c, Value) for c in children):
            raise TypeError("children must be a tuple of Values")
        if not isinstance(local_grads, tuple) or len(local_grads) != len(children):
            raise ValueError(f"local_grads must be a tuple with one derivative per child ({len(children)}), "
                             f"got {local_grads!r}")
        self.children = children
        self.local_grads = tuple(_check_number("local_grads", g) for g in local_grads)
        if not isinstance(op, str) or not isinstance(label, str):
            raise TypeError("op and label must be str")
        self.op = op
        self.label = label

    @classmethod
    def _result(cls, data: float, children: tuple[Value, ...], local_grads: tuple[float, ...],
                op: str) -> Value:
        """The Value an operation returns: the same fields as ``__init__`` sets, without re-checking
        them (the operations below build them right), because a training step makes thousands."""
        out = cls.__new__(cls)
        out.data, out.grad, out.children, out.local_grads = data, 0.0, children, local_grads
        out.op, out.label = op, ""
        return out

    def __repr__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        return f"Value({name}data={self.data:.4g}, grad={self.grad:.4g})"

    # --- the operations: each returns a new Value with its local derivatives -----------------------------

    def __add__(self, other: Value | Number) -> Value:
        other = as_value(other)
        return Value._result(self.data + other.data, (self, other), (1.0, 1.0), "+")  # d(a+b)/da = 1 = d/db

    def __mul__(self, other: Value | Number) -> Value:
        other = as_value(other)
        # d(ab)/da = b, d(ab)/db = a: each child gets the other's value
        return Value._result(self.data * other.data, (self, other), (other.data, self.data), "*")

    def __pow__(self, exponent: Number) -> Value:
        if isinstance(exponent, Value):
            raise TypeError("the exponent of ** must be a plain number (int or float), not a Value")
        n = _check_number("exponent", exponent)
        if self.data == 0 and n < 0:
            raise ZeroDivisionError(f"0 cannot be raised to the negative power {exponent}")
        if self.data < 0 and not n.is_integer():
            raise ValueError(f"a negative number ({self.data}) has no real power {exponent}")
        local = n * self.data ** (n - 1)  # d x^n / dx = n x^(n-1)
        return Value._result(self.data**n, (self,), (local,), f"**{exponent:g}")

    def exp(self) -> Value:
        e = math.exp(self.data)
        return Value._result(e, (self,), (e,), "exp")  # d e^x/dx = e^x

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log needs a Value with data > 0, got {self.data}")
        return Value._result(math.log(self.data), (self,), (1.0 / self.data,), "log")  # d ln x/dx = 1/x

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return Value._result(t, (self,), (1.0 - t * t,), "tanh")  # d tanh x/dx = 1 - tanh² x

    def relu(self) -> Value:
        positive = self.data > 0  # slope 1 where x > 0, else 0 (0 at x = 0, as PyTorch)
        return Value._result(self.data if positive else 0.0, (self,), (1.0 if positive else 0.0,), "relu")

    def sigmoid(self) -> Value:
        x = self.data  # either branch takes exp of a number <= 0 only, so neither overflows
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return Value._result(s, (self,), (s * (1.0 - s),), "sigmoid")  # dσ/dx = σ (1 - σ)

    # --- the rest are combinations of the above (so they need no derivative of their own) -------------

    def __neg__(self) -> Value:
        return self * -1

    def __sub__(self, other: Value | Number) -> Value:
        return self + (-as_value(other))

    def __truediv__(self, other: Value | Number) -> Value:
        return self * as_value(other) ** -1

    def __radd__(self, other: Number) -> Value:  # 2 + v
        return as_value(other) + self

    def __rsub__(self, other: Number) -> Value:  # 2 - v
        return as_value(other) - self

    def __rmul__(self, other: Number) -> Value:  # 2 * v
        return as_value(other) * self

    def __rtruediv__(self, other: Number) -> Value:  # 2 / v
        return as_value(other) / self

    # --- backpropagation ------------------------------------------------------------------------------

    def backward(self) -> None:
        """Fill ``grad`` of every Value in this one's graph with ``∂self/∂that`` (``self.grad = 1``).

        The chain rule at one node: what arrives at the node (its ``grad``, the derivative of ``self``
        with respect to it) times the local derivative of the node with respect to a child is that
        child's share, added to the child's ``grad``. Reverse topological order guarantees that a node's
        gradient is complete (every path from ``self`` to it has delivered its part) before the node
        passes it on.
        """
        order = topological_order(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            for child, local in zip(node.children, node.local_grads, strict=True):
                child.grad += local * node.grad


def topological_order(root: Value) -> list[Value]:
    """Every Value ``root`` depends on, ``root`` included, each once, children before parents.

    Iterative (no recursion), so a long chain of operations cannot exceed Python's recursion limit.

    >>> a = Value(1.0, label="a")
    >>> b = a * a + a
    >>> [v.op or v.label for v in topological_order(b)]
    ['a', '*', '+']
    """
    if not isinstance(root, Value):
        raise TypeError(f"root must be a Value, got {type(root).__name__}")
    order: list[Value] = []
    visited = {root}  # Values hash by identity: equal numbers are still different nodes
    stack = [(root, iter(root.children))]
    while stack:
        node, pending = stack[-1]
        for child in pending:
            if child not in visited:  # go down to the first child not yet placed
                visited.add(child)
                stack.append((child, iter(child.children)))
                break
        else:  # every child placed: the node can follow them
            stack.pop()
            order.append(node)
    return order


def graph_layers(root: Value) -> list[list[Value]]:
    """The graph of ``root`` in columns for drawing: column 0 holds the inputs, and every other node sits
    one column right of its right-most child (its depth, the longest path from an input).

    >>> a, b = Value(1.0), Value(2.0)
    >>> [[v.op or "input" for v in layer] for layer in graph_layers((a * b).tanh())]
    [['input', 'input'], ['*'], ['tanh']]
    """
    depth: dict[int, int] = {}
    layers: list[list[Value]] = []
    for node in topological_order(root):
        d = 1 + max((depth[id(c)] for c in node.children), default=-1)
        depth[id(node)] = d
        while len(layers) <= d:
            layers.append([])
        layers[d].append(node)
    return layers


def _node_text(node: Value) -> str:
    name = node.label or (node.op if node.op else "input")
    if node.label and node.op:
        name = f"{node.label} = {node.op}"
    return f"{name}\ndata {node.data:.3g}\ngrad {node.grad:.3g}"


def draw_graph(root: Value, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Draw the computation graph of ``root``: one box per Value (its label or operation, its data and
    its grad), arrows from each child to the Value made from it, inputs on the left, ``root`` on the right.
    Call ``root.backward()`` first to show the gradients. Returns the axes.
    """
    layers = graph_layers(root)
    if ax is None:
        import matplotlib.pyplot as plt  # noqa: PLC0415 (see the import note at the top)

        _, ax = plt.subplots(figsize=(2.0 * len(layers) + 1, 1.2 * max(len(layer) for layer in layers) + 1))
    positions: dict[int, tuple[float, float]] = {}
    for column, layer in enumerate(layers):
        for row, node in enumerate(layer):
            positions[id(node)] = (float(column), (len(layer) - 1) / 2 - row)
    for layer in layers:
        for node in layer:
            x1, y1 = positions[id(node)]
            for child in dict.fromkeys(node.children):  # a node used twice by one op gets one arrow
                x0, y0 = positions[id(child)]
                ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=1,
                            arrowprops={"arrowstyle": "-|>", "color": "#808080", "lw": 1.0,
                                        "shrinkA": 26, "shrinkB": 26})
    for layer in layers:
        for node in layer:
            x, y = positions[id(node)]
            is_root = node is root
            ax.text(x, y, _node_text(node), ha="center", va="center", fontsize=8, zorder=3,
                    family="monospace",
                    bbox={"boxstyle": "round,pad=0.35", "ec": "tab:red" if is_root else "#4a74c9",
                          "fc": "#ffe8e0" if is_root else ("#eef3fc" if node.op else "#e9f6e9")})
    half = max(len(layer) for layer in layers) / 2
    ax.set_xlim(-0.6, len(layers) - 0.4)
    ax.set_ylim(-half - 0.1, half + 0.1)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


# --- a multi-layer perceptron made of Values ----------------------------------------------------------

class Neuron:
    """``act(w · x + b)``: one unit with ``n_inputs`` weights, drawn uniformly from ``[-1, 1]`` by ``rng``
    (a ``random.Random``), and a bias starting at 0. ``activation`` is ``"tanh"``, ``"relu"`` or
    ``"linear"``."""

    ACTIVATIONS = ("tanh", "relu", "linear")

    def __init__(self, n_inputs: int, activation: str = "tanh", rng: random.Random | None = None) -> None:
        if isinstance(n_inputs, bool) or not isinstance(n_inputs, int) or n_inputs < 1:
            raise ValueError(f"n_inputs must be an int >= 1, got {n_inputs!r}")
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"activation must be one of {self.ACTIVATIONS}, got {activation!r}")
        rng = rng or random.Random(0)
        self.w = [Value(rng.uniform(-1, 1)) for _ in range(n_inputs)]
        self.b = Value(0.0)
        self.activation = activation

    def __call__(self, x: Sequence[Value | Number]) -> Value:
        if len(x) != len(self.w):
            raise ValueError(f"the input must have {len(self.w)} numbers, got {len(x)}")
        total = self.b
        for wi, xi in zip(self.w, x, strict=True):
            total = total + wi * xi
        if self.activation == "tanh":
            return total.tanh()
        return total.relu() if self.activation == "relu" else total

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]


class Layer:
    """``n_outputs`` neurons reading the same inputs."""

    def __init__(self, n_inputs: int, n_outputs: int, activation: str = "tanh",
                 rng: random.Random | None = None) -> None:
        if isinstance(n_outputs, bool) or not isinstance(n_outputs, int) or n_outputs < 1:
            raise ValueError(f"n_outputs must be an int >= 1, got {n_outputs!r}")
        rng = rng or random.Random(0)
        self.neurons = [Neuron(n_inputs, activation, rng) for _ in range(n_outputs)]

    def __call__(self, x: Sequence[Value | Number]) -> list[Value]:
        return [neuron(x) for neuron in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for neuron in self.neurons for p in neuron.parameters()]


class MLP:
    """A multi-layer perceptron of Values: ``MLP(2, [8, 8, 1])`` maps 2 numbers to 1 through two hidden
    layers of 8 units. Hidden layers use ``activation``; the last layer is linear (a score). Weights are
    drawn by ``random.Random(seed)``.

    >>> model = MLP(2, [4, 1], seed=0)
    >>> len(model.parameters()), type(model([0.5, -1.0])).__name__   # (2·4 + 4) + (4 + 1)
    (17, 'Value')
    """

    def __init__(self, n_inputs: int, sizes: Sequence[int], activation: str = "tanh", seed: int = 0) -> None:
        if not isinstance(sizes, Sequence) or isinstance(sizes, str) or len(sizes) == 0:
            raise ValueError(f"sizes must be a non-empty list of layer widths, got {sizes!r}")
        rng = random.Random(seed)
        widths = [n_inputs, *sizes]
        self.layers = [Layer(widths[i], widths[i + 1], activation if i < len(sizes) - 1 else "linear", rng)
                       for i in range(len(sizes))]

    def __call__(self, x: Sequence[Value | Number]) -> Value | list[Value]:
        out: Sequence[Value | Number] = x
        for layer in self.layers:
            out = layer(out)
        return out[0] if len(out) == 1 else list(out)

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]


def hinge_loss(scores: Iterable[Value], labels: Iterable[int]) -> Value:
    """The mean of ``relu(1 - y · score)`` over examples, with labels ``y`` in ``{-1, +1}`` (the SVM's
    max-margin loss): 0 once every example is on its side with a margin of 1.

    >>> hinge_loss([Value(2.0), Value(0.5)], [1, 1]).data   # (0 + 0.5) / 2
    0.25
    """
    scores, labels = list(scores), list(labels)
    if len(scores) != len(labels) or not scores:
        raise ValueError(f"scores and labels must be non-empty and of the same length, got {len(scores)} "
                         f"and {len(labels)}")
    if any(y not in (-1, 1) for y in labels):
        raise ValueError("labels must be -1 or +1")
    total = Value(0.0)
    for score, y in zip(scores, labels, strict=True):
        total = total + (1 - y * score).relu()
    return total / len(scores)
