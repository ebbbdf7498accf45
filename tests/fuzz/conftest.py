"""Hypothesis profiles for the fuzz tests.

``ci`` (the default) is quick and deterministic enough for every test run; ``long`` runs about
``CALLWARDEN_FUZZ_SECONDS`` seconds' worth of examples (``make fuzz``). Choose one with the
``HYPOTHESIS_PROFILE`` environment variable or ``--hypothesis-profile=long``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_EXAMPLES_PER_SECOND = 200

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=max(
        200, int(float(os.environ.get("CALLWARDEN_FUZZ_SECONDS", "30")) * _EXAMPLES_PER_SECOND)
    ),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
