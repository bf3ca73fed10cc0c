"""Authorisation as a matrix (issue 6, point 2; contract §5; OWASP API1/API5).

For every route of the app × every caller (no key, unknown key, ``source``, ``desk``, ``officer``,
``admin``) × in-unit / out-of-unit, one request whose status is asserted, and whose effect on the
database is asserted too: a refusal, a read, or a batch item refused for its unit changes no row
of any table; an allowed write changes something (and the seeded world is put back afterwards).
The unit keys are taken from both communes (A → B and B → A), on PostgreSQL and SQLite.

``OPERATIONS`` is the table: one entry per way of calling a route, with the expected answer per
caller and scope. ``test_every_route_is_in_the_matrix`` enumerates the app's routes and fails on
any (method, path) the table does not cover, so a new endpoint cannot ship without its row. Routes
another change is adding are listed in ``ROUTES_BEING_ADDED`` (skipped while not mounted).

"Nothing written" compares every row of every table before and after, except the audit log,
which records refusals by design (``TABLES_ALLOWED_TO_RECORD_REFUSALS`` in the conftest). The
number of requests checked is printed at the end of the run ("authorisation cases tried").

Besides the matrix: the covered codes (a key covers the codes merged into its unit, never the
other commune's, nor the parent province), batches where only the items outside the key's units
are refused, lists that never leak another commune's rows, and malformed credentials.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.alerts.links import AckLinks
from services.app.asgi import create_app
from shared.clock import fixed_clock
from shared.config import BaseDoisoatSettings
from tests.conftest import ADMIN_KEY, DESK_KEY, OFFICER_KEY, SOURCE_KEY, TEST_NOW, bearer
from tests.factories import BASE_TIME, dossier_code, progress, snapshot
from tests.security.conftest import (
    ACCOUNTS,
    ACK_SECRET,
    DESK_KEY_B,
    HOMES,
    KEYS,
    KPI_QUERY,
    OFFICER_KEY_B,
    OFFICER_KEY_PROVINCE,
    OLD_A,
    OLD_B,
    OLD_OF,
    OTHER_OF,
    PROVINCE,
    SECURITY_KEYS,
    SOURCE_KEY_B,
    UNIT_A,
    UNIT_B,
    World,
    officer_of,
    record_case,
)

ROLES = ("none", "unknown", "source", "desk", "officer", "admin")
UNIT_ROLES = ("source", "desk", "officer")  # keys bound to units: tried from both communes
SCOPES = ("in-unit", "out-of-unit")


# --------------------------------------------------------------------------- expectations


@dataclass(frozen=True)
class Expect:
    status: int
    writes: bool = False  # allowed to change the database (and must)
    item_refused: bool = False  # a batch answered 200 whose only item was refused for its unit


DENY_401 = Expect(401)
DENY_403 = Expect(403)
READ = Expect(200)
WRITE = Expect(200, writes=True)
CREATE = Expect(201, writes=True)
ITEM_REFUSED = Expect(200, item_refused=True)
BAD_LINK = Expect(400)
EXPIRED_LINK = Expect(410)

Rule = Expect | tuple[Expect, Expect]  # one for both scopes, or (in-unit, out-of-unit)


def api(
    *, source: Rule = DENY_403, desk: Rule = DENY_403, officer: Rule = DENY_403, admin: Rule = READ
) -> dict[str, Rule]:
    """A ``/api/v1`` route: no or unknown key 401; roles as given (contract §5 role table)."""
    return {
        "none": DENY_401,
        "unknown": DENY_401,
        "source": source,
        "desk": desk,
        "officer": officer,
        "admin": admin,
    }


def everyone(rule: Rule) -> dict[str, Rule]:
    """A route outside ``/api/v1``: the bearer key plays no part."""
    return dict.fromkeys(ROLES, rule)


ADMIN_ONLY_READ = api()
ADMIN_ONLY_WRITE = api(admin=WRITE)
IN_UNIT_READ = (READ, DENY_403)


# --------------------------------------------------------------------------- the request table


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    files: Any = None  # multipart/form-data


Build = Callable[[World, str], Call]  # (world, target unit) → the request
Check = Callable[[httpx.Response, World, "Case"], None]


@dataclass(frozen=True)
class Operation:
    method: str
    route: str  # the path template as the app registers it
    build: Build
    rules: Mapping[str, Rule]
    check: Check | None = None  # on 2xx answers: the body belongs to the target unit only
    variant: str = ""
    optional: bool = False  # being added by another change: skipped while not mounted

    @property
    def name(self) -> str:
        return f"{self.method} {self.route}" + (f" ({self.variant})" if self.variant else "")


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def _event_call(world: World, unit: str) -> Call:
    code = f"{unit}-241025-{_tag()}"
    event = snapshot(code, event_id=f"authz-{_tag()}", emitted_at=BASE_TIME, unit=unit)
    return Call("POST", "/api/v1/events", json=[event])


def _check_events(response: httpx.Response, world: World, case: Case) -> None:
    [result] = response.json()["results"]
    if case.expect.item_refused:
        assert result["outcome"] == "refused", result
        assert "forbidden_unit" in result["reason"] and case.target in result["reason"], result
    else:
        assert result["outcome"] == "stored", result


def _check_dossier(response: httpx.Response, world: World, case: Case) -> None:
    body = response.json()
    assert (body["code"], body["unit_code"]) == (dossier_code(1, case.target), case.target)


def _check_listing(response: httpx.Response, world: World, case: Case) -> None:
    body = response.json()
    assert body["total"] == 2, body  # the unit's own and its merged code's
    assert {item["unit_code"] for item in body["items"]} == {case.target}, body
    assert {item["dossier_code"] for item in body["items"]} == {
        dossier_code(1, case.target),
        dossier_code(1, OLD_OF[case.target]),
    }


def _check_ack(response: httpx.Response, world: World, case: Case) -> None:
    body = response.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by"] == ACCOUNTS[case.key or ""]


def _field_report(unit: str) -> dict[str, Any]:
    return {
        "report_id": f"authz-{_tag()}",
        "dossier_code": dossier_code(1, unit),
        "kind": "returned",
        "occurred_at": (BASE_TIME + timedelta(days=3)).isoformat(),
        "officer": f"motcua.{unit}",
        "unit_code": unit,
    }


REGISTER_HEADER = "ma_ho_so,loai,thoi_diem,can_bo,don_vi,ghi_chu\n"


def _register(*units: str) -> bytes:
    rows = [
        f"{dossier_code(2, unit)},tra_ket_qua,25/10/2024 09:{n:02d},motcua.{unit},{unit},"
        for n, unit in enumerate(units)
    ]
    return (REGISTER_HEADER + "\n".join(rows) + "\n").encode()


CSV = {"Content-Type": "text/csv"}


def _check_import(response: httpx.Response, world: World, case: Case) -> None:
    body = response.json()
    if case.expect.item_refused:
        assert (body["accepted"], body["duplicate"], body["refused"]) == (0, 0, 1), body
        assert "forbidden_unit" in body["rows"][0]["reason"], body
        assert case.target in body["rows"][0]["reason"], body
    else:
        assert (body["accepted"], body["refused"]) == (1, 0), body


def _check_kpis(response: httpx.Response, world: World, case: Case) -> None:
    items = response.json()["items"]
    assert [item["unit_code"] for item in items] == [case.target], items


def _check_lateness(response: httpx.Response, world: World, case: Case) -> None:
    items = response.json()["items"]
    assert [item["key"] for item in items] == [case.target], items


def _ack_token(world: World, unit: str) -> str:
    links: AckLinks = world.app.state.ack_links
    return links.token_for(world.discrepancy_ids[unit], officer_of(unit))


def _forged_token(world: World, unit: str) -> str:
    forger = AckLinks(
        "not-the-secret-key", "http://x", timedelta(days=7), clock=fixed_clock(TEST_NOW)
    )
    return forger.token_for(world.discrepancy_ids[unit], "ke.gia.mao")


def _expired_token(world: World, unit: str) -> str:
    links: AckLinks = world.app.state.ack_links
    issued = fixed_clock(TEST_NOW - links.max_age - timedelta(hours=1))
    signer = AckLinks(ACK_SECRET, "http://x", links.max_age, clock=issued)
    return signer.token_for(world.discrepancy_ids[unit], officer_of(unit))


def _check_ack_link(response: httpx.Response, world: World, case: Case) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert dossier_code(1, case.target) in response.text


OPERATIONS: list[Operation] = [
    # --- ingest (contract §1, §5): source keys for dossiers of their units ---
    Operation(
        "POST",
        "/api/v1/events",
        _event_call,
        api(source=(WRITE, ITEM_REFUSED), admin=WRITE),
        _check_events,
    ),
    # --- reads of one dossier, by code (contract §4) ---
    Operation(
        "GET",
        "/api/v1/dossiers/{code}",
        lambda w, unit: Call("GET", f"/api/v1/dossiers/{dossier_code(1, unit)}"),
        api(desk=IN_UNIT_READ, officer=IN_UNIT_READ),
        _check_dossier,
    ),
    # --- discrepancies: list (unit= filter) and acknowledge by id ---
    Operation(
        "GET",
        "/api/v1/discrepancies",
        lambda w, unit: Call("GET", f"/api/v1/discrepancies?unit={unit}&limit=500"),
        api(desk=IN_UNIT_READ, officer=IN_UNIT_READ),
        _check_listing,
        variant="unit=",
    ),
    Operation(
        "POST",
        "/api/v1/discrepancies/{discrepancy_id}/ack",
        lambda w, unit: Call("POST", f"/api/v1/discrepancies/{w.discrepancy_ids[unit]}/ack"),
        api(officer=(WRITE, DENY_403), admin=WRITE),
        _check_ack,
    ),
    # --- field reports (contract §2): desk keys for their units ---
    Operation(
        "POST",
        "/api/v1/field-reports",
        lambda w, unit: Call("POST", "/api/v1/field-reports", json=_field_report(unit)),
        api(desk=(CREATE, DENY_403), admin=CREATE),
    ),
    Operation(
        "POST",
        "/api/v1/field-reports/import",
        lambda w, unit: Call(
            "POST", "/api/v1/field-reports/import", content=_register(unit), headers=CSV
        ),
        api(desk=(WRITE, ITEM_REFUSED), admin=WRITE),
        _check_import,
    ),
    # --- KPIs: officer keys for their units ---
    Operation(
        "GET",
        "/api/v1/kpis",
        lambda w, unit: Call("GET", f"/api/v1/kpis?unit={unit}&{KPI_QUERY}"),
        api(officer=IN_UNIT_READ),
        _check_kpis,
    ),
    Operation(
        "GET",
        "/api/v1/lateness",
        lambda w, unit: Call("GET", f"/api/v1/lateness?unit={unit}&{KPI_QUERY}"),
        api(officer=IN_UNIT_READ),
        _check_lateness,
    ),
    # --- the directory (contract §3): admin only, whoever's unit it is ---
    Operation(
        "PUT",
        "/api/v1/units/{code}",
        lambda w, unit: Call(
            "PUT", f"/api/v1/units/{unit}", json={"name": "Tên mới", "parent_code": PROVINCE}
        ),
        ADMIN_ONLY_WRITE,
    ),
    Operation(
        "GET",
        "/api/v1/units",
        lambda w, unit: Call("GET", "/api/v1/units?limit=500"),
        ADMIN_ONLY_READ,
    ),
    Operation(
        "GET",
        "/api/v1/units/{code}",
        lambda w, unit: Call("GET", f"/api/v1/units/{unit}"),
        ADMIN_ONLY_READ,
    ),
    Operation(
        "PUT",
        "/api/v1/officers/{account}",
        lambda w, unit: Call(
            "PUT",
            f"/api/v1/officers/{officer_of(unit)}",
            json={"full_name": "Tên mới", "unit_code": unit, "role": "leader"},
        ),
        ADMIN_ONLY_WRITE,
    ),
    Operation(
        "GET",
        "/api/v1/officers",
        lambda w, unit: Call("GET", f"/api/v1/officers?unit={unit}"),
        ADMIN_ONLY_READ,
    ),
    Operation(
        "GET",
        "/api/v1/officers/{account}",
        lambda w, unit: Call("GET", f"/api/v1/officers/{officer_of(unit)}"),
        ADMIN_ONLY_READ,
    ),
    Operation(
        "POST",
        "/api/v1/officers/import",
        lambda w, unit: Call(
            "POST",
            "/api/v1/officers/import",
            content=(
                "account,full_name,unit_code,role,email,zalo_user_id,phone,active\n"
                f"moi.{_tag()},Cán bộ mới,{unit},handler,,,,1\n"
            ).encode(),
            headers=CSV,
        ),
        ADMIN_ONLY_WRITE,
    ),
    # --- the alerts outbox: admin only ---
    Operation(
        "GET",
        "/api/v1/notifications",
        lambda w, unit: Call("GET", "/api/v1/notifications?status=pending"),
        ADMIN_ONLY_READ,
    ),
    # --- ack links (contract §4): outside /api/v1, the signed token is the credential ---
    Operation(
        "GET",
        "/ack/{token}",
        lambda w, unit: Call("GET", f"/ack/{_ack_token(w, unit)}"),
        everyone(READ),  # shows, changes nothing (mail scanners open links)
        _check_ack_link,
        variant="genuine token",
    ),
    Operation(
        "GET",
        "/ack/{token}",
        lambda w, unit: Call("GET", f"/ack/{_forged_token(w, unit)}"),
        everyone(BAD_LINK),
        variant="forged token",
    ),
    Operation(
        "POST",
        "/ack/{token}",
        lambda w, unit: Call("POST", f"/ack/{_ack_token(w, unit)}"),
        everyone(WRITE),
        _check_ack_link,
        variant="genuine token",
    ),
    Operation(
        "POST",
        "/ack/{token}",
        lambda w, unit: Call("POST", f"/ack/{_forged_token(w, unit)}"),
        everyone(BAD_LINK),
        variant="forged token",
    ),
    Operation(
        "POST",
        "/ack/{token}",
        lambda w, unit: Call("POST", f"/ack/{_expired_token(w, unit)}"),
        everyone(EXPIRED_LINK),
        variant="expired token",
    ),
    # --- operations endpoints and API docs: public, read-only ---
    Operation("GET", "/metrics", lambda w, unit: Call("GET", "/metrics"), everyone(READ)),
    Operation("GET", "/healthz", lambda w, unit: Call("GET", "/healthz"), everyone(READ)),
    Operation("GET", "/readyz", lambda w, unit: Call("GET", "/readyz"), everyone(READ)),
    Operation("GET", "/openapi.json", lambda w, unit: Call("GET", "/openapi.json"), everyone(READ)),
    Operation("GET", "/docs", lambda w, unit: Call("GET", "/docs"), everyone(READ)),
    Operation(
        "GET",
        "/docs/oauth2-redirect",
        lambda w, unit: Call("GET", "/docs/oauth2-redirect"),
        everyone(READ),
    ),
    Operation("GET", "/redoc", lambda w, unit: Call("GET", "/redoc"), everyone(READ)),
]

# Routes another change is adding (issue 6, point 1). Each runs once the route is mounted and is
# skipped before; extend this list with the expected rule of every new route.
ROUTES_BEING_ADDED: list[Operation] = [
    Operation(
        "GET",
        "/api/v1/audit",
        lambda w, unit: Call("GET", "/api/v1/audit"),
        ADMIN_ONLY_READ,
        optional=True,
    ),
]
OPERATIONS += ROUTES_BEING_ADDED


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    operation: Operation
    role: str
    home: str  # the key's commune (A or B); A for keys without units
    scope: str

    @property
    def key(self) -> str | None:
        return KEYS[(self.role, self.home)]

    @property
    def target(self) -> str:
        """The unit the request is aimed at: the key's own commune, or the other one."""
        own = HOMES[self.home]
        return own if self.scope == "in-unit" else OTHER_OF[own]

    @property
    def expect(self) -> Expect:
        rule = self.operation.rules[self.role]
        if isinstance(rule, Expect):
            return rule
        return rule[0] if self.scope == "in-unit" else rule[1]

    @property
    def ident(self) -> str:
        who = self.role if self.role not in UNIT_ROLES else f"{self.role}@{self.home}"
        return f"{self.operation.name}|{who}|{self.scope}"


def _cases() -> Iterator[Case]:
    for operation in OPERATIONS:
        for role in ROLES:
            for home in ("A", "B") if role in UNIT_ROLES else ("A",):
                for scope in SCOPES:
                    yield Case(operation, role, home, scope)


CASES = list(_cases())


def _headers(key: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**({} if key is None else bearer(key)), **(extra or {})}


async def attempt(
    world: World,
    label: str,
    key: str | None,
    call: Call,
    expect: Expect,
    *,
    restore: bool = True,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Send ``call`` with ``key``; assert the status and that nothing was written unless the
    request may write (then that something was); put the seeded world back unless told not to
    (the ``clean_world`` fixture does it at the end of the test then)."""
    after = None
    try:
        response = await world.client.request(
            call.method,
            call.url,
            json=call.json,
            content=call.content,
            files=call.files,
            headers=_headers(key, call.headers) if headers is None else dict(headers),
        )
        after = await world.state()
        record_case(f"{world.backend}|{label}")
        written = world.written(after)
        assert response.status_code == expect.status, (
            f"{label}: expected {expect.status}, got {response.status_code}: {response.text[:400]}"
        )
        if expect.writes:
            assert written, f"{label}: an allowed write changed nothing"
        else:
            assert not written, f"{label}: answered {response.status_code} but wrote {written}"
        return response
    finally:
        if restore:
            if after is None:
                after = await world.state()
            if after != world.baseline:
                await world.restore(after)


def _app_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app serves; a route without methods (a mount) counts as ``*``."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers were kept as such
        routes: list[Any] = list(app.routes)
    else:
        routes = list(iter_route_contexts(app.routes))
    found: set[tuple[str, str]] = set()
    for route in routes:
        methods = getattr(route, "methods", None)
        path = getattr(route, "path", None) or repr(route)
        for method in sorted(methods or {"*"}):
            if method != "HEAD":
                found.add((method, path))
    return found


def _routes_of(world: World) -> set[tuple[str, str]]:
    cached = getattr(world, "_routes_cache", None)
    if cached is None:
        cached = _app_routes(world.app)
        world._routes_cache = cached  # type: ignore[attr-defined]
    return cached


# --------------------------------------------------------------------------- the matrix


def test_every_route_is_in_the_matrix() -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    settings = BaseDoisoatSettings(
        database_url="sqlite+aiosqlite:///:memory:", api_keys=SECURITY_KEYS, _env_file=None
    )
    served = _app_routes(create_app(settings, engine=engine))
    covered = {(operation.method, operation.route) for operation in OPERATIONS}
    uncovered = sorted(served - covered)
    assert not uncovered, (
        "routes without a row in the authorisation matrix (add an Operation to OPERATIONS in "
        f"tests/security/test_authorization_matrix.py): {uncovered}"
    )
    required = {(op.method, op.route) for op in OPERATIONS if not op.optional}
    assert not sorted(required - served), (
        f"matrix rows for routes no longer served: {required - served}"
    )


def test_the_matrix_is_complete() -> None:
    """Every operation × every caller × both scopes, unit keys from both communes."""
    per_operation = len(ROLES) * len(SCOPES) + len(UNIT_ROLES) * len(SCOPES)
    assert len(CASES) == len(OPERATIONS) * per_operation
    assert len(CASES) >= 400


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.ident)
async def test_authorisation(world: World, case: Case) -> None:
    operation = case.operation
    if operation.optional and (operation.method, operation.route) not in _routes_of(world):
        pytest.skip(f"{operation.route} is not mounted yet (ROUTES_BEING_ADDED)")
    call = operation.build(world, case.target)
    response = await attempt(world, case.ident, case.key, call, case.expect)
    if operation.check is not None and response.status_code < 300:
        operation.check(response, world, case)


# --------------------------------------------------------------------------- covered codes


@pytest.fixture
async def clean_world(world: World) -> AsyncIterator[World]:
    """The shared world, put back as seeded after a test that kept its writes to inspect them."""
    yield world
    after = await world.state()
    if after != world.baseline:
        await world.restore(after)


def _get(url: str) -> Call:
    return Call("GET", url)


READERS = [  # (key, the unit it covers with its merged code)
    (DESK_KEY, UNIT_A),
    (OFFICER_KEY, UNIT_A),
    (DESK_KEY_B, UNIT_B),
    (OFFICER_KEY_B, UNIT_B),
]


async def test_listing_without_filters_never_includes_the_other_commune(world: World) -> None:
    for key, unit in READERS:
        answer = await attempt(
            world,
            f"list all as {ACCOUNTS[key]}",
            key,
            _get("/api/v1/discrepancies?limit=500"),
            READ,
        )
        body = answer.json()
        assert {item["dossier_code"] for item in body["items"]} == {
            dossier_code(1, unit),
            dossier_code(1, OLD_OF[unit]),
        }, body
        assert {item["unit_code"] for item in body["items"]} == {unit}
        assert body["total"] == 2
    for key in (ADMIN_KEY, OFFICER_KEY_PROVINCE):  # admin; a key of the parent covers both
        answer = await attempt(
            world,
            f"list all as {ACCOUNTS[key]}",
            key,
            _get("/api/v1/discrepancies?limit=500"),
            READ,
        )
        assert answer.json()["total"] == 4


@pytest.mark.parametrize(
    ("key", "own"), [(DESK_KEY, UNIT_A), (OFFICER_KEY_B, UNIT_B)], ids=["desk@A", "officer@B"]
)
async def test_listing_filters_never_reach_the_other_commune(
    world: World, key: str, own: str
) -> None:
    other = OTHER_OF[own]
    label = f"list as {ACCOUNTS[key]}"
    for code in (dossier_code(1, other), dossier_code(1, OLD_OF[other])):
        answer = await attempt(
            world,
            f"{label} dossier={code}",
            key,
            _get(f"/api/v1/discrepancies?dossier={code}"),
            READ,
        )
        assert answer.json() == {"items": [], "total": 0}
    answer = await attempt(
        world,
        f"{label} unit=own&dossier=other",
        key,
        _get(f"/api/v1/discrepancies?unit={own}&dossier={dossier_code(1, other)}"),
        READ,
    )
    assert answer.json()["total"] == 0
    merged = await attempt(
        world,
        f"{label} unit=merged own",
        key,
        _get(f"/api/v1/discrepancies?unit={OLD_OF[own]}"),
        READ,
    )
    assert [i["unit_code"] for i in merged.json()["items"]] == [own]
    for unit in (other, OLD_OF[other], PROVINCE, f"{own},{other}", "%25"):
        await attempt(
            world, f"{label} unit={unit}", key, _get(f"/api/v1/discrepancies?unit={unit}"), DENY_403
        )
    # A blank unit= is refused today (403, unit ''); a 200 would be fine if it showed own rows only.
    blank = await world.client.get("/api/v1/discrepancies?unit=", headers=bearer(key))
    record_case(f"{world.backend}|{label} unit=(blank)")
    assert blank.status_code in (200, 403), blank.text
    if blank.status_code == 200:
        assert {i["unit_code"] for i in blank.json()["items"]} <= {own}
    assert not world.written(await world.state())


async def test_dossier_reads_follow_the_covered_codes(world: World) -> None:
    cases = [
        (DESK_KEY, dossier_code(1, OLD_A), READ),  # merged into A: A's keys answer for it
        (DESK_KEY, dossier_code(1, OLD_B), DENY_403),
        (DESK_KEY, dossier_code(1, UNIT_B), DENY_403),
        (OFFICER_KEY_B, dossier_code(1, OLD_B), READ),
        (OFFICER_KEY_B, dossier_code(1, OLD_A), DENY_403),
        (OFFICER_KEY_PROVINCE, dossier_code(1, UNIT_A), READ),
        (OFFICER_KEY_PROVINCE, dossier_code(1, OLD_B), READ),
        (DESK_KEY, dossier_code(999, UNIT_A), Expect(404)),  # never heard of
        (SOURCE_KEY, dossier_code(1, UNIT_A), DENY_403),  # a source key reads nothing
    ]
    for key, code, expect in cases:
        answer = await attempt(
            world, f"read {code} as {ACCOUNTS[key]}", key, _get(f"/api/v1/dossiers/{code}"), expect
        )
        if expect is READ:
            owner = UNIT_A if code.startswith((UNIT_A, OLD_A)) else UNIT_B
            assert answer.json()["unit_code"] == owner  # the unit answering today
        else:
            assert "ChuHoSo" not in answer.text and "Nguyễn" not in answer.text


async def test_acknowledgement_by_id_follows_the_covered_codes(world: World) -> None:
    ids = world.discrepancy_ids

    def ack(ident: object) -> Call:
        return Call("POST", f"/api/v1/discrepancies/{ident}/ack")

    for key, ident, expect in [
        (OFFICER_KEY, ids[OLD_B], DENY_403),
        (OFFICER_KEY, ids[UNIT_B], DENY_403),
        (OFFICER_KEY_B, ids[OLD_A], DENY_403),
        (DESK_KEY, ids[UNIT_A], DENY_403),  # desks read discrepancies, never acknowledge
        (OFFICER_KEY, "abc", Expect(404)),
        (OFFICER_KEY, "99999999", Expect(404)),
        (OFFICER_KEY, "-1", Expect(404)),
        (OFFICER_KEY, ids[OLD_A], WRITE),  # merged into A
        (OFFICER_KEY_PROVINCE, ids[OLD_B], WRITE),  # the parent covers its communes
    ]:
        answer = await attempt(world, f"ack {ident} as {ACCOUNTS[key]}", key, ack(ident), expect)
        if expect is DENY_403:
            assert "RETURNED_BUT_OPEN" not in answer.text  # nothing of the row leaks


async def test_kpis_follow_the_covered_codes(world: World) -> None:
    def kpis(unit: str | None) -> Call:
        return _get(f"/api/v1/kpis?{KPI_QUERY}" + ("" if unit is None else f"&unit={unit}"))

    for key, unit, expect, units in [
        (OFFICER_KEY, None, READ, [UNIT_A]),
        (OFFICER_KEY_B, None, READ, [UNIT_B]),
        (OFFICER_KEY, OLD_A, READ, [UNIT_A]),  # asking for a merged code means its successor
        (OFFICER_KEY, OLD_B, DENY_403, None),
        (OFFICER_KEY, PROVINCE, DENY_403, None),
        (OFFICER_KEY_B, UNIT_A, DENY_403, None),
        (DESK_KEY, UNIT_A, DENY_403, None),
    ]:
        answer = await attempt(world, f"kpis {unit} as {ACCOUNTS[key]}", key, kpis(unit), expect)
        if units is not None:
            assert [item["unit_code"] for item in answer.json()["items"]] == units
    province = await attempt(world, "kpis as canbo.tinh", OFFICER_KEY_PROVINCE, kpis(None), READ)
    assert {UNIT_A, UNIT_B} <= {item["unit_code"] for item in province.json()["items"]}


# --------------------------------------------------------------------------- batches


async def _event_ids(world: World, prefix: str) -> set[str]:
    async with world.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT event_id FROM events WHERE event_id LIKE :p"), {"p": f"{prefix}%"}
        )
        return {row[0] for row in rows}


async def test_event_batch_refuses_only_the_items_outside_the_keys_units(
    clean_world: World,
) -> None:
    world = clean_world
    at = BASE_TIME + timedelta(days=1)

    def snap(n: int, unit: str, code: str | None = None) -> dict[str, Any]:
        code = code or f"{unit}-241025-{n:04d}"
        return snapshot(code, event_id=f"batch-{n}", emitted_at=at, unit=unit)

    def step(n: int, code: str) -> dict[str, Any]:
        return progress(code, event_id=f"batch-{n}", emitted_at=at, step_at=at)

    items = [
        (snap(1, UNIT_A), "stored"),
        (snap(2, OLD_A), "stored"),  # a code merged into A
        (step(3, dossier_code(1, UNIT_A)), "stored"),  # a step of A's known dossier
        (snap(4, UNIT_B), "refused"),
        (snap(5, OLD_B), "refused"),
        (snap(6, PROVINCE), "refused"),  # the parent is not covered by a commune key
        (step(7, dossier_code(1, UNIT_B)), "refused"),  # a step of B's known dossier
        (step(8, f"{UNIT_B}-241025-0008"), "refused"),  # unknown dossier: its code's agency
        (snap(9, UNIT_B, dossier_code(1, UNIT_A)), "refused"),  # A's own dossier pushed to B
    ]
    answer = await attempt(
        world,
        "events mixed batch as source@A",
        SOURCE_KEY,
        Call("POST", "/api/v1/events", json=[item for item, _ in items]),
        WRITE,
        restore=False,
    )
    results = answer.json()["results"]
    assert [r["outcome"] for r in results] == [outcome for _, outcome in items], results
    for result in results:
        if result["outcome"] == "refused":
            assert result["reason"].startswith("forbidden_unit"), result
    assert await _event_ids(world, "batch-") == {"batch-1", "batch-2", "batch-3"}


async def test_a_source_key_cannot_take_over_another_communes_dossier_by_code(
    world: World,
) -> None:
    """A newer snapshot claiming another unit must be covered for the stored unit too."""
    code = dossier_code(1, UNIT_A)  # known, answered by A
    newer = snapshot(
        code,
        event_id=f"takeover-{_tag()}",
        emitted_at=BASE_TIME + timedelta(days=1),
        unit=UNIT_B,
        status=10,
    )
    answer = await attempt(
        world,
        "events: snapshot of A's dossier by source@B",
        SOURCE_KEY_B,
        Call("POST", "/api/v1/events", json=[newer]),
        ITEM_REFUSED,
    )
    [result] = answer.json()["results"]
    assert result["outcome"] == "refused", result


async def test_register_import_refuses_only_the_rows_outside_the_keys_units(
    clean_world: World,
) -> None:
    world = clean_world
    units = (UNIT_A, OLD_A, UNIT_B, OLD_B, PROVINCE)
    answer = await attempt(
        world,
        "field-report import mixed as desk@A",
        DESK_KEY,
        Call("POST", "/api/v1/field-reports/import", content=_register(*units), headers=CSV),
        WRITE,
        restore=False,
    )
    body = answer.json()
    assert (body["accepted"], body["duplicate"], body["refused"]) == (2, 0, 3), body
    assert [row["outcome"] for row in body["rows"]] == ["accepted"] * 2 + ["refused"] * 3
    for row, unit in zip(body["rows"][2:], units[2:], strict=True):
        assert "forbidden_unit" in row["reason"] and unit in row["reason"], row
    async with world.engine.connect() as connection:
        stored = await connection.execute(
            text("SELECT unit_code FROM field_reports WHERE channel = 'csv'")
        )
        assert sorted(row[0] for row in stored) == sorted([UNIT_A, OLD_A])


async def test_register_import_as_a_form_refuses_the_other_communes_rows(world: World) -> None:
    form = {"file": ("so-theo-doi.csv", _register(UNIT_A, OLD_A), "text/csv")}
    answer = await attempt(
        world,
        "field-report import multipart as desk@B",
        DESK_KEY_B,
        Call("POST", "/api/v1/field-reports/import", files=form),
        ITEM_REFUSED,
    )
    body = answer.json()
    assert (body["accepted"], body["refused"]) == (0, 2), body


async def test_reusing_another_communes_report_id_writes_nothing(world: World) -> None:
    theirs = {
        "report_id": f"seed-report-{UNIT_A}",
        "dossier_code": dossier_code(1, UNIT_A),
        "kind": "returned",
        "occurred_at": (BASE_TIME + timedelta(days=2)).isoformat(),
        "officer": f"motcua.{UNIT_A}",
        "unit_code": UNIT_A,
    }
    mine = {**theirs, "dossier_code": dossier_code(1, UNIT_B), "unit_code": UNIT_B}
    for body, expect in ((theirs, DENY_403), (mine, Expect(409))):
        answer = await attempt(
            world,
            f"field report with A's report_id as desk@B ({body['unit_code']})",
            DESK_KEY_B,
            Call("POST", "/api/v1/field-reports", json=body),
            expect,
        )
        assert dossier_code(1, UNIT_A) not in answer.text  # nothing of A's report comes back


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Basic {SOURCE_KEY}"},
        {"Authorization": SOURCE_KEY},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
        {"Authorization": f"Bearer {SOURCE_KEY.upper()}"},
        {"Authorization": f"Bearer {SOURCE_KEY[:-1]}"},
        {"Authorization": f"Bearer {SOURCE_KEY}x"},
        {"Authorization": f"Bearer {SOURCE_KEY} {SOURCE_KEY}"},
        {"X-API-Key": SOURCE_KEY},
    ],
    ids=lambda headers: repr(headers)[:40],
)
async def test_malformed_credentials_are_401_and_write_nothing(
    world: World, headers: dict[str, str]
) -> None:
    await attempt(
        world,
        f"events with {sorted(headers)}",
        None,
        _event_call(world, UNIT_A),
        DENY_401,
        headers=headers,
    )
    await attempt(
        world,
        f"events with api_key= and {sorted(headers)}",
        None,
        Call("POST", f"/api/v1/events?api_key={SOURCE_KEY}", json=[]),
        DENY_401,
        headers=headers,
    )


async def test_without_configured_keys_every_api_route_answers_503(world: World) -> None:
    """No keys at all (none configured, none stored): every /api/v1 call 503, nothing written."""
    settings = BaseDoisoatSettings(
        database_url="sqlite+aiosqlite://", secret_key=ACK_SECRET, _env_file=None
    )
    bare = create_app(settings, engine=world.engine, clock=fixed_clock(TEST_NOW))
    served = _app_routes(bare)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=bare), base_url="http://doisoat.test"
    ) as http:
        for operation in OPERATIONS:
            if not operation.route.startswith("/api/v1/"):
                continue
            if (operation.method, operation.route) not in served:
                continue
            call = operation.build(world, UNIT_A)
            answer = await http.request(
                call.method,
                call.url,
                json=call.json,
                content=call.content,
                headers=_headers(ADMIN_KEY, call.headers),
            )
            after = await world.state()
            record_case(f"{world.backend}|no keys configured: {operation.name}")
            assert answer.status_code == 503, (operation.name, answer.status_code, answer.text)
            assert not world.written(after), (operation.name, world.written(after))
            if after != world.baseline:
                await world.restore(after)
