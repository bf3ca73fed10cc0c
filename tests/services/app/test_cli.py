"""The ``doisoat`` command: clear one-line errors and a migrate that says what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DOISOAT = [sys.executable, "-m", "services.app.cli"]
REPO = Path(__file__).resolve().parents[3]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOISOAT_")}
    return subprocess.run(
        [*DOISOAT, *args],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_says_what_it_did_then_that_nothing_was_left(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    first = run(["migrate"], tmp_path, DOISOAT_DATABASE_URL=url)
    assert first.returncode == 0, first.stderr
    assert "empty →" in first.stdout
    second = run(["migrate"], tmp_path, DOISOAT_DATABASE_URL=url)
    assert second.returncode == 0
    assert "already at" in second.stdout


def test_invalid_setting_is_one_clear_line(tmp_path: Path) -> None:
    result = run(["api"], tmp_path, DOISOAT_HTTP_PORT="not-a-port")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "DOISOAT_HTTP_PORT" in lines[0]
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    result = run(
        ["api"], tmp_path, DOISOAT_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )
    assert result.returncode == 2
    assert "database unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_without_kafka_says_which_setting_is_missing(tmp_path: Path) -> None:
    result = run(["ingest"], tmp_path)
    assert result.returncode == 2
    assert "DOISOAT_KAFKA_BOOTSTRAP_SERVERS" in result.stderr


def test_help_lists_every_command_in_vietnamese(tmp_path: Path) -> None:
    shown = run(["--help"], tmp_path, COLUMNS="200")
    assert shown.returncode == 0, shown.stderr
    commands = {
        line.split()[1]
        for line in shown.stdout.splitlines()
        if line.startswith("│ ") and len(line.split()) > 2 and not line.split()[1].startswith("-")
    }
    assert {
        "migrate",
        "run",
        "api",
        "ingest",
        "reconciler",
        "alerts",
        "purge",
        "rejudge",
        "demo",
        "sign-in-link",
        "sign-out",
        "import",
        "keys",
    } <= commands
    assert "Đưa cơ sở dữ liệu lên phiên bản mới nhất" in shown.stdout
