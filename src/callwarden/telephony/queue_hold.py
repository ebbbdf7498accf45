"""What a waiting caller hears: hold music, the periodic announcements and the closing
message, one player at a time on the call's bridge (the caller's hearing names it).

Hold music is either the tone chord (`HoldMusic.TONES`: G4 + B4, 0.8 s on, 0.4 s off) or the
synthesised melody (`HoldMusic.MELODY`, `telephony.prompts`). An announcement is a list of
prompt files played one after the other (`play_prompt` each, the call times them), after
which `resume_hold` brings the music back.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from callwarden.domain.models import HoldMusic
from callwarden.media.control import MediaControl, MediaError
from callwarden.telephony.prompts import Prompts

__all__ = [
    "BUSY_CADENCE",
    "BUSY_TONE_HZ",
    "HOLD_CADENCE",
    "HOLD_LEVEL_DBFS",
    "HOLD_TONE_HZ",
    "CallerAudio",
]

HOLD_TONE_HZ = (392.0, 494.0)
"""The hold chord (G4 + B4), played 0.8 s on, 0.4 s off."""
HOLD_CADENCE = (0.8, 0.4)
HOLD_LEVEL_DBFS = -16.0
BUSY_TONE_HZ = (480.0, 620.0)
"""The "all operators busy" message before an overflow hang-up (the busy tone's pair)."""
BUSY_CADENCE = (0.25, 0.25)


class CallerAudio:
    """The players of one waiting caller (`listener_id`: the caller's endpoint)."""

    def __init__(
        self,
        media: MediaControl,
        bridge_id: str,
        listener_id: str,
        *,
        music: HoldMusic = HoldMusic.TONES,
        prompts: Prompts | None = None,
    ) -> None:
        self._media = media
        self._bridge_id = bridge_id
        self._listener_id = listener_id
        self._music = music if prompts is not None else HoldMusic.TONES
        self._prompts = prompts
        self._hold_id: str | None = None
        self._other_id: str | None = None
        self.playing: str = "nothing"
        """What the caller hears now: nothing, hold, prompt or message (for tests and logs)."""

    async def hold(self) -> None:
        """Start (or go back to) the hold music."""
        await self._drop_other()
        if self._hold_id is None:
            media, bridge = self._media, self._bridge_id
            if self._music is HoldMusic.MELODY and self._prompts is not None:
                self._hold_id = await media.add_wav(bridge, str(self._prompts.melody), loop=True)
            else:
                self._hold_id = await media.add_tone(
                    bridge, HOLD_TONE_HZ, level_dbfs=HOLD_LEVEL_DBFS, cadence=HOLD_CADENCE
                )
        await self._hear(self._hold_id)
        self.playing = "hold"

    async def play_prompt(self, path: Path) -> None:
        """Play one prompt file once, instead of the music (which keeps its place)."""
        await self._drop_other()
        self._other_id = await self._media.add_wav(self._bridge_id, str(path), loop=False)
        await self._hear(self._other_id)
        self.playing = "prompt"

    async def resume_hold(self) -> None:
        await self.hold()

    async def message(
        self, frequencies: tuple[float, ...], cadence: tuple[float, float] | None
    ) -> None:
        """A closing tone message: replaces music and prompts for good."""
        await self._drop_other()
        await self._drop_hold()
        self._other_id = await self._media.add_tone(
            self._bridge_id, frequencies, level_dbfs=HOLD_LEVEL_DBFS, cadence=cadence
        )
        await self._hear(self._other_id)
        self.playing = "message"

    async def stop(self) -> None:
        """Remove every player (the caller is answered)."""
        await self._drop_other()
        await self._drop_hold()
        self.playing = "nothing"

    async def _hear(self, player_id: str) -> None:
        await self._media.set_hearing(self._bridge_id, self._listener_id, frozenset({player_id}))

    async def _drop_other(self) -> None:
        if self._other_id is not None:
            player, self._other_id = self._other_id, None
            with contextlib.suppress(MediaError):  # a finished one-shot player may be gone
                await self._media.remove_from_bridge(self._bridge_id, player)

    async def _drop_hold(self) -> None:
        if self._hold_id is not None:
            player, self._hold_id = self._hold_id, None
            await self._media.remove_from_bridge(self._bridge_id, player)
