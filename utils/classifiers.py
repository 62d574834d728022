"""Two classic text classifiers on bag-of-words counts: one generative, one discriminative (Lectures 4, 8).

Both read a review as ``x``, its word counts (a row of ``X (n, V)``), and predict a class ``y``:

- **Multinomial naive Bayes** is *generative*: it models how the words of each class are produced,
  ``p(x, y) = p(y) · Π_w p(w | y)^{x_w}`` (every word drawn independently from its class's word
  distribution), and classifies with Bayes' rule. Fitting is counting, and the model can write text.
- **Logistic (softmax) regression** is *discriminative*: it models ``p(y | x) = softmax(W x + b)``
  directly and fits ``W`` to the labels, without saying anything about how ``x`` came about.

Ng & Jordan (2001, "On discriminative vs. generative classifiers") compared exactly this pair: naive
Bayes reaches its (higher) asymptotic error with far fewer examples, logistic regression ends lower when
data is plentiful and the independence assumption is wrong.

>>> X = torch.tensor([[2., 0.], [1., 0.], [0., 3.]]); y = torch.tensor([0, 0, 1])
>>> MultinomialNaiveBayes().fit(X, y).predict(torch.tensor([[1., 0.], [0., 1.]])).tolist()
[0, 1]
>>> LogisticRegression(2, 2, l2=0.01).fit(X, y).predict(torch.tensor([[1., 0.], [0., 3.]])).tolist()
[0, 1]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validation import check_positive_int
from .training import History, train

__all__ = ["bag_of_words", "MultinomialNaiveBayes", "LogisticRegression", "accuracy", "MLPClassifier",
           "fit_mlp_classifier"]


def _check_counts(X: object, n_features: int | None = None) -> torch.Tensor:
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a torch.Tensor of word counts (n, V), got {type(X).__name__}")
    if X.dim() != 2 or not X.is_floating_point():
        raise ValueError(f"X must be a 2-D float tensor of word counts (n, V), got shape {tuple(X.shape)} "
                         f"and dtype {X.dtype}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X must have {n_features} columns (one per word), got {X.shape[1]}")
    return X


def _check_labels(X: torch.Tensor, y: object, n_classes: int | None = None) -> int:
    """The number of classes ``C``; ``y`` must be a LongTensor ``(n,)`` of classes ``0 .. C-1``."""
    if not isinstance(y, torch.Tensor) or y.dtype != torch.long:
        raise TypeError("y must be a LongTensor of class ids")
    if y.shape != (X.shape[0],) or len(y) == 0:
        raise ValueError(f"y must have shape (n,) = ({X.shape[0]},) with n >= 1, got {tuple(y.shape)}")
    if y.min() < 0 or (n_classes is not None and y.max() >= n_classes):
        raise ValueError(f"y must hold classes 0 .. {'C-1' if n_classes is None else n_classes - 1}, "
                         f"got min {y.min().item()} and max {y.max().item()}")
    return int(y.max()) + 1 if n_classes is None else n_classes


def bag_of_words(texts: Sequence[str], vocabulary: Sequence[str]) -> torch.Tensor:
    """Word counts ``(len(texts), len(vocabulary))``: row ``i``, column ``j`` = how often
    ``vocabulary[j]`` occurs in ``texts[i]`` (words split on whitespace; a word not in the vocabulary
    is not counted). The order of the words is lost: that is the "bag".

    >>> bag_of_words(["the cat saw the dog", "a dog"], ["the", "dog", "cat"]).tolist()
    [[2.0, 1.0, 1.0], [0.0, 1.0, 0.0]]
    """
    if isinstance(texts, str) or isinstance(vocabulary, str):
        raise TypeError("texts and vocabulary must be lists of strings, not one str")
    index = {word: j for j, word in enumerate(vocabulary)}
    if len(index) != len(vocabulary):
        raise ValueError("vocabulary must not repeat a word")
    rows, cols = [], []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts must hold strings, got {type(text).__name__} at position {i}")
        for word in text.split():
            j = index.get(word)
            if j is not None:
                rows.append(i)
                cols.append(j)
    counts = torch.zeros(len(texts), len(vocabulary))
    counts.index_put_((torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)),
                      torch.ones(len(rows)), accumulate=True)
    return counts


def accuracy(predictions: torch.Tensor, y: torch.Tensor) -> float:
    """The share of ``predictions`` equal to ``y``.

    >>> accuracy(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
    0.75
    """
    if predictions.shape != y.shape:
        raise ValueError(f"predictions and y must have the same shape, got {tuple(predictions.shape)} "
                         f"and {tuple(y.shape)}")
    return (predictions == y).float().mean().item()


class MultinomialNaiveBayes:
    """Multinomial naive Bayes with additive (Laplace / Lidstone) smoothing ``alpha``.

    ``fit(X, y)`` counts: ``class_log_prior[c] = log(n_c / n)`` and ``feature_log_prob[c, w] =
    log((N_cw + alpha) / (N_c + alpha · V))``, where ``N_cw`` is how often word ``w`` occurs in the
    examples of class ``c`` and ``N_c`` all word occurrences of class ``c``: the meaning of
    scikit-learn's ``MultinomialNB(alpha=alpha)``. Every class ``0 .. C-1`` needs one example.

    >>> nb = MultinomialNaiveBayes(alpha=1.0).fit(torch.tensor([[2., 0.], [0., 1.]]), torch.tensor([0, 1]))
    >>> nb.feature_log_prob.exp().mul(12).round().tolist()   # 12 x [(2+1)/(2+2), (0+1)/(2+2)], [1/3, 2/3]
    [[9.0, 3.0], [4.0, 8.0]]
    """

    def __init__(self, alpha: float = 1.0) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"alpha must be a number, got {type(alpha).__name__}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0 (smoothing keeps unseen words possible), got {alpha}")
        self.alpha = float(alpha)
        self.class_log_prior: torch.Tensor | None = None
        self.feature_log_prob: torch.Tensor | None = None

    def __repr__(self) -> str:
        return f"MultinomialNaiveBayes(alpha={self.alpha})"

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> MultinomialNaiveBayes:
        """Estimate the class priors and each class's word distribution from counts; return ``self``."""
        X = _check_counts(X)
        if (X < 0).any():
            raise ValueError("X must hold non-negative word counts")
        C = _check_labels(X, y)
        one_hot = F.one_hot(y.to(X.device), C).to(X.dtype)  # (n, C)
        class_count = one_hot.sum(dim=0)  # (C,)
        if (class_count == 0).any():
            missing = (class_count == 0).nonzero().flatten().tolist()
            raise ValueError(f"y must contain every class 0 .. {C - 1} at least once, missing {missing}")
        word_count = one_hot.T @ X + self.alpha  # (C, n) @ (n, V) -> (C, V): N_cw + alpha
        self.class_log_prior = torch.log(class_count / class_count.sum())  # (C,)
        self.feature_log_prob = torch.log(word_count) - torch.log(word_count.sum(dim=1, keepdim=True))
        return self

    def _fitted(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.feature_log_prob is None or self.class_log_prior is None:
            raise ValueError("this MultinomialNaiveBayes is not fitted yet: call fit(X, y) first")
        return self.class_log_prior, self.feature_log_prob

    def joint_log_likelihood(self, X: torch.Tensor) -> torch.Tensor:
        """``log p(x, y=c)`` up to the multinomial coefficient (the same for every class): ``(n, C)``."""
        prior, word_log_prob = self._fitted()
        X = _check_counts(X, word_log_prob.shape[1])
        return X @ word_log_prob.T + prior  # (n, V) @ (V, C) + (C,) -> (n, C)

    def predict_log_proba(self, X: torch.Tensor) -> torch.Tensor:
        """``log p(y=c | x)`` by Bayes' rule, each row normalised: ``(n, C)``."""
        joint = self.joint_log_likelihood(X)
        return joint - torch.logsumexp(joint, dim=1, keepdim=True)

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """The most probable class of each row: ``(n,)``."""
        return self.joint_log_likelihood(X).argmax(dim=1)

    def sample(self, c: int, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``length`` word ids drawn independently from class ``c``'s word distribution: the generative
        model writes (a bag of words, in no particular order, since that is all it knows)."""
        prior, word_log_prob = self._fitted()
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < len(prior):
            raise ValueError(f"c must be a class in 0 .. {len(prior) - 1}, got {c!r}")
        check_positive_int("length", length)
        probs = word_log_prob[c].exp().cpu()  # torch.multinomial with a CPU generator needs CPU tensors
        words = torch.multinomial(probs, length, replacement=True, generator=generator)
        return words.to(word_log_prob.device)


class LogisticRegression(nn.Module):
    """Softmax regression ``p(y | x) = softmax(linear(x))`` fitted by L-BFGS to convergence.

    ``fit(X, y)`` minimises the mean cross-entropy ``+ (l2 / 2) · ‖W‖²`` (the bias is not penalised),
    a convex problem, from zero weights, in float64; the result is copied into ``linear``. For
    ``l2 > 0`` that is scikit-learn's ``LogisticRegression(C=1 / (n · l2))``. With ``l2 = 0`` and data
    that a line separates perfectly there is no minimum (the weights grow for ever): ``fit`` then stops
    after ``max_iter`` iterations.

    >>> X, y = torch.tensor([[0.], [0.], [0.], [1.], [1.]]), torch.tensor([0, 0, 1, 1, 0])
    >>> model = LogisticRegression(n_features=1, n_classes=2).fit(X, y)
    >>> [round(p, 4) for p in model.predict_proba(torch.tensor([[0.], [1.]]))[:, 0].tolist()]  # 2/3, 1/2
    [0.6667, 0.5]
    """

    def __init__(self, n_features: int, n_classes: int, l2: float = 0.0, max_iter: int = 500,
                 tol: float = 1e-5) -> None:
        super().__init__()
        check_positive_int("n_features", n_features)
        check_positive_int("n_classes", n_classes)
        check_positive_int("max_iter", max_iter)
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        if isinstance(l2, bool) or not isinstance(l2, (int, float)) or l2 < 0:
            raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
        self.n_features, self.n_classes, self.l2 = n_features, n_classes, float(l2)
        self.max_iter, self.tol = max_iter, float(tol)
        self.linear = nn.Linear(n_features, n_classes)
        self.n_iter: int = 0  # L-BFGS iterations of the last fit

    def objective(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What ``fit`` minimises, at the current weights: mean cross-entropy + ``(l2 / 2) · ‖W‖²``."""
        return F.cross_entropy(self.linear(X), y) + 0.5 * self.l2 * self.linear.weight.pow(2).sum()

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> LogisticRegression:
        X = _check_counts(X, self.n_features)
        _check_labels(X, y, self.n_classes)
        X64, y = X.detach().to(torch.float64), y.to(X.device)
        weight = torch.zeros(self.n_classes, self.n_features, dtype=torch.float64, device=X.device,
                             requires_grad=True)
        bias = torch.zeros(self.n_classes, dtype=torch.float64, device=X.device, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=self.max_iter, history_size=20,
                                      tolerance_grad=self.tol, tolerance_change=1e-14,
                                      line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(X64 @ weight.T + bias, y) + 0.5 * self.l2 * weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)  # one call runs up to max_iter iterations, until the gradient vanishes
        self.n_iter = int(optimizer.state[weight].get("n_iter", 0))
        self.to(X.device)
        with torch.no_grad():
            self.linear.weight.copy_(weight.detach())
            self.linear.bias.copy_(bias.detach())
        return self

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, C)``."""
        return self.linear(_check_counts(X, self.n_features).to(self.linear.weight.dtype))

    @torch.no_grad()
    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        """``p(y = c | x)``: ``(n, C)``, rows sum to 1."""
        return torch.softmax(self(X), dim=1)

    @torch.no_grad()
    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """The most probable class of each row: ``(n,)``."""
        return self(X).argmax(dim=1)


class MLPClassifier(nn.Module):
    """A one-hidden-layer network on word counts: ``(n, V)`` -> ``Linear(V, hidden)`` -> ReLU ->
    dropout -> ``Linear(hidden, C)`` -> logits ``(n, C)``. With a few hundred examples and tens of
    thousands of weights it is the "small data, big model" of Lecture 4's overfitting section.

    >>> tuple(MLPClassifier(n_features=10, n_classes=2, hidden=8)(torch.zeros(3, 10)).shape)
    (3, 2)
    """

    def __init__(self, n_features: int, n_classes: int, hidden: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        for name, value in (("n_features", n_features), ("n_classes", n_classes), ("hidden", hidden)):
            check_positive_int(name, value)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        self.n_features = n_features
        self.hidden = nn.Linear(n_features, hidden)
        self.dropout = nn.Dropout(dropout)  # Srivastava et al. 2014: drop hidden units while training
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        X = _check_counts(X, self.n_features)
        return self.out(self.dropout(torch.relu(self.hidden(X))))  # (n, V) -> (n, hidden) -> (n, C)


def fit_mlp_classifier(
    X: torch.Tensor, y: torch.Tensor, X_val: torch.Tensor, y_val: torch.Tensor, *, hidden: int = 256,
    dropout: float = 0.0, weight_decay: float = 0.0, l1: float = 0.0, patience: int | None = None,
    steps: int = 300, lr: float = 1e-3, eval_every: int = 10, seed: int = 0, progress: bool = False,
) -> tuple[MLPClassifier, History]:
    """Train an ``MLPClassifier`` on all of ``(X, y)`` at every step (full batch) with
    ``utils.training.train`` and cross-entropy, measuring the loss on ``(X_val, y_val)`` every
    ``eval_every`` steps; return the model and its ``History`` (``losses``, ``val_losses``).

    The regularisers are ``train``'s: ``weight_decay`` (AdamW's), ``l1``, ``patience`` (early stopping,
    best weights restored), plus ``dropout`` in the model. No regulariser by default: ``weight_decay=0``.
    The initialisation and the dropout masks come from ``seed`` (the global random state is left as it
    was), so the same arguments give the same run, and runs that differ only in a regulariser start
    from the same weights.

    >>> X, y = torch.eye(4), torch.tensor([0, 1, 0, 1])
    >>> model, history = fit_mlp_classifier(X, y, X, y, hidden=8, steps=50, lr=0.05)
    >>> len(history.losses), len(history.val_losses), history.val_losses[-1] < history.val_losses[0]
    (50, 5, True)
    """
    X = _check_counts(X)
    C = _check_labels(X, y)
    X_val = _check_counts(X_val, X.shape[1])
    _check_labels(X_val, y_val, max(C, int(y_val.max()) + 1) if len(y_val) else C)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MLPClassifier(X.shape[1], C, hidden=hidden, dropout=dropout).to(X.device)
        history = train(model, lambda: (X, y), steps=steps, lr=lr, loss_fn=F.cross_entropy,
                        eval_every=eval_every, progress=progress, desc="MLP classifier",
                        val_data=(X_val, y_val.to(X.device)), patience=patience, weight_decay=weight_decay,
                        l1=l1)
    return model, history
