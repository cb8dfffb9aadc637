"""Costs from token counts, priced by the ``genai-prices`` package.

``genai_prices.calc_price`` resolves and validates a model's price units on
every call (~120 µs), which dominated the flusher's time per record. Most
models are priced flat per million tokens: their rates are looked up once
(per hour, as prices can change on a date) and applied with three
multiplications. Tiered prices go through ``calc_price`` every time.
"""

from __future__ import annotations

import functools
import logging
import threading
from decimal import Decimal
from typing import Any, NamedTuple

from agentlog.clock import deadline_clock

logger = logging.getLogger("agentlog")

MILLION = Decimal(1_000_000)
RATES_TTL = 3600.0


class Costs(NamedTuple):
    input: Decimal
    output: Decimal
    total: Decimal
    provider: str | None


class _FlatRates(NamedTuple):
    input: Decimal
    output: Decimal
    cache_read: Decimal
    provider: str


# (model, provider) -> (expires at, rates); rates None: unknown model; "tiered": exact path.
_rates: dict[tuple[str, str | None], tuple[float, _FlatRates | str | None]] = {}
_rates_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _genai_prices() -> Any:
    # Imported on first use: the price snapshot takes ~0.3 s to load, and only
    # the flusher thread (or a sync write) ever prices a record.
    import genai_prices

    return genai_prices


def _resolve(model: str, provider: str | None) -> _FlatRates | str | None:
    prices = _genai_prices()
    try:
        result = prices.calc_price(
            prices.Usage(input_tokens=1, output_tokens=1), model, provider_id=provider
        )
    except LookupError:
        logger.debug("agentlog: no price known for model %r (provider %r)", model, provider)
        return None
    price = result.model_price
    rates = (price.input_mtok, price.output_mtok, price.cache_read_mtok)
    if not all(isinstance(rate, Decimal | None) for rate in rates):
        return "tiered"
    per_input = rates[0] or Decimal(0)
    per_cached = rates[2] if rates[2] is not None else per_input
    return _FlatRates(per_input, rates[1] or Decimal(0), per_cached, result.provider.id)


def _rates_for(model: str, provider: str | None) -> _FlatRates | str | None:
    key = (model, provider)
    now = deadline_clock()
    cached = _rates.get(key)
    if cached is None or cached[0] < now:
        with _rates_lock:
            cached = (now + RATES_TTL, _resolve(model, provider))
            _rates[key] = cached
    return cached[1]


def compute_costs(
    model: str,
    provider: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_tokens: int | None,
) -> Costs | None:
    """Costs in USD, or None when the model is not in the price list.

    ``input_tokens`` includes ``cached_tokens`` (OpenAI's convention, and
    genai-prices'): cached tokens are charged at the cache-read rate.
    """
    try:
        rates = _rates_for(model, provider)
        if rates is None:
            return None
        if isinstance(rates, _FlatRates):
            cached = cached_tokens or 0
            uncached = (input_tokens or 0) - cached
            if uncached < 0:
                raise ValueError(f"cached_tokens ({cached}) exceeds input_tokens ({input_tokens})")
            input_cost = (uncached * rates.input + cached * rates.cache_read) / MILLION
            output_cost = (output_tokens or 0) * rates.output / MILLION
            return Costs(input_cost, output_cost, input_cost + output_cost, rates.provider)
        prices = _genai_prices()
        usage = prices.Usage(
            input_tokens=input_tokens or 0,
            output_tokens=output_tokens or 0,
            cache_read_tokens=cached_tokens or None,
        )
        result = prices.calc_price(usage, model, provider_id=provider)
        return Costs(
            Decimal(result.input_price),
            Decimal(result.output_price),
            Decimal(result.total_price),
            result.provider.id,
        )
    except (ValueError, ArithmeticError, LookupError) as exc:
        # e.g. more cached than input tokens: the usage is inconsistent, not the model unknown.
        logger.warning("agentlog: could not price model %r: %s", model, exc)
        return None
