"""Costs from token counts, priced by the ``genai-prices`` package."""

from __future__ import annotations

import functools
import logging
from decimal import Decimal
from typing import Any, NamedTuple

logger = logging.getLogger("agentlog")


class Costs(NamedTuple):
    input: Decimal
    output: Decimal
    total: Decimal
    provider: str | None


@functools.lru_cache(maxsize=1)
def _genai_prices() -> Any:
    # Imported on first use: the price snapshot takes ~0.3 s to load, and only
    # the flusher thread (or a sync write) ever prices a record.
    import genai_prices

    return genai_prices


_unknown_models: set[tuple[str, str | None]] = set()


def compute_costs(
    model: str,
    provider: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_tokens: int | None,
) -> Costs | None:
    """Costs in USD, or None when the model is not in the price list."""
    if (model, provider) in _unknown_models:
        return None
    prices = _genai_prices()
    usage = prices.Usage(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        cache_read_tokens=cached_tokens or None,
    )
    try:
        result = prices.calc_price(usage, model, provider_id=provider)
    except LookupError:
        _unknown_models.add((model, provider))
        logger.debug("agentlog: no price known for model %r (provider %r)", model, provider)
        return None
    except (ValueError, ArithmeticError) as exc:
        # e.g. more cached than input tokens: the usage is inconsistent, not the model unknown.
        logger.warning("agentlog: could not price model %r: %s", model, exc)
        return None
    return Costs(
        input=Decimal(result.input_price),
        output=Decimal(result.output_price),
        total=Decimal(result.total_price),
        provider=result.provider.id,
    )
