"""How fast is the course's BPE trainer? Against its own readable loop and, when installed, two peers.

    pip install -e ".[bench]"            # Hugging Face tokenizers and tiktoken (optional)
    python benchmarks/bpe_training.py    # both standard configurations, 2 to 3 minutes
    python benchmarks/bpe_training.py --chars 200000 --vocab 512 --repeats 5

The trainers, all on the same text and the same vocabulary size (256 bytes + merges):

- ``fast``: ``BPETokenizer().train`` (``utils.tokenization.train_incremental``, pure Python);
- ``readable``: ``BPETokenizer().train_readable``, which recounts every pair at every step (checked to
  learn exactly the same merges as ``fast``);
- ``tokenizers``: Hugging Face ``tokenizers`` (Rust), a byte-level BPE with GPT-2's pre-tokenizer, run
  with the threads it picks by itself (``RAYON_NUM_THREADS`` sets them);
- ``tiktoken``: the pure-Python educational trainer of OpenAI's ``tiktoken`` (``tiktoken._educational.
  bpe_train``) with GPT-2's pattern. It recounts every pair of every word occurrence at every step, so it
  runs only on the small configuration unless ``--tiktoken-everywhere`` is given.

The text is Python's own documentation, read from the interpreter that runs the script (nothing is
downloaded): the help topics of ``pydoc_data.topics`` (the language reference as ``help()`` shows it),
then the docstrings of the standard library's modules, classes and functions (tests excluded), in sorted
file order, cut to ``--chars`` characters. Its exact content depends on the Python version, so compare
ratios measured in one run, not seconds across machines. Each time is the fastest of ``--repeats`` runs
(other programs can only add time to a run); the slow trainers run once.

Two clocks: CPU seconds of this process (all its threads together: the work done, what a busy shared
machine distorts least, and the fair measure against a single-threaded trainer) and wall seconds (what
you wait, where ``tokenizers`` gains from its threads). The ratios are printed for both.
"""

from __future__ import annotations

import argparse
import ast
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

from utils.tokenization import SPLIT_PATTERN, BPETokenizer

GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
STANDARD = [(200_000, 512), (2_000_000, 2048)]  # (characters, vocabulary size), as issue 9 measured them


def python_documentation(chars: int) -> str:
    """The first ``chars`` characters of Python's help topics, then the standard library's docstrings."""
    import pydoc_data.topics  # noqa: PLC0415 (part of the standard library, only needed here)

    parts = [pydoc_data.topics.topics[name] for name in sorted(pydoc_data.topics.topics)]
    size = sum(map(len, parts))
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        if size >= chars:
            break
        if {"site-packages", "test", "tests", "idle_test"} & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    parts.append(doc)
                    size += len(doc) + 2
    text = "\n\n".join(parts)
    if len(text) < chars:
        raise SystemExit(f"this Python's documentation has {len(text):,} characters, asked for {chars:,}")
    return text[:chars]


def train_fast(text: str, vocab_size: int) -> list:
    return list(BPETokenizer().train(text, vocab_size).merges)


def train_readable(text: str, vocab_size: int) -> list:
    return list(BPETokenizer().train_readable(text, vocab_size).merges)


def train_tokenizers(text: str, vocab_size: int) -> int:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: PLC0415

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=0, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tokenizer.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
    return tokenizer.get_vocab_size()


def train_tiktoken(text: str, vocab_size: int) -> int:
    from tiktoken._educational import bpe_train  # noqa: PLC0415

    return len(bpe_train(text, vocab_size, GPT2_PATTERN, visualise=None))


def available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def best_time(
    fn: Callable[[str, int], object], text: str, vocab_size: int, repeats: int
) -> tuple[tuple[float, float], object]:
    """((fastest CPU seconds, fastest wall seconds) over ``repeats`` runs, the last result)."""
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        result = fn(text, vocab_size)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return (min(cpu), min(wall)), result


def _ratio(fast: float, other: float) -> str:
    return f"{other / fast:6.1f}x faster" if other >= fast else f"{fast / other:6.1f}x slower"


def run(chars: int, vocab_size: int, repeats: int, readable: bool,
        tiktoken: bool) -> dict[str, tuple[float, float]]:
    text = python_documentation(chars)
    chunks = SPLIT_PATTERN.findall(text)
    print(f"\n{chars:,} characters of Python documentation ({len(text.encode('utf-8')):,} bytes, "
          f"{len(chunks):,} chunks, {len(set(chunks)):,} distinct), vocabulary {vocab_size:,}")
    seconds: dict[str, tuple[float, float]] = {}
    seconds["fast"], fast_merges = best_time(train_fast, text, vocab_size, repeats)
    if available("tokenizers"):
        seconds["tokenizers"], _ = best_time(train_tokenizers, text, vocab_size, repeats)
    if readable:
        seconds["readable"], readable_merges = best_time(train_readable, text, vocab_size, 1)
        if readable_merges != fast_merges:
            raise SystemExit("the fast and the readable trainer learned different merges: a bug")
    if tiktoken and available("tiktoken"):
        seconds["tiktoken"], _ = best_time(train_tiktoken, text, vocab_size, 1)
    print(f"  {'trainer':11s} {'CPU s':>8s} {'wall s':>8s}   fast is ... (CPU)   fast is ... (wall)")
    fast_cpu, fast_wall = seconds["fast"]
    for name, (cpu, wall) in seconds.items():
        notes = "" if name == "fast" else f"{_ratio(fast_cpu, cpu):>18s}  {_ratio(fast_wall, wall):>18s}"
        print(f"  {name:11s} {cpu:8.2f} {wall:8.2f}   {notes}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, help="characters of text (default: both standard sizes)")
    parser.add_argument("--vocab", type=int, default=512, help="vocabulary size, with --chars")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each fast trainer (fastest counts)")
    parser.add_argument("--no-readable", action="store_true", help="skip the readable trainer")
    parser.add_argument("--tiktoken-everywhere", action="store_true",
                        help="run tiktoken's educational trainer on the large configuration too (very slow)")
    args = parser.parse_args(argv)
    configs = [(args.chars, args.vocab)] if args.chars else STANDARD
    missing = [m for m in ("tokenizers", "tiktoken") if not available(m)]
    if missing:
        print(f"not installed (pip install -e '.[bench]'): {', '.join(missing)}")
    print(f"Python {sys.version.split()[0]}")
    for i, (chars, vocab) in enumerate(configs):
        small = i == 0 and len(configs) > 1 or chars <= 500_000
        run(chars, vocab, args.repeats, readable=not args.no_readable,
            tiktoken=small or args.tiktoken_everywhere)
    return 0


if __name__ == "__main__":
    sys.exit(main())
