"""The calculus and linear algebra under a transformer (Lecture 6): Jacobians, PCA, activation derivatives.

- ``jacobian(f, x)``: every first-order partial derivative of ``f`` at ``x``, built the way reverse-mode
  autograd would, one vector-Jacobian product (one backward pass) per output entry.
- ``softmax_jacobian(s)`` and ``softmax_vjp(s, v)``: the softmax's Jacobian ``diag(s) - s sᵀ`` in closed
  form, and the product ``vᵀ J`` that backpropagation actually needs, without building ``J``.
- ``embedding_gradient(ids, upstream, V)``: the gradient of an embedding table, the chain rule through a
  lookup (only the rows that were looked up receive anything).
- ``pca(X, k)`` and ``pca_reconstruct(X, k)``: principal component analysis from the eigenvectors of the
  covariance (Pearson 1901; Hotelling 1933). The course has one PCA: ``utils.embeddings`` (Lecture 2's
  2-D map of an embedding table) calls this one.
- ``relu``, ``relu_grad``, ``sigmoid_grad``, ``dead_units`` and ``deep_stack_gradient_norms``: ReLU's
  derivative, units that ReLU has switched off for good, and what a deep stack of ReLUs or sigmoids does
  to the gradient; ``DeepStack`` and ``layer_gradient_norms`` (Lecture 9): what residual connections
  and LayerNorm change about it.

>>> s = torch.tensor([0.5, 0.5])
>>> softmax_jacobian(s)
tensor([[ 0.2500, -0.2500],
        [-0.2500,  0.2500]])
>>> relu_grad(torch.tensor([-1.0, 0.0, 2.0]))           # 0 at x = 0, as PyTorch's autograd gives
tensor([0., 0., 1.])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from ._validation import check_positive_int

__all__ = [
    "jacobian", "softmax_jacobian", "softmax_vjp", "embedding_gradient", "pca", "pca_reconstruct", "relu",
    "relu_grad", "sigmoid_grad", "dead_units", "deep_stack_gradient_norms", "ACTIVATIONS",
    "STACK_KINDS", "DeepStack", "layer_gradient_norms",
]


def _check_float_tensor(name: str, value: object) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")


# ----------------------------------------------------------------------------------------------------
# Jacobians
# ----------------------------------------------------------------------------------------------------

def jacobian(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The Jacobian of ``f`` at ``x``: ``J[i..., j...] = ∂f(x)[i...] / ∂x[j...]``, shape
    ``f(x).shape + x.shape`` (as ``torch.autograd.functional.jacobian``).

    Built as reverse-mode autograd builds it: one backward pass per entry of the output, each a
    vector-Jacobian product ``eᵢᵀ J`` with a one-hot ``eᵢ`` that returns row ``i``. So the cost grows
    with the number of *outputs*; for a loss (one output) one pass gives the whole gradient, which is why
    backpropagation runs in reverse. ``x`` itself is never modified or attached to a graph.

    >>> jacobian(lambda v: v**2, torch.tensor([1.0, 3.0]))             # diag(2 x)
    tensor([[2., 0.],
            [0., 6.]])
    >>> tuple(jacobian(lambda m: m.sum(dim=0), torch.ones(2, 3)).shape)  # (3,) + (2, 3)
    (3, 2, 3)
    """
    if not callable(f):
        raise TypeError(f"f must be a function from a tensor to a tensor, got {type(f).__name__}")
    _check_float_tensor("x", x)
    leaf = x.detach().clone().requires_grad_(True)  # our own leaf: the caller's tensor stays untouched
    y = f(leaf)
    if not isinstance(y, torch.Tensor) or not y.is_floating_point():
        raise TypeError(f"f must return a floating-point torch.Tensor, got {type(y).__name__}"
                        + (f" of dtype {y.dtype}" if isinstance(y, torch.Tensor) else ""))
    flat = y.reshape(-1)  # (m,): one backward pass per output entry
    if not flat.requires_grad:  # f(x) does not depend on x at all
        return leaf.new_zeros(*y.shape, *x.shape)
    rows = []
    for i in range(flat.numel()):
        (row,) = torch.autograd.grad(flat[i], leaf, retain_graph=True, allow_unused=True)
        rows.append(torch.zeros_like(leaf) if row is None else row)  # row i: ∂y_i / ∂x, shaped like x
    J = torch.stack(rows) if rows else leaf.new_zeros(0, *x.shape)  # (m, *x.shape)
    return J.reshape(*y.shape, *x.shape)  # (m, *x.shape) -> (*y.shape, *x.shape)


def _check_probability_vector(s: object) -> None:
    _check_float_tensor("s", s)
    if s.dim() != 1 or s.numel() == 0:
        raise ValueError(f"s must be a 1-D probability vector (n,), e.g. softmax(x) of one row; got shape "
                         f"{tuple(s.shape)}")
    if (s < 0).any() or s.isnan().any() or abs(s.sum(dtype=torch.float64).item() - 1.0) > 1e-3:
        raise ValueError(f"s must be a probability vector (entries >= 0 summing to 1, as softmax returns), "
                         f"got entries summing to {s.sum().item():.6g} with min {s.min().item():.4g}")


def softmax_jacobian(s: torch.Tensor) -> torch.Tensor:
    """The Jacobian ``(n, n)`` of the softmax at the point where it outputs ``s (n,)``: ``diag(s) - s sᵀ``.

    From ``s_i = exp(x_i) / Σ_k exp(x_k)``: ``∂s_i/∂x_j = s_i (δ_ij - s_j)``. It depends on ``x`` only
    through ``s``. Symmetric; every row sums to 0 (adding a constant to every logit changes nothing);
    it tends to 0 when ``s`` becomes one-hot, which is why a saturated softmax passes back no gradient.

    >>> softmax_jacobian(torch.tensor([1.0, 0.0]))        # saturated: nothing flows back
    tensor([[0., 0.],
            [0., 0.]])
    """
    _check_probability_vector(s)
    return torch.diag(s) - torch.outer(s, s)  # (n, n) - (n, 1)(1, n)


def softmax_vjp(s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``vᵀ J`` for the softmax Jacobian ``J = diag(s) - s sᵀ``, in O(n) instead of O(n²): ``s * (v - v·s)``.

    This is what backpropagation through a softmax computes: ``v`` is the gradient arriving from above
    (∂loss/∂s), the result is ∂loss/∂x, and ``J`` itself is never built. Both are ``(..., n)``, the
    softmax taken over the last dimension (leading dimensions are independent rows).

    >>> s, v = torch.tensor([0.25, 0.75]), torch.tensor([1.0, 0.0])
    >>> softmax_vjp(s, v), v @ softmax_jacobian(s)
    (tensor([ 0.1875, -0.1875]), tensor([ 0.1875, -0.1875]))
    """
    _check_float_tensor("s", s)
    _check_float_tensor("v", v)
    if s.dim() < 1 or s.shape != v.shape:
        raise ValueError(f"s and v must have the same shape (..., n), got s {tuple(s.shape)} and "
                         f"v {tuple(v.shape)}")
    return s * (v - (v * s).sum(dim=-1, keepdim=True))  # (..., n) * ((..., n) - (..., 1))


def embedding_gradient(ids: torch.Tensor, upstream: torch.Tensor, num_embeddings: int) -> torch.Tensor:
    """The gradient ``(V, C)`` of an embedding table, given the token ``ids`` that were looked up and the
    gradient ``upstream (*ids.shape, C)`` that arrived at the looked-up vectors.

    A lookup ``E[ids]`` is ``onehot(ids) @ E``, so ``∂L/∂E = onehot(ids)ᵀ @ upstream``: row ``v`` is the
    sum of the upstream gradients at every position where token ``v`` was looked up, and the rows of
    tokens that were not looked up are exactly 0.

    >>> embedding_gradient(torch.tensor([2, 0, 2]), torch.tensor([[1.0], [10.0], [100.0]]), 4)
    tensor([[ 10.],
            [  0.],
            [101.],
            [  0.]])
    """
    if not isinstance(ids, torch.Tensor) or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise TypeError("ids must be an integer tensor of token ids")
    _check_float_tensor("upstream", upstream)
    check_positive_int("num_embeddings", num_embeddings)
    if upstream.dim() != ids.dim() + 1 or upstream.shape[:-1] != ids.shape:
        raise ValueError(f"upstream must be (*ids.shape, C) = ({', '.join(map(str, ids.shape))}, C), got "
                         f"shape {tuple(upstream.shape)}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= num_embeddings):
        raise ValueError(f"ids must be in [0, {num_embeddings}), got values from {ids.min().item()} to "
                         f"{ids.max().item()}")
    C = upstream.shape[-1]
    grad = upstream.new_zeros(num_embeddings, C)  # (V, C)
    # index_add sums the rows of a token that occurs several times (the one-hot product, without it)
    return grad.index_add(0, ids.reshape(-1).long(), upstream.reshape(-1, C))  # (N,) and (N, C) -> (V, C)


# ----------------------------------------------------------------------------------------------------
# PCA
# ----------------------------------------------------------------------------------------------------

def _check_data(X: object, k: object) -> None:
    _check_float_tensor("X", X)
    if X.dim() != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"X must be a 2-D table (n, d) with n >= 2 rows (a covariance needs two) and "
                         f"d >= 1 columns, got shape {tuple(X.shape)}")
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int (the number of components), got {type(k).__name__}")
    if not 1 <= k <= X.shape[1]:
        raise ValueError(f"k must be between 1 and d = {X.shape[1]} (the number of columns of X), got {k}")


def pca(X: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Principal component analysis of the rows of ``X (n, d)`` from the eigen-decomposition of their
    covariance. Returns ``(components (k, d), explained_variance (k,), projected (n, k))``, largest
    variance first.

    The covariance ``Σ = Xcᵀ Xc / (n - 1)`` of the centred rows ``Xc = X - mean`` is symmetric, so it has
    orthonormal eigenvectors, and ``uᵀ Σ u`` is the variance of the data along a unit vector ``u``: the
    eigenvector of the largest eigenvalue is the direction of the largest variance, that eigenvalue is
    the variance, and so on down. ``components`` are the top ``k`` eigenvectors (rows),
    ``explained_variance`` their eigenvalues and ``projected = Xc @ componentsᵀ`` the coordinates of the
    rows along them. An eigenvector's sign is arbitrary, so each component is flipped to make its entry
    of largest magnitude positive: the same data always gives the same answer.

    >>> X = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    >>> components, variance, projected = pca(X, k=1)
    >>> components, variance, projected.T
    (tensor([[1., 0.]]), tensor([2.6667]), tensor([[-2.,  2.,  0.,  0.]]))
    """
    _check_data(X, k)
    n = X.shape[0]
    Xc = X - X.mean(dim=0, keepdim=True)  # (n, d): PCA describes the spread around the mean
    # The decomposition runs in float64: forming XcᵀXc squares the condition number of the data, so in
    # float32 the directions of small variance would lose most of their digits. (Apple's MPS has no
    # float64, so there it runs on the CPU.) The results come back in X's dtype, on X's device.
    work = Xc.to("cpu" if Xc.device.type == "mps" else Xc.device, torch.float64)
    covariance = work.T @ work / (n - 1)  # (d, n) @ (n, d) -> (d, d), symmetric
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending; eigenvectors in the columns
    top = eigenvalues.flip(0)[:k].clamp_min(0)  # (k,): largest first; rounding can make a zero one < 0
    components = eigenvectors.flip(1)[:, :k].T  # (d, k) -> (k, d): one direction per row
    largest = components.abs().argmax(dim=1, keepdim=True)  # (k, 1): the entry that decides the sign
    components = components * torch.sign(components.gather(1, largest))  # (k, d) * (k, 1)
    components, top = components.to(X.device, X.dtype), top.to(X.device, X.dtype)
    return components, top, Xc @ components.T  # (n, d) @ (d, k) -> (n, k)


def pca_reconstruct(X: torch.Tensor, k: int) -> torch.Tensor:
    """The rows of ``X (n, d)`` rebuilt from their first ``k`` principal coordinates: ``mean + projected @
    components``, ``(n, d)``. Among all ways of squeezing the rows through ``k`` dimensions, this one
    loses the least (squared error = ``(n - 1)`` × the sum of the discarded eigenvalues; Eckart & Young
    1936); with ``k = d`` it gives ``X`` back.

    >>> X = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    >>> pca_reconstruct(X, k=1)                            # every point pushed onto the main axis
    tensor([[-2.,  0.],
            [ 2.,  0.],
            [ 0.,  0.],
            [ 0.,  0.]])
    """
    components, _, projected = pca(X, k)
    return X.mean(dim=0, keepdim=True) + projected @ components  # (1, d) + (n, k) @ (k, d)


# ----------------------------------------------------------------------------------------------------
# Activations and their derivatives
# ----------------------------------------------------------------------------------------------------

def relu(x: torch.Tensor) -> torch.Tensor:
    """``max(0, x)`` elementwise, the rectified linear unit (Nair & Hinton 2010; Glorot et al. 2011).

    >>> relu(torch.tensor([-2.0, 0.0, 3.0]))
    tensor([0., 0., 3.])
    """
    _check_float_tensor("x", x)
    return torch.where(x > 0, x, torch.zeros_like(x))


def relu_grad(x: torch.Tensor) -> torch.Tensor:
    """ReLU's derivative elementwise: 1 where ``x > 0``, else 0. At ``x = 0`` ReLU has no derivative (its
    slope jumps from 0 to 1); any number in [0, 1] is a valid subgradient, and PyTorch's autograd uses 0,
    so this does too.

    >>> relu_grad(torch.tensor([-2.0, 0.0, 3.0]))
    tensor([0., 0., 1.])
    """
    _check_float_tensor("x", x)
    return (x > 0).to(x.dtype)


def sigmoid_grad(x: torch.Tensor) -> torch.Tensor:
    """The sigmoid's derivative ``σ(x) (1 - σ(x))`` elementwise; at most 1/4, reached at ``x = 0``.

    >>> sigmoid_grad(torch.tensor([0.0, 2.0, -2.0])).round(decimals=4)
    tensor([0.2500, 0.1050, 0.1050])
    """
    _check_float_tensor("x", x)
    s = torch.sigmoid(x)
    return s * (1 - s)


def dead_units(pre_activations: torch.Tensor) -> torch.Tensor:
    """Which ReLU units are dead on a set of inputs: ``BoolTensor (units,)``, ``True`` for a unit whose
    pre-activation is ``<= 0`` on every row of ``pre_activations (n, units)``.

    Such a unit outputs 0 on all those inputs and its derivative there is 0, so no gradient reaches its
    incoming weights and bias from them: gradient descent on that data cannot bring it back.

    >>> dead_units(torch.tensor([[-1.0, 2.0, 0.0], [-3.0, -1.0, 0.0]]))
    tensor([ True, False,  True])
    """
    _check_float_tensor("pre_activations", pre_activations)
    if pre_activations.dim() != 2 or pre_activations.shape[0] < 1:
        raise ValueError(f"pre_activations must be (n, units) with n >= 1 inputs, got shape "
                         f"{tuple(pre_activations.shape)}")
    return (pre_activations <= 0).all(dim=0)


# The activations a deep stack can use, each with the initialisation that keeps its signal's scale:
# He et al. 2015 (gain sqrt 2) for ReLU, Glorot & Bengio 2010 (Xavier) for the sigmoid and tanh.
ACTIVATIONS: dict[str, tuple[Callable[[], nn.Module], Callable[[torch.Tensor, torch.Generator], None]]] = {
    "relu": (nn.ReLU, lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)),
    "sigmoid": (nn.Sigmoid, lambda w, g: nn.init.xavier_normal_(w, generator=g)),
    "tanh": (nn.Tanh, lambda w, g: nn.init.xavier_normal_(w, gain=5 / 3, generator=g)),
}


def deep_stack_gradient_norms(activation: str, depth: int, width: int = 64, batch: int = 64,
                              seed: int = 0) -> torch.Tensor:
    """The gradient norm ``(depth,)`` of each layer's weight matrix in a stack of ``depth`` layers
    ``Linear(width, width)`` + ``activation``, for one batch of standard normal inputs and the loss
    ``mean(output · r)`` with a fixed random direction ``r``; entry 0 is the layer nearest the input.

    Backpropagation multiplies, layer by layer from the top, by the activation's derivative and by a
    weight matrix. The sigmoid's derivative is at most 1/4, so its gradient shrinks geometrically on the
    way down (it *vanishes*); ReLU's is 1 on every active unit, and with He initialisation the norm stays
    within an order of magnitude through the stack. Each activation gets its own standard initialisation
    (``ACTIVATIONS``), biases 0; ``seed`` fixes the weights, inputs and ``r``.

    >>> norms = deep_stack_gradient_norms("sigmoid", depth=10)
    >>> bool(norms[0] < 1e-3 * norms[-1])                  # the first layer gets a thousandth, or less
    True
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    check_positive_int("depth", depth)
    check_positive_int("width", width)
    check_positive_int("batch", batch)
    make_activation, init = ACTIVATIONS[activation]
    g = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(depth):
        linear = nn.Linear(width, width)
        init(linear.weight, g)
        nn.init.zeros_(linear.bias)
        layers += [linear, make_activation()]
    stack = nn.Sequential(*layers)
    x = torch.randn(batch, width, generator=g)
    r = torch.randn(width, generator=g)
    loss = (stack(x) @ r).mean()  # (batch, width) @ (width,) -> (batch,) -> ()
    weights = [layer.weight for layer in stack if isinstance(layer, nn.Linear)]
    grads = torch.autograd.grad(loss, weights)
    return torch.stack([grad.norm() for grad in grads]).detach()


# --- Lecture 9 (Q43): how residual connections and LayerNorm keep gradients alive --------------------------

STACK_KINDS: tuple[str, ...] = ("plain", "residual", "residual + LayerNorm")


class DeepStack(nn.Module):
    """``depth`` layers ``Linear(width, width)`` + tanh between an input and an output projection, wired
    in one of three ways (``STACK_KINDS``), layer ``l`` turning ``h`` into:

    - ``"plain"``: ``tanh(W_l h)``, the network of the 1990s;
    - ``"residual"``: ``h + tanh(W_l h)``, a shortcut around every layer (He et al. 2016);
    - ``"residual + LayerNorm"``: ``h + tanh(W_l LayerNorm(h))``, the pre-LN block of GPT-2 and of
      ``utils.models.Block`` (Xiong et al. 2020).

    Every ``Linear`` keeps PyTorch's default initialisation. ``forward(x (B, in_features)) -> (B,
    out_features)``; ``layers`` is the ``nn.ModuleList`` of the ``depth`` hidden layers (layer 0 nearest the
    input), so ``layer_gradient_norms`` can read their gradients.

    >>> stack = DeepStack("residual", depth=3, width=4, in_features=2, out_features=1)
    >>> tuple(stack(torch.zeros(5, 2)).shape), len(stack.layers)
    ((5, 1), 3)
    """

    def __init__(self, kind: str, depth: int, width: int, in_features: int, out_features: int) -> None:
        super().__init__()
        if kind not in STACK_KINDS:
            raise ValueError(f"kind must be one of {STACK_KINDS}, got {kind!r}")
        for name, value in (("depth", depth), ("width", width), ("in_features", in_features),
                            ("out_features", out_features)):
            check_positive_int(name, value)
        self.kind = kind
        self.inp = nn.Linear(in_features, width)
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(depth)) if "LayerNorm" in kind else None
        self.out = nn.Linear(width, out_features)

    def hidden_states(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input of every layer and the final hidden state: ``depth + 1`` tensors ``(B, width)``."""
        h = self.inp(x)  # (B, in) -> (B, width)
        states = [h]
        for i, layer in enumerate(self.layers):
            if self.kind == "plain":
                h = torch.tanh(layer(h))
            elif self.norms is None:
                h = h + torch.tanh(layer(h))  # the shortcut: the gradient also flows around the layer
            else:
                h = h + torch.tanh(layer(self.norms[i](h)))  # each layer reads a normalised copy
            states.append(h)
        return states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden_states(x)[-1])  # (B, width) -> (B, out_features)


def layer_gradient_norms(layers: nn.ModuleList, loss: torch.Tensor) -> torch.Tensor:
    """The norm of ``∂loss/∂W`` for the weight ``W`` of each layer in ``layers`` (``(len(layers),)``, entry 0
    first), by one backward pass that leaves every ``.grad`` untouched (``torch.autograd.grad``).

    >>> layers = nn.ModuleList([nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)])
    >>> with torch.no_grad():
    ...     _ = layers[0].weight.copy_(torch.eye(2)); _ = layers[1].weight.copy_(3 * torch.eye(2))
    >>> x = torch.tensor([[1.0, 0.0]])
    >>> layer_gradient_norms(layers, layers[1](layers[0](x)).sum())   # dL/dW1 = 3 (x) ..., dL/dW2 = (x) ...
    tensor([4.2426, 1.4142])
    """
    if not isinstance(layers, (nn.ModuleList, list, tuple)) or not layers:
        raise TypeError("layers must be a non-empty nn.ModuleList (or list) of layers with a .weight")
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError("loss must be a scalar tensor")
    weights = [layer.weight for layer in layers]
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return torch.stack([torch.zeros((), device=w.device) if g is None else g.norm()
                        for g, w in zip(grads, weights, strict=True)]).detach()
