"""utils.robustness: seeds are shifted everywhere a notebook draws them (and nowhere with offset 0), and the
runner reports a claim that fails for another seed, with the cell and the margin. Oracles: the unshifted
generators seeded with ``mix_seed`` by hand, and a two-cell notebook whose claim holds for seed 0 only."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from utils.robustness import MATRICES, RunConfig, mix_seed, report, run_matrix, tightest_claims

REPO = Path(__file__).resolve().parent.parent


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (shift_seeds patches process-wide state) and read its JSON."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=REPO, check=True)
    return json.loads(done.stdout)


def test_mix_seed_leaves_offset_zero_alone_and_separates_neighbours():
    assert [mix_seed(s, 0) for s in range(5)] == list(range(5))
    shifted = {mix_seed(s, o) for s in range(50) for o in (1, 2, 3)}
    assert len(shifted) == 150 and shifted.isdisjoint(range(50))
    assert all(0 <= s < 2**32 for s in shifted)


def test_shift_seeds_shifts_every_generator_a_notebook_uses():
    result = run_python("""
        import json, random
        import numpy as np, torch
        from utils.data import tiny_world_sentences
        from utils.runtime import set_seed
        from utils.robustness import mix_seed, shift_seeds
        Generator, Random = torch.Generator, random.Random       # the originals
        before = tiny_world_sentences(3, seed=4)
        shift_seeds(2)
        m = mix_seed(5, 2)
        out = {
            "generator": torch.rand(3, generator=torch.Generator().manual_seed(5)).tolist()
                         == torch.rand(3, generator=Generator().manual_seed(m)).tolist(),
            "manual_seed": (torch.manual_seed(5), torch.rand(3).tolist())[1]
                           == torch.rand(3, generator=Generator().manual_seed(m)).tolist(),
            "set_seed": torch.rand(2, generator=set_seed(5)).tolist()
                        == torch.rand(2, generator=Generator().manual_seed(m)).tolist(),
            "random": Random(m).random() == random.Random(5).random(),
            "global_random": (random.seed(5), random.random())[1] == Random(m).random(),
            "numpy": np.random.default_rng(5).random() == np.random.Generator(np.random.PCG64(m)).random(),
            "data_changes": tiny_world_sentences(3, seed=4) != before,
            "unseeded_random_works": isinstance(random.Random().random(), float),
        }
        shift_seeds(0)
        out["offset_zero_restores"] = tiny_world_sentences(3, seed=4) == before
        print(json.dumps(out))
    """)
    assert result == dict.fromkeys(result, True) and len(result) == 9


def test_shift_seeds_rejects_a_bad_offset():
    from utils.robustness import shift_seeds
    with pytest.raises(ValueError, match="offset must be an int >= 0"):
        shift_seeds(-1)


def test_the_matrices_cover_both_kernel_paths_both_thread_counts_and_three_seeds():
    for configs in MATRICES.values():
        assert {c.capability for c in configs} == {"default", "avx2"}
        assert {c.threads for c in configs} == {1, 2}
        assert len({c.seed_offset for c in configs}) == 3 and 0 not in {c.seed_offset for c in configs}
    assert len(MATRICES["full"]) == 12


def test_the_runner_reports_a_claim_that_holds_only_for_the_stored_seed(tmp_path):
    # torch.rand(1) after seed 0 is 0.496: below 0.5 for the stored seed, not for every shifted one
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import torch\nfrom utils.checks import claim\n"
                                  "from utils.runtime import set_seed"),
        nbformat.v4.new_code_cell("x = torch.rand(1, generator=set_seed(0)).item()\n"
                                  "claim('x', x, below=0.5)"),
    ])
    path = tmp_path / "00_demo.ipynb"
    nbformat.write(nb, path)
    configs = [RunConfig(0, "default", 1), RunConfig(1, "default", 1), RunConfig(2, "default", 1),
               RunConfig(3, "default", 1)]
    results = run_matrix([path], configs, tmp_path / "out", cores=2, echo=lambda *a, **k: None)
    by_offset = {r.config.seed_offset: r for r in results}
    assert by_offset[0].errors == []
    failing = [r for r in results if r.errors]
    assert failing, "one of three shifted seeds draws x >= 0.5"  # P(all three below) is 1/8: seeds fixed
    first = failing[0].errors[0]
    assert first["cell"] == 1 and first["error"].startswith("ClaimFailed: x: measured")
    assert (tmp_path / "out" / f"00_demo__seed{failing[0].config.seed_offset}_default_1t.ipynb").exists()
    worst = tightest_claims(results, 1)[0]
    assert worst["what"] == "x" and worst["worst"]["relative_margin"] < 0 and worst["runs"] == 4


def test_the_runner_fails_a_run_whose_legend_covers_the_data(tmp_path):
    # the figure in cell 1 puts its legend on the line; the one in cell 2 puts it beside the axes
    plot = ("fig, ax = plt.subplots(figsize=(4, 3))\nax.plot([0, 1], [0, 1], label='diagonal')\n"
            "ax.legend(loc={where})\nplt.show()")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt"),
        nbformat.v4.new_code_cell(plot.format(where="'center'")),
        nbformat.v4.new_markdown_cell("Beside the axes, the legend hides nothing:"),
        nbformat.v4.new_code_cell(plot.format(where="'upper left', bbox_to_anchor=(1.02, 1)")),
    ])
    path = tmp_path / "00_legends.ipynb"
    nbformat.write(nb, path)
    (result,) = run_matrix([path], [RunConfig(0, "default", 1)], tmp_path / "out", cores=1,
                           echo=lambda *a, **k: None)
    assert result.errors == []
    assert result.layout == ["cell 1: axes 0: the legend covers line 'diagonal'"]
    assert result.failed and "the legend covers line 'diagonal'" in report([result])
