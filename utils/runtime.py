"""Where code runs and how it is made repeatable.

>>> g = set_seed(0)
>>> torch.rand(1, generator=g).item() == torch.rand(1, generator=set_seed(0)).item()
True
"""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["get_device", "set_seed", "describe_environment"]

_KNOWN = ("cuda", "mps", "cpu")


def _mps_works() -> bool:
    # torch.backends.mps.is_available() can be True on machines where the first kernel still fails
    # (old macOS versions), so try one tiny operation before trusting it.
    if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        return False
    try:
        (torch.ones(1, device="mps") + 1).cpu()
    except Exception:  # pragma: no cover - depends on the machine
        return False
    return True


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return _mps_works()
    return True


def get_device(prefer: str | None = None) -> torch.device:
    """The best device here: ``cuda`` if available, else a working ``mps``, else ``cpu``.

    ``prefer`` forces one of ``"cuda"``, ``"mps"``, ``"cpu"`` and raises if it is not available.

    >>> get_device("cpu")
    device(type='cpu')
    """
    if prefer is not None:
        if not isinstance(prefer, str) or prefer.split(":")[0] not in _KNOWN:
            raise ValueError(f"prefer must be one of {_KNOWN} (or None), got {prefer!r}")
        if not _available(prefer.split(":")[0]):
            raise ValueError(f"prefer={prefer!r} was asked for, but that device is not available here")
        return torch.device(prefer)
    for kind in _KNOWN:
        if _available(kind):
            return torch.device(kind)
    return torch.device("cpu")  # pragma: no cover


def set_seed(seed: int) -> torch.Generator:
    """Seed ``random``, ``numpy`` and ``torch`` (all devices); return a CPU generator seeded with ``seed``.

    Pass the returned generator to functions that take ``generator=`` so that their randomness does not
    depend on what ran before them.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def describe_environment() -> str:
    """One line with the versions that matter, for the setup cell of every notebook."""
    import sys

    import matplotlib

    device = get_device()
    return (
        f"python {sys.version.split()[0]} | torch {torch.__version__} | numpy {np.__version__} | "
        f"matplotlib {matplotlib.__version__} | device {device}"
    )
