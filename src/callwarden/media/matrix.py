"""The hearing matrix of a bridge and its named presets (DESIGN.md idea 1).

A matrix maps each listener to the set of participants it hears. The presets are pure
functions of the participants' roles:

* ``normal``: the call's parties (customers and operators) hear each other; supervisors hear
  nothing and nobody hears them.
* ``listen``: as normal, and supervisors hear the parties; nobody hears a supervisor.
* ``whisper``: supervisors hear the parties; operators hear the parties and the supervisors;
  customers hear only the parties, never a supervisor.
* ``barge``: everyone hears everyone.
* ``takeover``: supervisors and customers hear each other; operators hear nothing and are heard
  by nobody (the operator leaves).

:func:`monitored` mixes modes: several supervisors on one call, each in a mode of their own.

Participants with any other role (a tone player, for instance) hear nothing and are heard by
nobody under a preset; give them hearing explicitly. Nobody ever hears themselves: the presets
never say so, and the bridge removes a listener from its own sources whatever it is told.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

Matrix = Mapping[str, frozenset[str]]

ROLE_CUSTOMER = "customer"
ROLE_OPERATOR = "operator"
ROLE_SUPERVISOR = "supervisor"


class Mode(enum.Enum):
    """The named hearing presets."""

    NORMAL = "normal"
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"
    TAKEOVER = "takeover"


def _by_role(roles: Mapping[str, str], role: str) -> frozenset[str]:
    return frozenset(pid for pid, r in roles.items() if r == role)


def _build(
    roles: Mapping[str, str], hears: Mapping[str, frozenset[str]]
) -> dict[str, frozenset[str]]:
    """Each participant hears the set its role maps to, minus itself; others hear nothing."""
    empty: frozenset[str] = frozenset()
    return {pid: hears.get(role, empty) - {pid} for pid, role in roles.items()}


def normal(roles: Mapping[str, str]) -> dict[str, frozenset[str]]:
    parties = _by_role(roles, ROLE_CUSTOMER) | _by_role(roles, ROLE_OPERATOR)
    return _build(roles, {ROLE_CUSTOMER: parties, ROLE_OPERATOR: parties})


def listen(roles: Mapping[str, str]) -> dict[str, frozenset[str]]:
    parties = _by_role(roles, ROLE_CUSTOMER) | _by_role(roles, ROLE_OPERATOR)
    return _build(roles, {ROLE_CUSTOMER: parties, ROLE_OPERATOR: parties, ROLE_SUPERVISOR: parties})


def whisper(roles: Mapping[str, str]) -> dict[str, frozenset[str]]:
    parties = _by_role(roles, ROLE_CUSTOMER) | _by_role(roles, ROLE_OPERATOR)
    supervisors = _by_role(roles, ROLE_SUPERVISOR)
    return _build(
        roles,
        {
            ROLE_CUSTOMER: parties,
            ROLE_OPERATOR: parties | supervisors,
            ROLE_SUPERVISOR: parties | supervisors,
        },
    )


def barge(roles: Mapping[str, str]) -> dict[str, frozenset[str]]:
    everyone = (
        _by_role(roles, ROLE_CUSTOMER)
        | _by_role(roles, ROLE_OPERATOR)
        | _by_role(roles, ROLE_SUPERVISOR)
    )
    return _build(
        roles, {ROLE_CUSTOMER: everyone, ROLE_OPERATOR: everyone, ROLE_SUPERVISOR: everyone}
    )


def takeover(roles: Mapping[str, str]) -> dict[str, frozenset[str]]:
    parties = _by_role(roles, ROLE_CUSTOMER) | _by_role(roles, ROLE_SUPERVISOR)
    return _build(roles, {ROLE_CUSTOMER: parties, ROLE_SUPERVISOR: parties})


_PRESETS = {
    Mode.NORMAL: normal,
    Mode.LISTEN: listen,
    Mode.WHISPER: whisper,
    Mode.BARGE: barge,
    Mode.TAKEOVER: takeover,
}


def preset(mode: Mode, roles: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """The matrix of a named mode for participants with the given roles."""
    return _PRESETS[mode](roles)


def monitored(roles: Mapping[str, str], modes: Mapping[str, Mode]) -> dict[str, frozenset[str]]:
    """The matrix of a call with supervisors each in a mode of their own (``modes`` maps each
    supervisor to LISTEN, WHISPER, BARGE or TAKEOVER; a supervisor missing from it listens).

    Who hears a supervisor depends on that supervisor's mode only:

    * LISTEN: nobody;
    * WHISPER: the operators, and the other supervisors who whisper or barge themselves
      (a listening supervisor never hears a whisper; the customer never does, by construction);
    * BARGE and TAKEOVER: everyone (every party and every other supervisor).

    Every supervisor hears the customers and the operators. Once any supervisor takes over,
    the operators hear nothing and are heard by nobody (the operator leaves). With every
    supervisor in one mode this is exactly that mode's preset.
    """
    customers = _by_role(roles, ROLE_CUSTOMER)
    supervisors = _by_role(roles, ROLE_SUPERVISOR)
    mode_of = {pid: modes.get(pid, Mode.LISTEN) for pid in supervisors}
    taken_over = Mode.TAKEOVER in mode_of.values()
    operators = frozenset() if taken_over else _by_role(roles, ROLE_OPERATOR)
    loud = frozenset(pid for pid, mode in mode_of.items() if mode in (Mode.BARGE, Mode.TAKEOVER))
    whispering = frozenset(pid for pid, mode in mode_of.items() if mode is Mode.WHISPER)
    matrix: dict[str, frozenset[str]] = {pid: frozenset() for pid in roles}
    for pid in customers:
        matrix[pid] = (customers | operators | loud) - {pid}
    for pid in operators:
        matrix[pid] = (customers | operators | loud | whispering) - {pid}
    for pid, mode in mode_of.items():
        hears = customers | operators | loud
        if mode is not Mode.LISTEN:
            hears |= whispering
        matrix[pid] = hears - {pid}
    return matrix
