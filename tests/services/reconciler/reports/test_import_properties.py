"""Invariant: the stored field reports are a function of the set of register rows.

Importing any permutation of a set of rows, with repeats inside a file, any number of times and
with each moment written in any accepted date format, leaves exactly one report per distinct
row — the same reports, with the same ids, after every import.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import VN_TZ
from tests.conftest import TEST_NOW
from tests.factories import BASE_TIME, dossier_code
from tests.services.reconciler.reports.conftest import clear_reports, import_csv, stored_reports

UNIT = "000.00.12.H08"
HEADER = ["ma_ho_so", "loai", "thoi_diem", "can_bo", "don_vi", "ghi_chu"]
LOAI = {"returned": "tra_ket_qua", "withdrawn": "rut_ho_so"}
MOMENTS = [BASE_TIME + timedelta(minutes=m) for m in (0, 1, 60, 24 * 60)]
NOTES = ["", "Trả trực tiếp", 'có "ngoặc", dấu phẩy', "hai\ndòng"]
FORMATS = ["local", "iso_offset", "iso_local", "iso_utc"]
BAD_ROW = [dossier_code(99), "mat_ho_so", "21/10/2024 08:00", "an.motcua", UNIT, ""]

Row = tuple[str, str, datetime, str, str]  # dossier code, kind, moment, officer, note


def written(moment: datetime, form: str) -> str:
    local = moment.astimezone(VN_TZ)
    return {
        "local": local.strftime("%d/%m/%Y %H:%M"),
        "iso_offset": local.isoformat(),
        "iso_local": local.replace(tzinfo=None).isoformat(sep=" "),
        "iso_utc": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }[form]


def render(rows: list[tuple[Row | None, str]]) -> bytes:
    """A register with each row's moment in its format; None stands for a bad row."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row, form in rows:
        if row is None:
            writer.writerow(BAD_ROW)
            continue
        code, kind, moment, officer, note = row
        writer.writerow([code, LOAI[kind], written(moment, form), officer, UNIT, note])
    return buffer.getvalue().encode("utf-8")


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from([dossier_code(n) for n in range(4)]),
        st.sampled_from(["returned", "withdrawn"]),
        st.sampled_from(MOMENTS),
        st.sampled_from(["lethic.motcua", "an.motcua"]),
        st.sampled_from(NOTES),
    ),
    min_size=1,
    max_size=10,
    unique_by=lambda row: (row[0], row[1], row[2]),  # the idempotency key, one unit
)


@st.composite
def imports(draw: st.DrawFn) -> tuple[list[Row], list[bytes]]:
    """A set of rows, and 1–3 files each holding a permutation of them (plus repeats)."""
    rows: list[Row] = draw(rows_strategy)
    files = []
    for _ in range(draw(st.integers(1, 3))):
        repeats = draw(st.lists(st.sampled_from(rows), max_size=4))
        bad = [None] * draw(st.integers(0, 2))
        order: list[Row | None] = draw(st.permutations([*rows, *repeats, *bad]))
        files.append(render([(row, draw(st.sampled_from(FORMATS))) for row in order]))
    return rows, files


def expected(rows: list[Row]) -> set[tuple[Any, ...]]:
    return {
        (code, kind, moment.astimezone(UTC), officer, UNIT, note or None, "csv", TEST_NOW)
        for code, kind, moment, officer, note in rows
    }


def contents(stored: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (
            row["dossier_code"],
            row["kind"],
            row["occurred_at"],
            row["officer"],
            row["unit_code"],
            row["note"],
            row["channel"],
            row["received_at"],
        )
        for row in stored
    }


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=imports())
async def test_any_order_and_any_number_of_imports_leave_the_same_reports(
    reports_client: httpx.AsyncClient,
    engine: AsyncEngine,
    case: tuple[list[Row], list[bytes]],
) -> None:
    rows, files = case
    await clear_reports(engine)
    accepted = 0
    first: list[dict[str, Any]] | None = None
    for data in files:
        answer = await import_csv(reports_client, data)
        assert answer.status_code == 200, answer.text
        accepted += answer.json()["accepted"]
        stored = await stored_reports(engine)
        assert contents(stored) == expected(rows)
        first = stored if first is None else first
        assert stored == first
    assert accepted == len(rows)
