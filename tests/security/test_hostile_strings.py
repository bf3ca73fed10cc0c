"""Hostile and broken input (issue 6, point 5), (c): hostile strings through the API.

SQL-injection-shaped strings and long Unicode strings (Vietnamese with diacritics, NFD combining
marks, emoji, RTL marks, control characters) are stored and returned verbatim by the API in
every free-text field, on both backends; the fields the contract bounds refuse them cleanly.
Inputs that once reached a 500 are kept at the end."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import quote

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app.asgi import create_app
from shared.clock import fixed_clock
from shared.db import create_engine
from shared.models import Dossier, Event
from shared.web.errors import INSTALLED_MARKER, install_error_handlers
from tests.conftest import (
    ADMIN_KEY,
    DESK_KEY,
    OFFICER_KEY,
    SOURCE_KEY,
    TEST_NOW,
    bearer,
    make_settings,
)
from tests.factories import BASE_TIME, UNIT, dossier_code, progress, snapshot
from tests.security.hostile import BACKENDS, poison

INJECTION = (
    "'; DROP TABLE dossiers; --",
    '" OR 1=1 --',
    "' OR '1'='1",
    "$$; SELECT pg_sleep(30); $$",
    "1); DELETE FROM events WHERE (1=1",
    "Robert'); DROP TABLE units;--",
    "\\'; TRUNCATE dead_letters; --",
    '%\' AND 1=0 UNION SELECT "ChuHoSo" FROM dossiers --',
    "${jndi:ldap://127.0.0.1/a} {{7*7}} <script>alert(1)</script>",
    "a\x01b\x02c\x07d\x08e\x1b[31mf\x7fg\th\ni\rj\x1fk",
    "\\x00 \\u0000 %00 (written out, not the character)",
)


def long_unicode(length: int) -> str:
    """``length`` code points: Vietnamese (NFC and NFD), emoji, RTL marks, combining marks."""
    pieces = [
        "Đăng ký biến động quyền sử dụng đất, quyền sở hữu tài sản gắn liền với đất; ",
        unicodedata.normalize("NFD", "Nguyễn Thị Ánh Tuyết — hồ sơ bổ sung lần thứ hai; "),
        "👩🏽‍💼🇻🇳👨‍👩‍👧‍👦🙂 ",
        "\u200f\u202bمرحبا\u202c\u200e \u202eabc\u202c ",
        "e\u0301\u0323\u0302 ạ̀ ",
        "漢字 한국어 ",
        "\u00a0\u2009\u200b\u2028 ",
    ]
    text = ""
    index = 0
    while len(text) < length:
        text += pieces[index % len(pieces)]
        index += 1
    text = "Đ" + text[1 : length - 1] + "t"  # no blank at either end (the directory trims)
    assert len(text) == length
    return text


HOSTILE = (*INJECTION, long_unicode(4000))


def clip(text: str, limit: int) -> str:
    clipped = text[:limit]
    return clipped if len(clipped) == len(text) else clipped[:-1] + "t"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture
def backend_database_url(request: pytest.FixtureRequest, backend: str) -> str:
    fixture = "pg_database_url" if backend == "postgresql" else "sqlite_database_url"
    return cast(str, request.getfixturevalue(fixture))


@pytest.fixture
async def api_engine(backend_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(backend_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(
    api_engine: AsyncEngine, backend_database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        make_settings(backend_database_url), engine=api_engine, clock=fixed_clock(TEST_NOW)
    )
    if not getattr(app.state, INSTALLED_MARKER, False):
        install_error_handlers(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://doisoat.test") as http:
        yield http


async def post_events(api: httpx.AsyncClient, *envelopes: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await api.post(
        "/api/v1/events", content=orjson.dumps(list(envelopes)), headers=bearer(SOURCE_KEY)
    )
    assert answer.status_code == 200, answer.text[:500]
    return cast(list[dict[str, Any]], answer.json()["results"])


def hostile_dossier(number: int, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    code = dossier_code(9000 + number)
    state = snapshot(
        code,
        event_id=f"hostile-s-{number}",
        emitted_at=BASE_TIME,
        TenTTHC=clip(text, 1000),
        ChuHoSo=clip(text, 500),
        TenLinhVuc=clip(text, 500),
        DanhSachXinLoi=[
            {
                "NgayYeuCau": "20241022080000",
                "NgayHenTraMoi": "20241101170000",
                "LyDo": clip(text, 2000),
            }
        ],
    )
    step = progress(code, event_id=f"hostile-p-{number}", emitted_at=BASE_TIME, step_at=BASE_TIME)
    step["data"].update(
        NoiDungXuLy=clip(text, 4000),
        ChucDanh=clip(text, 256),
        PhongBanXuLy=clip(text, 256),
        NguoiXuLy=clip(text, 128),
    )
    return state, step


async def test_hostile_strings_in_events_come_back_verbatim(
    api: httpx.AsyncClient, api_engine: AsyncEngine
) -> None:
    for number, text in enumerate(HOSTILE):
        state, step = hostile_dossier(number, text)
        results = await post_events(api, state, step)
        assert [item["outcome"] for item in results] == ["stored", "stored"], results
        answer = await api.get(
            f"/api/v1/dossiers/{state['data']['MaHoSo']}", headers=bearer(OFFICER_KEY)
        )
        assert answer.status_code == 200, answer.text[:300]
        body = answer.json()
        for field in ("TenTTHC", "ChuHoSo", "TenLinhVuc"):
            assert body[field] == state["data"][field], field
        assert body["DanhSachXinLoi"][0]["LyDo"] == clip(text, 2000)
        assert body["responsible"] == clip(text, 128)
        (shown,) = body["progress"]
        for field in ("NoiDungXuLy", "ChucDanh", "PhongBanXuLy", "NguoiXuLy"):
            assert shown[field] == step["data"][field], field
    async with api_engine.connect() as connection:
        names = (await connection.execute(select(Dossier.procedure_name))).scalars().all()
        assert set(names) == {clip(text, 1000) for text in HOSTILE}


async def test_hostile_strings_in_field_reports_come_back_verbatim(api: httpx.AsyncClient) -> None:
    code = dossier_code(8000)
    await post_events(api, snapshot(code, event_id="report-target", emitted_at=BASE_TIME))
    for number, text in enumerate(HOSTILE):
        report = {
            "report_id": clip(f"r{number}-{text}", 128),
            "dossier_code": code,
            "kind": "returned",
            "occurred_at": "2024-10-30T10:40:00+07:00",
            "officer": clip(text, 128),
            "unit_code": UNIT,
            "note": clip(text, 2000),
        }
        answer = await api.post("/api/v1/field-reports", json=report, headers=bearer(DESK_KEY))
        assert answer.status_code == 201, answer.text[:300]
        for field in ("report_id", "officer", "note"):
            assert answer.json()[field] == report[field], field
    dossier = (await api.get(f"/api/v1/dossiers/{code}", headers=bearer(OFFICER_KEY))).json()
    notes = {item["note"] for item in dossier["field_reports"]}
    assert notes == {clip(text, 2000) for text in HOSTILE}


async def test_hostile_strings_in_the_directory_come_back_verbatim(api: httpx.AsyncClient) -> None:
    admin = bearer(ADMIN_KEY)
    for number, text in enumerate(HOSTILE):
        if text != text.strip():
            continue  # the directory trims blanks at the ends, by design
        unit = await api.put(
            f"/api/v1/units/U{number}", json={"name": clip(text, 500)}, headers=admin
        )
        assert unit.status_code == 200, unit.text[:300]
        assert (await api.get(f"/api/v1/units/U{number}", headers=admin)).json()["name"] == clip(
            text, 500
        )
        officer = {"full_name": clip(text, 256), "unit_code": f"U{number}", "role": "handler"}
        put = await api.put(f"/api/v1/officers/acc{number}", json=officer, headers=admin)
        assert put.status_code == 200, put.text[:300]
        read = await api.get(f"/api/v1/officers/acc{number}", headers=admin)
        assert read.json()["full_name"] == clip(text, 256)


async def test_injection_in_filters_and_paths_matches_nothing(
    api: httpx.AsyncClient, api_engine: AsyncEngine
) -> None:
    admin = bearer(ADMIN_KEY)
    await post_events(api, snapshot(dossier_code(1), event_id="bystander", emitted_at=BASE_TIME))
    await api.put(
        "/api/v1/officers/bystander",
        json={"full_name": "B", "unit_code": UNIT, "role": "desk"},
        headers=admin,
    )
    for text in INJECTION:
        officers = await api.get("/api/v1/officers", params={"unit": text}, headers=admin)
        assert officers.status_code == 200 and officers.json()["total"] == 0, officers.text
        found = await api.get("/api/v1/discrepancies", params={"dossier": text}, headers=admin)
        assert found.status_code == 200 and found.json()["total"] == 0, found.text
        dossier = await api.get(f"/api/v1/dossiers/{quote(text, safe='')}", headers=admin)
        assert dossier.status_code == 404, dossier.text
        unit = await api.get(f"/api/v1/units/{quote(text, safe='')}", headers=admin)
        assert unit.status_code == 404, unit.text
    async with api_engine.connect() as connection:
        assert (
            await connection.execute(select(func.count()).select_from(Dossier))
        ).scalar_one() == 1
        assert (await connection.execute(select(func.count()).select_from(Event))).scalar_one() == 1


async def test_values_the_contract_bounds_are_refused_cleanly(
    api: httpx.AsyncClient, api_engine: AsyncEngine
) -> None:
    admin, desk = bearer(ADMIN_KEY), bearer(DESK_KEY)
    long_text = long_unicode(4001)
    bad_code = snapshot("'; DROP TABLE dossiers; --", event_id="bad-code", emitted_at=BASE_TIME)
    long_name = snapshot(
        dossier_code(2), event_id="long-name", emitted_at=BASE_TIME, TenTTHC=long_text[:1001]
    )
    step = progress(dossier_code(2), event_id="long-step", emitted_at=BASE_TIME, step_at=BASE_TIME)
    step["data"]["NoiDungXuLy"] = long_text
    bad_id = snapshot(dossier_code(3), event_id="e" * 129, emitted_at=BASE_TIME)
    results = await post_events(api, bad_code, long_name, step, bad_id)
    assert [item["outcome"] for item in results] == ["refused"] * 4
    assert all(item["reason"].startswith("schema:") for item in results), results
    async with api_engine.connect() as connection:
        assert (await connection.execute(select(func.count()).select_from(Event))).scalar_one() == 0

    report = {
        "report_id": "too-long",
        "dossier_code": dossier_code(2),
        "kind": "returned",
        "occurred_at": "2024-10-30T10:40:00+07:00",
        "officer": "lethic.motcua",
        "unit_code": UNIT,
    }
    for changes in (
        {"note": long_text[:2001]},
        {"dossier_code": "' OR 1=1 --"},
        {"officer": "x" * 129},
        {"report_id": ""},
    ):
        answer = await api.post("/api/v1/field-reports", json={**report, **changes}, headers=desk)
        assert answer.status_code == 422, (changes, answer.text[:300])
        assert " / " in answer.json()["detail"]

    officer = {"full_name": long_text[:257], "unit_code": UNIT, "role": "handler"}
    assert (await api.put("/api/v1/officers/acc", json=officer, headers=admin)).status_code == 422
    bad_account = await api.put(
        "/api/v1/officers/a%01b", json={**officer, "full_name": "A"}, headers=admin
    )
    assert bad_account.status_code == 422
    bad_unit = await api.put("/api/v1/units/a'b", json={"name": "A"}, headers=admin)
    assert bad_unit.status_code == 422
    unit_name = await api.put("/api/v1/units/U1", json={"name": long_text[:501]}, headers=admin)
    assert unit_name.status_code == 422


# Regressions: inputs that once reached a 500.


@pytest.mark.parametrize(
    ("backend", "send"),
    [pytest.param("postgresql", name) for name in ("event", "report", "unit", "path", "query")]
    + [pytest.param("sqlite", name) for name in ("event", "report", "unit", "path", "query")],
)
async def test_nul_characters_are_stored_or_refused_never_a_500(
    api: httpx.AsyncClient, backend: str, send: str
) -> None:
    text = "trước\x00sau"
    if send == "event":
        state = snapshot(dossier_code(5), event_id="nul", emitted_at=BASE_TIME, TenTTHC=text)
        answer = await api.post(
            "/api/v1/events", content=orjson.dumps([state]), headers=bearer(SOURCE_KEY)
        )
    elif send == "report":
        report = {
            "report_id": "nul",
            "dossier_code": dossier_code(5),
            "kind": "returned",
            "occurred_at": "2024-10-30T10:40:00+07:00",
            "officer": "lethic.motcua",
            "unit_code": UNIT,
            "note": text,
        }
        answer = await api.post("/api/v1/field-reports", json=report, headers=bearer(DESK_KEY))
    elif send == "unit":
        answer = await api.put("/api/v1/units/U1", json={"name": text}, headers=bearer(ADMIN_KEY))
    elif send == "path":
        answer = await api.get("/api/v1/dossiers/a%00b", headers=bearer(ADMIN_KEY))
    else:
        answer = await api.get("/api/v1/officers", params={"unit": text}, headers=bearer(ADMIN_KEY))
    assert answer.status_code < 500, answer.text


@pytest.mark.parametrize(
    "kind",
    [
        "year-one",
        "extreme-emitted-at",
    ],
)
async def test_a_poison_event_over_http_is_refused_not_a_500(
    api: httpx.AsyncClient, backend: str, kind: str
) -> None:
    answer = await api.post(
        "/api/v1/events", content=orjson.dumps([poison(kind)]), headers=bearer(SOURCE_KEY)
    )
    assert answer.status_code < 500, answer.text
