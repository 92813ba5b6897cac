from __future__ import annotations

import pytest

from planner.errors import KvplanError
from planner.units import format_bytes, format_tokens, parse_token_count


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("131072", 131_072),
        ("128K", 131_072),
        ("128k", 131_072),
        ("1M", 1_048_576),
        ("1.5M", 1_572_864),
        ("0", 0),
        (4096, 4096),
        ("1_000", 1000),
    ],
)
def test_parse_token_count(text, tokens):
    assert parse_token_count(text) == tokens


@pytest.mark.parametrize("bad", ["-5", "abc", "1.3K", "", "5T", True])
def test_parse_token_count_rejects(bad):
    with pytest.raises(KvplanError, match="context"):
        parse_token_count(bad)


def test_format_round_trip():
    assert format_tokens(1_048_576) == "1M"
    assert format_tokens(163_840) == "160K"
    assert format_tokens(1000) == "1000"
    assert format_bytes(1536) == "1.50 KiB"


def test_large_counts_exact_up_to_the_cap_then_refused():
    # 2^40 - 1 is parsed exactly; beyond 2^40 (1T tokens) is refused with the field named.
    assert parse_token_count("1099511627775") == 2**40 - 1
    assert parse_token_count("1024G") == 2**40
    with pytest.raises(KvplanError, match="context.*too large"):
        parse_token_count("99999999999999999999")
