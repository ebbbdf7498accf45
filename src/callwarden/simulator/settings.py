"""What the traffic simulator does: who it plays, which numbers its customers call, how often,
how long people ring and talk. Plain frozen values, validated on construction."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

__all__ = [
    "DEMO_NUMBERS",
    "DEMO_OPERATORS",
    "DEMO_QUEUE_NUMBERS",
    "OperatorAccount",
    "SecondsRange",
    "SimulatorConfigError",
    "SimulatorSettings",
]

DEMO_OPERATORS = ("sim-op1", "sim-op2", "sim-op3")
"""The demo users the simulator plays (never alice or bob: those are for a real softphone)."""

DEMO_NUMBERS = (
    "0312345000",  # support-line (alice, bob, sim-op1, sim-op2)
    "0312345000",
    "0312345100",  # sales-line (carol, sim-op3)
)
"""The numbers simulated customers call, picked uniformly (a number listed twice is called twice
as often). They are inbound numbers of the trunk `demo-carrier` in demo_center.yaml, routed to
the demo queues; a softphone signed in as alice or bob takes its share of the support line.
The same trunk routes 0312341001/2 (alice, bob) and 0312342001-3 (sim-op1..3) straight to
the operators' extensions, for calls that bypass the queues."""

DEMO_QUEUE_NUMBERS = ("0312345000", "0312345100")
"""Which of those numbers reach a queue: the node answers at once with hold audio, and the
customer waits there until an operator picks up."""


class SimulatorConfigError(ValueError):
    """A simulator setting that cannot be used; the message names the setting."""


@dataclass(frozen=True, slots=True)
class SecondsRange:
    """A duration drawn uniformly between ``low`` and ``high`` seconds (inclusive)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high:
            raise SimulatorConfigError(f"invalid range {self.low}-{self.high} s")

    @classmethod
    def parse(cls, text: str, name: str) -> SecondsRange:
        """``"20-90"`` (seconds) as given on the command line; ``"5"`` means exactly 5."""
        low_text, separator, high_text = text.partition("-")
        try:
            low = float(low_text)
            high = float(high_text) if separator else low
            return cls(low, high)
        except (ValueError, SimulatorConfigError):
            raise SimulatorConfigError(
                f"{name}: expected seconds LOW-HIGH like 20-90, got {text[:40]!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class OperatorAccount:
    """A user the simulator registers as: SIP user name and password (from the demo file)."""

    username: str
    sip_password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.username or len(self.username) > 64 or not self.username.isascii():
            raise SimulatorConfigError(f"operator user name {self.username[:70]!r} is not usable")
        if not self.sip_password or len(self.sip_password) > 128:
            raise SimulatorConfigError(f"operator {self.username}: empty or oversized password")


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Everything a :class:`~callwarden.simulator.simulator.Simulator` needs.

    The simulator reaches the node at ``node_host``:``node_port`` over UDP like any phone.
    Customers send from ``host``:``trunk_port``: the address the node has as the trunk
    `demo-carrier`, so their calls are trusted without a challenge. They call ``numbers``;
    those in ``queue_numbers`` are answered by a queue at once, and the customer waits on hold
    (up to ``customer_patience``) until an operator picks up. Operators register from ports of
    their own on ``host``.
    """

    node_host: str
    node_port: int
    operators: tuple[OperatorAccount, ...]
    host: str = "127.0.0.1"
    trunk_port: int = 5090
    realm: str = "callwarden"
    numbers: tuple[str, ...] = DEMO_NUMBERS
    queue_numbers: tuple[str, ...] = DEMO_QUEUE_NUMBERS
    calls_per_minute: float = 10.0
    max_concurrent_calls: int = 4
    first_call_after: float = 2.0
    ring_seconds: SecondsRange = SecondsRange(1.0, 4.0)
    talk_seconds: SecondsRange = SecondsRange(20.0, 90.0)
    wrap_up_seconds: SecondsRange = SecondsRange(3.0, 8.0)
    customer_patience: float = 60.0
    register_expires: int = 300

    def __post_init__(self) -> None:
        for name in ("node_host", "host"):
            value = getattr(self, name)
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise SimulatorConfigError(f"{name}: {value[:60]!r} is not an IP address") from None
        for name in ("node_port", "trunk_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise SimulatorConfigError(f"{name}: {port} is not a port")
        if not self.numbers:
            raise SimulatorConfigError("numbers: the customers need at least one number to call")
        for number in (*self.numbers, *self.queue_numbers):
            if not (number.isascii() and number.isdigit() and 1 <= len(number) <= 20):
                raise SimulatorConfigError(f"numbers: {number[:30]!r} is not a phone number")
        if not 0 < self.calls_per_minute <= 600:
            raise SimulatorConfigError(
                f"calls_per_minute: {self.calls_per_minute} is not within (0, 600]"
            )
        if self.max_concurrent_calls < 1:
            raise SimulatorConfigError("max_concurrent_calls: at least 1")
        if self.first_call_after < 0 or self.customer_patience <= 0:
            raise SimulatorConfigError("first_call_after and customer_patience: positive seconds")
        if not 60 <= self.register_expires <= 3600:
            raise SimulatorConfigError("register_expires: 60 to 3600 seconds")
        if len({account.username for account in self.operators}) != len(self.operators):
            raise SimulatorConfigError("operators: a user is listed twice")

    @property
    def call_interval(self) -> SecondsRange:
        """Time between two new customer calls: the mean 60 / calls_per_minute, +-1/3
        (10 calls a minute: every 4 to 8 seconds)."""
        mean = 60.0 / self.calls_per_minute
        return SecondsRange(mean * 2 / 3, mean * 4 / 3)
