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


def test_memory_breakdown_bars_stacks_components_in_gb():
    from utils.plotting import memory_breakdown_bars

    _, ax = plt.subplots()
    data = {"a": {"weights": 2e9, "optimizer": 1e9}, "b": {"weights": 4e9}, "c": {"optimizer": 3e9}}
    assert memory_breakdown_bars(data, ax=ax, group_size=2, gpu_gb=(5,)) is ax
    heights = [float(p.get_height()) for p in ax.patches]
    assert heights == pytest.approx([2, 4, 0, 1, 0, 3])  # weights of a, b, c, then optimizer
    xs = [float(p.get_x() + p.get_width() / 2) for p in ax.patches[:3]]
    assert xs[1] - xs[0] == pytest.approx(1) and xs[2] - xs[1] > 1  # a gap after each group of 2
    assert [line.get_ydata()[0] for line in ax.lines] == [5]
    with pytest.raises(ValueError, match="breakdowns"):
        memory_breakdown_bars({})


# --- Lecture 6 ---------------------------------------------------------------------------------------

def test_row_norm_bars_marks_the_zero_rows():
    from utils.plotting import row_norm_bars

    _, ax = plt.subplots()
    assert row_norm_bars(torch.tensor([0.0, 1.5, 0.0]), ["a", "b", "c"], ax=ax, title="t") is ax
    assert [p.get_height() for p in ax.patches] == [0.0, 1.5, 0.0]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[0, 0], [2, 0]])  # the two zero rows
    with pytest.raises(ValueError, match="one entry per label"):
        row_norm_bars([1.0], ["a", "b"])


def test_distributions_on_grid_and_layer_norms_plot():
    from utils.plotting import distributions_on_grid, layer_norms_plot, legend_overlaps

    _, ax = plt.subplots()
    distributions_on_grid([0.0, 1.0], {"p": [0.5, 0.5], "q": [0.9, 0.1]}, ax=ax, filled="p")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [0.9, 0.1])
    # Lecture 6's picture: two peaks, a wide fit over both and a narrow fit on each; curves everywhere,
    # so wherever "best" puts a legend inside the axes it hides one of them (it did, over the peaks)
    fig, ax = plt.subplots(figsize=(6, 3))
    xs = np.linspace(-6, 6, 121)
    bump = {centre: np.exp(-0.5 * ((xs - centre) / 0.6) ** 2) for centre in (-2.5, 2.5)}
    curves = {"target p": (bump[-2.5] + bump[2.5]) / 2,
              "forward KL(p||q)": np.exp(-0.5 * (xs / 2.6) ** 2) / 4,
              "reverse KL(q||p), from +0.5": bump[-2.5], "reverse KL(q||p), from -0.5": bump[2.5]}
    distributions_on_grid(xs, curves, ax=ax, filled="target p")
    assert legend_overlaps(fig) == []
    with pytest.raises(ValueError, match="filled"):
        distributions_on_grid([0.0], {"p": [1.0]}, filled="q")
    with pytest.raises(ValueError, match="one value per grid point"):
        distributions_on_grid([0.0, 1.0], {"p": [1.0]})
    _, ax = plt.subplots()
    layer_norms_plot({"relu": torch.tensor([1.0, 2.0, 3.0])}, ax=ax)
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [1, 2, 3])  # layers counted from 1
    _, ax = plt.subplots()
    layer_norms_plot({"sigmoid": [0.0, 0.0, 1e-3]}, ax=ax)  # underflowed layers leave a gap
    assert np.isnan(ax.get_lines()[0].get_ydata()[:2]).all()
    assert ax.get_lines()[0].get_label() == "sigmoid (2 layers exactly 0)"
    with pytest.raises(ValueError, match=">= 0"):
        layer_norms_plot({"relu": [-1.0, 1.0]})


def test_patch_grid_draws_one_line_per_patch_border():
    from utils.multimodal import toy_image
    from utils.plotting import patch_grid

    ax = patch_grid(toy_image(64, 32), 16)
    assert ax.get_title() == "16 × 16 patches: 8 tokens"
    assert len(ax.lines) == (32 // 16 + 1) + (64 // 16 + 1)  # vertical and horizontal borders
    with pytest.raises(ValueError, match="patch_size"):
        patch_grid(toy_image(30, 30), 16)
    plt.close("all")


# --- legends must not cover data (the browser test runs legend_overlaps on every figure shown) ---------

def _legend_at(ax, where):
    """A legend in a given spot: 'center' of the axes, or 'outside' to the right of them."""
    if where == "outside":
        return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    return ax.legend(loc=where)


@pytest.mark.parametrize("draw, kind", [
    (lambda ax: ax.plot([0, 1], [0, 1], label="diagonal"), "line 'diagonal'"),  # a segment, no vertex inside
    (lambda ax: ax.axhline(0.5, label="reference"), "line 'reference'"),  # axes-wide, blended transform
    (lambda ax: ax.plot([0.5], [0.5], "o", label="dot"), "line 'dot'"),  # a marker, no segment
    (lambda ax: ax.scatter([0.5], [0.5], label="points"), "collection 'points'"),
    (lambda ax: ax.vlines([0.5], 0, 1, label="levels"), "collection 'levels'"),
    (lambda ax: ax.bar([0.5], [1.0], width=0.2, label="bar"), "patch"),
    (lambda ax: ax.fill_between([0, 1], [0.4, 0.4], [0.6, 0.6], label="band"), "collection 'band'"),
])
def test_legend_overlaps_finds_data_under_a_legend_and_none_beside_it(draw, kind):
    from utils.plotting import legend_overlaps

    fig, ax = plt.subplots(figsize=(4, 3))
    draw(ax)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    _legend_at(ax, "center")
    found = legend_overlaps(fig)
    assert len(found) == 1 and found[0].startswith(f"axes 0: the legend covers {kind}"), found
    _legend_at(ax, "outside")
    assert legend_overlaps(fig) == []


def test_legend_overlaps_sees_where_best_put_the_legend_and_texts_under_it():
    from utils.plotting import legend_overlaps

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    left.plot([0, 1], [1, 1], label="top")  # "best" keeps clear of a line along the top
    left.set_ylim(0, 1.1)
    left.legend()
    right.text(0.5, 0.5, "a bar label", ha="center", va="center")
    right.plot([0, 1], [0, 0], label="bottom")
    right.set(xlim=(0, 1), ylim=(-0.1, 1))
    right.legend(loc="center")
    assert legend_overlaps(fig) == ["axes 1: the legend covers text 'a bar label'"]
    fig.legend(handles=left.get_lines(), loc="center", bbox_to_anchor=(0.5, 1 / 1.1),  # on the top line
               bbox_transform=left.transAxes)  # a figure legend is checked against every axes
    assert any(f.startswith("figure legend: the legend covers") for f in legend_overlaps(fig))


def test_legend_overlaps_rejects_what_is_not_a_figure():
    from utils.plotting import legend_overlaps

    _, ax = plt.subplots()
    with pytest.raises(TypeError, match="Figure"):
        legend_overlaps(ax)
