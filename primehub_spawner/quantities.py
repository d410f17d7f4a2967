"""Kubernetes quantities ("500m", "8G", "2Gi") as the API server reads them.

Parsing is the Kubernetes Python client's ``parse_quantity`` (Decimal-exact, the server's
semantics). PrimeHub stored some sizes as bare numbers of gigabytes; ``gigabytes_or_quantity``
reads those the way PrimeHub meant them.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from kubernetes.utils.quantity import parse_quantity


class QuantityError(ValueError):
    """Not a Kubernetes quantity: the message quotes the value, ``reason`` does not (for logs)."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(f"{value!r} {reason}")
        self.reason = reason


def quantity(value: str | int | float) -> Decimal:
    """The value of a quantity in base units (cores, bytes, devices)."""
    try:
        parsed = parse_quantity(value)
    except (ValueError, InvalidOperation, TypeError) as error:
        raise QuantityError(value, "is not a Kubernetes quantity") from error
    if parsed < 0:
        raise QuantityError(value, "is negative")
    return parsed


def gigabytes_or_quantity(value: str) -> Decimal:
    """Bytes from ``"8G"``/``"8Gi"`` (quantities) or a bare ``"8"`` (PrimeHub's GB, read as GiB)."""
    text = value.strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        return quantity(text)
    if not number.is_finite() or number < 0:
        raise QuantityError(value, "is not a size")
    return quantity(f"{number}Gi")


def format_gibibytes(size: Decimal) -> str:
    """A byte count as the shortest exact quantity string (``Gi``, ``Mi``, ``Ki`` or bytes)."""
    for suffix, unit in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size % unit == 0:
            return f"{int(size // unit)}{suffix}"
    return str(int(size))
