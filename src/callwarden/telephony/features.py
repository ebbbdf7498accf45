"""Feature codes: services a phone of ours reaches by dialling a `*` code.

The dial plan recognises a configured code as the start of a dial string (`*51`, `*53` + a
reason digit, `*91` + an extension, ...) and routes it to `ToFeature(code, argument)`; the
SIP application then asks the `FeatureHandler` that declared the code to run the call. Each
feature package (agent codes for the ACD, monitoring codes, ...) supplies one handler and the
composition root (`app.py`) hands them all to the application as one `FeatureCodes`.

Only our own users reach feature codes (never a trunk), and the handler decides, with the
policy, what the caller may do. The longest configured code that starts the dial string wins,
so `*5` and `*51` can both exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from callwarden.domain.models import User
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.telephony.call_context import CallerInfo
from callwarden.telephony.call_task import CallTask

if TYPE_CHECKING:
    from callwarden.telephony.dialplan import ToFeature
    from callwarden.telephony.queue_call import QueueCallServices

__all__ = ["FeatureCodes", "FeatureHandler", "check_feature_code"]

_FEATURE_CODE = re.compile(r"\*[0-9*#]{1,8}")


def check_feature_code(code: str) -> str:
    """`code` if it is a valid feature code (`*` then 1-8 of `0-9*#`), else ValueError."""
    if _FEATURE_CODE.fullmatch(code) is None:
        raise ValueError(f"feature code {code!r}: '*' followed by 1-8 digits, '*' or '#'")
    return code


class FeatureHandler(Protocol):
    """A feature package's entry point: the codes it answers and how it runs a call."""

    @property
    def codes(self) -> Iterable[str]:
        """The feature codes this handler serves (each `*` + digits)."""
        ...

    def start_call(
        self,
        services: QueueCallServices,
        invite_tx: InviteServerTransaction,
        caller: CallerInfo,
        user: User,
        feature: ToFeature,
        *,
        on_finished: Callable[[CallTask], None],
    ) -> CallTask:
        """A call task for `user`'s INVITE to `feature` (the application runs its `run()`,
        and `on_finished(task)` must be called when it is over)."""
        ...


class FeatureCodes:
    """Every feature code of the node, each with the handler that serves it."""

    def __init__(self, handlers: Iterable[FeatureHandler] = ()) -> None:
        self._handlers: dict[str, FeatureHandler] = {}
        for handler in handlers:
            for code in handler.codes:
                check_feature_code(code)
                if code in self._handlers:
                    raise ValueError(f"feature code {code} is served twice")
                self._handlers[code] = handler
        self.codes: frozenset[str] = frozenset(self._handlers)

    def handler(self, code: str) -> FeatureHandler:
        """The handler of a code the dial plan matched (KeyError for any other)."""
        return self._handlers[code]
