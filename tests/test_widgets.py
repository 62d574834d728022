"""utils.widgets: the small pure helpers behind the widgets, and that each widget builds."""

import html

import pytest

from utils.widgets import tokens_html


def test_tokens_html_one_escaped_span_per_token():
    pieces = ["<b>", " cat", "&"]
    out = tokens_html(pieces)
    assert out.count("<span") == 3
    assert html.escape("<b>") in out and "<b>" not in out.replace("<span", "")
    assert "·cat" in out and "&amp;" in out


def test_tokens_html_rejects_a_plain_string():
    with pytest.raises(TypeError, match="pieces"):
        tokens_html("cat")


# --- LoRA / QLoRA widgets (Q4, Q5) ---------------------------------------------------------------

def test_lora_rank_explorer_reports_what_add_lora_gives():
    import copy

    import torch.nn as nn

    from utils.lora import add_lora, count_parameters
    from utils.widgets import lora_rank_explorer

    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    box = lora_rank_explorer(model)
    slider, text = box.children
    assert slider.max == 4  # min(in, out) of the smallest targeted layer
    slider.value = 3
    trainable, total = count_parameters(add_lora(copy.deepcopy(model), r=3, alpha=1))
    assert f"<b>{trainable:,}</b>" in text.value and f"{total:,} in total" in text.value
    assert all(p.requires_grad for p in model.parameters())  # the widget never touches the model
    with pytest.raises(ValueError, match="max_rank"):
        lora_rank_explorer(model, max_rank=5)


def test_memory_table_html_totals_and_verdicts():
    from utils.widgets import memory_table_html

    out = memory_table_html({"weights": 30e9, "optimizer_state": 20e9}, gpu_gb=(48, 80))
    assert "50.00" in out and "48 GB: too big" in out and "80 GB: fits" in out
    assert "optimizer state" in out
    with pytest.raises(ValueError, match="breakdown"):
        memory_table_html({})


def test_memory_calculator_follows_finetune_memory():
    from utils.lora import LLAMA_SHAPES, finetune_memory
    from utils.widgets import memory_calculator

    box = memory_calculator()
    size, fmt, rank, _, _, out = box.children
    size.value, fmt.value, rank.value = "7B", "fp16", 16
    shape = LLAMA_SHAPES["7B"]
    total = sum(finetune_memory(shape.n_params, "fp16", shape.lora_params(16)).values())
    assert f"<b>{total / 1e9:.2f}</b>" in out.value


# ---- attention and context window (Q2, Q3) ----

def test_head_weights_selects_one_head_of_one_layer():
    import torch

    from utils.widgets import head_weights

    layers = [torch.rand(2, 3, 4, 4), torch.rand(3, 4, 4)]  # (B, H, T, T) and (H, T, T)
    assert torch.equal(head_weights(layers, 0, 2), layers[0][0, 2])  # batch item 0
    assert torch.equal(head_weights(layers, 1, 1), layers[1][1])
    with pytest.raises(ValueError, match="layer"):
        head_weights(layers, 2, 0)
    with pytest.raises(ValueError, match="head"):
        head_weights(layers, 0, 3)
    with pytest.raises(ValueError, match="weights_per_layer"):
        head_weights([torch.rand(4, 4)], 0, 0)


def test_attention_explorer_offers_every_layer_and_head():
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from utils.widgets import attention_explorer

    layers = [torch.rand(1, 3, 4, 4) for _ in range(2)]
    box = attention_explorer(layers, ["a", "b", "c", "d"])
    layer, head = box.children[0].children
    assert list(layer.options) == [0, 1] and list(head.options) == [0, 1, 2]
    layer.value, head.value = 1, 2  # redraws without error
    with pytest.raises(ValueError, match="tokens"):
        attention_explorer(layers, ["a", "b"])


def test_window_html_greys_exactly_the_hidden_tokens():
    from utils.widgets import window_html

    out = window_html(["<the>", "cat"], ["sat", "."])
    assert out.count("line-through") == 2 and out.count("<span") == 4
    assert "&lt;the&gt;" in out and "<the>" not in out
    with pytest.raises(TypeError, match="hidden"):
        window_html("the", ["cat"])


def test_window_colours_follow_the_tokens_as_the_window_moves():
    """A token keeps its colour whatever the window: the colour of its position in the whole passage."""
    import re

    from utils.attention import visible_window
    from utils.plotting import TOKEN_COLOURS
    from utils.widgets import tokens_html, window_html

    tokens = [f"t{i}" for i in range(2 * len(TOKEN_COLOURS) + 3)]
    for w in range(1, len(tokens) + 1):
        out = window_html(*visible_window(tokens, w))
        coloured = re.findall(r'background:([^;]+);[^>]*>(t\d+)</span>', out)
        assert [token for _, token in coloured] == tokens[-w:]
        assert all(colour == TOKEN_COLOURS[int(token[1:]) % len(TOKEN_COLOURS)] for colour, token in coloured)
    assert tokens_html(["a", "b", "c"]).endswith(tokens_html(["c"], first=2))
    for bad in (-1, 1.0, True):
        with pytest.raises(ValueError, match="first"):
            tokens_html(["a"], first=bad)


def test_context_window_explorer_shows_the_last_window_tokens():
    from utils.attention import visible_window
    from utils.widgets import context_window_explorer, window_html

    tokens = ["the", "cat", "chased", "the", "mouse"]
    seen = []
    box = context_window_explorer(tokens, describe=lambda w: seen.append(w) or f"window={w}")
    slider, text = box.children
    assert slider.max == 5 and slider.value == 5 and seen == [5]
    slider.value = 2
    assert window_html(*visible_window(tokens, 2)) in text.value
    assert "sees 2 of 5 tokens" in text.value and "window=2" in text.value
    with pytest.raises(ValueError, match="tokens"):
        context_window_explorer([])


# --- BPE merge explorer (Q1) ---------------------------------------------------------------------------

def test_merge_explorer_shows_the_tokens_of_each_merge_step():
    from utils.tokenization import BPETokenizer
    from utils.widgets import merge_explorer

    tok = BPETokenizer().train("the cat sat on the mat with the hat " * 5, vocab_size=270)
    box = merge_explorer(tok, "the cat")
    slider, text_box, out = box.children
    assert (slider.min, slider.max, slider.value) == (0, 14, 14)
    for k in (0, 3, 14):
        slider.value = k
        assert tokens_html(tok.tokens("the cat", num_merges=k)) in out.value
        assert f"<b>{len(tok.encode('the cat', num_merges=k))}</b> tokens for 7 bytes" in out.value
    text_box.value = "a hat"
    assert tokens_html(tok.tokens("a hat", num_merges=14)) in out.value
    assert merge_explorer(tok, "x", max_merges=5).children[0].max == 5
    with pytest.raises(ValueError, match="max_merges"):
        merge_explorer(tok, "x", max_merges=15)
    with pytest.raises(ValueError, match="max_merges"):
        merge_explorer(tok, "x", max_merges=-1)


# --- Lecture 6: each widget draws what its compute function returns -----------------------------------

@pytest.fixture
def drawn(monkeypatch):
    """The figures the Lecture 6 widgets draw, captured instead of displayed (newest last)."""
    import matplotlib

    matplotlib.use("Agg")
    import utils.widgets as module

    figures = []
    monkeypatch.setattr(module, "_draw", lambda out, fig: figures.append(fig))
    return figures


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_embedding_gradient_explorer_counts_the_rows_the_batch_reads(drawn):
    import torch

    from utils.models import course_language_model, token_embedding_gradient
    from utils.widgets import embedding_gradient_explorer

    course = course_language_model(device="cpu")
    sentences = ["the cat ate the apple at the table .", "the dog found the key under the bed ."]
    box = embedding_gradient_explorer(course, sentences)
    first, batch = box.children[0].children
    assert "7 of 50 rows" in titles(drawn[-1])[0]  # <bos> the cat ate apple at table; "." is never read
    batch.value = 2
    grad, _ = token_embedding_gradient(course.model, torch.cat([course.encode(s) for s in sentences]))
    assert f"{int((grad.norm(dim=1) > 0).sum())} of 50 rows" in titles(drawn[-1])[0]
    with pytest.raises(ValueError, match="sentences"):
        embedding_gradient_explorer(course, "the cat")


def test_softmax_jacobian_explorer_draws_diag_minus_outer(drawn):
    import numpy as np
    import torch

    from utils.linalg import softmax_jacobian
    from utils.widgets import softmax_jacobian_explorer

    logits = torch.tensor([2.0, 1.0, 0.0])
    box = softmax_jacobian_explorer(logits, labels=["a", "b", "c"])
    temperature = box.children[0]
    temperature.value = 0.5
    expected = softmax_jacobian(torch.softmax(logits / 0.5, dim=0))
    np.testing.assert_allclose(drawn[-1].axes[1].images[0].get_array(), expected.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="logits"):
        softmax_jacobian_explorer(torch.zeros(2, 2))


def test_pca_reconstruction_explorer_reports_the_variance_kept(drawn):
    import torch

    from utils.linalg import pca
    from utils.widgets import pca_reconstruction_explorer

    scales = torch.tensor([4.0, 2.0, 1.0, 0.5, 0.1])
    X = torch.randn(12, 5, generator=torch.Generator().manual_seed(0)) * scales
    box = pca_reconstruction_explorer(X, k_neighbours=3)
    slider = box.children[0]
    _, variances, _ = pca(X, 5)
    slider.value = 2
    assert f"{(variances[:2].sum() / variances.sum()).item():.0%} of the variance" in titles(drawn[-1])[1]
    slider.value = 5  # every component: the table itself, all neighbours kept
    assert "100% of the variance" in titles(drawn[-1])[1] and "100% of 3 neighbours" in titles(drawn[-1])[1]


def test_kl_explorer_shows_both_directions(drawn):
    import torch

    from utils.losses import kl_divergence_from_logs, log_gaussian_on_grid
    from utils.widgets import kl_explorer

    grid = torch.linspace(-6, 6, 121)
    target = log_gaussian_on_grid(grid, 1.0, 1.0)
    box = kl_explorer(grid, target)
    mean, std = box.children[0].children
    mean.value, std.value = 1.0, 1.0  # q = p: both zero
    assert "KL(p‖q) = 0.000" in titles(drawn[-1])[0] and "KL(q‖p) = 0.000" in titles(drawn[-1])[0]
    std.value = 2.0
    log_q = log_gaussian_on_grid(grid, 1.0, 2.0)
    assert f"KL(q‖p) = {kl_divergence_from_logs(log_q, target).item():.3f}" in titles(drawn[-1])[0]


def test_gradient_flow_explorer_draws_one_line_per_activation(drawn):
    import numpy as np

    from utils.linalg import deep_stack_gradient_norms
    from utils.widgets import gradient_flow_explorer

    box = gradient_flow_explorer(depth=6, width=16)
    layers, seed, chosen = box.children[0].children
    chosen.value = ("tanh",)
    lines = drawn[-1].axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["tanh"]
    np.testing.assert_allclose(lines[0].get_ydata(), deep_stack_gradient_norms("tanh", 6, width=16).numpy())


# --- Lecture 4 widgets ------------------------------------------------------------------------------------

def test_unknown_pieces_html_marks_only_the_unknown_pieces():
    from utils.widgets import unknown_pieces_html

    out = unknown_pieces_html({"word": [("the", False), ("<b>", True)], "bpe": [("t", False)]})
    assert out.count("line-through") == 1 and "&lt;b&gt;" in out and out.count("<tr>") == 2
    assert "2 tokens, 1 unknown" in out and "1 tokens, 0 unknown" in out


def test_oov_explorer_shows_every_tokenizer():
    from utils.tokenization import CharTokenizer, WordTokenizer
    from utils.widgets import oov_explorer

    box = oov_explorer({"word": WordTokenizer(["the"]), "char": CharTokenizer().fit("the")}, "the cat")
    text, out = box.children
    assert "1 unknown" in out.value and "3 unknown" in out.value  # the word "cat"; " ", "c" and "a"
    text.value = "the"
    assert out.value.count("0 unknown") == 2


def test_recall_example_html_boxes_the_target_and_grades_answers():
    from utils.widgets import recall_example_html

    out = recall_example_html([0, 1, 2, 3, 9], distance=3, answers={"a": 1, "b": 2}, n_symbols=4)
    assert out.count("border:2px") == 1 and "a: B ✔" in out and "b: C ✘" in out


def test_recall_explorer_reports_accuracy_of_each_model():
    import torch

    from utils.data import RecallTask
    from utils.widgets import recall_explorer

    task = RecallTask(length=5, max_distance=3, n_symbols=2)

    class Oracle(torch.nn.Module):  # answers by looking d steps back: always right
        def forward(self, x):
            d = x[:, -1] - task.n_symbols + 1
            answer = x[torch.arange(len(x)), x.shape[1] - 1 - d]
            return torch.nn.functional.one_hot(answer, task.vocab_size).float()[:, None].expand(
                len(x), x.shape[1], task.vocab_size)

    box = recall_explorer({"oracle": Oracle()}, task, n=50)
    slider, out = box.children
    assert "100%" in out.value and "oracle: " in out.value and "✔" in out.value
    slider.value = 3
    assert "d = 3" in out.value


def test_review_writer_and_patch_explorer_build():
    import torch

    from utils.classifiers import MultinomialNaiveBayes
    from utils.multimodal import toy_image
    from utils.widgets import patch_explorer, review_writer

    nb = MultinomialNaiveBayes().fit(torch.tensor([[3.0, 0.0], [0.0, 3.0]]), torch.tensor([0, 1]))
    box = review_writer(nb, ["bad", "good"], length=6)
    controls, out = box.children
    assert len(out.value.split("</p>")[0].split(">")[1].split()) == 6
    explorer = patch_explorer(toy_image(64, 64))
    assert explorer.children[0].options == (8, 16, 32)
    with pytest.raises(ValueError, match="sizes"):
        patch_explorer(toy_image(30, 30))


# ---- Lecture 10: the sweep explorer and the resource calculator (Q48, Q50) ----

def test_resource_calculator_follows_inference_resources():
    from utils.sizing import ACCELERATORS, LLAMA_SHAPES, inference_resources
    from utils.widgets import resource_calculator

    box = resource_calculator()
    size, fmt, context, batch, device, out = box.children
    size.value, fmt.value, context.value = "13B", "int8", 8192
    batch.value, device.value = 4, "H100 SXM (80 GB)"
    h100 = ACCELERATORS["H100 SXM (80 GB)"]
    r = inference_resources(LLAMA_SHAPES["13B"], 8192, 4, "int8", accelerator=h100)
    assert f"<b>{r['total'] / 1e9:.2f} GB</b>" in out.value
    assert f"{1000 * r['seconds_per_step']:.1f} ms" in out.value


def test_sweep_explorer_draws_every_learning_rate(drawn):
    from utils.hyperparameters import load_sweep
    from utils.widgets import sweep_explorer

    sweep = load_sweep()
    batch, depth, lr, _ = sweep_explorer(sweep).children
    batch.value, depth.value, lr.value = 8, 4, 1.0  # each change redraws
    ax = drawn[-1].axes[0]
    assert len(drawn) == 4 and len(ax.lines) == len(sweep["lrs"])
    assert ax.get_title() == "batch size 8, 4 layers"
    assert max(line.get_linewidth() for line in ax.lines) == ax.lines[-1].get_linewidth()  # lr 1.0 thick
