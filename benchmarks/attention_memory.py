"""Peak memory and time of attention against the sequence length: full vs chunked (Lecture 5, Q24).

    python benchmarks/attention_memory.py                     # CUDA if there is a GPU, else the CPU
    python benchmarks/attention_memory.py --device cpu --lengths 256 512 1024 2048

For every length T it runs one attention call on random ``q, k, v`` of shape ``(batch, heads, T, d)`` with
three implementations and prints the peak bytes and the fastest of a few runs:

- ``full``: the course's readable ``scaled_dot_product_attention``, which materialises the ``(T, T)`` scores;
- ``chunked``: ``chunked_attention``, keys visited a chunk at a time with an online softmax;
- ``fused``: PyTorch's ``F.scaled_dot_product_attention`` (FlashAttention-style kernels on a GPU).

Memory comes from ``utils.attention.peak_memory_bytes``: ``torch.cuda.max_memory_allocated`` above the
memory held before the call on a GPU; on the CPU, the bytes of the tensors the operations create, counted as
they are made and freed (the fused kernel's internal tiles are invisible there, so its CPU figure is left
out). At the end it prints the log-log slope of each column: about 2 for full attention, about 1 for
chunked attention.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from utils.attention import chunked_attention, peak_memory_bytes, scaled_dot_product_attention


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fastest_seconds(fn, args: tuple, device: torch.device, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls ``fn(*args)`` after one warm-up (other work only adds time)."""
    fn(*args)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn(*args)
        _sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="sequence lengths (default: 1k..16k on a GPU, 256..2048 on the CPU)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    lengths = args.lengths or ([1024, 2048, 4096, 8192, 16384] if on_gpu else [256, 512, 1024, 2048])
    dtype = torch.float16 if on_gpu else torch.float32
    if not on_gpu:
        torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    print(f"device {device}" + (f" ({torch.cuda.get_device_name(device)})" if on_gpu else "")
          + f", torch {torch.__version__}, q/k/v ({args.batch}, {args.heads}, T, {args.head_dim}) {dtype}, "
          f"chunk {args.chunk_size}")
    paths = {
        "full": lambda q, k, v: scaled_dot_product_attention(q, k, v)[0],
        "chunked": lambda q, k, v: chunked_attention(q, k, v, args.chunk_size),
        "fused": lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
    }
    memory = {name: [] for name in paths}
    seconds = {name: [] for name in paths}
    header = f"{'T':>6} " + " ".join(f"{name + ' MiB':>13} {name + ' ms':>11}" for name in paths)
    print(header)
    for T in lengths:
        g = torch.Generator().manual_seed(0)
        qkv = tuple(torch.randn(args.batch, args.heads, T, args.head_dim, generator=g).to(device, dtype)
                    for _ in range(3))
        row = f"{T:>6} "
        for name, path in paths.items():
            with torch.no_grad():
                if name == "fused" and not on_gpu:
                    peak = math.nan  # the fused CPU kernel's buffers are not visible to the CPU counter
                else:
                    peak = peak_memory_bytes(path, *qkv)
                ms = 1000 * fastest_seconds(path, qkv, device, args.repeats)
            memory[name].append(peak)
            seconds[name].append(ms)
            row += f"{peak / 2**20:>13.1f} {ms:>11.2f} "
        print(row)
        del qkv
        if on_gpu:
            torch.cuda.empty_cache()
    print("log-log slopes (memory ~ T^a, time ~ T^b):")
    for name in paths:
        log_t = np.log(lengths)
        a = math.nan if math.isnan(memory[name][0]) else np.polyfit(log_t, np.log(memory[name]), 1)[0]
        b = np.polyfit(log_t, np.log(seconds[name]), 1)[0]
        print(f"  {name:>8}: memory {a:.2f}, time {b:.2f}")


if __name__ == "__main__":
    main()
