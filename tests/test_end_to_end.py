"""The whole pipeline against real local peers: Kafka in, the desk's report, alerts out.

An event through Kafka says the dossier is being processed; the desk reports it returned; after
the grace period its handler gets an email (real SMTP) and a Zalo OA message (the Zalo fake over
HTTP). Two deployments: the embedded one (``doisoat run`` on SQLite) and production's, each
service a process of its own on PostgreSQL. Group wait and Zalo's quiet night are set through
settings, so the tests pass at any hour CI runs (the discrepancy is critical: office hours
don't hold it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.dvcqg import format_thoi_diem
from tests.factories import dossier_code, encode, progress, snapshot
from tests.fakes.smtp_server import FakeSmtpServer, ReceivedMail
from tests.fakes.zalo_server import FakeZaloServer
from tests.support.broker import Broker, create_topic, produce
from tests.support.pipeline import (
    DESK_KEY,
    OfficerSeed,
    Pipeline,
    desk_report,
    pipeline_env,
    register_directory,
)
from tests.support.processes import start_service
from tests.support.waiting import eventually

UNIT = "000.00.12.H08"
ADMIN = "e2e-admin-key-0123456789"
HANDLER = "tranthib.vpdkdd"
DESK = "lethic.motcua"


async def wait_for(condition: Callable[[], object], what: str) -> None:
    try:
        async with asyncio.timeout(60):
            while not condition():
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow
async def test_returned_at_the_desk_but_processing_in_the_system_reaches_both_officers(
    broker: Broker, smtp_relay: FakeSmtpServer, zalo_api: FakeZaloServer, tmp_path: Path
) -> None:
    smtp, zalo = smtp_relay, zalo_api
    topic = f"tthc.hoso.events.{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 2)
    state = zalo.state
    env = {
        "DOISOAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'doisoat.db'}",
        "DOISOAT_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "DOISOAT_KAFKA_TOPIC": topic,
        "DOISOAT_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "DOISOAT_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
        "DOISOAT_API_KEYS": f'[{{"key": "{ADMIN}", "role": "admin", "account": "quantri"}}]',
        "DOISOAT_RETURN_GRACE_MINUTES": "0",
        "DOISOAT_ALERT_GROUP_WAIT_SECONDS": "0",
        "DOISOAT_ZALO_QUIET_FROM": "00:00",  # an empty quiet window: Zalo at any hour
        "DOISOAT_ZALO_QUIET_UNTIL": "00:00",
        "DOISOAT_RECONCILE_POLL_SECONDS": "0.2",
        "DOISOAT_DISPATCH_POLL_SECONDS": "0.2",
        "DOISOAT_SMTP_HOST": smtp.host,
        "DOISOAT_SMTP_PORT": str(smtp.port),
        "DOISOAT_SMTP_SENDER": "Đối soát TTHC <doisoat@tinh.gov.vn>",
        "DOISOAT_ZALO_APP_ID": state.app_id,
        "DOISOAT_ZALO_SECRET_KEY": state.secret_key,
        "DOISOAT_ZALO_REFRESH_TOKEN": state.issue_refresh_token(),
        "DOISOAT_ZALO_ZNS_TEMPLATE_ID": "401234",
        "DOISOAT_ZALO_OA_API_BASE": zalo.base_url,
        "DOISOAT_ZALO_ZNS_API_BASE": zalo.base_url,
        "DOISOAT_ZALO_OAUTH_BASE": zalo.base_url,
    }
    code = dossier_code(4242)
    now = datetime.now(UTC)
    with start_service("run", env=env, log_path=tmp_path / "run.log", ready=True) as service:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=service.base_url, headers=headers) as api:
            assert (
                await api.put(
                    f"/api/v1/units/{UNIT}",
                    json={
                        "name": "Chi nhánh VPĐKĐĐ Tuy Phong",
                        "parent_code": None,
                        "replaced_by": None,
                    },
                )
            ).status_code == 200
            for account, name, role, email, zalo_id in (
                (HANDLER, "Trần Thị B", "handler", "b.tran@tinh.gov.vn", None),
                (DESK, "Lê Thị C", "desk", None, "zalo-uid-desk"),
            ):
                assert (
                    await api.put(
                        f"/api/v1/officers/{account}",
                        json={
                            "full_name": name,
                            "unit_code": UNIT,
                            "role": role,
                            "email": email,
                            "zalo_user_id": zalo_id,
                            "phone": None,
                            "active": True,
                        },
                    )
                ).status_code == 200
            events = [
                snapshot(
                    code,
                    event_id="e2e-s1",
                    emitted_at=now - timedelta(days=1),
                    status=4,
                    NgayHenTra=format_thoi_diem(now + timedelta(days=10)),
                ),
                progress(
                    code,
                    event_id="e2e-p1",
                    emitted_at=now - timedelta(days=1),
                    step_at=now - timedelta(days=1),
                    officer=HANDLER,
                ),
            ]
            produce(broker.bootstrap, topic, [(code.encode(), encode(e)) for e in events])
            async with asyncio.timeout(60):
                while (await api.get(f"/api/v1/dossiers/{code}")).status_code != 200:
                    await asyncio.sleep(0.2)
            report = {
                "report_id": "e2e-desk-1",
                "dossier_code": code,
                "kind": "returned",
                "occurred_at": (now - timedelta(minutes=1)).isoformat(),
                "officer": DESK,
                "unit_code": UNIT,
            }
            assert (await api.post("/api/v1/field-reports", json=report)).status_code == 201

            await wait_for(smtp.handler.messages, "the handler's email")
            await wait_for(lambda: state.oa_messages, "the desk officer's Zalo message")
            discrepancies = (
                await api.get(f"/api/v1/discrepancies?dossier={code}&status=open")
            ).json()
    [mail] = smtp.handler.messages()
    assert mail.rcpt_tos == ["b.tran@tinh.gov.vn"]
    assert code in str(mail.message["Subject"])
    plain = mail.message.get_body(preferencelist=("plain",))
    assert plain is not None
    body = plain.get_content()
    assert "Đã trả kết quả" in body
    [oa] = state.oa_messages
    assert oa["user_id"] == "zalo-uid-desk"
    assert code in oa["text"]
    assert [d["kind"] for d in discrepancies["items"]] == ["RETURNED_BUT_OPEN"]


@pytest.mark.slow
async def test_on_postgresql_with_each_service_apart_the_handler_hears_of_a_returned_open_dossier(
    broker: Broker,
    pg_database_url: str,
    smtp_relay: FakeSmtpServer,
    zalo_api: FakeZaloServer,
    tmp_path: Path,
) -> None:
    topic = f"tthc.hoso.events.{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 2)
    env = pipeline_env(
        database_url=pg_database_url, broker=broker, topic=topic, smtp=smtp_relay, zalo=zalo_api
    )
    code = dossier_code(4243)
    now = datetime.now(UTC)
    returned_at = now - timedelta(hours=3)  # the grace period (2 hours) is long over

    async def mails() -> list[ReceivedMail]:
        return smtp_relay.handler.messages()

    async def oa_messages() -> list[dict[str, Any]]:
        return list(zalo_api.state.oa_messages)

    with Pipeline(env, tmp_path) as pipeline:
        pipeline.start("api", "ingest", "reconciler", "alerts")
        async with pipeline.api() as admin, pipeline.api(DESK_KEY) as desk:
            await register_directory(
                admin,
                UNIT,
                "Chi nhánh VPĐKĐĐ Tuy Phong",
                [
                    OfficerSeed(
                        HANDLER, "Trần Thị B", "handler", "b.tran@tinh.gov.vn", "zalo-uid-b"
                    ),
                    OfficerSeed(DESK, "Lê Thị C", "desk", "c.le@tinh.gov.vn"),
                ],
            )
            events = [
                snapshot(
                    code,
                    event_id="e2e-pg-s1",
                    emitted_at=now - timedelta(days=1),
                    status=4,  # đang xử lý
                    NgayHenTra=format_thoi_diem(now + timedelta(days=10)),
                ),
                progress(
                    code,
                    event_id="e2e-pg-p1",
                    emitted_at=now - timedelta(days=1),
                    step_at=now - timedelta(days=1),
                    officer=HANDLER,
                ),
            ]
            produce(broker.bootstrap, topic, [(code.encode(), encode(e)) for e in events])
            known = await eventually(
                lambda: admin.get(f"/api/v1/dossiers/{code}"),
                lambda answer: answer.status_code == 200,
            )
            assert known.status_code == 200, pipeline.logs()
            assert (known.json()["status"], known.json()["responsible"]) == (4, HANDLER)

            report = desk_report("e2e-pg-desk-1", code, occurred_at=returned_at, officer=DESK)
            answer = await desk.post("/api/v1/field-reports", json=report)
            assert answer.status_code == 201, answer.text

            received = await eventually(mails, lambda got: len(got) >= 2)
            oa = await eventually(oa_messages)
            found = await admin.get(
                "/api/v1/discrepancies", params={"dossier": code, "status": "open"}
            )
            sent = await eventually(
                lambda: admin.get("/api/v1/notifications", params={"status": "sent"}),
                lambda answer: answer.json()["total"] >= 3,
            )

    assert {tuple(mail.rcpt_tos) for mail in received} == {
        ("b.tran@tinh.gov.vn",),
        ("c.le@tinh.gov.vn",),
    }, pipeline.logs()
    [to_handler] = [mail for mail in received if mail.rcpt_tos == ["b.tran@tinh.gov.vn"]]
    assert code in str(to_handler.message["Subject"])
    plain = to_handler.message.get_body(preferencelist=("plain",))
    assert plain is not None
    assert "Đã trả kết quả" in plain.get_content()
    [to_handler_on_zalo] = oa
    assert to_handler_on_zalo["user_id"] == "zalo-uid-b"
    assert code in to_handler_on_zalo["text"]
    [discrepancy] = found.json()["items"]
    assert (discrepancy["kind"], discrepancy["severity"], discrepancy["responsible"]) == (
        "RETURNED_BUT_OPEN",
        "critical",
        HANDLER,
    )
    assert sorted((item["recipient"], item["channel"]) for item in sent.json()["items"]) == sorted(
        [(HANDLER, "email"), (HANDLER, "zalo_oa"), (DESK, "email")]
    )
