"""Reception statistics of one RTP source, for RTCP report blocks (RFC 3550 6.4.1, A.1, A.3, A.8).

Sans-IO: the caller passes arrival times (seconds, any monotonic origin) and the wall-clock NTP
arrival of sender reports. :meth:`ReceptionStatistics.update` is called once per received packet,
so it is written for speed: plain attributes, no allocation.
"""

from __future__ import annotations

from callwarden.media.fastpath import ReceptionCore
from callwarden.media.rtcp import ReportBlock, ntp_middle32

MAX_DROPOUT = 3000
MAX_MISORDER = 100
SEQUENCE_MODULO = 1 << 16


class ReceptionStatistics(ReceptionCore):
    """Sequence tracking (A.1), loss (A.3) and interarrival jitter (A.8) of one source SSRC.

    A new SSRC restarts the statistics (the sender restarted, or signalling changed the
    source). A jump of more than ``MAX_DROPOUT`` is accepted as a restart only when the next
    packet follows it in sequence, exactly as A.1's ``bad_seq`` rule.
    """

    # The fields live in ReceptionCore (C when the extension is built), where the pump updates
    # them for the packets it relays: see callwarden.media.fastpath.
    __slots__ = ()

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.ssrc = None
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self._bad_seq = SEQUENCE_MODULO + 1
        self._received_prior = 0
        self._expected_prior = 0
        self._last_arrival = 0.0
        self._last_timestamp = 0
        self._jitter = 0.0
        self._last_sr = 0
        self._last_sr_arrival = 0.0

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self._bad_seq = SEQUENCE_MODULO + 1
        self.cycles = 0
        self.received = 0
        self._received_prior = 0
        self._expected_prior = 0

    def update(self, ssrc: int, seq: int, timestamp: int, arrival: float) -> bool:
        """Account one packet; return False when A.1 says it is not (yet) a valid packet."""
        if ssrc != self.ssrc:
            self.ssrc = ssrc
            self._init_seq(seq)
            self._last_arrival = arrival
            self._last_timestamp = timestamp
            self._jitter = 0.0
        else:
            delta = (seq - self.max_seq) & 0xFFFF
            if delta < MAX_DROPOUT:
                if seq < self.max_seq:
                    self.cycles += SEQUENCE_MODULO
                self.max_seq = seq
            elif delta <= SEQUENCE_MODULO - MAX_MISORDER:
                if seq != self._bad_seq:
                    self._bad_seq = (seq + 1) & 0xFFFF
                    return False
                self._init_seq(seq)
            # else: a duplicate or a reordered packet, counted below (A.1)
        self.received += 1
        # Interarrival jitter, A.8: D = (R_j - R_i) - (S_j - S_i) in timestamp units, with the
        # timestamp difference taken modulo 2^32 as a signed value.
        # (The first packet of a source sets the previous values to its own: D = 0.)
        sent = ((timestamp - self._last_timestamp + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        difference = (arrival - self._last_arrival) * self.clock_rate - sent
        self._last_arrival = arrival
        self._last_timestamp = timestamp
        if difference < 0:
            difference = -difference
        self._jitter += (difference - self._jitter) * 0.0625
        return True

    @property
    def extended_highest_sequence(self) -> int:
        """The extended highest sequence number received (A.3)."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_highest_sequence - self.base_seq + 1 if self.received else 0

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received, clamped to the 24-bit signed field (A.3)."""
        lost = self.expected - self.received
        return max(-(1 << 23), min((1 << 23) - 1, lost))

    @property
    def jitter(self) -> int:
        """Interarrival jitter in timestamp units (A.8)."""
        return int(self._jitter)

    @property
    def jitter_seconds(self) -> float:
        return self._jitter / self.clock_rate

    def note_sender_report(self, ntp_timestamp: int, arrival: float) -> None:
        """Remember a received SR for LSR/DLSR (6.4.1); ``arrival`` on the same clock as reports."""
        self._last_sr = ntp_middle32(ntp_timestamp)
        self._last_sr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock | None:
        """A report block for the interval since the last call (A.3), or None before any packet."""
        if self.ssrc is None or not self.received:
            return None
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        delay = 0
        if self._last_sr:
            delay = int((now - self._last_sr_arrival) * 65536) & 0xFFFFFFFF
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=self.cumulative_lost,
            highest_sequence=self.extended_highest_sequence & 0xFFFFFFFF,
            jitter=self.jitter & 0xFFFFFFFF,
            last_sr=self._last_sr,
            delay_since_last_sr=delay,
        )


def round_trip_time(block: ReportBlock, arrival_ntp: int) -> float | None:
    """Round-trip time in seconds from a report block about our stream (RFC 3550 6.4.1)."""
    if not block.last_sr:
        return None
    units = (ntp_middle32(arrival_ntp) - block.last_sr - block.delay_since_last_sr) & 0xFFFFFFFF
    if units >= 0x80000000:
        return None
    return units / 65536.0
