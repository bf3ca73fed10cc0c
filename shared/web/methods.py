"""The methods a URL takes, for the ``Allow`` header of a 405 (and of an ``OPTIONS`` request).

Starlette names the methods of the first route whose path matches, so ``/units/{code}`` (PUT
declared before GET) said ``Allow: PUT`` and ``/ack/{token}`` ``Allow: GET``. Here every route
whose path matches counts, and, as OpenAPI resolves a URL, a path without parameters comes
before templated ones: ``/api/v1/officers/import`` is the import (``POST``), not an officer
called "import".
"""

from __future__ import annotations

from typing import Final

from fastapi import Request
from fastapi.routing import iter_route_contexts
from starlette.routing import Match

_ORDER: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def allowed_methods(request: Request) -> str | None:
    """``"GET, PUT"``: the methods of the most specific routes matching the request's path."""
    found: dict[int, set[str]] = {}
    for route in iter_route_contexts(request.app.routes):
        methods = route.methods
        if not methods:
            continue
        match, _ = route.matches(dict(request.scope))
        if match is not Match.NONE:
            parameters = len(getattr(route, "param_convertors", None) or ())
            found.setdefault(parameters, set()).update(methods)
    if not found:
        return None
    methods = found[min(found)]
    return ", ".join(sorted(methods, key=lambda m: (_ORDER.index(m) if m in _ORDER else 99, m)))
