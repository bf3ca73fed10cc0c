"""Applicants' personal data never reaches the logs or the metrics (Nghị định 13/2023/NĐ-CP).

The whole pipeline runs in one ``doisoat run`` process at debug level, on dossiers that carry
``ChuHoSo`` and ``SoGiayToChuHoSo``, through ingest, a refused event, a field report, the
reconciler and an email alert; then the captured log lines and ``/metrics`` are searched.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from shared.dvcqg import format_thoi_diem
from tests.factories import dossier_code, progress, snapshot
from tests.fakes.smtp_server import FakeSmtpServer
from tests.support.processes import start_service

ADMIN = "privacy-admin-key-0123456789"
NAME = "Nguyễn Thị Bích Ngọc"
ID_NUMBER = "079304001234"


@pytest.mark.slow
async def test_personal_data_appears_in_no_log_line_and_no_metric(tmp_path: Path) -> None:
    smtp = FakeSmtpServer()
    smtp.start()
    env = {
        "DOISOAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'doisoat.db'}",
        "DOISOAT_API_KEYS": f'[{{"key": "{ADMIN}", "role": "admin", "account": "quantri"}}]',
        "DOISOAT_LOG_LEVEL": "DEBUG",
        "DOISOAT_RETURN_GRACE_MINUTES": "0",
        "DOISOAT_ALERT_GROUP_WAIT_SECONDS": "0",
        "DOISOAT_RECONCILE_POLL_SECONDS": "0.2",
        "DOISOAT_DISPATCH_POLL_SECONDS": "0.2",
        "DOISOAT_SMTP_HOST": smtp.host,
        "DOISOAT_SMTP_PORT": str(smtp.port),
    }
    now = datetime.now(UTC)
    code = dossier_code(77)
    personal = {"ChuHoSo": NAME, "SoGiayToChuHoSo": ID_NUMBER}
    log_path = tmp_path / "run.log"
    try:
        with start_service("run", env=env, log_path=log_path, ready=True) as service:
            headers = {"Authorization": f"Bearer {ADMIN}"}
            async with httpx.AsyncClient(base_url=service.base_url, headers=headers) as api:
                unit = await api.put("/api/v1/units/000.00.12.H08", json={"name": "Xã A"})
                assert unit.status_code == 200, unit.text
                officer = await api.put(
                    "/api/v1/officers/tranthib.vpdkdd",
                    json={
                        "full_name": "Trần Thị B",
                        "unit_code": "000.00.12.H08",
                        "role": "handler",
                        "email": "b@tinh.gov.vn",
                        "active": True,
                    },
                )
                assert officer.status_code == 200, officer.text
                events = [
                    snapshot(
                        code,
                        event_id="p-s1",
                        emitted_at=now - timedelta(days=1),
                        status=4,
                        NgayHenTra=format_thoi_diem(now + timedelta(days=9)),
                        **personal,
                    ),
                    progress(
                        code,
                        event_id="p-p1",
                        emitted_at=now - timedelta(days=1),
                        step_at=now - timedelta(days=1),
                    ),
                    snapshot(code, event_id="p-bad", emitted_at=now, status=11, **personal),
                ]
                answer = (await api.post("/api/v1/events", json=events)).json()
                assert [r["outcome"] for r in answer["results"]] == ["stored", "stored", "refused"]
                report = await api.post(
                    "/api/v1/field-reports",
                    json={
                        "report_id": "p-r1",
                        "dossier_code": code,
                        "kind": "returned",
                        "occurred_at": (now - timedelta(minutes=5)).isoformat(),
                        "officer": "lethic.motcua",
                        "unit_code": "000.00.12.H08",
                    },
                )
                assert report.status_code == 201, report.text
                async with asyncio.timeout(60):
                    while not smtp.handler.messages():
                        await asyncio.sleep(0.2)
                scraped = (await api.get("/metrics")).text
    finally:
        smtp.stop()
    lines = log_path.read_text(encoding="utf-8").splitlines()
    structured = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(entry.get("dossier_code") == code for entry in structured)
    assert any("discrepancy_id" in entry for entry in structured)
    for secret in (NAME, ID_NUMBER, "Bích Ngọc"):
        assert secret not in log_path.read_text(encoding="utf-8")
        assert secret not in scraped
