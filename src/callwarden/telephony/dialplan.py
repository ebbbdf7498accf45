"""The dial plan: where a dialled number goes, decided from the directory alone (pure).

- From one of our users: another user's extension, a queue number, or out through a trunk
  whose outbound patterns match, if the caller's role allows the number (403 otherwise).
- From a trunk: only the trunk's own inbound numbers, to the extension or queue they name.
  A trunk can never reach another trunk (no transit: that is how toll fraud starts).

- From one of our users, a dial string starting with a configured feature code (`*51`, ...):
  `ToFeature(code, argument)` for the handler of that code (`telephony.features`).

Dial strings are digits with an optional leading `+` (and `*`/`#` for feature codes); anything
else (URIs, separators, injection characters) is refused before any lookup.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import Queue, Trunk, User

MAX_DIAL_STRING = 32
_DIAL_STRING = re.compile(r"\+?[0-9*#]{1,32}")


@dataclass(frozen=True, slots=True)
class ToUser:
    user: User


@dataclass(frozen=True, slots=True)
class ToQueue:
    queue: Queue


@dataclass(frozen=True, slots=True)
class ToTrunk:
    trunk: Trunk
    number: str


@dataclass(frozen=True, slots=True)
class ToFeature:
    """A feature code: `code` as configured (`*53`), `argument` the digits dialled after it."""

    code: str
    argument: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """Refused; `status` is the SIP response (404 unknown, 403 not allowed, 480 unavailable)."""

    status: int
    reason: str


Route = ToUser | ToQueue | ToTrunk | ToFeature | Rejected

UNKNOWN_NUMBER = Rejected(404, "Not Found")


def is_dial_string(number: str) -> bool:
    return _DIAL_STRING.fullmatch(number) is not None


def match_feature(feature_codes: Collection[str], number: str) -> ToFeature | None:
    """The longest of `feature_codes` that starts `number`, with the rest as its argument."""
    if not number.startswith("*") or not feature_codes:
        return None
    for end in range(len(number), 1, -1):
        code = number[:end]
        if code in feature_codes:
            return ToFeature(code, number[end:])
    return None


def route_from_user(
    directory: DirectorySnapshot,
    caller: User,
    number: str,
    *,
    feature_codes: Collection[str] = (),
) -> Route:
    """Where `caller` reaches by dialling `number` (`feature_codes`: the node's codes)."""
    if not caller.enabled:
        return Rejected(403, "Forbidden")
    if not is_dial_string(number):
        return UNKNOWN_NUMBER
    feature = match_feature(feature_codes, number)
    if feature is not None:
        return feature
    callee = directory.user_by_extension(number)
    if callee is not None:
        if callee.id == caller.id:
            return Rejected(486, "Busy Here")
        return ToUser(callee) if callee.enabled else Rejected(480, "Temporarily Unavailable")
    queue = directory.queue_by_number(number)
    if queue is not None:
        return ToQueue(queue)
    trunks = directory.trunks_for_outbound(number)
    if not trunks:
        return UNKNOWN_NUMBER
    if not directory.may_dial_out(caller, number):
        return Rejected(403, "Destination Not Allowed")
    return ToTrunk(trunks[0], number)


def route_from_trunk(directory: DirectorySnapshot, trunk: Trunk, number: str) -> Route:
    """Where a call arriving from `trunk` for `number` goes: only its own inbound numbers."""
    if not trunk.enabled or not is_dial_string(number):
        return UNKNOWN_NUMBER
    found = directory.inbound_number(number)
    if found is None or found[0].id != trunk.id:
        return UNKNOWN_NUMBER
    target = found[1].destination or number
    callee = directory.user_by_extension(target)
    if callee is not None:
        return ToUser(callee) if callee.enabled else Rejected(480, "Temporarily Unavailable")
    queue = directory.queue_by_number(target)
    if queue is not None:
        return ToQueue(queue)
    return UNKNOWN_NUMBER
