"""The OpenAPI document tells a client generator the truth (the issue behind shared.web.openapi).

Fast checks of what ``test_schemathesis.py`` finds by search: every error an operation can
answer is listed with doisoat's own body (``ErrorRead``), parameters carry the types the routers
check, and the ``Allow`` header of a 405 names what the document names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cache
from typing import Any, cast

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from shared.clock import fixed_clock
from shared.db import create_engine
from shared.web.openapi import ErrorRead
from tests.conftest import ADMIN_KEY, TEST_NOW, bearer, make_settings

ADMIN = bearer(ADMIN_KEY)
ERROR_REF = {"$ref": "#/components/schemas/ErrorRead"}


@cache
def document() -> dict[str, Any]:
    url = "sqlite+aiosqlite:///:memory:"
    return create_app(make_settings(url), engine=create_engine(url)).openapi()


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document()["paths"].items()
        for method, operation in item.items()
    ]


def parameter(path: str, name: str, method: str = "get") -> dict[str, Any]:
    found = [p for p in document()["paths"][path][method]["parameters"] if p["name"] == name]
    assert len(found) == 1, (path, name)
    return cast(dict[str, Any], found[0])


@pytest.fixture
async def api(pg_engine: AsyncEngine, pg_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app on PostgreSQL (what is checked here does not depend on the database)."""
    settings = make_settings(pg_database_url)
    app = create_app(settings, engine=pg_engine, clock=fixed_clock(TEST_NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as client:
        yield client


def error_body(answer: httpx.Response, status: int) -> ErrorRead:
    """The answer is ``status`` with exactly the documented error body."""
    assert answer.status_code == status, (answer.status_code, answer.text[:300])
    body = answer.json()
    assert set(body) <= {"detail", "errors"}, body
    return ErrorRead.model_validate(body)


# ------------------------------------------------------------------------- the document


def test_fastapis_validation_error_is_gone() -> None:
    schemas = document()["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["ErrorRead"]["required"] == ["detail"]
    assert schemas["ErrorRead"]["properties"]["detail"]["type"] == "string"


@pytest.mark.parametrize(("method", "path", "operation"), operations())
def test_every_error_is_documented_with_the_error_body(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    responses = operation["responses"]
    expected = {"422"} | ({"413"} if method in ("post", "put") else set())
    if path.startswith("/api/v1/"):
        expected |= {"401", "403", "503"}
        assert operation["security"] == [{"ApiKey": []}]
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert expected <= set(responses), (method, path, sorted(responses))
    for status, answer in responses.items():
        if status.startswith("2"):
            continue
        content = answer["content"]
        if "text/html" in content:  # the pages of an ack link
            assert path.startswith("/ack/"), (method, path, status)
        else:
            assert content == {"application/json": {"schema": ERROR_REF}}, (method, path, status)


def test_each_operation_lists_what_its_router_answers() -> None:
    paths = document()["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert {"400", "413"} <= statuses("/api/v1/events", "post")
    assert {"404", "409"} <= statuses("/api/v1/discrepancies/{discrepancy_id}/ack", "post")
    assert "404" in statuses("/api/v1/dossiers/{code}", "get")
    assert {"400", "409"} <= statuses("/api/v1/units/{code}", "put")
    for path in ("/api/v1/officers/import", "/api/v1/field-reports/import"):
        assert {"413", "415", "422"} <= statuses(path, "post")
        body = paths[path]["post"]["requestBody"]["content"]
        assert set(body) == {"multipart/form-data", "text/csv"}
    assert {"400", "404", "409", "410"} <= statuses("/ack/{token}", "post")


def test_query_parameters_are_typed_as_the_routers_check_them() -> None:
    for name in ("from", "to"):
        day = parameter("/api/v1/kpis", name)
        assert day["schema"]["type"] == "string" and day["schema"]["format"] == "date"
        assert day["allowEmptyValue"] is True
    for path, name, some in (
        ("/api/v1/discrepancies", "status", "acknowledged"),
        ("/api/v1/discrepancies", "kind", "RETURNED_BUT_OPEN"),
        ("/api/v1/notifications", "status", "dead"),
    ):
        listed = parameter(path, name)
        assert (listed["style"], listed["explode"]) == ("form", False)
        assert some in listed["schema"]["items"]["enum"]
    assert parameter("/api/v1/officers", "role")["schema"]["enum"] == ["handler", "desk", "leader"]
    assert parameter("/api/v1/audit", "since")["schema"]["format"] == "date-time"
    pattern = parameter("/api/v1/discrepancies/{discrepancy_id}/ack", "discrepancy_id", "post")
    assert pattern["schema"]["pattern"] == "^[0-9]{1,18}$"
    for _, _, operation in operations():  # an optional query parameter is never "null"
        for listed in operation.get("parameters", []):
            assert "null" not in str(listed["schema"]), listed


# ---------------------------------------------------------------- the app agrees with it


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/ack/not-a-token", "GET, POST"),
        ("DELETE", "/api/v1/units/000.00.12.H08", "GET, PUT"),
        ("OPTIONS", "/api/v1/officers/canbo.xa", "GET, PUT"),
        ("OPTIONS", "/api/v1/officers/import", "POST"),  # the import, not an officer "import"
        ("DELETE", "/api/v1/units", "GET"),
    ],
)
async def test_allow_names_the_documented_methods(
    api: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    answer = await api.request(method, path, headers=ADMIN)
    assert error_body(answer, 405).detail.endswith(f"(allowed: {allowed}).")
    assert answer.headers["allow"] == allowed


async def test_errors_have_the_documented_body(api: httpx.AsyncClient) -> None:
    invalid = error_body(await api.get("/api/v1/units?limit=0", headers=ADMIN), 422)
    assert [error.loc for error in invalid.errors] == [["query", "limit"]]
    assert error_body(await api.get("/api/v1/units"), 401).errors == []
    error_body(await api.get("/api/v1/units/nowhere", headers=ADMIN), 404)
    not_text = await api.put(
        "/api/v1/units/000.00.12.H08",
        content=b"\xff\xfe{",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    error_body(not_text, 400)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("status=", 200),  # an empty value: no filter (allowEmptyValue)
        ("status=open,acknowledged", 200),
        ("status=open,,resolved", 422),  # an empty item is not one of the values
        ("status=%20", 422),
        ("kind=returned", 422),  # kinds are upper case
    ],
)
async def test_comma_separated_filters_read_as_documented(
    api: httpx.AsyncClient, query: str, status: int
) -> None:
    answer = await api.get(f"/api/v1/discrepancies?{query}", headers=ADMIN)
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/kpis?to=", 200),
        ("/api/v1/kpis?to=%20", 422),
        ("/api/v1/kpis?to=0001-01-01", 422),  # was a 500: the period overflowed UTC
        ("/api/v1/kpis?from=9999-12-01&to=9999-12-31", 422),
        ("/api/v1/audit?since=1700000000", 422),  # a date-time, not Unix time
        ("/api/v1/audit?since=2024-11-06T08:00:00%2B07:00", 200),
    ],
)
async def test_dates_read_as_documented(api: httpx.AsyncClient, path: str, status: int) -> None:
    answer = await api.get(path, headers=ADMIN)
    assert answer.status_code == status, answer.text


async def test_an_officers_active_is_a_json_boolean(api: httpx.AsyncClient) -> None:
    officer = {"full_name": "Lê Thị C", "unit_code": "000.00.12.H08", "role": "desk"}
    for active, status in ((1, 422), ("yes", 422), (False, 200)):
        answer = await api.put(
            "/api/v1/officers/lethic", json={**officer, "active": active}, headers=ADMIN
        )
        assert answer.status_code == status, (active, answer.text)
    blank = await api.put(
        "/api/v1/officers/lethic", json={**officer, "email": " ", "phone": ""}, headers=ADMIN
    )
    assert blank.status_code == 200, blank.text  # a blank contact is none, as documented
