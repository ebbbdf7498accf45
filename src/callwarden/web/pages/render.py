"""Rendering a page: the Jinja2 environment over `callwarden/web/templates`, the language's
catalog, the navigation the caller may see, and the headers every page carries.

Templates are autoescaped and strict (an undefined name is an error, not an empty string).
Every visible string comes from the catalog through `t(key)`; the page embeds its catalog as a
JSON data block (`<script type="application/json">`, which the browser never executes) for the
ES modules, so no inline script exists and the Content-Security-Policy forbids them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse

from callwarden.domain.policy import Resource, authorize
from callwarden.web.access import Access, AccessKind, Caller, own_target
from callwarden.web.pages.i18n import LANGUAGES, Catalog, Catalogs

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
DEFAULT_TIME_ZONE = "Asia/Tokyo"


def content_security_policy(allowed_origins: frozenset[str]) -> str:
    """Only this origin's own scripts, styles, images and connections, plus the live
    WebSocket of each allowed origin; nothing inline, no frames, no plugins, no base tag."""
    sockets = sorted(_websocket_origin(origin) for origin in allowed_origins)
    connect = " ".join(["'self'", *sockets])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src {connect}; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _websocket_origin(origin: str) -> str:
    parts = urlsplit(origin)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}"


def script_json(value: object) -> Markup:
    """`value` as JSON safe inside a `<script type="application/json">` block: no `<`, `>` or
    `&` can end the block or start markup."""
    text = json.dumps(value, ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 (escaped for a script data block above)


def page_headers(allowed_origins: frozenset[str]) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(allowed_origins),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), geolocation=(), microphone=(self)",
    }


def allows(access: Access, caller: Caller | None) -> bool:
    """Whether `caller` passes `access` without a target in the path (what the navigation
    shows): the same decision the route's guard makes."""
    if access.kind is AccessKind.PUBLIC:
        return True
    if caller is None:
        return False
    if access.kind is not AccessKind.PERMISSION:
        return True
    assert access.permission is not None and access.resource_kind is not None
    if access.own:
        resource = own_target(caller.user, access.resource_kind).resource
    else:
        resource = Resource.global_resource(access.resource_kind)
    return authorize(caller.principal, access.permission, resource).allowed


@dataclass(frozen=True)
class NavItem:
    key: str
    path: str
    access: Access


@dataclass
class PageRenderer:
    """Renders templates in the caller's language with the navigation they may see."""

    catalogs: Catalogs
    allowed_origins: frozenset[str]
    time_zone: str = DEFAULT_TIME_ZONE
    navigation: list[NavItem] = field(default_factory=list)
    environment: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(TEMPLATE_DIR),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def catalog(self, connection: HTTPConnection) -> Catalog:
        return self.catalogs.for_connection(connection)

    def render(
        self,
        connection: HTTPConnection,
        template: str,
        caller: Caller | None,
        *,
        title_key: str,
        status_code: int = 200,
        context: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        catalog = self.catalog(connection)
        path = connection.url.path
        nav = [
            {"label": catalog.text(item.key), "path": item.path, "current": item.path == path}
            for item in self.navigation
            if allows(item.access, caller)
        ]
        body = self.environment.get_template(template).render(
            t=catalog.text,
            label=lambda prefix, code: (
                catalog.text(f"{prefix}.{code}") if catalog.has(f"{prefix}.{code}") else code
            ),
            language=catalog.language,
            languages=LANGUAGES,
            title=catalog.text(title_key),
            caller=caller,
            user_name=None
            if caller is None
            else (caller.user.display_name or caller.user.username),
            csrf_token="" if caller is None else caller.session.csrf_token,
            nav=nav,
            time_zone=self.time_zone,
            messages_json=script_json(dict(catalog.messages)),
            **(context or {}),
        )
        all_headers = page_headers(self.allowed_origins)
        all_headers.update(headers or {})
        return HTMLResponse(body, status_code=status_code, headers=all_headers)
