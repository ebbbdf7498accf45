"""Which web passwords are acceptable: NIST SP 800-63B section 5.1.1 (memorized secrets).

The rules, and nothing more (no composition rules, no expiry):

- The password is normalized to Unicode NFKC first (800-63B 5.1.1.2 allows Unicode and asks
  for NFKC or NFKD before hashing), so "ﬁ" and "fi", or a full-width and an ASCII digit, are
  the same password however the browser or keyboard sent them. `PasswordHasher` hashes and
  verifies the normalized form too. Lengths are counted in code points after normalization.
- At least 12 and at most 1024 characters (800-63B: at least 8, allow at least 64; ASVS 4.0.3
  V2.1.1 asks for 12). Spaces count and are kept: a passphrase is welcome.
- No control characters (they cannot be typed, and end up in logs) and no lone surrogates
  (they cannot be encoded for hashing).
- Not a commonly used or expected value (800-63B 5.1.1.2): the password is compared, lower-cased,
  against the list shipped in `data/common-passwords.txt`, and so are the forms a guesser tries
  first: without separators (space, '-', '_', '.'), without the digits and symbols added at
  either end ("Password2024!" is "password"), and with common letter substitutions undone
  ("p@ssw0rd" is "password"). A password that repeats one short word is judged by that word.
- Not repetitive or sequential: fewer than 5 distinct characters, or a run of consecutive
  characters ("abcdefghijklm", "987654321098" is caught by the list) is refused.
- Not derived from the context (800-63B 5.1.1.2: "context-specific words, such as the name of
  the service, the username, and derivatives thereof"): if the password contains the username,
  the display name (whole or any word of 3 or more letters of it) or "callwarden", what is left
  once those are removed must still be at least 8 characters long and contain a letter.
"""

from __future__ import annotations

import enum
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources

from callwarden.domain.errors import ValidationFailed

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024
SERVICE_NAME = "callwarden"
MIN_DISTINCT_CHARACTERS = 5
MIN_LENGTH_WITHOUT_CONTEXT = 8
MIN_CONTEXT_WORD_LENGTH = 3

_SEPARATORS = re.compile(r"[\s\-_.]+")
_EDGE_NON_LETTERS = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_WORDS = re.compile(r"[^\W\d_]+")
_LEET = str.maketrans({"@": "a", "4": "a", "8": "b", "3": "e", "1": "i", "!": "i", "0": "o",
                       "$": "s", "5": "s", "7": "t", "+": "t", "2": "z"})  # fmt: skip


class PasswordRejection(enum.Enum):
    """Why a password was refused; the value is stable (clients and logs may use it)."""

    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    CONTROL_CHARACTERS = "control_characters"
    COMMON = "common"
    REPETITIVE = "repetitive"
    CONTEXT = "context"


class PasswordRejected(ValidationFailed):
    """A new password does not meet the policy; `details["password"]` says why, for people."""

    default_error_id = "password_rejected"

    def __init__(self, reason: PasswordRejection, message: str) -> None:
        super().__init__(
            f"password {message}", details={"password": message, "reason": reason.value}
        )
        self.reason = reason
        self.reason_message = message


def normalize_password(password: str) -> str:
    """The form a password is checked, hashed and verified in: Unicode NFKC."""
    return unicodedata.normalize("NFKC", password)


@dataclass(frozen=True)
class CommonPasswords:
    """A set of lower-cased passwords that must not be chosen."""

    entries: frozenset[str] = field(repr=False)

    def __post_init__(self) -> None:
        lowered = {entry.lower() for entry in self.entries}
        squashed = {_SEPARATORS.sub("", entry) for entry in lowered}
        object.__setattr__(self, "entries", frozenset(lowered | squashed))

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, candidate: object) -> bool:
        return isinstance(candidate, str) and candidate.lower() in self.entries

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> CommonPasswords:
        """One password a line; blank lines and lines starting with '#' are skipped."""
        stripped = (line.strip("\r\n") for line in lines)
        return cls(frozenset(line for line in stripped if line and not line.startswith("#")))

    @classmethod
    def bundled(cls) -> CommonPasswords:
        """The list shipped with callwarden (`callwarden/security/data/common-passwords.txt`)."""
        data = resources.files("callwarden.security").joinpath("data", "common-passwords.txt")
        with data.open("r", encoding="utf-8") as lines:
            return cls.from_lines(lines)


def _guessable_forms(lowered: str) -> Iterator[str]:
    """The password and the simpler forms a guesser derives from common ones."""
    squashed = _SEPARATORS.sub("", lowered)
    for form in (lowered, squashed):
        yield form
        core = _EDGE_NON_LETTERS.sub("", form)
        yield core
        yield form.translate(_LEET)
        yield core.translate(_LEET)
        yield _EDGE_NON_LETTERS.sub("", form.translate(_LEET))
        unit = _repeated_unit(core)
        if unit is not None:
            yield unit
            yield unit.translate(_LEET)


def _repeated_unit(text: str) -> str | None:
    """The shortest string that `text` is two or more copies of, if any."""
    size = len(text)
    for length in range(1, size // 2 + 1):
        if size % length == 0 and text[:length] * (size // length) == text:
            return text[:length]
    return None


def _is_sequential(text: str) -> bool:
    steps = {ord(second) - ord(first) for first, second in itertools.pairwise(text)}
    return steps in ({1}, {-1})


def _context_words(username: str | None, display_name: str | None) -> list[str]:
    words = {SERVICE_NAME}
    for text in (username, display_name):
        if not text:
            continue
        lowered = normalize_password(text).lower().strip()
        words.add(lowered)
        words.add(_SEPARATORS.sub("", lowered))
        words.update(_WORDS.findall(lowered))
    usable = (word for word in words if len(word) >= MIN_CONTEXT_WORD_LENGTH)
    return sorted(usable, key=len, reverse=True)


def _without_context(lowered: str, words: list[str]) -> str | None:
    """What is left of the password once the context words are removed, or None if it holds
    none of them."""
    remainder = lowered
    for word in words:
        remainder = remainder.replace(word, "")
    return None if remainder == lowered else remainder


@dataclass(frozen=True)
class PasswordPolicy:
    """The rules of the module docstring; `check` normalizes, then raises or returns."""

    common_passwords: CommonPasswords
    min_length: int = PASSWORD_MIN_LENGTH
    max_length: int = PASSWORD_MAX_LENGTH

    def __post_init__(self) -> None:
        if not 8 <= self.min_length <= self.max_length or self.max_length < 64:
            raise ValueError("password lengths must satisfy 8 <= min <= max and max >= 64")

    @classmethod
    def default(cls) -> PasswordPolicy:
        """12 to 1024 characters, against the bundled list of common passwords."""
        return cls(CommonPasswords.bundled())

    def check(
        self, password: str, *, username: str | None = None, display_name: str | None = None
    ) -> str:
        """The normalized password (hash that), or `PasswordRejected` naming the broken rule."""
        normalized = normalize_password(password)
        problem = self._problem(normalized, username, display_name)
        if problem is not None:
            raise PasswordRejected(*problem)
        return normalized

    def problem(
        self, password: str, *, username: str | None = None, display_name: str | None = None
    ) -> PasswordRejected | None:
        """The rejection `check` would raise, or None: for callers collecting problems."""
        problem = self._problem(normalize_password(password), username, display_name)
        return None if problem is None else PasswordRejected(*problem)

    def _problem(
        self, normalized: str, username: str | None, display_name: str | None
    ) -> tuple[PasswordRejection, str] | None:
        if len(normalized) < self.min_length:
            return (
                PasswordRejection.TOO_SHORT,
                f"must be at least {self.min_length} characters long",
            )
        if len(normalized) > self.max_length:
            return PasswordRejection.TOO_LONG, f"must be at most {self.max_length} characters long"
        if any(unicodedata.category(char) in {"Cc", "Cs"} for char in normalized):
            return PasswordRejection.CONTROL_CHARACTERS, "must not contain control characters"
        lowered = normalized.lower()
        if len(set(lowered)) < MIN_DISTINCT_CHARACTERS or _is_sequential(lowered):
            return PasswordRejection.REPETITIVE, "is too repetitive or sequential"
        if any(form in self.common_passwords for form in _guessable_forms(lowered) if form):
            return (
                PasswordRejection.COMMON,
                "is too common (it is on the list of guessed passwords)",
            )
        remainder = _without_context(lowered, _context_words(username, display_name))
        if remainder is not None and (
            len(remainder) < MIN_LENGTH_WITHOUT_CONTEXT
            or not any(char.isalpha() for char in remainder)
        ):
            return PasswordRejection.CONTEXT, "must not be based on the username or name"
        return None
