"""The tracked call every scenario runs: a small, realistic agent call (~1.5 KB)."""

from __future__ import annotations

from typing import Any

import orjson

from agentlog.execution import Execution

AGENT = "support-bot"
MODEL = "gpt-4o"

PARAMETERS: dict[str, Any] = {
    "temperature": 0.2,
    "max_tokens": 512,
    "top_p": 1.0,
    "tool_choice": "auto",
    "tools": ["search_orders", "refund_order", "escalate"],
    "ticket": {"id": "T-48213", "channel": "email", "priority": "normal", "locale": "en-GB"},
    "user_id": "u-90e1f4",
}
PROMPT: list[dict[str, str]] = [
    {
        "role": "system",
        "content": "You are Acme's support assistant. Answer briefly, cite the order, "
        "never promise refunds above 100 EUR without escalating.",
    },
    {
        "role": "user",
        "content": "Hi, my order #A-77812 arrived yesterday but the blender jar is cracked. "
        "I paid 89.99 EUR. I would like either a replacement jar or a refund, whichever "
        "is faster. I have photos of the damage and the box if you need them. Also, can "
        "you tell me whether the warranty covers the motor base? Thanks, Dana.",
    },
]
RESPONSE: dict[str, Any] = {
    "role": "assistant",
    "content": "Hi Dana, sorry about the cracked jar on order #A-77812. I've arranged a "
    "replacement jar, shipped free by express; it should arrive within 2 working days, "
    "and you don't need to return the damaged one. If you'd rather have a refund of the "
    "jar's price instead, just reply to this email. The motor base is covered by the "
    "2-year warranty from the delivery date. Photos aren't needed this time. Best, Acme "
    "Support.",
    "finish_reason": "stop",
}
INPUT_TOKENS = 812
OUTPUT_TOKENS = 95
TENANT = "acme"

PAYLOAD_BYTES = len(
    orjson.dumps({"parameters": PARAMETERS, "prompt": PROMPT, "response": RESPONSE})
)


class NoLog:
    """What the body of an untracked call writes to (the 'no logging' baseline)."""

    __slots__ = ("input_tokens", "output_tokens", "response")

    input_tokens: int | None
    output_tokens: int | None
    response: object

    def usage(self, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


def sample_execution(agent: str = AGENT, **fields: Any) -> Execution:
    """A finished record with the benchmark's payload, as the flusher would receive it."""
    return Execution(
        agent=agent,
        model=MODEL,
        parameters=PARAMETERS,
        prompt=PROMPT,
        response=RESPONSE,
        tenant_id=TENANT,
        status="success",
        input_tokens=INPUT_TOKENS,
        output_tokens=OUTPUT_TOKENS,
        **fields,
    )
