"""Argument checks shared by the course modules, so every one of them words its errors the same way."""

from __future__ import annotations


def check_positive_int(name: str, value: object) -> None:
    """``TypeError`` unless ``value`` is an int (bools excluded); ``ValueError`` unless it is >= 1.

    >>> check_positive_int("n_heads", 4)
    >>> check_positive_int("n_heads", 0)
    Traceback (most recent call last):
    ...
    ValueError: n_heads must be >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
