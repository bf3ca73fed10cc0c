"""Input limits (issue 6, point 4): each limit is a clear 4xx with a bilingual message, not a 500.

Body sizes (events 10 MiB, a field report 64 KiB, registers 10 MiB / 50,000 rows, officer CSVs
5 MiB / 20,000 rows), the number of events per request, JSON nesting depth, pagination caps,
malformed ids and path parameters, and bodies whose Content-Type does not match what the
endpoint takes. The app is the one ``create_app`` builds, with
:func:`shared.web.errors.install_error_handlers` (installed here if ``create_app`` does not
yet), on PostgreSQL and SQLite.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from shared.clock import fixed_clock
from shared.db import create_engine
from shared.events import json_depth
from shared.models import Event, Unit
from shared.web.deps import MAX_OFFSET
from shared.web.errors import (
    INSTALLED_MARKER,
    MAX_JSON_BODY_BYTES,
    MAX_JSON_CONTAINERS,
    MAX_JSON_DEPTH,
    TOO_DEEP,
    TOO_MANY_CONTAINERS,
    JsonTooDeepError,
    body_depth_exceeds,
    check_json_depth,
    inspect_json_body,
    install_error_handlers,
)
from tests.conftest import (
    ADMIN_KEY,
    DESK_KEY,
    OFFICER_KEY,
    SOURCE_KEY,
    TEST_NOW,
    bearer,
    make_settings,
)
from tests.factories import BASE_TIME, UNIT, dossier_code, snapshot

ADMIN = bearer(ADMIN_KEY)
SOURCE = bearer(SOURCE_KEY)
DESK = bearer(DESK_KEY)
OFFICER = bearer(OFFICER_KEY)
JSON = {"Content-Type": "application/json"}
MIB = 1024 * 1024
EVENTS = "/api/v1/events"
REPORTS = "/api/v1/field-reports"
REGISTER = "/api/v1/field-reports/import"
OFFICERS_IMPORT = "/api/v1/officers/import"
REGISTER_HEADER = "ma_ho_so,loai,thoi_diem,can_bo,don_vi,ghi_chu\n"
OFFICERS_HEADER = "account,full_name,unit_code,role,email,zalo_user_id,phone,active\n"


def build_app(engine: AsyncEngine, database_url: str) -> Any:
    """The real app; the bilingual handlers are installed unless create_app already did."""
    app = create_app(make_settings(database_url), engine=engine, clock=fixed_clock(TEST_NOW))
    if not getattr(app.state, INSTALLED_MARKER, False):
        install_error_handlers(app)
    return app


@pytest.fixture
async def api(engine: AsyncEngine, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sees a 500 as an answer (instead of the app's exception re-raised)."""
    transport = httpx.ASGITransport(app=build_app(engine, database_url), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as http:
        yield http


def assert_bilingual(answer: httpx.Response, status: int, *fragments: str) -> str:
    """The status, and a ``detail`` reading "<tiếng Việt> / <English>" with ``fragments``."""
    assert answer.status_code == status, (answer.status_code, answer.text[:500])
    detail = answer.json()["detail"]
    assert isinstance(detail, str), detail
    vietnamese, separator, english = detail.partition(" / ")
    assert separator, f"not bilingual: {detail!r}"
    assert not vietnamese.isascii(), f"no Vietnamese before ' / ': {detail!r}"
    assert re.search(r"[A-Za-z]{3,}", english), f"no English after ' / ': {detail!r}"
    for fragment in fragments:
        assert fragment in detail, (fragment, detail)
    return detail


async def count(engine: AsyncEngine, model: Any) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(model))).scalar_one()


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` levels of lists around ``leaf``, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def deep_text(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def report(**changes: Any) -> dict[str, Any]:
    body = {
        "report_id": "limits-1",
        "dossier_code": dossier_code(1),
        "kind": "returned",
        "occurred_at": "2024-11-05T10:00:00+07:00",
        "officer": "lethic.motcua",
        "unit_code": UNIT,
    }
    body.update(changes)
    return body


# --------------------------------------------------------------------- the depth helper


def test_json_depth_counts_containers_only() -> None:
    assert json_depth("text") == 0
    assert json_depth(None) == 0
    assert json_depth([]) == 1
    assert json_depth({"a": [1, {"b": []}]}) == 4
    assert json_depth([[], [[[]]], {}]) == 4


def test_check_json_depth_is_iterative_on_a_hundred_thousand_levels() -> None:
    document = nested(100_000)
    with pytest.raises(JsonTooDeepError, match="32"):
        check_json_depth(document)
    check_json_depth(nested(32))
    with pytest.raises(JsonTooDeepError):
        check_json_depth(nested(33))
    check_json_depth(nested(500), limit=500)


def test_body_depth_check_leaves_non_json_to_the_router() -> None:
    assert not body_depth_exceeds(b"ma_ho_so,loai\n[[[[")
    assert not body_depth_exceeds(b'{"a": [1, 2')  # malformed, but not deep: the router says so
    assert not body_depth_exceeds(b'["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]')  # in a string
    assert body_depth_exceeds(deep_text(33))
    assert body_depth_exceeds(deep_text(10_000))  # past orjson's own 1024 limit
    assert not body_depth_exceeds(deep_text(32))


def test_the_body_check_agrees_with_the_document_check() -> None:
    """Strings full of brackets, quotes and backslashes never fool the byte-level check."""
    rng = random.Random(6)

    def value(depth: int) -> Any:
        if depth == 0 or rng.random() < 0.2:
            return rng.choice(['a\\"[', 1, None, "\\\\", "]]{", '"', "\\", 2.5])
        if rng.random() < 0.5:
            return [value(depth - 1) for _ in range(rng.randint(0, 3))]
        return {f'{n}"[\\': value(depth - 1) for n in range(rng.randint(0, 3))}

    outcomes = []
    for _ in range(2000):
        document = nested(rng.randint(1, 36), value(rng.randint(1, 12)))
        body = json.dumps(document).encode()
        expected = TOO_DEEP if json_depth(document) > MAX_JSON_DEPTH else None
        assert inspect_json_body(body) == expected, body[:200]
        outcomes.append(expected)
    assert 100 < outcomes.count(TOO_DEEP) < 1900


def test_the_body_check_stays_fast_on_hostile_bodies() -> None:
    """About 10 MiB each, built to be costly; the check never builds the document."""
    bodies = {
        "empty lists": b"[" + b",".join([b"[]"] * 3_000_000) + b"]",
        "empty strings": b"[" + b",".join([b'""'] * 3_000_000) + b"]",
        "escapes": b"[" + b",".join([b'"a\\\\\\"["'] * 900_000) + b"]",
        "just under the depth": b"[" + b",".join([b"[" * 31 + b"]" * 31] * 150_000) + b"]",
        "ten thousand deep": b"[" * 10_000 + b"]" * 10_000,
    }
    for name, body in bodies.items():
        started = time.perf_counter()
        inspect_json_body(body)
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0, (name, elapsed)


async def test_too_many_arrays_is_413(api: httpx.AsyncClient) -> None:
    body = b"[" + b",".join([b"[]"] * (MAX_JSON_CONTAINERS + 1)) + b"]"
    assert inspect_json_body(body) == TOO_MANY_CONTAINERS
    answer = await api.post(EVENTS, content=body, headers={**SOURCE, **JSON})
    assert_bilingual(answer, 413, "arrays and objects")


# ------------------------------------------------------------------------ body sizes


async def test_events_body_over_10_mib_is_413(api: httpx.AsyncClient) -> None:
    body = b'["' + b"x" * (10 * MIB) + b'"]'
    answer = await api.post(EVENTS, content=body, headers={**SOURCE, **JSON})
    assert_bilingual(answer, 413, str(10 * MIB))


async def test_events_body_over_10_mib_without_content_length_is_413(
    api: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'["'
        for _ in range(11):
            yield b"x" * MIB
        yield b'"]'

    answer = await api.post(EVENTS, content=chunks(), headers={**SOURCE, **JSON})
    assert "content-length" not in answer.request.headers
    assert_bilingual(answer, 413)


async def test_more_than_1000_events_is_413(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    items = [
        snapshot(dossier_code(n % 50), event_id=f"many-{n}", emitted_at=BASE_TIME)
        for n in range(1001)
    ]
    answer = await api.post(EVENTS, content=orjson.dumps(items), headers={**SOURCE, **JSON})
    assert_bilingual(answer, 413, "1000")
    assert await count(engine, Event) == 0


async def test_field_report_over_64_kib_is_413(api: httpx.AsyncClient) -> None:
    body = orjson.dumps(report(note="n" * (64 * 1024)))
    answer = await api.post(REPORTS, content=body, headers={**DESK, **JSON})
    assert_bilingual(answer, 413, str(64 * 1024))


async def test_register_over_10_mib_is_413(api: httpx.AsyncClient) -> None:
    line = f"{dossier_code(1)},tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT},{'x' * 200}\n"
    body = (REGISTER_HEADER + line * (10 * MIB // len(line) + 1)).encode()
    assert len(body) > 10 * MIB
    as_text = await api.post(REGISTER, content=body, headers={**DESK, "Content-Type": "text/csv"})
    assert_bilingual(as_text, 413)
    as_file = await api.post(REGISTER, files={"file": ("so.csv", body, "text/csv")}, headers=DESK)
    assert_bilingual(as_file, 413)


async def test_register_over_50000_rows_is_413(api: httpx.AsyncClient) -> None:
    line = f"{dossier_code(1)},tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT},\n"
    body = (REGISTER_HEADER + line * 50_001).encode()
    assert len(body) < 10 * MIB
    answer = await api.post(REGISTER, content=body, headers={**DESK, "Content-Type": "text/csv"})
    assert_bilingual(answer, 413, "50000")


async def test_officers_csv_over_its_limits_is_413(api: httpx.AsyncClient) -> None:
    row = f"acc,Nguyễn Văn A,{UNIT},handler,,,,1\n"
    too_many = (OFFICERS_HEADER + row * 20_001).encode()
    answer = await api.post(
        OFFICERS_IMPORT, content=too_many, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert_bilingual(answer, 413, "20000")
    too_big = (OFFICERS_HEADER + "x" * (5 * MIB + 1)).encode()
    answer = await api.post(
        OFFICERS_IMPORT, files={"file": ("can-bo.csv", too_big, "text/csv")}, headers=ADMIN
    )
    assert_bilingual(answer, 413)


async def test_a_json_body_over_the_cap_is_413_even_where_the_router_has_no_limit(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    """``PUT /units`` reads its body through FastAPI, which has no limit of its own."""
    body = orjson.dumps({"name": "x" * MAX_JSON_BODY_BYTES})
    answer = await api.put("/api/v1/units/U1", content=body, headers={**ADMIN, **JSON})
    assert_bilingual(answer, 413)
    assert await count(engine, Unit) == 0


# ----------------------------------------------------------------------- JSON depth


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
async def test_json_ten_thousand_levels_deep_is_422_on_events(
    api: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {**SOURCE, **({"Content-Type": content_type} if content_type else {})}
    answer = await api.post(EVENTS, content=deep_text(10_000), headers=headers)
    assert_bilingual(answer, 422, "JSON nested too deeply")


@pytest.mark.parametrize(
    ("method", "url", "key"),
    [
        ("PUT", "/api/v1/units/U1", ADMIN),
        ("PUT", "/api/v1/officers/nguyenvana", ADMIN),
        ("POST", REPORTS, DESK),
        ("POST", EVENTS, SOURCE),
    ],
)
async def test_deep_json_is_refused_on_every_json_endpoint(
    api: httpx.AsyncClient, method: str, url: str, key: dict[str, str]
) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 300, 10_000):
        answer = await api.request(method, url, content=deep_text(depth), headers={**key, **JSON})
        assert_bilingual(answer, 422, f"at most {MAX_JSON_DEPTH} levels")


async def test_deep_json_in_a_multipart_body_is_still_a_4xx(api: httpx.AsyncClient) -> None:
    """Forms are not inspected by the guard; the events router then refuses the body."""
    answer = await api.post(
        EVENTS,
        content=deep_text(10_000),
        headers={**SOURCE, "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert_bilingual(answer, 400, "Invalid JSON")


@pytest.mark.parametrize("extra_depth", [MAX_JSON_DEPTH - 1, 300])
async def test_deep_nesting_inside_event_data_is_refused(
    api: httpx.AsyncClient, engine: AsyncEngine, extra_depth: int
) -> None:
    """Envelope (1) → data (2) → the field's lists: past 32 levels in all, refused, never a 500.

    (Without the guard, 300 levels pass the schema, then orjson refuses to write past 255
    levels while storing: a 500 over HTTP.)
    """
    event = snapshot(dossier_code(7), event_id="deep-data", emitted_at=BASE_TIME)
    event["data"]["Extra"] = nested(extra_depth)
    body = json.dumps([event]).encode()  # orjson itself writes at most 255 levels
    answer = await api.post(EVENTS, content=body, headers={**SOURCE, **JSON})
    assert_bilingual(answer, 422, "JSON nested too deeply")
    assert await count(engine, Event) == 0


async def test_nesting_up_to_the_limit_is_accepted(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    event = snapshot(dossier_code(8), event_id="just-deep-enough", emitted_at=BASE_TIME)
    event["data"]["Extra"] = nested(MAX_JSON_DEPTH - 3)  # [ → envelope → data → Extra…
    body = orjson.dumps([event])
    assert json_depth(orjson.loads(body)) == MAX_JSON_DEPTH
    answer = await api.post(EVENTS, content=body, headers={**SOURCE, **JSON})
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["outcome"] == "stored"


# ------------------------------------------------------------------------ pagination


def list_endpoints() -> list[str]:
    """Every GET operation of the OpenAPI document that pages with ``limit``/``offset``."""
    url = "sqlite+aiosqlite:///:memory:"
    document = create_app(make_settings(url), engine=create_engine(url)).openapi()
    return sorted(
        path
        for path, operations in document["paths"].items()
        if "get" in operations
        and {"limit", "offset"}
        <= {parameter["name"] for parameter in operations["get"].get("parameters", [])}
    )


LIST_ENDPOINTS = list_endpoints()


def test_the_list_endpoints_are_found() -> None:
    assert {"/api/v1/discrepancies", "/api/v1/units", "/api/v1/officers"} <= set(LIST_ENDPOINTS)
    assert "/api/v1/notifications" in LIST_ENDPOINTS


OUT_OF_RANGE = [
    ({"limit": "501"}, "query.limit: Input should be less than or equal to 500"),
    ({"limit": "0"}, "query.limit: Input should be greater than or equal to 1"),
    ({"offset": "-1"}, "query.offset: Input should be greater than or equal to 0"),
    ({"limit": "abc"}, "query.limit: Input should be a valid integer"),
    ({"offset": "1.5"}, "query.offset: Input should be a valid integer"),
    ({"limit": "9" * 40}, "query.limit: Input should be less than or equal to 500"),
]


@pytest.mark.parametrize("path", LIST_ENDPOINTS)
async def test_pagination_out_of_range_is_422(api: httpx.AsyncClient, path: str) -> None:
    for params, says in OUT_OF_RANGE:
        answer = await api.get(path, params=params, headers=ADMIN)
        detail = assert_bilingual(answer, 422, says)
        assert detail.startswith("Dữ liệu không hợp lệ. / Invalid request: "), (params, detail)


async def test_pagination_in_range_is_200(api: httpx.AsyncClient) -> None:
    for path in LIST_ENDPOINTS:
        answer = await api.get(path, params={"limit": 500, "offset": MAX_OFFSET}, headers=ADMIN)
        assert answer.status_code == 200, (path, answer.text)


async def test_an_offset_past_64_bits_is_a_4xx(api: httpx.AsyncClient) -> None:
    statuses = {}
    for path in LIST_ENDPOINTS:
        answer = await api.get(path, params={"offset": 10**20}, headers=ADMIN)
        statuses[path] = answer.status_code
    assert all(400 <= status < 500 for status in statuses.values()), statuses


# ------------------------------------------------------------------ ids and path params


@pytest.mark.parametrize(
    "discrepancy_id", ["abc", "1e3", "-1", "0x10", "9" * 40, "١٢", "%20", "null"]
)
async def test_a_non_numeric_discrepancy_id_is_404(
    api: httpx.AsyncClient, discrepancy_id: str
) -> None:
    answer = await api.post(f"/api/v1/discrepancies/{discrepancy_id}/ack", headers=OFFICER)
    assert_bilingual(answer, 404, "No discrepancy")


async def test_a_superscript_digit_as_discrepancy_id_is_404(api: httpx.AsyncClient) -> None:
    answer = await api.post("/api/v1/discrepancies/²/ack", headers=OFFICER)
    assert_bilingual(answer, 404, "No discrepancy")


@pytest.mark.parametrize(
    "code",
    ["Hồ-sơ-số-1", "000.00.12.H08-241021-٠٠٠١", "🙂", "a b", "Đơn vị", "x" * 2000, "‮evil"],
)
async def test_unicode_in_path_params_is_a_clean_answer(api: httpx.AsyncClient, code: str) -> None:
    dossier = await api.get(f"/api/v1/dossiers/{code}", headers=OFFICER)
    assert_bilingual(dossier, 404)
    unit = await api.get(f"/api/v1/units/{code}", headers=ADMIN)
    assert_bilingual(unit, 404)
    officer = await api.get(f"/api/v1/officers/{code}", headers=ADMIN)
    assert_bilingual(officer, 404)
    put_unit = await api.put(f"/api/v1/units/{code}", json={"name": "Tên"}, headers=ADMIN)
    assert_bilingual(put_unit, 422, "path.code")
    link = await api.get(f"/ack/{code}")
    assert link.status_code == 400  # an HTML page for people, not JSON


async def test_a_unicode_account_is_accepted_and_returned_verbatim(api: httpx.AsyncClient) -> None:
    account = "nguyễn.văn.ánh"
    body = {"full_name": "Nguyễn Văn Ánh", "unit_code": UNIT, "role": "handler"}
    put = await api.put(f"/api/v1/officers/{account}", json=body, headers=ADMIN)
    assert put.status_code == 200, put.text
    read = await api.get(f"/api/v1/officers/{account}", headers=ADMIN)
    assert read.json()["account"] == account


# -------------------------------------------------------------- Content-Type mismatches


async def test_a_form_or_csv_sent_to_the_events_endpoint_is_400(api: httpx.AsyncClient) -> None:
    form = await api.post(EVENTS, data={"event_id": "x"}, headers=SOURCE)
    assert_bilingual(form, 400, "Invalid JSON")
    csv = await api.post(
        EVENTS, content=b"event_id,type\nx,y\n", headers={**SOURCE, "Content-Type": "text/csv"}
    )
    assert_bilingual(csv, 400, "Invalid JSON")
    files = await api.post(
        EVENTS, files={"file": ("e.json", b"[]", "application/json")}, headers=SOURCE
    )
    assert_bilingual(files, 400, "Invalid JSON")


@pytest.mark.parametrize("url,key", [(REGISTER, DESK), (OFFICERS_IMPORT, ADMIN)])
@pytest.mark.parametrize("content_type", ["application/json", "application/xml", "image/png"])
async def test_a_csv_import_in_another_media_type_is_415(
    api: httpx.AsyncClient, url: str, key: dict[str, str], content_type: str
) -> None:
    answer = await api.post(url, content=b'{"a": 1}', headers={**key, "Content-Type": content_type})
    assert_bilingual(answer, 415, "text/csv")


async def test_a_broken_multipart_register_is_422(api: httpx.AsyncClient) -> None:
    answer = await api.post(
        REGISTER,
        content=b"--nope\r\n\r\n",
        headers={**DESK, "Content-Type": "multipart/form-data; boundary=other"},
    )
    assert answer.status_code in (400, 422), answer.text
    assert_bilingual(answer, answer.status_code)


async def test_a_unit_sent_as_text_is_422(api: httpx.AsyncClient) -> None:
    answer = await api.put(
        "/api/v1/units/U1",
        content=b'{"name": "A"}',
        headers={**ADMIN, "Content-Type": "text/plain"},
    )
    assert_bilingual(answer, 422, "body")


async def test_malformed_json_is_a_bilingual_4xx(api: httpx.AsyncClient) -> None:
    unit = await api.put("/api/v1/units/U1", content=b'{"name": ', headers={**ADMIN, **JSON})
    assert_bilingual(unit, 422, "Malformed JSON body")
    events = await api.post(EVENTS, content=b'[{"event_id": ', headers={**SOURCE, **JSON})
    assert_bilingual(events, 400, "Invalid JSON")
    field_report = await api.post(
        REPORTS, content=b"{'single': 'quotes'}", headers={**DESK, **JSON}
    )
    assert_bilingual(field_report, 422, "Invalid JSON")
    not_utf8 = await api.post(REPORTS, content=b'{"note": "\xff"}', headers={**DESK, **JSON})
    assert_bilingual(not_utf8, 422)


async def test_an_empty_body_is_a_bilingual_4xx(api: httpx.AsyncClient) -> None:
    unit = await api.put("/api/v1/units/U1", headers={**ADMIN, **JSON})
    assert_bilingual(unit, 422, "body: Field required")
    events = await api.post(EVENTS, headers={**SOURCE, **JSON})
    assert_bilingual(events, 400)


async def test_validation_errors_never_echo_the_input(api: httpx.AsyncClient) -> None:
    secret = "012345678901-so-giay-to"
    answer = await api.put(
        "/api/v1/officers/acc", json={"full_name": secret, "role": "chief"}, headers=ADMIN
    )
    detail = assert_bilingual(answer, 422, "body.role", "body.unit_code: Field required")
    assert secret not in answer.text
    assert "Dữ liệu không hợp lệ" in detail
    assert [error["loc"] for error in answer.json()["errors"]] == [
        ["body", "unit_code"],
        ["body", "role"],
    ]


# ------------------------------------------------------------------ routes and methods


async def test_an_unknown_route_is_a_bilingual_404(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/v1/khong-co", headers=ADMIN)
    assert_bilingual(answer, 404, "no route GET /api/v1/khong-co")


async def test_a_wrong_method_is_a_bilingual_405_with_allow(api: httpx.AsyncClient) -> None:
    answer = await api.delete("/api/v1/units", headers=ADMIN)
    assert_bilingual(answer, 405, "DELETE")
    assert "GET" in answer.headers["allow"]


async def test_refusals_that_were_already_bilingual_are_unchanged(api: httpx.AsyncClient) -> None:
    missing_key = await api.get("/api/v1/units")
    assert missing_key.json()["detail"].startswith("Thiếu hoặc sai khóa API. / Missing")
    assert missing_key.headers["www-authenticate"] == "Bearer"
    wrong_role = await api.get("/api/v1/units", headers=DESK)
    assert_bilingual(wrong_role, 403)


def test_install_is_idempotent(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    app = create_app(make_settings(url), engine=create_engine(url))
    install_error_handlers(app)
    middleware = len(app.user_middleware)
    install_error_handlers(app)
    assert len(app.user_middleware) == middleware
    assert getattr(app.state, INSTALLED_MARKER) is True
