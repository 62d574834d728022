"""Lecture 8 models: the sequence classifier, batched log-probabilities (utils.decoding), Bayes' rule.

Oracles: log-probabilities summed by hand from ``log_softmax``; Bayes' rule written with plain
probabilities; the classifier's logits recomputed from the encoder's ``[CLS]`` vector.
"""

import math

import pytest
import torch

from utils.decoding import sequence_log_prob, sequence_log_probs
from utils.models import GPTConfig, SequenceClassifier, TinyEncoder, TinyGPT, class_posterior


def test_sequence_log_probs_is_the_sum_of_token_log_probabilities():
    torch.manual_seed(0)
    model = TinyGPT(GPTConfig(vocab_size=7, block_size=6, d_model=8, n_heads=2, n_layers=1))
    inputs = torch.tensor([[1, 3, 4, 5], [1, 2, 2, 6]])
    targets = torch.tensor([[3, 4, 5, -100], [-100, 2, 6, 0]])
    got = sequence_log_probs(model, inputs, targets)
    log_probs = torch.log_softmax(model(inputs), dim=-1)
    by_hand = [sum(log_probs[b, t, targets[b, t]].item() for t in range(4) if targets[b, t] >= 0)
               for b in range(2)]
    torch.testing.assert_close(got, torch.tensor(by_hand))
    # the one-call-per-token scorer of utils.decoding agrees, row by row
    one_by_one = sequence_log_prob(model, inputs[:1, :1], torch.tensor([3, 4, 5]))
    assert got[0].item() == pytest.approx(one_by_one, abs=1e-5)
    model.train()
    sequence_log_probs(model, inputs, targets)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="both be"):
        sequence_log_probs(model, inputs, targets[:, :3])


def test_class_posterior_is_bayes_rule():
    likelihoods = torch.tensor([[0.02, 0.06], [0.5, 0.1]])
    prior = torch.tensor([0.7, 0.3])
    posterior = class_posterior(likelihoods.log(), prior.log()).exp()
    joint = likelihoods * prior
    torch.testing.assert_close(posterior, joint / joint.sum(dim=1, keepdim=True))
    uniform = class_posterior(likelihoods.log()).exp()
    torch.testing.assert_close(uniform, likelihoods / likelihoods.sum(dim=1, keepdim=True))
    # very unlikely sequences (log p = -1000) do not underflow
    tiny = class_posterior(torch.tensor([[-1000.0, -1000.0 + math.log(3)]], dtype=torch.float64)).exp()
    torch.testing.assert_close(tiny, torch.tensor([[0.25, 0.75]], dtype=torch.float64))
    with pytest.raises(ValueError, match="one entry per class"):
        class_posterior(likelihoods.log(), torch.zeros(3))


def test_sequence_classifier_reads_position_zero():
    torch.manual_seed(1)
    encoder = TinyEncoder(GPTConfig(vocab_size=9, block_size=8, d_model=8, n_heads=2, n_layers=1))
    classifier = SequenceClassifier(encoder, n_classes=3)
    ids = torch.tensor([[1, 4, 5, 6], [1, 6, 5, 4]])
    logits = classifier(ids)
    torch.testing.assert_close(logits, classifier.classifier(encoder.encode(ids)[:, 0]))
    assert logits.shape == (2, 3)
    with pytest.raises(TypeError, match="TinyEncoder"):
        SequenceClassifier(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="n_classes"):
        SequenceClassifier(encoder, n_classes=0)
