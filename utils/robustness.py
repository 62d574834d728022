"""The robustness run: do a notebook's claims hold for other seeds and other CPU kernel paths?

A model trained in a notebook ends somewhere slightly different on every machine: another CPU (AVX2,
AVX-512, Apple silicon), another thread count or another library build rounds differently. The stored
answer key shows one run; what the notebook *claims* must hold for any honest run of its recipe. This
module re-executes notebooks under a matrix of

- **seeds**: every seed the notebook draws (``set_seed``, ``torch.manual_seed``, ``torch.Generator(...)
  .manual_seed``, ``random.Random(seed)`` inside ``utils.data``, NumPy's generators) is mapped to another
  one by ``shift_seeds(offset)``, injected as a first cell: the notebook itself is not changed, and with
  offset 0 nothing is shifted, so the stored notebooks show exactly what they always showed;
- **CPU kernel paths**: ``ATEN_CPU_CAPABILITY=default`` (no vector instructions) or ``avx2``;
- **threads**: ``OMP_NUM_THREADS=1`` or ``2`` (a reduction split over two threads adds in another order).

It reports every failing cell and, from the ``utils.checks.claim`` calls the notebooks make, the tightest
margins: for each claim, its bound and the worst value seen across the matrix.

    python -m utils.robustness                       # every solutions notebook, the CI matrix (3 runs each)
    python -m utils.robustness solutions/02_*.ipynb --matrix full     # 12 runs: 3 seeds x 2 paths x 2 threads

(``make robustness`` runs the first.) Runs are scheduled so that their threads never exceed the cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["RunConfig", "MATRICES", "mix_seed", "shift_seeds", "run_matrix", "main"]

SEED_OFFSET_ENV = "COURSE_SEED_OFFSET"


@dataclass(frozen=True)
class RunConfig:
    """One numeric path: a seed offset, a CPU kernel path (``ATEN_CPU_CAPABILITY``) and a thread count."""

    seed_offset: int
    capability: str
    threads: int

    @property
    def label(self) -> str:
        threads = f"{self.threads} thread{'s' * (self.threads > 1)}"
        return f"seed+{self.seed_offset} · {self.capability} · {threads}"

    def environment(self) -> dict[str, str]:
        # PASSIVE: an OpenMP thread that waits sleeps instead of spinning. It changes no number, but
        # with runs side by side on a busy machine spinning threads slowed a 2-thread run ten times over.
        return {SEED_OFFSET_ENV: str(self.seed_offset), "ATEN_CPU_CAPABILITY": self.capability,
                "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads),
                "OMP_WAIT_POLICY": "PASSIVE"}


# `make test` already runs every notebook twice with the stored seeds: strict on this CPU's own kernels and
# lax on ATEN_CPU_CAPABILITY=default, one thread each. The CI matrix adds three seeds and covers both
# kernel paths and both thread counts; "full" is every combination, for a notebook under development.
MATRICES: dict[str, list[RunConfig]] = {
    "ci": [RunConfig(1, "default", 1), RunConfig(2, "avx2", 2), RunConfig(3, "avx2", 1)],
    "full": [RunConfig(seed, capability, threads) for seed in (1, 2, 3)
             for capability in ("default", "avx2") for threads in (1, 2)],
}


# ----------------------------------------------------------------------------------------------------
# Shifting every seed a notebook draws
# ----------------------------------------------------------------------------------------------------

def mix_seed(seed: int, offset: int) -> int:
    """The seed that stands in for ``seed`` under ``offset`` (``offset = 0`` leaves it unchanged).

    A hash, not ``seed + offset``: neighbouring seeds (a notebook uses 0, 1, 2, ... for different things)
    must not map onto each other's streams.

    >>> mix_seed(7, 0), mix_seed(7, 1) == mix_seed(7, 1), mix_seed(7, 1) != mix_seed(8, 0)
    (7, True, True)
    """
    if offset == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{offset}".encode()).digest()
    return int.from_bytes(digest[:4], "big")  # < 2**32: valid for torch, random and NumPy alike


_ORIGINALS: dict = {}  # the unshifted functions and classes, saved by the first shift_seeds call


def shift_seeds(offset: int) -> None:
    """Make every seed drawn from now on in this process stand for ``mix_seed(seed, offset)``.

    Wraps ``torch.manual_seed``, ``torch.Generator`` (its ``manual_seed``), ``random.seed`` and
    ``random.Random``, ``numpy.random.seed``, ``default_rng`` and ``RandomState``. Meant for a notebook
    kernel of the robustness run, where it is the first cell; calling it again replaces the offset.
    Unseeded generators (``random.Random()``) are left alone.
    """
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be an int >= 0, got {offset!r}")
    import numpy as np
    import torch

    if not _ORIGINALS:
        _ORIGINALS.update({
            "torch.manual_seed": torch.manual_seed, "torch.Generator": torch.Generator,
            "random.seed": random.seed, "random.Random": random.Random, "np.seed": np.random.seed,
            "np.default_rng": np.random.default_rng, "np.RandomState": np.random.RandomState,
        })
    orig = _ORIGINALS

    def mixed(seed):
        return mix_seed(int(seed), offset) if isinstance(seed, int) and not isinstance(seed, bool) else seed

    class ShiftedGenerator(orig["torch.Generator"]):
        def manual_seed(self, seed):
            return super().manual_seed(mixed(seed))

    class ShiftedRandom(orig["random.Random"]):
        def seed(self, a=None, version=2):
            super().seed(mixed(a), version)

    class ShiftedRandomState(orig["np.RandomState"]):
        def __init__(self, seed=None):
            super().__init__(mixed(seed))

        def seed(self, seed=None):
            super().seed(mixed(seed))

    torch.manual_seed = lambda seed: orig["torch.manual_seed"](mixed(seed))
    torch.Generator = ShiftedGenerator
    random.seed = lambda a=None, version=2: orig["random.seed"](mixed(a), version)
    random.Random = ShiftedRandom
    np.random.seed = lambda seed=None: orig["np.seed"](mixed(seed))
    np.random.default_rng = lambda seed=None: orig["np.default_rng"](mixed(seed))
    np.random.RandomState = ShiftedRandomState


# ----------------------------------------------------------------------------------------------------
# Executing one notebook under one configuration (in a child process, so the environment is its own)
# ----------------------------------------------------------------------------------------------------

def _execute_one(notebook: Path, result_path: Path, claims_log: Path, save_failed: Path,
                 timeout: int) -> None:
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient

    offset = int(os.environ.get(SEED_OFFSET_ENV, "0"))
    nb = nbformat.read(notebook, as_version=4)
    preamble = nbformat.v4.new_code_cell(
        f"from utils.robustness import shift_seeds\nshift_seeds({offset})\n"
        "from utils.plotting import watch_legends\n_course_legend_findings = watch_legends()")
    legends_path = result_path.with_name("legends.json")
    epilogue = nbformat.v4.new_code_cell(  # the legends that covered data, as [execution count, finding]
        f"import json\nopen({str(legends_path)!r}, 'w').write(json.dumps(_course_legend_findings))")
    nb.cells = [preamble, *nb.cells, epilogue]
    os.environ["COURSE_CLAIMS_LOG"] = str(claims_log)
    # Kernels talk over Unix sockets in this run's own scratch folder, not TCP ports: two runs that start
    # side by side could otherwise be handed the same free port, and a run then waits for a message that
    # went to the other kernel (seen twice in about 75 runs before this change).
    kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(result_path.with_name("kernel")))
    client = NotebookClient(nb, km=kernel, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(notebook.parent)}})
    start = time.perf_counter()
    crash = None
    try:
        client.execute()
    except Exception as error:  # a dead kernel or a timeout: report it like a failing cell
        crash = f"{type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"
    seconds = time.perf_counter() - start
    nb.cells = nb.cells[1:-1]  # numbered as in the notebook, without the preamble and the epilogue
    errors = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                errors.append({"cell": index, "error": f"{output.ename}: {output.evalue}".strip(),
                               "source": _first_code_line(cell.source)})
    if crash:
        errors.append({"cell": None, "error": crash, "source": ""})
    # A legend that covers data is a layout finding, as in the browser test: it fails the run too.
    by_count = {cell.get("execution_count"): index for index, cell in enumerate(nb.cells)
                if cell.cell_type == "code" and cell.get("execution_count") is not None}
    layout = []
    if legends_path.exists():
        for count, finding in json.loads(legends_path.read_text(encoding="utf-8")):
            where = f"cell {by_count[count]}" if count in by_count else "a widget's figure"
            layout.append(f"{where}: {finding}")
    layout = list(dict.fromkeys(layout))
    if errors or layout:
        nbformat.write(nb, save_failed)
    result_path.write_text(json.dumps({"seconds": seconds, "errors": errors, "layout": layout}),
                           encoding="utf-8")


def _first_code_line(source: str) -> str:
    """The first line of a cell that is not a comment (``# NBVAL_IGNORE_OUTPUT`` says nothing)."""
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    code = [line for line in lines if not line.startswith("#")]
    return (code or lines or [""])[0][:100]


# ----------------------------------------------------------------------------------------------------
# The matrix
# ----------------------------------------------------------------------------------------------------

@dataclass
class RunResult:
    notebook: str
    config: RunConfig
    seconds: float
    errors: list[dict]
    claims: list[dict]
    layout: list[str] = field(default_factory=list)  # legends over data (plotting.legend_overlaps)

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.layout)


class _Cores:
    """Hands out CPU cores so that concurrent runs never use more threads than there are cores."""

    def __init__(self, n: int) -> None:
        self.free, self.condition = n, threading.Condition()

    def take(self, k: int) -> None:
        with self.condition:
            self.condition.wait_for(lambda: self.free >= k)
            self.free -= k

    def give(self, k: int) -> None:
        with self.condition:
            self.free += k
            self.condition.notify_all()


def run_matrix(notebooks: list[Path], configs: list[RunConfig], out: Path, cores: int | None = None,
               timeout: int = 600, echo=print) -> list[RunResult]:
    """Execute every notebook under every configuration; return one ``RunResult`` per run."""
    out.mkdir(parents=True, exist_ok=True)
    cores = cores or os.cpu_count() or 1
    pool_cores = _Cores(cores)
    jobs = sorted(((nb, c) for nb in notebooks for c in configs), key=lambda job: -job[1].threads)

    def run(job: tuple[Path, RunConfig]) -> RunResult:
        notebook, config = job
        need = min(config.threads, cores)
        pool_cores.take(need)
        try:
            with tempfile.TemporaryDirectory() as scratch:
                scratch = Path(scratch)
                name = f"{notebook.stem}__seed{config.seed_offset}_{config.capability}_{config.threads}t"
                result_path, claims_log = scratch / "result.json", scratch / "claims.jsonl"
                env = {**os.environ, **config.environment()}
                command = [sys.executable, "-m", "utils.robustness", "--execute-one", str(notebook),
                           str(result_path), str(claims_log), str(out / f"{name}.ipynb"), str(timeout)]
                completed = subprocess.run(command, env=env, capture_output=True, text=True)
                if result_path.exists():
                    result = json.loads(result_path.read_text(encoding="utf-8"))
                else:
                    tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
                    result = {"seconds": 0.0, "errors": [{"cell": None, "error": tail[0], "source": ""}]}
                claims = ([json.loads(line) for line in claims_log.read_text(encoding="utf-8").splitlines()]
                          if claims_log.exists() else [])
        finally:
            pool_cores.give(need)
        done = RunResult(notebook.name, config, result["seconds"], result["errors"], claims,
                         result.get("layout", []))
        verdict = ("ok" if not done.failed else
                   f"FAILED ({len(done.errors)} cell(s), {len(done.layout)} legend(s))")
        echo(f"  {notebook.stem:<40} {config.label:<32} {verdict:<18} {done.seconds:6.1f} s", flush=True)
        return done

    with ThreadPoolExecutor(max_workers=max(1, cores)) as pool:
        return list(pool.map(run, jobs))


def tightest_claims(results: list[RunResult], n: int = 10) -> list[dict]:
    """For every (notebook, claim, bound), the worst relative margin across the runs; the ``n`` tightest."""
    worst: dict[tuple, dict] = {}
    for result in results:
        for record in result.claims:
            key = (result.notebook, record["what"], record["bound"], record["threshold"])
            entry = worst.setdefault(key, {"notebook": result.notebook, "what": record["what"],
                                           "bound": record["bound"], "threshold": record["threshold"],
                                           "runs": 0, "worst": None, "best": None})
            entry["runs"] += 1
            if entry["worst"] is None or record["relative_margin"] < entry["worst"]["relative_margin"]:
                entry["worst"] = {**record, "run": result.config.label}
            if entry["best"] is None or record["relative_margin"] > entry["best"]["relative_margin"]:
                entry["best"] = {**record, "run": result.config.label}
    ranked = sorted(worst.values(), key=lambda e: e["worst"]["relative_margin"])
    return ranked[:n]


_SYMBOL = {"above": ">", "at_least": "≥", "below": "<", "at_most": "≤"}


def report(results: list[RunResult], n_tightest: int = 10) -> str:
    """The run's verdict as Markdown: failing cells first, then the tightest claims."""
    lines = ["# Robustness run", ""]
    failed = [r for r in results if r.failed]
    lines.append(f"{len(results)} runs, {len(failed)} with a failing cell or a legend over the data.")
    lines += ["", "| notebook | run | result | seconds |", "|---|---|---|---|"]
    for r in results:
        first = r.errors[0] if r.errors else None
        verdict = "ok" if not first else f"cell {first['cell']}: {first['error'][:160]}"
        if r.layout:
            verdict = ("" if verdict == "ok" else verdict + "; ") + "; ".join(r.layout)[:300]
        lines.append(f"| {r.notebook} | {r.config.label} | {verdict} | {r.seconds:.0f} |")
    lines += ["", f"## The {n_tightest} tightest claims (worst value across the runs)", "",
              "| notebook | claim | bound | worst value (run) | best value | runs |",
              "|---|---|---|---|---|---|"]
    for e in tightest_claims(results, n_tightest):
        w, b = e["worst"], e["best"]
        lines.append(f"| {e['notebook']} | {e['what']} | {_SYMBOL[e['bound']]} {e['threshold']:.4g} | "
                     f"{w['value']:.4g} ({w['run']}) | {b['value']:.4g} | {e['runs']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--execute-one"]:
        notebook, result_path, claims_log, save_failed, timeout = argv[1:6]
        _execute_one(Path(notebook), Path(result_path), Path(claims_log), Path(save_failed), int(timeout))
        return 0
    parser = argparse.ArgumentParser(prog="python -m utils.robustness", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every solutions/NN_*.ipynb)")
    parser.add_argument("--matrix", choices=sorted(MATRICES), default="ci",
                        help="ci: 3 runs per notebook (both kernel paths, both thread counts, 3 seeds); "
                             "full: all 12 combinations")
    parser.add_argument("--cores", type=int, default=None, help="cores to fill (default: all)")
    parser.add_argument("--out", type=Path, default=Path("build/robustness"),
                        help="where the report and the executed copies of failing notebooks go")
    parser.add_argument("--tightest", type=int, default=10, help="how many of the tightest claims to list")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted(Path("solutions").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        parser.error("no notebooks to run")
    configs = MATRICES[args.matrix]
    print(f"robustness run: {len(notebooks)} notebook(s) x {len(configs)} configurations", flush=True)
    start = time.perf_counter()
    results = run_matrix(notebooks, configs, args.out, cores=args.cores)
    text = report(results, args.tightest)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text, encoding="utf-8")
    (args.out / "report.json").write_text(json.dumps(
        [{**asdict(r), "config": asdict(r.config)} for r in results], indent=1), encoding="utf-8")
    print(text)
    print(f"took {time.perf_counter() - start:.0f} s; report in {args.out / 'report.md'}")
    for r in results:
        for e in r.errors:
            print(f"FAILED {r.notebook} [{r.config.label}] cell {e['cell']}: {e['error']}\n    {e['source']}")
        for finding in r.layout:
            print(f"FAILED {r.notebook} [{r.config.label}] {finding}")
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
