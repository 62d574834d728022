"""utils.plotting: each function takes ax=, returns it, and draws what it was given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from utils.plotting import heatmap, loglog_fit, token_strip  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_heatmap_draws_the_values_on_the_given_axes():
    _, ax = plt.subplots()
    matrix = torch.tensor([[0.1, 0.9], [0.5, 0.5]])
    assert heatmap(matrix, ["a", "b"], ["c", "d"], ax=ax, annotate=True) is ax
    np.testing.assert_allclose(ax.images[0].get_array(), matrix.numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "d"]
    assert sorted(t.get_text() for t in ax.texts) == ["0.10", "0.50", "0.50", "0.90"]


def test_heatmap_rejects_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match="xlabels"):
        heatmap(torch.zeros(2, 3), xlabels=["a", "b"])
    with pytest.raises(ValueError, match="matrix"):
        heatmap(torch.zeros(2, 3, 4))


def test_token_strip_draws_one_box_per_token():
    ax = token_strip(["the", " cat", " sat"])
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.texts] == ["the", "·cat", "·sat"]
    assert "3 tokens" in ax.get_title(loc="left")
    with pytest.raises(TypeError, match="pieces"):
        token_strip("the cat")


def test_loglog_fit_recovers_a_known_power_law():
    x = np.array([10.0, 20.0, 40.0, 80.0])
    ax, slope = loglog_fit(x, 3 * x**2.5)
    assert slope == pytest.approx(2.5)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="positive"):
        loglog_fit([1, 2], [0, 1])
