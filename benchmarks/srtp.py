"""SRTP: CPU per packet of protect/unprotect (libsrtp through pylibsrtp), and what it adds to a
media endpoint's Python path, against the plain Python path in the same run.

Usage: .venv/bin/python benchmarks/srtp.py [--packets N] [--repeat N]

Rows, per suite (AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM), 172-byte PCMU packets (20 ms):
* protect / unprotect: one libsrtp call each, through ``SrtpContext``;
* receive, plain: ``RtpEndpoint.datagram_received`` of an accepted packet into a bridge member
  that does nothing (the Python path: address check, header, reception statistics);
* receive, SRTP: ``SrtpEndpoint.datagram_received`` of the protected packet (unprotect, then
  the same path);
* send, plain / SRTP: ``OutgoingStream.forward`` through a transport that drops the datagram,
  directly or through ``SrtpSender`` (protect first).
No sockets: the kernel's share (about half of a relayed packet's 10-20 µs, docs/benchmarks.md)
is the same for both. The median of ``--repeat`` runs of ``--packets`` packets, process CPU time.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import struct
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from callwarden.media.endpoint import RtpEndpoint
from callwarden.media.g711 import Encoding
from callwarden.media.srtp import SUITES, SrtpContext, SrtpEndpoint, SrtpKeys, SrtpSender

PEER = ("127.0.0.1", 40000)
T = TypeVar("T")


class _Clock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class _Sink:
    def on_audio(self, payload: bytes, marker: int, seq: int, ts: int, now: float) -> None:
        pass

    def on_dtmf(self, payload: bytes, marker: int, seq: int, ts: int, now: float) -> None:
        pass


class _Drop:
    def sendto(self, data: bytes, addr: tuple[str, int], /) -> None:
        pass


def _packets(count: int) -> list[bytes]:
    payload = bytes(random.Random(1).getrandbits(8) for _ in range(160))
    return [
        struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160 & 0xFFFFFFFF, 0xCAFE) + payload
        for seq in range(1, count + 1)
    ]


def _cpu_per_packet(handle: Callable[[T], object], items: list[T]) -> float:
    """CPU µs per call of ``handle`` over ``items``."""
    start = time.process_time_ns()
    for item in items:
        handle(item)
    return (time.process_time_ns() - start) / len(items) / 1000.0


def _endpoint(kind: type[RtpEndpoint], keys: SrtpKeys | None) -> RtpEndpoint:
    endpoint = kind("e1", clock=_Clock(), rng=random.Random(2), cname=b"bench")
    endpoint.set_remote(*PEER, payload_type=0, encoding=Encoding.PCMU)
    endpoint.enable()
    endpoint.attach(_Sink())
    endpoint.stream.transport = _Drop()
    if isinstance(endpoint, SrtpEndpoint):
        endpoint.stream.transport = SrtpSender(_Drop(), endpoint)
        endpoint.srtp = endpoint.context_for(keys)
    return endpoint


def _sender(endpoint: RtpEndpoint, payload: bytes) -> Callable[[int], None]:
    """Forward ``payload`` as packet number ``seq`` to the endpoint's peer."""

    def send(seq: int) -> None:
        endpoint.stream.forward(PEER, payload, 0, seq, seq * 160, 0.0, 0)

    return send


def _one_run(suite: str, count: int) -> dict[str, float]:
    length = SUITES[suite][1]
    ours, theirs = os.urandom(length), os.urandom(length)
    keys = SrtpKeys(suite, send_key=ours, receive_key=theirs)
    peer = SrtpContext(SrtpKeys(suite, send_key=theirs, receive_key=ours))
    plain = _packets(count)
    protected: list[bytes] = []
    rows: dict[str, float] = {}
    rows["protect"] = _cpu_per_packet(lambda p: protected.append(peer.protect(p)), plain)
    rows["unprotect"] = _cpu_per_packet(SrtpContext(keys).unprotect, protected)
    for name, kind, packets in (
        ("receive, plain", RtpEndpoint, plain),
        ("receive, SRTP", SrtpEndpoint, protected),
    ):
        endpoint = _endpoint(kind, keys)
        rows[name] = _cpu_per_packet(partial(endpoint.datagram_received, addr=PEER), packets)
        assert endpoint.packets_in == count, (name, endpoint.packets_in)
    payload = plain[0][12:]
    for name, kind in (("send, plain", RtpEndpoint), ("send, SRTP", SrtpEndpoint)):
        rows[name] = _cpu_per_packet(_sender(_endpoint(kind, keys), payload), list(range(count)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--packets", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    print(f"{platform.python_version()} on {platform.machine()}, load {os.getloadavg()[0]:.2f}")
    print(f"{'suite':26} {'row':16} {'µs/packet':>10} {'vs plain':>9}")
    for suite in SUITES:
        runs = [_one_run(suite, arguments.packets) for _ in range(arguments.repeat)]
        median = {row: statistics.median(run[row] for run in runs) for row in runs[0]}
        for row, value in median.items():
            reference = median.get(row.replace("SRTP", "plain"))
            ratio = f"{value / reference:8.2f}x" if reference and "SRTP" in row else ""
            print(f"{suite:26} {row:16} {value:10.2f} {ratio:>9}")


if __name__ == "__main__":
    main()
