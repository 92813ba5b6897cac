"""Units, size constants and parsing of human-friendly token counts.

Token counts use binary suffixes, as context windows are quoted: 128K = 131,072 and
1M = 1,048,576 tokens. Byte sizes keep GB (10^9) and GiB (2^30) apart.
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import ArrayLike

from planner.errors import KvplanError

KIB_BYTES = 2**10
MIB_BYTES = 2**20
GIB_BYTES = 2**30
GB_BYTES = 10**9
TB_BYTES = 10**12

BITS_PER_BYTE = 8
SECONDS_PER_HOUR = 3600.0
MILLION = 1_000_000

TOKEN_SUFFIX_MULTIPLIERS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}
# Largest token count accepted anywhere (1T tokens): far beyond any context window, and
# small enough for int64 arithmetic on counts and bytes.
MAX_TOKEN_COUNT = 2**40

_TOKEN_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)\s*$", re.IGNORECASE)


def parse_token_count(text: str | int, *, field: str = "context") -> int:
    """Parse '131072', '128K', '1M' or '1.5M' into a non-negative token count.

    Suffixes are binary (K = 1024) because context windows are quoted that way.
    """
    if isinstance(text, bool):
        raise KvplanError("not a token count", field=field, value=text, expected="e.g. 128K or 1M")
    if isinstance(text, int):
        value = text
    else:
        match = _TOKEN_PATTERN.match(str(text).replace("_", ""))
        if not match:
            if str(text).strip().startswith("-"):
                raise KvplanError(
                    "token count must not be negative",
                    field=field,
                    value=text,
                    expected="a count >= 0 such as 131072, 128K or 1M",
                )
            raise KvplanError(
                "not a token count",
                field=field,
                value=text,
                expected="an integer with optional K/M/G suffix, e.g. 128K or 1M",
            )
        number, suffix = match.groups()
        multiplier = TOKEN_SUFFIX_MULTIPLIERS[suffix.upper()]
        if "." not in number:  # integers stay exact
            return parse_token_count(int(number) * multiplier, field=field)
        scaled = float(number) * multiplier
        if scaled != int(scaled):
            raise KvplanError(
                "token count is not a whole number",
                field=field,
                value=text,
                expected="a whole number of tokens",
            )
        value = int(scaled)
    if value < 0:
        raise KvplanError(
            "token count must not be negative", field=field, value=text, expected="a count >= 0"
        )
    if value > MAX_TOKEN_COUNT:
        raise KvplanError(
            "token count is too large",
            field=field,
            value=text,
            expected=f"at most {MAX_TOKEN_COUNT:,} (1T)",
        )
    return value


def check_token_counts(
    values: ArrayLike, *, field: str = "context_tokens", minimum: int = 0
) -> None:
    """Raise a KvplanError unless every value is a whole token count in [minimum, 2^40]
    (ints, or floats with whole values; never bools, NaN or numbers beyond int64)."""
    expected = f"whole token counts from {minimum} to {MAX_TOKEN_COUNT:,} (2^40)"
    arr = np.asarray(values)
    shown = values if arr.ndim == 0 else None
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise KvplanError("not a token count", field=field, value=shown, expected=expected)
    if arr.size == 0:
        return
    if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr))):
        raise KvplanError(
            "not a whole number of tokens", field=field, value=shown, expected=expected
        )
    if arr.min() < minimum or arr.max() > MAX_TOKEN_COUNT:
        raise KvplanError("token count out of range", field=field, value=shown, expected=expected)


def format_tokens(tokens: int) -> str:
    """131072 -> '128K', 1048576 -> '1M'; other values stay plain."""
    for suffix in ("G", "M", "K"):
        mult = TOKEN_SUFFIX_MULTIPLIERS[suffix]
        if tokens >= mult and tokens % mult == 0:
            return f"{tokens // mult}{suffix}"
    return str(tokens)


def format_bytes(num_bytes: float) -> str:
    """Binary-prefixed human size: 1536 -> '1.50 KiB'."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
