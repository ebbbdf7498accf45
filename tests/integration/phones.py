"""Independent SIP phones for integration tests, built on pjsua2 (PJSIP 2.15).

One :class:`SipEndpoint` per process (pjsua allows one library instance): single-threaded
(``threadCnt = 0``, ``mainThreadOnly``, no media thread or ioqueue of its own), the null sound
device as the conference clock, only PCMU then PCMA offered. Nothing happens unless the test
thread pumps it: every wait (:meth:`SipEndpoint.wait_until`, :meth:`SipEndpoint.run_for`, the
``wait_*`` helpers) calls ``libHandleEvents`` so every Python callback runs on the test thread.
A callback that runs on another thread, or raises, is recorded and re-raised in the test thread
at the next pump.

Each :class:`Phone` is an account with its own SIP transport (UDP or TCP, its own port) and its
own RTP port range. Incoming requests are given to the phone whose port is in the Request-URI
(``Endpoint.onSelectAccount``), so a server must send to the registered contact.

Shutdown order matters (a ``Call`` freed after ``libDestroy`` asserts): hang up, wait for the
calls to end, drop every call object, unregister, delete accounts, close transports, and only
then destroy the library. :meth:`SipEndpoint.close` does it in that order.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

import pjsua2 as pj
from audio import read_wav

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_TIMEOUT_S = 5.0
# A REGISTER over TLS starts with a handshake on both sides; on a loaded CI machine the first
# one took more than 5 s. Only a failing registration waits this long.
REGISTER_TIMEOUT_S = 15.0
MIN_PLAYER_FILE_S = 60.0
RTP_PORTS_PER_PHONE = 40
RTP_PHONE_SLOTS = 25
# PJSUA_MAX_ACC (8) and the transport table (8) are compile-time limits of the wheel.
MAX_PHONES = 8
# The wheel is built with PJSUA_MAX_CALLS 4 (uaConfig.maxCalls is capped to it): four call legs
# at once in the whole process, the callers' and the callees' together. A new outgoing call
# waits while released calls of earlier tests are still ending and fewer than two slots are
# free (its own leg and, often, the callee's here), for up to a BYE's or an INVITE's
# transaction timeout (32 s) and a margin.
MAX_CALLS = 4
CALL_SLOT_WAIT_S = 40.0
_CODEC_PRIORITIES = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}
_DTMF_IS_END = 2  # PJMEDIA_STREAM_DTMF_IS_END (pjmedia/stream.h), not exported by SWIG
_REQUEST_URI = re.compile(r"^[A-Z]+ sips?:(?:[^@\s]*@)?(\[[^\]]+\]|[^:;>\s?]+)(?::(\d+))?")


class PhoneError(RuntimeError):
    """A harness operation failed (pjsua refused it, or the phone is in the wrong state)."""


class PhoneTimeoutError(PhoneError, TimeoutError):
    """A wait ran out before its condition held."""


class CallbackError(PhoneError):
    """A pjsua callback raised, or ran on a thread other than the test's."""


class Transport(enum.Enum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class CallState(enum.Enum):
    """INVITE session states (pjsip_inv_state, after RFC 3261 section 13)."""

    NULL = pj.PJSIP_INV_STATE_NULL
    CALLING = pj.PJSIP_INV_STATE_CALLING
    INCOMING = pj.PJSIP_INV_STATE_INCOMING
    EARLY = pj.PJSIP_INV_STATE_EARLY
    CONNECTING = pj.PJSIP_INV_STATE_CONNECTING
    CONFIRMED = pj.PJSIP_INV_STATE_CONFIRMED
    DISCONNECTED = pj.PJSIP_INV_STATE_DISCONNECTED


class MediaState(enum.Enum):
    """Audio stream state; LOCAL_HOLD = we sent sendonly, REMOTE_HOLD = the peer did."""

    NONE = pj.PJSUA_CALL_MEDIA_NONE
    ACTIVE = pj.PJSUA_CALL_MEDIA_ACTIVE
    LOCAL_HOLD = pj.PJSUA_CALL_MEDIA_LOCAL_HOLD
    REMOTE_HOLD = pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
    ERROR = pj.PJSUA_CALL_MEDIA_ERROR


class PhoneOptions(TypedDict, total=False):
    """Keyword options of a phone; see :class:`Phone`."""

    password: str | None
    registrar: str | None
    domain: str | None
    transport: Transport
    answer_code: int | None
    ring_s: float
    srtp: bool


class Direction(enum.Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


@dataclass(frozen=True)
class DtmfDigit:
    """A digit received as an RFC 4733 telephone-event."""

    digit: str
    duration_ms: int


def request_uri_port(message: str) -> int | None:
    """Port of the Request-URI in a SIP request's text, None when absent or not a request."""
    match = _REQUEST_URI.match(message)
    if match is None or match.group(2) is None:
        return None
    return int(match.group(2))


@contextlib.contextmanager
def _pjsua(what: str) -> Iterator[None]:
    """Turn pjsua2's message-less ``pj.Error`` into a PhoneError that says what failed."""
    try:
        yield
    except pj.Error as exc:
        raise PhoneError(
            f"{what}: {exc.title} failed: {exc.reason} (status {exc.status})"
        ) from None


def _destroy(obj: object | None) -> None:
    """Free a pjsua2 object's C++ side now. A proxy may outlive the library (a pytest
    traceback, ``sys.last_traceback``, keeps frames and their locals alive); a C++ Call or
    recorder deleted after ``libDestroy()`` trips an assertion, so nothing is left to the GC."""
    if obj is not None and getattr(obj, "thisown", False):
        obj.__swig_destroy__(obj)  # type: ignore[attr-defined]


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """libCreate() prints to stdout before log settings apply: point fd 1 at /dev/null."""
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


class _Endpoint(pj.Endpoint):  # type: ignore[misc]
    def __init__(self, owner: SipEndpoint) -> None:
        super().__init__()
        self._owner = owner

    def onSelectAccount(self, prm: pj.OnSelectAccountParam) -> None:
        with self._owner.callback("onSelectAccount"):
            self._owner.select_account(prm)


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, owner: Phone) -> None:
        super().__init__()
        self._owner = owner

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        with self._owner.endpoint.callback("onRegState"):
            self._owner.on_reg_state(int(prm.code), str(prm.reason))

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        with self._owner.endpoint.callback("onIncomingCall"):
            self._owner.on_incoming_call(int(prm.callId))


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, owner: PhoneCall, account: _Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self._owner = owner

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        with self._owner.phone.endpoint.callback("onCallState"):
            self._owner.on_state()

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        with self._owner.phone.endpoint.callback("onCallMediaState"):
            self._owner.on_media_state()

    def onDtmfEvent(self, prm: pj.OnDtmfEventParam) -> None:
        with self._owner.phone.endpoint.callback("onDtmfEvent"):
            self._owner.on_dtmf_event(str(prm.digit), int(prm.duration), int(prm.flags))


class PhoneCall:
    """One call leg of a phone. State is cached from callbacks, so it stays readable after
    the call has ended (pjsua forgets a disconnected call)."""

    def __init__(self, phone: Phone, direction: Direction) -> None:
        self.phone = phone
        self.direction = direction
        self.state = CallState.NULL
        self.media_state = MediaState.NONE
        self.last_status = 0
        self.last_reason = ""
        self.status_codes: list[int] = []
        self.dtmf: list[DtmfDigit] = []
        self.remote_uri = ""
        self.call_id = ""
        self._pj: _Call | None = None
        self._audio: pj.AudioMedia | None = None
        self._recorder: pj.AudioMediaRecorder | None = None
        self._recording_path: Path | None = None
        self._dtmf_open = False

    def __repr__(self) -> str:
        return (
            f"PhoneCall({self.phone.username} {self.direction.value} {self.remote_uri} "
            f"{self.state.name} {self.last_status} media={self.media_state.name})"
        )

    # -- callbacks (test thread, from libHandleEvents) -------------------------------------

    def attach(self, pj_call: _Call) -> None:
        self._pj = pj_call

    def on_state(self) -> None:
        info = self._require().getInfo()
        self.state = CallState(info.state)
        self.call_id = str(info.callIdString)
        self.remote_uri = str(info.remoteUri)
        code = int(info.lastStatusCode)
        if code and (not self.status_codes or self.status_codes[-1] != code):
            self.status_codes.append(code)
        self.last_status = code
        self.last_reason = str(info.lastReason)
        if self.state is CallState.DISCONNECTED:
            self.media_state = MediaState.NONE
            self._audio = None
        logger.debug("%s: call %s %s %s", self.phone.username, self.call_id, self.state, code)

    def on_media_state(self) -> None:
        pj_call = self._require()
        info = pj_call.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            self.media_state = MediaState(media.status)
            self._audio = pj_call.getAudioMedia(media.index) if media.audioConfSlot >= 0 else None
            break
        self._connect_media()

    def on_dtmf_event(self, digit: str, duration_ms: int, flags: int) -> None:
        # RFC 4733 section 2.5: a start packet (flags 0), updates (IS_UPDATE) and the end
        # (IS_UPDATE | IS_END). A digit counts once: at its start, or at its first packet
        # if the start was lost; the end brings the final duration.
        if flags == 0 or not self._dtmf_open:
            self.dtmf.append(DtmfDigit(digit, duration_ms))
        elif self.dtmf:
            self.dtmf[-1] = DtmfDigit(digit, duration_ms)
        self._dtmf_open = not flags & _DTMF_IS_END

    def _connect_media(self) -> None:
        if self._audio is None:
            return
        player = self.phone.player
        if player is not None:
            player.startTransmit(self._audio)
        if self._recorder is not None:
            self._audio.startTransmit(self._recorder)

    def _require(self) -> _Call:
        if self._pj is None:
            raise PhoneError(f"{self!r} has been released")
        return self._pj

    # -- actions ---------------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        return self.state not in (CallState.NULL, CallState.DISCONNECTED)

    @property
    def dtmf_digits(self) -> str:
        return "".join(d.digit for d in self.dtmf)

    def answer(self, code: int = 200) -> None:
        """Send a response: 180 rings, 200 answers, >= 300 rejects (486 busy, 603 decline)."""
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        with _pjsua(f"{self!r} answer {code}"):
            if code >= 300:
                self._require().hangup(prm)
            else:
                self._require().answer(prm)

    def hangup(self, code: int = 0) -> None:
        """End the call: BYE when confirmed, CANCEL while calling out, ``code`` (default 603)
        as the final response to an incoming call not answered yet."""
        if not self.is_active:
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        with _pjsua(f"{self!r} hangup"):
            self._require().hangup(prm)

    def hold(self, wait: bool = True, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """re-INVITE with a=sendonly (RFC 3264 section 8.4)."""
        with _pjsua(f"{self!r} hold"):
            self._require().setHold(pj.CallOpParam(True))
        if wait:
            self.wait_media(MediaState.LOCAL_HOLD, timeout)

    def unhold(self, wait: bool = True, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """re-INVITE with a=sendrecv."""
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        with _pjsua(f"{self!r} unhold"):
            self._require().reinvite(prm)
        if wait:
            self.wait_media(MediaState.ACTIVE, timeout)

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Queue ``digits`` as RFC 4733 telephone-events."""
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.duration = duration_ms
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        with _pjsua(f"{self!r} DTMF {digits!r}"):
            self._require().sendDtmf(prm)

    def record(self, path: Path) -> None:
        """Record what this phone hears on the call into ``path`` (WAV at the bridge's clock
        rate) until :meth:`stop_recording`; use one recording per test phase."""
        if self._recorder is not None:
            raise PhoneError(f"{self!r} is already recording to {self._recording_path}")
        recorder = pj.AudioMediaRecorder()
        with _pjsua(f"recorder {path}"):
            recorder.createRecorder(str(path))
        self._recorder = recorder
        self._recording_path = path
        self._connect_media()

    def stop_recording(self) -> Path:
        """Finish the recording (the recorder writes its WAV header on destruction)."""
        if self._recorder is None or self._recording_path is None:
            raise PhoneError(f"{self!r} is not recording")
        path = self._recording_path
        if self._audio is not None:
            with contextlib.suppress(pj.Error):
                self._audio.stopTransmit(self._recorder)
        _destroy(self._recorder)
        self._recorder = None
        self._recording_path = None
        return path

    def wait_state(self, *states: CallState, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.phone.endpoint.wait_until(
            lambda: self.state in states, timeout, f"{self!r} to reach {[s.name for s in states]}"
        )

    def wait_confirmed(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.wait_state(CallState.CONFIRMED, CallState.DISCONNECTED, timeout=timeout)
        if self.state is not CallState.CONFIRMED:
            raise PhoneError(f"{self!r} ended instead of being answered")
        self.wait_media(MediaState.ACTIVE, timeout)

    def wait_disconnected(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.wait_state(CallState.DISCONNECTED, timeout=timeout)

    def wait_media(self, state: MediaState, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.phone.endpoint.wait_until(
            lambda: self.media_state is state, timeout, f"{self!r} media {state.name}"
        )

    def wait_dtmf(self, digits: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.phone.endpoint.wait_until(
            lambda: len(self.dtmf) >= len(digits), timeout, f"{self!r} DTMF {digits!r}"
        )

    def release(self) -> None:
        """Free the pjsua call object and recorder. A call that has not ended yet is hung up
        and handed to the endpoint, which frees it once pjsua reports it ended: pjsua keeps
        the call's slot until then (its BYE or CANCEL may wait up to 32 s for a node that is
        gone), and a call object freed before that no longer hears how it ends."""
        _destroy(self._recorder)
        self._recorder = None
        self._audio = None
        if self._pj is not None and self.is_active:
            self.phone.endpoint.drain(self)
            return
        _destroy(self._pj)
        self._pj = None


class Phone:
    """A SIP phone: an account on its own transport and RTP port range.

    ``answer_code`` says what an incoming call gets: 180 first, then after ``ring_s`` seconds
    the final ``answer_code`` (200 answers, 486 busy, ...); None leaves it ringing for the test
    to answer (or for the caller to cancel).
    """

    def __init__(
        self,
        endpoint: SipEndpoint,
        username: str,
        *,
        password: str | None = None,
        registrar: str | None = None,
        domain: str | None = None,
        transport: Transport = Transport.UDP,
        rtp_port: int,
        answer_code: int | None = 200,
        ring_s: float = 0.0,
        srtp: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.srtp = srtp
        self.username = username
        self.transport = transport
        self.registrar = registrar
        self.answer_code = answer_code
        self.ring_s = ring_s
        self.rtp_port = rtp_port
        self.calls: list[PhoneCall] = []
        self.reg_codes: list[int] = []
        self.reg_reason = ""
        self.player: pj.AudioMediaPlayer | None = None
        self._reg_pending = False
        self._transport_id = endpoint.create_transport(transport)
        self.sip_port = endpoint.transport_port(self._transport_id)
        self.domain = domain or (registrar.split(":")[0] if registrar else LOOPBACK)
        self._account: _Account | None = _Account(self)
        self._account.create(self._account_config(password), True)

    def __repr__(self) -> str:
        return f"Phone({self.username} {self.transport.value}:{self.sip_port})"

    def _account_config(self, password: str | None) -> pj.AccountConfig:
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:{self.username}@{self.domain}"
        if self.registrar is not None:
            cfg.regConfig.registrarUri = self._sip_uri(None, self.registrar)
        cfg.regConfig.registerOnAdd = False
        cfg.regConfig.retryIntervalSec = 0
        cfg.regConfig.timeoutSec = 300
        cfg.regConfig.dropCallsOnFail = False
        cfg.regConfig.unregWaitMsec = 500
        if password is not None:
            cfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", self.username, 0, password)
            )
        cfg.sipConfig.transportId = self._transport_id
        # Plain RFC 3261 behaviour: no RFC 5626 outbound, no keep-alives, no contact rewriting.
        cfg.natConfig.sipOutboundUse = 0
        cfg.natConfig.udpKaIntervalSec = 0
        cfg.natConfig.contactRewriteUse = 0
        cfg.natConfig.viaRewriteUse = 0
        cfg.natConfig.sdpNatRewriteUse = 0
        cfg.mediaConfig.transportConfig.port = self.rtp_port
        cfg.mediaConfig.transportConfig.portRange = RTP_PORTS_PER_PHONE
        cfg.mediaConfig.transportConfig.boundAddress = LOOPBACK
        if self.srtp:  # SDES-SRTP only, and only over TLS signalling (srtpSecureSignaling 1)
            cfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
            cfg.mediaConfig.srtpSecureSignaling = 1
        return cfg

    def _sip_uri(self, user: str | None, hostport: str) -> str:
        suffix = "" if self.transport is Transport.UDP else f";transport={self.transport.value}"
        return f"sip:{user + '@' if user else ''}{hostport}{suffix}"

    @property
    def uri(self) -> str:
        """This phone reached directly: sip:user@127.0.0.1:port."""
        return self._sip_uri(self.username, f"{LOOPBACK}:{self.sip_port}")

    @property
    def account_id(self) -> int:
        return int(self._require_account().getId())

    def _require_account(self) -> _Account:
        if self._account is None:
            raise PhoneError(f"{self!r} is closed")
        return self._account

    # -- registration (RFC 3261 section 10) -------------------------------------------------

    def on_reg_state(self, code: int, reason: str) -> None:
        if code >= 200 or code == 0:
            self.reg_codes.append(code)
            self.reg_reason = reason
            self._reg_pending = False

    @property
    def registered(self) -> bool:
        return bool(self._require_account().getInfo().regIsActive)

    def register(self, timeout: float = REGISTER_TIMEOUT_S) -> int:
        """REGISTER (answering digest challenges) and return the final status code."""
        return self._registration(True, timeout)

    def unregister(self, timeout: float = DEFAULT_TIMEOUT_S) -> int:
        """REGISTER with Expires: 0 and return the final status code."""
        return self._registration(False, timeout)

    def _registration(self, renew: bool, timeout: float) -> int:
        if self.registrar is None:
            raise PhoneError(f"{self!r} has no registrar")
        self._reg_pending = True
        with _pjsua(f"{self!r} REGISTER"):
            self._require_account().setRegistration(renew)
        self.endpoint.wait_until(lambda: not self._reg_pending, timeout, f"{self!r} REGISTER")
        return self.reg_codes[-1]

    # -- calls -----------------------------------------------------------------------------

    def call(self, uri: str) -> PhoneCall:
        """INVITE ``uri``; returns at once (use the call's ``wait_*`` helpers)."""
        self.endpoint.wait_for_call_slot()
        call = PhoneCall(self, Direction.OUTGOING)
        pj_call = _Call(call, self._require_account(), pj.PJSUA_INVALID_ID)
        call.attach(pj_call)
        self.calls.append(call)
        deadline = time.monotonic() + CALL_SLOT_WAIT_S
        while True:
            try:
                with _pjsua(f"{self!r} INVITE {uri}"):
                    pj_call.makeCall(uri, pj.CallOpParam(True))
                return call
            except PhoneError as error:
                # No free call slot yet: pjsua frees an ended call's slot a while after
                # reporting it disconnected (a killed node's unanswered BYE: up to 32 s).
                if "PJ_ETOOMANY" not in str(error) or time.monotonic() >= deadline:
                    raise
                logger.info("%r: no free pjsua call slot yet, waiting", self)
                self.endpoint.run_for(0.2)

    def dial(self, number: str) -> PhoneCall:
        """Call ``number`` at the registrar: sip:number@registrar."""
        if self.registrar is None:
            raise PhoneError(f"{self!r} has no registrar to dial through")
        return self.call(self._sip_uri(number, self.registrar))

    def on_incoming_call(self, call_id: int) -> None:
        call = PhoneCall(self, Direction.INCOMING)
        call.attach(_Call(call, self._require_account(), call_id))
        self.calls.append(call)
        call.on_state()
        call.answer(180)
        if self.answer_code is None:
            return
        if self.ring_s <= 0:
            call.answer(self.answer_code)
            return
        code = self.answer_code
        self.endpoint.schedule(self.ring_s, lambda: call.answer(code) if call.is_active else None)

    @property
    def incoming(self) -> list[PhoneCall]:
        return [c for c in self.calls if c.direction is Direction.INCOMING]

    @property
    def active_calls(self) -> list[PhoneCall]:
        return [c for c in self.calls if c.is_active]

    def wait_incoming(self, count: int = 1, timeout: float = DEFAULT_TIMEOUT_S) -> PhoneCall:
        """Wait until ``count`` calls have come in; return the latest."""
        self.endpoint.wait_until(
            lambda: len(self.incoming) >= count, timeout, f"{self!r} incoming call #{count}"
        )
        return self.incoming[-1]

    # -- media -----------------------------------------------------------------------------

    def play(self, wav_path: Path) -> None:
        """Send ``wav_path`` into every call of this phone (now and later). The file must be
        longer than the test: a looping player glitches at the loop point and its
        end-of-file callback would run on the clock thread."""
        wav = read_wav(wav_path)
        if wav.duration_s < MIN_PLAYER_FILE_S:
            raise PhoneError(f"{wav_path} lasts {wav.duration_s:.1f} s, under {MIN_PLAYER_FILE_S}")
        self.stop_playing()
        player = pj.AudioMediaPlayer()
        with _pjsua(f"player {wav_path}"):
            player.createPlayer(str(wav_path), 0)
        self.player = player
        for call in self.active_calls:
            call._connect_media()

    def stop_playing(self) -> None:
        if self.player is None:
            return
        for call in self.active_calls:
            if call._audio is not None:
                with contextlib.suppress(pj.Error):
                    self.player.stopTransmit(call._audio)
        _destroy(self.player)
        self.player = None

    # -- shutdown --------------------------------------------------------------------------

    def close(self, timeout: float = 1.0) -> None:
        """Hang up, wait for the calls to end, drop them, unregister, delete the account and
        close the transport. Safe to call twice."""
        if self._account is None:
            return
        for call in self.active_calls:
            with contextlib.suppress(PhoneError):
                call.hangup()
        with contextlib.suppress(PhoneTimeoutError):
            self.endpoint.wait_until(lambda: not self.active_calls, timeout, "calls to end")
        for call in self.calls:
            call.release()
        self.stop_playing()
        if self.registrar is not None and self.reg_codes and self.registered:
            with contextlib.suppress(PhoneError, pj.Error):
                self.unregister(timeout)
        self._account.shutdown()
        _destroy(self._account)
        self._account = None
        self.endpoint.close_transport(self._transport_id)


class SipEndpoint:
    """The pjsua2 library instance, pumped from the test thread. One per process."""

    def __init__(
        self,
        *,
        log_level: int = 0,
        log_file: Path | None = None,
        clock_rate: int = 8000,
        rtp_base: int | None = None,
    ) -> None:
        self._thread = threading.get_ident()
        self._errors: list[str] = []
        self._timers: list[tuple[float, Callable[[], None]]] = []
        self._phones: list[Phone] = []
        # Released calls that pjsua has not finished yet (see PhoneCall.release).
        self._draining: list[PhoneCall] = []
        self._next_slot = 0
        # Spread concurrent test processes over 40000-59999; pjsua retries busy ports in range.
        self._rtp_base = rtp_base if rtp_base is not None else 40000 + (os.getpid() % 20) * 1000
        self.stray_requests: list[str] = []
        # Called at every pump: lets a test drive a raw-socket peer from the test thread.
        self.pollers: list[Callable[[], None]] = []
        self._ep: _Endpoint | None = _Endpoint(self)
        with _stdout_silenced():
            self._ep.libCreate()
        self._ep.libInit(self._config(log_level, log_file, clock_rate))
        self._ep.libStart()
        self._ep.audDevManager().setNullDev()
        for codec in self._ep.codecEnum2():
            self._ep.codecSetPriority(codec.codecId, _CODEC_PRIORITIES.get(codec.codecId, 0))

    @staticmethod
    def _config(log_level: int, log_file: Path | None, clock_rate: int) -> pj.EpConfig:
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 32
        cfg.uaConfig.userAgent = "callwarden-test-phone"
        cfg.medConfig.threadCnt = 0
        cfg.medConfig.hasIoqueue = False
        cfg.medConfig.clockRate = clock_rate
        cfg.medConfig.sndClockRate = clock_rate
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.level = log_level
        cfg.logConfig.msgLogging = 1 if log_file is not None else 0
        if log_file is not None:
            cfg.logConfig.filename = str(log_file)
        return cfg

    @property
    def ep(self) -> _Endpoint:
        if self._ep is None:
            raise PhoneError("the SIP endpoint is closed")
        return self._ep

    # -- callbacks -------------------------------------------------------------------------

    @contextlib.contextmanager
    def callback(self, name: str) -> Iterator[None]:
        """Wrap a pjsua callback: note a foreign thread, and keep an exception from
        unwinding into C (it is re-raised by the next pump instead)."""
        if threading.get_ident() != self._thread:
            self._errors.append(f"{name} ran on thread {threading.current_thread().name}")
        try:
            yield
        except Exception as exc:
            logger.exception("pjsua callback %s raised", name)
            self._errors.append(f"{name} raised {exc!r}")

    def select_account(self, prm: pj.OnSelectAccountParam) -> None:
        """Give an incoming request to the phone whose port is in its Request-URI."""
        message = str(prm.rdata.wholeMsg)
        port = request_uri_port(message)
        for phone in self._phones:
            if phone.sip_port == port:
                prm.accountIndex = phone.account_id
                return
        self.stray_requests.append(message.split("\r\n", 1)[0])

    # -- pumping ---------------------------------------------------------------------------

    def pump(self, ms: int = 10) -> None:
        """Handle pending SIP/RTP events for up to ``ms`` milliseconds, then due timers."""
        self.ep.libHandleEvents(ms)
        now = time.monotonic()
        due = [action for at, action in self._timers if at <= now]
        self._timers = [(at, action) for at, action in self._timers if at > now]
        for action in due:
            action()
        for poll in list(self.pollers):
            poll()
        self._reap_drained()
        if self._errors:
            errors, self._errors = self._errors, []
            raise CallbackError("; ".join(errors))

    def schedule(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run ``action`` from a pump at least ``delay_s`` seconds from now."""
        self._timers.append((time.monotonic() + delay_s, action))

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT_S, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                raise PhoneTimeoutError(
                    f"timed out after {timeout:.1f} s waiting for {what or predicate}"
                )
            self.pump()

    def run_for(self, seconds: float) -> None:
        """Let time pass (audio flows, timers fire) while pumping events."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.pump(min(10, max(1, int(left * 1000))))

    # -- call slots ------------------------------------------------------------------------

    def drain(self, call: PhoneCall) -> None:
        """Hang up a released call that has not ended, and free it once it has."""
        with contextlib.suppress(PhoneError):
            call.hangup()
        self._draining.append(call)

    def _reap_drained(self) -> None:
        for call in [c for c in self._draining if not c.is_active]:
            self._draining.remove(call)
            call.release()

    def calls_in_use(self) -> int:
        """The pjsua call slots taken: live calls of open phones and released calls still
        ending."""
        return sum(len(phone.active_calls) for phone in self._phones) + len(self._draining)

    def wait_for_call_slot(self) -> None:
        """Before a new outgoing call: wait while calls of earlier tests still ending hold the
        slots it needs (after a node was killed, their BYE waits 32 s for an answer). Without
        this the suite ran out of slots after the crash tests (PJ_ETOOMANY in makeCall)."""

        def room() -> bool:
            return not self._draining or self.calls_in_use() <= MAX_CALLS - 2

        if not room():
            self.wait_until(room, CALL_SLOT_WAIT_S, "earlier tests' calls to end")

    # -- phones and transports -------------------------------------------------------------

    def create_transport(self, transport: Transport) -> int:
        cfg = pj.TransportConfig()
        cfg.port = 0
        cfg.boundAddress = LOOPBACK
        kind = {
            Transport.UDP: pj.PJSIP_TRANSPORT_UDP,
            Transport.TCP: pj.PJSIP_TRANSPORT_TCP,
            Transport.TLS: pj.PJSIP_TRANSPORT_TLS,  # the node's certificate is self-signed:
        }[transport]  # tlsConfig.verifyServer stays False
        return int(self.ep.transportCreate(kind, cfg))

    def transport_port(self, transport_id: int) -> int:
        name = str(self.ep.transportGetInfo(transport_id).localName)
        return int(name.rsplit(":", 1)[1])

    def close_transport(self, transport_id: int) -> None:
        with contextlib.suppress(pj.Error):
            self.ep.transportClose(transport_id)

    def create_phone(self, username: str, **options: Unpack[PhoneOptions]) -> Phone:
        """A new phone on its own SIP port and RTP range; ``registrar`` is "host:port"."""
        if len(self._phones) >= MAX_PHONES:
            raise PhoneError(f"at most {MAX_PHONES} phones at once (PJSUA_MAX_ACC)")
        slot = self._next_slot % RTP_PHONE_SLOTS
        self._next_slot += 1
        phone = Phone(
            self, username, rtp_port=self._rtp_base + slot * RTP_PORTS_PER_PHONE, **options
        )
        self._phones.append(phone)
        return phone

    def close_phone(self, phone: Phone) -> None:
        phone.close()
        if phone in self._phones:
            self._phones.remove(phone)

    def close(self) -> None:
        """Close every phone, then destroy the library (in that order: see module doc)."""
        if self._ep is None:
            return
        for phone in list(self._phones):
            self.close_phone(phone)
        with contextlib.suppress(PhoneError):
            self.wait_until(lambda: not self._draining, 2.0, "released calls to end")
        for call in self._draining:  # before libDestroy: see the module doc
            _destroy(call._pj)
            call._pj = None
        self._draining.clear()
        self._timers.clear()
        gc.collect()
        self._ep.libDestroy()
        self._ep = None
        gc.collect()


class PhoneBook:
    """The phones of one test, on the session's endpoint; :meth:`close` ends them all."""

    def __init__(self, endpoint: SipEndpoint, directory: Path) -> None:
        self.endpoint = endpoint
        self.directory = directory
        self._phones: list[Phone] = []

    def create(self, username: str, **options: Unpack[PhoneOptions]) -> Phone:
        """A phone on its own ports (see :class:`Phone` for the options)."""
        phone = self.endpoint.create_phone(username, **options)
        self._phones.append(phone)
        return phone

    def wav(self, name: str) -> Path:
        """A path for a recording in the test's temporary directory."""
        return self.directory / f"{name}.wav"

    def run_for(self, seconds: float) -> None:
        self.endpoint.run_for(seconds)

    def wait_until(
        self, predicate: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT_S, what: str = ""
    ) -> None:
        self.endpoint.wait_until(predicate, timeout, what)

    def close(self) -> None:
        for phone in self._phones:
            self.endpoint.close_phone(phone)
        self._phones.clear()
