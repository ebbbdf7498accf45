"""RTP port pairs from a configured range (RFC 3550 11)."""

import pytest

from callwarden.media.ports import PortAllocator, PortRange, PortsExhaustedError


def test_hands_out_even_ports_round_robin_and_exhausts() -> None:
    allocator = PortAllocator(PortRange.parse("10001-10008"))
    ports = [allocator.allocate() for _ in range(3)]
    assert ports == [10002, 10004, 10006]  # 10008 has no 10009 inside the range
    with pytest.raises(PortsExhaustedError, match="all 3 RTP port pairs of 10001-10008 are in use"):
        allocator.allocate()
    allocator.release(10004)
    assert allocator.available == 1
    assert allocator.allocate() == 10004


def test_released_port_goes_to_the_back() -> None:
    allocator = PortAllocator(PortRange(20000, 20007))
    first = allocator.allocate()
    allocator.release(first)
    assert [allocator.allocate() for _ in range(4)] == [20002, 20004, 20006, 20000]


def test_release_of_unallocated_port_is_an_error() -> None:
    allocator = PortAllocator(PortRange(20000, 20003))
    with pytest.raises(ValueError, match="port 20000 is not allocated"):
        allocator.release(20000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10000", "port range must be LOW-HIGH, not '10000'"),
        ("a-b", "port range must be LOW-HIGH, not 'a-b'"),
        ("20000-10000", "invalid port range 20000-10000"),
        ("0-10", "invalid port range 0-10"),
        ("10001-10002", "port range 10001-10002 holds no even/odd pair"),
    ],
)
def test_invalid_ranges(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        PortRange.parse(text)
    assert str(caught.value) == message
