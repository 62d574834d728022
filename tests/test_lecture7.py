"""Lecture 7 additions outside utils.autograd and utils.multimodal: attention step by step and the √d_k
statistics, CLIP's contrastive loss, remove_lora, two moons, TinyResNet and FixedWindowLM.
Oracles: PyTorch's own functions, closed forms (Var(q·k) = d_k), hand-computed values, properties."""

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.attention import attention_steps, causal_mask, score_saturation
from utils.data import two_moons
from utils.lora import LoRALinear, add_lora, remove_lora
from utils.losses import contrastive_loss
from utils.models import FixedWindowLM, GPTConfig, TinyGPT, TinyResNet


def test_attention_steps_match_torch_and_each_other():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 3, 6, 8, generator=g)
    v = torch.randn(2, 3, 6, 4, generator=g)
    steps = attention_steps(q, k, v)
    torch.testing.assert_close(steps["output"], F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(steps["scaled"], steps["scores"] / math.sqrt(8))
    torch.testing.assert_close(steps["weights"], torch.softmax(steps["scaled"], dim=-1))
    mask = causal_mask(5)[:, :5].expand(5, 5)
    masked = attention_steps(q[..., :5, :], k[..., :5, :], v[..., :5, :], mask)
    assert (masked["weights"][..., 0, 1:] == 0).all()


def test_score_saturation_matches_closed_forms_and_autograd():
    for d in (1, 16, 256):
        unscaled, scaled = (score_saturation(d, n_samples=4000, scaled=s,
                                             generator=torch.Generator().manual_seed(d))
                            for s in (False, True))
        assert 0.9 < unscaled["score_variance"] / d < 1.1  # Var(Σ q_m k_m) = d for unit normals
        assert 0.9 < scaled["score_variance"] < 1.1
        assert 1 / 16 <= scaled["max_weight"] <= 1
    assert score_saturation(512, scaled=False)["max_weight"] > score_saturation(8, scaled=False)["max_weight"]
    # one sample: the Jacobian norm equals that of autograd's Jacobian of the softmax at the same scores
    g = torch.Generator().manual_seed(3)
    q = torch.randn(1, 1, 4, generator=g, dtype=torch.float64)
    k = torch.randn(1, 16, 4, generator=g, dtype=torch.float64)
    scores = (q @ k.transpose(1, 2))[0, 0] / 2
    jac = torch.autograd.functional.jacobian(lambda x: torch.softmax(x, dim=-1), scores)
    ours = score_saturation(4, n_samples=1, generator=torch.Generator().manual_seed(3))["jacobian_norm"]
    assert math.isclose(ours, torch.linalg.matrix_norm(jac).item(), rel_tol=1e-9)
    with pytest.raises(ValueError, match="d_k must be >= 1"):
        score_saturation(0)
    with pytest.raises(TypeError, match="scaled must be a bool"):
        score_saturation(4, scaled=1)


def test_contrastive_loss_against_hand_computation_and_properties():
    g = torch.Generator().manual_seed(1)
    img = torch.randn(5, 3, generator=g, dtype=torch.float64)
    txt = torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = 0.2
    total = 0.0
    for i in range(5):  # the two cross-entropies written as sums, one example at a time
        sims_row = [F.cosine_similarity(img[i], txt[j], dim=0) / t for j in range(5)]
        sims_col = [F.cosine_similarity(img[j], txt[i], dim=0) / t for j in range(5)]
        total += -(sims_row[i] - torch.logsumexp(torch.stack(sims_row), 0))
        total += -(sims_col[i] - torch.logsumexp(torch.stack(sims_col), 0))
    torch.testing.assert_close(contrastive_loss(img, txt, t), total / 10)
    torch.testing.assert_close(contrastive_loss(img, txt, t), contrastive_loss(txt, img, t))  # symmetric
    torch.testing.assert_close(contrastive_loss(2 * img, txt, t), contrastive_loss(img, txt, t))  # no length
    assert contrastive_loss(torch.eye(4), torch.eye(4), 0.01).item() < 1e-6  # perfectly matched
    before = img.clone()
    contrastive_loss(img, txt, torch.tensor(0.5))
    assert torch.equal(img, before)
    learnable = torch.tensor(0.0, requires_grad=True)
    contrastive_loss(img.float(), txt.float(), learnable.exp()).backward()
    assert learnable.grad is not None and torch.isfinite(learnable.grad)


@pytest.mark.parametrize("bad", [0.0, -0.1, torch.tensor(0.0)])
def test_contrastive_loss_rejects_a_temperature_not_above_zero(bad):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        contrastive_loss(torch.randn(3, 2), torch.randn(3, 2), bad)


def test_contrastive_loss_rejects_mismatched_or_wrong_inputs():
    with pytest.raises(ValueError, match="same shape|shape \\(N, D\\)"):
        contrastive_loss(torch.randn(3, 2), torch.randn(4, 2), 0.1)
    with pytest.raises(ValueError, match="shape \\(N, D\\)"):
        contrastive_loss(torch.randn(3, 2), torch.randn(3, 5), 0.1)
    with pytest.raises(TypeError, match="floating-point"):
        contrastive_loss(torch.ones(3, 2, dtype=torch.long), torch.randn(3, 2), 0.1)
    with pytest.raises(TypeError, match="temperature must be a number"):
        contrastive_loss(torch.randn(3, 2), torch.randn(3, 2), "0.1")


def test_remove_lora_restores_the_exact_outputs_after_training_the_adapters():
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=11, block_size=6, d_model=16, n_heads=2, n_layers=2)).eval()
    ids = torch.randint(11, (3, 6))
    with torch.no_grad():
        before = model(ids)
    bases = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    adapted = add_lora(model, r=2, alpha=4, target=lambda n, m: n.endswith(("q_proj", "v_proj", "mlp.0")))
    optimizer = torch.optim.SGD([p for p in adapted.parameters() if p.requires_grad], lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        adapted(ids).logsumexp(-1).mean().backward()
        optimizer.step()
    with torch.no_grad():
        assert not torch.equal(adapted(ids), before)
        restored = remove_lora(adapted)
        assert torch.equal(restored(ids), before)
    assert restored is model and not any(isinstance(m, LoRALinear) for m in restored.modules())
    assert all(restored.get_submodule(name) is layer for name, layer in bases.items())  # the same objects


def test_remove_lora_on_a_bare_layer_and_bad_inputs():
    base = nn.Linear(3, 2)
    assert remove_lora(LoRALinear(base, r=1, alpha=1)) is base
    with pytest.raises(ValueError, match="no LoRALinear"):
        remove_lora(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        remove_lora("model")
    net = add_lora(nn.Sequential(nn.Linear(2, 2)), r=1, alpha=1)
    copy_before = copy.deepcopy(net)
    remove_lora(net)
    assert isinstance(copy_before[0], LoRALinear)  # only the model passed in is changed


def test_two_moons_are_seeded_balanced_and_not_linearly_separable():
    points, labels = two_moons(200, noise=0.0, seed=0)
    assert points.shape == (200, 2) and labels.sum() == 100
    assert torch.equal(two_moons(10, seed=3)[0], two_moons(10, seed=3)[0])
    # noise-free moon 0 is a half circle of radius 1 around (0, 0) before the centring
    # (x - 0.5, (y - 0.25) / 0.7)
    upper = points[labels == 0]
    radius = torch.sqrt((upper[:, 0] + 0.5) ** 2 + (upper[:, 1] * 0.7 + 0.25) ** 2)
    torch.testing.assert_close(radius, torch.ones_like(radius), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="noise must be"):
        two_moons(10, noise=-1)


def test_tiny_resnet_block_is_residual_and_shapes_are_right():
    torch.manual_seed(0)
    model = TinyResNet(n_classes=4).eval()
    block = model.blocks[0]
    nn.init.zeros_(block.conv2.weight)
    x = torch.randn(2, 16, 12, 12)
    torch.testing.assert_close(block(x), x)  # with its last convolution at 0 the block is the identity
    assert model(torch.randn(5, 3, 24, 24)).shape == (5, 4)
    with pytest.raises(ValueError, match="images must have shape"):
        model.features(torch.randn(3, 24, 24))


def test_fixed_window_lm_is_concatenated_embeddings_then_an_mlp():
    torch.manual_seed(0)
    model = FixedWindowLM(vocab_size=7, n_inputs=3, d_embed=2, d_hidden=5)
    ids = torch.tensor([[1, 2, 3]])
    x = torch.cat([model.embed.weight[i] for i in (1, 2, 3)])
    expected = model.out(F.gelu(model.hidden(x)))
    torch.testing.assert_close(model(ids)[0], expected)
    with pytest.raises(ValueError, match="exactly n_inputs=3"):
        model(torch.tensor([[1, 2]]))
