"""Next sentence prediction (Lecture 3, Q11): BERT's sentence-pair classifier trained on tiny-world stories.

The data are ``utils.data.nsp_pairs``: a story's first sentence A with its own second sentence (IsNext) or a
random one (NotNext), built so that B alone says nothing: only the *relation* of A and B does (same object).
A task that needs a comparison starts with a flat stretch: the held-out accuracy stays at chance until
the ``[CLS]`` attention finds the two objects, and how long that takes depends on the random start and on
the rounding of the CPU (from a few dozen to about 150 steps of 256 pairs, in our trials over many seeds and
two kernel paths). To leave room for the longest stretches and still finish, the recipe takes 600 steps:
longer than a notebook should spend, so the course ships the trained model as a checkpoint made by this
module's script (``python -m utils.nsp``, or ``make course-nsp``) and ``nsp_classifier()`` loads it.

The held-out first sentences are a fixed fifth of the tiny world (``nsp_held_out_sentences``), not a random
draw, so that any test pairs built from them, under any seed, are new to the shipped model.

>>> tokenizer = nsp_tokenizer()
>>> ids, labels = encode_nsp_pairs([("the cat ate the fish in the kitchen .",
...                                  "the dog ate the fish in the kitchen .", 1)], tokenizer)
>>> tuple(ids.shape), labels.tolist(), tokenizer.id_to_token[ids[0, 0]], tokenizer.id_to_token[ids[0, 10]]
((1, 21), [1], '[CLS]', '[SEP]')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ._checkpoint import cpu_state_dict, read_checkpoint, write_checkpoint
from ._validation import check_positive_int
from .data import NSP_SPECIALS, all_tiny_world_sentences, nsp_input, nsp_pairs, tiny_world_vocabulary
from .models import GPTConfig, SentencePairClassifier, TinyEncoder
from .tokenization import WordTokenizer
from .training import History, batch_sampler, train

__all__ = ["NSP_CONFIG", "NSP_STEPS", "NSP_WARMUP", "NSP_DECAY", "NSP_BATCH", "NSP_LR", "NSP_SEED",
           "NSP_CHECKPOINT", "nsp_tokenizer", "encode_nsp_pairs", "nsp_held_out_sentences", "nsp_datasets",
           "nsp_lr_multiplier", "NSPClassifier", "train_nsp_classifier", "save_nsp_classifier",
           "nsp_classifier"]

NSP_CONFIG = {"block_size": 21, "d_model": 32, "n_heads": 4, "n_layers": 1}  # [CLS] 9 [SEP] 9 [SEP]
NSP_STEPS, NSP_WARMUP, NSP_DECAY, NSP_BATCH, NSP_LR, NSP_SEED = 600, 60, 240, 256, 5e-3, 11
NSP_CURVE_PAIRS, NSP_EVAL_EVERY = 256, 20  # the learning curve: accuracy on 256 held-out pairs
NSP_CHECKPOINT = Path(__file__).parent / "checkpoints" / "nsp.pt"


def nsp_tokenizer() -> WordTokenizer:
    """The tiny world's words after ``<pad> <bos> <unk>`` and BERT's ``[CLS]`` and ``[SEP]``."""
    return WordTokenizer(tiny_world_vocabulary(), specials=("<pad>", "<bos>", "<unk>", *NSP_SPECIALS))


def encode_nsp_pairs(pairs: Sequence[tuple[str, str, int]],
                     tokenizer: WordTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids (N, T), labels (N,))``: ``[CLS] A [SEP] B [SEP]`` looked up word by word (``nsp_input``), and
    the labels (1 = IsNext). Two tiny-world sentences give T = 21; the rows of one batch must be as long."""
    if not pairs:
        raise ValueError("pairs must hold at least one (A, B, label) triple")
    ids = [[tokenizer.token_to_id[w] for w in nsp_input(a, b)[0]] for a, b, _ in pairs]
    if len({len(row) for row in ids}) != 1:
        raise ValueError("every pair must give the same number of tokens (tiny-world sentences do)")
    return torch.tensor(ids), torch.tensor([int(label) for *_, label in pairs])


def nsp_held_out_sentences() -> list[str]:
    """The first sentences kept out of training: every fifth of the sentences about each object (fixed, so
    the shipped model's held-out set does not depend on any seed; per object, so that every object has
    some).

    >>> held_out = nsp_held_out_sentences()
    >>> len(held_out), len({s.split()[4] for s in held_out})  # 54 of 240 sentences, all 14 objects
    (54, 14)
    """
    by_object: dict[str, list[str]] = {}
    for sentence in all_tiny_world_sentences():
        by_object.setdefault(sentence.split()[4], []).append(sentence)  # "the agent verb the OBJECT ..."
    return [sentence for group in by_object.values() for sentence in group[::5]]


def nsp_datasets(n_train: int = 8000, n_test: int = 5000,
                 seed: int = NSP_SEED) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """``(train_pairs, test_pairs)``: ``nsp_pairs(n_train, seed)`` without the held-out first sentences,
    and ``nsp_pairs(n_test, seed + 1)`` with only them (about 78 % and 22 % of the draws)."""
    check_positive_int("n_train", n_train)
    check_positive_int("n_test", n_test)
    held_out = set(nsp_held_out_sentences())
    train_pairs = [p for p in nsp_pairs(n_train, seed=seed) if p[0] not in held_out]
    test_pairs = [p for p in nsp_pairs(n_test, seed=seed + 1) if p[0] in held_out]
    return train_pairs, test_pairs


def nsp_lr_multiplier(step: int, steps: int = NSP_STEPS, warmup: int = NSP_WARMUP,
                      decay: int = NSP_DECAY) -> float:
    """The learning rate after ``step`` optimizer steps, as a fraction of the peak: BERT's linear warm-up
    and linear decay to zero (Devlin et al. 2019, appendix A.2), with the peak held in between ("warm-up,
    stable, decay"), so that the flat start is crossed at the full rate.

    >>> [round(nsp_lr_multiplier(s, steps=10, warmup=2, decay=4), 2) for s in range(10)]
    [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
    """
    return min((step + 1) / warmup, 1.0, (steps - step) / decay)


@dataclass
class NSPClassifier:
    """The Q11 model (a ``SentencePairClassifier`` over a one-layer ``TinyEncoder``), its tokenizer and
    the history of its training (losses every step, held-out accuracy every ``NSP_EVAL_EVERY`` steps)."""

    model: SentencePairClassifier
    tokenizer: WordTokenizer
    history: History


@torch.no_grad()
def _accuracy(model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor) -> float:
    return (model(ids).argmax(dim=-1).cpu() == labels.cpu()).float().mean().item()


def train_nsp_classifier(steps: int = NSP_STEPS, seed: int = NSP_SEED, progress: bool = True,
                         device: torch.device | str = "cpu") -> NSPClassifier:
    """Train the classifier from scratch: ``NSP_CONFIG`` initialised from ``seed``, AdamW at ``NSP_LR``
    with ``nsp_lr_multiplier``, ``steps`` batches of ``NSP_BATCH`` training pairs (``nsp_datasets(seed)``)
    drawn with one seeded generator. With the default steps it classifies more than 90 % of the held-out
    pairs right (the best possible is 96 %); the tests check that.
    """
    check_positive_int("steps", steps)
    tokenizer = nsp_tokenizer()
    train_pairs, test_pairs = nsp_datasets(seed=seed)
    train_ids, train_labels = encode_nsp_pairs(train_pairs, tokenizer)
    test_ids, test_labels = encode_nsp_pairs(test_pairs, tokenizer)
    curve_ids, curve_labels = test_ids[:NSP_CURVE_PAIRS].to(device), test_labels[:NSP_CURVE_PAIRS]
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **NSP_CONFIG)
    sep_id = tokenizer.token_to_id["[SEP]"]
    model = SentencePairClassifier(TinyEncoder(config, n_segments=2), sep_id=sep_id).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=NSP_LR)
    decay = min(NSP_DECAY, steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: nsp_lr_multiplier(s, steps, min(NSP_WARMUP, steps), decay))
    optimizer.register_step_post_hook(lambda *_: schedule.step())  # `train` steps; the hook moves the rate
    batches = batch_sampler(train_ids, train_labels, batch_size=NSP_BATCH, device=device,
                            generator=torch.Generator().manual_seed(seed))
    history = train(model, batches, steps=steps, lr=NSP_LR, loss_fn=F.cross_entropy, optimizer=optimizer,
                    eval_fn=lambda: _accuracy(model, curve_ids, curve_labels), eval_every=NSP_EVAL_EVERY,
                    progress=progress, desc="next sentence prediction")
    return NSPClassifier(model.eval(), tokenizer, history)


def save_nsp_classifier(trained: NSPClassifier, path: str | Path = NSP_CHECKPOINT) -> Path:
    """Write the model as plain tensors and numbers (``torch.load(path, weights_only=True)`` reads it)."""
    config = trained.model.encoder.config
    h = trained.history
    return write_checkpoint({
        "config": asdict(config),
        "vocabulary": trained.tokenizer.id_to_token,
        "sep_id": trained.model.sep_id,
        "state_dict": cpu_state_dict(trained.model),
        "history": {"steps": h.steps, "losses": h.losses, "eval_steps": h.eval_steps, "evals": h.evals},
        "held_out": nsp_held_out_sentences(),
    }, path)


def nsp_classifier(device: torch.device | str = "cpu", path: str | Path = NSP_CHECKPOINT) -> NSPClassifier:
    """The Q11 model, loaded from the checkpoint the course ships (see ``train_nsp_classifier``).

    >>> shipped = nsp_classifier()
    >>> ids, _ = encode_nsp_pairs([("the cat chased the ball around the tree .",
    ...                             "the boy found the ball under the bed .", 1),
    ...                            ("the cat chased the ball around the tree .",
    ...                             "the owl ate the fish in the kitchen .", 0)], shipped.tokenizer)
    >>> shipped.model(ids).argmax(dim=-1).tolist()  # same object: IsNext; another object: NotNext
    [1, 0]
    """
    payload = read_checkpoint(path, what="next-sentence classifier", module="utils.nsp", target="course-nsp")
    tokenizer = nsp_tokenizer()
    if payload["vocabulary"] != tokenizer.id_to_token or payload["held_out"] != nsp_held_out_sentences():
        raise ValueError(f"{path} was made with another vocabulary or held-out set: "
                         "re-run `python -m utils.nsp`")
    encoder = TinyEncoder(GPTConfig(**payload["config"]), n_segments=2)
    model = SentencePairClassifier(encoder, sep_id=payload["sep_id"])
    model.load_state_dict(payload["state_dict"])
    return NSPClassifier(model.to(device).eval(), tokenizer, History(**payload["history"]))


if __name__ == "__main__":  # python -m utils.nsp: (re)make the shipped checkpoint, on the CPU
    import time

    torch.set_num_threads(1)  # one thread, as the tests run the recipe: the same rounding, the same model
    begin = time.perf_counter()
    made = train_nsp_classifier()
    where = save_nsp_classifier(made)
    test_ids, test_labels = encode_nsp_pairs(nsp_datasets()[1], made.tokenizer)
    accuracy = _accuracy(made.model, test_ids, test_labels)
    print(f"trained in {time.perf_counter() - begin:.0f} s; held-out accuracy {accuracy:.3f}; "
          f"wrote {where} ({where.stat().st_size / 1e3:.0f} kB)")
