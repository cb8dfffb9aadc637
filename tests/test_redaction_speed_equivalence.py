"""The optimised ``agentlog.redaction`` gives exactly what the pre-optimisation
reference (``tests/support/redaction_reference.py``) gives, for any input.

The optimisations (guards that skip patterns which cannot match, inlined walk,
key and text caches) must not change one character of the output, nor a type:
results are compared by value and by type, recursively.
"""

from __future__ import annotations

import enum
import math
import re
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentlog.redaction import DEFAULT_KEYS, DEFAULT_PATTERNS, Redaction
from pytest_agentlog import strategies as als

from .support import redaction_reference as reference

# Text that sits next to the guards' anchors, or completes / breaks a secret's
# boundaries: escapes before a token, glued prefixes, near misses.
_NEAR_MISSES = (
    "sk-",
    "sk-short",
    "task-",
    "xoxb-",
    "xox",
    "AKIA",
    "ASIA",
    "AIza",
    "ghp_",
    "github_pat_",
    "sk_live_",
    "rk_test_",
    "k_live_",
    "eyJ",
    ".eyJ",
    "eyJhbGciOiJIUzI1NiJ9.eyJ",
    "-----BEGIN ",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
    "PRIVATE KEY",
    "Bearer ",
    "bearer\t",
    "BEARER  ",
    "Basic ",
    "basic\n",
    "BASIC ",
    "Basic configuration",
    "bearer of news",
    "://",
    "https://user:",
    "postgres://u:p@h",
    "@",
    "\\n",
    "\\t",
    "%0A",
    "%2F",
    "[REDACTED]",
    "***",
    "…[truncated 12 chars]",
    "\x00",
    "\ud800",
    "é",
    "ACME-12345678",
    "internal-token-0123456789ab",
    "employee_id=42",
)
_SEPARATORS = ("", " ", "\n", "\t", "-", "_", ".", ":", "/", "@", "=", "\\n", "%0A", '"')

_ALNUM = string.ascii_letters + string.digits
_UPPER_DIGITS = string.ascii_uppercase + string.digits


def _run(alphabet: str, length: int) -> st.SearchStrategy[str]:
    """``alphabet`` characters, one fewer than ``length`` to one more: the edges
    of a pattern's minimum length, where a guard that asks too much shows."""
    return st.text(alphabet, min_size=max(length - 1, 0), max_size=length + 1)


def _joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


_WHITESPACE = st.text(" \t\n\x0b\xa0\u2003", min_size=1, max_size=2)
# Each built-in, with every prefix variant and bodies at their minimum length.
_EDGE_SECRETS = (
    _joined(st.just("sk-"), _run(_ALNUM + "_-", 20)),
    _joined(st.sampled_from(["AKIA", "ASIA"]), _run(_UPPER_DIGITS, 16)),
    _joined(st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]), _run(_ALNUM, 30)),
    _joined(st.just("github_pat_"), _run(_ALNUM + "_", 30)),
    _joined(st.sampled_from([f"xox{k}-" for k in "abeprs"]), _run(_ALNUM + "-", 10)),
    _joined(st.just("AIza"), _run(_ALNUM + "_-", 30)),
    _joined(st.sampled_from(["sk_", "rk_"]), st.sampled_from(["live_", "test_"]), _run(_ALNUM, 10)),
    _joined(
        st.sampled_from(["Bearer", "bearer", "BEARER"]),
        _WHITESPACE,
        _run(_ALNUM + "-._~+/", 8),
        st.sampled_from(["", "=", "=="]),
    ),
    _joined(
        st.sampled_from(["Basic", "basic", "BASIC"]),
        _WHITESPACE,
        _run(_ALNUM + "+/", 8),
        st.sampled_from(["", "=", "=="]),
    ),
    _joined(
        st.sampled_from(["", "https", "redis"]),
        st.just("://"),
        st.text(_ALNUM + "-.%", max_size=3),
        st.just(":"),
        st.text(_ALNUM + ":-.!", min_size=1, max_size=3),
        st.just("@"),
    ),
    _joined(
        st.just("eyJ"),
        _run(_ALNUM + "_-", 1),
        st.just(".eyJ"),
        _run(_ALNUM + "_-", 1),
        st.just("."),
        st.text(_ALNUM + "_-", max_size=3),
    ),
    _joined(
        st.just("-----BEGIN"),
        st.text(_UPPER_DIGITS + " ", max_size=3),
        st.just("PRIVATE KEY"),
        st.text(_UPPER_DIGITS + " ", max_size=2),
        st.just("-----"),
        st.text(_ALNUM + "+/=\n", max_size=20),
        st.sampled_from(["", "-----END PRIVATE KEY-----", "-----ENDPRIVATE KEY-----"]),
    ),
)
_BEFORE = ("", " ", "x", "_", "-", ".", "\\n", "\\t", "%0A", "%2f", "task", "\n")
_AFTER = ("", " ", "x", "X", "1", "=", "-", "_", ".", "/", "@h", "\n", "é")

_piece = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=_ALNUM + "-_.:/@+= ", max_size=40),
    st.text(st.characters(exclude_categories=()), max_size=10),
    st.sampled_from(_NEAR_MISSES),
    als.secrets(),
    *_EDGE_SECRETS,
)


@st.composite
def texts(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(_piece, max_size=8))
    separators = draw(st.lists(st.sampled_from(_SEPARATORS), min_size=len(pieces)))
    text = "".join(p + s for p, s in zip(pieces, separators, strict=False))
    # Long strings: over any max_value_length (the scanned window is tested below).
    return text * draw(st.sampled_from((1, 1, 1, 1, 8, 60)))


class Colour(enum.Enum):
    RED = "sk-" + "r" * 24
    BLUE = 2


class Key(str):
    """A str subclass: stored as a plain str."""


_keys = st.one_of(
    st.sampled_from(DEFAULT_KEYS),
    st.sampled_from(("role", "content", "max_tokens", "user_id", "x-api-key", "apiKey")),
    st.sampled_from(("customer_email", "phone_number", "ssn_last4", "secretary")),
    st.text(max_size=12),
    texts(),
    st.integers(-5, 5),
    st.none(),
    st.booleans(),
    st.binary(max_size=8),
    st.sampled_from(list(Colour)),
    st.text(max_size=8).map(Key),
)

_leaves = st.one_of(
    texts(),
    st.text(max_size=20),
    st.sampled_from(
        (math.nan, math.inf, -math.inf, -0.0, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1)
    ),
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=40),
    st.sampled_from(list(Colour)),
    st.text(max_size=20).map(Key),
)


def _payloads() -> st.SearchStrategy[Any]:
    return st.recursive(
        _leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.lists(children, max_size=4).map(tuple),
            st.dictionaries(_keys, children, max_size=6),
            st.frozensets(st.one_of(st.text(max_size=10), st.integers()), max_size=4),
        ),
        max_leaves=20,
    )


_custom_patterns = st.sampled_from(
    (
        r"\bACME-[0-9]{8}\b",
        r"(?i)internal-token-[a-f0-9]{12}",
        re.compile(r"cust_[0-9]{6,}", re.IGNORECASE),
        r"employee_id=(?P<secret>\d+)",
        r"(a)\1{3}",  # a back-reference: searched on its own, not combined
        r"(?<=key=)[^&\s]+",
        re.compile(DEFAULT_PATTERNS[2], re.IGNORECASE),  # a built-in with a flag: no guard
        r"REDACTED",  # matches inside the default placeholder's context only with brackets
    )
)


@st.composite
def configs(draw: st.DrawFn) -> Redaction:
    if draw(st.booleans()):
        return draw(als.redaction_configs())
    builtins = draw(st.lists(st.sampled_from(DEFAULT_PATTERNS), unique=True))
    custom = draw(st.lists(_custom_patterns, max_size=2))
    patterns = draw(st.permutations([*builtins, *custom]))
    placeholder = draw(st.sampled_from(("[REDACTED]", "***", "<x>", "█", "sk-")))
    try:
        return Redaction(
            keys=DEFAULT_KEYS + tuple(draw(st.lists(st.text(string.ascii_letters, min_size=1)))),
            patterns=patterns,
            max_value_length=draw(st.integers(min_value=32, max_value=400)),
            placeholder=placeholder,
        )
    except ValueError:  # e.g. a placeholder that a chosen pattern matches
        return Redaction()


def reference_of(redaction: Redaction) -> reference.Redaction:
    return reference.Redaction(
        keys=redaction.keys,
        patterns=redaction.patterns,
        max_value_length=redaction.max_value_length,
        placeholder=redaction.placeholder,
    )


def assert_same(actual: Any, expected: Any) -> None:
    """Equal, and of the same types all the way down (1 == 1.0 == True otherwise)."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert type(key) is str
            assert_same(actual[key], expected[key])
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == expected


_slow = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@given(redaction=configs(), payload=_payloads())
@settings(_slow, max_examples=200)
def test_apply_matches_the_reference(redaction: Redaction, payload: Any) -> None:
    old = reference_of(redaction)
    # Twice: the second call runs on warm caches.
    assert_same(redaction.apply(payload), old.apply(payload))
    assert_same(redaction.apply(payload), old.apply(payload))


@given(redaction=configs(), text=texts())
@settings(_slow, max_examples=300)
@example(redaction=Redaction(), text="Authorization: Bearer " + "a" * 20)
@example(redaction=Redaction(max_value_length=32), text="x" * 30 + " sk-" + "q" * 30)
def test_text_and_keys_match_the_reference(redaction: Redaction, text: str) -> None:
    old = reference_of(redaction)
    assert_same(redaction.text(text), old.text(text))
    key = text[:300]
    assert redaction.is_sensitive_key(key) == old.is_sensitive_key(key)
    assert_same(redaction.apply({key: text}), old.apply({key: text}))


@given(st.data())
@settings(_slow, max_examples=100)
def test_planted_secrets_match_the_reference(data: st.DataObject) -> None:
    redaction = data.draw(als.redaction_configs())
    payload, _ = data.draw(als.payloads_with_secrets(redaction))
    assert_same(redaction.apply(payload), reference_of(redaction).apply(payload))


_EDGE_NAMES = (
    "openai",
    "aws",
    "github",
    "github-pat",
    "slack",
    "google",
    "stripe",
    "bearer",
    "basic",
    "url",
    "jwt",
    "pem",
)


@pytest.mark.parametrize("secret", _EDGE_SECRETS, ids=_EDGE_NAMES)
@given(data=st.data())
@settings(_slow, max_examples=60)
def test_each_builtin_at_its_edges_matches_the_reference(
    secret: st.SearchStrategy[str], data: st.DataObject
) -> None:
    text = (
        data.draw(st.sampled_from(_BEFORE)) + data.draw(secret) + data.draw(st.sampled_from(_AFTER))
    )
    for redaction in (Redaction(), Redaction(max_value_length=32, placeholder="sk-")):
        assert_same(redaction.text(text), reference_of(redaction).text(text))


@given(texts())
@settings(_slow, max_examples=200)
def test_guards_never_skip_a_pattern_that_matches(text: str) -> None:
    """Each built-in's guards pass on every string the built-in matches in."""
    matchers = Redaction()._matchers
    for pattern, guards in zip(matchers.all, matchers.guards, strict=True):
        assert guards is not None
        if pattern.search(text):
            assert any(a in text and p.search(text) for a, p in guards), pattern.pattern
            assert any(a in text and p.search(text) for a, p in matchers.gate)


def test_cycles_and_odd_objects_match_the_reference() -> None:
    cyclic: dict[str, Any] = {"a": [1, "sk-" + "z" * 30]}
    cyclic["a"].append(cyclic)
    cyclic["self"] = cyclic
    shared = {"token": "t"}
    deep: list[Any] = []
    for _ in range(80):  # past MAX_DEPTH
        deep = [deep, "x"]
    payload = {
        "cyclic": cyclic,
        "shared": [shared, shared],
        "set": {3, "b", 1.5},
        "bytes": bytearray(b"Bearer abcdefghijkl"),
        1: "int key",
        "1": "str key",
        None: "none key",
        "deep": deep,
        "object": object(),
        "huge int": 10**5000,  # more digits than str() takes
    }
    for redaction in (Redaction(), Redaction(max_value_length=40, placeholder="***")):
        assert_same(redaction.apply(payload), reference_of(redaction).apply(payload))


@pytest.mark.parametrize(
    "text",
    [
        "a" * 70_000 + " sk-" + "q" * 30,  # the secret is past the scanned window
        "ghp_" + "x" * 36 + " " + "b" * 100_000,
        "x" * 9_990 + " Bearer " + "t" * 40 + " " + "y" * 70_000,  # straddles the cut
        ("lorem ipsum https://u:pw@example.com/x sk-" + "k" * 25 + "\n") * 3_000,
    ],
)
def test_strings_longer_than_the_scanned_window_match_the_reference(text: str) -> None:
    for redaction in (Redaction(), Redaction(max_value_length=32)):
        assert_same(redaction.text(text), reference_of(redaction).text(text))


@pytest.mark.parametrize("name", ["PARAMETERS", "PROMPT", "RESPONSE"])
def test_the_benchmark_payload_matches_the_reference(name: str) -> None:
    from benchmarks import payload

    value = getattr(payload, name)
    assert_same(Redaction().apply(value), reference.Redaction().apply(value))
