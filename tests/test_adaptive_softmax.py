"""utils.adaptive_softmax: AdaptiveSoftmax against torch.nn.AdaptiveLogSoftmaxWithLoss (the oracle), both
directions of load_state_dict, the cluster arithmetic by hand, the cost formula, bad input."""

import pytest
import torch
import torch.nn as nn

from utils.adaptive_softmax import AdaptiveSoftmax, cluster_log_probs, cluster_shares, multiply_adds_per_token

CASES = [(16, 100, [10, 50], 4.0), (32, 1000, [50, 200, 600], 2.0), (8, 20, [5], 1.0),
         (24, 300, [100, 299], 3.5)]


def pair(in_features, n_classes, cutoffs, div_value, ours_first: bool):
    torch.manual_seed(0)
    ours = AdaptiveSoftmax(in_features, n_classes, cutoffs, div_value=div_value)
    ref = nn.AdaptiveLogSoftmaxWithLoss(in_features, n_classes, cutoffs, div_value=div_value)
    if ours_first:
        ref.load_state_dict(ours.state_dict())
    else:
        ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("ours_first", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_equals_pytorch_given_the_same_weights(case, ours_first):
    ours, ref = pair(*case, ours_first=ours_first)
    shapes = [(n, p.shape) for n, p in ours.named_parameters()]
    assert shapes == [(n, p.shape) for n, p in ref.named_parameters()]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, case[0], generator=g)
    target = torch.randint(case[1], (64,), generator=g)
    target[:3] = torch.tensor([0, case[2][0], case[1] - 1])  # the shortlist, a first cluster word, the last
    got_lp, got_loss = ours(x, target)
    expected = ref(x, target)
    torch.testing.assert_close(got_lp, expected.output)
    torch.testing.assert_close(got_loss, expected.loss)
    torch.testing.assert_close(ours.log_prob(x), ref.log_prob(x))
    got_loss.backward()
    expected.loss.backward()
    for (name, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_log_prob_is_a_distribution_and_forward_picks_from_it():
    asm = AdaptiveSoftmax(12, 500, [20, 100])
    x = torch.randn(7, 12)
    lp = asm.log_prob(x)
    torch.testing.assert_close(lp.exp().sum(dim=1), torch.ones(7), rtol=0, atol=1e-5)
    target = torch.tensor([0, 19, 20, 99, 100, 499, 250])
    target_lp, loss = asm(x, target)
    torch.testing.assert_close(target_lp, lp.gather(1, target[:, None])[:, 0])
    torch.testing.assert_close(loss, -target_lp.mean())


def test_tails_run_only_on_their_tokens():
    asm = AdaptiveSoftmax(8, 50, [10, 30], div_value=2.0)
    calls = []
    for i, tail in enumerate(asm.tail):
        tail.register_forward_hook(lambda m, inp, out, i=i: calls.append((i, inp[0].shape[0])))
    asm(torch.randn(5, 8), torch.tensor([0, 1, 2, 15, 3]))  # one token in cluster 0, none in cluster 1
    assert calls == [(0, 1)]


def test_cluster_log_probs_by_hand():
    head = torch.log(torch.tensor([[0.6, 0.1, 0.3]]))
    tail = torch.tensor([[0.0, 0.0, 0.0]])  # uniform over 3 words
    torch.testing.assert_close(cluster_log_probs(head, tail, 2).exp(), torch.full((1, 3), 0.1))
    with pytest.raises(ValueError, match="cluster_index"):
        cluster_log_probs(head, tail, 3)
    with pytest.raises(ValueError, match="same N"):
        cluster_log_probs(head, torch.zeros(2, 3), 2)


def test_cost_formula_and_shares():
    counts = torch.tensor([4.0, 3.0, 2.0, 1.0])
    torch.testing.assert_close(cluster_shares(counts, [2]), torch.tensor([0.7, 0.3]))
    assert multiply_adds_per_token(10, 4) == 40.0
    # head: 10 x (2 + 1); the tail (hidden 10 // 2 = 5): 0.3 x (10 x 5 + 5 x 2)
    cost = multiply_adds_per_token(10, 4, [2], div_value=2.0, shares=[0.7, 0.3])
    assert cost == pytest.approx(30 + 0.3 * 60)
    with pytest.raises(ValueError, match="shares"):
        multiply_adds_per_token(10, 4, [2], shares=[1.0])


@pytest.mark.parametrize("cutoffs, match", [([50, 10], "increasing"), ([10, 10], "increasing"),
                                            ([10, 100], "between 1 and n_classes - 1"),
                                            ([0, 10], "between 1"), ([], "at least one")])
def test_bad_cutoffs(cutoffs, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveSoftmax(8, 100, cutoffs)


def test_bad_arguments():
    with pytest.raises(TypeError, match="cutoffs"):
        AdaptiveSoftmax(8, 100, 10)
    with pytest.raises(TypeError, match="cutoffs"):
        AdaptiveSoftmax(8, 100, [10.5])
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="div_value"):
            AdaptiveSoftmax(8, 100, [10], div_value=bad)
    with pytest.raises(ValueError, match="in_features"):
        AdaptiveSoftmax(0, 100, [10])
    asm = AdaptiveSoftmax(8, 100, [10])
    with pytest.raises(ValueError, match="target must hold class ids"):
        asm(torch.randn(2, 8), torch.tensor([0, 100]))
    with pytest.raises(ValueError, match="shape"):
        asm(torch.randn(2, 7), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="LongTensor"):
        asm(torch.randn(2, 8), torch.tensor([0.0, 1.0]))


def test_inputs_are_not_modified():
    asm = AdaptiveSoftmax(8, 40, [10, 20], div_value=2.0)
    x, target = torch.randn(6, 8), torch.tensor([0, 12, 25, 39, 5, 11])
    x0, t0 = x.clone(), target.clone()
    asm(x, target)
    asm.log_prob(x)
    assert torch.equal(x, x0) and torch.equal(target, t0)
