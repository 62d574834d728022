"""Tests for utils.classifiers. Oracles: naive Bayes counts worked out by hand and Bayes' rule by hand;
logistic regression at its optimum (the gradient of its objective vanishes), a saturated design whose
optimum is the empirical class frequency of each group (a closed form), and an independent Newton solver
written here; the MLP's regularisers as properties (smaller norms, the same start, the global random
state untouched)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from utils.classifiers import (
    LogisticRegression,
    MLPClassifier,
    MultinomialNaiveBayes,
    accuracy,
    bag_of_words,
    fit_mlp_classifier,
)


def test_bag_of_words_by_hand_and_unknown_words_ignored():
    X = bag_of_words(["b a b .", "c", ""], ["a", "b", "."])
    assert X.tolist() == [[1, 2, 1], [0, 0, 0], [0, 0, 0]] and X.dtype == torch.float32
    with pytest.raises(TypeError, match="texts"):
        bag_of_words("a b", ["a"])
    with pytest.raises(ValueError, match="vocabulary"):
        bag_of_words(["a"], ["a", "a"])


# --- naive Bayes ---------------------------------------------------------------------------------------

# three documents over the words (good, bad, film): two of class 1, one of class 0
X_NB = torch.tensor([[2.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
Y_NB = torch.tensor([1, 1, 0])


def test_naive_bayes_counts_by_hand():
    nb = MultinomialNaiveBayes(alpha=1.0).fit(X_NB, Y_NB)
    # class 0: counts (0, 3, 1) + 1 -> (1, 4, 2) / 7;  class 1: (3, 0, 2) + 1 -> (4, 1, 3) / 8
    torch.testing.assert_close(nb.feature_log_prob.exp(), torch.tensor([[1 / 7, 4 / 7, 2 / 7],
                                                                         [4 / 8, 1 / 8, 3 / 8]]))
    torch.testing.assert_close(nb.class_log_prior.exp(), torch.tensor([1 / 3, 2 / 3]))
    # Lidstone smoothing alpha = 0.5: class 0 (0.5, 3.5, 1.5) / 5.5
    half = MultinomialNaiveBayes(alpha=0.5).fit(X_NB, Y_NB)
    torch.testing.assert_close(half.feature_log_prob[0].exp(), torch.tensor([0.5, 3.5, 1.5]) / 5.5)


def test_naive_bayes_posterior_is_bayes_rule_by_hand():
    nb = MultinomialNaiveBayes().fit(X_NB, Y_NB)
    x = torch.tensor([[1.0, 1.0, 0.0]])  # "good bad"
    joint = [math.log(1 / 3) + math.log(1 / 7) + math.log(4 / 7),  # p(y=0) p(good|0) p(bad|0)
             math.log(2 / 3) + math.log(4 / 8) + math.log(1 / 8)]
    posterior = torch.softmax(torch.tensor(joint), dim=0)
    torch.testing.assert_close(nb.predict_log_proba(x).exp()[0], posterior.float())
    torch.testing.assert_close(nb.predict_log_proba(X_NB).exp().sum(dim=1), torch.ones(3))
    assert nb.predict(x).tolist() == [int(posterior.argmax())]
    assert nb.predict(X_NB).tolist() == [1, 1, 0]


def test_naive_bayes_sample_follows_the_class_distribution_and_does_not_modify_inputs():
    X, y = X_NB.clone(), Y_NB.clone()
    nb = MultinomialNaiveBayes().fit(X, y)
    assert torch.equal(X, X_NB) and torch.equal(y, Y_NB)
    words = nb.sample(0, 20_000, generator=torch.Generator().manual_seed(0))
    assert words.shape == (20_000,) and words.dtype == torch.long
    frequencies = torch.bincount(words, minlength=3).float() / 20_000
    torch.testing.assert_close(frequencies, torch.tensor([1 / 7, 4 / 7, 2 / 7]), atol=0.015, rtol=0)
    again = nb.sample(0, 50, generator=torch.Generator().manual_seed(0))  # reproducible with a seed
    assert torch.equal(again, nb.sample(0, 50, generator=torch.Generator().manual_seed(0)))


def test_naive_bayes_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        MultinomialNaiveBayes(alpha=0.0)
    with pytest.raises(ValueError, match="not fitted"):
        MultinomialNaiveBayes().predict(X_NB)
    with pytest.raises(ValueError, match="every class"):
        MultinomialNaiveBayes().fit(X_NB, torch.tensor([2, 2, 0]))  # class 1 missing
    with pytest.raises(ValueError, match="non-negative"):
        MultinomialNaiveBayes().fit(-X_NB, Y_NB)
    with pytest.raises(TypeError, match="y"):
        MultinomialNaiveBayes().fit(X_NB, Y_NB.float())
    nb = MultinomialNaiveBayes().fit(X_NB, Y_NB)
    with pytest.raises(ValueError, match="columns"):
        nb.predict(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="c must"):
        nb.sample(2, 5)


# --- logistic regression ---------------------------------------------------------------------------------

def random_problem(n: int = 200, V: int = 6, C: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.poisson(torch.full((n, V), 1.5), generator=g)
    W = torch.randn(C, V, generator=g)
    y = torch.multinomial(torch.softmax(X @ W.T * 0.5, dim=1), 1, generator=g).flatten()
    return X, y


def objective_gradient(model: LogisticRegression, X, y) -> torch.Tensor:
    model.zero_grad()
    model.objective(X.double(), y).backward()
    return torch.cat([model.linear.weight.grad.flatten(), model.linear.bias.grad.flatten()])


@pytest.mark.parametrize("l2", [0.1, 0.01])
def test_logistic_regression_gradient_vanishes_at_the_fit(l2):
    X, y = random_problem()
    model = LogisticRegression(6, 3, l2=l2, tol=1e-10).fit(X, y).double()
    assert objective_gradient(model, X, y).abs().max() < 1e-6
    # ... and moving away from the fit in any direction costs: it is the minimum (the objective is convex)
    g = torch.Generator().manual_seed(1)
    best = model.objective(X.double(), y).item()
    with torch.no_grad():
        for _ in range(5):
            model.linear.weight += 1e-2 * torch.randn(3, 6, generator=g, dtype=torch.float64)
            assert model.objective(X.double(), y).item() > best


def test_logistic_regression_saturated_design_gives_the_empirical_frequencies():
    # one-hot groups: with a weight per group and no penalty, p(y | group) = its frequency in the data
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    y = torch.tensor([0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1])
    X = F.one_hot(groups, 3).float()
    model = LogisticRegression(3, 2, l2=0.0, tol=1e-10).fit(X, y)
    p1 = model.predict_proba(torch.eye(3))[:, 1]
    torch.testing.assert_close(p1, torch.tensor([1 / 4, 2 / 3, 4 / 5]), atol=1e-5, rtol=0)


def newton_binary(X: torch.Tensor, y: torch.Tensor, l2: float, iterations: int = 30) -> torch.Tensor:
    """An independent solver: Newton's method on the binary logistic loss with ``l2 / 2 · ‖w‖²`` on
    the weights (not the bias), in float64. Returns (w, b) as one vector (V + 1,)."""
    X1 = torch.cat([X.double(), torch.ones(len(X), 1, dtype=torch.float64)], dim=1)  # (n, V + 1)
    t = y.double()
    beta = torch.zeros(X1.shape[1], dtype=torch.float64)
    penalty = torch.full((X1.shape[1],), l2, dtype=torch.float64)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = torch.sigmoid(X1 @ beta)
        grad = X1.T @ (p - t) / len(t) + penalty * beta
        hessian = (X1.T * (p * (1 - p))) @ X1 / len(t) + torch.diag(penalty)
        beta = beta - torch.linalg.solve(hessian, grad)
    return beta


def test_two_class_softmax_regression_equals_newtons_binary_logistic_regression():
    # softmax with 2 classes and the penalty on both rows is binary logistic regression with
    # w = w1 - w0 and twice the penalty: the optimum splits w symmetrically (w1 = -w0 = w / 2)
    X, y = random_problem(n=300, V=5, C=2, seed=3)
    model = LogisticRegression(5, 2, l2=0.05, tol=1e-10).fit(X, y)
    w = (model.linear.weight[1] - model.linear.weight[0]).double()
    b = (model.linear.bias[1] - model.linear.bias[0]).double()
    beta = newton_binary(X, y, l2=0.05 / 2)
    torch.testing.assert_close(torch.cat([w, b[None]]), beta, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model.linear.weight[0], -model.linear.weight[1], atol=1e-5, rtol=0)


def test_logistic_regression_predictions_and_device_and_inputs():
    X, y = random_problem()
    X0, y0 = X.clone(), y.clone()
    model = LogisticRegression(6, 3, l2=0.01).fit(X, y)
    assert torch.equal(X, X0) and torch.equal(y, y0)
    proba = model.predict_proba(X)
    torch.testing.assert_close(proba.sum(dim=1), torch.ones(len(X)))
    assert torch.equal(model.predict(X), proba.argmax(dim=1))
    assert model.linear.weight.device == X.device and model.n_iter > 0
    assert accuracy(model.predict(X), y) > 1 / 3  # better than chance on its own data


def test_logistic_regression_bad_arguments():
    with pytest.raises(ValueError, match="n_classes"):
        LogisticRegression(3, 1)
    with pytest.raises(ValueError, match="l2"):
        LogisticRegression(3, 2, l2=-1.0)
    with pytest.raises(ValueError, match="columns"):
        LogisticRegression(3, 2).fit(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="classes"):
        LogisticRegression(3, 2).fit(torch.zeros(2, 3), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="2-D float"):
        LogisticRegression(3, 2).fit(torch.zeros(2, 3, dtype=torch.long), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="same shape"):
        accuracy(torch.tensor([0, 1]), torch.tensor([0]))


# --- the MLP of the overfitting section -------------------------------------------------------------------

def mlp_problem():
    X, y = random_problem(n=80, V=20, C=2, seed=5)
    Xv, yv = random_problem(n=80, V=20, C=2, seed=6)
    return X, y, Xv, yv


def test_fit_mlp_is_reproducible_and_leaves_the_global_random_state_alone():
    X, y, Xv, yv = mlp_problem()
    state = torch.random.get_rng_state()
    a, ha = fit_mlp_classifier(X, y, Xv, yv, hidden=16, steps=30, dropout=0.3, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    b, hb = fit_mlp_classifier(X, y, Xv, yv, hidden=16, steps=30, dropout=0.3, seed=1)
    assert ha.losses == hb.losses and ha.val_losses == hb.val_losses
    assert len(ha.val_losses) == 3 and ha.val_steps == [10, 20, 30]
    assert isinstance(a, MLPClassifier) and not a.training


def test_fit_mlp_regularisers_start_from_the_same_weights_and_shrink_them():
    X, y, Xv, yv = mlp_problem()
    plain, h_plain = fit_mlp_classifier(X, y, Xv, yv, hidden=16, steps=1, lr=1e-9)
    decayed, _ = fit_mlp_classifier(X, y, Xv, yv, hidden=16, steps=1, lr=1e-9, weight_decay=1.0)
    torch.testing.assert_close(plain.hidden.weight, decayed.hidden.weight)  # one tiny step: same start
    kwargs = dict(hidden=16, steps=200, lr=1e-2)
    free, _ = fit_mlp_classifier(X, y, Xv, yv, **kwargs)
    l2, _ = fit_mlp_classifier(X, y, Xv, yv, weight_decay=5.0, **kwargs)
    l1, _ = fit_mlp_classifier(X, y, Xv, yv, l1=1e-2, **kwargs)
    assert l2.hidden.weight.norm() < 0.8 * free.hidden.weight.norm()
    assert l1.hidden.weight.abs().sum() < 0.8 * free.hidden.weight.abs().sum()


def test_mlp_classifier_bad_arguments():
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier(3, 2, dropout=1.0)
    with pytest.raises(ValueError, match="columns"):
        MLPClassifier(3, 2)(torch.zeros(1, 4))
