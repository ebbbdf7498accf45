"""The web pages: server-rendered Jinja2 templates in Japanese and English, small ES modules for
the live parts, a strict Content-Security-Policy. docs/web.md describes them.

`install_pages(app, services)` adds the page routes to an application made by
`callwarden.web.app.create_app` and the parts they use (the renderer with its catalogs, the
wallboard's queue figures).
"""

from __future__ import annotations

from fastapi import FastAPI

from callwarden.acd.today import stored_history
from callwarden.web.access import GuardedRoute, route_access
from callwarden.web.pages.admin import router as admin_router
from callwarden.web.pages.figures import QueueFigures
from callwarden.web.pages.i18n import Catalogs
from callwarden.web.pages.render import NavItem, PageRenderer
from callwarden.web.pages.reports import router as reports_router
from callwarden.web.pages.routes import router
from callwarden.web.services import WebServices, part_name

__all__ = ["NAVIGATION", "install_pages"]

NAVIGATION: tuple[tuple[str, str], ...] = (
    ("nav.desk", "/desk"),
    ("nav.wallboard", "/wallboard"),
    ("nav.recordings", "/recordings"),
    ("nav.reports", "/reports"),
    ("nav.audit", "/audit"),
    ("nav.admin_users", "/admin/users"),
    ("nav.admin_roles", "/admin/roles"),
    ("nav.admin_teams", "/admin/teams"),
    ("nav.admin_queues", "/admin/queues"),
    ("nav.admin_trunks", "/admin/trunks"),
    ("nav.admin_network", "/admin/network"),
    ("nav.admin_retention", "/admin/retention"),
    ("nav.admin_holds", "/admin/holds"),
    ("nav.sessions", "/account/sessions"),
)
"""The navigation's links, in order: each is shown to whoever its page's declaration admits."""


def install_pages(app: FastAPI, services: WebServices) -> None:
    time_zone = services.settings.time_zone
    added: dict[str, GuardedRoute] = {}
    for route in [*router.routes, *admin_router.routes, *reports_router.routes]:
        if not isinstance(route, GuardedRoute):
            raise TypeError(f"page route {route!r} is not a GuardedRoute")
        app.router.routes.append(route)
        added[route.path] = route
    navigation = []
    for key, path in NAVIGATION:
        access = route_access(added[path])
        assert access is not None, path
        navigation.append(NavItem(key, path, access))
    renderer = PageRenderer(
        Catalogs.load(),
        services.settings.allowed_origins,
        time_zone=time_zone,
        navigation=navigation,
    )
    figures = QueueFigures(
        services.bus,
        lambda: services.directory.snapshot,
        services.clock.now,
        time_zone,
        stored_history(services.database),
    )
    setattr(app.state, part_name(PageRenderer), renderer)
    setattr(app.state, part_name(QueueFigures), figures)
