"""utils.hyperparameters: the shipped sweep, its stated quality, and the script behind it. Oracles: a fresh
run of the recipe (it must follow the shipped curve), the grid's own definition, and the loss of a model that
knows nothing (ln of the vocabulary) as the bar for "diverged"."""

import math

import pytest

from utils.hyperparameters import (
    SWEEP_BATCH_SIZES,
    SWEEP_DEPTHS,
    SWEEP_FILE,
    SWEEP_LRS,
    agreement_lm_data,
    load_sweep,
    save_sweep,
    sweep_curve,
    sweep_run,
)


@pytest.fixture(scope="module")
def sweep():
    return load_sweep()


def final(sweep, lr, b, d):
    value = sweep_curve(sweep, lr, b, d)["val_losses"][-1]
    return math.inf if value is None else value


def test_the_shipped_sweep_is_small_and_complete(sweep):
    assert SWEEP_FILE.stat().st_size < 200_000
    grid = {(r["lr"], r["batch_size"], r["n_layers"]) for r in sweep["runs"]}
    assert grid == {(lr, b, d) for lr in SWEEP_LRS for b in SWEEP_BATCH_SIZES for d in SWEEP_DEPTHS}
    assert len(sweep["runs"]) == len(grid) == 81
    for run in sweep["runs"]:
        assert len(run["train_losses"]) == sweep["steps"] and len(run["val_losses"]) == 15


def test_the_sweep_shows_what_the_notebook_says(sweep):
    vocabulary = agreement_lm_data(n_train=1, n_val=1).tokenizer.vocab_size  # 29
    for b in SWEEP_BATCH_SIZES:
        for d in SWEEP_DEPTHS:
            assert final(sweep, 1e-4, b, d) > 2.0  # too low: crawls
            assert final(sweep, 1.0, b, d) > math.log(vocabulary)  # too high: worse than knowing nothing
            assert min(final(sweep, lr, b, d) for lr in (3e-3, 1e-2)) < 0.72  # the floor is about 0.645


def test_a_fresh_run_follows_the_shipped_curve(sweep):
    run = sweep_run(1e-2, batch_size=8, n_layers=1)  # the cheapest setting, with the script's seed and data
    shipped = sweep_curve(sweep, 1e-2, 8, 1)
    assert run["val_steps"] == shipped["val_steps"]
    assert max(abs(a - b) for a, b in zip(run["val_losses"], shipped["val_losses"], strict=True)) < 0.1


def test_save_load_round_trip_and_lookup(tmp_path, sweep):
    data = agreement_lm_data(n_train=32, n_val=8)
    small = {**sweep, "runs": [sweep_run(3e-3, 4, 1, steps=2, data=data, eval_every=1)]}
    again = load_sweep(save_sweep(small, tmp_path / "sweep.json"))
    assert again["runs"][0]["val_steps"] == [1, 2]
    assert again["runs"][0]["val_losses"] == [round(v, 5) for v in small["runs"][0]["val_losses"]]
    with pytest.raises(KeyError, match="no run"):
        sweep_curve(sweep, 0.5, 8, 1)
    with pytest.raises(FileNotFoundError, match="python -m utils.hyperparameters"):
        load_sweep(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="n_train"):
        agreement_lm_data(n_train=0)
