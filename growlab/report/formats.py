"""How the report prints numbers and orders names.

A mean is printed to the precision its spread justifies: the spread (a standard deviation or an
interval's half-width) is rounded to two significant digits and the mean to the same decimal
place, so 0.95213 ± 0.0123 reads 0.952 ± 0.012. Only the text outputs (markdown, HTML, LaTeX)
are rounded; runs.csv, the tables' CSV files and report.json keep full precision.
"""

from __future__ import annotations

import math
import re
from typing import Any

SIGNIFICANT = 2  # digits kept of a spread


def num(value: float, digits: int = 4) -> str:
    """Fixed point for ordinary numbers, scientific for very large or very small ones (a number
    printed without a spread to judge it by)."""
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.{max(digits - 1, 1)}e}"
    return f"{value:.{digits}f}"


def spread_places(spread: float) -> int:
    """Decimal places that keep two significant digits of `spread` (negative: tens, hundreds)."""
    exponent = math.floor(math.log10(abs(spread)))
    places = SIGNIFICANT - 1 - exponent
    rounded = round(abs(spread), places)
    if rounded and math.floor(math.log10(rounded)) > exponent:  # 0.0996 -> 0.10
        places -= 1
    return places


def _fixed(value: float, places: int, signed: bool) -> str:
    sign = "+" if signed and round(value, places) > 0 else ""
    if places <= 0:
        return f"{sign}{round(value, places):.0f}"
    return f"{sign}{value:.{places}f}"


def _scientific(value: float, places: int, signed: bool) -> str:
    """`value` in scientific notation, its mantissa cut at decimal place `places`."""
    exponent = math.floor(math.log10(abs(value))) if value else -places
    decimals = max(exponent + places, 0)
    return f"{value:+.{decimals}e}" if signed else f"{value:.{decimals}e}"


def usable(spread: float | None) -> bool:
    return spread is not None and math.isfinite(spread) and spread > 0


def at_spread(value: float, spread: float | None, digits: int = 4, signed: bool = False) -> str:
    """`value` rounded to the decimal place of `spread`'s second significant digit (without a
    usable spread, `digits` decimals as `num` prints them)."""
    if not usable(spread):
        text = num(value, digits)
        return f"+{text}" if signed and value > 0 else text
    assert spread is not None
    places = spread_places(spread)
    if abs(value) < 1e5 and places <= 6:
        return _fixed(value, places, signed)
    return _scientific(value, places, signed)


def spread_text(spread: float) -> str:
    """A spread to two significant digits."""
    places = spread_places(spread)
    if abs(spread) < 1e5 and places <= 6:
        return _fixed(spread, places, False)
    return f"{spread:.{SIGNIFICANT - 1}e}"


def mean_pm(mean: float, spread: float | None, digits: int = 4) -> str:
    """ "0.952 ± 0.012"; the mean alone (`digits` decimals) when there is no spread."""
    if not usable(spread):
        return num(mean, digits)
    assert spread is not None
    return f"{at_spread(mean, spread)} ± {spread_text(spread)}"


def interval(
    mean: float | None, low: float | None, high: float | None, digits: int = 4
) -> tuple[str, str]:
    """A signed mean and its interval "[low, high]", all rounded by the interval's half-width."""
    if mean is None:
        return "—", "—"
    if low is None or high is None:
        return at_spread(mean, None, digits, signed=True), "—"
    half = (high - low) / 2

    def cell(v: float) -> str:
        return at_spread(v, half, digits, signed=True)

    return cell(mean), f"[{cell(low)}, {cell(high)}]"


_CHUNKS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key putting run2 before run10: digit runs compare as numbers."""
    return tuple(
        (1, int(part), part) if part.isdigit() else (0, part.lower(), part)
        for part in _CHUNKS.split(text)
        if part
    )
