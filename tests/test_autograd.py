"""utils.autograd: every operation's value and gradient against PyTorch's autograd (float64), on fixed
expressions and on random expression graphs that reuse nodes; derivatives checked by hand and by finite
differences; the MLP of Values against a torch MLP with the same weights; bad inputs."""

import math
import random

import matplotlib
import pytest
import torch

from utils.autograd import MLP, Value, draw_graph, graph_layers, hinge_loss, topological_order

matplotlib.use("Agg")

UNARY = ["exp", "log", "tanh", "relu", "sigmoid", "neg", "pow2", "pow3", "sqrt", "inv"]
BINARY = ["add", "sub", "mul", "div", "radd", "rsub", "rmul", "rdiv"]


def unary(op, x, lib):
    """Apply ``op`` to ``x``, a Value (lib="value") or a tensor (lib="torch"), keeping inputs in domain."""
    if op == "exp":
        return (x * 0.3).exp() if lib == "value" else torch.exp(x * 0.3)
    if op == "log":  # log of something positive: 1 + x²
        return (x * x + 1).log() if lib == "value" else torch.log(x * x + 1)
    if op == "tanh":
        return x.tanh() if lib == "value" else torch.tanh(x)
    if op == "relu":
        return x.relu() if lib == "value" else torch.relu(x)
    if op == "sigmoid":
        return x.sigmoid() if lib == "value" else torch.sigmoid(x)
    if op == "neg":
        return -x
    if op == "pow2":
        return x**2
    if op == "pow3":
        return x**3
    if op == "sqrt":  # a fractional power of something positive
        return (x * x + 0.5) ** 0.5
    return (x * x + 1) ** -1  # inv


def binary(op, a, b):
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / (b * b + 1)  # never divide by zero
    if op == "radd":
        return 1.5 + a
    if op == "rsub":
        return 2.0 - a
    if op == "rmul":
        return -0.7 * a
    return 3.0 / (a * a + 1)  # rdiv


def random_graph(seed: int, n_inputs: int = 4, n_ops: int = 25):
    """The same random expression built twice, with Values and with float64 tensors. Each operation picks
    its operands among ALL nodes made so far, so nodes are reused (fan-out), as in real networks."""
    rng = random.Random(seed)
    data = [rng.uniform(-2, 2) for _ in range(n_inputs)]
    values = [Value(d) for d in data]
    tensors = [torch.tensor(d, dtype=torch.float64, requires_grad=True) for d in data]
    v_nodes, t_nodes = list(values), list(tensors)
    for _ in range(n_ops):
        if rng.random() < 0.5:
            op, i = rng.choice(UNARY), rng.randrange(len(v_nodes))
            v_nodes.append(unary(op, v_nodes[i], "value"))
            t_nodes.append(unary(op, t_nodes[i], "torch"))
        else:
            op, i, j = rng.choice(BINARY), rng.randrange(len(v_nodes)), rng.randrange(len(v_nodes))
            v_nodes.append(binary(op, v_nodes[i], v_nodes[j]))
            t_nodes.append(binary(op, t_nodes[i], t_nodes[j]))
    # the output mixes the last few nodes, so that many paths lead back to the inputs
    v_out, t_out = v_nodes[-1], t_nodes[-1]
    for k in (2, 3, 5):
        v_out = v_out + v_nodes[-k] * 0.5
        t_out = t_out + t_nodes[-k] * 0.5
    return values, tensors, v_out, t_out


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_that_reuse_nodes_match_torch(seed):
    values, tensors, v_out, t_out = random_graph(seed)
    v_out.backward()
    t_out.backward()
    assert math.isclose(v_out.data, t_out.item(), rel_tol=1e-9, abs_tol=1e-12)
    for v, t in zip(values, tensors, strict=True):
        expected = 0.0 if t.grad is None else t.grad.item()
        assert math.isclose(v.grad, expected, rel_tol=1e-8, abs_tol=1e-10), (seed, v.grad, expected)


def test_random_graphs_do_reuse_nodes():
    # the property the test above relies on: some node feeds more than one operation
    _, _, out, _ = random_graph(0)
    uses: dict[int, int] = {}
    for node in topological_order(out):
        for child in node.children:
            uses[id(child)] = uses.get(id(child), 0) + 1
    assert max(uses.values()) >= 2


@pytest.mark.parametrize("op", UNARY)
def test_each_unary_operation_matches_torch_and_finite_differences(op):
    for x0 in (-1.3, -0.2, 0.4, 1.7):
        x = Value(x0)
        y = unary(op, x, "value")
        y.backward()
        t = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        unary(op, t, "torch").backward()
        assert math.isclose(y.data, unary(op, torch.tensor(x0, dtype=torch.float64), "torch").item(),
                            rel_tol=1e-12, abs_tol=1e-12)
        assert math.isclose(x.grad, t.grad.item(), rel_tol=1e-10, abs_tol=1e-12)
        h = 1e-6  # central difference: an oracle that does not use autograd at all
        numeric = (unary(op, Value(x0 + h), "value").data - unary(op, Value(x0 - h), "value").data) / (2 * h)
        assert math.isclose(x.grad, numeric, rel_tol=1e-5, abs_tol=1e-6)


def test_hand_computed_gradients_of_a_reused_node():
    a, b = Value(2.0), Value(-3.0)
    c = a * b + a  # dc/da = b + 1, dc/db = a
    d = c * c  # dd/da = 2c (b + 1)
    d.backward()
    assert (c.data, d.data) == (-4.0, 16.0)
    assert (a.grad, b.grad, c.grad) == (2 * -4.0 * (-3.0 + 1), 2 * -4.0 * 2.0, 2 * -4.0)


def test_a_value_used_twice_in_one_operation_gets_both_contributions():
    x = Value(3.0)
    y = x * x  # dy/dx = 2x, from the two operands
    y.backward()
    assert x.grad == 6.0
    z = x + x
    z.backward()
    assert x.grad == 2.0


def test_backward_twice_gives_the_same_gradients_not_twice_them():
    x = Value(0.5)
    y = (x * 3).tanh() + x
    y.backward()
    first = x.grad
    y.backward()
    assert x.grad == first and y.grad == 1.0


def test_relu_gradient_at_zero_is_zero_as_in_pytorch():
    x = Value(0.0)
    x.relu().backward()
    t = torch.tensor(0.0, requires_grad=True)
    torch.relu(t).backward()
    assert x.grad == t.grad.item() == 0.0


def test_sigmoid_does_not_overflow_and_matches_torch_far_out():
    for x0 in (-800.0, -30.0, 30.0, 800.0):
        x = Value(x0)
        y = x.sigmoid()
        y.backward()
        t = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        torch.sigmoid(t).backward()
        expected = torch.sigmoid(torch.tensor(x0, dtype=torch.float64)).item()
        assert math.isclose(y.data, expected, abs_tol=1e-15)
        assert math.isclose(x.grad, t.grad.item(), abs_tol=1e-15)


def test_a_long_chain_does_not_hit_the_recursion_limit():
    x = Value(1.0)
    y = x
    for _ in range(5000):
        y = y + x * 0.001
    y.backward()
    assert math.isclose(x.grad, 1 + 5000 * 0.001)


def test_topological_order_puts_children_first_and_each_node_once():
    _, _, out, _ = random_graph(3)
    order = topological_order(out)
    position = {id(v): i for i, v in enumerate(order)}
    assert len(position) == len(order) and order[-1] is out
    assert all(position[id(c)] < position[id(v)] for v in order for c in v.children)


def test_graph_layers_place_every_node_right_of_its_children():
    _, _, out, _ = random_graph(5)
    layers = graph_layers(out)
    column = {id(v): i for i, layer in enumerate(layers) for v in layer}
    assert all(column[id(c)] < column[id(v)] for layer in layers for v in layer for c in v.children)
    assert all(not v.children for v in layers[0]) and layers[-1] == [out]
    assert sum(len(layer) for layer in layers) == len(topological_order(out))


def test_draw_graph_writes_each_nodes_value_and_gradient():
    import matplotlib.pyplot as plt

    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    out = (a * b + a).tanh()
    out.label = "out"
    out.backward()
    fig, ax = plt.subplots()
    draw_graph(out, ax=ax)
    texts = [t.get_text() for t in ax.texts if t.get_text()]  # the arrows are empty annotations
    assert len(texts) == len(topological_order(out))
    assert any(t.startswith("a\n") and f"grad {a.grad:.3g}" in t for t in texts)
    assert any(t.startswith("out = tanh") and "grad 1" in t for t in texts)
    plt.close(fig)


def test_mlp_matches_a_torch_mlp_with_the_same_weights():
    model = MLP(2, [5, 4, 1], seed=3)
    layers = []
    for layer in model.layers:
        linear = torch.nn.Linear(len(layer.neurons[0].w), len(layer.neurons), dtype=torch.float64)
        with torch.no_grad():
            weights = [[w.data for w in n.w] for n in layer.neurons]
            linear.weight.copy_(torch.tensor(weights, dtype=torch.float64))
            linear.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=torch.float64))
        layers.append(linear)
    points = [[0.3, -1.2], [1.1, 0.4], [-0.5, 0.9]]
    labels = [1, -1, 1]
    x = torch.tensor(points, dtype=torch.float64)
    h = torch.tanh(layers[1](torch.tanh(layers[0](x))))
    scores = layers[2](h).squeeze(1)
    torch_loss = torch.relu(1 - torch.tensor(labels, dtype=torch.float64) * scores).mean()
    torch_loss.backward()
    loss = hinge_loss([model(p) for p in points], labels)
    loss.backward()
    assert math.isclose(loss.data, torch_loss.item(), rel_tol=1e-10)
    for mine, theirs in zip(model.layers, layers, strict=True):
        grad_w = torch.tensor([[w.grad for w in n.w] for n in mine.neurons], dtype=torch.float64)
        torch.testing.assert_close(grad_w, theirs.weight.grad, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(torch.tensor([n.b.grad for n in mine.neurons], dtype=torch.float64),
                                   theirs.bias.grad, rtol=1e-9, atol=1e-12)
    assert len(model.parameters()) == sum(p.numel() for layer in layers for p in layer.parameters())


def test_bad_inputs_are_rejected_with_clear_errors():
    with pytest.raises(TypeError, match="data must be a real number"):
        Value("1.0")
    with pytest.raises(TypeError, match="data must be a real number"):
        Value(True)
    with pytest.raises(TypeError, match="operand"):
        Value(1.0) + "2"
    with pytest.raises(TypeError, match="exponent"):
        Value(2.0) ** Value(2.0)
    with pytest.raises(ValueError, match="log needs"):
        Value(0.0).log()
    with pytest.raises(ValueError, match="no real power"):
        Value(-2.0) ** 0.5
    with pytest.raises(ZeroDivisionError):
        Value(1.0) / Value(0.0)
    with pytest.raises(ZeroDivisionError):
        Value(1.0) / 0
    with pytest.raises(ValueError, match="one derivative per child"):
        Value(1.0, children=(Value(2.0),), local_grads=())
    with pytest.raises(TypeError, match="root must be a Value"):
        topological_order(1.0)
    with pytest.raises(ValueError, match="must have 2 numbers"):
        MLP(2, [3, 1])([1.0])
    with pytest.raises(ValueError, match="labels must be -1 or \\+1"):
        hinge_loss([Value(1.0)], [0])
    with pytest.raises(ValueError, match="activation"):
        MLP(2, [3, 1], activation="gelu")


def test_operations_never_change_their_inputs():
    a, b = Value(1.5), Value(-0.5)
    _ = (a * b).exp() + a / b - a**2
    assert (a.data, b.data, a.grad, b.grad) == (1.5, -0.5, 0.0, 0.0)
