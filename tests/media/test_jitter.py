"""The per-source jitter buffer: prefill, reordering, loss, underrun, overflow, re-cutting."""

import pytest

from callwarden.media.jitter import JitterBuffer


def frame(n: int, size: int = 160) -> bytes:
    return bytes([n % 256]) * size


def test_waits_for_depth_then_plays_in_order() -> None:
    buffer = JitterBuffer(depth=2)
    buffer.push(10, frame(10))
    assert buffer.pop() is None  # prefilling
    buffer.push(11, frame(11))
    assert buffer.pop() == frame(10)
    assert buffer.pop() == frame(11)


def test_reorders_by_sequence_number_across_wrap() -> None:
    buffer = JitterBuffer(depth=3)
    for seq in (65535, 1, 0):
        buffer.push(seq, frame(seq))
    assert [buffer.pop() for _ in range(3)] == [frame(65535), frame(0), frame(1)]


def test_missing_packet_is_silence_and_counted_lost_late_one_dropped() -> None:
    buffer = JitterBuffer(depth=2)
    for seq in (1, 3, 4):
        buffer.push(seq, frame(seq))
    assert buffer.pop() == frame(1)
    assert buffer.pop() is None  # 2 is missing, 3 is waiting
    assert buffer.lost == 1
    buffer.push(2, frame(2))  # too late now
    assert buffer.late == 1
    assert [buffer.pop(), buffer.pop()] == [frame(3), frame(4)]


def test_underrun_waits_for_depth_again() -> None:
    buffer = JitterBuffer(depth=2)
    buffer.push(1, frame(1))
    buffer.push(2, frame(2))
    assert [buffer.pop(), buffer.pop(), buffer.pop()] == [frame(1), frame(2), None]
    buffer.push(3, frame(3))
    assert buffer.pop() is None
    buffer.push(4, frame(4))
    assert buffer.pop() == frame(3)
    assert buffer.lost == 0


def test_overflow_drops_oldest_back_to_depth() -> None:
    buffer = JitterBuffer(depth=2, max_depth=4)
    for seq in range(1, 6):
        buffer.push(seq, frame(seq))
    assert buffer.overflowed == 3
    assert [buffer.pop(), buffer.pop()] == [frame(4), frame(5)]


def test_other_packet_sizes_are_recut_into_frames() -> None:
    buffer = JitterBuffer(depth=1)
    for seq in range(3):  # 30 ms packets (240 bytes)
        buffer.push(seq, bytes(range(seq * 8, seq * 8 + 8)) * 30)
    data = b"".join(bytes(range(seq * 8, seq * 8 + 8)) * 30 for seq in range(3))
    frames = [buffer.pop() for _ in range(5)]  # 720 bytes: four frames and 80 bytes waiting
    assert frames == [data[0:160], data[160:320], data[320:480], data[480:640], None]


def test_depth_must_be_within_bounds() -> None:
    with pytest.raises(ValueError, match=r"jitter buffer depth 0 must be 1\.\.max_depth"):
        JitterBuffer(depth=0)
