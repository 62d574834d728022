"""Figures for the notebooks. Every function takes ``ax=`` (a new figure is made when it is None) and
returns the axes, so a notebook can compose several plots in one figure.

>>> import torch
>>> ax = heatmap(torch.eye(3), xlabels=list("abc"), ylabels=list("abc"))
>>> ax.get_xticklabels()[0].get_text()
'a'
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import FancyBboxPatch

__all__ = ["heatmap", "token_strip", "loglog_fit", "TOKEN_COLOURS", "memory_breakdown_bars", "row_norm_bars",
           "distributions_on_grid", "layer_norms_plot", "patch_grid", "legend_overlaps",
           "watch_legends", "sweep_curves_plot"]

# Pale, distinguishable colours for token boxes (token i gets colour i mod len).
TOKEN_COLOURS = ("#cfe8ff", "#ffe0b3", "#d6f5d6", "#f9d0e0", "#e6dcff", "#fff3b0")


def _axes(ax: Axes | None, figsize: tuple[float, float] = (5, 4)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _as_array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=float)


def heatmap(
    matrix,
    xlabels: Sequence[str] | None = None,
    ylabels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    annotate: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Axes:
    """Draw a 2-D matrix (rows = queries, columns = keys for attention) with optional tick labels.

    ``annotate=True`` writes each value in its cell (two decimals), useful for small attention maps.
    """
    values = _as_array(matrix)
    if values.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {tuple(values.shape)}")
    for name, labels, size in (("xlabels", xlabels, values.shape[1]), ("ylabels", ylabels, values.shape[0])):
        if labels is not None and len(labels) != size:
            raise ValueError(f"{name} must have {size} entries to match the matrix, got {len(labels)}")
    ax = _axes(ax)
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), labels=list(xlabels), rotation=45, ha="right")
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), labels=list(ylabels))
    if annotate:
        middle = (np.nanmax(values) + np.nanmin(values)) / 2
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if v > middle else "white")
    if title:
        ax.set_title(title)
    return ax


def token_strip(pieces: Sequence[str], ax: Axes | None = None, title: str | None = None) -> Axes:
    """Draw tokens as coloured boxes side by side (wrapping onto new rows), so boundaries are visible.

    Spaces are shown as ``·`` and newlines as ``⏎`` so that whitespace tokens stay visible.
    """
    if isinstance(pieces, str):
        raise TypeError("pieces must be a sequence of token strings, not one str")
    ax = _axes(ax, figsize=(9, 1.2))
    x, y, width_limit, row_height = 0.0, 0.0, 60.0, 1.4
    for i, piece in enumerate(pieces):
        shown = piece.replace(" ", "·").replace("\n", "⏎") or "∅"
        width = 0.62 * len(shown) + 0.5
        if x + width > width_limit and x > 0:
            x, y = 0.0, y - row_height
        ax.add_patch(FancyBboxPatch((x, y), width, 1.0, boxstyle="round,pad=0.02,rounding_size=0.2",
                                    facecolor=TOKEN_COLOURS[i % len(TOKEN_COLOURS)], edgecolor="#555555",
                                    linewidth=0.6))
        ax.text(x + width / 2, y + 0.5, shown, ha="center", va="center", fontsize=9, family="monospace")
        x += width + 0.15
    ax.set_xlim(-0.2, width_limit + 0.2)
    ax.set_ylim(y - 0.2, 1.5)
    ax.set_aspect("auto")
    ax.axis("off")
    label = f"{len(pieces)} tokens"
    ax.set_title(f"{title} ({label})" if title else label, fontsize=10, loc="left")
    return ax


def loglog_fit(x, y, ax: Axes | None = None, label: str | None = None) -> tuple[Axes, float]:
    """Plot ``y`` against ``x`` on log-log axes with the least-squares line of ``log y = a log x + b``.

    Returns ``(ax, slope)``: a slope of 2 means ``y`` grows with the square of ``x``.

    >>> _, slope = loglog_fit([1, 2, 4], [3, 12, 48])
    >>> round(slope, 6)
    2.0
    """
    xs, ys = _as_array(x), _as_array(y)
    if xs.shape != ys.shape or xs.ndim != 1 or len(xs) < 2:
        raise ValueError(f"x and y must be 1-D of the same length >= 2, got {xs.shape} and {ys.shape}")
    if (xs <= 0).any() or (ys <= 0).any():
        raise ValueError("x and y must be positive for a log-log fit")
    slope, intercept = np.polyfit(np.log(xs), np.log(ys), 1)
    ax = _axes(ax)
    ax.loglog(xs, ys, "o", label=label)
    ax.loglog(xs, np.exp(intercept) * xs**slope, "--", color="grey", label=f"fit: slope {slope:.2f}")
    ax.legend()
    return ax, float(slope)


def legend_overlaps(fig) -> list[str]:
    """What the legends of ``fig`` cover, one line per (legend, covered artist); an empty list: nothing.

    A legend should never hide data. Covered means, in the drawn figure's pixels: a line (its segments,
    ``axhline`` and ``vlines`` included) or a scatter point passes under the legend box, or a bar or other
    patch, or a text such as a ``bar_label``, overlaps it. A legend outside the axes covers nothing.
    The figure is drawn first, because ``loc="best"`` places a legend only at draw time. The browser test
    runs this on every figure a lecture shows.

    >>> fig, ax = plt.subplots(figsize=(4, 3))
    >>> _ = ax.plot([0, 1], [0, 1], label="diagonal")
    >>> _ = ax.legend(loc="center")
    >>> legend_overlaps(fig)
    ["axes 0: the legend covers line 'diagonal'"]
    >>> _ = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    >>> legend_overlaps(fig)
    []
    >>> plt.close(fig)
    """
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.figure import Figure
    from matplotlib.path import Path

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    if not hasattr(fig.canvas, "get_renderer"):
        raise TypeError("fig must belong to a raster canvas (Agg, inline): make it with plt.subplots")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()

    def name(kind: str, artist, k: int) -> str:
        label = artist.get_label() if hasattr(artist, "get_label") else ""
        return f"{kind} {label!r}" if label and not str(label).startswith("_") else f"{kind} {k}"

    def polyline_hits(points: np.ndarray, box) -> bool:
        """Does the polyline through these display points cross or enter ``box``? (NaN breaks a line.)"""
        finite = np.isfinite(points).all(axis=1)
        runs = np.split(points, np.flatnonzero(~finite))  # each run starts with the NaN that broke it
        return any(len(run) > 1 and Path(run).intersects_bbox(box, filled=False)
                   for run in (r[np.isfinite(r).all(axis=1)] for r in runs))

    def covered(ax: Axes, box) -> list[str]:
        found = []
        for k, line in enumerate(ax.get_lines()):
            if not line.get_visible():
                continue
            points = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
            has_line = line.get_linestyle() not in ("None", "", " ") and len(points) > 1
            has_marker = line.get_marker() not in (None, "None", "", " ")
            dots = points[np.isfinite(points).all(axis=1)]
            if (has_line and polyline_hits(points, box)) or (has_marker and any(
                    box.contains(x, y) for x, y in dots)):
                found.append(name("line", line, k))
        for k, collection in enumerate(ax.collections):
            if not collection.get_visible():
                continue
            if isinstance(collection, PathCollection):  # scatter: one marker per offset
                offsets = collection.get_offset_transform().transform(collection.get_offsets())
                hit = any(box.contains(x, y) for x, y in offsets)
            elif isinstance(collection, LineCollection):
                transform = collection.get_transform()
                hit = any(polyline_hits(transform.transform(np.asarray(seg, dtype=float)), box)
                          for seg in collection.get_segments())
            else:  # filled areas (fill_between, ...)
                transform = collection.get_transform()
                hit = any(path.transformed(transform).intersects_bbox(box, filled=True)
                          for path in collection.get_paths())
            if hit:
                found.append(name("collection", collection, k))
        for k, patch in enumerate(ax.patches):
            extent = patch.get_window_extent(renderer)
            if patch.get_visible() and extent.width >= 0.5 and extent.height >= 0.5 and \
                    patch.get_path().transformed(patch.get_transform()).intersects_bbox(box, filled=True):
                found.append(name("patch", patch, k))
        for k, text in enumerate(ax.texts):
            if text.get_visible() and text.get_text().strip() and \
                    text.get_window_extent(renderer).overlaps(box):
                found.append(f"text {text.get_text()[:30]!r}" if text.get_text() else f"text {k}")
        return found

    legends = [(i, ax.get_legend(), [ax]) for i, ax in enumerate(fig.axes) if ax.get_legend() is not None]
    legends += [(None, legend, list(fig.axes)) for legend in fig.legends]
    findings: list[str] = []
    for index, legend, targets in legends:
        if not legend.get_visible():
            continue
        box = legend.get_window_extent(renderer).padded(-1)  # 1 px inside the frame: touching is not covering
        where = f"axes {index}" if index is not None else "figure legend"
        for ax in targets:
            findings += [f"{where}: the legend covers {what}" for what in covered(ax, box)]
    return list(dict.fromkeys(findings))


def watch_legends() -> list[list]:
    """Check every figure this IPython kernel displays from now on with ``legend_overlaps``.

    Returns the list the findings are appended to, as ``[execution_count, finding]`` pairs: the count of
    the cell that showed the figure, or None for a figure a widget's callback drew after its cell had
    finished. The browser test and the robustness run install it before a lecture runs. Outside IPython
    it raises ``RuntimeError``.
    """
    from IPython import get_ipython
    from matplotlib.figure import Figure

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("watch_legends() needs an IPython kernel (a notebook)")
    # pyplot resolves its backend at the first figure, and the inline backend then registers its PNG
    # formatter, replacing a wrapped one: make that happen now, with a figure that is never shown.
    plt.close(plt.figure())
    findings: list[list] = []
    cell = {"running": False}  # a figure drawn by a widget's callback belongs to no cell

    def cell_count():  # IPython counts a cell before running it: during the cell, its own number + 1
        return shell.execution_count - 1 if cell["running"] else None

    def wrap(*_):
        # wrapped again before every cell, in case the inline backend registers its formatter afterwards
        cell["running"] = True
        formatter = shell.display_formatter.formatters["image/png"]
        try:
            original = formatter.lookup_by_type(Figure)
        except KeyError:
            return
        if getattr(original, "_course_checked", False):
            return

        def checked(fig, *args, **kwargs):
            try:
                findings.extend([cell_count(), f] for f in legend_overlaps(fig))
            except Exception as error:  # the check must never break a figure
                # JupyterLab runs some widget messages on a kernel subshell thread, whose post_execute
                # shows (and pyplot then closes) the open figures while the main thread's callback is
                # showing the same one: a figure closed under the check has lost its renderer. That is
                # a race between two threads of the kernel, not a finding about the figure.
                if hasattr(fig.canvas, "get_renderer"):
                    findings.append([cell_count(), f"legend check failed: {error!r}"])
            return original(fig, *args, **kwargs)

        checked._course_checked = True
        formatter.for_type(Figure, checked)

    wrap()
    cell["running"] = False
    shell.events.register("pre_run_cell", wrap)
    shell.events.register("post_run_cell", lambda result: cell.update(running=False))
    return findings


def memory_breakdown_bars(
    breakdowns: dict[str, dict[str, float]],
    ax: Axes | None = None,
    group_size: int | None = None,
    gpu_gb: Sequence[float] = (24, 48, 80),
    title: str | None = None,
    rotation: float = 0,
) -> Axes:
    """Stacked bars of memory components, one bar per entry of ``breakdowns`` (label -> {component: bytes}).

    Bars are drawn in gigabytes (1 GB = 1e9 bytes); ``group_size`` leaves a gap after every that many bars
    (e.g. 3 formats per model); dashed lines mark GPU memory sizes in ``gpu_gb``. Components missing from
    a bar count as 0.

    >>> ax = memory_breakdown_bars({"a": {"weights": 2e9}, "b": {"weights": 1e9, "optimizer": 1e9}})
    >>> [round(float(p.get_height()), 1) for p in ax.patches]
    [2.0, 1.0, 0.0, 1.0]
    """
    if not breakdowns:
        raise ValueError("breakdowns must contain at least one bar")
    if group_size is not None and group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    labels = list(breakdowns)
    components = list(dict.fromkeys(c for parts in breakdowns.values() for c in parts))
    gap = 0.6
    xs = np.array([i + (gap * (i // group_size) if group_size else 0.0) for i in range(len(labels))])
    ax = _axes(ax, figsize=(max(5.0, 0.6 * len(labels) + 2), 4))
    bottom = np.zeros(len(labels))
    for component in components:
        heights = np.array([breakdowns[label].get(component, 0.0) / 1e9 for label in labels])
        ax.bar(xs, heights, bottom=bottom, width=0.8, label=component.replace("_", " "))
        bottom += heights
    for size in gpu_gb:
        ax.axhline(size, color="grey", linestyle="--", linewidth=0.8)
        ax.text(xs[-1] + 0.5, size, f"{size:g} GB", va="center", ha="left", fontsize=8, color="grey")
    ax.set_xlim(xs[0] - 0.6, xs[-1] + 1.6)  # room for the GPU labels on the right
    ax.set_xticks(xs, labels=labels, rotation=rotation)
    ax.set_ylabel("memory (GB)")
    ax.legend(fontsize=8, loc="upper left")
    if title:
        ax.set_title(title)
    return ax


# --- Lecture 6: gradient rows, distributions on a grid, gradient norms per layer -----------------------

def row_norm_bars(norms, labels: Sequence[str], ax: Axes | None = None, title: str | None = None) -> Axes:
    """One bar per row of a table (e.g. the gradient norm of each embedding row), labelled; rows whose
    value is exactly 0 get no bar but a grey ``·`` on the axis, so "nothing" stays visible.

    >>> ax = row_norm_bars([0.0, 2.0, 0.5], ["a", "b", "c"])
    >>> [round(float(p.get_height()), 2) for p in ax.patches], len(ax.collections[0].get_offsets())
    ([0.0, 2.0, 0.5], 1)
    """
    values = _as_array(norms)
    if values.ndim != 1 or len(values) != len(labels):
        raise ValueError(f"norms must be 1-D with one entry per label ({len(labels)}), got shape "
                         f"{values.shape}")
    ax = _axes(ax, figsize=(12, 3))
    xs = np.arange(len(values))
    zero = values == 0
    ax.bar(xs, values, color=np.where(zero, "#cccccc", "#4c72b0"))
    ax.scatter(xs[zero], np.zeros(int(zero.sum())), marker=".", color="#999999", zorder=3)
    ax.set_xticks(xs, labels=list(labels), rotation=90, fontsize=8)
    ax.set_xlim(-0.7, len(values) - 0.3)
    if title:
        ax.set_title(title)
    return ax


def distributions_on_grid(grid, curves: dict, ax: Axes | None = None, filled: str | None = None,
                          title: str | None = None) -> Axes:
    """Probability distributions on a common ``grid`` (``curves``: label -> probabilities), as lines;
    the curve named ``filled`` (e.g. the target) is drawn as a grey area behind the others. The legend
    sits beside the axes: the curves may fill the whole plot, wherever their peaks are.

    >>> ax = distributions_on_grid([0, 1, 2], {"p": [0.2, 0.5, 0.3], "q": [0.3, 0.4, 0.3]}, filled="p")
    >>> [line.get_label() for line in ax.get_lines()], len(ax.collections)
    (['q'], 1)
    """
    xs = _as_array(grid)
    if filled is not None and filled not in curves:
        raise ValueError(f"filled must name one of the curves {list(curves)}, got {filled!r}")
    ax = _axes(ax, figsize=(6, 3))
    for name, probs in curves.items():
        ys = _as_array(probs)
        if ys.shape != xs.shape:
            raise ValueError(f"curve {name!r} must have one value per grid point ({len(xs)}), got {ys.shape}")
        if name == filled:
            ax.fill_between(xs, ys, color="#cccccc", label=name)
        else:
            ax.plot(xs, ys, linewidth=2, label=name)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    if title:
        ax.set_title(title)
    return ax


def layer_norms_plot(norms: dict, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Gradient norm per layer (label -> ``(depth,)`` values, layer 1 = nearest the input), log scale.
    A norm of exactly 0 (a gradient that underflowed in float32) cannot be drawn on a log scale: the
    line stops there, and the legend says how many layers got exactly nothing.

    >>> ax = layer_norms_plot({"relu": [1.0, 1.2], "sigmoid": [0.0, 1e-3, 1.0]})
    >>> ax.get_yscale(), [line.get_label() for line in ax.get_lines()]
    ('log', ['relu', 'sigmoid (1 layer exactly 0)'])
    """
    ax = _axes(ax, figsize=(6, 3.5))
    for name, values in norms.items():
        ys = _as_array(values)
        if ys.ndim != 1 or (ys < 0).any() or np.isnan(ys).any():
            raise ValueError(f"norms[{name!r}] must be 1-D and >= 0, got {ys}")
        zeros = int((ys == 0).sum())
        label = f"{name} ({zeros} layer{'s' if zeros > 1 else ''} exactly 0)" if zeros else name
        shown = np.where(ys > 0, ys, np.nan)  # NaN: no point, the line breaks
        ax.plot(np.arange(1, len(ys) + 1), shown, marker="o", markersize=3, label=label)
    ax.set_yscale("log")
    ax.set(xlabel="layer (1 = nearest the input)", ylabel="gradient norm of the layer's weights")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def patch_grid(image: torch.Tensor, patch_size: int, ax: Axes | None = None) -> Axes:
    """Draw ``image (C, H, W)`` (values in [0, 1]) with the lines that cut it into ``patch_size`` squares:
    each square becomes one token of a Vision Transformer (Lecture 4, Q20).

    >>> patch_grid(torch.zeros(3, 32, 32), 8).get_title()
    '8 × 8 patches: 16 tokens'
    """
    from .multimodal import num_patches

    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise ValueError("image must be a tensor of shape (C, H, W)")
    C, H, W = image.shape
    n = num_patches(H, W, patch_size)
    ax = _axes(ax, figsize=(4, 4))
    picture = image.permute(1, 2, 0).clamp(0, 1).cpu().numpy()  # (C, H, W) -> (H, W, C) for imshow
    ax.imshow(picture[..., 0] if C == 1 else picture, cmap="gray" if C == 1 else None)
    for x in range(0, W + 1, patch_size):
        ax.axvline(x - 0.5, color="white", linewidth=0.8)
    for y in range(0, H + 1, patch_size):
        ax.axhline(y - 0.5, color="white", linewidth=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{patch_size} × {patch_size} patches: {n} tokens")
    return ax


# --- Lecture 10: a hyperparameter sweep ------------------------------------------------------------------

def sweep_curves_plot(sweep: dict, batch_size: int, n_layers: int, ax: Axes | None = None,
                      highlight: float | None = None) -> Axes:
    """The held-out loss curves of every learning rate of ``sweep`` (``utils.hyperparameters``) at one batch
    size and depth, low rates blue, high rates red; ``highlight`` draws one rate thicker.

    >>> sweep = {"lrs": [0.1], "runs": [{"lr": 0.1, "batch_size": 8, "n_layers": 1, "val_steps": [10, 20],
    ...                                  "val_losses": [2.0, None]}]}
    >>> len(sweep_curves_plot(sweep, 8, 1).lines)
    1
    """
    ax = _axes(ax, figsize=(6, 3.5))
    lrs = sweep["lrs"]
    colours = plt.cm.coolwarm(np.linspace(0, 1, len(lrs)))
    for lr, colour in zip(lrs, colours, strict=True):
        run = next(r for r in sweep["runs"] if math.isclose(r["lr"], lr) and r["batch_size"] == batch_size
                   and r["n_layers"] == n_layers)
        losses = [np.nan if v is None else v for v in run["val_losses"]]  # a diverged run: a gap
        ax.plot(run["val_steps"], losses, color=colour, label=f"lr {lr:g}",
                linewidth=3 if highlight is not None and math.isclose(lr, highlight) else 1.3)
    ax.set(xlabel="training step", ylabel="held-out loss (nats/token)", yscale="log",
           title=f"batch size {batch_size}, {n_layers} layer{'s' * (n_layers > 1)}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))  # beside: curves fill the axes
    return ax
