"""The core classes in pure Python, for when the C extension ``_fastpath`` is not built.

The same field names as the C types (``csrc/cores.c``), as slots; the engine's classes set every
one of them in their ``__init__``. Without the extension there is no pump: each RTP socket is an
asyncio transport and every packet takes the Python path.
"""

from __future__ import annotations


class StreamCore:
    __slots__ = (
        "_seq_offset",
        "_source",
        "_ts_offset",
        "address",
        "clock_rate",
        "fd",
        "frame_samples",
        "last_send",
        "octets",
        "packets",
        "payload_type",
        "sending",
        "sequence_number",
        "ssrc",
        "timestamp",
    )


class ReceptionCore:
    __slots__ = (
        "_bad_seq",
        "_expected_prior",
        "_jitter",
        "_last_arrival",
        "_last_sr",
        "_last_sr_arrival",
        "_last_timestamp",
        "_received_prior",
        "base_seq",
        "clock_rate",
        "cycles",
        "max_seq",
        "received",
        "ssrc",
    )


class EndpointCore:
    __slots__ = (
        "_fixed",
        "_latch",
        "_now",
        "_payload_type",
        "_peer_key",
        "bytes_in",
        "dropped_early",
        "dropped_foreign",
        "dropped_malformed",
        "enabled",
        "last_receive",
        "packets_in",
        "reception",
        "sink",
    )


class MemberCore:
    __slots__ = ("buffer", "fast_listeners", "last_active")
