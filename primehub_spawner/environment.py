"""Trait defaults from environment variables (how containers are configured). An empty variable
counts as unset; a value that does not parse is an error naming the variable."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env_str(*names: str, default: str = "") -> str:
    """The first of ``names`` that is set and not empty, else ``default``."""
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return default


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "a whole number")


def _env_number(name: str, default: Number, parse: Callable[[str], Number], what: str) -> Number:
    value = env_str(name)
    if not value:
        return default
    try:
        return parse(value)
    except ValueError:
        raise ValueError(f"${name}={value!r} is not {what}") from None


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name).strip().lower()
    if not value:
        return default
    if value not in _TRUE | _FALSE:
        raise ValueError(f"${name}={value!r} is not a boolean (true/false)")
    return value in _TRUE
