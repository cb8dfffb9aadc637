"""Hypothesis strategies for property-testing what agentlog stores.

Redaction: ``secrets()``, ``payloads()``, ``payloads_with_secrets()`` and
``redaction_configs()``. Records: ``executions()`` and ``batches()``.

This module is imported only when hypothesis is installed (the ``testing``
extra), through ``pytest_agentlog.strategies`` or hypothesis' entry point.
"""

# ruff: noqa: E402 - the entry point hook comes before the imports (see its docstring)
from __future__ import annotations


def _hypothesis_setup_hook() -> None:
    """Hypothesis' entry point: lets ``st.from_type`` build agentlog's types.

    It is defined before this module imports hypothesis: when this module is
    imported first, ``import hypothesis`` runs hypothesis' entry points, which
    load this hook from the module still being imported. So it registers
    functions, which look the strategies up when ``from_type`` first needs them.
    """
    from hypothesis import strategies as st

    from agentlog.execution import Execution
    from agentlog.redaction import Redaction

    st.register_type_strategy(Redaction, lambda _type: redaction_configs())
    st.register_type_strategy(Execution, lambda _type: executions())


import base64
import dataclasses
import re
import string
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import hypothesis
from hypothesis import strategies as st

from agentlog.execution import Execution
from agentlog.redaction import DEFAULT_KEYS, DEFAULT_PATTERNS, Redaction, key_words
from agentlog.store import CHUNK_SIZE

__all__ = [
    "batches",
    "executions",
    "payloads",
    "payloads_with_secrets",
    "redaction_configs",
    "secrets",
]

_ALNUM = string.ascii_letters + string.digits
_B64URL = _ALNUM + "-_"
_B64 = _ALNUM + "+/"
_UPPER_DIGITS = string.ascii_uppercase + string.digits
_TOKEN68 = _ALNUM + "-._~+/"
_PASSWORD = _ALNUM + "-._~!$&*+,;=%"

# Key names met in LLM payloads that must survive redaction (several look close
# to a sensitive word without being one).
_SAFE_KEYS = (
    "model",
    "messages",
    "role",
    "content",
    "temperature",
    "max_tokens",
    "top_p",
    "n",
    "stop",
    "user_id",
    "name",
    "tool_calls",
    "arguments",
    "function",
    "type",
    "id",
    "index",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "total_tokens",
    "finish_reason",
    "metadata",
    "tags",
    "author",
    "keyboard",
    "monkey",
    "tokenizer",
    "description",
    "query",
    "results",
    "score",
    "title",
    "choices",
    "delta",
    "seed",
    "stream",
    "tenant",
    "trace_id",
    "passenger",
    "secretary",
    "keynote",
    "",
)
_KEY_AFFIXES = ("openai", "my", "x", "user", "db", "primary", "v2", "stripe", "aws")
_PROSE_ALPHABET = string.ascii_letters + string.digits + " ,.;!?()'\"\n\t"


def _text(alphabet: str, min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)


def _prefixed(
    prefixes: st.SearchStrategy[str], *parts: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    return st.tuples(prefixes, *parts).map("".join)


def _pem() -> st.SearchStrategy[str]:
    kind = st.sampled_from(["", "RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED "])
    lines = st.lists(_text(_B64, 64, 64), min_size=1, max_size=6)
    last = _text(_B64, 16, 60).map(lambda s: s + "==")
    return st.builds(
        lambda k, body, tail: (
            f"-----BEGIN {k}PRIVATE KEY-----\n"
            + "\n".join([*body, tail])
            + f"\n-----END {k}PRIVATE KEY-----"
        ),
        kind,
        lines,
        last,
    )


def _basic() -> st.SearchStrategy[str]:
    credentials = st.builds(
        lambda user, password: base64.b64encode(f"{user}:{password}".encode()).decode(),
        _text(_ALNUM, 3, 12),
        _text(_PASSWORD, 12, 30),
    )
    # What the Basic pattern takes for base64 (prose words are not credentials).
    looks_encoded = re.compile(r"[0-9+/=]|[a-z][A-Z]")
    return _prefixed(
        st.sampled_from(["Basic ", "basic ", "BASIC "]),
        credentials.filter(lambda b64: looks_encoded.search(b64) is not None),
    )


def _url() -> st.SearchStrategy[str]:
    return st.builds(
        lambda scheme, user, password, host, tail: f"{scheme}://{user}:{password}@{host}{tail}",
        st.sampled_from(
            ["postgresql", "postgresql+psycopg", "mysql", "redis", "rediss", "amqp", "https"]
        ),
        _text(_ALNUM, 1, 12),
        _text(_PASSWORD, 16, 40),
        _text(string.ascii_lowercase, 2, 10).map(lambda h: f"{h}.example.com"),
        st.sampled_from(["", ":5432/app", "/0", ":6379", "/path?x=1"]),
    )


def secrets() -> st.SearchStrategy[str]:
    """Credentials of every shape the default patterns know, with random bodies.

    Each one, alone or between whitespace in a longer string, is redacted by
    ``agentlog.Redaction()``; its random part is at least 16 characters long.
    """
    openai = st.one_of(
        _prefixed(st.just("sk-"), _text(_ALNUM, 20, 64)),
        _prefixed(st.just("sk-proj-"), _text(_B64URL, 40, 160)),
        _prefixed(st.just("sk-svcacct-"), _text(_B64URL, 40, 120)),
    )
    anthropic = _prefixed(
        st.sampled_from(["sk-ant-api03-", "sk-ant-admin01-"]),
        _text(_B64URL, 80, 95),
        st.just("AA"),
    )
    aws = _prefixed(st.sampled_from(["AKIA", "ASIA"]), _text(_UPPER_DIGITS, 16, 16))
    github = st.one_of(
        _prefixed(st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]), _text(_ALNUM, 36, 36)),
        _prefixed(st.just("github_pat_"), _text(_ALNUM + "_", 82, 82)),
    )
    slack = st.builds(
        lambda kind, a, b, c: f"xox{kind}-{a}-{b}-{c}",
        st.sampled_from("abprs"),
        _text(string.digits, 10, 13),
        _text(string.digits, 10, 13),
        _text(_ALNUM, 24, 32),
    )
    google = _prefixed(st.just("AIza"), _text(_B64URL, 35, 35))
    stripe = _prefixed(
        st.sampled_from(["sk_live_", "rk_live_", "sk_test_", "rk_test_"]), _text(_ALNUM, 24, 99)
    )
    bearer = _prefixed(
        st.sampled_from(["Bearer ", "bearer ", "BEARER "]),
        _text(_TOKEN68, 16, 80),
        st.sampled_from(["", "=", "=="]),
    )
    jwt = st.builds(
        lambda h, p, s: f"eyJ{h}.eyJ{p}.{s}",
        _text(_B64URL, 10, 60),
        _text(_B64URL, 16, 200),
        _text(_B64URL, 16, 86),
    )
    return st.one_of(
        openai, anthropic, aws, github, slack, google, stripe, bearer, _basic(), jwt, _pem(), _url()
    )


def _render_key(words: tuple[str, ...], style: str) -> str:
    if style == "snake":
        return "_".join(words)
    if style == "kebab":
        return "-".join(words)
    if style == "upper":
        return "_".join(words).upper()
    if style == "title-kebab":
        return "-".join(w.capitalize() for w in words)
    if style == "dotted":
        return ".".join(words)
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    return "".join(words)  # "joined": apikey


@st.composite
def _sensitive_key(draw: st.DrawFn, redaction: Redaction) -> str:
    """A key the redaction treats as sensitive: one of its entries in another
    spelling ("API-Key", "apiKey", "OPENAI_API_KEY", "apikey")."""
    if not redaction.keys:
        hypothesis.reject()
    words = key_words(draw(st.sampled_from(redaction.keys)))
    style = draw(
        st.sampled_from(
            ["snake", "kebab", "upper", "title-kebab", "dotted", "camel", "pascal", "joined"]
        )
    )
    if style != "joined":
        if draw(st.booleans()):
            words = (draw(st.sampled_from(_KEY_AFFIXES)), *words)
        if draw(st.booleans()):
            words = (*words, draw(st.sampled_from(_KEY_AFFIXES)))
    return _render_key(words, style)


def _safe_keys(redaction: Redaction) -> st.SearchStrategy[str]:
    """Key names that ``redaction`` leaves alone: never sensitive, never rewritten."""
    return st.one_of(st.sampled_from(_SAFE_KEYS), st.text(max_size=16)).filter(
        lambda key: not redaction.is_sensitive_key(key) and redaction.text(key) == key
    )


def _leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=40),
        st.binary(max_size=40),
    )


def payloads(redaction: Redaction | None = None) -> st.SearchStrategy[Any]:
    """JSON-like values as agents pass them: nested dicts (text keys that are not
    sensitive for ``redaction``, the default one unless given), lists, tuples,
    str, int (any size), float (nan and infinities included), bool, None, bytes."""
    keys = _safe_keys(redaction or Redaction())

    def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, max_size=4).map(tuple),
            st.dictionaries(keys, children, max_size=4),
        )

    return st.recursive(_leaves(), containers, max_leaves=20)


def _prose() -> st.SearchStrategy[str]:
    return st.text(alphabet=_PROSE_ALPHABET, max_size=30)


@st.composite
def _payload_with_secrets(draw: st.DrawFn, redaction: Redaction) -> tuple[Any, list[str]]:
    planted: list[str] = []
    safe_keys = _safe_keys(redaction)
    sensitive_keys = _sensitive_key(redaction)
    leaves = _leaves()

    def hidden() -> Any:
        """A value hiding one new secret."""
        secret = draw(secrets())
        planted.append(secret)
        how = draw(st.sampled_from(["key", "key-nested", "text", "bytes", "list"]))
        if how == "key":
            return {draw(sensitive_keys): secret}
        if how == "key-nested":
            return {draw(sensitive_keys): {"value": [secret], "note": draw(_prose())}}
        text = f"{draw(_prose())} {secret} {draw(_prose())}"
        if how == "bytes":
            return text.encode()
        if how == "list":
            return [draw(leaves), text]
        return text

    def node(depth: int) -> Any:
        kind = draw(st.sampled_from(["leaf", "secret", "dict", "list", "tuple"]))
        if depth >= 5 or kind == "leaf":
            return draw(leaves)
        if kind == "secret":
            return hidden()
        size = draw(st.integers(min_value=0, max_value=4))
        children = [node(depth + 1) for _ in range(size)]
        if kind == "list":
            return children
        if kind == "tuple":
            return tuple(children)
        result: dict[str, Any] = {}
        for child in children:
            if draw(st.integers(min_value=0, max_value=3)) == 0:
                secret = draw(secrets())
                planted.append(secret)
                result[draw(sensitive_keys)] = secret
            result[draw(safe_keys)] = child
        return result

    payload = node(0)
    if not planted:
        payload = {draw(safe_keys): payload, draw(sensitive_keys): hidden()}
    return payload, planted


def payloads_with_secrets(
    redaction: Redaction | None = None,
) -> st.SearchStrategy[tuple[Any, list[str]]]:
    """``(payload, planted)``: a payload with at least one secret in it, and those
    secrets. A secret sits at any depth, as the value under a sensitive key of
    ``redaction`` (in any spelling: "API-Key", "apiKey") or inside a longer
    string, str or bytes, between whitespace. Other keys are never sensitive.
    """
    return _payload_with_secrets(redaction or Redaction())


_EXTRA_KEYS = (
    "customer_email",
    "email",
    "phone_number",
    "iban",
    "date_of_birth",
    "home_address",
    "license_plate",
)
_CUSTOM_PATTERNS: tuple[str | re.Pattern[str], ...] = (
    r"\bACME-[0-9]{8}\b",
    r"(?i)internal-token-[a-f0-9]{12}",
    re.compile(r"cust_[0-9]{6,}", re.IGNORECASE),
    r"employee_id=(?P<secret>\d+)",
)
_PLACEHOLDERS = ("[REDACTED]", "***", "[FILTERED]", "<redacted>", "█████", "[hidden]")


@st.composite
def _redaction_config(draw: st.DrawFn) -> Redaction:
    extra = draw(
        st.lists(
            st.one_of(st.sampled_from(_EXTRA_KEYS), _text(string.ascii_lowercase, 3, 10)),
            max_size=3,
            unique=True,
        )
    )
    custom = draw(st.lists(st.sampled_from(_CUSTOM_PATTERNS), max_size=1))
    return Redaction(
        keys=DEFAULT_KEYS + tuple(extra),
        patterns=(*DEFAULT_PATTERNS, *custom),
        max_value_length=draw(st.integers(min_value=64, max_value=20_000)),
        placeholder=draw(st.sampled_from(_PLACEHOLDERS)),
    )


def redaction_configs() -> st.SearchStrategy[Redaction]:
    """``Redaction`` settings: the default keys plus a few, the default patterns
    plus maybe a custom one (a string, a compiled pattern, one with a ``secret``
    group), ``max_value_length`` in 64..20_000 and a placeholder."""
    return _redaction_config()


# ---------------------------------------------------------------------------
# Execution strategies: executions() and batches() go below this line.
# ---------------------------------------------------------------------------

_AGENTS = ("support-bot", "summarizer", "planner", "researcher", "router", "sql-agent")
_MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "claude-sonnet-4-5",
    "claude-3-5-haiku-latest",
    "gemini-1.5-pro",
    "my-fine-tuned-model",
)
_PROVIDERS = ("openai", "anthropic", "google", "azure")
_FINISHED = ("success", "error", "timeout")
_ERRORS = ("ValueError", "TimeoutError", "openai.RateLimitError", "httpx.ConnectError")
_FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")
# Text any database takes (PostgreSQL refuses NUL in text).
_TEXT = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1),  # hypothesis takes naive bounds
    max_value=datetime(2099, 12, 31),
    timezones=st.just(timezone.utc),
)


def _short_text(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(alphabet=_TEXT, min_size=min_size, max_size=max_size)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def _execution(
    draw: st.DrawFn,
    agent: st.SearchStrategy[str],
    status: st.SearchStrategy[str],
    redaction: Redaction | None,
) -> Execution:
    started = draw(_TIMES)
    duration_ms = draw(st.floats(min_value=0, max_value=3_600_000, allow_nan=False))
    state = draw(status)
    failed = state != "success"
    costs = st.decimals(min_value=0, max_value=1000, places=10, allow_nan=False)
    payload = payloads(redaction)
    return Execution(
        id=draw(st.uuids()),
        agent=draw(agent),
        model=draw(_maybe(st.sampled_from(_MODELS))),
        provider=draw(_maybe(st.sampled_from(_PROVIDERS))),
        status=state,
        started_at=started,
        completed_at=started + timedelta(milliseconds=duration_ms),
        duration_ms=duration_ms,
        input_tokens=draw(_maybe(st.integers(min_value=0, max_value=2**31 - 1))),
        output_tokens=draw(_maybe(st.integers(min_value=0, max_value=2**31 - 1))),
        cached_tokens=draw(_maybe(st.integers(min_value=0, max_value=2**20))),
        total_cost=draw(_maybe(costs)),
        finish_reason=None if failed else draw(_maybe(st.sampled_from(_FINISH_REASONS))),
        error_class=draw(st.sampled_from(_ERRORS)) if failed else None,
        error_message=draw(_maybe(_short_text(1, 200))) if failed else None,
        parameters=draw(_maybe(payload)),
        system_prompt=draw(_maybe(_short_text(max_size=200))),
        prompt=draw(_maybe(payload)),
        response=None if failed else draw(_maybe(payload)),
        tool_calls=draw(_maybe(st.lists(payload, max_size=3))),
        metadata=draw(st.dictionaries(_short_text(1, 20), payload, max_size=3)),
        trace_id=draw(_maybe(_short_text(1, 64))),
        request_id=draw(_maybe(_short_text(1, 64))),
        parent_id=draw(_maybe(st.uuids())),
        tenant_id=draw(_maybe(st.sampled_from(["acme", "globex", "initech"]))),
    )


def executions(
    *,
    agent: str | st.SearchStrategy[str] | None = None,
    status: str | st.SearchStrategy[str] | None = None,
    redaction: Redaction | None = None,
) -> st.SearchStrategy[Execution]:
    """Finished ``agentlog.Execution`` records as agents produce them: any field may be
    missing, tokens up to the column's range, costs as Decimal, aware UTC times
    (``completed_at`` = ``started_at`` + ``duration_ms``), errors only on failures,
    and prompts, parameters, responses and metadata from ``payloads(redaction)``.

    ``agent`` and ``status`` pin those fields (a value or a strategy).
    ``st.from_type(agentlog.Execution)`` gives ``executions()``.
    """
    agents: st.SearchStrategy[str]
    if agent is None:
        agents = st.one_of(st.sampled_from(_AGENTS), _short_text(1, 64))
    elif isinstance(agent, str):
        agents = st.just(agent)
    else:
        agents = agent
    statuses: st.SearchStrategy[str]
    if status is None:
        statuses = st.sampled_from(_FINISHED)
    elif isinstance(status, str):
        statuses = st.just(status)
    else:
        statuses = status
    return _execution(agents, statuses, redaction)


def _batch_sizes(min_size: int, max_size: int) -> st.SearchStrategy[int]:
    """Any size, with the sizes around ``CHUNK_SIZE`` boundaries drawn often when in range."""
    edges = [
        size
        for size in (1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 1)
        if min_size <= size <= max_size
    ]
    sizes = st.integers(min_value=min_size, max_value=max_size)
    return st.one_of(st.sampled_from(edges), sizes) if edges else sizes


@st.composite
def _batch(
    draw: st.DrawFn,
    min_size: int,
    max_size: int,
    duplicates: bool,
    redaction: Redaction | None,
) -> list[Execution]:
    size = draw(_batch_sizes(min_size, max_size))
    if size == 0:
        return []
    # A few drawn records, repeated with their own ids and times: a batch of
    # a thousand stays cheap to generate and to shrink.
    templates = draw(st.lists(executions(redaction=redaction), min_size=1, max_size=min(size, 8)))
    first_id = draw(st.integers(min_value=0, max_value=2**128 - 1 - size))
    first_start = draw(_TIMES)
    batch = []
    for index in range(size):
        template = templates[index % len(templates)]
        started = first_start + timedelta(microseconds=index)
        took = timedelta(milliseconds=template.duration_ms or 0.0)
        batch.append(
            dataclasses.replace(
                template,
                id=uuid.UUID(int=first_id + index),
                started_at=started,
                completed_at=started + took,
            )
        )
    if duplicates and size > 1:
        # A record sent twice (a retried job, a replayed spool), maybe changed meanwhile.
        pairs = st.tuples(
            st.integers(min_value=0, max_value=size - 1),
            st.integers(min_value=0, max_value=size - 1),
        )
        for earlier, later in draw(st.lists(pairs, max_size=min(size, 10))):
            if earlier < later:
                batch[later] = dataclasses.replace(batch[later], id=batch[earlier].id)
    return batch


def batches(
    min_size: int = 0,
    max_size: int = 50,
    *,
    duplicates: bool = True,
    redaction: Redaction | None = None,
) -> st.SearchStrategy[list[Execution]]:
    """Lists of ``executions()`` for batch-insert properties.

    Sizes around ``agentlog.store.CHUNK_SIZE`` (rows per INSERT statement) are
    drawn often when ``max_size`` reaches them; with ``duplicates`` some ids
    repeat (a later copy may differ: the first one stored wins). Every id and
    ``started_at`` is otherwise distinct, so the batch order is the time order.
    """
    if min_size < 0 or max_size < min_size:
        raise ValueError(f"batches(): need 0 <= min_size <= max_size, got {min_size}, {max_size}")
    return _batch(min_size, max_size, duplicates, redaction)
