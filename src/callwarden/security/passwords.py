"""Web password hashing with argon2id (RFC 9106), through argon2-cffi.

Only hashes are stored. The default parameters are RFC 9106's second recommended option
(t=3, m=64 MiB, p=4); tests may construct a cheaper hasher. A stored hash made with other
parameters still verifies, and `needs_rehash` tells the caller to store a fresh one.

Passwords are hashed and verified in Unicode NFKC (`password_policy.normalize_password`, as
NIST SP 800-63B 5.1.1.2 asks), so the same password typed on another keyboard or browser, which
may send another Unicode form of it, still verifies. ASCII passwords are unchanged by it.
"""

from __future__ import annotations

import logging

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from callwarden.security.password_policy import normalize_password

logger = logging.getLogger(__name__)


class PasswordHasher:
    """Hash and verify passwords; verification never raises for a wrong password."""

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_cost_kib: int = 65536,
        parallelism: int = 4,
    ) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )

    def hash(self, password: str) -> str:
        """An encoded argon2id hash (`$argon2id$v=19$m=...`) with a fresh random salt."""
        return self._hasher.hash(normalize_password(password))

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`; a malformed hash is a (logged) mismatch."""
        try:
            return self._hasher.verify(password_hash, normalize_password(password))
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            logger.warning("stored password hash is malformed or not argon2")
            return False
        except UnicodeEncodeError:  # lone surrogates: no password can contain them
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether `password_hash` was made with other parameters than this hasher's."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True
