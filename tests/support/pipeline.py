"""doisoat as production deploys it, for end-to-end tests: every service a process of its own.

``doisoat api``, ``ingest``, ``reconciler`` and ``alerts`` run apart (as ``deploy/kubernetes``
runs them) on one PostgreSQL database and one Kafka topic of the tansu broker, with the test's
SMTP server and Zalo fake as their peers. Every write then takes the production path (``pg_bulk``,
the PostgreSQL schedule statements) and every hand-off goes through the database, as it does
between machines. Timings are shortened through settings only; nothing inside is replaced.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import httpx

from tests.fakes.smtp_server import FakeSmtpServer
from tests.fakes.zalo_server import FakeZaloServer
from tests.support.broker import Broker
from tests.support.processes import ProcessExitedError, ServiceProcess

__all__ = [
    "ADMIN_KEY",
    "DESK_KEY",
    "SOURCE_KEY",
    "UNIT",
    "OfficerSeed",
    "Pipeline",
    "desk_report",
    "pipeline_env",
    "register_directory",
]

UNIT = "000.00.12.H08"
ADMIN_KEY = "pipeline-admin-key-0123456789"
SOURCE_KEY = "pipeline-source-key-0123456789"
DESK_KEY = "pipeline-desk-key-0123456789"

#: Short timings, through settings only. The Kafka group settings make tansu answer a JoinGroup
#: in about a second; the alerts send at once and Zalo has no quiet night, so a test passes at
#: whatever hour CI runs it (a critical discrepancy leaves outside office hours too).
FAST_TIMINGS: dict[str, str] = {
    "DOISOAT_KAFKA_SESSION_TIMEOUT_MS": "2000",
    "DOISOAT_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
    "DOISOAT_KAFKA_POLL_TIMEOUT_MS": "200",
    "DOISOAT_KAFKA_RETRY_BACKOFF_SECONDS": "0.2",
    "DOISOAT_KAFKA_REPORT_EVERY_SECONDS": "1",
    "DOISOAT_RECONCILE_POLL_SECONDS": "0.2",
    "DOISOAT_DISPATCH_POLL_SECONDS": "0.2",
    "DOISOAT_ALERT_GROUP_WAIT_SECONDS": "0",
    "DOISOAT_ZALO_QUIET_FROM": "00:00",  # equal bounds: no quiet night
    "DOISOAT_ZALO_QUIET_UNTIL": "00:00",
}


def pipeline_env(
    *,
    database_url: str,
    broker: Broker,
    topic: str,
    smtp: FakeSmtpServer | None = None,
    zalo: FakeZaloServer | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The settings every process of the pipeline shares (the reconciler reads the Kafka ones
    too: with them, desk reports wait for the ingest watermark)."""
    keys = [
        {"key": ADMIN_KEY, "role": "admin", "account": "quantri"},
        {"key": SOURCE_KEY, "role": "source", "units": [UNIT], "account": "motcua-tinh"},
        {"key": DESK_KEY, "role": "desk", "units": [UNIT], "account": "lethic.motcua"},
    ]
    env = {
        "DOISOAT_DATABASE_URL": database_url,
        "DOISOAT_API_KEYS": json.dumps(keys),
        "DOISOAT_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "DOISOAT_KAFKA_TOPIC": topic,
        "DOISOAT_KAFKA_GROUP_ID": f"doisoat-{topic}",  # a group of its own per test
        **FAST_TIMINGS,
    }
    if smtp is not None:
        env |= {
            "DOISOAT_SMTP_HOST": smtp.host,
            "DOISOAT_SMTP_PORT": str(smtp.port),
            "DOISOAT_SMTP_SENDER": "Đối soát TTHC <doisoat@tinh.gov.vn>",
        }
    if zalo is not None:
        state = zalo.state
        env |= {
            "DOISOAT_ZALO_APP_ID": state.app_id,
            "DOISOAT_ZALO_SECRET_KEY": state.secret_key,
            "DOISOAT_ZALO_REFRESH_TOKEN": state.issue_refresh_token(),
            "DOISOAT_ZALO_ZNS_TEMPLATE_ID": "401234",
            "DOISOAT_ZALO_OA_API_BASE": zalo.base_url,
            "DOISOAT_ZALO_ZNS_API_BASE": zalo.base_url,
            "DOISOAT_ZALO_OAUTH_BASE": zalo.base_url,
        }
    return env | dict(overrides or {})


class Pipeline:
    """The ``doisoat`` processes of one test; leaving the ``with`` block stops every one.

    ``pipeline["ingest"]`` is the latest process started for that command (a restarted
    consumer replaces the killed one there); each keeps its log in ``log_dir``.
    """

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self._started: list[ServiceProcess] = []
        self._latest: dict[str, ServiceProcess] = {}

    def spawn(self, command: str) -> ServiceProcess:
        """Launch ``doisoat <command>`` without waiting for it (see :meth:`start`)."""
        number = sum(1 for process in self._started if process.args == [command]) + 1
        process = ServiceProcess(
            command, env=self.env, log_path=self.log_dir / f"{command}-{number}.log"
        )
        self._started.append(process)
        self._latest[command] = process
        return process.start()

    def start(self, *commands: str, timeout: float = 60.0) -> None:
        """Launch the processes side by side and return once each answers ``/healthz``."""
        for command in commands:
            self.spawn(command)
        self.wait_healthy(*commands, timeout=timeout)

    def wait_healthy(self, *commands: str, timeout: float = 60.0) -> None:
        """Until each of ``commands`` answers ``/healthz``; a port taken meanwhile is retried."""
        for command in commands:
            for _ in range(3):
                try:
                    self[command].wait_healthy(timeout)
                    break
                except ProcessExitedError as error:
                    if "address already in use" not in str(error).lower():
                        raise
                    self.spawn(command)

    def __getitem__(self, command: str) -> ServiceProcess:
        return self._latest[command]

    @asynccontextmanager
    async def api(self, key: str = ADMIN_KEY) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client on the ``api`` process, presenting ``key``."""
        async with httpx.AsyncClient(
            base_url=self["api"].base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30.0,
        ) as client:
            yield client

    async def metric(self, command: str, name: str, **labels: str) -> float:
        """One sample of the process's ``/metrics`` (read off the event loop)."""
        return await asyncio.to_thread(self[command].metric, name, **labels)

    def logs(self, lines: int = 30) -> str:
        """The end of every process's log: what a failing assertion should show."""
        return "\n".join(
            f"--- {' '.join(process.args)} ({process.log_path.name}, "
            f"exit {process.returncode}):\n{process.log_tail(lines)}"
            for process in self._started
        )

    def close(self) -> None:
        for process in reversed(self._started):
            process.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class OfficerSeed:
    """One officer of the directory, as ``PUT /api/v1/officers/{account}`` takes it."""

    account: str
    full_name: str
    role: str  # handler | desk | leader
    email: str | None = None
    zalo_user_id: str | None = None
    phone: str | None = None


async def register_directory(
    admin: httpx.AsyncClient, unit: str, unit_name: str, officers: Iterable[OfficerSeed]
) -> None:
    """The unit and its officers, through the API as an administrator enters them."""
    answer = await admin.put(
        f"/api/v1/units/{unit}", json={"name": unit_name, "parent_code": None, "replaced_by": None}
    )
    assert answer.status_code == 200, answer.text
    for officer in officers:
        answer = await admin.put(
            f"/api/v1/officers/{officer.account}",
            json={
                "full_name": officer.full_name,
                "unit_code": unit,
                "role": officer.role,
                "email": officer.email,
                "zalo_user_id": officer.zalo_user_id,
                "phone": officer.phone,
                "active": True,
            },
        )
        assert answer.status_code == 200, answer.text


def desk_report(
    report_id: str,
    code: str,
    *,
    occurred_at: datetime,
    officer: str,
    kind: str = "returned",
    unit: str = UNIT,
) -> dict[str, Any]:
    """A field report as the one-stop desk posts it (``POST /api/v1/field-reports``)."""
    return {
        "report_id": report_id,
        "dossier_code": code,
        "kind": kind,
        "occurred_at": occurred_at.isoformat(),
        "officer": officer,
        "unit_code": unit,
    }
