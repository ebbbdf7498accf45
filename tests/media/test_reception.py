"""Reception statistics: sequence tracking (RFC 3550 A.1), loss (A.3), jitter (A.8), LSR/DLSR."""

from callwarden.media.reception import ReceptionStatistics, round_trip_time
from callwarden.media.rtcp import ReportBlock, ntp_timestamp

SSRC = 0x1234


def feed(stats: ReceptionStatistics, seqs: list[int], *, arrival_step: float = 0.02) -> None:
    for index, seq in enumerate(seqs):
        stats.update(SSRC, seq, (seq * 160) & 0xFFFFFFFF, 100.0 + index * arrival_step)


def test_loss_fraction_and_cumulative() -> None:
    stats = ReceptionStatistics()
    feed(stats, [0, 1, 2, 5, 6, 7, 8, 9])
    block = stats.report_block(now=101.0)
    assert block is not None
    assert (block.ssrc, block.cumulative_lost, block.highest_sequence) == (SSRC, 2, 9)
    assert block.fraction_lost == (2 << 8) // 10  # 51: 2 lost of 10 expected in the interval
    feed(stats, [10, 11, 12, 13])
    second = stats.report_block(now=102.0)
    assert second is not None
    assert (second.fraction_lost, second.cumulative_lost, second.highest_sequence) == (0, 2, 13)


def test_sequence_wrap_extends_the_highest_sequence() -> None:
    stats = ReceptionStatistics()
    feed(stats, [65534, 65535, 0, 1])
    assert stats.cycles == 65536
    assert stats.extended_highest_sequence == 65537
    assert stats.cumulative_lost == 0


def test_duplicates_make_cumulative_loss_negative() -> None:
    stats = ReceptionStatistics()
    feed(stats, [0, 1, 1, 2])
    assert stats.cumulative_lost == -1


def test_large_jump_needs_a_sequential_successor_to_restart() -> None:
    stats = ReceptionStatistics()
    feed(stats, [0, 1, 2])
    assert stats.update(SSRC, 20000, 0, 200.0) is False
    assert stats.extended_highest_sequence == 2
    assert stats.update(SSRC, 20001, 160, 200.02) is True
    assert (stats.base_seq, stats.received, stats.cumulative_lost) == (20001, 1, 0)


def test_new_ssrc_restarts_the_statistics() -> None:
    stats = ReceptionStatistics()
    feed(stats, [0, 1, 5])
    stats.update(0x9999, 700, 0, 300.0)
    assert (stats.ssrc, stats.base_seq, stats.received, stats.cumulative_lost) == (
        0x9999,
        700,
        1,
        0,
    )


def test_jitter_zero_for_steady_arrival() -> None:
    stats = ReceptionStatistics()
    feed(stats, list(range(50)))
    assert stats.jitter == 0


def test_jitter_converges_per_a8_estimator() -> None:
    # Arrivals alternate 0 and 5 ms late: every transit difference is 40 timestamp units,
    # so after n differences J = 40 * (1 - (15/16) ** n) (RFC 3550 6.4.1).
    stats = ReceptionStatistics()
    for seq in range(100):
        stats.update(SSRC, seq, seq * 160, 100.0 + seq * 0.02 + (0.005 if seq % 2 else 0.0))
    expected = 40 * (1 - (15 / 16) ** 99)
    assert abs(stats._jitter - expected) < 0.01
    assert stats.jitter == int(expected)
    assert abs(stats.jitter_seconds - expected / 8000) < 1e-6


def test_lsr_dlsr_and_round_trip_time() -> None:
    stats = ReceptionStatistics()
    feed(stats, [0, 1])
    sr_ntp = 0xE5A1B2C3_80000000
    stats.note_sender_report(sr_ntp, arrival=50.0)
    block = stats.report_block(now=50.25)
    assert block is not None
    assert block.last_sr == 0xB2C38000
    assert block.delay_since_last_sr == 0x4000  # 0.25 s in 1/65536 s
    # The sender gets our block back 0.3 s after its SR: RTT = 0.3 - 0.25 = 0.05 s.
    arrival = sr_ntp + int(0.3 * (1 << 32))
    rtt = round_trip_time(block, arrival)
    assert rtt is not None and abs(rtt - 0.05) < 1e-4
    assert round_trip_time(ReportBlock(1, 0, 0, 0, 0), ntp_timestamp(0.0)) is None


def test_no_block_before_any_packet() -> None:
    assert ReceptionStatistics().report_block(now=1.0) is None
