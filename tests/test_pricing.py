from __future__ import annotations

from decimal import Decimal

import genai_prices
import pytest

from agentlog.pricing import compute_costs

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "claude-3-5-haiku-latest", "gpt-4.1"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    ("input_tokens", "output_tokens", "cached"),
    [(1000, 500, None), (1_000_000, 0, 250_000), (7, 3, 7), (250_000, 20_000, 0)],
)
def test_costs_equal_genai_prices_exactly(
    model: str, input_tokens: int, output_tokens: int, cached: int | None
) -> None:
    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached
        ),
        model,
    )
    costs = compute_costs(model, None, input_tokens, output_tokens, cached)
    assert costs is not None
    assert costs.input == Decimal(expected.input_price)
    assert costs.output == Decimal(expected.output_price)
    assert costs.total == Decimal(expected.total_price)
    assert costs.provider == expected.provider.id


def test_unknown_model_and_inconsistent_usage(caplog: pytest.LogCaptureFixture) -> None:
    assert compute_costs("no-such-model-xyz", None, 10, 10, None) is None
    assert compute_costs("gpt-4o", None, 10, 10, 50) is None
    assert "exceeds input_tokens" in caplog.text
