"""Web password hashing with argon2id (RFC 9106), through argon2-cffi.

Only hashes are stored. The default parameters are RFC 9106's second recommended option
(t=3, m=64 MiB, p=4); tests may construct a cheaper hasher. A stored hash made with other
parameters still verifies, and `needs_rehash` tells the caller to store a fresh one.
"""

from __future__ import annotations

import logging

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

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
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`; a malformed hash is a (logged) mismatch."""
        try:
            return self._hasher.verify(password_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            logger.warning("stored password hash is malformed or not argon2")
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether `password_hash` was made with other parameters than this hasher's."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True
