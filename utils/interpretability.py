"""Looking inside a model (Lecture 10, Q50): gradient saliency and the hidden states a linear probe reads.

- **Saliency** (Simonyan et al. 2014): how much a model's decision moves when each input token's embedding
  moves, ``‖∂ score / ∂ e_t‖`` for every position ``t``. Large means the decision leans on that token.
- **Probing** (Alain & Bengio 2017; Conneau et al. 2018): train a linear classifier on a layer's hidden
  states to decode some property (here: is the subject singular or plural?). If it succeeds, the property
  is there, linearly readable, at that layer; if a probe on the raw embeddings fails, the model computed it.

>>> from utils.models import GPTConfig, TinyGPT
>>> model = TinyGPT(GPTConfig(vocab_size=9, block_size=6, d_model=8, n_heads=2, n_layers=2))
>>> states = hidden_states(model, torch.tensor([[1, 2, 3]]))
>>> len(states), tuple(states[0].shape)          # the embeddings and the output of each block
(3, (1, 3, 8))
"""

from __future__ import annotations

import torch

__all__ = ["hidden_states", "token_saliency"]


@torch.no_grad()
def hidden_states(model: torch.nn.Module, ids: torch.Tensor) -> list[torch.Tensor]:
    """The residual stream of a ``TinyGPT`` on ``ids (B, T)``: ``[embeddings, after block 1, ...]``, each
    ``(B, T, C)`` (eval mode, no gradients)."""
    states: list[torch.Tensor] = []
    handles = [model.drop.register_forward_hook(lambda m, i, out: states.append(out))]
    handles += [block.register_forward_hook(lambda m, i, out: states.append(out[0]))  # (x, weights)
                for block in model.blocks]
    was_training = model.training
    model.eval()
    try:
        model(ids)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return states


def token_saliency(model: torch.nn.Module, ids: torch.Tensor, position: int, target: int,
                   other: int) -> torch.Tensor:
    """``‖∂ (logit[target] − logit[other]) / ∂ e_t‖`` at ``position`` for every input token ``t`` of
    ``ids (B, T)``: ``(B, T)``, where ``e_t`` is what the first block reads (token + position embedding).
    The model's parameters and their gradients are left as they were."""
    captured: list[torch.Tensor] = []

    def keep(module, inputs, output):
        captured.append(output)

    handle = model.drop.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            logits = model(ids)  # (B, T, V)
            margin = (logits[:, position, target] - logits[:, position, other]).sum()
            (grad,) = torch.autograd.grad(margin, captured[0])  # (B, T, C)
    finally:
        handle.remove()
        model.train(was_training)
    return grad.norm(dim=-1)  # (B, T)
