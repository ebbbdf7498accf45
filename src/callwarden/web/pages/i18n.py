"""Message catalogs of the pages: one flat JSON object per language in `callwarden/web/i18n/`
(`ja.json`, `en.json`), key to text, with `{name}` placeholders.

JSON rather than gettext: the same file serves the server's templates and the browser's ES
modules (the page embeds its language's catalog as a JSON data block), no compile step is
needed, and a test can compare the two catalogs key for key. Japanese is the default language;
the user's choice is kept in the `callwarden_lang` cookie.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

from starlette.requests import HTTPConnection

logger = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("ja", "en")
DEFAULT_LANGUAGE = "ja"
LANGUAGE_COOKIE = "callwarden_lang"
CATALOG_DIR = Path(__file__).resolve().parent.parent / "i18n"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class CatalogError(ValueError):
    """A catalog file is missing, not a flat object of strings, or disagrees with the others."""


@dataclass(frozen=True)
class Catalog:
    """The messages of one language."""

    language: str
    messages: Mapping[str, str]

    def text(self, key: str, **values: object) -> str:
        """The message `key` with its `{placeholders}` filled; an unknown key raises."""
        try:
            template = self.messages[key]
        except KeyError:
            raise KeyError(f"no message {key!r} in the {self.language} catalog") from None
        if not values:
            return template
        return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)

    def has(self, key: str) -> bool:
        return key in self.messages


def _read(path: Path, language: str) -> Catalog:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CatalogError(f"cannot read {path}: {error}") from error
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in data.items()
    ):
        raise CatalogError(f"{path} must be one JSON object of strings")
    return Catalog(language, MappingProxyType(dict(data)))


@dataclass(frozen=True)
class Catalogs:
    """Every language's catalog; they hold the same keys with the same placeholders."""

    by_language: Mapping[str, Catalog]

    @classmethod
    def load(cls, directory: Path = CATALOG_DIR, languages: Iterable[str] = LANGUAGES) -> Catalogs:
        found = {
            language: _read(directory / f"{language}.json", language) for language in languages
        }
        _check_agreement(found)
        return cls(MappingProxyType(found))

    def get(self, language: str) -> Catalog:
        return self.by_language.get(language) or self.by_language[DEFAULT_LANGUAGE]

    def for_connection(self, connection: HTTPConnection) -> Catalog:
        """The catalog of the language the caller chose (cookie), Japanese otherwise."""
        return self.get(chosen_language(connection))


def chosen_language(connection: HTTPConnection) -> str:
    choice = connection.cookies.get(LANGUAGE_COOKIE, "")
    return choice if choice in LANGUAGES else DEFAULT_LANGUAGE


def _check_agreement(catalogs: Mapping[str, Catalog]) -> None:
    reference = catalogs[DEFAULT_LANGUAGE]
    for language, catalog in catalogs.items():
        missing = set(reference.messages) ^ set(catalog.messages)
        if missing:
            raise CatalogError(
                f"catalogs {DEFAULT_LANGUAGE} and {language} differ in keys: {sorted(missing)}"
            )
        for key, text in reference.messages.items():
            ours = set(_PLACEHOLDER.findall(text))
            theirs = set(_PLACEHOLDER.findall(catalog.messages[key]))
            if ours != theirs:
                raise CatalogError(f"{key}: placeholders differ between ja and {language}")


_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_datetime(moment: datetime, language: str, time_zone: str) -> str:
    """`moment` in the center's time zone, as each language writes it:
    `2026年12月1日 18:00` and `1 Dec 2026, 18:00`."""
    local = moment.astimezone(ZoneInfo(time_zone))
    if language == "ja":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local.day} {_EN_MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"


def format_duration(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on (the same in both languages)."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
