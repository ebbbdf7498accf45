"""Listening to a sealed recording: WAV decrypted on the fly, byte ranges, waveform, download.

Nothing here writes audio to disk. `RecordingAudio` opens a sealed file with its unwrapped data
key (the reader authenticates every chunk first) and serves any byte range of a virtual WAV
file, computing only the samples that range covers: `header + PCM`, 16-bit little-endian, 8 kHz,
as a mix of every track (mono), stereo (customer left, operator right) or one track. A download
is the same WAV with a `LIST/INFO` chunk naming who downloaded it, when and why (a watermark in
the metadata), or FLAC (`flac_download`, libsndfile through `soundfile`) with the same watermark
as Vorbis comments (TITLE, DATE, COMMENT); the FLAC is encoded block by block in memory (it
needs the whole stream to finish its header), never on disk. The waveform is the minimum and
maximum of the mix in each of N equal buckets.

Before a byte is served, `manifest_chunk_digests` checks the manifest beside the sealed file:
its Ed25519 signature against the node's signing key (the key `verify` and the export trust),
that it names this recording and is the manifest the catalogue recorded at close (its SHA-256),
and hands its chunk digests to the reader, which checks every chunk against them as it is read.
A manifest whose signature fails (edited, or signed by another key), or one the catalogue
recorded that is gone, is corruption like an altered chunk.

Playback links (`PlaybackGrants`) are self-contained tokens signed with HMAC-SHA256: recording,
mode, web session and expiry. A token is accepted only from the session it was made for and
until it expires, so a link copied elsewhere is useless and a signed-out session's links die
with it; nodes sharing the catalogue secret accept each other's links.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import io
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import soundfile  # type: ignore[import-untyped]  # no stubs; libsndfile bundled
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callwarden.domain.errors import NotFound, ValidationFailed
from callwarden.domain.ids import RecordingId
from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.manifest import FORMAT, manifest_paths
from callwarden.recording.reader import STEREO_LEFT, STEREO_RIGHT, SealedReader
from callwarden.recording.signing import signature_valid

SAMPLE_WIDTH = 2
STREAM_BLOCK_FRAMES = 8000
MAX_WAVEFORM_BUCKETS = 2000
INFO_TEXT_LIMIT = 500


class PlaybackMode(enum.Enum):
    MIX = "mix"
    STEREO = "stereo"
    TRACK = "track"


@dataclass(frozen=True)
class Rendition:
    """How the audio is laid out: a mode, and the track for `TRACK`."""

    mode: PlaybackMode
    track: str | None = None

    def __post_init__(self) -> None:
        if (self.mode is PlaybackMode.TRACK) != (self.track is not None):
            raise ValidationFailed(
                "a track is named exactly for mode 'track'", details={"field": "track"}
            )

    @property
    def channels(self) -> int:
        return 2 if self.mode is PlaybackMode.STEREO else 1


def _info_chunk(info: Mapping[str, str]) -> bytes:
    """A RIFF `LIST` chunk of type `INFO` with one sub-chunk per 4-letter id (NUL-terminated)."""
    body = b"INFO"
    for key, value in info.items():
        if len(key) != 4 or not key.isascii():
            raise ValueError(f"INFO ids are 4 ASCII letters, not {key!r}")
        text = value[:INFO_TEXT_LIMIT].encode("utf-8", "replace") + b"\x00"
        if len(text) % 2:
            text += b"\x00"
        body += key.encode("ascii") + struct.pack("<I", len(text)) + text
    return b"LIST" + struct.pack("<I", len(body)) + body


def wav_header(frames: int, channels: int, info: Mapping[str, str] | None = None) -> bytes:
    """The bytes before the samples of a PCM WAV of `frames` frames (16-bit, 8 kHz)."""
    rate = 8000
    data_bytes = frames * channels * SAMPLE_WIDTH
    fmt = struct.pack(
        "<4sIHHIIHH",
        b"fmt ",
        16,
        1,
        channels,
        rate,
        rate * channels * SAMPLE_WIDTH,
        channels * SAMPLE_WIDTH,
        8 * SAMPLE_WIDTH,
    )
    extra = _info_chunk(info) if info else b""
    riff_size = 4 + len(fmt) + len(extra) + 8 + data_bytes
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVE"
        + fmt
        + extra
        + b"data"
        + struct.pack("<I", data_bytes)
    )


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range `first`..`last` of a file of `total` bytes."""

    first: int
    last: int
    total: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.total}"


class RangeNotSatisfiable(ValidationFailed):
    """A Range header no byte of the file satisfies (HTTP 416)."""

    default_error_id = "range_not_satisfiable"


def parse_range(header: str | None, total: int) -> ByteRange | None:
    """One `bytes=a-b`, `bytes=a-` or `bytes=-n` range (RFC 9110 14.2), clipped to the file;
    None for no header. Several ranges, or none satisfiable, are refused."""
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise RangeNotSatisfiable("only one byte range is supported", details={"size": total})
    first_text, dash, last_text = spec.strip().partition("-")
    try:
        if not dash:
            raise ValueError(spec)
        if not first_text:
            suffix = int(last_text)
            if suffix <= 0:
                raise ValueError(spec)
            first, last = max(0, total - suffix), total - 1
        else:
            first = int(first_text)
            last = int(last_text) if last_text else total - 1
    except ValueError:
        raise RangeNotSatisfiable("malformed Range header", details={"size": total}) from None
    last = min(last, total - 1)
    if first < 0 or first > last:
        raise RangeNotSatisfiable("range not satisfiable", details={"size": total})
    return ByteRange(first, last, total)


def manifest_chunk_digests(
    path: Path,
    recording_id: str,
    signers: Sequence[Ed25519PublicKey],
    catalogued: str | None = None,
) -> tuple[str, ...] | None:
    """The chunk digests of the signed manifest beside the sealed file `path`, once its
    signature verifies with one of `signers`, it names `recording_id` and, when the catalogue
    recorded the manifest's SHA-256 (`catalogued`, the row's ``manifest_digest``), its body
    has that digest. None when there is no manifest and the catalogue recorded none either (a
    recording closed with "manifest not written": the reader then authenticates the whole
    file). A manifest the catalogue recorded but that is gone, or one that is there but fails
    a check, raises `RecordingCorrupted`: deleting the manifest is tampering too."""
    body_path, signature_path = manifest_paths(path)

    def fail(reason: str) -> RecordingCorrupted:
        return RecordingCorrupted(recording_id, reason)

    try:
        body = body_path.read_bytes()
    except FileNotFoundError:
        if catalogued is not None:
            raise fail("the signed manifest is missing (the catalogue records one)") from None
        return None

    try:
        signature = signature_path.read_bytes()
    except FileNotFoundError:
        raise fail("the manifest's signature is missing") from None
    if not any(signature_valid(signer, body, signature) for signer in signers):
        raise fail("manifest signature does not verify (altered, or signed by another key)")
    try:
        fields = json.loads(body)
    except ValueError as error:
        raise fail(f"manifest is not readable JSON: {error}") from None
    if not isinstance(fields, dict):
        raise fail("manifest is not a JSON object")
    if fields.get("format") != FORMAT or fields.get("recording_id") != recording_id:
        raise fail("manifest is for another recording or format")
    digests = fields.get("chunk_sha256")
    if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
        raise fail("manifest lists no chunk digests")
    if catalogued is not None and not hmac.compare_digest(
        hashlib.sha256(body).hexdigest(), catalogued
    ):
        raise fail("manifest is not the one the catalogue recorded")
    return tuple(digests)


class RecordingAudio:
    """One opened recording as a WAV file of a given rendition (see the module docstring)."""

    def __init__(
        self,
        reader: SealedReader,
        rendition: Rendition,
        info: Mapping[str, str] | None = None,
    ) -> None:
        if rendition.mode is PlaybackMode.TRACK and rendition.track not in reader.tracks:
            raise ValidationFailed(
                f"no track {rendition.track!r} (tracks: {', '.join(reader.tracks)})",
                details={"field": "track"},
            )
        if rendition.mode is PlaybackMode.STEREO and not {STEREO_LEFT, STEREO_RIGHT} <= set(
            reader.tracks
        ):
            raise ValidationFailed(
                "stereo needs a customer and an operator track", details={"field": "mode"}
            )
        self.reader = reader
        self._rendition = rendition
        self.frames = reader.duration_samples
        self.channels = rendition.channels
        self.header = wav_header(self.frames, self.channels, info)
        self.size = len(self.header) + self.frames * self.channels * SAMPLE_WIDTH

    def frames_between(self, start: int, end: int) -> np.ndarray:
        """Frames `start`..`end` (exclusive) as int16, shape (n,) or (n, 2)."""
        match self._rendition.mode:
            case PlaybackMode.MIX:
                return self.reader.mix(start, end)
            case PlaybackMode.STEREO:
                return self.reader.stereo(start, end)
            case PlaybackMode.TRACK:
                assert self._rendition.track is not None
                return self.reader.pcm(self._rendition.track, start, end)

    def iter_bytes(self, byte_range: ByteRange | None = None) -> Iterator[bytes]:
        """The bytes of `byte_range` (default: the whole file), decrypted block by block."""
        first, last = (
            (0, self.size - 1) if byte_range is None else (byte_range.first, byte_range.last)
        )
        header_size = len(self.header)
        if first < header_size:
            yield self.header[first : min(last + 1, header_size)]
            first = header_size
        frame_bytes = self.channels * SAMPLE_WIDTH
        position = first
        while position <= last:
            frame = (position - header_size) // frame_bytes
            end_frame = min(self.frames, frame + STREAM_BLOCK_FRAMES)
            block = self.frames_between(frame, end_frame).astype("<i2").tobytes()
            offset = header_size + frame * frame_bytes
            chunk = block[position - offset : last + 1 - offset]
            if not chunk:
                return
            yield chunk
            position += len(chunk)

    def read(self, byte_range: ByteRange | None = None) -> bytes:
        return b"".join(self.iter_bytes(byte_range))


class DownloadFormat(enum.Enum):
    WAV = "wav"
    FLAC = "flac"

    @property
    def media_type(self) -> str:
        return "audio/wav" if self is DownloadFormat.WAV else "audio/flac"


#: The RIFF INFO ids of a watermark and the Vorbis comments (libsndfile strings) they become.
_FLAC_FIELDS = {"INAM": "title", "ICRD": "date", "ICMT": "comment"}


def flac_download(audio: RecordingAudio, info: Mapping[str, str]) -> bytes:
    """The whole rendition as FLAC (16-bit, 8 kHz), `info` (INAM, ICRD, ICMT) as its TITLE,
    DATE and COMMENT tags. Decrypted block by block; only the compressed result is held."""
    unknown = set(info) - set(_FLAC_FIELDS)
    if unknown:
        raise ValueError(f"no FLAC tag for {sorted(unknown)}")
    output = io.BytesIO()
    with soundfile.SoundFile(
        output,
        "w",
        samplerate=audio.reader.sample_rate,
        channels=audio.channels,
        format="FLAC",
        subtype="PCM_16",
    ) as encoder:
        for key, value in info.items():  # before the first frame: they go into the header
            setattr(encoder, _FLAC_FIELDS[key], value[:INFO_TEXT_LIMIT])
        for start in range(0, audio.frames, STREAM_BLOCK_FRAMES):
            encoder.write(
                audio.frames_between(start, min(audio.frames, start + STREAM_BLOCK_FRAMES))
            )
    return output.getvalue()


@dataclass(frozen=True)
class Waveform:
    """Per bucket of `bucket_frames` frames, the minimum and maximum sample of the mix."""

    bucket_frames: int
    minimum: tuple[int, ...]
    maximum: tuple[int, ...]


def waveform(reader: SealedReader, buckets: int) -> Waveform:
    """The mix's min/max in `buckets` equal buckets (fewer for a very short recording)."""
    if not 1 <= buckets <= MAX_WAVEFORM_BUCKETS:
        raise ValidationFailed(
            f"buckets must be between 1 and {MAX_WAVEFORM_BUCKETS}", details={"field": "buckets"}
        )
    frames = reader.duration_samples
    if frames == 0:
        return Waveform(0, (), ())
    size = -(-frames // buckets)
    lows: list[int] = []
    highs: list[int] = []
    for start in range(0, frames, size * 64):
        block = reader.mix(start, min(frames, start + size * 64))
        for offset in range(0, block.size, size):
            part = block[offset : offset + size]
            lows.append(int(part.min()))
            highs.append(int(part.max()))
    return Waveform(size, tuple(lows), tuple(highs))


@dataclass(frozen=True)
class PlaybackGrant:
    """Permission to stream one recording in one rendition, from one session, until `expires_at`."""

    recording_id: RecordingId
    session_id: int
    rendition: Rendition
    expires_at: datetime
    token: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def grant_not_found() -> NotFound:
    return NotFound("playback link not found or expired", error_id="playback_grant_not_found")


class PlaybackGrants:
    """Makes and checks playback tokens (HMAC-SHA256 under a key derived from `secret`)."""

    def __init__(self, secret: bytes, *, lifetime: timedelta = timedelta(minutes=15)) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"callwarden playback grant"
        ).derive(secret)
        self.lifetime = lifetime

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def issue(
        self, recording_id: RecordingId, session_id: int, rendition: Rendition, now: datetime
    ) -> PlaybackGrant:
        expires_at = now + self.lifetime
        fields = [
            recording_id,
            str(session_id),
            rendition.mode.value,
            rendition.track or "",
            str(int(expires_at.timestamp())),
        ]
        payload = "\n".join(fields).encode()
        token = f"{_b64(payload)}.{_b64(self._sign(payload))}"
        expires = datetime.fromtimestamp(int(expires_at.timestamp()), UTC)
        return PlaybackGrant(recording_id, session_id, rendition, expires, token)

    def check(self, token: str, session_id: int, now: datetime) -> PlaybackGrant:
        """The grant `token` carries, if it is genuine, for `session_id` and not expired;
        otherwise `NotFound` (playback_grant_not_found), the same for every failure."""
        payload_text, _, signature_text = token.partition(".")
        try:
            payload = _unb64(payload_text)
            signature = _unb64(signature_text)
        except (ValueError, binascii.Error):
            raise grant_not_found() from None
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise grant_not_found()
        recording_id, session_text, mode, track, expires_text = payload.decode().split("\n")
        expires_at = datetime.fromtimestamp(int(expires_text), UTC)
        if int(session_text) != session_id or expires_at <= now:
            raise grant_not_found()
        rendition = Rendition(PlaybackMode(mode), track or None)
        return PlaybackGrant(RecordingId(recording_id), session_id, rendition, expires_at, token)
