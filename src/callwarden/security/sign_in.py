"""All the sign-in services wired together, for the composition root (`app.py`) and tests.

`SignInServices.build` is the one place that knows which service needs which; the web layer
takes the finished object. Run `sweep` about once a minute (it ends timed-out sessions, telling
`revocations` subscribers, and forgets old throttle counters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from callwarden.security.clock import Clock, SystemClock
from callwarden.security.credentials import PasswordChanges
from callwarden.security.devices import KnownDevices
from callwarden.security.login import LoginService
from callwarden.security.mfa import MfaPolicy, MfaService
from callwarden.security.network_policy import NetworkPolicy
from callwarden.security.password_policy import PasswordPolicy
from callwarden.security.passwords import PasswordHasher
from callwarden.security.secret_box import SecretBox
from callwarden.security.sessions import SessionRevocations, SessionService, SessionSettings
from callwarden.security.throttle import LoginThrottle, ThrottleSettings

SessionFactory = Callable[[], Session]


@dataclass(frozen=True)
class SignInServices:
    login: LoginService
    sessions: SessionService
    revocations: SessionRevocations
    mfa: MfaService
    throttle: LoginThrottle
    network_policy: NetworkPolicy
    devices: KnownDevices
    passwords: PasswordChanges
    password_policy: PasswordPolicy

    @classmethod
    def build(
        cls,
        session_factory: SessionFactory,
        *,
        secret_box: SecretBox,
        clock: Clock | None = None,
        hasher: PasswordHasher | None = None,
        password_policy: PasswordPolicy | None = None,
        mfa_policy: MfaPolicy | None = None,
        session_settings: SessionSettings | None = None,
        throttle_settings: ThrottleSettings | None = None,
        issuer: str = "callwarden",
    ) -> SignInServices:
        """`secret_box` seals TOTP seeds: `SecretBox.from_key_file(data_dir / "secret.key")`."""
        clock = clock if clock is not None else SystemClock()
        hasher = hasher if hasher is not None else PasswordHasher()
        policy = password_policy if password_policy is not None else PasswordPolicy.default()
        revocations = SessionRevocations()
        sessions = SessionService(session_factory, clock, revocations, session_settings)
        mfa = MfaService(session_factory, secret_box, clock, issuer=issuer)
        throttle = LoginThrottle(session_factory, clock, throttle_settings)
        network_policy = NetworkPolicy(session_factory)
        devices = KnownDevices(session_factory, clock)
        login = LoginService(
            session_factory,
            clock=clock,
            hasher=hasher,
            sessions=sessions,
            mfa=mfa,
            throttle=throttle,
            network_policy=network_policy,
            devices=devices,
            mfa_policy=mfa_policy,
        )
        passwords = PasswordChanges(
            session_factory,
            hasher=hasher,
            policy=policy,
            sessions=sessions,
            throttle=throttle,
            devices=devices,
        )
        return cls(
            login, sessions, revocations, mfa, throttle, network_policy, devices, passwords, policy
        )

    def sweep(self) -> tuple[int, int]:
        """End timed-out sessions and forget old throttle counters: (sessions, counters)."""
        return self.sessions.sweep(), self.throttle.sweep()
