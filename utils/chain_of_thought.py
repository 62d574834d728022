"""Chain-of-thought (Lecture 8, Q38): the same tiny model trained to answer at once or to show its work.

The task is ``utils.data.ChainProblem``: a start digit and four operations applied left to right, every
result kept to its last digit (``3 + 4 * 2 - 5 + 1``: 7, 4, 9, 0). Answering at once asks one forward
pass of a two-layer transformer to compose four operations; writing the intermediate results first (a
*scratchpad*, Nye et al. 2021; chain-of-thought prompting, Wei et al. 2022, is the same idea asked of a
model by its prompt) turns the problem into four one-step problems, each reading the previous result
the model has just written.

Both models are trained with one recipe (``train_chain_models``): the same problems, initialisation,
batches, steps and learning rate; only the text they learn to write differs. Training to convergence
takes longer than a notebook can spend, so the course ships them as a checkpoint made by this module's
script (``python -m utils.chain_of_thought``, or ``make course-cot``) and ``chain_models()`` loads it.

>>> from utils.data import ChainProblem
>>> tokenizer = chain_tokenizer()
>>> inputs, targets = encode_chains([ChainProblem(3, (("+", 4), ("*", 2)))], tokenizer, scratchpad=True)
>>> [tokenizer.id_to_token[i] for i in inputs[0].tolist()]
['<bos>', '3', '+', '4', '*', '2', '=', '7', '4', ';', '4']
>>> [tokenizer.id_to_token[i] if i >= 0 else "·" for i in targets[0].tolist()]   # only the answer is learned
['·', '·', '·', '·', '·', '·', '7', '4', ';', '4', '.']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ._checkpoint import cpu_state_dict, loss_history, read_checkpoint, write_checkpoint
from ._validation import check_positive_int
from .data import ChainProblem, arithmetic_chains, chain_vocabulary
from .models import GPTConfig, TinyGPT
from .tokenization import WordTokenizer
from .training import IGNORE_INDEX, History, batch_sampler, train

__all__ = ["CHAIN_N_OPERATIONS", "chain_tokenizer", "encode_chains", "solve_chains", "parse_answer",
           "ChainModels", "train_chain_models", "save_chain_models", "chain_models", "COT_CHECKPOINT"]

CHAIN_N_OPERATIONS = 4  # four steps: the direct model stays near chance, the scratchpad model is exact
COT_CONFIG = {"block_size": 17, "d_model": 32, "n_heads": 4, "n_layers": 2}
COT_STEPS, COT_BATCH, COT_LR, COT_PROBLEMS = 800, 64, 5e-3, 20_000
COT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "chain_of_thought.pt"


def chain_tokenizer() -> WordTokenizer:
    """One token per digit, operation and mark (``utils.data.chain_vocabulary``), after the specials."""
    return WordTokenizer(chain_vocabulary())


def encode_chains(problems: Sequence[ChainProblem], tokenizer: WordTokenizer,
                  scratchpad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)``, both ``(N, T)``: ``<bos>`` + the problem's text, and the next tokens, with
    ``-100`` on the question (it is given, not learned) and on padding. All problems of one length give
    rows of one length; shorter rows are padded."""
    if not problems:
        raise ValueError("problems must hold at least one ChainProblem")
    rows = []
    for p in problems:
        if not isinstance(p, ChainProblem):
            raise TypeError(f"problems must be ChainProblems, got {type(p).__name__}")
        ids = [tokenizer.bos_id] + tokenizer.encode(p.text(scratchpad))
        given = 1 + len(p.question.split())  # <bos> and the question up to "="
        rows.append((ids[:-1], [IGNORE_INDEX] * (given - 1) + ids[given:]))
    width = max(len(x) for x, _ in rows)
    inputs = torch.tensor([x + [tokenizer.pad_id] * (width - len(x)) for x, _ in rows])
    targets = torch.tensor([y + [IGNORE_INDEX] * (width - len(y)) for _, y in rows])
    return inputs, targets


@torch.no_grad()
def solve_chains(model: TinyGPT, tokenizer: WordTokenizer, problems: Sequence[ChainProblem],
                 max_new_tokens: int = CHAIN_N_OPERATIONS + 3) -> list[str]:
    """What ``model`` writes after each problem's ``=``, greedily, up to and including the first ``.``
    (or ``max_new_tokens`` tokens). Problems of one length are decoded together, one batch per step."""
    check_positive_int("max_new_tokens", max_new_tokens)
    device = next(model.parameters()).device
    end = tokenizer.token_to_id["."]
    was_training = model.training
    model.eval()
    results: dict[int, str] = {}
    try:
        by_length: dict[int, list[int]] = {}
        for i, p in enumerate(problems):
            by_length.setdefault(len(p.operations), []).append(i)
        for rows in by_length.values():
            x = torch.tensor([[tokenizer.bos_id] + tokenizer.encode(problems[i].question) for i in rows],
                             device=device)  # (B, T): every question of this length has T tokens
            start = x.shape[1]
            for _ in range(max_new_tokens):
                if x.shape[1] >= model.config.block_size + 1:
                    break
                next_id = model(x)[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
                x = torch.cat([x, next_id], dim=1)
                if (x[:, start:] == end).any(dim=1).all():
                    break
            for row, i in enumerate(rows):
                written = x[row, start:].tolist()
                written = written[: written.index(end) + 1] if end in written else written
                results[i] = tokenizer.decode(written)
    finally:
        model.train(was_training)
    return [results[i] for i in range(len(problems))]


def parse_answer(written: str) -> int | None:
    """The final answer in what a model wrote: the digit before the closing ``.`` (after ``;`` when there
    is a scratchpad), or ``None`` when it is not there.

    >>> parse_answer("7 4 ; 4 ."), parse_answer("4 ."), parse_answer("7 4 ;")
    (4, 4, None)
    """
    words = written.split()
    if len(words) < 2 or words[-1] != "." or not words[-2].isdigit() or len(words[-2]) != 1:
        return None
    if len(words) > 2 and words[-3] != ";":
        return None
    return int(words[-2])


@dataclass
class ChainModels:
    """The two models of Q38 (same recipe, same budget) and their tokenizer and training losses."""

    direct: TinyGPT
    scratchpad: TinyGPT
    tokenizer: WordTokenizer
    histories: dict[str, History]


def train_chain_models(steps: int = COT_STEPS, seed: int = 0, progress: bool = True,
                       device: torch.device | str = "cpu") -> ChainModels:
    """Train both models from scratch, with one recipe: ``COT_PROBLEMS`` problems of
    ``CHAIN_N_OPERATIONS`` steps (``arithmetic_chains(..., seed=seed)``), a ``TinyGPT`` of
    ``COT_CONFIG`` initialised from ``seed``, ``steps`` AdamW steps of ``COT_BATCH`` problems drawn with
    one seeded generator. The only difference: the direct model learns ``"= 4 ."``, the scratchpad model
    ``"= 7 4 9 0 ; 0 ."`` (the loss counts every token after ``=``).

    With the default steps the scratchpad model solves more than 95 % of new problems and the direct
    one fewer than 30 % (the most frequent answer alone gets about 15 %): the tests check both.
    """
    check_positive_int("steps", steps)
    tokenizer = chain_tokenizer()
    problems = arithmetic_chains(COT_PROBLEMS, CHAIN_N_OPERATIONS, seed=seed)
    models, histories = {}, {}
    for name, scratchpad in (("direct", False), ("scratchpad", True)):
        inputs, targets = encode_chains(problems, tokenizer, scratchpad)
        torch.manual_seed(seed)
        model = TinyGPT(GPTConfig(vocab_size=tokenizer.vocab_size, **COT_CONFIG)).to(device)
        batches = batch_sampler(inputs, targets, batch_size=COT_BATCH, device=device,
                                generator=torch.Generator().manual_seed(seed))
        histories[name] = train(model, batches, steps=steps, lr=COT_LR, progress=progress,
                                desc=f"training: {name}")
        models[name] = model
    return ChainModels(models["direct"], models["scratchpad"], tokenizer, histories)


def save_chain_models(trained: ChainModels, path: str | Path = COT_CHECKPOINT) -> Path:
    """Write both models as plain tensors and numbers (``torch.load(path, weights_only=True)`` reads it)."""
    config = trained.direct.config
    return write_checkpoint({
        "config": asdict(config),
        "vocabulary": trained.tokenizer.id_to_token,
        "state_dicts": {name: cpu_state_dict(getattr(trained, name)) for name in ("direct", "scratchpad")},
        "losses": {name: h.losses for name, h in trained.histories.items()},
    }, path)


def chain_models(device: torch.device | str = "cpu", path: str | Path = COT_CHECKPOINT) -> ChainModels:
    """The two Q38 models, loaded from the checkpoint the course ships (see ``train_chain_models``).

    >>> trained = chain_models()
    >>> from utils.data import ChainProblem
    >>> problem = ChainProblem.parse("3 + 4 * 2 - 5 + 1")
    >>> solve_chains(trained.scratchpad, trained.tokenizer, [problem])
    ['7 4 9 0 ; 0 .']
    """
    payload = read_checkpoint(path, what="chain-of-thought models", module="utils.chain_of_thought",
                              target="course-cot")
    tokenizer = chain_tokenizer()
    if payload["vocabulary"] != tokenizer.id_to_token:
        raise ValueError(f"{path} was made with another vocabulary: "
                         "re-run `python -m utils.chain_of_thought`")
    models = {}
    for name, state in payload["state_dicts"].items():
        model = TinyGPT(GPTConfig(**payload["config"]))
        model.load_state_dict(state)
        models[name] = model.to(device).eval()
    histories = {name: loss_history(losses) for name, losses in payload["losses"].items()}
    return ChainModels(models["direct"], models["scratchpad"], tokenizer, histories)


if __name__ == "__main__":  # python -m utils.chain_of_thought: (re)make the shipped checkpoint, on the CPU
    import time

    torch.set_num_threads(1)  # one thread, as the tests run the recipe: the same rounding, the same model
    begin = time.perf_counter()
    made = train_chain_models()
    where = save_chain_models(made)
    print(f"trained in {time.perf_counter() - begin:.0f} s; final losses "
          f"{ {k: round(h.final_loss, 4) for k, h in made.histories.items()} }; "
          f"wrote {where} ({where.stat().st_size / 1e6:.2f} MB)")
