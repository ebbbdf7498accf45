"""The offer/answer model (RFC 3264) over SDP (RFC 8866), for a media-anchoring B2BUA.

One audio stream of G.711 (PCMU/PCMA, RFC 3551) with telephone-event (RFC 4733) over plain
``RTP/AVP``, or over ``RTP/SAVP`` with SDES keys (RFC 4568, :mod:`callwarden.sip.sdes`) when
the signalling is TLS: :func:`negotiate_answer` answers an incoming offer, :func:`build_offer`
and :func:`parse_answer` run our side of an outgoing leg. ``RTP/SAVP`` over unencrypted
signalling and other profiles are rejected (port 0), never answered with plain RTP. The
description classes live in :mod:`callwarden.sip.session_description` and are re-exported here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from callwarden.sip.errors import SipError
from callwarden.sip.sdes import (
    SAVP,
    CryptoAttribute,
    CryptoSuite,
    choose_crypto,
    new_crypto,
    parse_offered,
)
from callwarden.sip.session_description import (
    MAX_SDP_BYTES,
    STATIC_PAYLOAD_TYPES,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpParseError,
    SessionDescription,
    packed_ip_address,
)

__all__ = [
    "DEFAULT_CODECS",
    "MAX_SDP_BYTES",
    "PCMA",
    "PCMU",
    "STATIC_PAYLOAD_TYPES",
    "TELEPHONE_EVENT",
    "Codec",
    "Connection",
    "Direction",
    "MediaDescription",
    "NegotiatedMedia",
    "NoCommonCodec",
    "OfferAnswerError",
    "Origin",
    "RtpMap",
    "SdesKeys",
    "SdpParseError",
    "SessionDescription",
    "build_offer",
    "negotiate_answer",
    "offer_crypto",
    "parse_answer",
]

_DIRECTION_BITS: MappingProxyType[Direction, tuple[bool, bool]] = MappingProxyType(
    {  # (send, receive)
        "sendrecv": (True, True),
        "sendonly": (True, False),
        "recvonly": (False, True),
        "inactive": (False, False),
    }
)

_BROADCAST = b"\xff\xff\xff\xff"
_EVENT_RANGE_RE = re.compile(r"([0-9]{1,3})(?:-([0-9]{1,3}))?")

_SUPPORTED_EVENTS = frozenset(range(17))  # DTMF 0-9 * # A-D and flash (RFC 4733 3.2)
_DEFAULT_EVENTS = frozenset(range(16))  # RFC 4733 7.1.1: no fmtp means events 0-15


class OfferAnswerError(SipError):
    """An offer or answer that breaks RFC 3264 or that we cannot accept: 488 Not Acceptable Here."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 488)


class NoCommonCodec(OfferAnswerError):  # noqa: N818 - the name other layers code against
    """RFC 3264 6: no offered audio stream has a transport and codec we support (488)."""


@dataclass(frozen=True)
class Codec:
    """A codec we can send and receive; ``payload_type`` is the number we offer it with."""

    encoding: str
    payload_type: int
    clock_rate: int = 8000

    @property
    def is_telephone_event(self) -> bool:
        return self.encoding.lower() == "telephone-event"

    def matches(self, rtpmap: RtpMap) -> bool:
        return (
            rtpmap.encoding.lower() == self.encoding.lower()
            and rtpmap.clock_rate == self.clock_rate
            and rtpmap.channels in (None, 1)
        )


PCMU = Codec("PCMU", 0)
PCMA = Codec("PCMA", 8)
TELEPHONE_EVENT = Codec("telephone-event", 101)
DEFAULT_CODECS: tuple[Codec, ...] = (PCMU, PCMA, TELEPHONE_EVENT)


@dataclass(frozen=True)
class SdesKeys:
    """The SRTP keys agreed through SDES for one leg: we protect what we send with
    ``local_key`` and check what we receive with ``remote_key`` (RFC 4568 6.1)."""

    suite: CryptoSuite
    local_key: bytes = field(repr=False)
    remote_key: bytes = field(repr=False)


@dataclass(frozen=True)
class NegotiatedMedia:
    """The outcome of one offer/answer exchange for the audio stream, from our point of view.

    ``direction`` is ours (``recvonly``: we receive but must not send). ``ptime`` is the packet
    time the remote side asked to receive. ``is_hold`` says the remote side does not want media
    (RFC 3264 8.4: ``sendonly``/``inactive``, or the RFC 2543 ``c=0.0.0.0``).
    """

    remote_address: str
    remote_port: int
    payload_type: int
    encoding: str
    clock_rate: int
    dtmf_payload_type: int | None
    direction: Direction
    ptime: int = 20
    is_hold: bool = False
    srtp: SdesKeys | None = None
    """The SRTP keys when the stream is ``RTP/SAVP``; None for plain ``RTP/AVP``."""


def _direction_of(send: bool, receive: bool) -> Direction:
    for direction, bits in _DIRECTION_BITS.items():
        if bits == (send, receive):
            return direction
    raise AssertionError("unreachable: every (send, receive) pair has a direction")


def _remote_view(media: MediaDescription, connection: Connection) -> tuple[bool, bool]:
    """What the remote side wants: (it sends, it receives); it receives nothing at 0.0.0.0."""
    send, receive = _DIRECTION_BITS[media.direction]
    return send, receive and not connection.is_hold_address


def _remote_connection(description: SessionDescription, media: MediaDescription) -> Connection:
    connection = media.connection or description.connection
    if connection is None:  # the parser guarantees one; a hand-built description may not
        raise OfferAnswerError(f"m={media.media} stream has no connection address")
    address = packed_ip_address(connection.address)
    if address is None or _is_multicast(address) or address == _BROADCAST:
        # never send media to a name we would have to resolve, to a group or to everyone
        raise OfferAnswerError("connection address is not a unicast IP address")
    return connection


def _is_multicast(packed: bytes) -> bool:
    """224.0.0.0/4 or ff00::/8 (RFC 5771, RFC 4291 2.7)."""
    return 224 <= packed[0] <= 239 if len(packed) == 4 else packed[0] == 0xFF


def _events(fmtp: str | None) -> frozenset[int]:
    """The telephone-event list of RFC 4733 7.1.1 (``0-15,66``); empty when unreadable."""
    if fmtp is None:
        return _DEFAULT_EVENTS
    events: set[int] = set()
    for item in fmtp.replace(" ", "").split(","):
        match = _EVENT_RANGE_RE.fullmatch(item)
        if match is None:
            return frozenset()
        first = int(match.group(1))
        last = int(match.group(2) or first)
        events.update(range(first, min(last, 255) + 1))
    return frozenset(events)


def _format_events(events: frozenset[int]) -> str:
    ranges: list[str] = []
    for event in sorted(events):
        if ranges and event - 1 in events:
            first = ranges[-1].split("-")[0]
            ranges[-1] = f"{first}-{event}"
        else:
            ranges.append(str(event))
    return ",".join(ranges)


def _choose_codec(
    media: MediaDescription, supported: Sequence[Codec]
) -> tuple[int, Codec, int | None, frozenset[int]] | None:
    """RFC 3264 6.1: the first offered format we support, and the offerer's telephone-event."""
    audio = [codec for codec in supported if not codec.is_telephone_event]
    dtmf = next((codec for codec in supported if codec.is_telephone_event), None)
    for payload_type in media.formats:
        rtpmap = media.payload_map(payload_type)
        codec = next((c for c in audio if rtpmap is not None and c.matches(rtpmap)), None)
        if codec is None:
            continue
        for event_pt in media.formats:
            event_map = media.rtpmap.get(event_pt)
            if dtmf is None or event_map is None or event_map.clock_rate != codec.clock_rate:
                continue
            events = _events(media.fmtp.get(event_pt)) & _SUPPORTED_EVENTS
            if event_map.encoding.lower() == "telephone-event" and events:
                return payload_type, codec, event_pt, events
        return payload_type, codec, None, frozenset()
    return None


def _audio_section(
    port: int,
    codec: Codec,
    payload_type: int,
    dtmf: tuple[int, frozenset[int]] | None,
    direction: Direction,
    ptime: int,
    crypto: CryptoAttribute | None = None,
) -> MediaDescription:
    proto = "RTP/AVP" if crypto is None else SAVP
    media = MediaDescription("audio", port, proto, formats=[payload_type], ptime=ptime)
    if crypto is not None:
        media.crypto.append(str(crypto))
    media.direction = direction
    media.rtpmap[payload_type] = RtpMap(codec.encoding, codec.clock_rate)
    if dtmf is not None:
        media.formats.append(dtmf[0])
        media.rtpmap[dtmf[0]] = RtpMap("telephone-event", codec.clock_rate)
        media.fmtp[dtmf[0]] = _format_events(dtmf[1])
    return media


def negotiate_answer(
    offer: SessionDescription,
    supported: Sequence[Codec],
    *,
    local_address: str,
    local_port: int,
    session_id: int,
    session_version: int,
    local_direction: Direction = "sendrecv",
    ptime: int = 20,
    accept_sdes: bool = False,
    require_srtp: bool = False,
    random_bytes: Callable[[int], bytes] = os.urandom,
    current: SdesKeys | None = None,
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer an offer (RFC 3264 6): accept the first audio ``RTP/AVP`` stream with a codec in
    common, reject every other m= line with port 0 (6, last paragraphs), keep the offerer's
    payload type numbers (6.1) and answer the direction of 6.1 (``sendonly`` -> ``recvonly``,
    ``recvonly`` -> ``sendonly``, ``inactive`` -> ``inactive``), narrowed by ``local_direction``.

    ``accept_sdes`` (the offer came over TLS) also accepts an ``RTP/SAVP`` stream with an
    ``a=crypto`` we support, answered with our own fresh key under the offer's tag (RFC 4568
    7.1.2); ``require_srtp`` accepts nothing else. ``current`` (the leg's keys, for a re-offer)
    keeps our key when the same suite is chosen again, so a hold does not re-key. Raises
    :class:`NoCommonCodec` (488) when no audio stream can be accepted,
    :class:`~callwarden.sip.sdes.CryptoError` (488) for a malformed ``a=crypto``.
    """
    accepted = _accept_stream(offer, supported, accept_sdes, require_srtp)
    index, offered, (payload_type, codec, dtmf_pt, events), chosen = accepted
    srtp = None
    ours = None
    if chosen is not None:
        suite = chosen.supported_suite
        assert suite is not None
        ours = new_crypto(chosen.tag, suite, random_bytes)
        if current is not None and current.suite is suite:
            ours = CryptoAttribute(chosen.tag, suite.value, current.local_key)
        srtp = SdesKeys(suite, local_key=ours.key, remote_key=chosen.key)
    connection = _remote_connection(offer, offered)
    remote_send, remote_receive = _remote_view(offered, connection)
    local_send, local_receive = _DIRECTION_BITS[local_direction]
    direction = _direction_of(local_send and remote_receive, local_receive and remote_send)
    dtmf = None if dtmf_pt is None else (dtmf_pt, events)
    answer = SessionDescription(
        origin=Origin(
            "-", session_id, session_version, local_address, _address_type(local_address)
        ),
        connection=Connection.for_address(local_address),
        timing=list(offer.timing),  # RFC 3264 6: the t= line of the answer equals the offer's
    )
    for position, media in enumerate(offer.media):
        if position == index:
            answer.media.append(
                _audio_section(local_port, codec, payload_type, dtmf, direction, ptime, ours)
            )
        else:
            answer.media.append(_rejected(media))
    negotiated = NegotiatedMedia(
        remote_address=connection.address,
        remote_port=offered.port,
        payload_type=payload_type,
        encoding=codec.encoding,
        clock_rate=codec.clock_rate,
        dtmf_payload_type=dtmf_pt,
        direction=direction,
        ptime=offered.ptime or 20,
        is_hold=not remote_receive,
        srtp=srtp,
    )
    return answer, negotiated


_Choice = tuple[int, Codec, int | None, frozenset[int]]


def _accept_stream(
    offer: SessionDescription, supported: Sequence[Codec], accept_sdes: bool, require_srtp: bool
) -> tuple[int, MediaDescription, _Choice, CryptoAttribute | None]:
    """The first audio stream we can take, its codec and (``RTP/SAVP``) the offered crypto."""
    for index, media in enumerate(offer.media):
        if media.media != "audio" or media.port == 0:
            continue
        crypto = None
        if media.proto == SAVP and accept_sdes:
            crypto = choose_crypto(parse_offered(media.crypto))
            if crypto is None:
                continue
        elif media.proto != "RTP/AVP" or require_srtp:
            continue
        choice = _choose_codec(media, supported)
        if choice is not None:
            return index, media, choice, crypto
    raise NoCommonCodec(_no_common_codec_reason(offer, accept_sdes, require_srtp))


def _rejected(media: MediaDescription) -> MediaDescription:
    """RFC 3264 6: a rejected stream keeps its media type, transport and formats, with port 0."""
    rejected = MediaDescription(media.media, 0, media.proto, direction_explicit=False)
    rejected.formats, rejected.other_formats = list(media.formats), list(media.other_formats)
    return rejected


def _no_common_codec_reason(
    offer: SessionDescription, accept_sdes: bool = False, require_srtp: bool = False
) -> str:
    audio = [media for media in offer.media if media.media == "audio" and media.port != 0]
    if not audio:
        return "offer has no active audio stream"
    protos = {media.proto for media in audio}
    if require_srtp and SAVP not in protos:
        return "SRTP required: the offer has no RTP/SAVP audio stream"
    if SAVP in protos and not accept_sdes and "RTP/AVP" not in protos:
        return "SDES keys refused: the signalling is not TLS"
    if (
        SAVP in protos
        and accept_sdes
        and not any(
            choose_crypto(parse_offered(media.crypto)) for media in audio if media.proto == SAVP
        )
    ):
        return "no offered SRTP crypto suite is supported"
    if not protos & {"RTP/AVP", SAVP}:
        return "offered audio transport not supported (only RTP/AVP and RTP/SAVP)"
    return "no offered audio codec is supported"


def _address_type(address: str) -> str:
    packed = packed_ip_address(address)
    if packed is None:
        raise ValueError(f"local address {address!r} is not an IP address")
    return "IP6" if len(packed) == 16 else "IP4"


def build_offer(
    *,
    local_address: str,
    local_port: int,
    session_id: int,
    session_version: int,
    codecs: Sequence[Codec] = DEFAULT_CODECS,
    direction: Direction = "sendrecv",
    ptime: int = 20,
    crypto: Sequence[CryptoAttribute] = (),
) -> SessionDescription:
    """Our offer for an outgoing leg (RFC 3264 5): one ``RTP/AVP`` audio stream with ``codecs``
    in order of preference (by default PCMU, PCMA and telephone-event/8000 as payload type 101
    with events 0-16). Re-offers for hold pass ``direction="sendonly"`` and a higher
    ``session_version`` (RFC 3264 8, 8.4). With ``crypto`` (see :func:`offer_crypto`; only over
    TLS) the stream is ``RTP/SAVP`` offering those keys, in that order of preference."""
    if len({codec.payload_type for codec in codecs}) != len(codecs):
        raise ValueError("two codecs share a payload type")
    media = MediaDescription("audio", local_port, SAVP if crypto else "RTP/AVP", ptime=ptime)
    media.crypto.extend(str(attribute) for attribute in crypto)
    media.direction = direction
    for codec in codecs:
        media.formats.append(codec.payload_type)
        media.rtpmap[codec.payload_type] = RtpMap(codec.encoding, codec.clock_rate)
        if codec.is_telephone_event:
            media.fmtp[codec.payload_type] = _format_events(_SUPPORTED_EVENTS)
    return SessionDescription(
        origin=Origin(
            "-", session_id, session_version, local_address, _address_type(local_address)
        ),
        connection=Connection.for_address(local_address),
        media=[media],
    )


def offer_crypto(random_bytes: Callable[[int], bytes] = os.urandom) -> list[CryptoAttribute]:
    """Our ``a=crypto`` lines for an SRTP offer: both suites, each with its own fresh key,
    ``AES_CM_128_HMAC_SHA1_80`` (which every SRTP phone has, RFC 4568 6.2.1) first."""
    return [
        new_crypto(tag, suite, random_bytes)
        for tag, suite in enumerate(
            (CryptoSuite.AES_CM_128_HMAC_SHA1_80, CryptoSuite.AEAD_AES_128_GCM), start=1
        )
    ]


def _answered_keys(ours: MediaDescription, theirs: MediaDescription) -> SdesKeys | None:
    """RFC 4568 7.1.3: the answer to an SRTP offer carries one ``a=crypto`` with a tag and
    suite from the offer, and its own key."""
    if ours.proto != SAVP:
        return None
    answered = parse_offered(theirs.crypto)
    if len(answered) != 1:
        raise OfferAnswerError(f"answer to an SRTP offer has {len(answered)} a=crypto lines")
    offered = {attribute.tag: attribute for attribute in parse_offered(ours.crypto)}
    mine = offered.get(answered[0].tag)
    suite = answered[0].supported_suite
    if mine is None or suite is None or answered[0].suite != mine.suite:
        raise OfferAnswerError("answer a=crypto does not match a tag and suite of the offer")
    return SdesKeys(suite, local_key=mine.key, remote_key=answered[0].key)


def parse_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """Check an answer against our offer (RFC 3264 6, 6.1) and return what was agreed for the
    first active audio stream of the offer. Raises :class:`OfferAnswerError` (488) for an answer
    that breaks the rules and :class:`NoCommonCodec` when it rejects the audio stream."""
    index = next((i for i, m in enumerate(offer.media) if m.media == "audio" and m.port != 0), None)
    if index is None:
        raise OfferAnswerError("our offer has no active audio stream")
    if len(answer.media) != len(offer.media):
        raise OfferAnswerError(
            f"answer has {len(answer.media)} m= lines, the offer had {len(offer.media)}"
        )
    for position, (ours, theirs) in enumerate(zip(offer.media, answer.media, strict=True)):
        if ours.media != theirs.media or ours.proto != theirs.proto:
            raise OfferAnswerError(f"answer m= line {position + 1} does not match the offer")
    ours, theirs = offer.media[index], answer.media[index]
    if theirs.port == 0:
        raise NoCommonCodec("answer rejected the audio stream")
    payload_type, rtpmap = _answered_codec(ours, theirs)
    dtmf_pt = next(
        (
            pt
            for pt in theirs.formats
            if (m := ours.rtpmap.get(pt)) is not None and m.encoding.lower() == "telephone-event"
        ),
        None,
    )
    connection = _remote_connection(answer, theirs)
    remote_send, remote_receive = _remote_view(theirs, connection)
    our_send, our_receive = _DIRECTION_BITS[ours.direction]
    if (remote_send and not our_receive) or (remote_receive and not our_send):
        raise OfferAnswerError(
            f"answer direction {theirs.direction} is not allowed for a {ours.direction} offer"
        )
    return NegotiatedMedia(
        remote_address=connection.address,
        remote_port=theirs.port,
        payload_type=payload_type,
        encoding=rtpmap.encoding.upper(),
        clock_rate=rtpmap.clock_rate,
        dtmf_payload_type=dtmf_pt,
        direction=_direction_of(our_send and remote_receive, our_receive and remote_send),
        ptime=theirs.ptime or 20,
        is_hold=not remote_receive,
        srtp=_answered_keys(ours, theirs),
    )


def _answered_codec(ours: MediaDescription, theirs: MediaDescription) -> tuple[int, RtpMap]:
    """RFC 3264 6.1: the answer uses payload types from the offer with the same meaning."""
    for payload_type in theirs.formats:
        offered = ours.payload_map(payload_type) if payload_type in ours.formats else None
        if offered is None or offered.encoding.lower() == "telephone-event":
            continue
        answered = theirs.payload_map(payload_type)
        if answered is not None and (
            answered.encoding.lower() != offered.encoding.lower()
            or answered.clock_rate != offered.clock_rate
        ):
            raise OfferAnswerError(f"answer redefines payload type {payload_type}")
        return payload_type, offered
    raise NoCommonCodec("answer lists no audio payload type from the offer")
