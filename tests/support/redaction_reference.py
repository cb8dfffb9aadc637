"""Pre-optimisation reference copy of ``agentlog/redaction.py``, kept for the
equivalence test (tests/test_redaction_speed_equivalence.py): the optimised
``agentlog.redaction`` must give the same output as this for every input.
Do not optimise or "fix" this file; it is the specification.

Original module docstring follows.

Redaction of secrets and truncation of large values.

``Redaction.apply`` turns any Python value into a deep, redacted, storage-safe
copy: only ``dict[str, ...]``, ``list``, ``str``, ``int`` (signed 64-bit),
``float`` (finite), ``bool`` and ``None``. It runs on the flusher thread for
every record before anything leaves the process, so it is built to be cheap on
the common path (no secret in a short string) and never to raise.

Three rules, in this order:

1. The value under a *sensitive key* is replaced by the placeholder, whatever
   its type. Keys match on whole words, case-insensitively: a key is split into
   words on non-alphanumerics, letter/digit changes and camelCase boundaries, and
   it is sensitive when the words of a configured entry appear in it one after
   the other (or glued together: ``apikey`` matches ``api_key`` and the other way
   round). ``max_tokens`` survives the ``token`` entry; ``x-api-key`` does not
   survive ``api_key``.
2. In every string (values, strings in lists, dict keys), each match of a value
   *pattern* is replaced by the placeholder. A pattern with a group named
   ``secret`` has only that group replaced (the built-in URL pattern keeps
   ``scheme://user:`` and ``@host``).
3. A string still longer than ``max_value_length`` is cut, and a marker
   ``…[truncated N chars]`` is appended; the result, marker included, fits.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import re
import uuid
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from enum import Enum
from functools import cached_property
from pathlib import PurePath
from typing import Any, Final, NamedTuple

__all__ = [
    "DEFAULT_KEYS",
    "DEFAULT_PATTERNS",
    "MAX_DEPTH",
    "MIN_MAX_VALUE_LENGTH",
    "Redaction",
    "key_words",
]

#: Key names whose values are always replaced. Matching is on whole words, so an
#: entry also covers longer keys that contain its words (``token`` covers
#: ``access_token`` and ``X-Auth-Token``). Entries already covered by a shorter
#: one are listed anyway, so that removing the short one keeps them.
DEFAULT_KEYS: Final[tuple[str, ...]] = (
    # passwords
    "password",
    "passwords",
    "passwd",
    "pwd",
    "passphrase",
    "passcode",
    # secrets
    "secret",
    "secrets",
    "client_secret",
    "secret_key",
    # tokens
    "token",
    "access_token",
    "access_tokens",
    "refresh_token",
    "refresh_tokens",
    "id_token",
    "auth_token",
    "api_token",
    "session_token",
    "bearer",
    "jwt",
    # keys
    "api_key",
    "apikey",
    "api_keys",
    "x-api-key",
    "private_key",
    "private_keys",
    "access_key",
    "encryption_key",
    "signing_key",
    "master_key",
    "account_key",
    "subscription_key",
    "license_key",
    # credentials and authorization headers
    "credential",
    "credentials",
    "creds",
    "auth",
    "authorization",
    "proxy-authorization",
    # cookies, sessions, CSRF
    "cookie",
    "cookies",
    "set-cookie",
    "session",
    "sessionid",
    "phpsessid",
    "jsessionid",
    "connect.sid",
    "csrf",
    "csrftoken",
    "xsrf",
    "xsrf-token",
    # one-time codes, identity and payment data
    "otp",
    "totp",
    "mfa_code",
    "ssn",
    "social_security_number",
    "credit_card",
    "creditcard",
    "card_number",
    "cardnumber",
    "cc_number",
    "cvv",
    "cvv2",
    "cvc",
    # from Rails' filter_parameters defaults
    "salt",
    "certificate",
)


class _Builtin(NamedTuple):
    name: str
    pattern: str
    # Group-free forms that each start with a literal character, for the one
    # alternation that finds out whether a string needs any work at all.
    detect: tuple[str, ...]


def _builtin(name: str, pattern: str, *detect: str) -> _Builtin:
    return _Builtin(name, pattern, detect or (pattern,))


# How the built-in patterns are written, so that the stdlib engine stays fast:
# - each starts with a literal character (the engine then skips ahead to the
#   next candidate character instead of trying every position); a left boundary
#   is a look-behind placed after that character: ``s(?<![A-Za-z0-9_-]s)k-``
#   is "sk-" not preceded by a key character, so "task-..." is not a key;
# - an unbounded run is only followed by things that cannot fail after it, the
#   other runs are bounded, so no input makes them quadratic.


def _start(char: str, inside: str) -> str:
    """``char``, where a token starts: not preceded by a character of ``inside``,
    unless that character ends an escape (``\\n``, ``\\t``, ``\\r`` in a repr or
    JSON text, ``%0A`` in a URL), so that escaped text still has its keys found."""
    return rf"{char}(?:(?<![{inside}]{char})|(?<=\\[nrt]{char})|(?<=%[0-9A-Fa-f]{{2}}{char}))"


_TOKEN68 = r"[A-Za-z0-9\-._~+/]{8,}=*"
# Base64 that looks like base64 (a digit, +, /, = or a lower-to-upper change),
# so that prose such as "Basic configuration" is left alone.
_BASIC = r"(?=[A-Za-z0-9+/]{0,200}(?:[0-9+/=]|[a-z][A-Z]))[A-Za-z0-9+/]{8,}={0,2}"
_STRIPE = r"k_(?:live|test)_[A-Za-z0-9]{10,}"

_BUILTINS: Final[tuple[_Builtin, ...]] = (
    _builtin(
        "PEM private key blocks, also an unterminated one",
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY[A-Z0-9 ]{0,20}-----"
        r"(?:[\s\S]{0,16384}?-----END[A-Z0-9 ]{0,40}PRIVATE KEY[A-Z0-9 ]{0,20}-----"
        r"|[A-Za-z0-9+/=\s:,-]*)",
    ),
    _builtin(
        "JSON Web Tokens (eyJ<header>.eyJ<payload>.<signature>)",
        _start("e", "A-Za-z0-9_-") + r"yJ[A-Za-z0-9_-]{1,16384}\.eyJ[A-Za-z0-9_-]{1,16384}"
        r"\.[A-Za-z0-9_-]*",
    ),
    _builtin(
        "OpenAI and Anthropic API keys (sk-..., sk-proj-..., sk-ant-api03-...)",
        _start("s", "A-Za-z0-9_-") + r"k-[A-Za-z0-9_-]{20,}",
    ),
    _builtin(
        "AWS access key IDs (AKIA... and ASIA..., 20 characters)",
        _start("A", "A-Za-z0-9") + r"[KS]IA[A-Z0-9]{16}(?![A-Za-z0-9])",
    ),
    _builtin(
        "GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_)",
        _start("g", "A-Za-z0-9_") + r"(?:h[pousr]_[A-Za-z0-9]{30,}|ithub_pat_[A-Za-z0-9_]{30,})",
    ),
    _builtin(
        "Slack tokens (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-)",
        _start("x", "A-Za-z0-9-") + r"ox[abeprs]-[A-Za-z0-9-]{10,}",
    ),
    _builtin(
        "Google API keys (AIza...)",
        _start("A", "A-Za-z0-9_-") + r"Iza[A-Za-z0-9_-]{30,}",
    ),
    _builtin(
        "Stripe secret and restricted keys (sk_live_, rk_live_, sk_test_, rk_test_)",
        f"(?:{_start('s', 'A-Za-z0-9_')}|{_start('r', 'A-Za-z0-9_')}){_STRIPE}",
        _start("s", "A-Za-z0-9_") + _STRIPE,
        _start("r", "A-Za-z0-9_") + _STRIPE,
    ),
    _builtin(
        "Bearer credentials (Authorization: Bearer <token>): the token",
        rf"(?:Bearer|bearer|BEARER)\s+(?P<secret>{_TOKEN68})",
        rf"Bearer\s+{_TOKEN68}",
        rf"bearer\s+{_TOKEN68}",
        rf"BEARER\s+{_TOKEN68}",
    ),
    _builtin(
        "Basic credentials (Authorization: Basic <base64>): the base64",
        rf"(?:Basic|basic|BASIC)\s+(?P<secret>{_BASIC})",
        rf"Basic\s+{_BASIC}",
        rf"basic\s+{_BASIC}",
        rf"BASIC\s+{_BASIC}",
    ),
    _builtin(
        "Passwords in URLs (scheme://user:PASSWORD@host): the password",
        r"://[^\s/@:]*:(?P<secret>[^\s/@]+)@",
        r"://[^\s/@:]*:[^\s/@]+@",
    ),
)

#: The value patterns used unless configured otherwise (regex source strings).
DEFAULT_PATTERNS: Final[tuple[str, ...]] = tuple(b.pattern for b in _BUILTINS)
_DETECT_FORMS: Final[dict[str, tuple[str, ...]]] = {b.pattern: b.detect for b in _BUILTINS}

#: Containers nested deeper than this become the string ``"[max depth]"``.
MAX_DEPTH: Final = 64
#: The smallest ``max_value_length``: the truncation marker must fit.
MIN_MAX_VALUE_LENGTH: Final = 32

_MAX_DEPTH_TEXT: Final = "[max depth]"
_CIRCULAR_TEXT: Final = "[circular]"
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_UNSAFE_CHARS: Final = re.compile("[\x00\ud800-\udfff]")
# Words of a key: uppercase runs before a capitalised word ("HTTP" in
# "HTTPAuth"), capitalised or lowercase words, uppercase runs, digit runs.
# [^\W\dA-Z_] is a letter that is not an ASCII capital (so non-ASCII letters
# stay inside their word).
_WORD: Final = re.compile(
    r"[A-Z]+(?=[A-Z][^\W\dA-Z_])|[A-Z]?[^\W\dA-Z_]+|[A-Z]+|\d+",
)
# Keys and short strings repeat across records ("role", "user", model names):
# their results are cached, per Redaction, in bounded dicts.
_CACHE_LIMIT: Final = 8192
_CACHE_MAX_KEY: Final = 256
_CACHE_MAX_TEXT: Final = 128
# A string longer than max_value_length + _WINDOW is only scanned that far: the
# rest is cut anyway. The window is longer than any built-in match can be (a PEM
# block is at most ~16 KiB here), so a secret that starts before the cut is
# still found whole, or up to the window's end.
_WINDOW: Final = 65_536
# text() repeats "replace, then truncate" until nothing changes; two passes
# settle the built-in patterns, the rest is headroom for custom ones.
_MAX_PASSES: Final = 4
_FLAG_LETTERS: Final = (
    (re.ASCII, "a"),
    (re.IGNORECASE, "i"),
    (re.MULTILINE, "m"),
    (re.DOTALL, "s"),
    (re.VERBOSE, "x"),
)


def key_words(key: str) -> tuple[str, ...]:
    """The lowercase words of a key name: ``"X-API-Key"`` -> ``("x", "api", "key")``."""
    return tuple(word.lower() for word in _WORD.findall(key))


class _Matchers(NamedTuple):
    all: tuple[re.Pattern[str], ...]  # applied in order to a string that needs work
    detector: re.Pattern[str] | None  # one alternation: does a string need work?
    separate: tuple[re.Pattern[str], ...]  # patterns that cannot join it, searched alone


class _KeyIndex(NamedTuple):
    joined: frozenset[str]  # each entry's words glued together
    longest: int


def _pattern_source(pattern: object) -> str:
    if isinstance(pattern, re.Pattern):
        if not isinstance(pattern.pattern, str):
            raise ValueError(
                f"Redaction.patterns: {pattern.pattern!r} is a bytes pattern; use str patterns"
            )
        flags = "".join(letter for flag, letter in _FLAG_LETTERS if pattern.flags & flag)
        return f"(?{flags}){pattern.pattern}" if flags else pattern.pattern
    if isinstance(pattern, str):
        return pattern
    raise ValueError(
        f"Redaction.patterns: expected regex strings or compiled patterns, got {pattern!r}"
    )


def _as_tuple(value: object, field: str) -> tuple[object, ...]:
    if isinstance(value, (str, bytes, re.Pattern)):
        return (value,)
    if not isinstance(value, Iterable):
        raise ValueError(f"Redaction.{field}: expected an iterable, got {value!r}")
    return tuple(value)


def _combines(source: str) -> bool:
    """Whether ``source`` can sit inside one alternation with the others.

    Capture groups would be renumbered (back-references break) and global inline
    flags are not allowed past the start of a pattern.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile(f"(?:{source})").groups == 0
    except (re.error, Warning):
        return False


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        return f"<int of {value.bit_length()} bits>"


def _sanitize(value: str) -> str:
    """Lone surrogates and NUL become U+FFFD (UTF-8 and PostgreSQL text reject them)."""
    if value.isascii():
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    return _UNSAFE_CHARS.sub("\ufffd", value)


def _type_name(value: object) -> str:
    try:
        return type(value).__qualname__
    except Exception:  # pragma: no cover - a type always has a name
        return "object"


@dataclass(frozen=True, init=False)
class Redaction:
    """What to redact before a record leaves the process.

    ``keys``: key names whose values are replaced (whole words, case-insensitive);
    any iterable of strings, stored as a tuple.
    ``patterns``: regexes replaced inside every string; strings or compiled
    patterns (stored as their source, flags inlined), stored as a tuple.
    ``max_value_length``: longest string kept, truncation marker included.
    ``placeholder``: what replaces a secret.

    Invalid settings raise ``ValueError`` naming the field. Instances are frozen
    and hashable (a field of the frozen ``agentlog.Config``).
    """

    keys: tuple[str, ...] = DEFAULT_KEYS
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    max_value_length: int = 10_000
    placeholder: str = "[REDACTED]"

    def __init__(
        self,
        keys: Iterable[str] = DEFAULT_KEYS,
        patterns: Iterable[str | re.Pattern[str]] = DEFAULT_PATTERNS,
        max_value_length: int = 10_000,
        placeholder: str = "[REDACTED]",
    ) -> None:
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "patterns", patterns)
        object.__setattr__(self, "max_value_length", max_value_length)
        object.__setattr__(self, "placeholder", placeholder)
        self._validate()

    def _validate(self) -> None:
        keys = _as_tuple(self.keys, "keys")
        for key in keys:
            if not isinstance(key, str):
                raise ValueError(f"Redaction.keys: expected strings, got {key!r}")
            if not key_words(key):
                raise ValueError(f"Redaction.keys: {key!r} has no letters or digits to match on")
        object.__setattr__(self, "keys", keys)

        patterns = tuple(_pattern_source(p) for p in _as_tuple(self.patterns, "patterns"))
        for source in patterns:
            try:
                compiled = re.compile(source)
            except re.error as exc:
                raise ValueError(
                    f"Redaction.patterns: {source!r} is not a valid regular expression: {exc}"
                ) from exc
            if compiled.fullmatch(""):
                raise ValueError(f"Redaction.patterns: {source!r} matches the empty string")
        object.__setattr__(self, "patterns", patterns)

        limit = self.max_value_length
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < MIN_MAX_VALUE_LENGTH:
            raise ValueError(
                f"Redaction.max_value_length must be an integer >= {MIN_MAX_VALUE_LENGTH} "
                f"(the truncation marker must fit), got {limit!r}"
            )

        placeholder = self.placeholder
        if not isinstance(placeholder, str) or not placeholder:
            raise ValueError(
                f"Redaction.placeholder must be a non-empty string, got {placeholder!r}"
            )
        if _sanitize(placeholder) != placeholder:
            raise ValueError("Redaction.placeholder must not contain NUL or lone surrogates")
        if len(placeholder) > limit:
            raise ValueError(
                f"Redaction.placeholder is {len(placeholder)} characters, longer than "
                f"max_value_length={limit}"
            )
        for compiled in self._matchers.all:
            if compiled.search(placeholder):
                raise ValueError(
                    f"Redaction.placeholder {placeholder!r} is itself matched by pattern "
                    f"{compiled.pattern!r}"
                )

    # -- caches (cached_property writes the instance __dict__, frozen or not) --

    @cached_property
    def _matchers(self) -> _Matchers:
        compiled = tuple(re.compile(source) for source in self.patterns)
        forms: list[str] = []
        separate: list[re.Pattern[str]] = []
        for pattern in compiled:
            if pattern.pattern in _DETECT_FORMS:
                forms.extend(_DETECT_FORMS[pattern.pattern])
            elif _combines(pattern.pattern):
                forms.append(pattern.pattern)
            else:
                separate.append(pattern)
        detector = re.compile("|".join(f"(?:{form})" for form in forms)) if forms else None
        return _Matchers(compiled, detector, tuple(separate))

    @cached_property
    def _key_index(self) -> _KeyIndex:
        joined = frozenset("".join(key_words(key)) for key in self.keys)
        return _KeyIndex(joined, max((len(j) for j in joined), default=0))

    @cached_property
    def _key_cache(self) -> dict[str, tuple[bool, str]]:
        return {}

    @cached_property
    def _text_cache(self) -> dict[str, str]:
        return {}

    # -- public API --

    def is_sensitive_key(self, key: object) -> bool:
        """Whether the value under ``key`` is replaced by the placeholder."""
        try:
            return self._key(self._key_text(key))[0]
        except Exception:
            return False

    def text(self, value: str) -> str:
        """``value`` with NUL/surrogates replaced, patterns redacted, then truncated."""
        if type(value) is not str:
            try:
                value = str.__str__(value) if isinstance(value, str) else str(value)
            except Exception:
                value = f"<unrepresentable {_type_name(value)}>"
        if len(value) > _CACHE_MAX_TEXT:
            return self._text(value)
        cache = self._text_cache
        result = cache.get(value)
        if result is None:
            result = self._text(value)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[value] = result
        return result

    def apply(self, value: Any) -> Any:
        """A deep, redacted, storage-safe copy of ``value``. Never raises, never mutates."""
        try:
            return self._walk(value, 0, set())
        except Exception:  # pragma: no cover - _walk guards every node
            return self._unrepresentable(value)

    # -- strings --

    def _text(self, value: str) -> str:
        # Replace, then truncate, until nothing changes: a cut can complete a
        # match (a boundary that was a letter is now the marker), a custom
        # pattern can match the marker. This is what makes text() idempotent.
        beyond = 0  # characters past the scanned window, cut without a look
        if len(value) > self.max_value_length + _WINDOW:
            beyond = len(value) - (self.max_value_length + _WINDOW)
            value = value[: self.max_value_length + _WINDOW]
        current = _sanitize(value)
        for _ in range(_MAX_PASSES):
            changed = self._step(current, beyond)
            beyond = 0
            if changed is current or changed == current:
                return changed
            current = changed
        return current

    def _step(self, value: str, beyond: int) -> str:
        if self._has_match(value):
            value = self._replace(value)
        if len(value) + beyond > self.max_value_length:
            value = self._truncate(value, len(value) + beyond)
        return value

    def _has_match(self, value: str) -> bool:
        matchers = self._matchers
        if matchers.detector is not None and matchers.detector.search(value):
            return True
        return any(p.search(value) for p in matchers.separate)

    def _replace(self, value: str) -> str:
        placeholder = self.placeholder

        def substitute(match: re.Match[str]) -> str:
            if "secret" in match.re.groupindex:
                start, end = match.span("secret")
                if start < 0 or start == end:
                    return match.group(0)
                whole = match.string
                return whole[match.start() : start] + placeholder + whole[end : match.end()]
            if match.start() == match.end():
                return ""  # an empty match redacts nothing (and must not insert)
            return placeholder

        for compiled in self._matchers.all:
            value = compiled.sub(substitute, value)
        return value

    def _truncate(self, value: str, total: int) -> str:
        limit = self.max_value_length
        removed = total - limit
        for digits in range(1, 40):
            removed = total - (limit - len("…[truncated  chars]") - digits)
            if len(str(removed)) == digits:
                break
        marker = f"…[truncated {removed} chars]"
        keep = limit - len(marker)
        if keep < 0:  # pragma: no cover - MIN_MAX_VALUE_LENGTH leaves room
            return marker[:limit]
        return value[:keep] + marker

    # -- keys --

    @staticmethod
    def _key_text(key: object) -> str:
        if type(key) is str:
            return key
        if isinstance(key, Enum):
            key = key.value
        if isinstance(key, str):
            return str.__str__(key)
        if isinstance(key, (bytes, bytearray)):
            return bytes(key).decode("utf-8", errors="replace")
        try:
            return str(key)
        except Exception:
            return f"<unrepresentable {_type_name(key)}>"

    def _key(self, key: str) -> tuple[bool, str]:
        """(sensitive?, the key as stored) for one key, cached for short keys."""
        cache = self._key_cache
        hit = cache.get(key)
        if hit is not None:
            return hit
        result = (self._match_key(key), self.text(key))
        if len(key) <= _CACHE_MAX_KEY:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = result
        return result

    def _match_key(self, key: str) -> bool:
        joined, longest = self._key_index
        words = key_words(key)
        for start in range(len(words)):
            run = ""
            for word in words[start:]:
                run += word
                if len(run) > longest:
                    break
                if run in joined:
                    return True
        return False

    # -- the walk --

    def _unrepresentable(self, value: object) -> str:
        return self.text(f"<unrepresentable {_type_name(value)}>")

    def _walk(self, value: Any, depth: int, ancestors: set[int]) -> Any:
        kind = type(value)
        if kind is str:
            return self.text(value)
        if value is None or kind is bool:
            return value
        if kind is int:
            return value if _INT64_MIN <= value <= _INT64_MAX else self.text(_int_text(value))
        if kind is float:
            return value if math.isfinite(value) else _non_finite(value)
        if kind is dict:
            return self._walk_mapping(value, depth, ancestors)
        if kind is list or kind is tuple:
            return self._walk_items(value, depth, ancestors, ordered=True)
        try:
            return self._walk_other(value, depth, ancestors)
        except Exception:
            return self._unrepresentable(value)

    def _walk_other(self, value: Any, depth: int, ancestors: set[int]) -> Any:
        if isinstance(value, Enum):
            return self._walk(value.value, depth, ancestors)
        if isinstance(value, str):
            return self.text(str.__str__(value))
        if isinstance(value, int):  # bool is handled before: it is never subclassed
            return self._walk(int.__int__(value), depth, ancestors)
        if isinstance(value, float):
            return self._walk(float.__float__(value), depth, ancestors)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.text(bytes(value).decode("utf-8", errors="replace"))
        if isinstance(value, Mapping):
            return self._walk_mapping(value, depth, ancestors)
        if isinstance(value, (list, tuple, collections.deque)):
            return self._walk_items(value, depth, ancestors, ordered=True)
        if isinstance(value, (set, frozenset)):
            return self._walk_items(value, depth, ancestors, ordered=False)
        if isinstance(value, (date, time)):  # datetime is a date
            return self.text(value.isoformat())
        if isinstance(value, (Decimal, uuid.UUID, PurePath)):
            return self.text(str(value))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return self._walk_mapping(fields, depth, ancestors, identity=id(value))
        model_dump = getattr(value, "model_dump", None)
        if callable(model_dump) and not isinstance(value, type):
            try:
                dumped = model_dump()
            except Exception:
                pass
            else:
                return self._walk_nested(dumped, depth, ancestors, identity=id(value))
        return self._repr(value)

    def _repr(self, value: object) -> str:
        try:
            text = repr(value)
            if not isinstance(text, str):
                raise TypeError("__repr__ returned a non-string")
        except Exception:
            return self._unrepresentable(value)
        return self.text(text)

    def _walk_nested(self, value: Any, depth: int, ancestors: set[int], identity: int) -> Any:
        """Walk what an object turned into, with the object itself on the path."""
        if identity in ancestors:
            return _CIRCULAR_TEXT
        ancestors.add(identity)
        try:
            return self._walk(value, depth, ancestors)
        finally:
            ancestors.discard(identity)

    def _walk_mapping(
        self,
        value: Mapping[Any, Any],
        depth: int,
        ancestors: set[int],
        identity: int | None = None,
    ) -> Any:
        identity = id(value) if identity is None else identity
        if identity in ancestors:
            return _CIRCULAR_TEXT
        if depth >= MAX_DEPTH:
            return _MAX_DEPTH_TEXT
        items = list(value.items())  # a snapshot: the caller's thread may still mutate it
        ancestors.add(identity)
        try:
            result: dict[str, Any] = {}
            for raw_key, item in items:
                sensitive, key = self._key(self._key_text(raw_key))
                if key in result:
                    key = self._unique_key(key, result)
                result[key] = (
                    self.placeholder if sensitive else self._walk(item, depth + 1, ancestors)
                )
            return result
        finally:
            ancestors.discard(identity)

    def _unique_key(self, key: str, taken: Mapping[str, Any]) -> str:
        """Two keys that became the same string (1 and "1", two redacted keys) both stay."""
        number = 2
        while True:
            suffix = f" ({number})"
            candidate = key[: self.max_value_length - len(suffix)] + suffix
            if candidate not in taken:
                return candidate
            number += 1

    def _walk_items(
        self, value: Iterable[Any], depth: int, ancestors: set[int], *, ordered: bool
    ) -> Any:
        identity = id(value)
        if identity in ancestors:
            return _CIRCULAR_TEXT
        if depth >= MAX_DEPTH:
            return _MAX_DEPTH_TEXT
        items = list(value)
        if not ordered:
            items.sort(key=self._sort_key)
        ancestors.add(identity)
        try:
            return [self._walk(item, depth + 1, ancestors) for item in items]
        finally:
            ancestors.discard(identity)

    @staticmethod
    def _sort_key(value: object) -> str:
        try:
            text = repr(value)
            return text if isinstance(text, str) else ""
        except Exception:
            return f"<unrepresentable {_type_name(value)}>"
