"""Schemathesis, every check on, against the document the app serves at ``/openapi.json``.

The run is the one the command line does (``schemathesis run …/openapi.json --checks all`` with
an admin key): its phases (coverage, fuzzing, stateful) and every check, so not only "no input
the schema allows or deliberately violates makes the API answer 5xx" but also that each answer
is documented (status, content type, headers, body schema, ``Allow``), that schema-valid
requests are accepted and schema-violating ones refused. A client generated from the document
must be able to read every answer. The rules no schema can state are in ``schemathesis.toml``
beside this file, which the command line takes too (``--config-file``).

The app is the real one, on PostgreSQL and on SQLite, reached in-process through schemathesis'
ASGI transport: it runs the app on one event loop of its own, so the database engine is used and
disposed there only (the app's lifespan is wrapped to dispose it at shutdown). The run is
deterministic (a fixed seed, ``generation.deterministic``) and bounded per operation.
"""

from __future__ import annotations

import contextlib
import logging
import tomllib
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, from_schema
from schemathesis.engine import events as engine_events
from schemathesis.python.asgi import shutdown_lifespans

from services.app.asgi import create_app
from shared.clock import fixed_clock
from shared.db import create_engine
from tests.conftest import ADMIN_KEY, TEST_NOW, make_settings

CONFIG_FILE = Path(__file__).with_name("schemathesis.toml")
SEED = 20261206
MAX_EXAMPLES = 60  # fuzzing cases per operation; the coverage phase adds its own (boundaries)
BACKENDS = ("postgresql", "sqlite")


@dataclass(frozen=True)
class Finding:
    """A failed check (``ST…`` code) or an error of the run itself."""

    code: str
    operation: str
    title: str
    message: str
    reproduce: str

    def __str__(self) -> str:
        return f"{self.code} {self.operation}: {self.title}\n{self.message}\n  {self.reproduce}"


def run_config() -> SchemathesisConfig:
    """``schemathesis.toml`` plus what the command line gives: the key and the seed."""
    data: dict[str, Any] = tomllib.loads(CONFIG_FILE.read_text(encoding="utf-8"))
    data["seed"] = SEED
    data["headers"] = {"Authorization": f"Bearer {ADMIN_KEY}"}
    data["workers"] = 1
    data.setdefault("generation", {}).update(
        {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"}
    )
    return SchemathesisConfig.from_dict(data, base_dir=str(CONFIG_FILE.parent))


def findings_of(event: engine_events.EngineEvent) -> list[Finding]:
    if isinstance(event, engine_events.ScenarioFinished) and event.status == Status.FAILURE:
        return [
            Finding(
                check.failure_info.failure.code,
                event.recorder.label,
                check.failure_info.failure.title,
                check.failure_info.failure.message,
                check.failure_info.code_sample,
            )
            for checks in event.recorder.checks.values()
            for check in checks
            if check.status == Status.FAILURE and check.failure_info is not None
        ]
    if isinstance(event, engine_events.NonFatalError):
        return [Finding("error", event.label, event.info.title, str(event.info), "")]
    if isinstance(event, engine_events.FatalError):
        return [Finding("fatal", "-", type(event.exception).__name__, str(event.exception), "")]
    if isinstance(event, engine_events.EngineFinished):
        return [
            Finding(failure.code, failure.operation or "-", failure.title, failure.message, "")
            for failure in event.failures
        ]
    return []


def disposing_engine_at_shutdown(app: FastAPI, engine: Any) -> None:
    """Dispose the engine when the app shuts down, on the loop that used it."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        try:
            async with inner(application) as state:
                yield state
        finally:
            await engine.dispose()

    app.router.lifespan_context = lifespan


def _server_traceback(records: list[logging.LogRecord]) -> str:
    for record in records:
        if record.exc_info and record.exc_info[1] is not None:
            return "".join(traceback.format_exception(record.exc_info[1])[-6:])
    return "(none logged)"


@pytest.fixture(params=BACKENDS)
def backend_database_url(request: pytest.FixtureRequest) -> str:
    fixture = "pg_database_url" if request.param == "postgresql" else "sqlite_database_url"
    return cast(str, request.getfixturevalue(fixture))


def test_the_document_is_true_to_every_answer(
    backend_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = backend_database_url
    engine = create_engine(url)
    app = create_app(make_settings(url), engine=engine, clock=fixed_clock(TEST_NOW))
    disposing_engine_at_shutdown(app, engine)
    findings: list[Finding] = []
    tested: set[str] = set()
    try:
        with caplog.at_level(logging.ERROR, logger="doisoat"):
            schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=run_config())
            operations = {
                f"{method.upper()} {path}"
                for path, item in app.openapi()["paths"].items()
                for method in item
            }
            for event in from_schema(schema).execute():
                findings += findings_of(event)
                if isinstance(event, engine_events.ScenarioFinished):
                    tested.add(event.recorder.label)
    finally:
        shutdown_lifespans()
    assert operations <= tested, f"not tested: {sorted(operations - tested)}"
    shown = "\n\n".join(str(finding) for finding in findings[:5])
    assert not findings, (
        f"{len(findings)} failed checks; first:\n{shown}\n"
        f"server traceback, if any:\n{_server_traceback(caplog.records)}"
    )
