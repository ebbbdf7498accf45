"""What the admin APIs (users, roles, teams, queues, trunks, sign-in networks) share: their
routes, written from one declaration each, and the sorted page of a directory list.

Every admin route has the same shape: it declares the one permission it needs (on the kinds at
large for a list or a creation, on the object named by the path otherwise: deny by default,
scopes own/team/all, see `callwarden.web.access`), takes the request body or query, and calls
one method of the package's service class with the caller, the object's id (from the path) and
the body or query. The service decides what only the change shows, writes it with its audit
entry and returns the view. `AdminRoutes` writes those routes, so that a package lists them in
a few lines instead of copying the same route function for each; the routes keep their names,
paths, summaries, parameters and response models (the OpenAPI document does not change).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import APIRouter, Depends, Path, Request, Response, status

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind, not_found
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, Target, require
from callwarden.web.schemas import Page
from callwarden.web.services import app_part
from callwarden.web.targets import MAX_ID

Service = TypeVar("Service")
Item = TypeVar("Item", bound="Identified")
View = TypeVar("View")
Found = TypeVar("Found")

ServiceMethod = Callable[..., object]
"""A method of the service class, called as `method(service, caller, *arguments)`; it returns
the response (or an awaitable of it)."""

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]

_KEYWORD = inspect.Parameter.KEYWORD_ONLY


class Identified(Protocol):
    """An object of the configuration, a stored row or its view."""

    @property
    def id(self) -> int: ...


class ListQuery(Protocol):
    """The sort (from the query model's allow-list) and page of a list route."""

    @property
    def sort(self) -> str: ...

    @property
    def order(self) -> str: ...

    @property
    def limit(self) -> int: ...

    @property
    def offset(self) -> int: ...


def page_of(items: Iterable[Item], query: ListQuery, view: Callable[[Item], View]) -> Page[View]:
    """One page of `items` sorted by the query's field (then by id), as `view`s."""
    ordered = sorted(
        items, key=lambda item: (getattr(item, query.sort), item.id), reverse=query.order == "desc"
    )
    page = ordered[query.offset : query.offset + query.limit]
    return Page(
        items=[view(item) for item in page],
        total=len(ordered),
        limit=query.limit,
        offset=query.offset,
    )


def found(item: Found | None, what: str) -> Found:
    """`item`, or 404 `what` (the words the policy uses for an object it hides) if it is none."""
    if item is None:
        raise not_found(what)
    return item


class AdminRoutes(Generic[Service]):
    """The routes of one admin API under `/api/v1/{path}` (default: the noun's plural),
    served by `service` (the instance the application set up, see `app_part`).

    Every route needs `permission`: a route on the collection on the objects of `target`'s
    kind at large (or on `kind`, a global resource), a route on one object (path parameter
    `{noun}_id`) on the object `target` finds (without a target, on `kind` as well). Route
    names follow the noun: `list_queues`, `create_queue`, `get_queue`, `update_queue`,
    `delete_queue`."""

    def __init__(
        self,
        noun: str,
        service: type[Service],
        permission: Permission,
        *,
        target: Target | None = None,
        kind: ResourceKind | None = None,
        path: str | None = None,
        tag: str | None = None,
    ) -> None:
        path = path or f"{noun}s"
        self.router = APIRouter(
            prefix=f"{API_PREFIX}/{path}", tags=[tag or path], route_class=GuardedRoute
        )
        self._noun = noun
        self._service_type = service
        if target is None:
            on_all = on_one = Annotated[Caller, require(permission, kind=kind)]
        else:
            on_all = Annotated[Caller, require(permission, kind=target.kind)]
            on_one = Annotated[Caller, require(permission, target=target)]
        self._manage = {False: on_all, True: on_one}

        def part(request: Request) -> Service:
            return app_part(request, service)

        self._service = Annotated[service, Depends(part)]

    def crud(
        self,
        summaries: Mapping[str, str],
        *,
        view: object = None,
        listing: object = None,
        query: object = None,
        new: object = None,
        patch: object = None,
    ) -> None:
        """The usual routes, each served by the service method of the same name, for the
        operations `summaries` names, in this order: `list` (`listing`, filtered by `query`),
        `create` (a `new` body, 201), `get`, `update` (a `patch` body, PATCH) and `delete`
        (204); `create`, `get` and `update` answer a `view`."""
        noun, plural = self._noun, f"{self._noun}s"
        created = status.HTTP_201_CREATED
        routes: list[tuple[str, str, bool, dict[str, Any]]] = [
            ("list", "GET", False, {"name": f"list_{plural}", "query": query, "response": listing}),
            ("create", "POST", False, {"body": new, "response": view, "status_code": created}),
            ("get", "GET", True, {"response": view}),
            ("update", "PATCH", True, {"body": patch, "response": view}),
            ("delete", "DELETE", True, {"status_code": status.HTTP_204_NO_CONTENT}),
        ]
        for operation, method, one, options in routes:
            if operation in summaries:
                name = options.pop("name", f"{operation}_{noun}")
                call: ServiceMethod = getattr(self._service_type, operation)
                self.route(method, name, summaries[operation], call, one=one, **options)

    def route(
        self,
        method: str,
        name: str,
        summary: str,
        call: ServiceMethod,
        *,
        one: bool,
        path: str = "",
        body: object = None,
        query: object = None,
        response: object = None,
        status_code: int | None = None,
    ) -> None:
        """The route `name`, on the collection or (`one`) on the object `/{noun_id}`, then
        `path`: `call(service, caller[, object_id][, query or body])` answers it."""
        id_name = f"{self._noun}_id"
        parameters = [
            inspect.Parameter("caller", _KEYWORD, annotation=self._manage[one]),
            inspect.Parameter("admin", _KEYWORD, annotation=self._service),
        ]
        if one:
            parameters.append(inspect.Parameter(id_name, _KEYWORD, annotation=IdPath))
            path = f"/{{{id_name}}}{path}"
        for argument, annotation in (("query", query), ("body", body)):
            if annotation is not None:
                parameters.append(inspect.Parameter(argument, _KEYWORD, annotation=annotation))
        arguments = [parameter.name for parameter in parameters[2:]]
        no_content = status_code == status.HTTP_204_NO_CONTENT

        async def endpoint(**values: Any) -> Any:
            result = call(values["admin"], values["caller"], *(values[a] for a in arguments))
            if inspect.isawaitable(result):
                result = await result
            return Response(status_code=status.HTTP_204_NO_CONTENT) if no_content else result

        endpoint.__name__ = endpoint.__qualname__ = name
        endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            parameters, return_annotation=Response if no_content else response
        )
        self.router.add_api_route(
            path, endpoint, methods=[method], summary=summary, status_code=status_code
        )
