"""The media policy "encrypted only": who must use SIP over TLS and SRTP.

Settings name roles (`encrypted_media_roles`, e.g. `operator, supervisor`) and teams
(`encrypted_media_teams`; a team's sub-teams too) whose members work from home over the
internet. For such a user:

* a REGISTER over UDP or TCP is refused with 403: the phone must register over TLS;
* an INVITE they send over UDP or TCP is refused with 403, and one over TLS whose offer has no
  ``RTP/SAVP`` audio stream with 488 (and the answer is never plain RTP: ``require_srtp``);
* calls to them go only to phones registered over TLS, each offered SRTP (with SDES keys).

Each refusal is logged with the user, the address and the reason. Nothing here falls back to
plain RTP for such a user. Trunks (trusted carrier addresses) and everyone else may use plain
RTP; anyone may still use SRTP, over TLS (SDES keys travel in the SDP, so they are accepted
only on TLS signalling: `sip.sdp`). Decisions only: the registrar and the call carry them out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import TeamId
from callwarden.domain.models import User
from callwarden.sip.addressing import Source, TransportName
from callwarden.sip.errors import SipParseError
from callwarden.sip.sdes import SAVP
from callwarden.sip.session_description import SessionDescription

logger = logging.getLogger(__name__)

__all__ = ["MediaPolicy", "PolicyRefusal"]


@dataclass(frozen=True, slots=True)
class PolicyRefusal:
    """A request the policy refuses: the status and reason phrase to answer, and why (logged)."""

    status: int
    reason: str
    why: str


@dataclass(frozen=True)
class MediaPolicy:
    """Which roles and teams (by name) must use TLS signalling and SRTP media."""

    encrypted_roles: frozenset[str] = frozenset()
    encrypted_teams: frozenset[str] = frozenset()

    @classmethod
    def of(cls, roles: Iterable[str] = (), teams: Iterable[str] = ()) -> MediaPolicy:
        return cls(frozenset(roles), frozenset(teams))

    def why_encrypted(self, user: User, directory: DirectorySnapshot) -> str | None:
        """``"role operator"`` or ``"team support"`` when `user` must encrypt, else None."""
        role = directory.role(user.role_id)
        if role is not None and role.name in self.encrypted_roles:
            return f"role {role.name}"
        seen: set[TeamId] = set()
        team_id = user.team_id
        while team_id is not None and team_id not in seen:
            seen.add(team_id)
            team = directory.team(team_id)
            if team is None:
                break
            if team.name in self.encrypted_teams:
                return f"team {team.name}"
            team_id = team.parent_id
        return None

    def check_register(
        self, user: User, source: Source, directory: DirectorySnapshot
    ) -> PolicyRefusal | None:
        """A REGISTER from `user`: 403 unless over TLS when they must encrypt."""
        why = self.why_encrypted(user, directory)
        if why is None or source.transport == "TLS":
            return None
        return self._refuse(
            403,
            "TLS Required",
            f"REGISTER of {user.username} from {source.remote_host} over {source.transport}: "
            f"the media policy for {why} requires TLS and SRTP",
        )

    def check_invite(
        self, user: User, source: Source, body: bytes, directory: DirectorySnapshot
    ) -> PolicyRefusal | None:
        """An INVITE from `user`: 403 unless over TLS, 488 unless it offers SRTP, when they must
        encrypt. An unreadable offer is left to the call (400)."""
        why = self.why_encrypted(user, directory)
        if why is None:
            return None
        where = f"INVITE from {user.username} at {source.remote_host}"
        if source.transport != "TLS":
            return self._refuse(
                403,
                "TLS Required",
                f"{where} over {source.transport}: the media policy for {why} requires TLS",
            )
        try:
            offer = SessionDescription.parse(body)
        except SipParseError:
            return None
        if not any(
            media.media == "audio" and media.port != 0 and media.proto == SAVP
            for media in offer.media
        ):
            return self._refuse(
                488,
                "SRTP Required",
                f"{where} offers plain RTP: the media policy for {why} requires SRTP",
            )
        return None

    def requires_srtp(self, user: User | None, directory: DirectorySnapshot) -> bool:
        """Whether a leg with `user` (None: a trunk) must be SRTP."""
        return user is not None and self.why_encrypted(user, directory) is not None

    def may_reach(self, user: User, transport: TransportName, directory: DirectorySnapshot) -> bool:
        """Whether a phone of `user` registered over `transport` may be called (TLS when they
        must encrypt; such a phone is then offered SRTP)."""
        return transport == "TLS" or not self.requires_srtp(user, directory)

    @staticmethod
    def _refuse(status: int, reason: str, why: str) -> PolicyRefusal:
        logger.warning("refused by the media policy: %s", why)
        return PolicyRefusal(status, reason, why)
