"""DTMF as RTP telephone-events (RFC 4733), sans-IO.

* :class:`TelephoneEvent` is the 4-byte payload of section 2.3.
* :class:`DtmfReceiver` turns the packet stream of one source into exactly one :class:`DtmfDigit`
  per key press: an event is identified by its RTP timestamp (2.5.1.1), so the repeated updates
  and the three end packets of one press (2.5.1.4) and a long press split into segments
  (2.5.1.3) all count once. The digit is reported on the first packet seen, so a lost end packet
  never loses a digit and feature codes react without waiting for the key release.
* :func:`dtmf_packets` generates the packets of one key press the way a phone does (2.5.1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Self

from callwarden.media.rtp import RtpPacket

#: Event codes 0-15 are the DTMF digits (RFC 4733 3.2); 16 is flash.
EVENT_DIGITS = "0123456789*#ABCD!"
_EVENT = struct.Struct("!BBH")
_MAX_DURATION = 0xFFFF
END_REPEATS = 3


class DtmfParseError(ValueError):
    """A telephone-event payload that RFC 4733 2.3 does not allow."""


def digit_event(digit: str) -> int:
    """The event code of a DTMF digit character (RFC 4733 3.2)."""
    index = EVENT_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return index


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The telephone-event payload (RFC 4733 2.3): event, end bit, volume (-dBm0), duration."""

    event: int
    end: bool
    volume: int
    duration: int

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise ValueError(f"event out of range: {self.event}")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume out of range: {self.volume}")
        if not 0 <= self.duration <= _MAX_DURATION:
            raise ValueError(f"duration out of range: {self.duration}")

    @classmethod
    def parse(cls, payload: bytes) -> Self:
        if len(payload) < 4:
            raise DtmfParseError(f"telephone-event payload too short: {len(payload)} bytes")
        if len(payload) % 4:
            raise DtmfParseError(f"telephone-event payload not a multiple of 4: {len(payload)}")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        return EVENT_DIGITS[self.event] if self.event < len(EVENT_DIGITS) else None


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """One key press: the digit and the RTP timestamp at which the event started."""

    digit: str
    timestamp: int


class DtmfReceiver:
    """Reduce one source's telephone-event packets to one digit per key press (RFC 4733 2.5.2)."""

    __slots__ = ("_ended", "_event", "_last_duration", "_timestamp")

    def __init__(self) -> None:
        self._timestamp: int | None = None
        self._event = -1
        self._ended = False
        self._last_duration = 0

    def receive(self, marker: bool, timestamp: int, payload: bytes) -> DtmfDigit | None:
        """Account one packet; return the digit when it starts a new key press.

        Raises :class:`DtmfParseError` for a malformed payload.
        """
        event = TelephoneEvent.parse(payload)
        previous = self._timestamp
        if previous is not None:
            age = (timestamp - previous) & 0xFFFFFFFF
            if age == 0:  # an update or end repeat of the current event
                self._ended = self._ended or event.end
                self._last_duration = max(self._last_duration, event.duration)
                return None
            if age >= 0x80000000:  # older than the current event: late or reordered
                return None
            if (
                not marker
                and not self._ended
                and event.event == self._event
                and self._last_duration >= _MAX_DURATION - 2000
            ):
                # A long press continued in a new segment (2.5.1.3): same key, no new digit.
                self._timestamp = timestamp
                self._last_duration = event.duration
                self._ended = event.end
                return None
        self._timestamp = timestamp
        self._event = event.event
        self._ended = event.end
        self._last_duration = event.duration
        digit = event.digit
        return DtmfDigit(digit, timestamp) if digit is not None else None


def dtmf_packets(
    digit: str,
    *,
    payload_type: int,
    ssrc: int,
    sequence_number: int,
    timestamp: int,
    duration: int = 800,
    packet_samples: int = 160,
    volume: int = 10,
) -> list[RtpPacket]:
    """The packets of one key press (RFC 4733 2.5.1): marker on the first, one update per
    ``packet_samples``, then the end packet sent three times; all share ``timestamp``.

    ``duration`` is in timestamp units (800 = 100 ms at 8 kHz).
    """
    event = digit_event(digit)
    if not packet_samples <= duration <= _MAX_DURATION:
        raise ValueError(f"duration out of range: {duration}")
    durations = list(range(packet_samples, duration, packet_samples))
    payloads = [TelephoneEvent(event, False, volume, d) for d in durations]
    payloads += [TelephoneEvent(event, True, volume, duration)] * END_REPEATS
    return [
        RtpPacket(
            payload_type=payload_type,
            sequence_number=(sequence_number + i) & 0xFFFF,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(payload),
            marker=i == 0,
        )
        for i, payload in enumerate(payloads)
    ]
