"""utils.runtime: device choice and seeding."""

import random

import numpy as np
import pytest
import torch

from utils.runtime import get_device, set_seed


def test_get_device_is_the_best_available():
    expected = "cuda" if torch.cuda.is_available() else None
    device = get_device()
    assert isinstance(device, torch.device)
    if expected:
        assert device.type == expected
    # whatever it picked, a tensor can live there
    assert torch.ones(1, device=device).device.type == device.type


def test_prefer_cpu_is_always_honoured():
    assert get_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_prefer_unavailable_device_raises():
    with pytest.raises(ValueError, match="prefer"):
        get_device("cuda")


def test_prefer_unknown_name_raises():
    with pytest.raises(ValueError, match="prefer"):
        get_device("tpu")


def test_set_seed_makes_every_library_repeatable():
    set_seed(123)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(123)
    second = (random.random(), np.random.rand(), torch.rand(1).item())
    assert first == second


def test_set_seed_returns_an_independent_seeded_generator():
    g1, g2 = set_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(torch.rand(5, generator=g1), torch.rand(5, generator=g2))


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises((ValueError, TypeError), match="seed"):
        set_seed(bad)
