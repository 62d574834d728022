"""Thin ipywidgets wrappers for the notebooks' "Play with it" steps.

Each widget only wires controls to a compute function that lives elsewhere in ``utils`` (and is unit
tested there) or to a small pure helper here (tested in ``tests/test_widgets.py``). Each one returns a
widget to display; recomputation that costs more than a few milliseconds uses
``continuous_update=False``.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from .plotting import TOKEN_COLOURS

__all__ = ["tokens_html", "lora_rank_explorer", "memory_table_html", "memory_calculator",
           "head_weights", "attention_explorer", "window_html", "context_window_explorer",
           "merge_explorer"]


def tokens_html(pieces: list[str]) -> str:
    """Render tokens as coloured, escaped HTML spans (one span per token), for use in ``widgets.HTML``.

    >>> tokens_html(["a", "b<"]).count("<span")
    2
    """
    if isinstance(pieces, str):
        raise TypeError("pieces must be a list of token strings, not one str")
    spans = []
    for i, piece in enumerate(pieces):
        shown = html.escape(piece.replace(" ", "·").replace("\n", "⏎"))
        colour = TOKEN_COLOURS[i % len(TOKEN_COLOURS)]
        spans.append(
            f'<span style="background:{colour};border:1px solid #888;border-radius:3px;'
            f'padding:1px 2px;margin:1px;font-family:monospace;white-space:pre">{shown}</span>'
        )
    return "".join(spans)


def lora_rank_explorer(model, target=None, max_rank: int | None = None) -> widgets.VBox:
    """A rank slider showing how many parameters LoRA would train on ``model`` (which is not modified).

    ``target`` is ``add_lora``'s selector (default: every ``nn.Linear``); the slider stops at the largest
    valid rank (``utils.lora.max_lora_rank``) unless ``max_rank`` is smaller. Counting is instant, so the
    slider updates continuously.
    """
    from .lora import every_linear, lora_rank_summary, max_lora_rank

    target = target or every_linear
    limit = max_lora_rank(model, target)
    if max_rank is not None:
        if not 1 <= max_rank <= limit:
            raise ValueError(f"max_rank must be between 1 and {limit} for these targets, got {max_rank}")
        limit = max_rank
    slider = widgets.IntSlider(value=min(4, limit), min=1, max=limit, description="rank r")
    text = widgets.HTML()

    def update(change=None) -> None:
        s = lora_rank_summary(model, slider.value, target)
        width = max(1.0, 100 * s["fraction"])
        text.value = (
            f"<b>{s['trainable']:,}</b> trainable adapter parameters of {s['total']:,} in total "
            f"(<b>{100 * s['fraction']:.2f} %</b>)"
            f'<div style="width:300px;height:10px;background:#eee">'
            f'<div style="width:{width:.1f}%;height:10px;background:#4c72b0"></div></div>'
        )

    slider.observe(update, names="value")
    update()
    return widgets.VBox([slider, text])


def memory_table_html(breakdown: dict[str, float], gpu_gb=(24, 48, 80)) -> str:
    """An HTML table of memory components in GB (1e9 bytes), their total, and which GPU sizes it fits.

    >>> "2.00" in memory_table_html({"weights": 2e9}) and "fits" in memory_table_html({"weights": 2e9})
    True
    """
    if not breakdown:
        raise ValueError("breakdown must have at least one component")
    total = sum(breakdown.values())
    cell = "<td style='text-align:right'>{:.2f}</td>"
    rows = "".join(f"<tr><td>{html.escape(name.replace('_', ' '))}</td>{cell.format(value / 1e9)}</tr>"
                   for name, value in breakdown.items())
    verdicts = ", ".join(f"{g:g} GB: {'fits' if total <= g * 1e9 else 'too big'}" for g in gpu_gb)
    return (
        f"<table><tr><th>component</th><th>GB</th></tr>{rows}"
        f"<tr><td><b>total</b></td><td style='text-align:right'><b>{total / 1e9:.2f}</b></td></tr></table>"
        f"<p>{verdicts} (activations not included)</p>"
    )


def memory_calculator(gpu_gb=(24, 48, 80)) -> widgets.VBox:
    """Fine-tuning memory of LLaMA-sized models: model size, weight format, LoRA rank and optimizer.

    A thin wrapper over ``utils.lora.finetune_memory`` (adapters on every linear layer, as in QLoRA),
    with full fine-tuning (``full_finetune_memory``) alongside for contrast.
    """
    from .lora import LLAMA_SHAPES, WEIGHT_FORMATS, finetune_memory, full_finetune_memory

    size = widgets.Dropdown(options=list(LLAMA_SHAPES), value="65B", description="model")
    fmt = widgets.ToggleButtons(options=list(WEIGHT_FORMATS), value="nf4", description="weights")
    rank = widgets.SelectionSlider(options=[8, 16, 32, 64, 128, 256], value=64, description="LoRA rank")
    optimizer = widgets.Dropdown(options=["adam", "sgd"], value="adam", description="optimizer")
    double_quant = widgets.Checkbox(value=True, description="double quantization (nf4)")
    out = widgets.HTML()

    def update(change=None) -> None:
        shape = LLAMA_SHAPES[size.value]
        breakdown = finetune_memory(shape.n_params, fmt.value, shape.lora_params(rank.value),
                                    optimizer.value, double_quant=double_quant.value)
        full = sum(full_finetune_memory(shape.n_params, optimizer.value).values())
        out.value = (
            f"<p>{size.value}: {shape.n_params / 1e9:.1f} billion parameters, "
            f"{shape.lora_params(rank.value) / 1e6:.0f} million adapter parameters</p>"
            + memory_table_html(breakdown, gpu_gb)
            + f"<p>Full fine-tuning (16 bytes per parameter) would need {full / 1e9:.0f} GB.</p>"
        )

    for control in (size, fmt, rank, optimizer, double_quant):
        control.observe(update, names="value")
    update()
    return widgets.VBox([size, fmt, rank, optimizer, double_quant, out])


def head_weights(weights_per_layer, layer: int, head: int):
    """The ``(T, T)`` attention matrix of one ``layer`` and ``head`` from a model's per-layer weights.

    ``weights_per_layer`` is what ``TinyGPT(..., return_attention=True)`` returns: one tensor per layer,
    ``(B, H, T, T)`` (batch item 0 is shown) or ``(H, T, T)``.

    >>> import torch
    >>> head_weights([torch.eye(2).expand(1, 3, 2, 2)], layer=0, head=2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    if not 0 <= layer < len(weights_per_layer):
        raise ValueError(f"layer must be in [0, {len(weights_per_layer)}), got {layer}")
    weights = weights_per_layer[layer]
    weights = weights[0] if weights.dim() == 4 else weights  # (B, H, T, T) -> (H, T, T)
    if weights.dim() != 3:
        raise ValueError(f"weights_per_layer must hold (B, H, T, T) or (H, T, T) tensors, "
                         f"got shape {tuple(weights_per_layer[layer].shape)}")
    if not 0 <= head < weights.shape[0]:
        raise ValueError(f"head must be in [0, {weights.shape[0]}), got {head}")
    return weights[head].detach().cpu()


def attention_explorer(weights_per_layer, tokens: list[str]) -> widgets.VBox:
    """Two dropdowns (layer, head) and the chosen head's attention heatmap: row = the token that looks,
    column = the token it looks at. The weights are computed once by the caller; switching is instant.
    """
    from .plotting import heatmap

    T = head_weights(weights_per_layer, 0, 0).shape[-1]  # also validates the shapes
    if len(tokens) != T:
        raise ValueError(f"tokens must have one label per position ({T}), got {len(tokens)}")
    heads = weights_per_layer[0].shape[-3]  # (B, H, T, T) or (H, T, T)
    layer = widgets.Dropdown(options=list(range(len(weights_per_layer))), value=0, description="layer")
    head = widgets.Dropdown(options=list(range(heads)), value=0, description="head")
    out = widgets.Output()

    def update(change=None) -> None:
        matrix = head_weights(weights_per_layer, layer.value, head.value)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(5, 4))
            heatmap(matrix, xlabels=tokens, ylabels=tokens, ax=ax, annotate=True, vmin=0, vmax=1,
                    title=f"layer {layer.value}, head {head.value}")
            ax.set_xlabel("looks at (key)")
            ax.set_ylabel("token (query)")
            display(fig)
            plt.close(fig)  # shown once, in the Output; not again at the end of the cell

    layer.observe(update, names="value")
    head.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([layer, head]), out])


def window_html(hidden: list[str], visible: list[str]) -> str:
    """Tokens outside the context window in grey (struck through), the visible ones as coloured boxes.

    >>> window_html(["the"], ["cat"]).count("line-through")
    1
    """
    if isinstance(hidden, str) or isinstance(visible, str):
        raise TypeError("hidden and visible must be lists of token strings, not one str")
    greyed = "".join(
        f'<span style="color:#aaa;text-decoration:line-through;font-family:monospace;margin:1px;'
        f'padding:1px 2px">{html.escape(token)}</span>'
        for token in hidden
    )
    return greyed + tokens_html(list(visible))


def context_window_explorer(tokens: list[str], describe=None, value: int | None = None) -> widgets.VBox:
    """A slider over the context window: the last ``window`` tokens are what the model sees (coloured),
    the rest is greyed out (``utils.attention.visible_window``). ``describe(window) -> str`` (HTML) adds a
    line under the tokens, e.g. the model's prediction of the next token with that window.
    """
    from .attention import visible_window

    if isinstance(tokens, str) or len(tokens) < 1:
        raise ValueError("tokens must be a non-empty list of token strings")
    start = len(tokens) if value is None else value
    slider = widgets.IntSlider(value=start, min=1, max=len(tokens), description="window",
                               continuous_update=describe is None)  # a model call per step: wait for release
    text = widgets.HTML()

    def update(change=None) -> None:
        hidden, visible = visible_window(list(tokens), slider.value)
        extra = f"<p>{describe(slider.value)}</p>" if describe is not None else ""
        text.value = (f"<p>{window_html(hidden, visible)}</p><p>the model sees {len(visible)} of "
                      f"{len(tokens)} tokens</p>{extra}")

    slider.observe(update, names="value")
    update()
    return widgets.VBox([slider, text])


def merge_explorer(tokenizer, text: str, max_merges: int | None = None) -> widgets.VBox:
    """A slider over BPE merge steps that re-tokenizes ``text`` (editable) with coloured token boundaries.

    ``tokenizer`` is a trained ``utils.tokenization.BPETokenizer``; step k uses only its first k merges
    (``tokenizer.tokens(text, num_merges=k)``), so step 0 shows the raw UTF-8 bytes. Encoding one sentence
    takes well under a millisecond, so the slider updates continuously.
    """
    limit = len(tokenizer.merges)
    if max_merges is not None:
        if isinstance(max_merges, bool) or not isinstance(max_merges, int) or not 0 <= max_merges <= limit:
            raise ValueError(f"max_merges must be an int between 0 and {limit} (the merges learned), "
                             f"got {max_merges!r}")
        limit = max_merges
    slider = widgets.IntSlider(value=limit, min=0, max=limit, description="merges")
    box = widgets.Text(value=text, description="text", continuous_update=False,
                       layout=widgets.Layout(width="90%"))
    out = widgets.HTML()

    def update(change=None) -> None:
        k = slider.value
        pieces = tokenizer.tokens(box.value, num_merges=k)
        n_bytes = len(box.value.encode("utf-8", errors="surrogatepass"))
        latest = ""
        if k > 0:
            newest = list(tokenizer.merges.values())[k - 1]
            latest = f"; merge {k} made <code>{html.escape(repr(tokenizer.piece(newest)))}</code>"
        out.value = (f"<p><b>{len(pieces)}</b> tokens for {n_bytes} bytes, vocabulary of {256 + k} "
                     f"tokens{latest}</p><p>{tokens_html(pieces)}</p>")

    slider.observe(update, names="value")
    box.observe(update, names="value")
    update()
    return widgets.VBox([slider, box, out])
