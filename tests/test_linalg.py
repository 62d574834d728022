"""utils.linalg against independent oracles: torch.autograd (functional.jacobian, torch.func.vjp, grad of
F.embedding and of torch.relu / torch.sigmoid), torch.linalg.svd for PCA, closed forms (the softmax Jacobian,
the reconstruction error as the sum of discarded eigenvalues, a one-layer gradient written out by hand)."""

import pytest
import torch
import torch.nn.functional as F

from utils.linalg import (
    ACTIVATIONS,
    dead_units,
    deep_stack_gradient_norms,
    embedding_gradient,
    jacobian,
    pca,
    pca_reconstruct,
    relu,
    relu_grad,
    sigmoid_grad,
    softmax_jacobian,
    softmax_vjp,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


# --- jacobian ----------------------------------------------------------------------------------------

W = randn(4, 3, seed=1)
FUNCTIONS = {
    "square": (lambda x: x**2, (5,)),
    "softmax": (lambda x: torch.softmax(x, dim=-1), (6,)),
    "tanh layer": (lambda x: torch.tanh(W @ x), (3,)),  # (4, 3) @ (3,) -> (4,): a tall Jacobian (4, 3)
    "column sums": (lambda m: m.sum(dim=0) * m[0], (2, 3)),  # matrix in, vector out: (3, 2, 3)
    "scalar loss": (lambda x: (x.sin() * x).sum(), (4,)),  # one output: the Jacobian is the gradient
    "uses only part": (lambda x: 3 * x[:2], (4,)),  # the last two inputs do not matter: zero columns
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_jacobian_equals_autograd_functional_jacobian(name):
    f, shape = FUNCTIONS[name]
    x = randn(*shape, seed=2)
    J = jacobian(f, x)
    expected = torch.autograd.functional.jacobian(f, x)
    assert J.shape == f(x).shape + x.shape
    torch.testing.assert_close(J, expected)


def test_jacobian_by_hand_and_input_untouched():
    x = torch.tensor([1.0, 2.0], requires_grad=False)
    before = x.clone()
    J = jacobian(lambda v: torch.stack([v[0] * v[1], v[0] ** 3]), x)  # [[x1, x0], [3 x0², 0]]
    torch.testing.assert_close(J, torch.tensor([[2.0, 1.0], [3.0, 0.0]]))
    assert torch.equal(x, before) and not x.requires_grad and x.grad is None
    assert not J.requires_grad


def test_jacobian_of_a_constant_function_is_zero():
    x = randn(3, seed=0)
    J = jacobian(lambda v: torch.ones(2, dtype=v.dtype), x)
    assert J.shape == (2, 3) and torch.equal(J, torch.zeros(2, 3, dtype=x.dtype))


def test_jacobian_rejects_bad_input():
    with pytest.raises(TypeError, match="f must be a function"):
        jacobian(3, torch.ones(2))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        jacobian(lambda v: v, [1.0, 2.0])
    with pytest.raises(TypeError, match="x must be a floating-point"):
        jacobian(lambda v: v, torch.ones(2, dtype=torch.long))
    with pytest.raises(TypeError, match="f must return a floating-point"):
        jacobian(lambda v: v.tolist(), torch.ones(2))


# --- the softmax Jacobian and its vector-Jacobian product ----------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_softmax_jacobian_equals_autograd(seed):
    x = 3 * randn(2 + 3 * seed, seed=seed)
    s = torch.softmax(x, dim=0)
    J = softmax_jacobian(s)
    torch.testing.assert_close(J, torch.autograd.functional.jacobian(lambda v: torch.softmax(v, dim=0), x))
    torch.testing.assert_close(J, J.T)  # symmetric
    torch.testing.assert_close(J.sum(dim=1), torch.zeros_like(s))  # adding c to every logit changes nothing


def test_softmax_jacobian_by_hand_and_saturation():
    s = torch.tensor([0.2, 0.3, 0.5])
    expected = torch.tensor([[0.2 * 0.8, -0.06, -0.1], [-0.06, 0.3 * 0.7, -0.15], [-0.1, -0.15, 0.25]])
    torch.testing.assert_close(softmax_jacobian(s), expected)
    before = s.clone()
    softmax_jacobian(s)
    assert torch.equal(s, before)
    uniform = torch.full((4,), 0.25)  # diag 1/n - 1/n², off-diagonal -1/n²
    torch.testing.assert_close(softmax_jacobian(uniform), torch.eye(4) / 4 - 1 / 16)
    assert softmax_jacobian(torch.tensor([1.0, 0.0, 0.0])).abs().max() == 0  # one-hot: no gradient


def test_softmax_jacobian_rejects_bad_s():
    with pytest.raises(ValueError, match="1-D probability vector"):
        softmax_jacobian(torch.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="1-D probability vector"):
        softmax_jacobian(torch.tensor(1.0))
    with pytest.raises(ValueError, match="probability vector"):
        softmax_jacobian(torch.tensor([2.0, -1.0]))  # logits, not probabilities
    with pytest.raises(TypeError, match="floating-point"):
        softmax_jacobian(torch.tensor([1, 0]))


@pytest.mark.parametrize("seed", range(3))
def test_softmax_vjp_equals_the_matrix_product_and_torch_func_vjp(seed):
    x = 2 * randn(5, 7, seed=seed)  # five independent rows
    v = randn(5, 7, seed=seed + 10)
    s = torch.softmax(x, dim=-1)
    _, vjp_fn = torch.func.vjp(lambda t: torch.softmax(t, dim=-1), x)
    (expected,) = vjp_fn(v)
    got = softmax_vjp(s, v)
    torch.testing.assert_close(got, expected)
    for row in range(5):
        torch.testing.assert_close(got[row], v[row] @ softmax_jacobian(s[row]))


def test_softmax_vjp_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        softmax_vjp(torch.full((3,), 1 / 3), torch.ones(4))
    with pytest.raises(TypeError, match="v must be a torch.Tensor"):
        softmax_vjp(torch.full((3,), 1 / 3), [1.0, 2.0, 3.0])


# --- the gradient of an embedding table ----------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_embedding_gradient_equals_autograd_through_a_lookup(seed):
    g = gen(seed)
    V, C = 11, 4
    table = torch.randn(V, C, generator=g, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 6, (3, 5), generator=g)  # ids 6..10 never occur; some occur many times
    vectors = F.embedding(ids, table)  # (3, 5, C)
    vectors.retain_grad()
    loss = (vectors.tanh() * torch.randn(3, 5, C, generator=g, dtype=torch.float64)).sum()
    loss.backward()
    got = embedding_gradient(ids, vectors.grad, V)
    torch.testing.assert_close(got, table.grad)
    unused = sorted(set(range(V)) - set(ids.flatten().tolist()))
    assert torch.equal(got[unused], torch.zeros(len(unused), C, dtype=torch.float64))  # exactly zero


def test_embedding_gradient_by_hand_and_bad_input():
    ids = torch.tensor([[1, 1, 0]])
    upstream = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    before = upstream.clone()
    torch.testing.assert_close(embedding_gradient(ids, upstream, 3),
                               torch.tensor([[5.0, 6.0], [4.0, 6.0], [0.0, 0.0]]))
    assert torch.equal(upstream, before)
    with pytest.raises(TypeError, match="ids must be an integer tensor"):
        embedding_gradient(ids.float(), upstream, 3)
    with pytest.raises(ValueError, match="upstream must be"):
        embedding_gradient(ids, upstream[0], 3)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 1\)"):
        embedding_gradient(ids, upstream, 1)
    with pytest.raises(ValueError, match="num_embeddings must be >= 1"):
        embedding_gradient(ids, upstream, 0)


# --- PCA -----------------------------------------------------------------------------------------------

def spread_data(seed: int, n: int = 40, d: int = 6, dtype=torch.float64) -> torch.Tensor:
    scales = torch.tensor([6.0, 4.0, 2.5, 1.5, 1.0, 0.5], dtype=dtype)[:d]
    return randn(n, d, seed=seed, dtype=dtype) * scales + 3.0  # distinct variances, off-centre


@pytest.mark.parametrize("seed", range(4))
def test_pca_matches_the_svd_of_the_centred_data(seed):
    X = spread_data(seed)
    n = len(X)
    components, variance, projected = pca(X, k=3)
    U, S, Vh = torch.linalg.svd(X - X.mean(0), full_matrices=False)
    signs = torch.sign((components * Vh[:3]).sum(dim=1))  # (3,): ±1, the arbitrary sign of each vector
    torch.testing.assert_close(signs.abs(), torch.ones(3, dtype=X.dtype))
    torch.testing.assert_close(components, Vh[:3] * signs[:, None])  # the same directions up to sign
    torch.testing.assert_close(variance, S[:3] ** 2 / (n - 1))  # eigenvalues = squared singular values
    torch.testing.assert_close(projected, U[:, :3] * S[:3] * signs)  # coordinates = U S
    torch.testing.assert_close(components @ components.T, torch.eye(3, dtype=X.dtype))
    assert torch.all(variance[:-1] >= variance[1:])  # largest first
    assert torch.all(components.gather(1, components.abs().argmax(1, keepdim=True)) > 0)  # the sign rule


def test_pca_variance_is_the_variance_along_each_component():
    X = spread_data(7)
    components, variance, projected = pca(X, k=6)
    torch.testing.assert_close(projected.var(dim=0), variance)
    torch.testing.assert_close(variance.sum(), X.var(dim=0).sum())  # all k = d: the total variance
    torch.testing.assert_close(variance, torch.linalg.eigvalsh(torch.cov(X.T)).flip(0))


def test_pca_keeps_dtype_and_device_and_does_not_modify_x():
    X = spread_data(1, dtype=torch.float32)
    before = X.clone()
    components, variance, projected = pca(X, k=2)
    assert torch.equal(X, before)
    assert {t.dtype for t in (components, variance, projected)} == {torch.float32}
    assert {t.device for t in (components, variance, projected)} == {X.device}
    assert components.shape == (2, 6) and variance.shape == (2,) and projected.shape == (40, 2)


def test_pca_rejects_bad_k_and_bad_x():
    X = spread_data(0)
    for k in (0, 7, -1):
        with pytest.raises(ValueError, match=r"k must be between 1 and d = 6"):
            pca(X, k)
    for k in (2.0, True):
        with pytest.raises(TypeError, match="k must be an int"):
            pca(X, k)
    with pytest.raises(ValueError, match="2-D table"):
        pca(torch.ones(5), 1)
    with pytest.raises(ValueError, match="n >= 2 rows"):
        pca(torch.ones(1, 3), 1)
    with pytest.raises(TypeError, match="floating-point"):
        pca(torch.ones(4, 3, dtype=torch.long), 1)


@pytest.mark.parametrize("k", [1, 2, 4, 6])
def test_reconstruction_error_is_the_sum_of_the_discarded_eigenvalues(k):
    X = spread_data(3)
    n = len(X)
    _, all_variances, _ = pca(X, k=6)
    error = ((X - pca_reconstruct(X, k)) ** 2).sum()
    torch.testing.assert_close(error, (n - 1) * all_variances[k:].sum())  # 0 for k = d: X itself
    # Eckart-Young: no other k-dimensional subspace (here a random one) does better
    basis, _ = torch.linalg.qr(randn(6, k, seed=k))  # (6, k) orthonormal columns
    centred = X - X.mean(0)
    other = ((centred - centred @ basis @ basis.T) ** 2).sum()
    assert error <= other + 1e-9


# --- activations ---------------------------------------------------------------------------------------

def test_relu_and_its_derivative_equal_autograd_including_at_zero():
    x = torch.tensor([-3.0, -1e-8, 0.0, 1e-8, 2.5], requires_grad=True)
    torch.relu(x).sum().backward()
    assert torch.equal(relu(x.detach()), torch.relu(x.detach()))
    assert torch.equal(relu_grad(x.detach()), x.grad)
    assert relu_grad(torch.tensor([0.0])).item() == 0.0  # PyTorch's choice at the kink


def test_sigmoid_grad_equals_autograd_and_is_at_most_a_quarter():
    x = torch.linspace(-8, 8, 161, requires_grad=True)
    torch.sigmoid(x).sum().backward()
    torch.testing.assert_close(sigmoid_grad(x.detach()), x.grad)
    assert sigmoid_grad(x.detach()).max().item() == 0.25  # at x = 0, which the grid contains


def test_activations_reject_non_float_input_and_do_not_modify_it():
    for fn in (relu, relu_grad, sigmoid_grad):
        with pytest.raises(TypeError, match="x must be a floating-point"):
            fn(torch.tensor([1, -1]))
        x = torch.tensor([-1.0, 2.0])
        fn(x)
        assert x.tolist() == [-1.0, 2.0]


def test_dead_units_get_exactly_zero_gradient():
    g = gen(0)
    layer = torch.nn.Linear(3, 8, dtype=torch.float64)
    with torch.no_grad():
        layer.bias[:4] = -100.0  # four units that no input of this scale can switch on
    x = torch.randn(50, 3, generator=g, dtype=torch.float64)
    pre = layer(x)  # (50, 8)
    dead = dead_units(pre.detach())
    assert dead[:4].all() and not dead[4:].all()
    (torch.relu(pre) * torch.randn(50, 8, generator=g, dtype=torch.float64)).sum().backward()
    assert torch.equal(layer.weight.grad[dead], torch.zeros(int(dead.sum()), 3, dtype=torch.float64))
    assert torch.equal(layer.bias.grad[dead], torch.zeros(int(dead.sum()), dtype=torch.float64))
    assert (layer.weight.grad[~dead].abs().sum(dim=1) > 0).all()  # the living ones all learn


def test_dead_units_by_hand_and_bad_input():
    pre = torch.tensor([[0.0, -1.0, 1.0], [0.0, 2.0, -5.0]])
    assert dead_units(pre).tolist() == [True, False, False]  # 0 counts as off (ReLU's derivative there is 0)
    with pytest.raises(ValueError, match=r"\(n, units\)"):
        dead_units(torch.ones(3))
    with pytest.raises(TypeError, match="floating-point"):
        dead_units(torch.ones(2, 2, dtype=torch.long))


# --- gradients through a deep stack --------------------------------------------------------------------

@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_one_layer_gradient_equals_the_formula_by_hand(activation):
    # loss = mean_b (act(x_b Wᵀ) · r)  =>  ∂loss/∂W = (1/B) Σ_b (r ⊙ act'(z_b)) x_bᵀ
    width, batch = 5, 7
    norms = deep_stack_gradient_norms(activation, depth=1, width=width, batch=batch, seed=3)
    g = gen(3)  # replay the same draws: the weights first, then x, then r
    weight = torch.empty(width, width)
    ACTIVATIONS[activation][1](weight, g)
    x = torch.randn(batch, width, generator=g)
    r = torch.randn(width, generator=g)
    z = x @ weight.T  # (B, width); biases are 0
    derivatives = {"relu": relu_grad(z), "sigmoid": sigmoid_grad(z), "tanh": 1 - torch.tanh(z) ** 2}
    derivative = derivatives[activation]
    grad = (r * derivative).T @ x / batch  # (width, B) @ (B, width)
    torch.testing.assert_close(norms, grad.norm().reshape(1))


def test_sigmoid_gradients_vanish_and_relu_gradients_do_not():
    for seed in range(3):
        sigmoid = deep_stack_gradient_norms("sigmoid", depth=20, width=64, seed=seed)
        relu_norms = deep_stack_gradient_norms("relu", depth=20, width=64, seed=seed)
        assert sigmoid.shape == relu_norms.shape == (20,)
        assert sigmoid[0] / sigmoid[-1] < 1e-6  # at most (1/4)^19 times the spectral norms of the weights
        assert 0.01 < relu_norms[0] / relu_norms[-1] < 10  # He initialisation keeps the order of magnitude
    torch.testing.assert_close(deep_stack_gradient_norms("relu", 5), deep_stack_gradient_norms("relu", 5))


def test_deep_stack_rejects_bad_arguments():
    with pytest.raises(ValueError, match="activation must be one of"):
        deep_stack_gradient_norms("gelu", depth=3)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        deep_stack_gradient_norms("relu", depth=0)
    with pytest.raises(TypeError, match="width must be an int"):
        deep_stack_gradient_norms("relu", depth=2, width=2.5)
