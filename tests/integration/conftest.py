"""Fixtures for integration tests with real, independent SIP phones (pjsua2).

- ``sip_endpoint`` (session): the one pjsua2 library instance of the process. Set
  ``CALLWARDEN_PJSIP_LOG=/some/file`` to get PJSIP's full log, SIP messages included.
- ``phones`` (per test): ``phones.create("alice", password=..., registrar="127.0.0.1:5060")``
  makes a phone on its own ports; all of them hang up and close after the test.
- ``tones`` (session): 90 s tone WAVs by frequency (440, 880 and 1,300 Hz at -12 dBFS), longer
  than any test so a player never reaches its loop point.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio import write_tone_wav
from phones import PhoneBook, SipEndpoint

TONE_FREQS_HZ = (440, 880, 1300)
TONE_SECONDS = 90.0
TONE_AMPLITUDE = 0.25


@pytest.fixture(scope="session")
def sip_endpoint() -> Iterator[SipEndpoint]:
    log = os.environ.get("CALLWARDEN_PJSIP_LOG")
    endpoint = SipEndpoint(log_level=5 if log else 0, log_file=Path(log) if log else None)
    yield endpoint
    endpoint.close()


@pytest.fixture
def phones(sip_endpoint: SipEndpoint, tmp_path: Path) -> Iterator[PhoneBook]:
    book = PhoneBook(sip_endpoint, tmp_path)
    yield book
    book.close()


@pytest.fixture(scope="session")
def tones(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    directory = tmp_path_factory.mktemp("tones")
    return {
        freq: write_tone_wav(directory / f"tone-{freq}.wav", freq, TONE_SECONDS, TONE_AMPLITUDE)
        for freq in TONE_FREQS_HZ
    }
