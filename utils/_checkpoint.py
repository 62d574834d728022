"""Writing and reading the checkpoints the course ships (``utils/checkpoints/*.pt``).

Every shipped model is saved the same way: plain tensors, numbers and strings only, so that
``torch.load(path, weights_only=True)`` reads it without unpickling any class, with the torch version
that made it. Every loader fails the same way when its file is missing: it names the script that makes it.

>>> import tempfile
>>> from pathlib import Path
>>> layer = torch.nn.Linear(2, 1)
>>> with tempfile.TemporaryDirectory() as folder:
...     where = write_checkpoint({"state_dict": cpu_state_dict(layer), "losses": [2.0, 1.5]},
...                              Path(folder) / "sub" / "tiny.pt")
...     payload = read_checkpoint(where, what="tiny model", module="utils.tiny", target="course-tiny")
>>> torch.equal(payload["state_dict"]["weight"], layer.weight), payload["torch_version"] == torch.__version__
(True, True)
>>> loss_history(payload["losses"]).steps
[1, 2]
>>> read_checkpoint("nowhere.pt", what="tiny model", module="utils.tiny", target="course-tiny")
Traceback (most recent call last):
...
FileNotFoundError: no tiny model at nowhere.pt: run `python -m utils.tiny` (or `make course-tiny`) to make it
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from .training import History


def cpu_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s parameters and buffers, detached and on the CPU (the module itself is not moved)."""
    return {name: tensor.detach().cpu() for name, tensor in module.state_dict().items()}


def write_checkpoint(payload: dict, path: str | Path) -> Path:
    """Save ``payload`` (plain data and tensors) to ``path``, creating its folder, with the torch version."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**payload, "torch_version": str(torch.__version__)}, path)
    return path


def read_checkpoint(path: str | Path, *, what: str, module: str, target: str, note: str = "") -> dict:
    """The payload at ``path``, read with ``weights_only=True`` onto the CPU.

    A missing file raises ``FileNotFoundError`` naming ``what`` was expected and the command that makes
    it (``python -m {module}``, or ``make {target}``), followed by ``note`` if given.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}: run `python -m {module}` (or `make {target}`) "
                                f"to make it{note}")
    return torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only


def loss_history(losses: Sequence[float]) -> History:
    """The ``History`` of a run that recorded one training loss per step (steps 1, 2, ...)."""
    losses = [float(loss) for loss in losses]
    return History(steps=list(range(1, len(losses) + 1)), losses=losses)
