"""Two operators and three callers on one queue (issue 4): the third caller waits on hold and
gets the first operator freed after wrap-up, and the two hear each other (tone checks).

pjsua2's wheel holds at most four calls per process, and this scenario has five legs at once
in the test's process alone if every phone lived here; so the third caller is a pjsua phone
in a helper process (`caller_process.py`), driven over its stdin/stdout, while the test's
process keeps pumping its own phones."""

from __future__ import annotations

import queue
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from audio import Wav, read_wav, tone_snr_db
from node import Node, start_node
from phones import Phone, PhoneBook, PhoneCall

HERE = Path(__file__).parent
PASSWORD = "two-operators-sip-secret"
HOLD_HZ = 494.0  # the hold chord's upper note (telephony.queue_hold.HOLD_TONE_HZ)
SETTLE_S = 0.3
WRAP_UP_S = 2


def _user(name: str, extension: str) -> str:
    return (
        f"  - {{username: {name}, role: operator, team: support, extension: '{extension}',"
        f" sip_password: {PASSWORD}}}\n"
    )


PROVISIONING = (
    "teams: [{name: support}]\nusers:\n"
    + "".join(_user(n, e) for n, e in (("gus", "2011"), ("hal", "2012")))
    + "".join(_user(f"cal{n}", f"101{n}") for n in (1, 2, 3))
    + "queues:\n"
    + f'  - {{name: pair, number: "5005", team: support, members: [gus, hal],'
    f" wrap_up_seconds: {WRAP_UP_S}}}\n"
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_node(
        tmp_path_factory.mktemp("two-operators-node"),
        PROVISIONING,
        rtp_ports=(36500, 36999),
        extra_env={
            "CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000",
            "CALLWARDEN_ACD_AUTO_SIGN_IN": "true",
        },
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


class RemoteCaller:
    """A caller phone in its own process (see `caller_process.py`)."""

    def __init__(self, phones: PhoneBook, node: Node, directory: Path, username: str) -> None:
        self._phones = phones
        self._lines: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "caller_process.py"),
                username,
                PASSWORD,
                node.registrar,
                str(directory),
                "52000",
            ],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        assert self._answer(10.0) == "registered"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("@@ "):
                self._lines.put(line[3:].strip())

    def _answer(self, timeout: float) -> str:
        """The next answer, pumping this process's phones while waiting."""
        self._phones.wait_until(lambda: not self._lines.empty(), timeout, "the remote caller")
        answer = self._lines.get_nowait()
        assert not answer.startswith("error"), answer
        return answer

    def ask(self, command: str, timeout: float = 10.0) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer(timeout)

    def record(self, seconds: float) -> Wav:
        answer = self.ask(f"record {seconds}", timeout=seconds + 10.0)
        assert answer.startswith("recorded ")
        return read_wav(Path(answer.removeprefix("recorded ")))

    def close(self) -> None:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        if self.process.poll() is None:
            stdin.write("quit\n")
            stdin.flush()
            try:
                self.process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        stdin.close()
        self._reader.join(timeout=5.0)
        stdout.close()


def _phone(phones: PhoneBook, node: Node, name: str, **options: object) -> Phone:
    phone = phones.create(name, password=PASSWORD, registrar=node.registrar, **options)  # type: ignore[arg-type]
    assert phone.register() == 200
    return phone


def _heard(phones: PhoneBook, call: PhoneCall, name: str, seconds: float = 1.5) -> Wav:
    call.record(phones.wav(name))
    phones.run_for(seconds)
    return read_wav(call.stop_recording())


def _cdrs(node: Node) -> list[tuple[str, str]]:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        rows = db.execute(
            "SELECT c.callee, c.disposition FROM cdrs c JOIN queues q ON q.id = c.queue_id"
            " WHERE q.number = '5005' ORDER BY c.id"
        ).fetchall()
    return [tuple(row) for row in rows]


@pytest.mark.integration
def test_third_caller_gets_the_first_operator_freed_after_wrap_up(
    phones: PhoneBook, node: Node, tones: dict[int, Path], tmp_path: Path
) -> None:
    gus = _phone(phones, node, "gus")  # registers first: the longest idle
    phones.run_for(0.1)
    hal = _phone(phones, node, "hal")
    for operator in (gus, hal):
        operator.play(tones[880])
    first_phone, second_phone = _phone(phones, node, "cal1"), _phone(phones, node, "cal2")
    for caller in (first_phone, second_phone):
        caller.play(tones[440])
    first = first_phone.dial("5005")
    gus.wait_incoming().wait_confirmed()
    second = second_phone.dial("5005")
    hal.wait_incoming().wait_confirmed()
    third = RemoteCaller(phones, node, tmp_path, "cal3")
    try:
        assert third.ask("dial 5005 1300") == "confirmed"
        waiting = third.record(1.5)
        assert tone_snr_db(waiting.between(SETTLE_S), waiting.rate, HOLD_HZ, [392.0]) > 20.0
        assert (len(gus.incoming), len(hal.incoming)) == (1, 1)  # both busy: it waits
        first.hangup()
        first.wait_disconnected()
        hung_up = time.monotonic()
        offered = gus.wait_incoming(2, timeout=WRAP_UP_S + 5.0)
        assert time.monotonic() - hung_up >= WRAP_UP_S - 0.2  # not before the wrap-up
        offered.wait_confirmed()
        phones.run_for(0.5)
        by_gus = _heard(phones, offered, "gus")
        assert tone_snr_db(by_gus.between(SETTLE_S), by_gus.rate, 1300, [440]) > 30.0
        by_third = third.record(1.5)
        assert tone_snr_db(by_third.between(SETTLE_S), by_third.rate, 880, [440]) > 30.0
        assert len(hal.incoming) == 1
        assert third.ask("hangup") == "disconnected"
    finally:
        third.close()
    offered.wait_disconnected()
    second.hangup()
    second.wait_disconnected()
    phones.wait_until(lambda: len(_cdrs(node)) >= 3, 5.0, "the three CDRs")
    assert sorted(_cdrs(node)) == [("2011", "answered")] * 2 + [("2012", "answered")]
