"""The browser phones' codecs and the node's order of preference among them (docs/webrtc.md).

The bridge speaks G.711: a browser leg in PCMU or PCMA costs the node little more than the
packing. Opus is decoded by aiortc and resampled to 8 kHz (and the reverse), which costs more
CPU but stands packet loss better (operators on lossy home networks). The node answers with
the first codec of its preference that the browser offered. This module imports nothing heavy:
the settings check names with it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BROWSER_CODECS", "DEFAULT_CODECS", "codec_preference"]

BROWSER_CODECS: dict[str, str] = {
    "pcmu": "audio/PCMU",
    "pcma": "audio/PCMA",
    "opus": "audio/opus",
}
"""A setting's codec name -> its media type (RFC 3551, RFC 7587) as aiortc names it."""
DEFAULT_CODECS = ("pcmu", "pcma", "opus")


def codec_preference(names: Iterable[str]) -> tuple[str, ...]:
    """`names` in order of preference, lower-cased; ValueError names the first bad one."""
    preference: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if name not in BROWSER_CODECS:
            known = ", ".join(BROWSER_CODECS)
            raise ValueError(f"{raw[:20]!r} is not a browser phone codec (one of {known})")
        if name in preference:
            raise ValueError(f"codec {name!r} is listed twice")
        preference.append(name)
    if not preference:
        raise ValueError("at least one browser phone codec is needed (pcmu, pcma, opus)")
    return tuple(preference)
