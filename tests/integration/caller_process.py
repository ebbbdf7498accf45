"""A pjsua2 caller in a process of its own, driven line by line through stdin/stdout.

pjsua2's wheel holds at most four calls per process (PJSUA_MAX_CALLS), so a scenario with
more simultaneous calls runs some phones here. Started as
`python caller_process.py <username> <password> <registrar host:port> <directory>
<rtp_base>`; it registers, then obeys one command per line and answers each with one line:

- `dial <number> <tone Hz>` -> `confirmed` once answered (it sends the tone);
- `record <seconds>` -> `recorded <wav path>`;
- `hangup` -> `disconnected`;
- `quit` -> exits (closing the library properly).

Each answer line starts with `@@ ` (pjsua may print on stdout by itself).

Errors are answered `error <text>`; the test treats them as failures.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from audio import write_tone_wav
from phones import Phone, PhoneBook, PhoneCall, SipEndpoint

logger = logging.getLogger("caller_process")


REPLY = "@@ "
"""Every answer line starts with this (pjsua may print to stdout on its own)."""


def _reply(text: str) -> None:
    sys.stdout.write(REPLY + text + "\n")
    sys.stdout.flush()


def _obey(
    book: PhoneBook, phone: Phone, phone_call: list[PhoneCall], line: str, directory: Path
) -> bool:
    words = line.split()
    if words[0] == "dial":
        tone = write_tone_wav(directory / f"tone-{words[2]}.wav", float(words[2]), 90.0, 0.25)
        phone.play(tone)
        call = phone.dial(words[1])
        call.wait_confirmed()
        phone_call.append(call)
        _reply("confirmed")
    elif words[0] == "record":
        call = phone_call[-1]
        path = book.wav(f"recorded-{len(list(directory.glob('*.wav')))}")
        call.record(path)
        book.run_for(float(words[1]))
        _reply(f"recorded {call.stop_recording()}")
    elif words[0] == "hangup":
        call = phone_call[-1]
        call.hangup()
        call.wait_disconnected()
        _reply("disconnected")
    elif words[0] == "quit":
        return False
    else:
        _reply(f"error unknown command {words[0]}")
    return True


def main(argv: list[str]) -> int:
    username, password, registrar, directory_text, rtp_base = argv
    directory = Path(directory_text)
    endpoint = SipEndpoint(log_level=0, rtp_base=int(rtp_base))
    book = PhoneBook(endpoint, directory)
    try:
        phone = book.create(username, password=password, registrar=registrar)
        if phone.register() != 200:
            _reply("error registration refused")
            return 1
        _reply("registered")
        calls: list[PhoneCall] = []
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                if not _obey(book, phone, calls, line.strip(), directory):
                    break
            except Exception as error:  # reported to the test, which fails on it
                _reply(f"error {type(error).__name__}: {error}")
    finally:
        book.close()
        endpoint.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
