"""Tests for utils.losses. Oracles: PyTorch's F.cross_entropy and F.kl_div, hand-computed values, the closed
form of the distillation gradient, the high-temperature limit of Hinton et al. (2015), and properties of
BERT's masking (proportions on a large tensor, specials never selected, no in-place change, same seed ->
same output)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from utils.losses import (
    IGNORE_INDEX,
    cross_entropy,
    distillation_loss,
    kl_divergence,
    mask_draws,
    mask_tokens,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _distributions(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.softmax(3 * torch.randn(*shape, generator=_gen(seed)), dim=-1)


# ----------------------------------------------------------------------------------------------------
# cross_entropy
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_cross_entropy_equals_pytorch(seed):
    g = _gen(seed)
    N, V = 1 + seed * 7, 2 + seed * 3
    logits = 4 * torch.randn(N, V, generator=g)
    targets = torch.randint(V, (N,), generator=g)
    torch.testing.assert_close(cross_entropy(logits, targets), F.cross_entropy(logits, targets))


def test_cross_entropy_ignore_index_equals_pytorch():
    g = _gen(1)
    logits = torch.randn(20, 7, generator=g)
    targets = torch.randint(7, (20,), generator=g)
    targets[::3] = IGNORE_INDEX
    torch.testing.assert_close(cross_entropy(logits, targets), F.cross_entropy(logits, targets))
    targets[::3] = 5  # a custom ignore_index that is also a valid class
    torch.testing.assert_close(cross_entropy(logits, targets, ignore_index=5),
                               F.cross_entropy(logits, targets, ignore_index=5))


def test_cross_entropy_all_ignored_is_nan_like_pytorch():
    logits, targets = torch.randn(3, 4, generator=_gen(2)), torch.full((3,), IGNORE_INDEX)
    assert torch.isnan(cross_entropy(logits, targets)) and torch.isnan(F.cross_entropy(logits, targets))


def test_cross_entropy_hand_values_and_stability():
    # uniform scores: every class has probability 1/V, the loss is log V
    assert cross_entropy(torch.zeros(4, 10), torch.tensor([0, 3, 9, 5])).item() == pytest.approx(math.log(10))
    # huge logits: a naive exp overflows; the right class at +1000 costs 0, the wrong one 1000
    logits = torch.tensor([[1000.0, 0.0], [1000.0, 0.0]])
    loss = cross_entropy(logits, torch.tensor([0, 1]))
    assert torch.isfinite(loss) and loss.item() == pytest.approx(500.0)
    torch.testing.assert_close(loss, F.cross_entropy(logits, torch.tensor([0, 1])))


def test_cross_entropy_gradient_equals_pytorch():
    g = _gen(3)
    logits = torch.randn(6, 5, generator=g)
    targets = torch.tensor([0, 4, IGNORE_INDEX, 2, 2, 1])
    ours, theirs = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    cross_entropy(ours, targets).backward()
    F.cross_entropy(theirs, targets).backward()
    torch.testing.assert_close(ours.grad, theirs.grad)


def test_cross_entropy_does_not_modify_inputs():
    logits, targets = torch.randn(4, 3, generator=_gen(4)), torch.tensor([0, 1, 2, -100])
    before = logits.clone(), targets.clone()
    cross_entropy(logits, targets)
    assert torch.equal(logits, before[0]) and torch.equal(targets, before[1])


def test_cross_entropy_rejects_bad_arguments():
    logits = torch.randn(4, 3)
    with pytest.raises(ValueError, match="targets"):
        cross_entropy(logits, torch.tensor([0, 1, 2]))  # wrong N
    with pytest.raises(ValueError, match="logits"):
        cross_entropy(torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        cross_entropy(logits, torch.tensor([0, 1, 3, 0]))  # 3 is not a class of V = 3
    with pytest.raises(TypeError, match="targets"):
        cross_entropy(logits, torch.zeros(4))
    with pytest.raises(TypeError, match="logits"):
        cross_entropy(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="logits"):
        cross_entropy([[0.0]], torch.zeros(1, dtype=torch.long))


# ----------------------------------------------------------------------------------------------------
# kl_divergence
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5,), (4, 7), (2, 3, 11)])
def test_kl_equals_pytorch_kl_div(shape):
    p, q = _distributions(*shape, seed=0), _distributions(*shape, seed=1)
    expected = F.kl_div(q.log(), p, reduction="none").sum(-1)
    got = kl_divergence(p, q)
    assert got.shape == shape[:-1]
    torch.testing.assert_close(got, expected)


def test_kl_hand_values():
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([0.25, 0.5, 0.25])
    # 0.5 log(0.5 / 0.25) + 0.5 log 1 + 0 (the p = 0 term is dropped, not 0 · log 0 = NaN)
    assert kl_divergence(p, q).item() == pytest.approx(0.5 * math.log(2))
    assert kl_divergence(q, p).item() == math.inf  # q > 0 where p = 0: infinite
    assert kl_divergence(p, p).item() == 0.0
    # a coin: KL(Bernoulli(0.9) ‖ Bernoulli(0.5)) = 0.9 log 1.8 + 0.1 log 0.2
    coin = kl_divergence(torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.5])).item()
    assert coin == pytest.approx(0.9 * math.log(1.8) + 0.1 * math.log(0.2))


def test_kl_rows_are_independent_and_inf_stays_in_its_row():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    assert kl_divergence(p, q).tolist() == [math.inf, 0.0]


def test_kl_properties_gibbs_asymmetry_and_cross_entropy_identity():
    p, q = _distributions(50, 6, seed=2), _distributions(50, 6, seed=3)
    kl = kl_divergence(p, q)
    assert (kl >= 0).all()  # Gibbs' inequality
    assert not torch.allclose(kl, kl_divergence(q, p))  # not symmetric
    cross = -(p * q.log()).sum(-1)  # H(p, q)
    entropy = -(p * p.log()).sum(-1)  # H(p)
    torch.testing.assert_close(cross, entropy + kl)  # H(p, q) = H(p) + KL(p‖q)


def test_kl_gradient_is_finite_with_zeros_in_p():
    p = torch.tensor([0.7, 0.3, 0.0], requires_grad=True)
    q = torch.tensor([0.2, 0.5, 0.3], requires_grad=True)
    kl_divergence(p, q).backward()
    assert torch.isfinite(q.grad).all()
    torch.testing.assert_close(q.grad, -p.detach() / q.detach())  # d/dq_i Σ p log(p/q) = -p_i / q_i


def test_kl_does_not_modify_inputs():
    p, q = _distributions(3, 4, seed=5), _distributions(3, 4, seed=6)
    before = p.clone(), q.clone()
    kl_divergence(p, q)
    assert torch.equal(p, before[0]) and torch.equal(q, before[1])


def test_kl_rejects_bad_arguments():
    p = torch.tensor([0.5, 0.5])
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence(p, torch.tensor([0.2, 0.3, 0.5]))
    with pytest.raises(ValueError, match="q must hold probabilities"):
        kl_divergence(p, torch.tensor([1.5, -0.5]))
    with pytest.raises(ValueError, match="p must sum to 1"):
        kl_divergence(torch.tensor([0.5, 0.6]), p)
    with pytest.raises(TypeError, match="p must be"):
        kl_divergence([0.5, 0.5], p)
    with pytest.raises(TypeError, match="q must be a floating"):
        kl_divergence(p, torch.tensor([1, 0]))


# ----------------------------------------------------------------------------------------------------
# distillation_loss
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0, 4.0, 10.0])
def test_distillation_equals_scaled_pytorch_kl_div(temperature):
    g = _gen(7)
    student, teacher = 3 * torch.randn(8, 10, generator=g), 3 * torch.randn(8, 10, generator=g)
    T = temperature
    expected = T**2 * F.kl_div(F.log_softmax(student / T, dim=-1), F.softmax(teacher / T, dim=-1),
                               reduction="batchmean")
    torch.testing.assert_close(distillation_loss(student, teacher, T), expected)


def test_distillation_equals_kl_divergence_of_softmaxes():
    g = _gen(8)
    student, teacher = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)
    p, q = torch.softmax(teacher / 3, dim=-1), torch.softmax(student / 3, dim=-1)
    torch.testing.assert_close(distillation_loss(student, teacher, 3.0), 9 * kl_divergence(p, q).mean())


def test_distillation_is_zero_for_a_perfect_copy_and_positive_otherwise():
    teacher = torch.randn(4, 9, generator=_gen(9))
    for T in (0.5, 1, 3, 20):
        assert distillation_loss(teacher.clone(), teacher, T).abs().item() < 1e-6
        assert distillation_loss(teacher.flip(-1), teacher, T).item() > 0
    # adding a constant to every logit of a row changes no probability, hence no loss
    assert distillation_loss(teacher + 5.0, teacher, 2.0).abs().item() < 1e-5


def test_distillation_rows_of_3d_logits_are_averaged():
    g = _gen(10)
    student, teacher = torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)
    flat = distillation_loss(student.reshape(6, 5), teacher.reshape(6, 5), 2.0)  # (B, T, V) -> (B*T, V)
    torch.testing.assert_close(distillation_loss(student, teacher, 2.0), flat)


def test_distillation_hand_value():
    teacher = torch.tensor([[0.0, math.log(9.0)]])  # at T = 2: softmax = (1/4, 3/4)
    expected = 4 * (0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5))
    assert distillation_loss(torch.zeros(1, 2), teacher, 2.0).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 3.0, 8.0])
def test_distillation_gradient_closed_form(temperature):
    # d/dz_i [T² KL(p ‖ softmax(z/T))] = T (q_i - p_i), and the mean over N rows divides by N
    g = _gen(11)
    N, T = 6, temperature
    student = torch.randn(N, 7, generator=g).requires_grad_()
    teacher = torch.randn(N, 7, generator=g)
    distillation_loss(student, teacher, T).backward()
    p, q = torch.softmax(teacher / T, dim=-1), torch.softmax(student.detach() / T, dim=-1)
    torch.testing.assert_close(student.grad, T * (q - p) / N)


def test_soft_target_gradients_scale_as_one_over_t_squared():
    """Hinton et al. (2015): without the T² factor the soft-target gradients shrink like 1/T², which is
    why the loss is multiplied by T²; with it, the gradient tends to ((z - z̄) - (v - v̄)) / (V N)."""
    g = _gen(12)
    N, V = 4, 8
    student, teacher = torch.randn(N, V, generator=g), torch.randn(N, V, generator=g)

    def gradient(T: float, scaled: bool) -> torch.Tensor:
        z = student.clone().requires_grad_()
        loss = distillation_loss(z, teacher, T)
        (loss if scaled else loss / T**2).backward()
        return z.grad

    for T in (10.0, 20.0, 40.0):
        ratio = gradient(T, scaled=False).norm() / gradient(2 * T, scaled=False).norm()
        assert ratio.item() == pytest.approx(4.0, rel=0.02)  # doubling T divides the gradient by 4
    centred = (student - student.mean(-1, keepdim=True)) - (teacher - teacher.mean(-1, keepdim=True))
    limit = centred / (V * N)  # the first-order term of T (q - p) / N in 1/T
    errors = [(gradient(T, scaled=True) - limit).abs().max().item() for T in (10.0, 100.0, 1000.0)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 3e-4 < 0.1 < limit.abs().max().item()
    sizes = [gradient(T, scaled=True).norm().item() for T in (5.0, 10.0, 20.0, 40.0)]
    assert max(sizes) / min(sizes) < 1.1  # with T², the size hardly depends on T


def test_distillation_does_not_modify_inputs():
    g = _gen(13)
    student, teacher = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    before = student.clone(), teacher.clone()
    distillation_loss(student, teacher, 2.0)
    assert torch.equal(student, before[0]) and torch.equal(teacher, before[1])


def test_distillation_rejects_bad_arguments():
    s = torch.randn(2, 3)
    for bad in (0, 0.0, -1.0):
        with pytest.raises(ValueError, match="temperature"):
            distillation_loss(s, s, bad)
    with pytest.raises(TypeError, match="temperature"):
        distillation_loss(s, s, True)
    with pytest.raises(TypeError, match="temperature"):
        distillation_loss(s, s, "2")
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss(s, torch.randn(2, 4), 1.0)
    with pytest.raises(TypeError, match="teacher_logits"):
        distillation_loss(s, torch.zeros(2, 3, dtype=torch.long), 1.0)


# ----------------------------------------------------------------------------------------------------
# mask_tokens
# ----------------------------------------------------------------------------------------------------

SPECIALS = (0, 1, 2)
MASK_ID = 3
VOCAB = 1000


def _large_batch(seed: int = 0) -> torch.Tensor:
    return torch.randint(4, VOCAB, (400, 500), generator=_gen(seed))  # 200,000 non-special ids


def test_mask_tokens_proportions():
    ids = _large_batch()
    inputs, labels = mask_tokens(ids, MASK_ID, VOCAB, mask_prob=0.15, special_ids=SPECIALS, generator=_gen(1))
    selected = labels != IGNORE_INDEX
    assert selected.float().mean().item() == pytest.approx(0.15, abs=0.005)
    n = selected.sum().item()  # about 30,000: a proportion's standard error is below 0.003
    masked = (inputs[selected] == MASK_ID).sum().item() / n
    kept = (inputs[selected] == ids[selected]).sum().item() / n
    replaced = 1 - masked - kept
    # a random replacement can itself be [MASK] or the original id (probability 1/V each): negligible here
    assert masked == pytest.approx(0.8, abs=0.01)
    assert kept == pytest.approx(0.1, abs=0.01)
    assert replaced == pytest.approx(0.1, abs=0.01)
    # random replacements are spread over the whole vocabulary
    random_ids = inputs[selected & (inputs != MASK_ID) & (inputs != ids)]
    assert random_ids.float().mean().item() == pytest.approx((VOCAB - 1) / 2, rel=0.05)


def test_mask_tokens_labels_and_unselected_positions():
    ids = _large_batch(2)
    inputs, labels = mask_tokens(ids, MASK_ID, VOCAB, special_ids=SPECIALS, generator=_gen(3))
    selected = labels != IGNORE_INDEX
    assert torch.equal(labels[selected], ids[selected])  # the label is the original id
    assert torch.equal(inputs[~selected], ids[~selected])  # not selected: untouched
    assert (labels[~selected] == IGNORE_INDEX).all()


def test_mask_tokens_never_selects_specials():
    ids = torch.randint(0, 10, (50, 40), generator=_gen(4))  # many 0, 1, 2 among them
    inputs, labels = mask_tokens(ids, MASK_ID, 10, mask_prob=1.0, special_ids=SPECIALS, generator=_gen(5))
    special = torch.isin(ids, torch.tensor(SPECIALS))
    assert special.any()
    assert (labels[special] == IGNORE_INDEX).all() and torch.equal(inputs[special], ids[special])
    assert (labels[~special] == ids[~special]).all()  # mask_prob = 1: every other position selected


def test_mask_tokens_mask_prob_zero_selects_nothing():
    ids = _large_batch(6)
    inputs, labels = mask_tokens(ids, MASK_ID, VOCAB, mask_prob=0.0, generator=_gen(0))
    assert torch.equal(inputs, ids) and (labels == IGNORE_INDEX).all()


def test_mask_tokens_does_not_modify_input_and_returns_new_tensors():
    ids = _large_batch(7)[:20]
    before = ids.clone()
    inputs, labels = mask_tokens(ids, MASK_ID, VOCAB, mask_prob=0.5, generator=_gen(8))
    assert torch.equal(ids, before)
    assert inputs.data_ptr() != ids.data_ptr() and labels.data_ptr() != ids.data_ptr()
    inputs[0, 0] = 999  # writing into a result leaves the input alone
    assert torch.equal(ids, before)


def test_mask_tokens_same_generator_same_output():
    ids = _large_batch(9)[:50]
    a = mask_tokens(ids, MASK_ID, VOCAB, special_ids=SPECIALS, generator=_gen(10))
    b = mask_tokens(ids, MASK_ID, VOCAB, special_ids=SPECIALS, generator=_gen(10))
    c = mask_tokens(ids, MASK_ID, VOCAB, special_ids=SPECIALS, generator=_gen(11))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_mask_tokens_follows_its_documented_draws():
    """The rule, written independently from mask_draws' numbers: select < p, then action < 0.8 -> [MASK],
    action < 0.9 -> the random id, else unchanged."""
    ids = torch.randint(0, 30, (6, 9), generator=_gen(12))
    select, action, random_ids = mask_draws(ids.shape, 30, generator=_gen(13))
    inputs, labels = mask_tokens(ids, 5, 30, mask_prob=0.4, special_ids=(0, 1), generator=_gen(13))
    for (i, j), original in zip(torch.cartesian_prod(torch.arange(6), torch.arange(9)).tolist(),
                                ids.flatten().tolist(), strict=True):
        chosen = select[i, j] < 0.4 and original not in (0, 1)
        if not chosen:
            expected = original
        elif action[i, j] < 0.8:
            expected = 5
        elif action[i, j] < 0.9:
            expected = random_ids[i, j].item()
        else:
            expected = original
        assert inputs[i, j].item() == expected
        assert labels[i, j].item() == (original if chosen else IGNORE_INDEX)


def test_mask_tokens_keeps_dtype_and_shape():
    ids = torch.randint(4, 20, (3, 7), generator=_gen(14), dtype=torch.int32)
    inputs, labels = mask_tokens(ids, MASK_ID, 20, generator=_gen(15))
    assert inputs.dtype == labels.dtype == torch.int32 and inputs.shape == labels.shape == ids.shape
    one_d = mask_tokens(ids[0].long(), MASK_ID, 20, generator=_gen(15))[0]
    assert one_d.shape == (7,)


def test_mask_tokens_rejects_bad_arguments():
    ids = torch.tensor([[4, 5, 6]])
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="mask_prob"):
            mask_tokens(ids, MASK_ID, 10, mask_prob=bad)
    with pytest.raises(TypeError, match="mask_prob"):
        mask_tokens(ids, MASK_ID, 10, mask_prob=True)
    with pytest.raises(ValueError, match="mask_token_id"):
        mask_tokens(ids, 10, 10)
    with pytest.raises(ValueError, match="input_ids"):
        mask_tokens(ids, MASK_ID, 6)  # id 6 is outside [0, 6)
    with pytest.raises(ValueError, match="vocab_size"):
        mask_tokens(ids, MASK_ID, 0)
    with pytest.raises(TypeError, match="input_ids"):
        mask_tokens(ids.float(), MASK_ID, 10)
    with pytest.raises(TypeError, match="special_ids"):
        mask_tokens(ids, MASK_ID, 10, special_ids=("<pad>",))
    with pytest.raises(TypeError, match="generator"):
        mask_tokens(ids, MASK_ID, 10, generator=0)


# ----------------------------------------------------------------------------------------------------
# Lecture 6: Gaussians on a grid, KL from log-probabilities, forward and reverse fits
# ----------------------------------------------------------------------------------------------------

from utils.losses import (  # noqa: E402
    fit_gaussian_kl,
    kl_divergence_from_logs,
    kl_landscape,
    log_gaussian_on_grid,
)

GRID = torch.linspace(-8, 8, 201, dtype=torch.float64)


def two_peaks(separation: float = 5.0, std: float = 0.6) -> torch.Tensor:
    """log p of ½ N(-s/2, std²) + ½ N(s/2, std²) on GRID."""
    parts = torch.stack([log_gaussian_on_grid(GRID, -separation / 2, std),
                         log_gaussian_on_grid(GRID, separation / 2, std)])
    return torch.logsumexp(parts + math.log(0.5), dim=0)


def moments(log_p: torch.Tensor) -> tuple[float, float]:
    p = log_p.exp()
    mean = (p * GRID).sum()
    return mean.item(), (p * (GRID - mean) ** 2).sum().item()


def test_log_gaussian_on_grid_is_the_normalised_normal_density():
    normal = torch.distributions.Normal(torch.tensor(0.7, dtype=torch.float64),
                                        torch.tensor(1.3, dtype=torch.float64))
    expected = torch.log_softmax(normal.log_prob(GRID), dim=0)  # the density at the grid points, renormalised
    torch.testing.assert_close(log_gaussian_on_grid(GRID, 0.7, 1.3), expected)
    table = log_gaussian_on_grid(GRID, torch.tensor([[0.0], [1.0]], dtype=torch.float64),
                                 torch.tensor([[[0.5]], [[2.0]]], dtype=torch.float64))  # (S=2, M=2, G)
    assert table.shape == (2, 2, 201)
    torch.testing.assert_close(table[1, 0], log_gaussian_on_grid(GRID, 0.0, 2.0))
    with pytest.raises(ValueError, match="std must be > 0"):
        log_gaussian_on_grid(GRID, 0.0, 0.0)
    with pytest.raises(ValueError, match="grid must be 1-D"):
        log_gaussian_on_grid(GRID[None], 0.0, 1.0)


@pytest.mark.parametrize("seed", range(3))
def test_kl_from_logs_equals_kl_divergence_and_pytorch(seed):
    log_p = torch.log_softmax(3 * torch.randn(4, 9, generator=_gen(seed), dtype=torch.float64), dim=-1)
    log_q = torch.log_softmax(3 * torch.randn(4, 9, generator=_gen(seed + 9), dtype=torch.float64), dim=-1)
    got = kl_divergence_from_logs(log_p, log_q)
    torch.testing.assert_close(got, kl_divergence(log_p.exp(), log_q.exp()))
    torch.testing.assert_close(got, F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1))


def test_kl_from_logs_where_p_is_exactly_zero_and_bad_shapes():
    log_p = torch.tensor([0.0, -math.inf])  # p = (1, 0)
    assert kl_divergence_from_logs(log_p, torch.tensor([-1.0, -math.inf])).item() == 1.0  # 0 log 0 = 0
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence_from_logs(torch.zeros(3), torch.zeros(4))


def test_forward_fit_matches_the_mean_and_variance_of_the_target():
    # q ∝ exp(a x + b x²) is an exponential family on the grid: the KL(p‖q) optimum matches E[x] and E[x²]
    log_p = two_peaks()
    fit = fit_gaussian_kl(log_p, GRID, "forward", mean=0.5, std=1.0, steps=400)
    q_mean, q_var = moments(log_gaussian_on_grid(GRID, fit.mean, fit.std))
    p_mean, p_var = moments(log_p)
    assert abs(q_mean - p_mean) < 1e-2 and abs(q_var - p_var) / p_var < 1e-2
    assert abs(p_var - (2.5**2 + 0.6**2)) < 1e-6  # a mixture's variance: spread of the means + each one's
    assert len(fit.path) == 401 and fit.path[0] == (0.5, 1.0) and fit.direction == "forward"


@pytest.mark.parametrize("start, peak", [(0.5, 2.5), (-0.5, -2.5)])
def test_reverse_fit_picks_the_peak_on_its_side_at_kl_log_two(start, peak):
    fit = fit_gaussian_kl(two_peaks(), GRID, "reverse", mean=start, std=1.0, steps=400)
    assert abs(fit.mean - peak) < 1e-2 and abs(fit.std - 0.6) < 1e-2
    # q = one component exactly: KL(q‖½q + ½q') = log 2 when the peaks do not overlap
    assert abs(fit.kl - math.log(2)) < 1e-3


def test_fits_end_at_the_minimum_of_their_landscape():
    log_p = two_peaks()
    means = torch.linspace(-4, 4, 81, dtype=torch.float64)
    stds = torch.linspace(0.3, 4, 75, dtype=torch.float64)
    for direction in ("forward", "reverse"):
        table = kl_landscape(log_p, GRID, means, stds, direction)
        assert table.shape == (75, 81)
        torch.testing.assert_close(table[10, 20], kl_divergence_from_logs(
            *((log_p, log_gaussian_on_grid(GRID, means[20], stds[10])) if direction == "forward"
              else (log_gaussian_on_grid(GRID, means[20], stds[10]), log_p))))
        fit = fit_gaussian_kl(log_p, GRID, direction, mean=0.5, steps=400)
        assert fit.kl <= table.min().item() + 1e-6  # gradient descent finds at least the best grid point
    assert table.min() >= 0


def test_fit_rejects_bad_arguments():
    log_p = two_peaks()
    with pytest.raises(ValueError, match="direction must be 'forward'"):
        fit_gaussian_kl(log_p, GRID, "sideways")
    with pytest.raises(ValueError, match="log-probabilities"):
        fit_gaussian_kl(log_p + 1.0, GRID, "forward")
    with pytest.raises(ValueError, match="same length"):
        fit_gaussian_kl(log_p[:-1], GRID, "forward")
    with pytest.raises(ValueError, match="steps must be >= 1"):
        fit_gaussian_kl(log_p, GRID, "forward", steps=0)
    with pytest.raises(ValueError, match="std must be > 0"):
        fit_gaussian_kl(log_p, GRID, "forward", std=-1.0)
    with pytest.raises(ValueError, match="means must be a non-empty 1-D"):
        kl_landscape(log_p, GRID, torch.zeros(0, dtype=torch.float64), torch.ones(2, dtype=torch.float64),
                     "forward")
