"""The per-source jitter buffer: prefill, reordering, loss, underrun, overflow, re-cutting."""

import os
import random

import pytest

from callwarden.media import fastpath
from callwarden.media.jitter import JitterBuffer, PyJitterBuffer


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


def test_the_c_buffer_gives_the_python_buffers_results_op_for_op() -> None:
    """Random pushes (duplicates, reordering, late, far jumps, 10/20/30 ms and empty payloads)
    and pops: the C type (the extension's, used by the engine when built) and PyJitterBuffer
    return the same frames and counters after every operation."""
    if not fastpath.AVAILABLE:
        if os.environ.get("CI") == "true":
            pytest.fail("the C extension is not built (required under CI=true)")
        pytest.skip("the C extension is not built")
    assert JitterBuffer is not PyJitterBuffer
    rng = random.Random(5)
    for _ in range(300):
        depth = rng.randint(1, 4)
        max_depth = rng.randint(depth, 7)
        frame_bytes = rng.choice([160, 80, 240])
        python, c = (
            PyJitterBuffer(depth, max_depth, frame_bytes),
            JitterBuffer(depth, max_depth, frame_bytes),
        )
        sequence = rng.randint(0, 0xFFFF)
        for _ in range(200):
            if rng.random() < 0.55:
                number = (sequence + rng.choice([0, 0, 0, 1, -1, 2, -3, 5, 300, -40000])) & 0xFFFF
                sequence = (sequence + 1) & 0xFFFF
                payload = rng.randbytes(rng.choice([160, 160, 160, 80, 240, 0]))
                python.push(number, payload)
                c.push(number, payload)
            else:
                assert python.pop() == c.pop()
            assert (len(python), python.lost, python.late, python.overflowed) == (
                len(c),
                c.lost,
                c.late,
                c.overflowed,
            )


def test_the_c_buffer_refuses_bad_arguments() -> None:
    if not fastpath.AVAILABLE:
        pytest.skip("the C extension is not built")
    with pytest.raises(ValueError, match="depth 0 must be"):
        JitterBuffer(depth=0)
    buffer = JitterBuffer()
    with pytest.raises(TypeError, match="bytes"):
        buffer.push(1, "not bytes")  # type: ignore[arg-type]
    assert len(buffer) == 0
