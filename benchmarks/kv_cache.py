"""Greedy generation with and without a KV cache (Lecture 10, Q50): seconds for 256 new tokens.

    python benchmarks/kv_cache.py                       # the default model below, one CPU thread
    python benchmarks/kv_cache.py --d-model 512 --layers 8 --threads 2

A ``TinyGPT`` (random weights: speed does not depend on what the model learned) writes ``--new`` tokens
after a ``--prompt``-token prompt, greedily, twice: recomputing the whole prefix at every step
(``utils.decoding.greedy_decode``) and with a ``KVCache`` (``utils.models.cached_greedy_decode``). It checks
that both write the same tokens (in float64, so that rounding cannot break a near-tie) and prints the best
of ``--repeats`` wall-clock times of each, their ratio, and the time per step at a few positions
(``generation_step_times``): flat with the cache, growing with the position without it.
"""

from __future__ import annotations

import argparse
import time

import torch

from utils.decoding import greedy_decode
from utils.models import GPTConfig, TinyGPT, cached_greedy_decode, generation_step_times


def best_seconds(fn, repeats: int) -> float:
    """The fastest of ``repeats`` calls (other programs can only add time to a run)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--new", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=args.vocab, block_size=args.prompt + args.new, d_model=args.d_model,
                       n_heads=args.heads, n_layers=args.layers)
    model = TinyGPT(config).eval()
    prompt = torch.randint(args.vocab, (1, args.prompt), generator=torch.Generator().manual_seed(0))

    wide = TinyGPT(config).double().eval()
    wide.load_state_dict(model.state_dict())
    same = torch.equal(greedy_decode(wide, prompt, args.new), cached_greedy_decode(wide, prompt, args.new))
    print(f"TinyGPT d_model={args.d_model}, {args.layers} layers, {model.num_parameters():,} parameters; "
          f"{args.prompt}-token prompt, {args.new} new tokens, {args.threads} thread(s)")
    print(f"same tokens with and without the cache (float64): {same}")

    plain = best_seconds(lambda: greedy_decode(model, prompt, args.new), args.repeats)
    cached = best_seconds(lambda: cached_greedy_decode(model, prompt, args.new), args.repeats)
    print(f"recompute the prefix: {plain:.3f} s ({1000 * plain / args.new:.2f} ms/token)")
    print(f"KV cache:             {cached:.3f} s ({1000 * cached / args.new:.2f} ms/token)")
    print(f"speed-up:             {plain / cached:.1f}x")

    steps = {use: generation_step_times(model, prompt, args.new, use_cache=use) for use in (False, True)}
    for position in (1, args.new // 4, args.new // 2, args.new - 1):
        print(f"  step {position:4d}: {1000 * steps[False][position]:6.2f} ms without, "
              f"{1000 * steps[True][position]:6.2f} ms with the cache")
    if not same:
        raise SystemExit("the cached decoder wrote other tokens")


if __name__ == "__main__":
    main()
