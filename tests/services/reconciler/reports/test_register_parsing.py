"""Reading the register, with no database: moments, derived ids, headers, row checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from services.reconciler.reports.csv_import import (
    RegisterError,
    RegisterTooLarge,
    check_row,
    parse_register,
    parse_thoi_diem,
    row_report_id,
)
from services.reconciler.reports.schemas import FieldReportCreate
from shared.events import Rejection
from tests.conftest import TEST_NOW

UNIT = "000.00.12.H08"
CODE = f"{UNIT}-241021-0001"
AT_0340Z = datetime(2024, 10, 30, 3, 40, tzinfo=UTC)


def cells(**changes: str) -> dict[str, str]:
    row = {
        "ma_ho_so": CODE,
        "loai": "tra_ket_qua",
        "thoi_diem": "30/10/2024 10:40",
        "can_bo": "lethic.motcua",
        "don_vi": UNIT,
        "ghi_chu": "",
    }
    return {**row, **changes}


@pytest.mark.parametrize(
    "text",
    [
        "30/10/2024 10:40",
        "30/10/2024 10:40:00",
        "2024-10-30T10:40:00+07:00",
        "2024-10-30T10:40+0700",
        "2024-10-30 10:40",
        "2024-10-30T10:40:00",
        "2024-10-30T03:40:00Z",
        "2024-10-30t03:40:00z",
    ],
)
def test_accepted_moment_formats_are_the_same_instant(text: str) -> None:
    assert parse_thoi_diem(text) == AT_0340Z


def test_local_format_without_leading_zeros_is_accepted() -> None:
    assert parse_thoi_diem("1/2/2024 8:05") == datetime(2024, 2, 1, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2024-10-30",
        "31/02/2024 10:40",
        "30-10-2024 10:40",
        "30/10/24 10:40",
        "10:40 30/10/2024",
        "30/10/2024 25:00",
        "hôm qua",
        "2024-10-30T10:40:00+7",
    ],
)
def test_other_moment_texts_are_refused(text: str) -> None:
    assert parse_thoi_diem(text) is None


def test_report_id_is_derived_from_the_key_as_an_instant() -> None:
    local = row_report_id(
        unit_code=UNIT,
        dossier_code=CODE,
        kind="returned",
        occurred_at=parse_thoi_diem("30/10/2024 10:40"),  # type: ignore[arg-type]
    )
    utc = row_report_id(unit_code=UNIT, dossier_code=CODE, kind="returned", occurred_at=AT_0340Z)
    assert local == utc
    assert re.fullmatch(r"csv-[0-9a-f]{32}", local)


@pytest.mark.parametrize(
    "change",
    [
        {"unit_code": "000.00.13.H08"},
        {"dossier_code": CODE + "x"},
        {"kind": "withdrawn"},
        {"occurred_at": datetime(2024, 10, 30, 3, 41, tzinfo=UTC)},
    ],
)
def test_report_id_changes_with_every_part_of_the_key(change: dict[str, Any]) -> None:
    key: dict[str, Any] = {
        "unit_code": UNIT,
        "dossier_code": CODE,
        "kind": "returned",
        "occurred_at": AT_0340Z,
    }
    assert row_report_id(**key) != row_report_id(**{**key, **change})


def test_officer_and_note_are_not_part_of_the_key() -> None:
    first = check_row(cells(), now=TEST_NOW)
    other = check_row(cells(can_bo="an.motcua", ghi_chu="khác"), now=TEST_NOW)
    assert isinstance(first, FieldReportCreate) and isinstance(other, FieldReportCreate)
    assert first.report_id == other.report_id


def test_loai_is_case_insensitive() -> None:
    report = check_row(cells(loai="RUT_HO_SO"), now=TEST_NOW)
    assert isinstance(report, FieldReportCreate) and report.kind == "withdrawn"


def test_a_note_over_2000_characters_is_refused_naming_ghi_chu() -> None:
    refused = check_row(cells(ghi_chu="x" * 2001), now=TEST_NOW)
    assert isinstance(refused, Rejection) and refused.reason == "invalid_ghi_chu"


def test_a_moment_in_the_future_is_refused() -> None:
    refused = check_row(cells(thoi_diem="06/11/2025 10:00"), now=TEST_NOW)
    assert isinstance(refused, Rejection) and refused.reason == "in_the_future"


def test_header_names_are_trimmed_case_insensitive_and_extra_columns_ignored() -> None:
    data = (
        " MA_HO_SO ,Loai,stt,thoi_diem,can_bo,don_vi\n"
        f"{CODE},tra_ket_qua,1,30/10/2024 10:40,lethic.motcua,{UNIT}\n"
    ).encode()
    (row,) = parse_register(data, now=TEST_NOW)
    assert isinstance(row.report, FieldReportCreate) and row.report.note is None


def test_a_missing_header_lists_every_missing_column() -> None:
    with pytest.raises(RegisterError, match="loai, can_bo"):
        parse_register(b"ma_ho_so,thoi_diem,don_vi\n", now=TEST_NOW)


def test_more_rows_than_the_limit_is_too_large() -> None:
    line = f"{CODE},tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT}\n"
    data = ("ma_ho_so,loai,thoi_diem,can_bo,don_vi\n" + line * 4).encode()
    assert len(parse_register(data, now=TEST_NOW, max_rows=4)) == 4
    with pytest.raises(RegisterTooLarge):
        parse_register(data, now=TEST_NOW, max_rows=3)


def test_an_unterminated_quote_refuses_the_row_it_opens() -> None:
    data = f'ma_ho_so,loai,thoi_diem,can_bo,don_vi\n{CODE},tra_ket_qua,"30/10/2024\n'.encode()
    (row,) = parse_register(data, now=TEST_NOW)
    assert isinstance(row.report, Rejection) and row.row == 2


def test_a_giant_field_makes_the_file_invalid_naming_the_line() -> None:
    line = f"{CODE},tra_ket_qua,30/10/2024 10:40,lethic.motcua,{UNIT}"
    data = f"ma_ho_so,loai,thoi_diem,can_bo,don_vi,ghi_chu\n{line},\n{line},{'x' * 200_000}\n"
    with pytest.raises(RegisterError, match="line 3"):
        parse_register(data.encode(), now=TEST_NOW)
