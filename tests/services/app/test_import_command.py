"""``doisoat import``: CSV files loaded straight into the database, with progress and a summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared import migrate

REPO = Path(__file__).resolve().parents[3]
REGISTER = REPO / "tests" / "contract_examples" / "so-theo-doi.csv"


def doisoat(*args: str, cwd: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOISOAT_")}
    env.update(PYTHONPATH=str(REPO), DOISOAT_DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "-m", "services.app.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_register_import_shows_progress_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'import.db'}"
    migrate.upgrade(url)
    first = doisoat("import", "field-reports", str(REGISTER), cwd=tmp_path, database_url=url)
    assert first.returncode == 0, first.stderr
    assert "Đang nhập… 2/2 dòng" in first.stdout
    assert "Xong: nhận 2, trùng 0, từ chối 0" in first.stdout
    again = doisoat("import", "field-reports", str(REGISTER), cwd=tmp_path, database_url=url)
    assert "Xong: nhận 0, trùng 2, từ chối 0" in again.stdout


def test_officers_import_lists_refused_rows_with_their_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'import.db'}"
    migrate.upgrade(url)
    csv_file = tmp_path / "can-bo.csv"
    csv_file.write_text(
        "account,full_name,unit_code,role,email,zalo_user_id,phone,active\n"
        "tranthib,Trần Thị B,000.00.12.H08,handler,b@tinh.gov.vn,,0912345678,1\n"
        "x,Lê Văn X,000.00.12.H08,boss,,,,1\n",
        encoding="utf-8",
    )
    result = doisoat("import", "officers", str(csv_file), cwd=tmp_path, database_url=url)
    assert result.returncode == 0, result.stderr
    assert "Xong: nhận 1, trùng 0, từ chối 1" in result.stdout
    assert "dòng 3:" in result.stdout


def test_unreadable_file_is_one_clear_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'import.db'}"
    result = doisoat(
        "import", "officers", str(tmp_path / "missing.csv"), cwd=tmp_path, database_url=url
    )
    assert result.returncode == 2
    assert "không đọc được tệp" in result.stderr
    assert "Traceback" not in result.stderr
