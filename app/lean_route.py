"""An APIRoute for hot endpoints that take the request and optional text query parameters only.

FastAPI solves an endpoint's parameters per request (query values through pydantic, a
sub-response, exit stacks for dependencies): about 30 µs of event-loop time on /predict, whose
only parameters are `request` and the optional strings `model` and `role` (issue 26). Such an
endpoint is called here with `request.query_params.get(name)` for each, which is what the
solved value is: any string validates as `str | None`, and the last repeated value wins.

The route is still an APIRoute: OpenAPI documents the same parameters. An endpoint with
anything else (a dependency, a body or path parameter, a non-text query) is served by FastAPI's
own handler, so nothing is lost by declaring a route this way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

TEXT = (str | None,)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def query_names(dependant: Dependant) -> list[str] | None:
    """The query parameters' names when the endpoint takes `request` and optional text query
    parameters only (no default but None), else None."""
    others = (
        dependant.path_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
        dependant.dependencies,
    )
    special = (
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    if dependant.request_param_name != "request" or any(others) or any(special):
        return None
    if not inspect.iscoroutinefunction(dependant.call):  # FastAPI runs a plain def in a thread
        return None
    names = []
    for field in dependant.query_params:
        info = field.field_info
        if info.annotation not in TEXT or info.is_required() or info.default is not None:
            return None
        names.append(field.alias)
    return names


class TextQueryRoute(APIRoute):
    """See the module: the endpoint is called with the request and its query values."""

    @property
    def lean(self) -> bool:
        """Whether requests skip FastAPI's parameter solving."""
        return query_names(self.dependant) is not None

    def get_route_handler(self) -> Handler:
        names = query_names(self.dependant)
        if names is None:
            return super().get_route_handler()
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            query = request.query_params
            response = await endpoint(request, **{n: query.get(n) for n in names})
            if not isinstance(response, Response):  # FastAPI would serialise it: no such route
                raise TypeError(f"{endpoint.__name__} returned {type(response).__name__}")
            return response

        return handle
