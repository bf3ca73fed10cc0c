"""Schemathesis against the service's own OpenAPI: no input an operation's schema allows (or
deliberately violates) makes the API answer 5xx, on PostgreSQL and on SQLite.

The document is the one the app serves at ``/openapi.json`` over ASGI. Each operation gets a
bounded, deterministic set of cases (positive and negative generation, ``derandomize``), sent
in-process with an admin key; every answer goes through schemathesis' ``not_a_server_error``
check. The cases are drawn first and sent afterwards, on the test's own event loop, so the
database engine never crosses event loops.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import httpx
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err, Ok
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from shared.clock import fixed_clock
from shared.db import create_engine
from shared.web.errors import INSTALLED_MARKER, install_error_handlers
from tests.conftest import ADMIN_KEY, TEST_NOW, bearer, make_settings

MAX_EXAMPLES = 25
BASE_URL = "http://doisoat.test"
BACKENDS = ("postgresql", "sqlite")

Operation = schemathesis.APIOperation[Any, Any, Any, Any]


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every documented operation, read once at collection time."""
    url = "sqlite+aiosqlite:///:memory:"
    app = create_app(make_settings(url), engine=create_engine(url))  # never connects
    document = app.openapi()
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("get", "put", "post", "patch", "delete")
    )


def _params() -> list[Any]:
    params = []
    for method, path in _operations():
        for backend in BACKENDS:
            params.append(pytest.param(backend, method, path, id=f"{backend}-{method}-{path}"))
    return params


@dataclass
class ServerError:
    request: str
    status: int
    answer: str
    server_traceback: str

    def __str__(self) -> str:
        return (
            f"{self.request}\n  → {self.status} {self.answer[:300]}\n"
            f"  server traceback (last lines):\n{self.server_traceback}"
        )


def draw_cases(operation: Operation, count: int) -> list[schemathesis.Case[Operation]]:
    """``count`` cases of one operation, the same on every run (positive and negative)."""
    cases: list[schemathesis.Case[Operation]] = []
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    with contextlib.suppress(Exception):  # an operation with nothing to violate
        strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(strategies))
    def collect(case: schemathesis.Case[Operation]) -> None:
        cases.append(case)

    collect()
    return cases


def _body(prepared: requests.PreparedRequest) -> str | bytes | None:
    """The prepared body: requests leaves text or bytes here (schemathesis streams nothing)."""
    body = prepared.body
    assert body is None or isinstance(body, str | bytes), type(body)
    return body


def _operation(found: Ok[Operation] | Err[InvalidSchema]) -> Operation:
    """An operation of the schema; the app's own document has no invalid one."""
    assert isinstance(found, Ok), found.err()
    return found.ok()


def _describe(prepared: requests.PreparedRequest) -> str:
    body = _body(prepared) or b""
    if isinstance(body, str):
        body = body.encode()
    shown = body[:300].decode("utf-8", errors="backslashreplace")
    more = f" … ({len(body)} bytes)" if len(body) > 300 else ""
    content_type = str(prepared.headers.get("Content-Type", "-"))
    return f"{prepared.method} {prepared.url} [{content_type}] body={shown!r}{more}"


def _server_traceback(records: list[logging.LogRecord]) -> str:
    for record in records:
        if record.exc_info and record.exc_info[1] is not None:
            lines = traceback.format_exception(record.exc_info[1])
            return "".join(lines[-6:])
    return "    (none logged)"


@pytest.fixture
def backend_database_url(request: pytest.FixtureRequest, backend: str) -> str:
    fixture = "pg_database_url" if backend == "postgresql" else "sqlite_database_url"
    return cast(str, request.getfixturevalue(fixture))


@pytest.fixture
async def app_client(backend_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    database_url = backend_database_url
    engine: AsyncEngine = create_engine(database_url)
    app = create_app(make_settings(database_url), engine=engine, clock=fixed_clock(TEST_NOW))
    if not getattr(app.state, INSTALLED_MARKER, False):
        install_error_handlers(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("backend", "method", "path"), _params())
async def test_no_operation_answers_a_server_error(
    app_client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    backend: str,
    method: str,
    path: str,
) -> None:
    served = await app_client.get("/openapi.json")
    assert served.status_code == 200
    schema = schemathesis.openapi.from_dict(orjson.loads(served.content))
    operation = next(
        found
        for found in map(_operation, schema.get_all_operations())
        if found.method.upper() == method and found.path == path
    )
    cases = draw_cases(operation, MAX_EXAMPLES)
    assert cases, f"schemathesis generated nothing for {method} {path}"

    errors: list[ServerError] = []
    for case in cases:
        kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=bearer(ADMIN_KEY))
        prepared = requests.Request(**kwargs).prepare()
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="doisoat"):
            response = await app_client.request(
                prepared.method or method,
                prepared.url or path,
                # httpx.Headers takes str and bytes values alike (each is normalised to bytes);
                # httpx's HeaderTypes alias admits only one kind per mapping.
                headers=dict(prepared.headers),  # type: ignore[arg-type]
                content=_body(prepared),
            )
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except FailureGroup:
            errors.append(
                ServerError(
                    _describe(prepared),
                    response.status_code,
                    response.text,
                    _server_traceback(caplog.records),
                )
            )
        assert response.status_code < 500 or errors  # the check and the status agree
    assert not errors, (
        f"{len(errors)} of {len(cases)} cases of {method} {path} on {backend} answered 5xx; "
        "first:\n" + "\n".join(str(error) for error in errors[:3])
    )
