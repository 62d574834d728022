"""Thin ipywidgets wrappers for the notebooks' "Play with it" steps.

Each widget only wires controls to a compute function that lives elsewhere in ``utils`` (and is unit
tested there) or to a small pure helper here (tested in ``tests/test_widgets.py``). Each one returns a
widget to display; recomputation that costs more than a few milliseconds uses
``continuous_update=False``.
"""

from __future__ import annotations

import html
import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from .plotting import TOKEN_COLOURS

__all__ = ["tokens_html", "lora_rank_explorer", "memory_table_html", "memory_calculator",
           "head_weights", "attention_explorer", "window_html", "context_window_explorer",
           "merge_explorer", "embedding_gradient_explorer", "softmax_jacobian_explorer",
           "pca_reconstruction_explorer", "kl_explorer", "gradient_flow_explorer",
           "unknown_pieces_html", "oov_explorer", "recall_example_html", "recall_explorer",
           "regularisation_explorer", "review_writer", "patch_explorer", "sweep_explorer",
           "resources_table_html", "resource_calculator"]


def tokens_html(pieces: list[str], first: int = 0) -> str:
    """Render tokens as coloured, escaped HTML spans (one span per token), for use in ``widgets.HTML``.

    Token ``i`` of ``pieces`` gets the colour of position ``first + i``: a caller that shows a slice of
    a longer sequence passes the slice's start, so each token keeps its colour when the slice moves.

    >>> tokens_html(["a", "b<"]).count("<span")
    2
    >>> tokens_html(["a", "b"]).endswith(tokens_html(["b"], first=1))
    True
    """
    if isinstance(pieces, str):
        raise TypeError("pieces must be a list of token strings, not one str")
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise ValueError(f"first must be an int >= 0 (the position of pieces[0]), got {first!r}")
    spans = []
    for i, piece in enumerate(pieces):
        shown = html.escape(piece.replace(" ", "·").replace("\n", "⏎"))
        colour = TOKEN_COLOURS[(first + i) % len(TOKEN_COLOURS)]
        spans.append(
            f'<span style="background:{colour};border:1px solid #888;border-radius:3px;display:inline-block;'
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

    A token's colour is that of its position in the whole sequence (``hidden + visible``), so when the
    window moves, every token keeps its colour (the window's first token is not re-coloured).

    >>> window_html(["the"], ["cat"]).count("line-through")
    1
    >>> window_html(["the"], ["cat"]).endswith(tokens_html(["cat"], first=1))
    True
    """
    if isinstance(hidden, str) or isinstance(visible, str):
        raise TypeError("hidden and visible must be lists of token strings, not one str")
    greyed = "".join(
        f'<span style="color:#aaa;text-decoration:line-through;font-family:monospace;margin:1px;'
        f'padding:1px 2px;display:inline-block">{html.escape(token)}</span>'
        for token in hidden
    )
    return greyed + tokens_html(list(visible), first=len(hidden))


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


# --- decoding: beam width, temperature, top-k / top-p (Q6, Q7, Q12) ----------------------------------------
# The compute functions (beam_search, sample_batch, kept_set, ...) live in utils.decoding and are tested
# there; the helpers and widgets below are tested in tests/test_decoding.py.

def hypotheses_html(rows, caption: str = "") -> str:
    """An HTML table of ``(text, log-probability)`` rows, in the given order, with the probability.

    >>> "0.5000" in hypotheses_html([("the cat", -0.6931471805599453)])
    True
    """
    import math

    if isinstance(rows, str):
        raise TypeError("rows must be a list of (text, log-probability) pairs, not one str")
    body = "".join(
        f"<tr><td>{i}</td><td style='font-family:monospace;text-align:left'>{html.escape(text)}</td>"
        f"<td style='text-align:right'>{score:.3f}</td>"
        f"<td style='text-align:right'>{math.exp(score):.4f}</td></tr>"
        for i, (text, score) in enumerate(rows, start=1)
    )
    head = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    return (f"<table>{head}<tr><th>#</th><th style='text-align:left'>text</th><th>log-prob</th>"
            f"<th>prob</th></tr>{body}</table>")


def beam_width_explorer(model, input_ids, decode, max_new_tokens: int, eos_id: int | None = None,
                        max_beams: int = 8, value: int = 1) -> widgets.VBox:
    """A ``num_beams`` slider over ``utils.decoding.beam_search``: the hypotheses it returns (best first,
    with the total log-probability of the generated tokens) and greedy decoding's output for comparison.

    ``model`` is any decoding model (ids ``(B, T)`` -> logits ``(B, T, V)``), ``input_ids`` the prompt
    ``(1, T)``, ``decode(ids (1, T')) -> str`` turns a sequence into text. Each move runs a search (a few
    model calls per token), so the slider updates on release.
    """
    from ._validation import check_positive_int
    from .decoding import beam_search, greedy_decode, sequence_log_prob

    check_positive_int("max_beams", max_beams)
    if not 1 <= value <= max_beams:
        raise ValueError(f"value must be between 1 and max_beams={max_beams}, got {value}")
    T = input_ids.shape[-1]
    greedy = greedy_decode(model, input_ids, max_new_tokens, eos_id=eos_id)
    greedy_row = (decode(greedy), sequence_log_prob(model, input_ids, greedy[:, T:]))
    slider = widgets.IntSlider(value=value, min=1, max=max_beams, description="num_beams",
                               continuous_update=False, style={"description_width": "initial"})
    out = widgets.HTML()

    def update(change=None) -> None:
        hypotheses = beam_search(model, input_ids, max_new_tokens, slider.value, eos_id=eos_id)
        best = hypotheses[0][1]
        verdict = ("beats" if best > greedy_row[1] + 1e-9 else
                   "ties with" if abs(best - greedy_row[1]) <= 1e-9 else "loses to")
        out.value = (hypotheses_html([(decode(ids), score) for ids, score in hypotheses],
                                     caption=f"beam search, num_beams = {slider.value}")
                     + hypotheses_html([greedy_row], caption="greedy")
                     + f"<p>The best beam {verdict} greedy by {best - greedy_row[1]:+.3f} nats.</p>")

    slider.observe(update, names="value")
    update()
    return widgets.VBox([slider, out])


def samples_html(texts, caption: str = "") -> str:
    """An ordered HTML list of sampled texts (escaped), with a caption line.

    >>> samples_html(["a <b>", "c"]).count("<li")
    2
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of str, not one str")
    items = "".join(f"<li style='font-family:monospace'>{html.escape(t)}</li>" for t in texts)
    return (f"<p>{caption}</p>" if caption else "") + f"<ol>{items}</ol>"


def temperature_explorer(model, input_ids, decode, max_new_tokens: int = 12, num_samples: int = 4,
                         seed: int = 0, eos_id: int | None = None, value: float = 0.8,
                         min_temperature: float = 0.1, max_temperature: float = 2.0) -> widgets.VBox:
    """A temperature slider and a "resample" button: each change draws ``num_samples`` new continuations
    of the prompt with ``utils.decoding.sample_batch`` (one generator seeded with ``seed``, so a session
    replays exactly), and shows the entropy of the distribution of the token after the prompt at that
    temperature (so pick a prompt where the model has a real choice, e.g. "the cat", not just ``<bos>``).
    """
    import math

    from .decoding import entropy, next_token_logits, sample_batch, softmax_with_temperature

    if not 0 < min_temperature <= value <= max_temperature:
        raise ValueError(f"value must lie in [min_temperature, max_temperature] = [{min_temperature}, "
                         f"{max_temperature}] with min_temperature > 0, got {value}")
    generator = _seeded_generator(seed)
    logits = next_token_logits(model, input_ids)
    slider = widgets.FloatSlider(value=value, min=min_temperature, max=max_temperature, step=0.05,
                                 description="temperature", continuous_update=False, readout_format=".2f",
                                 style={"description_width": "initial"})  # the whole label, never "temperat…"
    button = widgets.Button(description="resample", icon="refresh")
    out = widgets.HTML()

    def update(change=None) -> None:
        t = slider.value
        ids = sample_batch(model, input_ids, num_samples, max_new_tokens, temperature=t, generator=generator,
                           eos_id=eos_id)
        texts = [decode(row) for row in ids]
        h = entropy(softmax_with_temperature(logits, t)).item()
        out.value = samples_html(
            texts, caption=f"temperature {t:.2f}: the next token after the prompt has entropy {h:.2f} nats "
                           f"(at most {math.log(len(logits)):.2f}); {len(set(texts))} different texts of "
                           f"{len(texts)}")

    slider.observe(update, names="value")
    button.on_click(update)
    update()
    return widgets.VBox([widgets.HBox([slider, button]), out])


def _seeded_generator(seed: int):
    """A CPU ``torch.Generator`` seeded with ``seed`` (the widgets' private source of randomness)."""
    import torch

    return torch.Generator().manual_seed(seed)


def kept_set_svg(ks, labels=None, show: int = 30, width: int = 620, height: int = 220) -> str:
    """An SVG bar chart of a sorted next-token distribution (``utils.decoding.KeptSet``): the first
    ``show`` tokens, kept ones blue, filtered ones grey, each bar with a tooltip (token, probability).

    The token labels are written at 11 px, slanted, in a band of their own below the bars (they start
    below the bars' baseline, so a label never covers a bar).

    >>> import torch
    >>> from utils.decoding import kept_set
    >>> kept_set_svg(kept_set(torch.tensor([2.0, 1.0, 0.0]), top_k=2)).count('fill="#4c72b0"')
    2
    """
    from ._validation import check_positive_int

    check_positive_int("show", show)
    n = min(show, len(ks.probs))
    labels = [str(int(i)) for i in ks.order[:n]] if labels is None else list(labels)[:n]
    top = max(float(ks.probs[0]), 1e-12)
    bar_w = (width - 40) / n
    label_band = 70  # room for slanted words of up to about 10 letters
    plot_h = height - 20 - label_band
    baseline = 15 + plot_h  # the bars' common bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'style="font-family:sans-serif;font-size:11px">',
             f'<text x="2" y="11">p (max {top:.3f})</text>',
             f'<line x1="28" y1="{baseline:.1f}" x2="{width - 8}" y2="{baseline:.1f}" stroke="#888"/>']
    for i in range(n):
        p = float(ks.probs[i])
        h = plot_h * p / top
        x = 30 + i * bar_w
        colour = "#4c72b0" if bool(ks.kept[i]) else "#cccccc"
        label = html.escape(labels[i])
        parts.append(f'<rect x="{x:.1f}" y="{baseline - h:.1f}" width="{0.8 * bar_w:.1f}" '
                     f'height="{h:.1f}" fill="{colour}"><title>{label}: {p:.4f}</title></rect>')
        # anchored 6 px below the baseline at the bar's centre, slanted down to the right
        lx, ly = x + 0.4 * bar_w, baseline + 6
        parts.append(f'<text x="{lx:.1f}" y="{ly:.1f}" dominant-baseline="hanging" '
                     f'transform="rotate(55 {lx:.1f} {ly:.1f})">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def top_k_top_p_explorer(model, input_ids, decode, token_label=None, max_new_tokens: int = 8,
                         num_samples: int = 3, seed: int = 0, eos_id: int | None = None,
                         show: int = 30) -> widgets.VBox:
    """Sliders for top-k, top-p and temperature over the model's next-token distribution after the prompt:
    the sorted distribution with the kept set in blue (``utils.decoding.kept_set``), how many tokens and
    how much probability are kept, and ``num_samples`` continuations sampled with those settings.

    The samples use a generator re-seeded with ``seed`` on every change (common random numbers), so what
    changes between two settings is the filter, not the luck of the draw. ``token_label(id) -> str`` names
    the bars (default: the id).
    """
    from .decoding import kept_set, next_token_logits, sample_batch

    logits = next_token_logits(model, input_ids)
    V = len(logits)
    style = {"description_width": "initial"}  # the label's own width: "temperature" is never cut short
    k = widgets.IntSlider(value=V, min=1, max=V, description="top_k", continuous_update=False, style=style)
    p = widgets.FloatSlider(value=1.0, min=0.01, max=1.0, step=0.01, description="top_p",
                            continuous_update=False, style=style)
    t = widgets.FloatSlider(value=1.0, min=0.1, max=3.0, step=0.05, description="temperature",
                            continuous_update=False, style=style)
    out = widgets.HTML()

    def update(change=None) -> None:
        ks = kept_set(logits, temperature=t.value, top_k=k.value, top_p=p.value)
        labels = [token_label(int(i)) if token_label else str(int(i)) for i in ks.order[:show]]
        ids = sample_batch(model, input_ids, num_samples, max_new_tokens, temperature=t.value, top_k=k.value,
                           top_p=p.value, generator=_seeded_generator(seed), eos_id=eos_id)
        out.value = (kept_set_svg(ks, labels, show=show)
                     + f"<p>kept <b>{ks.size}</b> of {V} tokens, {100 * ks.mass:.1f} % of the probability "
                       f"(top_k = {k.value}, top_p = {p.value:.2f}, temperature = {t.value:.2f})</p>"
                     + samples_html([decode(row) for row in ids], caption="samples with these settings:"))

    for control in (k, p, t):
        control.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([k, p, t]), out])


# --- Lecture 6: gradients of embeddings, the softmax Jacobian, PCA, KL, gradient flow ------------------

def _draw(out: widgets.Output, fig) -> None:
    """Show ``fig`` in ``out`` (replacing what was there) and close it, so it is not drawn twice."""
    with out:
        out.clear_output(wait=True)
        display(fig)
    plt.close(fig)


def embedding_gradient_explorer(course, sentences: list[str], max_batch: int = 8) -> widgets.VBox:
    """Choose a sentence (and how many of the following ones join it in the batch): bars show the norm
    of the gradient that each row of the course model's embedding table receives from the next-token loss
    (``utils.models.token_embedding_gradient``). Rows of tokens that the batch never reads stay at 0."""
    import torch

    from .models import token_embedding_gradient
    from .plotting import row_norm_bars

    if not sentences or isinstance(sentences, str):
        raise ValueError("sentences must be a non-empty list of str")
    labels = course.tokenizer.id_to_token
    first = widgets.Dropdown(options=list(sentences), value=sentences[0], description="sentence",
                             layout=widgets.Layout(width="480px"))
    batch = widgets.IntSlider(value=1, min=1, max=max(1, min(max_batch, len(sentences))), description="batch",
                              continuous_update=False)
    out = widgets.Output()

    def update(change=None) -> None:
        start = list(sentences).index(first.value)
        chosen = [sentences[(start + i) % len(sentences)] for i in range(batch.value)]
        ids = torch.cat([course.encode(text) for text in chosen])  # (B, 10): same length in the tiny world
        grad, _ = token_embedding_gradient(course.model, ids)
        norms = grad.norm(dim=1).cpu()  # (V,)
        fig, ax = plt.subplots(figsize=(12, 3))
        row_norm_bars(norms, labels, ax=ax, title=f"{int((norms > 0).sum())} of {len(labels)} rows receive a "
                                                  f"gradient from {len(chosen)} sentence(s)")
        ax.set_ylabel("‖gradient of the row‖")
        _draw(out, fig)

    first.observe(update, names="value")
    batch.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([first, batch]), out])


def softmax_jacobian_explorer(logits, labels=None) -> widgets.VBox:
    """A temperature slider over ``softmax(logits / T)``: the probabilities and their Jacobian
    ``diag(s) - s sᵀ`` (``utils.linalg.softmax_jacobian``). Low temperature saturates the softmax and the
    Jacobian, the gradient that flows back through it, shrinks towards 0."""
    import torch

    from .linalg import softmax_jacobian
    from .plotting import heatmap

    logits = torch.as_tensor(logits, dtype=torch.float32).detach().cpu()
    if logits.dim() != 1 or len(logits) < 2:
        raise ValueError(f"logits must be 1-D with at least 2 entries, got shape {tuple(logits.shape)}")
    labels = [str(i) for i in range(len(logits))] if labels is None else list(labels)
    temperature = widgets.FloatLogSlider(value=1.0, base=10, min=-1.3, max=1.0, step=0.05,
                                         description="temperature", readout_format=".2f",
                                         style={"description_width": "initial"})  # not "temperat…"
    out = widgets.Output()

    def update(change=None) -> None:
        s = torch.softmax(logits / temperature.value, dim=0)
        J = softmax_jacobian(s)
        fig, (ax_s, ax_j) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1.4]})
        ax_s.bar(labels, s.numpy())
        ax_s.set(ylim=(0, 1), title=f"s = softmax(x / {temperature.value:.2f})")
        heatmap(J, xlabels=labels, ylabels=labels, ax=ax_j, annotate=len(labels) <= 6, cmap="RdBu_r",
                vmin=-0.25, vmax=0.25, title=f"Jacobian ∂s/∂x, largest |entry| {J.abs().max():.3f}")
        fig.tight_layout()
        _draw(out, fig)

    temperature.observe(update, names="value")
    update()
    return widgets.VBox([temperature, out])


def pca_reconstruction_explorer(X, k_neighbours: int = 5) -> widgets.VBox:
    """A slider over ``k``: the rows of ``X (n, d)`` rebuilt from their first ``k`` principal components
    (``utils.linalg.pca_reconstruct``), the share of the variance kept, the relative error, how many of
    each row's nearest neighbours survive (``utils.embeddings.neighbour_overlap``), and the cosine
    similarities of the rebuilt rows next to the original ones."""
    import torch

    from .embeddings import cosine_similarity_matrix, neighbour_overlap
    from .linalg import pca, pca_reconstruct
    from .plotting import heatmap

    X = torch.as_tensor(X).detach().cpu()
    d = X.shape[1]
    _, variances, _ = pca(X, d)
    total = variances.sum()
    original = cosine_similarity_matrix(X)
    k = widgets.IntSlider(value=2, min=1, max=d, description="k", continuous_update=False)
    out = widgets.Output()

    def update(change=None) -> None:
        rebuilt = pca_reconstruct(X, k.value)
        error = ((X - rebuilt).norm() / (X - X.mean(0)).norm()).item()
        overlap = neighbour_overlap(X, rebuilt, k=k_neighbours)
        fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(11, 4.4))
        heatmap(original, ax=ax_a, vmin=-1, vmax=1, cmap="RdBu_r", title="cosine similarity, all d columns")
        kept = (variances[: k.value].sum() / total).item()
        heatmap(cosine_similarity_matrix(rebuilt), ax=ax_b, vmin=-1, vmax=1, cmap="RdBu_r",
                title=f"rebuilt from k = {k.value}: {kept:.0%} of the variance,\n"
                      f"relative error {error:.2f}, {overlap:.0%} of {k_neighbours} neighbours kept")
        fig.tight_layout()
        _draw(out, fig)

    k.observe(update, names="value")
    update()
    return widgets.VBox([k, out])


def kl_explorer(grid, log_target, mean: float = 0.5, std: float = 1.0) -> widgets.VBox:
    """Sliders for the mean and standard deviation of a Gaussian ``q`` on ``grid``, drawn against the
    target ``p`` (``log_target``: log-probabilities on the grid), with both ``KL(p‖q)`` and ``KL(q‖p)``
    (``utils.losses.kl_divergence_from_logs``). Look for the two directions' best ``q`` by hand."""
    import torch

    from .losses import kl_divergence_from_logs, log_gaussian_on_grid
    from .plotting import distributions_on_grid

    grid = torch.as_tensor(grid).detach().cpu()
    log_target = torch.as_tensor(log_target, dtype=grid.dtype).detach().cpu()
    low, high = grid.min().item(), grid.max().item()
    mu = widgets.FloatSlider(value=mean, min=low / 2, max=high / 2, step=0.05, description="mean of q")
    sigma = widgets.FloatSlider(value=std, min=0.2, max=(high - low) / 3, step=0.05, description="std of q")
    out = widgets.Output()

    def update(change=None) -> None:
        log_q = log_gaussian_on_grid(grid, mu.value, sigma.value)
        forward = kl_divergence_from_logs(log_target, log_q).item()
        reverse = kl_divergence_from_logs(log_q, log_target).item()
        fig, ax = plt.subplots(figsize=(7, 3))
        distributions_on_grid(grid, {"target p": log_target.exp(), "q": log_q.exp()}, ax=ax,
                              filled="target p", title=f"KL(p‖q) = {forward:.3f}  (forward)     "
                                                       f"KL(q‖p) = {reverse:.3f}  (reverse)")
        _draw(out, fig)

    mu.observe(update, names="value")
    sigma.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([mu, sigma]), out])


def gradient_flow_explorer(depth: int = 20, width: int = 64) -> widgets.VBox:
    """A depth slider and a choice of activations: the gradient norm of every layer of a deep stack
    (``utils.linalg.deep_stack_gradient_norms``), log scale. Sigmoid gradients shrink by a factor each
    layer; ReLU's (with He initialisation) keep their size."""
    from .linalg import ACTIVATIONS, deep_stack_gradient_norms
    from .plotting import layer_norms_plot

    layers = widgets.IntSlider(value=depth, min=2, max=60, description="depth", continuous_update=False)
    chosen = widgets.SelectMultiple(options=sorted(ACTIVATIONS), value=("relu", "sigmoid"),
                                    description="activations", rows=len(ACTIVATIONS))
    seed = widgets.IntSlider(value=0, min=0, max=9, description="seed", continuous_update=False)
    out = widgets.Output()

    def update(change=None) -> None:
        norms = {name: deep_stack_gradient_norms(name, layers.value, width=width, seed=seed.value)
                 for name in chosen.value}
        fig, ax = plt.subplots(figsize=(7, 3.5))
        layer_norms_plot(norms, ax=ax, title=f"{layers.value} layers of width {width}")
        _draw(out, fig)

    for control in (layers, chosen, seed):
        control.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([layers, seed, chosen]), out])


# --- Lecture 4: unknown words, recall at a distance, regularisation, a generative classifier writing, -------
# --- and images as patches. Compute functions: utils.tokenization, utils.data, utils.classifiers,
# --- utils.multimodal (tested there); the helpers here are tested in tests/test_widgets.py.

def unknown_pieces_html(comparison: dict[str, list[tuple[str, bool]]]) -> str:
    """One row per tokenizer: its pieces as coloured spans, unknown ones red and struck through (what
    ``utils.tokenization.compare_tokenizers`` returns, as HTML).

    >>> unknown_pieces_html({"word": [("the", False), ("cats", True)]}).count("line-through")
    1
    """
    rows = []
    for name, pieces in comparison.items():
        spans = []
        for i, (piece, unknown) in enumerate(pieces):
            shown = html.escape(piece.replace(" ", "·").replace("\n", "⏎"))
            style = ("background:#ffb3b3;text-decoration:line-through" if unknown
                     else f"background:{TOKEN_COLOURS[i % len(TOKEN_COLOURS)]}")
            spans.append(f'<span style="{style};border:1px solid #888;border-radius:3px;padding:1px 2px;'
                         f'margin:1px;font-family:monospace;white-space:pre">{shown}</span>')
        n_unknown = sum(unknown for _, unknown in pieces)
        rows.append(f"<tr><td><b>{html.escape(name)}</b></td><td>{len(pieces)} tokens, {n_unknown} unknown"
                    f"</td><td>{''.join(spans)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def oov_explorer(tokenizers: dict, text: str) -> widgets.VBox:
    """Type any text and see it as each tokenizer's pieces, the unknown ones marked
    (``utils.tokenization.compare_tokenizers``). Tokenizing a few words is instant: updates as you type."""
    from .tokenization import compare_tokenizers

    box = widgets.Text(value=text, description="text", layout=widgets.Layout(width="90%"))
    out = widgets.HTML()

    def update(change=None) -> None:
        out.value = unknown_pieces_html(compare_tokenizers(box.value, tokenizers))

    box.observe(update, names="value")
    update()
    return widgets.VBox([box, out])


def recall_example_html(inputs: list[int], distance: int, answers: dict[str, int], n_symbols: int) -> str:
    """One recall question as HTML: the symbols (the one ``distance`` steps before the query boxed),
    the query, and each model's answer (green if right, red if wrong).

    >>> "✔" in recall_example_html([1, 0, 2, 5], 2, {"model": 0}, n_symbols=3)
    True
    """
    *symbols, _ = inputs
    target = symbols[len(symbols) - distance]
    cells = []
    for i, s in enumerate(symbols):
        boxed = "border:2px solid #d62728;" if i == len(symbols) - distance else "border:1px solid #bbb;"
        cells.append(f'<span style="{boxed}padding:1px 4px;margin:1px;font-family:monospace">{"ABCDEFGH"[s]}'
                     f"</span>")
    cells.append(f'<span style="padding:1px 4px;font-family:monospace">→ ? (d = {distance})</span>')
    verdicts = []
    for name, answer in answers.items():
        ok = answer == target
        shown = "ABCDEFGH"[answer] if 0 <= answer < n_symbols else f"id {answer}"
        verdicts.append(f'<span style="color:{"#2ca02c" if ok else "#d62728"}">{html.escape(name)}: '
                        f'{shown} {"✔" if ok else "✘"}</span>')
    return f"<p>{''.join(cells)}</p><p>{' &nbsp; '.join(verdicts)}</p>"


def recall_explorer(models: dict, task, n: int = 300, seed: int = 0) -> widgets.VBox:
    """A distance slider for ``utils.data.RecallTask``: each model's accuracy on ``n`` fresh questions at
    that distance (``utils.training.evaluate_accuracy``) and one question with every model's answer."""
    import torch

    from .training import evaluate_accuracy

    slider = widgets.IntSlider(value=1, min=1, max=task.max_distance, description="distance d",
                               continuous_update=False)
    out = widgets.HTML()

    def update(change=None) -> None:
        d = slider.value
        x, y = task.batch(n, generator=_seeded_generator(seed), distance=d)
        rows = []
        answers = {}
        for name, model in models.items():
            accuracy = evaluate_accuracy(model, x, y, positions=-1)
            with torch.no_grad():
                answers[name] = int(model(x[:1]).argmax(dim=-1)[0, -1])
            bar = int(300 * accuracy)
            rows.append(f'<tr><td>{html.escape(name)}</td><td><div style="background:#4c72b0;width:{bar}px;'
                        f'height:12px"></div></td><td>{accuracy:.0%}</td></tr>')
        out.value = (f"<table>{''.join(rows)}</table><p>chance: {1 / task.n_symbols:.0%}</p>"
                     + recall_example_html(x[0].tolist(), d, answers, task.n_symbols))

    slider.observe(update, names="value")
    update()
    return widgets.VBox([slider, out])


def regularisation_explorer(fit, baseline, methods: dict[str, tuple[float, float, float]],
                            initial=None) -> widgets.VBox:
    """Pick a regulariser and its strength; ``fit(method, strength) -> History`` retrains (about a second,
    so the slider waits for you to let go) and the validation curve is drawn over ``baseline``'s (the
    ``History`` without regularisation). ``methods`` maps each name to ``(low, high, start)`` of a
    log-scale slider; ``initial``, if given, is the ``History`` of the first method at its start value,
    drawn at once instead of being trained again."""
    method = widgets.Dropdown(options=list(methods), description="method")
    low, high, start = methods[method.value]
    strength = widgets.FloatLogSlider(value=start, min=math.log10(low), max=math.log10(high), step=0.25,
                                      description="strength", continuous_update=False)
    out = widgets.Output()

    def set_range(change=None) -> None:
        lo, hi, value = methods[method.value]
        strength.min, strength.max = -20, 20  # widen first: min must never exceed max on the way
        strength.min, strength.max, strength.value = math.log10(lo), math.log10(hi), value

    def update(change=None, history=None) -> None:
        history = history if history is not None else fit(method.value, strength.value)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(7, 3.2))
            ax.plot(baseline.val_steps, baseline.val_losses, color="gray", label="no regularisation")
            ax.plot(history.val_steps, history.val_losses, color="tab:blue",
                    label=f"{method.value} = {strength.value:.3g}")
            ax.scatter([history.best_step], [history.best_val_loss], color="tab:blue", zorder=3)
            ax.set(xlabel="training step", ylabel="validation loss", title="validation loss")
            ax.legend()
            plt.show()

    method.observe(lambda change: (set_range(), update()), names="value")
    strength.observe(update, names="value")
    update(history=initial)
    return widgets.VBox([widgets.HBox([method, strength]), out])


def review_writer(model, vocabulary: list[str], labels=("negative", "positive"), length: int = 30,
                  seed: int = 0) -> widgets.VBox:
    """Let a fitted ``utils.classifiers.MultinomialNaiveBayes`` write: a class, a length and a seed give
    ``model.sample(class, length, generator)``, shown as words in the order drawn (naive Bayes knows no
    order: only which words, how often)."""
    cls = widgets.Dropdown(options=[(name, i) for i, name in enumerate(labels)], description="class")
    size = widgets.IntSlider(value=length, min=5, max=80, description="words")
    draw = widgets.IntSlider(value=seed, min=0, max=50, description="seed")
    out = widgets.HTML()

    def update(change=None) -> None:
        ids = model.sample(cls.value, size.value, generator=_seeded_generator(draw.value))
        words = html.escape(" ".join(vocabulary[i] for i in ids))
        out.value = f"<p style='font-family:monospace'>{words}</p>"

    for control in (cls, size, draw):
        control.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([cls, size, draw]), out])


def patch_explorer(image, sizes=(8, 14, 16, 28, 32, 56)) -> widgets.VBox:
    """A patch-size dropdown over ``image (C, H, W)``: the image with its patch grid and how many tokens
    it becomes (``utils.multimodal.num_patches``). Only sizes that divide both sides are offered."""
    from .multimodal import num_patches
    from .plotting import patch_grid

    C, H, W = image.shape
    options = [p for p in sizes if H % p == 0 and W % p == 0]
    if not options:
        raise ValueError(f"none of sizes={tuple(sizes)} divides the image's height {H} and width {W}")
    size = widgets.Dropdown(options=options, value=16 if 16 in options else options[0], description="patch")
    out = widgets.Output()

    def update(change=None) -> None:
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(4, 4))
            patch_grid(image, size.value, ax=ax)
            plt.show()
            print(f"{num_patches(H, W, size.value)} tokens of {C * size.value ** 2} numbers each")

    size.observe(update, names="value")
    update()
    return widgets.VBox([size, out])


# --- Lecture 10: the hyperparameter sweep and what serving a model costs ---------------------------------

def sweep_explorer(sweep: dict) -> widgets.VBox:
    """Browse a precomputed sweep (``utils.hyperparameters.load_sweep()``): pick a batch size and a depth
    to see every learning rate's held-out loss curve, and a learning rate to highlight."""
    from .plotting import sweep_curves_plot

    style = {"description_width": "initial"}
    batch = widgets.ToggleButtons(options=sweep["batch_sizes"], value=sweep["batch_sizes"][1],
                                  description="batch size", style=style)
    depth = widgets.ToggleButtons(options=sweep["depths"], value=sweep["depths"][1], description="layers",
                                  style=style)
    lr = widgets.SelectionSlider(options=sweep["lrs"], value=sweep["lrs"][len(sweep["lrs"]) // 2],
                                 description="highlight learning rate", style=style,
                                 layout=widgets.Layout(width="420px"), continuous_update=False)
    out = widgets.Output()

    def update(change=None) -> None:
        fig, ax = plt.subplots(figsize=(7.5, 3.6))
        sweep_curves_plot(sweep, batch.value, depth.value, ax=ax, highlight=lr.value)
        _draw(out, fig)

    for control in (batch, depth, lr):
        control.observe(update, names="value")
    update()
    return widgets.VBox([batch, depth, lr, out])


def resources_table_html(resources: dict[str, float]) -> str:
    """An HTML table of ``utils.sizing.inference_resources``'s result: memory in GB, the time per step in
    ms and tokens per second, and whether it fits.

    >>> "13.48" in resources_table_html({"weights": 13.48e9, "kv_cache": 2e9, "total": 15.48e9})
    True
    """
    gb = {k: f"{resources[k] / 1e9:.2f} GB" for k in ("weights", "kv_cache", "total")}
    rows = [("weights", gb["weights"]), ("KV cache", gb["kv_cache"]), ("total", f"<b>{gb['total']}</b>")]
    if "seconds_per_step" in resources:
        rows += [("time per step (at least)", f"{1000 * resources['seconds_per_step']:.1f} ms"),
                 ("tokens per second (at most)", f"{resources['tokens_per_second']:,.0f}"),
                 ("fits in memory", "yes" if resources["fits"] else "<b>no</b>")]
    cells = "".join(f"<tr><td style='padding-right:1em'>{html.escape(k)}</td><td>{v}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


def resource_calculator() -> widgets.VBox:
    """What serving a real model needs: weights, KV cache and a lower bound on the time per token, for
    LLaMA-sized models on a few accelerators (a thin wrapper over ``utils.sizing.inference_resources``)."""
    from .sizing import ACCELERATORS, BYTES_PER_PARAMETER, LLAMA_SHAPES, inference_resources

    style = {"description_width": "initial"}
    size = widgets.Dropdown(options=list(LLAMA_SHAPES), value="7B", description="model", style=style)
    fmt = widgets.ToggleButtons(options=list(BYTES_PER_PARAMETER), value="fp16", description="weights",
                                style=style)
    context = widgets.SelectionSlider(options=[512, 1024, 2048, 4096, 8192, 16384, 32768], value=4096,
                                      description="context (tokens)", style=style,
                                      layout=widgets.Layout(width="420px"))
    batch = widgets.SelectionSlider(options=[1, 2, 4, 8, 16, 32, 64, 128], value=1,
                                    description="sequences at once", style=style,
                                    layout=widgets.Layout(width="420px"))
    device = widgets.Dropdown(options=list(ACCELERATORS), value="A100 (80 GB)", description="hardware",
                              style=style, layout=widgets.Layout(width="360px"))
    out = widgets.HTML()

    def update(change=None) -> None:
        shape = LLAMA_SHAPES[size.value]
        resources = inference_resources(shape, context.value, batch.value, fmt.value,
                                        accelerator=ACCELERATORS[device.value])
        out.value = (f"<p>{size.value}: {shape.n_params / 1e9:.1f} billion parameters</p>"
                     + resources_table_html(resources))

    for control in (size, fmt, context, batch, device):
        control.observe(update, names="value")
    update()
    return widgets.VBox([size, fmt, context, batch, device, out])
