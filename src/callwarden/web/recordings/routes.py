"""The recording routes (docs/api.md, "Recordings").

- `GET /api/v1/recordings`: search among the recordings one may play (`recordings.play` at
  one's scope: a supervisor sees their teams', operators none by default);
- `GET /{id}`, `GET|POST /{id}/notes`, `PUT /{id}/tags`: `recordings.play` on the recording;
- `POST /{id}/play {reason, mode, track}`: audited, gives a playback link bound to this
  session; `GET /api/v1/playback/{token}` streams it (HTTP ranges), `.../waveform` summarises it;
- `POST /{id}/download {reason, mode, track, format}`: `recordings.download`, audited, a
  watermarked WAV or FLAC;
- `POST /{id}/holds {reason}`: `recordings.legal_hold` on the recording; `GET|POST
  /api/v1/legal-holds` and `POST /api/v1/legal-holds/release` for holds on anything
  (scope `all`);
- `DELETE /{id} {reason}`: `recordings.delete`; refused while a legal hold applies;
- `POST /{id}/verify`: `recordings.play` on the recording, audited: the manifest check;
- `GET|PUT /api/v1/retention-policies`: `retention.manage`.

Another team's recording is "not found", worded as a missing one. Nothing here touches the
database or files on the event loop: the service runs in worker threads.
"""

# No `from __future__ import annotations`: the routes are made inside `recordings_routers`
# and their annotations name its local declarations, which FastAPI must see as objects.
import asyncio
import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response, StreamingResponse

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import InvalidState, JsonValue, ValidationFailed
from callwarden.domain.ids import QueueId, RecordingId, TeamId
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind, not_found
from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.models import HoldTargetKind, RetentionScope
from callwarden.recording.playback import (
    DownloadFormat,
    RangeNotSatisfiable,
    flac_download,
    parse_range,
)
from callwarden.recording.service import OpenedAudio, RecordingService, stream_and_close
from callwarden.security.audit import AuditAction, AuditEvent, AuditOutcome
from callwarden.web.access import (
    API_PREFIX,
    Caller,
    GuardedRoute,
    Target,
    TargetFound,
    require,
    self_service,
)
from callwarden.web.recordings.schemas import (
    DeletedOut,
    DownloadRequest,
    HoldList,
    HoldListParameters,
    HoldOut,
    HoldRequest,
    ListenRequest,
    NoteBody,
    NoteList,
    NoteOut,
    PlaybackOut,
    PolicyBody,
    PolicyList,
    PolicyOut,
    PurgeStatusOut,
    ReasonBody,
    RecordingOut,
    RecordingPage,
    RecordingSearchParameters,
    ReleaseRequest,
    TagBody,
    WaveformOut,
    WaveformParameters,
)
from callwarden.web.recordings.verify_route import add_verify_route
from callwarden.web.services import WebServices, services_of

__all__ = ["recordings_routers"]

RECORDING_ID = re.compile(r"^[0-9a-f]{32}$")
PLAYBACK_PREFIX = f"{API_PREFIX}/playback"
RETENTION_UPDATE = "retention.update"
PURGE_START = "recording.purge_started"
TokenPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{20,400}\.[A-Za-z0-9_-]{43}$")]
"""A playback link's token: a base64url payload and its 32-byte HMAC."""


class RecordingsUnavailable(InvalidState):
    default_error_id = "recordings_not_configured"


def _service(services: WebServices) -> RecordingService:
    service = services.recordings()
    if service is None:
        raise RecordingsUnavailable("recordings are not configured on this node")
    return service


def recording_id_of(path_params: Mapping[str, Any]) -> RecordingId:
    text = str(path_params.get("recording_id", ""))
    if not RECORDING_ID.fullmatch(text):
        problem = "must be 32 lower-case hexadecimal digits"
        raise ValidationFailed(
            f"recording_id: {problem}",
            details={
                "field": "recording_id",
                "problems": [{"location": "path", "field": "recording_id", "problem": problem}],
            },
        )
    return RecordingId(text)


def _recording_target(services: WebServices) -> Target:
    def resolve(snapshot: DirectorySnapshot, path_params: Mapping[str, Any]) -> TargetFound:
        recording_id = recording_id_of(path_params)
        what = f"recording {recording_id}"
        resource = _service(services).resource_of(recording_id)
        if resource is None:
            raise not_found(what)
        return TargetFound(resource, what, recording_id)

    return Target(ResourceKind.RECORDING, "recording_id", resolve)


def _event(
    caller: Caller,
    action: str,
    object_id: str | int | None,
    reason: str | None,
    details: Mapping[str, JsonValue],
    object_kind: str = "recording",
) -> AuditEvent:
    return AuditEvent(
        action=action,
        actor=caller.actor,
        outcome=AuditOutcome.SUCCESS,
        object_kind=object_kind,
        object_id=object_id,
        source_address=caller.source_address,
        reason=reason,
        details={**details, "session": int(caller.session.id)},
    )


def _target_id(caller: Caller) -> RecordingId:
    assert caller.target is not None
    return RecordingId(caller.target.object_id)


def _audio_response(
    opened: OpenedAudio, range_header: str | None, filename: str | None
) -> Response:
    audio = opened.audio
    try:
        byte_range = parse_range(range_header, audio.size)
    except RangeNotSatisfiable:
        opened.close()
        return Response(status_code=416, headers={"Content-Range": f"bytes */{audio.size}"})
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store"}
    if filename is not None:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    status = 200
    headers["Content-Length"] = str(audio.size)
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = byte_range.content_range
        headers["Content-Length"] = str(byte_range.length)
    return StreamingResponse(
        stream_and_close(opened, byte_range),
        status_code=status,
        media_type="audio/wav",
        headers=headers,
    )


def recordings_routers(services: WebServices) -> list[APIRouter]:
    """The recording, playback, legal-hold and retention routes over `services`."""
    return [
        _recording_router(services),
        _playback_router(services),
        _hold_router(services),
        _retention_router(services),
    ]


def _request_service(request: Request) -> RecordingService:
    return _service(services_of(request))


ServiceDependency = Annotated[RecordingService, Depends(_request_service)]


def _recording_router(services: WebServices) -> APIRouter:
    router = APIRouter(
        prefix=f"{API_PREFIX}/recordings", tags=["recordings"], route_class=GuardedRoute
    )
    target = _recording_target(services)
    _add_reading_routes(router, target)
    _add_listening_routes(router, services, target)
    _add_keeping_routes(router, services, target)
    add_verify_route(router, services, target, _service)
    return router


def _add_reading_routes(router: APIRouter, target: Target) -> None:
    """Search, metadata, notes and tags: `recordings.play`."""
    plays = Annotated[
        Caller, require(Permission.RECORDINGS_PLAY, kind=ResourceKind.RECORDING, own=True)
    ]
    plays_it = Annotated[Caller, require(Permission.RECORDINGS_PLAY, target=target)]

    @router.get("", summary="Search the recordings one may play")
    async def search(
        caller: plays, service: ServiceDependency, filters: RecordingSearchParameters
    ) -> RecordingPage:
        page = await asyncio.to_thread(service.search, caller.principal, filters.query())
        return RecordingPage(
            items=[RecordingOut.of(view) for view in page.items], next_cursor=page.next_cursor
        )

    @router.get("/{recording_id}", summary="A recording's metadata")
    async def get(caller: plays_it, service: ServiceDependency) -> RecordingOut:
        view = await asyncio.to_thread(service.get, caller.principal, _target_id(caller))
        return RecordingOut.of(view)

    @router.get("/{recording_id}/notes", summary="A recording's notes")
    async def notes(caller: plays_it, service: ServiceDependency) -> NoteList:
        found = await asyncio.to_thread(service.notes, caller.principal, _target_id(caller))
        return NoteList(items=[NoteOut.of(note) for note in found])

    @router.post("/{recording_id}/notes", status_code=201, summary="Add a note")
    async def add_note(caller: plays_it, service: ServiceDependency, body: NoteBody) -> NoteOut:
        note = await asyncio.to_thread(
            service.add_note, caller.principal, _target_id(caller), body.text
        )
        return NoteOut.of(note)

    @router.put("/{recording_id}/tags", summary="Put a tag on a recording, or take it off")
    async def set_tag(caller: plays_it, service: ServiceDependency, body: TagBody) -> RecordingOut:
        recording_id = _target_id(caller)
        change = service.add_tag if body.present else service.remove_tag
        await asyncio.to_thread(change, caller.principal, recording_id, body.tag)
        view = await asyncio.to_thread(service.get, caller.principal, recording_id)
        return RecordingOut.of(view)


def _add_listening_routes(router: APIRouter, services: WebServices, target: Target) -> None:
    """Play (a link for the session) and download (a watermarked WAV), both audited."""
    plays_it = Annotated[Caller, require(Permission.RECORDINGS_PLAY, target=target)]
    downloads_it = Annotated[Caller, require(Permission.RECORDINGS_DOWNLOAD, target=target)]

    @router.post("/{recording_id}/play", summary="Play a recording (reason required)")
    async def play(
        caller: plays_it, service: ServiceDependency, body: ListenRequest
    ) -> PlaybackOut:
        recording_id = _target_id(caller)
        grant = await asyncio.to_thread(
            service.start_playback,
            caller.principal,
            int(caller.session.id),
            recording_id,
            body.rendition(),
        )
        details: dict[str, JsonValue] = {"mode": body.mode, "track": body.track}
        await services.audit.record(
            _event(caller, AuditAction.RECORDING_PLAY, recording_id, body.reason, details)
        )
        return PlaybackOut.of(grant, PLAYBACK_PREFIX)

    @router.post("/{recording_id}/download", summary="Download a watermarked WAV or FLAC")
    async def download(
        caller: downloads_it, service: ServiceDependency, body: DownloadRequest
    ) -> Response:
        recording_id = _target_id(caller)
        now = services.clock.now()
        watermark = {
            "INAM": f"callwarden recording {recording_id}",
            "ICRD": now.date().isoformat(),
            "ICMT": (
                f"downloaded by {caller.user.username} (user {caller.user.id}) at "
                f"{now.isoformat()}; reason: {body.reason}"
            ),
        }
        opened = await asyncio.to_thread(
            service.open_download, caller.principal, recording_id, body.rendition(), watermark
        )
        details: dict[str, JsonValue] = {
            "mode": body.mode,
            "track": body.track,
            "format": body.format,
        }
        try:
            await services.audit.record(
                _event(caller, AuditAction.RECORDING_DOWNLOAD, recording_id, body.reason, details)
            )
        except BaseException:
            opened.close()
            raise
        filename = f"recording-{recording_id}.{body.format}"
        if body.download_format() is DownloadFormat.WAV:
            return _audio_response(opened, None, filename)
        try:
            flac = await asyncio.to_thread(flac_download, opened.audio, watermark)
        except RecordingCorrupted as error:  # a chunk failed its check on the way
            raise opened.refuse(error) from None
        finally:
            opened.close()
        return Response(
            flac,
            media_type=DownloadFormat.FLAC.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
            },
        )


def _add_keeping_routes(router: APIRouter, services: WebServices, target: Target) -> None:
    """A legal hold on the recording, and its deletion (refused while held)."""
    holds_it = Annotated[Caller, require(Permission.RECORDINGS_LEGAL_HOLD, target=target)]
    deletes_it = Annotated[Caller, require(Permission.RECORDINGS_DELETE, target=target)]

    @router.post("/{recording_id}/holds", status_code=201, summary="Put a legal hold on it")
    async def hold(caller: holds_it, service: ServiceDependency, body: ReasonBody) -> HoldOut:
        recording_id = _target_id(caller)
        kind = HoldTargetKind.RECORDING
        await asyncio.to_thread(service.check_hold_target, caller.principal, kind, recording_id)
        await services.audit.record(
            _event(
                caller, AuditAction.RECORDING_HOLD, recording_id, body.reason, {"kind": "recording"}
            )
        )
        placed = await asyncio.to_thread(
            service.place_hold, caller.principal, kind, recording_id, body.reason
        )
        return HoldOut.of(placed)

    @router.delete("/{recording_id}", summary="Delete now (reason required; not under hold)")
    async def delete(
        caller: deletes_it, service: ServiceDependency, body: ReasonBody
    ) -> DeletedOut:
        tombstone = await service.delete(
            caller.principal, caller.user.username, _target_id(caller), body.reason
        )
        return DeletedOut(
            recording_id=tombstone.recording_id,
            purged_at=tombstone.purged_at,
            rule=tombstone.rule,
        )


def _playback_router(services: WebServices) -> APIRouter:
    router = APIRouter(prefix=PLAYBACK_PREFIX, tags=["recordings"], route_class=GuardedRoute)
    own_link = Annotated[Caller, self_service("a playback link of this session")]

    @router.get("/{token}", summary="Stream a recording (HTTP ranges)")
    async def stream(token: TokenPath, request: Request, caller: own_link) -> Response:
        service = _service(services)
        opened = await asyncio.to_thread(
            service.open_grant, caller.principal, int(caller.session.id), token
        )
        return _audio_response(opened, request.headers.get("range"), None)

    @router.get("/{token}/waveform", summary="Min/max per bucket of the mix")
    async def waveform(
        token: TokenPath, caller: own_link, parameters: WaveformParameters
    ) -> WaveformOut:
        service = _service(services)
        shape = await asyncio.to_thread(
            service.waveform,
            caller.principal,
            int(caller.session.id),
            token,
            parameters.buckets,
        )
        return WaveformOut.of(shape)

    return router


def _hold_router(services: WebServices) -> APIRouter:
    router = APIRouter(
        prefix=f"{API_PREFIX}/legal-holds", tags=["recordings"], route_class=GuardedRoute
    )
    holder = Annotated[
        Caller, require(Permission.RECORDINGS_LEGAL_HOLD, kind=ResourceKind.RECORDING)
    ]

    @router.get("", summary="Legal holds (active ones by default)")
    async def list_holds(caller: holder, parameters: HoldListParameters) -> HoldList:
        service = _service(services)
        found = await asyncio.to_thread(
            service.holds, caller.principal, active_only=parameters.active
        )
        return HoldList(items=[HoldOut.of(hold) for hold in found])

    @router.post("", status_code=201, summary="Hold a recording, call, user or queue")
    async def place(caller: holder, body: HoldRequest) -> HoldOut:
        service = _service(services)
        kind = HoldTargetKind(body.target_kind)
        await asyncio.to_thread(service.check_hold_target, caller.principal, kind, body.target_id)
        details: dict[str, JsonValue] = {"kind": kind.value, "target": body.target_id}
        await services.audit.record(
            _event(
                caller, AuditAction.RECORDING_HOLD, body.target_id, body.reason, details, kind.value
            )
        )
        placed = await asyncio.to_thread(
            service.place_hold, caller.principal, kind, body.target_id, body.reason
        )
        return HoldOut.of(placed)

    @router.post("/release", summary="Release a legal hold")
    async def release(caller: holder, body: ReleaseRequest) -> HoldOut:
        service = _service(services)
        hold = await asyncio.to_thread(service.check_release, caller.principal, body.hold_id)
        details: dict[str, JsonValue] = {"hold": hold.id, "kind": hold.target_kind.value}
        await services.audit.record(
            _event(
                caller,
                AuditAction.RECORDING_RELEASE,
                hold.target_id,
                body.reason,
                details,
                hold.target_kind.value,
            )
        )
        released = await asyncio.to_thread(
            service.release_hold, caller.principal, body.hold_id, body.reason
        )
        return HoldOut.of(released)

    return router


def _retention_router(services: WebServices) -> APIRouter:
    router = APIRouter(
        prefix=f"{API_PREFIX}/retention-policies", tags=["recordings"], route_class=GuardedRoute
    )
    manager = Annotated[
        Caller, require(Permission.RETENTION_MANAGE, kind=ResourceKind.RETENTION_POLICY)
    ]

    @router.get("", summary="Retention policies")
    async def policies(caller: manager) -> PolicyList:
        found = await asyncio.to_thread(_service(services).policies, caller.principal)
        return PolicyList(items=[PolicyOut.of(policy) for policy in found])

    @router.get("/purge", summary="How far the node's current or last purge got")
    async def purge_status(caller: manager) -> PurgeStatusOut:
        return PurgeStatusOut.of(_service(services).purge_status(caller.principal))

    @router.post("/purge", status_code=202, summary="Start a purge now")
    async def start_purge(caller: manager) -> PurgeStatusOut:
        service = _service(services)
        service.purge_status(caller.principal)  # authorized and configured, before the audit
        await services.audit.record(_event(caller, PURGE_START, None, None, {}, "retention_policy"))
        return PurgeStatusOut.of(service.start_purge(caller.principal))

    @router.put("", summary="Set or remove a retention policy")
    async def set_policy(caller: manager, body: PolicyBody) -> PolicyList:
        found = await asyncio.to_thread(
            _service(services).set_policy,
            caller.principal,
            RetentionScope(body.scope),
            body.days,
            team_id=None if body.team_id is None else TeamId(body.team_id),
            queue_id=None if body.queue_id is None else QueueId(body.queue_id),
        )
        details: dict[str, JsonValue] = {
            "scope": body.scope,
            "team_id": body.team_id,
            "queue_id": body.queue_id,
            "days": body.days,
        }
        await services.audit.record(
            _event(caller, RETENTION_UPDATE, None, None, details, "retention_policy")
        )
        return PolicyList(items=[PolicyOut.of(policy) for policy in found])

    return router
