"""Traffic simulator for the demo center: simulated operators and customers that call through
a callwarden node over SIP and RTP, like real phones (``callwarden demo`` runs it)."""

from callwarden.simulator.settings import (
    DEMO_NUMBERS,
    DEMO_OPERATORS,
    DEMO_QUEUE_NUMBERS,
    OperatorAccount,
    SecondsRange,
    SimulatorConfigError,
    SimulatorSettings,
)
from callwarden.simulator.simulator import Simulator, SimulatorStats

__all__ = [
    "DEMO_NUMBERS",
    "DEMO_OPERATORS",
    "DEMO_QUEUE_NUMBERS",
    "OperatorAccount",
    "SecondsRange",
    "Simulator",
    "SimulatorConfigError",
    "SimulatorSettings",
    "SimulatorStats",
]
