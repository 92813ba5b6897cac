"""Cost: $/GPU-hour to $ per million input, output and cached-input tokens; monthly bills;
API list prices for comparison (``planner/data/api_prices.yaml``, each with its source).

Cached input tokens skip prefill; what they still cost is the KV memory they occupy. We
charge them their share of the replica's KV pool for the request's lifetime (TTFT plus
output x TPOT): 1e6 x (bytes per cached token / pool bytes) x replica $/s x lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import Field

from planner.schema import Frozen
from planner.units import MILLION, SECONDS_PER_HOUR
from planner.validation import read_document, validate

HOURS_PER_MONTH = 730.0  # 365 x 24 / 12
SECONDS_PER_MONTH = HOURS_PER_MONTH * SECONDS_PER_HOUR
API_PRICES_FILE = Path(__file__).resolve().parent.parent / "data" / "api_prices.yaml"


def usd_per_million_tokens(usd_per_hour: float, tokens_per_s: float) -> float:
    """Price of a million tokens produced at tokens_per_s by something costing usd_per_hour."""
    return usd_per_hour / (tokens_per_s * SECONDS_PER_HOUR) * MILLION


def usd_per_million_cached_tokens(
    usd_per_hour: float, cached_token_bytes: float, kv_pool_bytes: float, lifetime_s: float
) -> float:
    """KV-pool rent of a million cached tokens held for lifetime_s."""
    share = cached_token_bytes / kv_pool_bytes
    return MILLION * share * usd_per_hour / SECONDS_PER_HOUR * lifetime_s


def monthly_usd(gpus: int, usd_per_gpu_hour: float) -> float:
    return gpus * usd_per_gpu_hour * HOURS_PER_MONTH


@dataclass(frozen=True)
class TokenPrices:
    usd_per_million_input_tokens: float
    usd_per_million_output_tokens: float
    usd_per_million_cached_input_tokens: float


class APIPrice(Frozen):
    model: str
    label: str
    usd_per_million_input_tokens: float | None = Field(None, ge=0)
    usd_per_million_output_tokens: float | None = Field(None, ge=0)
    usd_per_million_cached_input_tokens: float | None = Field(None, ge=0)
    source: str

    def monthly_usd(
        self,
        requests_per_s: float,
        input_tokens: float,
        output_tokens: float,
        prefix_hit_ratio: float = 0.0,
    ) -> float | None:
        """Monthly API bill for steady traffic; a share ``prefix_hit_ratio`` of prompt
        tokens billed at the cached-input price (the input price where none is listed);
        None where a price is unknown."""
        if self.usd_per_million_input_tokens is None or self.usd_per_million_output_tokens is None:
            return None
        cached_price = self.usd_per_million_cached_input_tokens
        if cached_price is None:
            cached_price = self.usd_per_million_input_tokens
        input_price = (
            1 - prefix_hit_ratio
        ) * self.usd_per_million_input_tokens + prefix_hit_ratio * cached_price
        requests = requests_per_s * SECONDS_PER_MONTH
        return (
            requests
            * (input_tokens * input_price + output_tokens * self.usd_per_million_output_tokens)
            / MILLION
        )


class APIPriceFile(Frozen):
    prices: tuple[APIPrice, ...]


@cache
def api_prices() -> tuple[APIPrice, ...]:
    return validate(APIPriceFile, read_document(API_PRICES_FILE), API_PRICES_FILE.name).prices


def api_prices_for(model_name: str) -> list[APIPrice]:
    return [p for p in api_prices() if p.model == model_name]
