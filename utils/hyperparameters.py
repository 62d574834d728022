"""Hyperparameters (Lecture 10, Q48): the settings chosen before training, and a sweep over three of them.

One recipe, the small language model of Q47: a ``TinyGPT`` (``d_model`` 32, 4 heads) that learns the
agreement sentences of ``utils.data.agreement_sentences`` (the verb agrees with a subject seven words back),
trained with ``utils.training.train`` (AdamW, gradients clipped to norm 1). ``sweep_run`` trains it once
for a learning rate, a batch size and a depth and records the training loss at every step and the held-out
loss every ``SWEEP_EVAL_EVERY`` steps.

The whole grid (9 learning rates x 3 batch sizes x 3 depths = 81 runs) takes several minutes of CPU, more
than a notebook can spend, so the course ships its result as a small JSON file made by this module's
script, deterministically (``python -m utils.hyperparameters``, or ``make course-sweep``), and
``load_sweep()`` reads it. The notebook re-runs a cheap slice of it live and checks that it agrees.

>>> data = agreement_lm_data(n_train=64, n_val=16)
>>> run = sweep_run(1e-2, batch_size=8, n_layers=1, steps=3, data=data)
>>> len(run["train_losses"]), run["val_steps"]
(3, [3])
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ._validation import check_positive_int
from .data import agreement_sentences, agreement_vocabulary
from .models import GPTConfig, TinyGPT
from .tokenization import WordTokenizer
from .training import batch_sampler, train

__all__ = ["SWEEP_LRS", "SWEEP_BATCH_SIZES", "SWEEP_DEPTHS", "SWEEP_STEPS", "SWEEP_EVAL_EVERY", "SWEEP_FILE",
           "AgreementData", "agreement_lm_data", "agreement_lm", "sweep_run", "run_sweep", "save_sweep",
           "load_sweep", "sweep_curve"]

SWEEP_LRS: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
SWEEP_BATCH_SIZES: tuple[int, ...] = (8, 32, 128)
SWEEP_DEPTHS: tuple[int, ...] = (1, 2, 4)
SWEEP_STEPS, SWEEP_EVAL_EVERY = 150, 10
SWEEP_FILE = Path(__file__).parent / "checkpoints" / "hyperparameter_sweep.json"
END = "</s>"  # the end-of-sentence token the model learns to write, as the n-gram models of Q47 do


@dataclass
class AgreementData:
    """The agreement sentences as next-token examples: ``<bos> w1 .. w11`` -> ``w1 .. w11 </s>``."""

    tokenizer: WordTokenizer
    train: tuple[torch.Tensor, torch.Tensor]  # (N, 12) inputs and targets
    val: tuple[torch.Tensor, torch.Tensor]

    def encode(self, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)`` ``(N, 12)`` of ``sentences``."""
        tok = self.tokenizer
        rows = torch.tensor([[tok.bos_id, *tok.encode(s), tok.token_to_id[END]] for s in sentences])
        return rows[:, :-1], rows[:, 1:]


def agreement_lm_data(n_train: int = 2000, n_val: int = 256, seed: int = 0) -> AgreementData:
    """Training sentences drawn with ``seed``, held-out ones with ``seed + 1000``, encoded word by word."""
    check_positive_int("n_train", n_train)
    check_positive_int("n_val", n_val)
    tokenizer = WordTokenizer(agreement_vocabulary(), specials=("<pad>", "<bos>", "<unk>", END))
    data = AgreementData(tokenizer, (torch.empty(0), torch.empty(0)), (torch.empty(0), torch.empty(0)))
    data.train = data.encode(agreement_sentences(n_train, seed=seed))
    data.val = data.encode(agreement_sentences(n_val, seed=seed + 1000))
    return data


def agreement_lm(vocab_size: int, n_layers: int = 2, d_model: int = 32, seed: int = 0) -> TinyGPT:
    """The recipe's model: a ``TinyGPT`` with a 12-token window, ``d_model`` / 8 heads, seeded."""
    torch.manual_seed(seed)
    return TinyGPT(GPTConfig(vocab_size=vocab_size, block_size=12, d_model=d_model,
                             n_heads=max(1, d_model // 8), n_layers=n_layers))


def sweep_run(lr: float, batch_size: int, n_layers: int, steps: int = SWEEP_STEPS, seed: int = 0,
              data: AgreementData | None = None, eval_every: int = SWEEP_EVAL_EVERY) -> dict:
    """Train the recipe once; returns ``{"lr", "batch_size", "n_layers", "train_losses" (one per step),
    "val_steps", "val_losses"}`` (held-out mean cross-entropy in nats per token). A loss that is not a
    finite number (the run diverged) is recorded as ``None``."""
    data = agreement_lm_data(seed=seed) if data is None else data
    model = agreement_lm(data.tokenizer.vocab_size, n_layers=n_layers, seed=seed)
    batches = batch_sampler(*data.train, batch_size=batch_size, generator=torch.Generator().manual_seed(seed))
    history = train(model, batches, steps=steps, lr=lr, eval_every=eval_every, val_data=data.val,
                    progress=False)
    finite = [v if math.isfinite(v) else None for v in history.losses]
    return {"lr": lr, "batch_size": batch_size, "n_layers": n_layers, "train_losses": finite,
            "val_steps": history.val_steps,
            "val_losses": [v if math.isfinite(v) else None for v in history.val_losses]}


def run_sweep(lrs=SWEEP_LRS, batch_sizes=SWEEP_BATCH_SIZES, depths=SWEEP_DEPTHS, steps: int = SWEEP_STEPS,
              seed: int = 0, progress: bool = True) -> dict:
    """Every combination, one ``sweep_run`` each, all on the same data and the same seed."""
    from tqdm.auto import tqdm  # noqa: PLC0415

    data = agreement_lm_data(seed=seed)
    grid = [(lr, b, d) for d in depths for b in batch_sizes for lr in lrs]
    runs = [sweep_run(lr, b, d, steps=steps, seed=seed, data=data)
            for lr, b, d in tqdm(grid, desc="hyperparameter sweep", disable=not progress)]
    return {"steps": steps, "seed": seed, "eval_every": SWEEP_EVAL_EVERY, "lrs": list(lrs),
            "batch_sizes": list(batch_sizes), "depths": list(depths), "torch_version": str(torch.__version__),
            "runs": runs}


def save_sweep(sweep: dict, path: str | Path = SWEEP_FILE) -> Path:
    """Write ``sweep`` as JSON (losses rounded to 5 decimals: the file stays small)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    def rounded(values: list) -> list:
        return [None if v is None else round(v, 5) for v in values]

    runs = [{k: rounded(v) if k.endswith("losses") else v for k, v in run.items()} for run in sweep["runs"]]
    rounded_sweep = {**sweep, "runs": runs}
    path.write_text(json.dumps(rounded_sweep, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def load_sweep(path: str | Path = SWEEP_FILE) -> dict:
    """The shipped sweep (made by ``python -m utils.hyperparameters``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no sweep at {path}: run `python -m utils.hyperparameters` "
                                "(or `make course-sweep`) to make it")
    return json.loads(path.read_text(encoding="utf-8"))


def sweep_curve(sweep: dict, lr: float, batch_size: int, n_layers: int) -> dict:
    """The run of ``sweep`` with these settings (``KeyError`` if the grid does not hold it)."""
    for run in sweep["runs"]:
        if math.isclose(run["lr"], lr) and run["batch_size"] == batch_size and run["n_layers"] == n_layers:
            return run
    raise KeyError(f"no run with lr={lr}, batch_size={batch_size}, n_layers={n_layers} in the sweep")


if __name__ == "__main__":  # python -m utils.hyperparameters: (re)make the shipped sweep, on the CPU
    import time

    torch.set_num_threads(1)  # one thread, as the notebooks run: the numbers are CI's numbers
    start = time.perf_counter()
    where = save_sweep(run_sweep())
    size = where.stat().st_size / 1e3
    print(f"swept in {time.perf_counter() - start:.0f} s; wrote {where} ({size:.0f} kB)")
