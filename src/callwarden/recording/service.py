"""The recordings' use cases, each decided by the one policy (`domain.policy`).

Reading a recording (its metadata, tags, notes, audio) needs `recordings.play` on it; a
recording the caller may not see is "not found", worded exactly as a missing one. Downloading
needs `recordings.download`, deleting `recordings.delete`, holds `recordings.legal_hold` (on the
recording, or, for holds on a call, user or queue, held for everything: scope `all`), and
retention policies `retention.manage`. Customers' numbers are shown whole only to whoever may
`numbers.view` the recording; a search by number only finds recordings whose number the caller
may see.

Methods that touch the database or the files are synchronous: the web layer runs them in a
worker thread. Audit entries for plays, downloads and holds are the web layer's (it knows the
session and address); deletions are audited by the `Shredder` through its audit port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from callwarden.bus.event import Event
from callwarden.domain.errors import InvalidState, ValidationFailed
from callwarden.domain.ids import QueueId, RecordingId, TeamId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import (
    Principal,
    Resource,
    ResourceKind,
    list_scope,
    not_found,
    require,
    shown_number,
)
from callwarden.recording.catalogue_events import RecordingIntegrityAlert
from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.holds import LegalHoldRepository, RetentionPolicyRepository
from callwarden.recording.keyring import KeyEncryptionService, WrappedKey
from callwarden.recording.models import (
    HoldTargetKind,
    LegalHold,
    Note,
    Recording,
    RecordingStatus,
    RetentionPolicy,
    RetentionScope,
    Tombstone,
    TombstoneKind,
    require_reason,
)
from callwarden.recording.numbers import NumberProtector
from callwarden.recording.playback import (
    ByteRange,
    PlaybackGrant,
    PlaybackGrants,
    RecordingAudio,
    Rendition,
    Waveform,
    manifest_chunk_digests,
    waveform,
)
from callwarden.recording.purge import Deletion, Shredder
from callwarden.recording.purge_runs import PurgeRuns, PurgeStatus
from callwarden.recording.reader import SealedReader
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.search import Page, RecordingQuery
from callwarden.recording.storage import RecordingStorage

logger = logging.getLogger(__name__)

WallClock = Callable[[], datetime]


@dataclass(frozen=True)
class RecordingView:
    """A recording as one principal may see it: the number masked unless they may see it."""

    recording: Recording
    caller_number: str | None
    holds: tuple[int, ...] = ()


@dataclass(frozen=True)
class OpenedAudio:
    """An opened recording's WAV rendition; iterate `audio`, then `close()` (or use `with`)."""

    recording: Recording
    audio: RecordingAudio
    _closer: contextlib.ExitStack
    #: Logs and alerts a chunk found corrupted while the audio is read (the file is verified
    #: chunk by chunk as it streams); gives the error to raise.
    refuse: Callable[[RecordingCorrupted], InvalidState]

    def close(self) -> None:
        self._closer.close()

    def __enter__(self) -> OpenedAudio:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def recording_what(recording_id: str) -> str:
    return f"recording {recording_id}"


class RecordingService:
    def __init__(
        self,
        sessions: Callable[[], Session],
        numbers: NumberProtector,
        keys: KeyEncryptionService,
        storage: RecordingStorage,
        shredder: Shredder,
        grants: PlaybackGrants,
        clock: WallClock,
        *,
        signers: Sequence[Ed25519PublicKey],
        alert: Callable[[Event], None] | None = None,
        purges: PurgeRuns | None = None,
    ) -> None:
        """`signers`: the public keys a recording's manifest must be signed with to be played
        (the node's signing key); `alert` publishes a `RecordingIntegrityAlert` when a
        recording fails its integrity check (it is called from worker threads: the composition
        root makes it thread-safe); `purges` runs the purge in this node (status and start on
        demand)."""
        if not signers:
            raise ValueError("playback needs the public key manifests are signed with")
        self._signers = tuple(signers)
        self._alert = alert
        self._purges = purges
        self._sessions = sessions
        self._numbers = numbers
        self._keys = keys
        self._storage = storage
        self._shredder = shredder
        self.grants = grants
        self._clock = clock

    # -- finding --------------------------------------------------------------------------

    def resource_of(self, recording_id: str) -> Resource | None:
        """The recording as the policy sees it (owner, team), or None if there is none."""
        with self._sessions() as session:
            return RecordingRepository(session, self._numbers).resource_of(recording_id)

    def visible(
        self, principal: Principal, permission: Permission, recording_id: RecordingId
    ) -> Recording:
        """The recording, if `principal` may `permission` it; `not_found` if it may not see
        it (or it does not exist), `Forbidden` if it may see but not do this."""
        what = recording_what(recording_id)
        with self._sessions() as session:
            repository = RecordingRepository(session, self._numbers)
            found = repository.get_many([recording_id])
        if not found:
            raise not_found(what)
        recording = found[0]
        require(principal, permission, recording.resource, what)
        return recording

    def view(self, principal: Principal, recording: Recording) -> RecordingView:
        number = recording.caller_number
        shown = None if number is None else shown_number(principal, recording.resource, number)
        with self._sessions() as session:
            holds = LegalHoldRepository(session).active_for([recording])
        return RecordingView(recording, shown, tuple(hold.id for hold in holds))

    def get(self, principal: Principal, recording_id: RecordingId) -> RecordingView:
        return self.view(
            principal, self.visible(principal, Permission.RECORDINGS_PLAY, recording_id)
        )

    def search(self, principal: Principal, query: RecordingQuery) -> Page[RecordingView]:
        """What `query` finds among the recordings `principal` may play, newest first."""
        scope = list_scope(principal, Permission.RECORDINGS_PLAY)
        number_scope = list_scope(principal, Permission.NUMBERS_VIEW)
        with self._sessions() as session:
            page = RecordingRepository(session, self._numbers).search(
                query, scope, number_scope=number_scope
            )
            holds = LegalHoldRepository(session).active_for(page.items)
        views = []
        for recording in page.items:
            number = recording.caller_number
            shown = None if number is None else shown_number(principal, recording.resource, number)
            held = tuple(hold.id for hold in holds if hold.applies_to(recording))
            views.append(RecordingView(recording, shown, held))
        return Page(items=tuple(views), next_cursor=page.next_cursor)

    # -- tags and notes -------------------------------------------------------------------

    def add_tag(self, principal: Principal, recording_id: RecordingId, tag: str) -> Recording:
        self.visible(principal, Permission.RECORDINGS_PLAY, recording_id)
        with self._sessions() as session, session.begin():
            repository = RecordingRepository(session, self._numbers)
            repository.add_tag(recording_id, tag, by=principal.user_id, at=self._clock())
            return repository.get(recording_id)

    def remove_tag(self, principal: Principal, recording_id: RecordingId, tag: str) -> Recording:
        self.visible(principal, Permission.RECORDINGS_PLAY, recording_id)
        with self._sessions() as session, session.begin():
            repository = RecordingRepository(session, self._numbers)
            repository.remove_tag(recording_id, tag)
            return repository.get(recording_id)

    def notes(self, principal: Principal, recording_id: RecordingId) -> Sequence[Note]:
        self.visible(principal, Permission.RECORDINGS_PLAY, recording_id)
        with self._sessions() as session:
            return RecordingRepository(session, self._numbers).notes(recording_id)

    def add_note(self, principal: Principal, recording_id: RecordingId, text: str) -> Note:
        self.visible(principal, Permission.RECORDINGS_PLAY, recording_id)
        with self._sessions() as session, session.begin():
            return RecordingRepository(session, self._numbers).add_note(
                recording_id, text, by=principal.user_id, at=self._clock()
            )

    # -- legal holds ----------------------------------------------------------------------

    def check_hold_target(
        self, principal: Principal, kind: HoldTargetKind, target_id: str
    ) -> Resource:
        """The resource a hold on `kind`/`target_id` is authorized against (and checks it):
        the recording itself, or, for a call, user or queue, everything (scope `all`)."""
        if kind is HoldTargetKind.RECORDING:
            return self.visible(
                principal, Permission.RECORDINGS_LEGAL_HOLD, RecordingId(target_id)
            ).resource
        resource = Resource.global_resource(ResourceKind.RECORDING)
        require(principal, Permission.RECORDINGS_LEGAL_HOLD, resource, "legal holds")
        if kind in (HoldTargetKind.USER, HoldTargetKind.QUEUE) and not (
            target_id.isascii() and target_id.isdigit()
        ):
            raise ValidationFailed(
                f"a {kind.value} is named by its numeric id", details={"field": "target_id"}
            )
        return resource

    def place_hold(
        self, principal: Principal, kind: HoldTargetKind, target_id: str, reason: str
    ) -> LegalHold:
        self.check_hold_target(principal, kind, target_id)
        with self._sessions() as session, session.begin():
            return LegalHoldRepository(session).place(
                kind, target_id, reason, by=principal.user_id, at=self._clock()
            )

    def check_release(self, principal: Principal, hold_id: int) -> LegalHold:
        """The active hold `hold_id`, if `principal` may release holds (scope `all`)."""
        require(
            principal,
            Permission.RECORDINGS_LEGAL_HOLD,
            Resource.global_resource(ResourceKind.RECORDING),
            "legal holds",
        )
        with self._sessions() as session:
            hold = LegalHoldRepository(session).get(hold_id)
        if not hold.active:
            raise InvalidState(
                f"legal hold {hold_id} is already released", error_id="legal_hold_released"
            )
        return hold

    def release_hold(self, principal: Principal, hold_id: int, reason: str) -> LegalHold:
        require(
            principal,
            Permission.RECORDINGS_LEGAL_HOLD,
            Resource.global_resource(ResourceKind.RECORDING),
            "legal holds",
        )
        with self._sessions() as session, session.begin():
            return LegalHoldRepository(session).release(
                hold_id, reason, by=principal.user_id, at=self._clock()
            )

    def holds(self, principal: Principal, *, active_only: bool) -> Sequence[LegalHold]:
        require(
            principal,
            Permission.RECORDINGS_LEGAL_HOLD,
            Resource.global_resource(ResourceKind.RECORDING),
            "legal holds",
        )
        with self._sessions() as session:
            return LegalHoldRepository(session).list(active_only=active_only)

    # -- deletion -------------------------------------------------------------------------

    async def delete(
        self, principal: Principal, actor_name: str, recording_id: RecordingId, reason: str
    ) -> Tombstone:
        """Delete now (crypto-shred, file, tombstone, audit); a legal hold refuses it with
        `Conflict` `recording_on_legal_hold` and changes nothing."""
        text = require_reason(reason)
        await asyncio.to_thread(self.visible, principal, Permission.RECORDINGS_DELETE, recording_id)
        deletion = Deletion(
            kind=TombstoneKind.MANUAL,
            rule="manual",
            actor_name=actor_name,
            actor_user_id=principal.user_id,
            reason=text,
        )
        tombstone = await asyncio.to_thread(self._shredder.shred, recording_id, deletion)
        await self._shredder.finish(tombstone)
        await asyncio.to_thread(self._shredder.scrub)
        return tombstone

    # -- retention policies ---------------------------------------------------------------

    def _retention(self, principal: Principal) -> None:
        require(
            principal,
            Permission.RETENTION_MANAGE,
            Resource.global_resource(ResourceKind.RETENTION_POLICY),
            "retention policies",
        )

    def policies(self, principal: Principal) -> Sequence[RetentionPolicy]:
        self._retention(principal)
        with self._sessions() as session:
            return RetentionPolicyRepository(session).list()

    def set_policy(
        self,
        principal: Principal,
        scope: RetentionScope,
        days: int | None,
        *,
        team_id: TeamId | None = None,
        queue_id: QueueId | None = None,
    ) -> Sequence[RetentionPolicy]:
        """Set (or, with `days` None, remove) one policy; the policies after the change."""
        self._retention(principal)
        with self._sessions() as session, session.begin():
            repository = RetentionPolicyRepository(session)
            if days is None:
                repository.remove(scope, team_id=team_id, queue_id=queue_id)
            else:
                policy = RetentionPolicy(scope=scope, days=days, team_id=team_id, queue_id=queue_id)
                repository.set(policy, by=principal.user_id, at=self._clock())
            return repository.list()

    def purge_status(self, principal: Principal) -> PurgeStatus:
        """How far the current (or last) purge of this node got."""
        self._retention(principal)
        return self._purge_runs().status()

    def start_purge(self, principal: Principal) -> PurgeStatus:
        """Start a purge now (in the background); 409 `purge_running` if one is running.
        Call on the event loop."""
        self._retention(principal)
        runs = self._purge_runs()
        if not runs.start_now():
            raise InvalidState("a purge is running already", error_id="purge_running")
        return runs.status()

    def _purge_runs(self) -> PurgeRuns:
        if self._purges is None:
            raise InvalidState(
                "the purge does not run in this node", error_id="purge_not_configured"
            )
        return self._purges

    # -- listening ------------------------------------------------------------------------

    def start_playback(
        self, principal: Principal, session_id: int, recording_id: RecordingId, rendition: Rendition
    ) -> PlaybackGrant:
        """A playback link for this session (the caller has audited the play and its reason)."""
        recording = self.visible(principal, Permission.RECORDINGS_PLAY, recording_id)
        _require_playable(recording)
        return self.grants.issue(recording_id, session_id, rendition, self._clock())

    def open_grant(
        self,
        principal: Principal,
        session_id: int,
        token: str,
    ) -> OpenedAudio:
        """The audio a playback link names, if it is this session's, unexpired, and the
        principal may still play the recording."""
        grant = self.grants.check(token, session_id, self._clock())
        recording = self.visible(principal, Permission.RECORDINGS_PLAY, grant.recording_id)
        return self.open_audio(recording, grant.rendition)

    def open_download(
        self,
        principal: Principal,
        recording_id: RecordingId,
        rendition: Rendition,
        watermark: Mapping[str, str],
    ) -> OpenedAudio:
        recording = self.visible(principal, Permission.RECORDINGS_DOWNLOAD, recording_id)
        return self.open_audio(recording, rendition, watermark)

    def waveform(self, principal: Principal, session_id: int, token: str, buckets: int) -> Waveform:
        with self.open_grant(principal, session_id, token) as opened:
            try:
                return waveform(opened.audio.reader, buckets)
            except RecordingCorrupted as error:
                raise opened.refuse(error) from None

    def open_audio(
        self, recording: Recording, rendition: Rendition, info: Mapping[str, str] | None = None
    ) -> OpenedAudio:
        """Unwrap the data key, open the sealed file, present it as a WAV.

        With its manifest (every closed recording has one) the manifest's signature is checked,
        and that it is the one whose digest the catalogue recorded at close (a manifest the
        catalogue recorded and that is gone is refused as corruption); then the open reads only
        the records' headers and checks them against the manifest; each audio chunk is then
        verified (its digest, then AES-GCM) as it is read, so streaming starts at once and a
        chunk altered in place stops the stream (`refuse`). A manifest whose signature fails is
        refused like any corruption. Without a manifest (the catalogue has none either:
        "manifest not written") the whole file is authenticated first."""
        _require_playable(recording)
        assert recording.kek_id is not None and recording.wrapped_key is not None
        data_key = self._keys.unwrap(
            WrappedKey(recording.kek_id, recording.wrapped_key), recording.id
        )
        stack = contextlib.ExitStack()
        try:
            path = stack.enter_context(self._storage.local_copy(recording.storage_key))
            digests = manifest_chunk_digests(
                path, recording.id, self._signers, recording.manifest_digest
            )
            reader = (
                SealedReader.open(
                    path,
                    recording.id,
                    data_key,
                    allow_torn_tail=recording.status is RecordingStatus.INCOMPLETE,
                )
                if digests is None
                else SealedReader.open_indexed(path, recording.id, data_key, digests)
            )
            audio = RecordingAudio(reader, rendition, info)
        except FileNotFoundError:
            stack.close()
            raise InvalidState(
                f"the sealed file of recording {recording.id} is missing",
                error_id="recording_file_missing",
            ) from None
        except RecordingCorrupted as error:
            stack.close()
            raise self._refuse(recording, error) from None
        except BaseException:
            stack.close()
            raise
        return OpenedAudio(recording, audio, stack, lambda error: self._refuse(recording, error))

    def _refuse(self, recording: Recording, error: RecordingCorrupted) -> InvalidState:
        """Log and alert a corrupted recording (no number, no audio in the alert); the error
        to answer with."""
        logger.error("recording %s refused: %s", recording.id, error.reason)
        if self._alert is not None:
            self._alert(
                RecordingIntegrityAlert(
                    at=self._clock(),
                    team_id=recording.team_id,
                    user_id=recording.operator_id,
                    recording_id=recording.id,
                    call_id=recording.call_id,
                    reason=error.reason,
                )
            )
        return InvalidState(f"recording corrupted: {recording.id}", error_id="recording_corrupted")


def _require_playable(recording: Recording) -> None:
    if not recording.status.playable or recording.wrapped_key is None:
        raise InvalidState(
            f"recording {recording.id} is {recording.status.value}: nothing to play",
            error_id="recording_not_playable",
        )


def stream_and_close(opened: OpenedAudio, byte_range: ByteRange | None) -> Iterator[bytes]:
    """Iterate the opened audio's bytes (all, or `byte_range`), closing it at the end. A chunk
    found corrupted on the way is logged and alerted, and ends the stream with an error (the
    answer's status is sent already: the client sees a cut response)."""
    try:
        yield from opened.audio.iter_bytes(byte_range)
    except RecordingCorrupted as error:
        raise opened.refuse(error) from None
    finally:
        opened.close()
