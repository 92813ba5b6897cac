"""What kvplan shows and ships cites public sources (a repository path, a vendor page, a
paper, a model card, with dates), never a file a user of the repository does not have
(the development material beside it: ../shared/..., the seed articles, reference notes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner.plan.cost import api_prices

ROOT = Path(__file__).resolve().parents[1]
INTERNAL = re.compile(
    r"\.\./shared|seed article|seeds/|reference\.md|hardware\.md|reference/deepseek|\[verify\]",
    re.I,
)
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
SHIPPED = [
    *sorted((ROOT / "planner").rglob("*.py")),
    *sorted((ROOT / "planner").rglob("*.yaml")),
    *sorted((ROOT / "hardware_profiles").rglob("*.yaml")),
    *sorted((ROOT / "engines").rglob("*.yaml")),
    *sorted((ROOT / "scenarios").rglob("*")),
    *sorted((ROOT / "docs").rglob("*.md")),
    ROOT / "README.md",
]
# Where the (unshipped) Mooncake trace goes: an instruction, not a citation.
ALLOWED_TRACE_NOTE = "../shared/traces"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shipped_file_cites_a_file_outside_the_repository(path):
    rel = str(path.relative_to(ROOT))
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if INTERNAL.search(line.replace(ALLOWED_TRACE_NOTE, "")):
            pytest.fail(f"{rel}:{number} cites an internal file: {line.strip()[:120]}")


def test_api_prices_name_a_public_page_and_a_date():
    for price in api_prices():
        assert DATE.search(price.label), price.label
        assert "https://" in price.source and DATE.search(price.source), price.source
        assert not INTERNAL.search(price.source + price.label)


def test_each_model_lists_its_current_price_first():
    # The Cost page's headline uses the first price of each model: the most recent one.
    seen: dict[str, str] = {}
    for price in api_prices():
        date = DATE.search(price.label)
        assert date is not None
        if price.model in seen:
            assert date.group() <= seen[price.model], price.label
        else:
            seen[price.model] = date.group()
